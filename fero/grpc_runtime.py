"""gRPC runtime settings fero chooses for its processes, applied before grpc loads.

gRPC core reads `GRPC_EXPERIMENTS` once, when it starts, so this module must not import
grpc, and `fero/__init__.py` runs `configure()` before anything else does.

fero turns off gRPC's EventEngine TCP for clients and listeners
(`-event_engine_client,-event_engine_listener`), which puts TCP back on the older
iomgr code. That code was gRPC's default until recently and is still supported.
On the 2-core test machine, with grpcio 1.85 and a grpc.aio bidirectional stream,
one message round trip between two processes drops from about 0.25 ms to 0.16 ms.
CPU per message on each side drops by about a third
(`python -m benchmarks.grpc_runtime`).
fero's own traffic is many small messages, so this figure matters more to it than
anything in its own code.

The setting is process-wide, so it applies to any other gRPC channel in the same
process. It is left alone when:
- GRPC_EXPERIMENTS is already set;
- FERO_GRPC_DEFAULTS=0;
- grpc was imported before fero;
- the installed grpcio is one these flags were not measured on (outside TESTED).
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

#: The flags, and the grpcio versions (major, minor) they apply to: those they were
#: measured on. A newer minor may have dropped the legacy TCP code (gRPC would log
#: "Unknown experiment" and keep its default): widen the range after measuring.
EXPERIMENTS = "-event_engine_client,-event_engine_listener"
TESTED = ((1, 85), (1, 85))


def configure(environ: dict[str, str] | None = None) -> str | None:
    """Sets GRPC_EXPERIMENTS for this process (and the processes it starts) unless
    one of the exceptions above holds; returns what gRPC will use (None: its default)."""
    env = os.environ if environ is None else environ
    if "GRPC_EXPERIMENTS" in env:
        return env["GRPC_EXPERIMENTS"]
    if env.get("FERO_GRPC_DEFAULTS", "1") == "0" or "grpc" in sys.modules:
        return None
    try:
        major, minor = (int(x) for x in metadata.version("grpcio").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return None
    if not TESTED[0] <= (major, minor) <= TESTED[1]:
        return None
    env["GRPC_EXPERIMENTS"] = EXPERIMENTS
    return EXPERIMENTS


def current() -> str:
    """What this process runs with, for benchmark reports."""
    return os.environ.get("GRPC_EXPERIMENTS", "") or "(gRPC's defaults)"

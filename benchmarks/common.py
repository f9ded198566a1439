"""Shared pieces of fero's benchmarks: what machine and versions ran them, a progress
line, percentiles, JSON and PNG output, and starting/stopping every process a
benchmark needs (fero nodes, embedded handler nodes, a bare gRPC echo server, Redis).

Every process is started on 127.0.0.1 with a free port (port 0 where the program
supports it), is registered in `_CHILDREN`, and is stopped by the `finally` of the
benchmark that started it; an atexit hook and a SIGTERM→KeyboardInterrupt handler stop
whatever is left, so Ctrl-C never leaves a node or a redis-server behind.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import grpc


ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)

# -- what ran -----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = -1.0
    return {
        "load_avg_1m_at_start": round(load, 2),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu_model": model,
        "memory_gib": round(mem_gib, 1),
        "os": platform.platform(),
        "hostname": platform.node(),
    }


def versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    import google.protobuf
    from google.protobuf.internal import api_implementation

    import fero

    out = {
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": f"{google.protobuf.__version__} ({api_implementation.Type()})",
        "fero": fero.__version__,
        # The same in every process of the run, the floor's included.
        "grpc_experiments": fero.grpc_runtime.current(),
    }
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT.parent, capture_output=True,
                              text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT.parent,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        if head:
            out["fero_git"] = head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    out.update(extra or {})
    return out


def command_line() -> str:
    """The command as typed (python -m benchmarks.X ...), for copying."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if sys.argv and sys.argv[0].startswith("benchmarks."):  # run by `python -m benchmarks`
        head = ["python", "-m", sys.argv[0]]
    else:
        head = ["python", "-m", spec.name] if spec is not None and spec.name else ["python"] + sys.argv[:1]
    if head[-1].endswith(".__main__"):
        head[-1] = head[-1][: -len(".__main__")]
    return " ".join(shlex.quote(a) for a in head + sys.argv[1:])


def header(name: str, extra_versions: dict[str, str] | None = None) -> dict[str, Any]:
    """Prints what is running where, and returns it for the JSON."""
    meta = {
        "benchmark": name,
        "command": command_line(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "versions": versions(extra_versions),
    }
    m, v = meta["machine"], meta["versions"]
    print(f"== fero benchmark: {name}")
    print(f"   command : {meta['command']}")
    print(f"   machine : {m['cores']} cores ({m['usable_cores']} usable), {m['cpu_model']}, "
          f"{m['memory_gib']} GiB, {m['os']}")
    print("   versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    if m["load_avg_1m_at_start"] > 0.5:
        note(f"load average {m['load_avg_1m_at_start']} at start: other processes share these "
             f"{m['cores']} cores, so figures may be lower and noisier than on an idle machine")
    sys.stdout.flush()
    return meta


def note(text: str) -> None:
    print(f"   note: {text}", flush=True)


# -- numbers ------------------------------------------------------------------------


def percentiles(samples: Sequence[float], ps: Iterable[float] = PERCENTILES) -> dict[str, float]:
    """Nearest-rank percentiles of `samples` (e.g. ms), keyed "p50", "p99.9"...; with
    fewer samples than a percentile can resolve, that key is the maximum."""
    xs = sorted(samples)
    out: dict[str, float] = {}
    if not xs:
        return out
    n = len(xs)
    for p in ps:
        rank = max(1, min(n, -(-int(round(p * n * 100)) // 10000)))  # ceil(p/100 * n), exact in ints
        out[pct_key(p)] = xs[rank - 1]
    out["max"] = xs[-1]
    out["mean"] = sum(xs) / n
    out["count"] = n
    return out


def pct_key(p: float) -> str:
    return f"p{p:g}"


def median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    if not s:
        return 0.0
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        lines.append("  ".join(c.rjust(widths[i]) if i else c.ljust(widths[i]) for i, c in enumerate(r)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    text = "\n".join(lines)
    print(text, flush=True)
    return text


# -- progress -----------------------------------------------------------------------


class Progress:
    """One self-overwriting line on stderr: `label: done/total rate elapsed`."""

    def __init__(self, label: str, total: int | None = None, unit: str = "rec") -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._tty = sys.stderr.isatty()

    def update(self, done: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < (0.2 if self._tty else 2.0):
            return
        self._last = now
        el = now - self.t0
        rate = done / el if el > 0 else 0.0
        tot = f"/{self.total:,}" if self.total else ""
        line = f"   .. {self.label}: {done:,}{tot} {self.unit}  {fmt_rate(rate)}/s  {el:5.1f}s"
        if self._tty:
            sys.stderr.write("\r" + line.ljust(100))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self, done: int) -> None:
        self.update(done, force=True)
        if self._tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


# -- output -------------------------------------------------------------------------


def write_json(name: str, data: dict[str, Any], out_dir: Path | None = None) -> Path:
    d = out_dir or RESULTS
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    print(f"   wrote {_rel(path)}", flush=True)
    return path


def _rel(p: Path) -> str:
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def _pyplot() -> Any:
    """matplotlib.pyplot with the Agg backend, or None (and a note) if not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        note("matplotlib is not installed: no PNG written (pip install matplotlib)")
        return None
    return plt


def plot_bars(path: Path, title: str, groups: Sequence[str], series: dict[str, Sequence[float]], ylabel: str,
              subtitle: str = "", log_y: bool = False, hline: tuple[float, str] | None = None,
              fmt: Callable[[float], str] = fmt_rate) -> Path | None:
    """Grouped bars: one group per entry of `groups`, one bar per series in each."""
    plt = _pyplot()
    if plt is None:
        return None
    n_series = max(1, len(series))
    width = 0.8 / n_series
    fig, ax = plt.subplots(figsize=(max(7.0, 0.9 * len(groups) * max(1, n_series / 2) + 2), 4.8))
    for k, (label, vals) in enumerate(series.items()):
        xs = [i + (k - (n_series - 1) / 2) * width for i in range(len(groups))]
        bars = ax.bar(xs, vals, width * 0.95, label=label)
        for b, v in zip(bars, vals):
            if v:
                ax.annotate(fmt(v), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                            va="bottom", fontsize=7, rotation=90 if n_series > 3 else 0)
    if hline is not None:
        ax.axhline(hline[0], color="red", linestyle="--", linewidth=1)
        ax.annotate(hline[1], (len(groups) - 0.5, hline[0]), color="red", ha="right", va="bottom", fontsize=8)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8, rotation=20 if len(groups) > 6 else 0, ha="right" if len(groups) > 6 else "center")
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, plt, path)


def plot_percentiles(path: Path, title: str, series: dict[str, dict[str, float]], subtitle: str = "",
                     ylabel: str = "latency (ms)") -> Path | None:
    """Latency percentile curves, HdrHistogram style: x is the percentile on a
    1/(1-p) log axis (p50 .. p99.99), y the latency."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ticks = []
    for label, pcts in series.items():
        keys = [(float(k[1:]), k) for k in pcts if re.fullmatch(r"p[0-9.]+", k)]
        keys.sort()
        xs = [1 / (1 - p / 100) for p, _ in keys]
        ys = [pcts[k] for _, k in keys]
        ax.plot(xs, ys, marker="o", label=label)
        ticks = [(x, k) for x, (_, k) in zip(xs, keys)] if len(keys) > len(ticks) else ticks
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([x for x, _ in ticks])
    ax.set_xticklabels([k for _, k in ticks])
    ax.minorticks_off()
    ax.set_xlabel("percentile")
    ax.set_ylabel(ylabel)
    ax.set_title(title + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"   wrote {_rel(path)}", flush=True)
    return path


# -- processes ----------------------------------------------------------------------

_CHILDREN: list[subprocess.Popen[Any]] = []
_TMPDIRS: list[str] = []


def _cleanup() -> None:
    for p in list(_CHILDREN):
        stop_process(p, timeout_s=3)
    for d in _TMPDIRS:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def install_signal_handlers() -> None:
    """SIGTERM behaves like Ctrl-C: the `finally` blocks stop every process."""

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)


def tmpdir(prefix: str) -> Path:
    d = tempfile.mkdtemp(prefix=f"fero-bench-{prefix}-")
    _TMPDIRS.append(d)
    return Path(d)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port() -> int:
    """A free port P whose Redis Cluster bus port P+10000 is free too (and < 65536)."""
    import random

    for _ in range(1000):
        p = random.randint(20000, 45000)
        if _port_free(p) and _port_free(p + 10000):
            return p
    raise RuntimeError("no free port pair for a Redis Cluster node")


def stop_process(p: subprocess.Popen[Any], timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout_s`; only ever this one process."""
    try:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
    finally:
        if p in _CHILDREN:
            _CHILDREN.remove(p)


#: Log events a child's stderr is watched for (benchmarks.stability).
COUNTED = ("membership.suspect", "membership.dead")


@dataclass
class Proc:
    """A child process that prints a ready line on stdout (fero serve, echo servers)."""

    argv: list[str]
    ready: re.Pattern[str]
    name: str = ""
    #: Where it runs (`python -m` imports from there): this checkout unless told.
    cwd: Path | None = None
    proc: subprocess.Popen[str] | None = None
    match: re.Match[str] | None = None
    stderr_lines: list[str] = field(default_factory=list)
    #: How many stderr lines held each of COUNTED (all of them, not only the last 200).
    events: dict[str, int] = field(default_factory=dict)

    def start(self, timeout_s: float = 30.0) -> "Proc":
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=self.cwd or ROOT.parent, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        _CHILDREN.append(self.proc)
        threading.Thread(target=self._drain, args=(self.proc.stderr, True), daemon=True).start()
        result: list[re.Match[str]] = []

        def wait_ready() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                m = self.ready.search(line)
                if m:
                    result.append(m)
                    break
            # keep draining so the child never blocks on a full pipe
            self._drain(self.proc.stdout, False)

        t = threading.Thread(target=wait_ready, daemon=True)
        t.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not result and self.proc.poll() is None:
            time.sleep(0.02)
        if not result:
            self.stop()
            raise RuntimeError(f"{self.name or self.argv[0]} did not start: {''.join(self.stderr_lines[-20:])}")
        self.match = result[0]
        return self

    def _drain(self, stream: Any, keep: bool) -> None:
        try:
            for line in stream:
                if keep:
                    self.stderr_lines.append(line)
                    del self.stderr_lines[:-200]
                    for e in COUNTED:
                        if e in line:
                            self.events[e] = self.events.get(e, 0) + 1
        except (OSError, ValueError):
            pass

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


_FERO_READY = re.compile(r"fero: serving on (\S+) \(node (\S+),")


@dataclass
class FeroNode:
    proc: Proc
    address: str
    node_id: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.stop()


def start_fero_node(*, node_id: str, data_dir: Path | None, fsync: str, seeds: Sequence[str] = (),
                    handler: str | None = None, extra: Sequence[str] = (), source: Path | None = None) -> FeroNode:
    """`fero serve` on 127.0.0.1 port 0, or (with `handler`) benchmarks/echo_node.py, an
    embedded fero.Node with a custom-action handler, started the same way; from the
    fero source tree `source` (default: this checkout)."""
    if handler is None:
        argv = [sys.executable, "-m", "fero.cli.main", "serve"]
    else:
        argv = [sys.executable, "-m", "benchmarks.echo_node", "--handler", handler]
    argv += ["--host", "127.0.0.1", "--port", "0", "--node-id", node_id, "--membership", "local"]
    argv += ["--data-dir", str(data_dir)] if data_dir is not None else ["--memory"]
    argv += ["--fsync", fsync]
    if seeds:
        argv += ["--seeds", ",".join(seeds)]
    argv += list(extra)
    p = Proc(argv, _FERO_READY, name=f"fero node {node_id}", cwd=source).start()
    assert p.match is not None
    return FeroNode(p, p.match.group(1), p.match.group(2))


async def cluster_views(addresses: Sequence[str]) -> dict[str, Any]:
    from fero.v1 import cluster_pb2, cluster_pb2_grpc

    out: dict[str, Any] = {}
    for a in addresses:
        try:
            async with grpc.aio.insecure_channel(a) as ch:
                out[a] = await cluster_pb2_grpc.ClusterStub(ch).Status(cluster_pb2.StatusRequest(), timeout=2)
        except grpc.aio.AioRpcError:
            out[a] = None
    return out


async def wait_converged(nodes: Sequence[FeroNode], timeout_s: float = 30.0) -> bool:
    """Every node sees every node alive, coherent, with one ring checksum."""
    ids = {n.node_id for n in nodes}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = await cluster_views([n.address for n in nodes])
        if all(
            r is not None and r.coherent and {m.id for m in r.members if m.status == "alive"} == ids
            for r in v.values()
        ) and len({r.ring_checksum for r in v.values()}) == 1:
            return True
        await asyncio.sleep(0.1)
    return False


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Nodes:
    """N fero nodes on loopback (the first is every other's seed), stopped on exit."""

    def __init__(self, n: int, *, fsync: str, memory: bool = False, handler: str | None = None,
                 extra: Sequence[str] = (), label: str = "fero", source: Path | None = None) -> None:
        self.n = n
        self.source = source
        self.fsync = fsync
        self.memory = memory
        self.handler = handler
        self.extra = list(extra)
        self.label = label
        self.nodes: list[FeroNode] = []
        self.root: Path | None = None

    def __enter__(self) -> "Nodes":
        try:
            self.root = None if self.memory else tmpdir(self.label)
            for i in range(self.n):
                seeds = [self.nodes[0].address] if self.nodes else []
                d = None if self.root is None else self.root / f"n{i}"
                self.nodes.append(start_fero_node(node_id=f"n{i}", data_dir=d, fsync=self.fsync, seeds=seeds,
                                                  handler=self.handler, extra=self.extra, source=self.source))
            if self.n > 1 and not asyncio.run(wait_converged(self.nodes)):
                raise RuntimeError(f"{self.n} fero nodes did not converge in 30 s")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for n in reversed(self.nodes):
            n.stop()
        self.nodes = []
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    @property
    def ids(self) -> list[str]:
        return [n.node_id for n in self.nodes]

    def pid_at(self, address: str) -> int:
        """The process id of the node serving at `address`."""
        return {n.address: n.pid for n in self.nodes}[address]

    def owner_address(self, key: str) -> str:
        """The address of the node that owns `key`'s partition, by the ring every node
        computes: a client sent there commits without a forward."""
        return dict(zip(self.ids, self.addresses))[owner_table(self.ids)[partition_of_key(key)]]


def owner_table(node_ids: Sequence[str], partitions: int = 256, vnodes: int = 200) -> list[str]:
    """partition → owner id, from the same ring every node computes (fero.ring)."""
    from fero.ring import Ring

    ring = Ring(node_ids, vnodes=vnodes)
    return [ring.owner(p) or "" for p in range(partitions)]


def partition_of_key(key: str, partitions: int = 256) -> int:
    from fero.documents import partition_key
    from fero.ring import partition_of

    return partition_of(partition_key(key), partitions)


async def probe_forwarding(nodes: Sequence[FeroNode]) -> tuple[bool, str]:
    """Can the cluster serve a write sent to a node that does not own its partition?
    True if it commits (the node forwarded it to the owner); False with the reason if
    it is refused (UNAVAILABLE "not owner": forwarding is not built yet)."""
    import fero
    from fero.errors import FeroError

    if len(nodes) < 2:
        return True, "single node"
    owners = owner_table([n.node_id for n in nodes])
    for i in range(10_000):
        key = f"probe-{i}"
        owner = owners[partition_of_key(key)]
        other = next((n for n in nodes if n.node_id != owner), None)
        if other is not None:
            break
    async with fero.connect(other.address, retry_for_s=0.0, timeout_s=5.0) as c:
        try:
            await c.add(key, 1, acks="all")
        except FeroError as exc:
            return False, f"{type(exc).__name__} ({exc.code.name}): {exc.message}"
    return True, f"a write sent to {other.node_id} for a partition owned by {owner} committed"


async def _records_per_node(nodes: Sequence[FeroNode]) -> list[int | None]:
    v = await cluster_views([n.address for n in nodes])
    return [(r.node.records if r is not None else None) for r in v.values()]


async def probe_replication(nodes: Sequence[FeroNode], timeout_s: float = 3.0) -> tuple[bool, str]:
    """Does acks=ALL really reach replicas? Commits 20 records with acks=ALL at n0's
    partitions, then watches every other node's `records` (Status: records in its
    logs) grow by 20 within `timeout_s`. With RF=3 on 3 nodes both others are replicas."""
    import fero
    from fero.v1 import types_pb2

    if len(nodes) < 2:
        return False, "single node: nothing to replicate to"
    owners = owner_table([n.node_id for n in nodes])
    keys = [k for k in (f"replprobe-{i}" for i in range(100_000)) if owners[partition_of_key(k)] == nodes[0].node_id][:20]
    before = await _records_per_node(nodes)
    async with fero.connect(nodes[0].address, retry_for_s=2.0, timeout_s=5.0) as c:
        recs = [c.record(types_pb2.OP_COUNTER_ADD, k, amount=1) for k in keys]
        res = await c.commit(recs, acks="all")
    bad = [r for r in res if r.error_code]
    if bad:
        return False, f"acks=ALL commit failed: {bad[0].error_code} {bad[0].error_message}"
    deadline = time.monotonic() + timeout_s
    after = before
    while time.monotonic() < deadline:
        after = await _records_per_node(nodes)
        grown = [a - b if a is not None and b is not None else None for a, b in zip(after, before)]
        if all(g is not None and g >= len(keys) for g in grown[1:]):
            return True, f"{len(keys)} acks=ALL records appeared on every replica ({grown})"
        await asyncio.sleep(0.1)
    grown = [a - b if a is not None and b is not None else None for a, b in zip(after, before)]
    return False, (f"{len(keys)} acks=ALL records committed on {nodes[0].node_id} did not appear on the other nodes "
                   f"(records added per node: {grown}): replication is not built, acks=ALL acts as LEADER")


# -- Redis --------------------------------------------------------------------------


def ensure_redis() -> tuple[bool, str]:
    """redis-server, redis-cli and redis-benchmark on PATH; installs them with apt-get if
    missing and we are root. (ok, version or reason)."""
    need = ("redis-server", "redis-cli", "redis-benchmark")
    if not all(shutil.which(x) for x in need):
        if os.geteuid() == 0 and shutil.which("apt-get"):
            note("redis is missing: apt-get install -y redis-server redis-tools")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(["apt-get", "update", "-qq"], env=env, timeout=300)
            subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server", "redis-tools"], env=env, timeout=600)
        if not all(shutil.which(x) for x in need):
            return False, "redis-server/redis-cli/redis-benchmark not found and could not be installed"
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"v=(\S+)", out)
    return True, m.group(1) if m else out.strip()


class RedisServer:
    """One redis-server on 127.0.0.1, no RDB snapshots; AOF off or `everysec`."""

    def __init__(self, *, aof: bool, cluster: bool = False, dir: Path | None = None) -> None:
        self.port = free_cluster_port() if cluster else free_port()
        self.dir = dir or tmpdir("redis")
        self.aof = aof
        self.cluster = cluster
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "RedisServer":
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
                "--save", "", "--daemonize", "no", "--protected-mode", "no", "--logfile", "redis.log",
                "--appendonly", "yes" if self.aof else "no"]
        if self.aof:
            argv += ["--appendfsync", "everysec"]
        if self.cluster:
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir)
        _CHILDREN.append(self.proc)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.cli("ping", check=False).strip() == "PONG":
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not start (see {self.dir}/redis.log)")

    def cli(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args], capture_output=True,
                           text=True, timeout=30)
        if check and r.returncode != 0:
            raise RuntimeError(f"redis-cli {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class RedisCluster:
    """3 masters + 3 replicas (redis-cli --cluster create --cluster-replicas 1)."""

    def __init__(self, *, aof: bool) -> None:
        self.aof = aof
        self.root = tmpdir("redis-cluster")
        self.servers: list[RedisServer] = []

    def __enter__(self) -> "RedisCluster":
        try:
            for i in range(6):
                self.servers.append(RedisServer(aof=self.aof, cluster=True, dir=self.root / f"r{i}").start())
            r = subprocess.run(["redis-cli", "--cluster", "create", *[s.address for s in self.servers],
                                "--cluster-replicas", "1", "--cluster-yes"], capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {r.stdout[-500:]} {r.stderr[-500:]}")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                infos = [s.cli("cluster", "info", check=False) for s in self.servers]
                if all("cluster_state:ok" in i for i in infos) and all(
                    "cluster_slots_ok:16384" in i for i in infos
                ):
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError("redis cluster did not reach cluster_state:ok in 30 s")
            # replicas must be attached before we measure (replication traffic is part of the cost)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                roles = [s.cli("role", check=False).split("\n", 1)[0].strip() for s in self.servers]
                links = [s.cli("info", "replication", check=False) for s in self.servers]
                if roles.count("slave") == 3 and all(
                    "master_link_status:up" in li for li, ro in zip(links, roles) if ro == "slave"
                ):
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError("redis cluster replicas did not attach in 30 s")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for s in self.servers:
            s.stop()
        self.servers = []
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def seed(self) -> RedisServer:
        return self.servers[0]


def cli(main: Callable[[], int]) -> int:
    """Runs a benchmark's main; Ctrl-C ends it with a note instead of a traceback (every
    process it started is stopped by the `finally` blocks and, failing that, atexit)."""
    try:
        return main()
    except KeyboardInterrupt:
        try:
            _cleanup()
        except KeyboardInterrupt:
            _cleanup()
        print("\n   interrupted: every process this benchmark started has been stopped", flush=True)
        return 130

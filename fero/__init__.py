"""fero: replicated shared state — a partitioned changelog with exact distributed counters.

Where each piece lives:

    fero.connect / fero.Client / fero.SyncClient   client.py      the Python client
    fero.Node                                      node.py        a node, embeddable
    fero.Config                                    config.py      every constant, documented
    fero.errors                                    errors.py      exceptions ↔ gRPC status
    values.py, counters.py, documents.py           the state machines (pure)
    partition.py, tickets.py, hlc.py               one partition's state, idempotency, time
    engine.py, subscriptions.py                    commit path, group commit, subscribers
    log/                                           segments, WAL, snapshots
    ring.py, router.py                             hashring and ownership
    membership/                                    SWIM + Lifeguard (pure state machines)
    server.py, eager.py                            gRPC servicers; tasks that start at once
    cli/                                           `fero` and `fero-ls`
    testing/                                       in-memory network, helpers for tests
    v1/                                            generated from protos/fero/v1
"""

__version__ = "0.1.0"

# Before anything imports grpc: gRPC reads its runtime settings once, at start.
from fero import grpc_runtime  # noqa: E402

grpc_runtime.configure()

from fero.client import Acks, AddResult, Change, Client, Pipeline, SyncClient, connect, connect_sync  # noqa: E402
from fero.config import Config  # noqa: E402
from fero.engine import Action  # noqa: E402
from fero.errors import FeroError  # noqa: E402
from fero.node import Node  # noqa: E402
from fero.values import Kind  # noqa: E402

__all__ = [
    "Acks",
    "Action",
    "AddResult",
    "Change",
    "Client",
    "Config",
    "FeroError",
    "Kind",
    "Node",
    "Pipeline",
    "SyncClient",
    "connect",
    "connect_sync",
]

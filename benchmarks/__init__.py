"""fero's benchmarks: speed, latency, counters, compare (see benchmarks/README.md).

    python -m benchmarks            # the standard set (what `make bench` runs)
    python -m benchmarks.speed -m 10,100,1000 -r 1000000 -l 1 -c 1
"""

# Every benchmark process (clients, the bare-grpc floor, the nodes fero starts itself)
# runs gRPC with the same runtime settings: fero's (fero/grpc_runtime.py), which gRPC
# reads once, before it starts. Importing fero first applies them.
import fero  # noqa: E402,F401

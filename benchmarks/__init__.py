"""fero's benchmarks: speed, latency, counters, compare (see benchmarks/README.md).

    python -m benchmarks            # the standard set (what `make bench` runs)
    python -m benchmarks.speed -m 10,100,1000 -r 1000000 -l 1 -c 1
"""

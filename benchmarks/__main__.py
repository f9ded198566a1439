"""The standard set, what `make bench` runs: speed, latency, counters, compare at modest
sizes (about 8 minutes on 2 cores). `--quick` runs smaller sizes (about 4 minutes).

    python -m benchmarks [--quick]

Each benchmark writes benchmarks/results/NAME.json and NAME.png; run one on its own
(python -m benchmarks.speed --help) for other sizes.
"""

from __future__ import annotations

import sys
import time

from benchmarks import common, compare, counters, latency, speed

STANDARD = {
    "speed": ["-m", "10,100,1000", "-r", "1000000", "-l", "1", "-c", "1,3", "--budget", "15", "--bar-repeat", "3",
              "--bar-api", "bulk", "--floor", "--profile"],
    "latency": ["--messages", "10000", "--repeat", "3"],
    "counters": ["--repeat", "3", "--increments", "1000000", "--budget", "10"],
    "compare": ["--repeat", "3", "--increments", "1000000", "--budget", "10"],
}
QUICK = {
    "speed": ["-m", "100", "-r", "100000", "-l", "1", "-c", "1", "--budget", "8"],
    "latency": ["--messages", "3000", "--repeat", "1"],
    "counters": ["--repeat", "1", "--increments", "100000", "--budget", "5"],
    "compare": ["--repeat", "1", "--increments", "100000", "--budget", "5",
                "--redis-requests-p16", "300000", "--redis-requests-p1", "50000"],
}
MAINS = {"speed": speed.main, "latency": latency.main, "counters": counters.main, "compare": compare.main}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    plan = QUICK if "--quick" in args else STANDARD
    common.install_signal_handlers()
    status = 0
    t0 = time.monotonic()
    for name, bench_args in plan.items():
        sys.argv = [f"benchmarks.{name}", *bench_args]
        print(f"\n##### python -m benchmarks.{name} {' '.join(bench_args)}\n", flush=True)
        try:
            rc = MAINS[name](bench_args)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            return 130
        except Exception as exc:  # one failing benchmark does not hide the others
            print(f"benchmarks.{name} failed: {type(exc).__name__}: {exc}", flush=True)
            rc = 1
        status = status or rc
    print(f"\nstandard set done in {time.monotonic() - t0:.0f} s; results in benchmarks/results/", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(common.cli(main))

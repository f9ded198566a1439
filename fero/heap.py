"""The cyclic garbage collector in a node's process: what outlives start-up is frozen.

A full collection (generation 2) walks every container object the process holds and
stops everything else while it runs. Most of what a node holds is there for good:
modules, classes and functions, the config, the gRPC server, and the partitions'
recovered state. On the 2-core test machine, with a 3-node cluster serving the latency
benchmark:
- a node held about 77k objects, and a full collection of them took 17 to 28 ms;
- each full collection showed up as one acks=ALL call of 20 to 31 ms, at the same
  instant, on the owner or on a replica. Those calls were the p99.99.

`freeze()` runs once the node serves. It collects, then moves every object alive to
the permanent generation (gc.freeze), which collections skip. After that, a full
collection walks only what the node has made since.
- Frozen objects are still freed by reference counting.
- A reference cycle among them that becomes garbage later is never collected.
  What a node holds at start-up and later drops in a cycle (a few tasks, a
  connection) is bounded, so this leaks at most once per process, not per request.

`fero serve` calls both functions. An application that embeds fero.Node decides for its
own process: the collector's settings are the whole process's.

`watch()` records how long each collection stopped the process, for the metrics page.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field


@dataclass
class Pauses:
    """Per generation: collections seen, seconds they took in all, the longest one."""

    count: list[int] = field(default_factory=lambda: [0, 0, 0])
    seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    longest: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    _started: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        g = info["generation"]
        took = time.perf_counter() - self._started
        self.count[g] += 1
        self.seconds[g] += took
        if took > self.longest[g]:
            self.longest[g] = took


#: The process's recorder once watch() ran; None: nobody asked.
pauses: Pauses | None = None


def freeze() -> int:
    """Collects, then freezes every object alive; returns how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def watch() -> Pauses:
    """Starts recording collection pauses (once per process); returns the recorder."""
    global pauses
    if pauses is None:
        pauses = Pauses()
        gc.callbacks.append(pauses)
    return pauses

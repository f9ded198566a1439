"""The cyclic garbage collector in a node's process: what outlives start-up is frozen.

A full collection (generation 2) walks every object the collector tracks, and no Python
code runs meanwhile (gRPC's C threads do). Most of what a node holds is there for good:
modules, classes and functions, the config, the gRPC server, and the partitions'
recovered state. On the 2-core test machine, with a 3-node cluster serving the latency
benchmark:
- a node tracked about 77k objects, and a full collection of them took 17 to 28 ms;
- each full collection showed up as one acks=ALL call of 20 to 31 ms, at the same
  instant, on the owner or on a replica. Those calls were the p99.99.

`freeze()` runs once the node serves. It collects, then moves every object alive to
the permanent generation (gc.freeze), which collections skip. After that, a full
collection walks only what the node has made since.
- Python 3.11 runs a full collection once the objects that survived younger ones
  exceed a quarter of those the last full one kept. With the start-up objects out of
  that count, full collections come more often, and each one is short.
- Frozen objects are still freed by reference counting. The collector treats them
  as roots, though: a garbage cycle through a frozen object is never collected, with
  everything it reaches (short of gc.unfreeze()). Only what was alive at start-up
  can be such an object, and a node drops few of those (a task or a connection
  now and then): what this can cost is bounded by what the node held at start-up,
  not by how long it runs.

`fero serve` calls both functions. An application that embeds fero.Node decides for its
own process: the collector's settings are the whole process's.

`watch()` records how long each collection stopped Python code, for the metrics page.
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

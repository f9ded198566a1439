"""Where two copies of a partition's log stop agreeing.

A log is a sequence of lineages: (epoch, owner) pairs, each written by one owner from a
start offset on (Kafka's leader-epoch cache, with the owner added because fero has no
controller to hand out unique epochs: two sides of a split may both pick epoch 7, but
not with the same owner). One lineage is one writer appending in order, so two logs
whose lineage at offset x is the same hold the same record at x. The logs agree on
[0, d) for the largest such d, and a replica that diverged truncates to d and fetches
from there. Pure functions; lists are (epoch, owner, start_offset), oldest first.
"""

from __future__ import annotations

from typing import Sequence

Lineage = tuple[int, str, int]


def lineage_at(epochs: Sequence[Lineage], offset: int) -> tuple[int, str] | None:
    """The (epoch, owner) that wrote `offset`, or None before the first lineage."""
    found = None
    for epoch, owner, start in epochs:
        if start > offset:
            break
        found = (epoch, owner)
    return found


def divergence(a: Sequence[Lineage], a_end: int, b: Sequence[Lineage], b_end: int) -> int:
    """The largest d <= min(a_end, b_end) such that both logs hold the same records on
    [0, d), judged by their lineages."""
    end = min(a_end, b_end)
    # Lineages change only at start offsets, so comparing there suffices.
    for x in sorted({s for _, _, s in a} | {s for _, _, s in b} | {0}):
        if x >= end:
            break
        here = lineage_at(a, x)
        if here is None or here != lineage_at(b, x):
            return x
    return end

"""Routing: is a partition served here, and if not, by whom.

Ownership is always asked of the ring, even on a single node (a ring of one member),
so that the cluster only changes who the ring names, never this question. A request
for a partition owned elsewhere is forwarded once (node.py); a forwarded request for a
partition this node does not own is refused with NotOwner (UNAVAILABLE, `refresh_ring`),
which makes a client refresh its ring and retry rather than loop between nodes.
"""

from __future__ import annotations

from typing import Iterable

from fero.errors import NotOwner, Unavailable
from fero.ring import Ring


class Router:
    def __init__(self, node_id: str, ring: Ring, partitions: int) -> None:
        self.node_id = node_id
        self.ring = ring
        self.partitions = partitions

    def owner(self, partition: int) -> str | None:
        return self.ring.owner(partition)

    def is_local(self, partition: int) -> bool:
        return self.ring.owner(partition) == self.node_id

    def owned(self) -> list[int]:
        return self.ring.owned(self.node_id, self.partitions)

    def group(self, partitions: list[int]) -> dict[str | None, list[int]]:
        """Indices of `partitions` grouped by owner (None: no owner, the ring is empty)."""
        owner_of = self.ring.owner
        cache: dict[int, str | None] = {}
        groups: dict[str | None, list[int]] = {}
        for i, p in enumerate(partitions):
            o = cache.get(p, "")
            if o == "":
                o = cache[p] = owner_of(p)
            groups.setdefault(o, []).append(i)
        return groups

    def check_local(self, partitions: Iterable[int]) -> None:
        """Raises NotOwner (or Unavailable if no node owns it) for the first partition
        not served here."""
        for p in partitions:
            owner = self.ring.owner(p)
            if owner is None:
                raise Unavailable(f"partition {p} has no owner; the ring is empty")
            if owner != self.node_id:
                raise NotOwner(f"not owner of partition {p}; its owner is {owner}")

"""Routing: is a partition served here, and if not, by whom.

Ownership is always asked of the ring, even on a single node (a ring of one member),
so that the cluster only changes who the ring names, never this question. Forwarding
to a remote owner arrives with replication; until then a partition this node does not
own is refused with NotOwner (UNAVAILABLE, `refresh_ring`), which makes a client
refresh its ring and retry rather than loop between nodes.
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

    def check_local(self, partitions: Iterable[int]) -> None:
        """Raises NotOwner (or Unavailable if no node owns it) for the first partition
        not served here."""
        for p in partitions:
            owner = self.ring.owner(p)
            if owner is None:
                raise Unavailable(f"partition {p} has no owner; the ring is empty")
            if owner != self.node_id:
                raise NotOwner(f"not owner of partition {p}; its owner is {owner}")

"""The consistent hashring: which node owns a partition, and who replicates it.

Every node and every client computes the same ring from the same membership, so the
hash functions below are part of the wire contract (a client in another language must
reproduce them bit for bit):

- `hash64(data)` is the low 64 bits, unsigned, of MurmurHash3_x64_128 with seed 0
  (`mmh3.hash64(data, seed=0, x64arch=True, signed=False)[0]`); a `str` is UTF-8.
- A key's partition is `hash64(key) % P` (`partition_of`).
- Node `n` places `vnodes` points at `hash64(f"{n}#{i}")` for `i` in `0..vnodes-1`.
- Partition `p` sits at `hash64(f"partition:{p}")`; its owner is the node of the first
  point clockwise (the first point whose hash is >= the partition's, wrapping round).
  Points with equal hashes are ordered by node id, so ties resolve the same everywhere.
- `checksum()` is `hash64(f"{vnodes}\\n" + "\\n".join(sorted(nodes)))`.

Nothing here does I/O; the ring is a plain value that the node rebuilds when a member
becomes alive, dead or leaves (never on mere suspicion, see fero.membership).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import mmh3
from sortedcontainers import SortedList

DEFAULT_VNODES = 200


#: hash64 is the 128-bit hash's low word: one mask, also mapped over hashes in C (fero.batch).
MASK64 = (1 << 64) - 1


def hash64(data: str | bytes) -> int:
    """Low 64 bits of MurmurHash3_x64_128 (seed 0) as an unsigned int."""
    # mmh3.hash128 is the same hash as one int (its low 64 bits are hash64's first
    # word); it costs a third of mmh3.hash64, which builds a tuple of two ints.
    return mmh3.hash128(data) & MASK64


def partition_of(key: str | bytes, partitions: int) -> int:
    """The partition of a partition key: `hash64(key) % partitions`.

    Raises ValueError if `partitions` < 1.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    return hash64(key) % partitions


def partition_point(partition: int) -> int:
    """Where partition `partition` sits on the ring."""
    return hash64(f"partition:{partition}")


def node_points(node_id: str, vnodes: int) -> list[int]:
    """The ring points of one node, in vnode order."""
    return [hash64(f"{node_id}#{i}") for i in range(vnodes)]


@dataclass(frozen=True, slots=True)
class RingStatistics:
    """A snapshot of a ring's shape over `partitions` partitions."""

    nodes: int
    vnodes: int
    points: int
    checksum: int
    partitions: int
    min_partitions_per_node: int  # 0 when the ring is empty
    max_partitions_per_node: int


class Ring:
    """A consistent hashring with `vnodes` points per node.

    Mutable through `add`/`remove`; `copy()` and `with_nodes()` give independent rings,
    so a caller can build the next ring while readers keep using the current one.
    A partition's first owner lookup costs a hash and O(log(points)); the answer is
    kept until the ring changes, so later ones are a dict lookup (a node looks up
    owners for every request it routes, and a status reply for every partition). A
    preference list walks at most every point once.

    Raises ValueError for `vnodes` < 1 or an empty node id.
    """

    __slots__ = ("_nodes", "_points", "_vnodes", "_owners")

    def __init__(self, nodes: Iterable[str] = (), vnodes: int = DEFAULT_VNODES) -> None:
        if vnodes < 1:
            raise ValueError(f"vnodes must be >= 1, got {vnodes}")
        self._vnodes = vnodes
        self._nodes: set[str] = set()
        # (point, node) tuples: the node id breaks hash ties the same way on every node.
        self._points: SortedList = SortedList()
        #: partition -> owner, as owner() found it; emptied by every change.
        self._owners: dict[int, str] = {}
        for node_id in nodes:
            self.add(node_id)

    @classmethod
    def with_nodes(cls, nodes: Iterable[str], vnodes: int = DEFAULT_VNODES) -> Ring:
        return cls(nodes, vnodes)

    def copy(self) -> Ring:
        other = Ring((), self._vnodes)
        other._nodes = set(self._nodes)
        other._points = SortedList(self._points)
        other._owners = dict(self._owners)
        return other

    @property
    def vnodes(self) -> int:
        return self._vnodes

    @property
    def nodes(self) -> tuple[str, ...]:
        """Member node ids, sorted."""
        return tuple(sorted(self._nodes))

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def add(self, node_id: str) -> bool:
        """Place `node_id`'s points; False (and no change) if it is already present."""
        if not node_id:
            raise ValueError("a node id must not be empty")
        if node_id in self._nodes:
            return False
        self._nodes.add(node_id)
        self._points.update((point, node_id) for point in node_points(node_id, self._vnodes))
        self._owners.clear()
        return True

    def remove(self, node_id: str) -> bool:
        """Remove `node_id`'s points; False (and no change) if it is absent."""
        if node_id not in self._nodes:
            return False
        self._nodes.remove(node_id)
        for point in node_points(node_id, self._vnodes):
            self._points.remove((point, node_id))
        self._owners.clear()
        return True

    def _first_index(self, partition: int) -> int:
        # (h,) sorts before every (h, node), so this is the first point >= h.
        index = self._points.bisect_left((partition_point(partition),))
        return 0 if index == len(self._points) else index

    def owner(self, partition: int) -> str | None:
        """The node owning `partition`, or None when the ring is empty."""
        owner = self._owners.get(partition)
        if owner is None:
            if not self._points:
                return None
            owner = self._owners[partition] = self._points[self._first_index(partition)][1]
        return owner

    def preference_list(self, partition: int, rf: int) -> list[str]:
        """The first `rf` distinct nodes clockwise from `partition`: owner first.

        Returns fewer than `rf` nodes when the ring has fewer; [] when empty.
        Raises ValueError if `rf` < 1.
        """
        if rf < 1:
            raise ValueError(f"rf must be >= 1, got {rf}")
        want = min(rf, len(self._nodes))
        result: list[str] = []
        if want == 0:
            return result
        points = self._points
        start = self._first_index(partition)
        count = len(points)
        for step in range(count):
            node_id = points[(start + step) % count][1]
            if node_id not in result:
                result.append(node_id)
                if len(result) == want:
                    break
        return result

    def owned(self, node_id: str, partitions: int) -> list[int]:
        """The partitions in `range(partitions)` that `node_id` owns, ascending."""
        return [p for p in range(partitions) if self.owner(p) == node_id]

    def ownership(self, partitions: int) -> dict[str, list[int]]:
        """Every node's owned partitions in one pass; nodes owning none map to []."""
        result: dict[str, list[int]] = {node_id: [] for node_id in self._nodes}
        for p in range(partitions):
            owner = self.owner(p)
            if owner is not None:
                result[owner].append(p)
        return result

    def checksum(self) -> int:
        """A 64-bit digest of (vnodes, node set): equal rings give equal checksums."""
        return hash64(f"{self._vnodes}\n" + "\n".join(sorted(self._nodes)))

    def statistics(self, partitions: int = 256) -> RingStatistics:
        counts = [len(owned) for owned in self.ownership(partitions).values()]
        return RingStatistics(
            nodes=len(self._nodes),
            vnodes=self._vnodes,
            points=len(self._points),
            checksum=self.checksum(),
            partitions=partitions,
            min_partitions_per_node=min(counts, default=0),
            max_partitions_per_node=max(counts, default=0),
        )

    def __repr__(self) -> str:
        return f"Ring(nodes={len(self._nodes)}, vnodes={self._vnodes}, checksum={self.checksum():#x})"

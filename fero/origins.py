"""A partition's origin vector, with a fingerprint that compares two vectors by one number.

The vector maps each origin (a node incarnation that committed records to the
partition) to the highest origin_seq applied; every lower seq is applied too. Its
entries are what make a redelivered record a duplicate, so none can be dropped
without every copy agreeing; the vector grows by one entry for each restart of each
node that writes to the partition.

Anti-entropy compares vectors with every peer every few seconds. Sent whole, 100
origins in each of 256 partitions made a 0.6 MB digest that took 36 ms to build and
15 ms to compare, on the event loop, every 2 s, for each peer; at 1000 origins,
285 ms and 155 ms. `fingerprint` lets a peer send all but a few entries as one number
(Engine.digest, compact), and this node compare them by one subtraction:

    fingerprint = sum of weight(origin) * seq, modulo 2**64

where weight(origin) is an odd 64-bit hash of the origin's name: a change of one seq
moves it by one multiplication. Two vectors that differ in one origin's seq always
have different fingerprints: an odd weight times a difference below 2**64 is never
0 modulo 2**64. Vectors that differ in several collide with odds of about 2**-64.

`recent` holds origins whose seq rose lately: those that differ between copies while
writes go on. A compact digest sends them in full and the rest as its fingerprint
(`rest`).
"""

from __future__ import annotations

from typing import Iterable, Mapping, NoReturn

import mmh3

MASK64 = (1 << 64) - 1
#: How many of the origins that changed last a compact digest sends in full (`recent`):
#: an owner's own, a previous owner's still arriving, a merge's. Each costs about 2 µs
#: a partition on the two sides.
RECENT = 4

_get, _set = dict.get, dict.__setitem__
_weights: dict[str, int] = {}
#: Weights kept: one per origin name seen, which is bounded by the vectors themselves;
#: the bound is for a node fed names that never repeat.
_WEIGHTS_KEPT = 1 << 16


def weight(origin: str) -> int:
    w = _weights.get(origin)
    if w is None:
        if len(_weights) >= _WEIGHTS_KEPT:
            _weights.clear()
        w = _weights[origin] = (mmh3.hash128(origin) & MASK64) | 1
    return w


def fingerprint_of(vector: Mapping[str, int] | Iterable[tuple[str, int]], start: int = 0) -> int:
    """The fingerprint of any origin -> seq mapping or (origin, seq) pairs (what
    OriginVector keeps up to date), plus `start` (a fingerprint of other origins)."""
    pairs = vector.items() if isinstance(vector, Mapping) else vector
    return (start + sum(weight(o) * s for o, s in pairs)) & MASK64


class OriginVector(dict[str, int]):
    """origin -> highest origin_seq applied. A dict for reading; entries are set one by
    one (`v[origin] = seq`), the only change a vector takes (the others raise).

    A set notes the origin's seq from before (once until the fingerprint is next
    read), and reading the fingerprint takes in what changed: a set runs per record on
    the owner, on the replicas and in a replay, and moving the sum at each set cost it
    350 ns more than a dict's; noting costs 120 to 200."""

    __slots__ = ("_summed", "_before", "_recent")

    def __init__(self, items: Mapping[str, int] | Iterable[tuple[str, int]] = ()) -> None:
        super().__init__(items)  # dict's own: not through __setitem__
        #: The fingerprint of the vector but the changes in _before.
        self._summed = fingerprint_of(self)
        #: origin -> its seq when _summed was taken, for each origin set since then.
        self._before: dict[str, int] = {}
        #: The origins that changed lately, the latest first (for a new vector, its last).
        self._recent = list(self)[-RECENT:][::-1]

    def __setitem__(self, origin: str, seq: int) -> None:
        before = self._before
        if origin not in before:
            before[origin] = _get(self, origin, 0)
        _set(self, origin, seq)

    def _take_in(self) -> None:
        before = self._before
        summed = self._summed
        for o, s in before.items():
            summed += weight(o) * (_get(self, o) - s)
        self._summed = summed & MASK64
        # The last RECENT set, the first set last, then the earlier ones: in O(RECENT),
        # as a vector whose every origin was set since it was last read can be long.
        changed = list(before)[-RECENT:]
        changed.reverse()
        if len(changed) < RECENT:
            changed += [o for o in self._recent if o not in before][:RECENT - len(changed)]
        self._recent = changed
        before.clear()

    @property
    def fingerprint(self) -> int:
        if self._before:
            self._take_in()
        return self._summed

    @property
    def recent(self) -> list[str]:
        """Up to RECENT origins that changed lately: those set since the fingerprint was
        last read, the first set last, then those of the reads before."""
        if self._before:
            self._take_in()
        return list(self._recent)

    def compact(self) -> tuple[int, list[tuple[str, int]]]:
        """What a compact digest sends: the fingerprint of the rest, and the entries of
        the origins that changed lately (of a vector of up to RECENT origins, all)."""
        if self._before:
            self._take_in()
        return self.rest(self._recent), [(o, _get(self, o)) for o in self._recent]

    def rest(self, origins: Iterable[str]) -> int:
        """The fingerprint of this vector without `origins` (an origin it lacks counts 0)."""
        rest = self.fingerprint
        for o in origins:
            rest -= weight(o) * _get(self, o, 0)
        return rest & MASK64

    def __reduce__(self) -> tuple[type, tuple[dict[str, int]]]:
        # copy, deepcopy and pickle make a new vector from the entries (by default they
        # would share or skip the fields that keep the fingerprint).
        return OriginVector, (dict(self),)

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("an origin vector's entries are set one by one (v[origin] = seq)")

    __delitem__ = pop = popitem = clear = update = setdefault = __ior__ = _refuse  # type: ignore[assignment]

"""A list that counts what is read from it: for tests that a lookup bisects (reads about
log2(n) items) rather than walks every item before the one it wants."""

from __future__ import annotations

from typing import Any


class CountingList(list):
    """Counts item reads in `reads`; iterating it from its start fails the test."""

    reads = 0

    def __getitem__(self, i: Any) -> Any:
        self.reads += 1
        return super().__getitem__(i)

    def __iter__(self):
        raise AssertionError("the whole list was walked")

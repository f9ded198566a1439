import pytest
from hypothesis import given
from hypothesis import strategies as st

from fero.lineage import divergence, lineage_at

from .reads import CountingList


@pytest.mark.parametrize(
    "a, a_end, b, b_end, expected",
    [
        ([], 0, [], 0, 0),
        ([(1, "A", 0)], 10, [(1, "A", 0)], 10, 10),
        ([(1, "A", 0)], 10, [(1, "A", 0)], 4, 4),                      # b is behind
        ([(1, "A", 0), (2, "B", 6)], 9, [(1, "A", 0)], 8, 6),          # b kept writing A past 6
        ([(1, "A", 0), (2, "B", 6)], 9, [(1, "A", 0), (2, "C", 6)], 9, 6),  # same epoch, other owner
        ([(1, "A", 0), (2, "B", 6)], 9, [(1, "A", 0), (2, "B", 6), (3, "C", 8)], 12, 8),
        ([(1, "A", 0)], 5, [(2, "B", 0)], 5, 0),                         # nothing in common
        ([(1, "A", 0), (3, "A", 4)], 7, [(1, "A", 0), (2, "B", 4)], 7, 4),  # A restarted, lost its tail
    ],
)
def test_divergence_table(a, a_end, b, b_end, expected):
    assert divergence(a, a_end, b, b_end) == expected
    assert divergence(b, b_end, a, a_end) == expected


def test_lineage_at():
    e = [(1, "A", 0), (2, "B", 5)]
    assert lineage_at(e, 0) == (1, "A") and lineage_at(e, 4) == (1, "A") and lineage_at(e, 5) == (2, "B")
    assert lineage_at([(1, "A", 3)], 2) is None


@st.composite
def two_logs(draw):
    """A common history, then each copy appends lineages of its own."""
    common = []
    offset = 0
    for i in range(draw(st.integers(0, 3))):
        common.append((i + 1, draw(st.sampled_from("AB")), offset))
        offset += draw(st.integers(1, 5))
    split = offset if common else 0
    # Either copy may not have all of the common part.
    logs = []
    for side in "XY":
        epochs, off = list(common), split
        cut = draw(st.integers(0, split)) if split else 0
        if draw(st.booleans()) and common:
            epochs = [e for e in common if e[2] < cut] or common[:1]
            off = max(cut, epochs[-1][2] + 1) if epochs else 0
            logs.append((epochs, min(off, split)))
            continue
        for j in range(draw(st.integers(0, 2))):
            epochs.append((10 + j, side, off))
            off += draw(st.integers(1, 5))
        logs.append((epochs, off))
    return common, split, logs


@given(two_logs())
def test_divergence_equals_a_record_by_record_comparison(data):
    _, _, ((a, a_end), (b, b_end)) = data

    def records(epochs, end):
        return [lineage_at(epochs, x) for x in range(end)]

    ra, rb = records(a, a_end), records(b, b_end)
    simple = 0
    while simple < min(len(ra), len(rb)) and ra[simple] == rb[simple] and ra[simple] is not None:
        simple += 1
    assert divergence(a, a_end, b, b_end) == simple


def _lineage_at_by_scan(epochs, offset):
    """lineage_at as it was, a scan from the oldest: the reference it must agree with."""
    found = None
    for epoch, owner, start in epochs:
        if start > offset:
            break
        found = (epoch, owner)
    return found


@st.composite
def lineages_and_offsets(draw):
    """Lineages with start offsets that never decrease, several often at the same offset
    (an owner that committed nothing before the next took over), and offsets around
    them: before the first, at and between starts, past the last."""
    epochs, start = [], draw(st.integers(0, 3))
    for epoch in range(draw(st.integers(0, 12))):
        start += draw(st.sampled_from([0, 0, 1, 2, 5]))
        epochs.append((epoch + draw(st.integers(0, 1)), draw(st.sampled_from("ABC")), start))
    end = start + 3
    offsets = draw(st.lists(st.integers(-2, end), max_size=30))
    return epochs, sorted(set(offsets) | {-1, 0, end} | {s for *_, s in epochs} | {s - 1 for *_, s in epochs})


@given(lineages_and_offsets())
def test_lineage_at_agrees_with_a_scan_from_the_oldest(data):
    epochs, offsets = data
    for offset in offsets:
        assert lineage_at(epochs, offset) == _lineage_at_by_scan(epochs, offset), (epochs, offset)


def test_lineage_at_reads_a_few_lineages_however_many_there_are():
    """It runs once per replicated frame, on the owner and on each replica: it reads the
    newest lineage, or about log2(lineages) of them, not all from the oldest."""
    n = 1000
    epochs = CountingList((i // 2, "AB"[i % 2], (i // 3) * 10) for i in range(n))
    reads = {}
    for offset in (-1, 0, 15, 5000, epochs[-1][2] - 1, epochs[-1][2], 10**9):
        epochs.reads = 0
        assert lineage_at(epochs, offset) == _lineage_at_by_scan(list.__iter__(epochs), offset)
        reads[offset] = epochs.reads
    assert reads[10**9] <= 2, reads  # an appended frame: the newest lineage
    assert all(r <= 15 for r in reads.values()), reads  # log2(1000) is 10

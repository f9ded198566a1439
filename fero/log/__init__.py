"""Storage: the node's write-ahead log and snapshots.

    frame.py     length + CRC framing of one log record (a committed batch)
    segment.py   one append-only segment file; recovery scan that finds a torn tail
    wal.py       the segmented log: group commit, fsync policy, retention, read-back
    memory.py    the same interface in memory, for tests and `--memory`
    snapshot.py  snapshots of the materialised state, so restart time stays bounded

Every partition's log is a sequence of offsets 0, 1, 2, ...; physically the frames of
all partitions share one segmented log per node, so one group commit costs one write and
one fsync however many partitions a batch touched (see wal.py for why).
"""

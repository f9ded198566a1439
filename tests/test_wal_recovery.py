"""Property: any sequence of appends, truncations at arbitrary byte offsets and
reopenings recovers exactly the acknowledged prefix that the bytes still hold.

The model knows where every acknowledged frame sits (segment, position, length). A
truncation of the newest segment at byte X keeps exactly the frames that end at or
before X; garbage appended to the tail (a torn write) keeps all of them. After every
reopen, recovery must return exactly the kept frames, in order, and later appends
must land after them.
"""

import asyncio

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fero.log import frame, segment
from fero.log.wal import Wal


class WalMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        import tempfile

        self._tmp = tempfile.TemporaryDirectory()
        self.dir = __import__("pathlib").Path(self._tmp.name)
        self.loop = asyncio.new_event_loop()
        self.frames: list[tuple[int, int, bytes]] = []  # acknowledged and still on disk
        self.wal = None
        self._open()

    def _open(self):
        self.wal = Wal(self.dir, fsync="never", segment_bytes=1024)
        self.recovered = [b for _, _, b in self.wal.recover()]
        self.loop.run_until_complete(self._start())

    async def _start(self):
        self.wal.start()

    def _close(self):
        self.loop.run_until_complete(self.wal.close())

    @rule(bodies=st.lists(st.binary(max_size=300), min_size=1, max_size=8))
    def append(self, bodies):
        async def go():
            locs = [self.wal.append(b) for b in bodies]
            await self.wal.wait(locs[-1].seq)
            return locs

        for loc, body in zip(self.loop.run_until_complete(go()), bodies):
            self.frames.append((loc.segment, loc.position, body))

    @rule(cut=st.floats(min_value=0.0, max_value=1.0))
    def truncate_newest_and_reopen(self, cut):
        self._close()
        newest = segment.list_ids(self.dir)[-1]
        p = segment.path_for(self.dir, newest)
        size = p.stat().st_size
        at = int(size * cut)
        with open(p, "r+b") as f:
            f.truncate(at)
        self.frames = [
            (s, pos, b) for s, pos, b in self.frames
            if s < newest or pos + frame.HEADER_SIZE + len(b) <= at
        ]
        self._open()
        assert self.recovered == [b for _, _, b in self.frames]

    @rule(garbage=st.binary(min_size=1, max_size=40))
    def torn_tail_and_reopen(self, garbage):
        self._close()
        newest = segment.list_ids(self.dir)[-1]
        with open(segment.path_for(self.dir, newest), "ab") as f:
            f.write(garbage)
        self._open()
        assert self.recovered == [b for _, _, b in self.frames]

    @rule()
    def reopen(self):
        self._close()
        self._open()
        assert self.recovered == [b for _, _, b in self.frames]

    @precondition(lambda self: self.frames)
    @invariant()
    def every_kept_frame_reads_back(self):
        s, pos, body = self.frames[-1]
        assert self.wal.read(s, pos) == body

    def teardown(self):
        self._close()
        self.loop.close()
        self._tmp.cleanup()


TestWalRecovery = WalMachine.TestCase
TestWalRecovery.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

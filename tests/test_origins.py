"""Origin vectors' fingerprints, and the compact digests anti-entropy compares by them."""

import asyncio
import random

import pytest

from fero import values
from fero.config import Config
from fero.engine import Engine
from fero.handoff import Ownership
from fero.clock import ManualClock
from fero.origins import MASK64, RECENT, OriginVector, fingerprint_of, weight
from fero.partition import PartitionState
from fero.v1 import peer_pb2, types_pb2


def test_the_fingerprint_follows_every_change_and_rest_leaves_out_what_it_is_asked_to():
    rng = random.Random(7)
    names = [f"n{i % 3}/{1_700_000_000_000 + i}" for i in range(40)]
    v = OriginVector()
    plain: dict[str, int] = {}
    for step in range(3000):
        o = rng.choice(names)
        seq = plain.get(o, 0) + rng.choice([1, 1, 2, 1000, 1 << 40])
        v[o] = seq
        plain[o] = seq
        assert v.fingerprint == fingerprint_of(plain), step
        left_out = rng.sample(names, rng.randint(0, 6))
        assert v.rest(left_out) == fingerprint_of({o: s for o, s in plain.items() if o not in left_out}), step
    assert dict(v) == plain
    assert OriginVector(plain).fingerprint == v.fingerprint
    assert OriginVector(plain.items()).fingerprint == v.fingerprint


def test_vectors_that_differ_in_one_origin_always_have_different_fingerprints():
    rng = random.Random(11)
    for _ in range(2000):
        base = {f"o{i}": rng.randint(0, 1 << 62) for i in range(rng.randint(1, 30))}
        o = rng.choice(list(base))
        other = dict(base)
        other[o] = rng.choice([base[o] + 1, base[o] + rng.randint(1, 1 << 63), 0 if base[o] else 1])
        assert fingerprint_of(base) != fingerprint_of(other), (o, base[o], other[o])
    # The reason: every weight is odd, so weight * d is never 0 modulo 2**64 for 0 < d < 2**64.
    assert all(weight(f"o{i}") & 1 for i in range(1000))
    assert (weight("o1") * (1 << 63)) & MASK64 != 0


def test_recent_lists_the_origins_that_changed_lately():
    v = OriginVector()
    for o, s in [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("d", 1), ("e", 1), ("a", 3), ("a", 4)]:
        v[o] = s
    # Set since the last look: the first set last (a set again costs nothing more).
    assert v.recent == ["e", "d", "c", "b"]
    v["c"] = 2
    v["f"] = 1
    assert v.recent == ["f", "c", "e", "d"]
    for i in range(2 * RECENT):
        v[f"x{i}"] = 1
    assert v.recent == [f"x{i}" for i in range(2 * RECENT)][::-1][:RECENT]
    assert v.fingerprint == fingerprint_of(dict(v))


def test_a_vector_refuses_the_changes_that_would_bypass_its_fingerprint():
    v = OriginVector({"a": 3})
    for change in (lambda: v.pop("a"), lambda: v.update(b=1), lambda: v.setdefault("b", 1), v.clear, v.popitem,
                   lambda: v.__delitem__("a")):
        with pytest.raises(TypeError):
            change()
    with pytest.raises(TypeError):
        v |= {"b": 1}
    assert dict(v) == {"a": 3} and v.fingerprint == fingerprint_of({"a": 3})


def test_a_partition_keeps_its_fingerprint_through_records_batches_and_a_snapshot():
    state = PartitionState(5)
    for seq in range(1, 4):
        rec = types_pb2.Record(key="c", op=types_pb2.OP_COUNTER_ADD, amount=values.number_of(1), ticket=f"t{seq}",
                               origin="n1/1", origin_seq=seq)
        state.apply(rec, state.next_offset)
        state.next_offset += 1
    batch = types_pb2.Batch(op=types_pb2.OP_COUNTER_ADD, keys=["x", "y"], amounts=[1, 2], ticket="b1",
                            origin="n2/9", origin_seq=1, hlc=1)
    state.apply_batch(batch, state.next_offset)
    assert dict(state.origins) == {"n1/1": 3, "n2/9": 2}
    assert state.origins.fingerprint == fingerprint_of({"n1/1": 3, "n2/9": 2})
    restored = PartitionState(5)
    restored.load_snapshot(state.to_snapshot())
    assert isinstance(restored.origins, OriginVector)
    assert restored.origins.fingerprint == state.origins.fingerprint


# -- compact digests and the comparison anti-entropy makes with them ------------------


def _engine(node_id: str) -> Engine:
    e = Engine(Config().validate(), ManualClock(), node_id, None)
    e.open()
    return e


class _Peer:
    """A Digest stub answering from another engine, as Node.digests does; `old`: a
    node from before compact digests, which ignores the request's flag."""

    def __init__(self, engine: Engine, old: bool = False) -> None:
        self.engine, self.old, self.requests = engine, old, []

    async def Digest(self, request: peer_pb2.DigestRequest, timeout: float) -> peer_pb2.DigestReply:
        self.requests.append(request)
        compact = request.compact and not self.old
        return peer_pb2.DigestReply(digests=[self.engine.digest(p, compact) for p in request.partitions])


class _Transport:
    def __init__(self, peers: dict[str, "_Peer"]) -> None:
        self.peers = peers

    def stub(self, address: str) -> "_Peer":
        return self.peers[address]


def _ownership(engine: Engine, peers: dict[str, "_Peer"] | None = None) -> Ownership:
    return Ownership(engine, engine.node_id, 3, _Transport(peers or {}), None,  # type: ignore[arg-type]
                     lambda node: f"{node}:1", lambda: [])


HISTORY = [f"n{i % 3}/{1_700_000_000_000 + i}" for i in range(50)]  # old incarnations, all done


def _vectors(peer: Engine, mine: Engine, p: int) -> None:
    """Both copies hold the same long history; then the peer's owner writes on."""
    for o in HISTORY:
        peer.partitions[p].origins[o] = mine.partitions[p].origins[o] = 10
    peer.partitions[p].origins["n0/now"] = 500
    mine.partitions[p].origins["n0/now"] = 500
    # As after an anti-entropy round: the peer's latest changes are now its history.
    assert peer.partitions[p].origins.fingerprint == mine.partitions[p].origins.fingerprint


@pytest.mark.parametrize("old", [False, True])
def test_compact_digests_find_what_a_peer_holds_beyond_this_copy(old):
    """Each case: what this node lacks, whether anti-entropy finds it, and in how many
    requests (compact digests decide in one unless more than the latest few origins
    differ; a node from before them answers in full, and that decides too)."""

    def run(change_peer, change_mine=lambda s: None):
        peer, mine = _engine("peer"), _engine("me")
        for p in (3, 4):
            _vectors(peer, mine, p)
        change_peer(peer.partitions[3])
        change_mine(mine.partitions[3])
        stub = _Peer(peer, old)
        found = asyncio.run(_ownership(mine, {"peer:1": stub})._beyond_ours("peer:1", [3, 4]))
        return [d.partition for d in found], len(stub.requests)

    def ahead_in(o, by=1):
        return lambda s: s.origins.__setitem__(o, s.origins.get(o, 0) + by)

    # The same everywhere: nothing, in one request.
    assert run(lambda s: None) == ([], 1)
    # The owner wrote on (its origin is among the latest changed): found in one request.
    assert run(ahead_in("n0/now")) == ([3], 1)
    # This copy is the one ahead: nothing to take.
    assert run(lambda s: None, ahead_in("n0/now", 7)) == ([], 1)
    # An old origin's record that this copy lacks, behind RECENT later changes at the
    # peer: the fingerprints differ, and the full digest finds it.
    def old_gap(s):
        s.origins[HISTORY[0]] = 11
        for o in HISTORY[1:1 + RECENT]:
            s.origins[o] = 10  # touched again, same seq: they are the latest changed now
    assert run(old_gap) == ([3], 1 if old else 2)
    # An origin this copy never saw, behind later changes: also found.
    def unseen(s):
        s.origins["n9/1"] = 1
        for o in HISTORY[:RECENT]:
            s.origins[o] = 10
    assert run(unseen) == ([3], 1 if old else 2)
    # Both differ, each ahead in another old origin: the peer's is found.
    def mine_ahead_elsewhere(s):
        s.origins[HISTORY[7]] = 12
    assert run(old_gap, mine_ahead_elsewhere) == ([3], 1 if old else 2)


def test_a_compact_digest_is_small_and_stands_for_the_whole_vector():
    e = _engine("n0")
    state = e.partitions[9]
    for o in HISTORY:
        state.origins[o] = 10
    state.epochs.append((1, "n0", 0))
    full, compact = e.digest(9), e.digest(9, compact=True)
    assert len(full.origins) == len(HISTORY) and not full.compact
    assert compact.compact and not compact.epochs
    assert [o.origin for o in compact.origins] == HISTORY[::-1][:RECENT]
    assert all(o.seq == state.origins[o.origin] for o in compact.origins)
    assert compact.rest_fingerprint == fingerprint_of({o: s for o, s in state.origins.items()
                                                       if o not in HISTORY[-RECENT:]})
    assert (compact.partition, compact.epoch, compact.next_offset) == (full.partition, full.epoch, full.next_offset)
    assert compact.ByteSize() * 5 < full.ByteSize()


def test_compact_digests_over_grpc_between_two_real_nodes():
    """The flag and the fields cross the wire: a real node answers a compact request
    compactly, and anti-entropy's comparison finds an old origin's gap through it."""
    from tests.conftest import running_node

    async def main():
        async with running_node(name="a") as a, running_node(name="b") as b:
            p = 17
            _vectors(b.engine, a.engine, p)
            stub = a.transport.stub(b.address)
            reply = await stub.Digest(peer_pb2.DigestRequest(partitions=[p], compact=True), timeout=5)
            compact = reply.digests[0]
            assert compact.compact and compact.rest_fingerprint == b.engine.partitions[p].origins.rest(
                [o.origin for o in compact.origins])
            assert await a.ownership._beyond_ours(b.address, [p]) == []
            b.engine.partitions[p].origins[HISTORY[0]] = 11
            for o in HISTORY[1:1 + RECENT]:
                b.engine.partitions[p].origins[o] = 10
            found = await a.ownership._beyond_ours(b.address, [p])
            assert [d.partition for d in found] == [p] and not found[0].compact

    asyncio.run(main())


def test_a_peer_that_stays_behind_is_compared_in_full_once_while_its_vector_stays_the_same():
    """A stale copy (a former owner, a node outside the preference list) differs from
    ours outside its latest origins for good: one full comparison, then compact
    digests alone while its vector is unchanged; a change there, or a new vector here
    (an install), compares in full again."""
    peer, mine = _engine("peer"), _engine("me")
    _vectors(peer, mine, 3)
    for o in HISTORY[:RECENT + 1]:  # this copy moved on, in more origins than a compact digest names
        mine.partitions[3].origins[o] = 20
    stub = _Peer(peer)
    me = _ownership(mine, {"peer:1": stub})

    def round_() -> tuple[list[int], int]:
        before = len(stub.requests)
        found = asyncio.run(me._beyond_ours("peer:1", [3]))
        return [d.partition for d in found], len(stub.requests) - before

    assert round_() == ([], 2)
    assert round_() == ([], 1)
    mine.partitions[3].origins["n0/now"] = 900  # ours rising keeps what was shown
    assert round_() == ([], 1)
    peer.partitions[3].origins[HISTORY[40]] = 11  # the peer gains a record this copy lacks
    for o in HISTORY[41:41 + RECENT]:
        peer.partitions[3].origins[o] = 10
    assert round_() == ([3], 2)
    peer2, mine2 = _engine("peer"), _engine("me")
    _vectors(peer2, mine2, 3)
    for o in HISTORY[:RECENT + 1]:
        mine2.partitions[3].origins[o] = 20
    stub2 = _Peer(peer2)
    me2 = _ownership(mine2, {"peer:1": stub2})
    assert asyncio.run(me2._beyond_ours("peer:1", [3])) == [] and len(stub2.requests) == 2
    mine2.partitions[3].load_snapshot(mine2.partitions[3].to_snapshot())  # another vector object
    assert asyncio.run(me2._beyond_ours("peer:1", [3])) == [] and len(stub2.requests) == 4


def test_a_failed_full_request_keeps_what_the_compact_one_found():
    import grpc

    class Failing(_Peer):
        async def Digest(self, request, timeout):
            if not request.compact:
                raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata())
            return await super().Digest(request, timeout)

    peer, mine = _engine("peer"), _engine("me")
    for p in (3, 4):
        _vectors(peer, mine, p)
    peer.partitions[3].origins["n0/now"] = 501  # found by the compact digest
    peer.partitions[4].origins[HISTORY[0]] = 11  # needs the full one
    for o in HISTORY[1:1 + RECENT]:
        peer.partitions[4].origins[o] = 10
    found = asyncio.run(_ownership(mine, {"peer:1": Failing(peer)})._beyond_ours("peer:1", [3, 4]))
    assert [d.partition for d in found] == [3]


def test_a_replica_whose_log_caught_up_takes_the_records_its_state_lacks_from_the_owner():
    """_repair_replicas: only for a log that has caught up (a log behind gets them by
    replication), and only the records beyond the replica's vector."""
    owner, replica = _engine("owner"), _engine("replica")
    key = "ctr"
    p = owner.partition_for(key)

    async def main():
        owner.start()
        for i in range(5):
            await owner.commit([types_pb2.Record(key=key, op=types_pb2.OP_COUNTER_ADD,
                                                 amount=values.number_of(i + 1), ticket=f"t{i}")],
                               types_pb2.ACKS_LEADER)
        # The replica holds the log's first record in its state, and the log as far as
        # the owner's (the rest of its records met before the run they continue).
        first = owner.frames_from(p, 0, 1)[0]
        replica.partitions[p].apply(first.records[0], 0)
        replica.partitions[p].next_offset = owner.partitions[p].next_offset - 1

        class OwnerStub(_Peer):
            fetched = 0

            async def Fetch(self, request, timeout):
                OwnerStub.fetched += 1
                have = {o.origin: o.seq for o in request.beyond.origins}
                records, more = self.engine.records_beyond(request.partition, have, request.max_records)
                return peer_pb2.FetchReply(records=records, more=more)

        me = _ownership(replica, {"owner:1": OwnerStub(owner)})
        me.preference[p] = ["owner", "replica"]
        await me._repair_replicas()  # its log is behind: replication brings the rest
        behind = (OwnerStub.fetched, replica.partitions[p].peek(key).value)
        replica.partitions[p].next_offset = owner.partitions[p].next_offset
        await me._repair_replicas()
        await owner.close()
        return behind, OwnerStub.fetched, replica.partitions[p].peek(key).value, owner.partitions[p].peek(key).value

    behind, fetched, got, want = asyncio.run(main())
    assert behind == (0, 1)  # not fetched, and the state as it was
    assert fetched == 1 and got == want == 15
    assert dict(replica.partitions[p].origins) == dict(owner.partitions[p].origins)


def test_a_fetch_beyond_a_copy_names_its_whole_vector_and_an_empty_one_asks_for_everything():
    e = _engine("n0")
    empty = e.fetch_beyond(7)
    assert empty.partition == 7 and empty.max_records == 10_000
    # Set though empty: the request says it asks beyond a vector, not from an offset.
    assert empty.WhichOneof("what") == "beyond" and not empty.beyond.origins
    e.partitions[7].origins["n1/1"] = 4
    e.partitions[7].origins["n0/2"] = 9
    req = e.fetch_beyond(7, max_records=50)
    assert req.max_records == 50 and req.WhichOneof("what") == "beyond"
    assert {o.origin: o.seq for o in req.beyond.origins} == {"n1/1": 4, "n0/2": 9}


def test_copies_and_pickles_of_a_vector_are_vectors_of_their_own():
    import copy
    import pickle

    v = OriginVector({"a": 3})
    v["b"] = 2
    for c in (copy.copy(v), copy.deepcopy(v), pickle.loads(pickle.dumps(v))):
        assert type(c) is OriginVector and dict(c) == dict(v) and c.fingerprint == fingerprint_of(v)
        c["z"] = 1
        assert "z" not in v and v.fingerprint == fingerprint_of(v) and c.fingerprint == fingerprint_of(c)

"""fero.documents: key-path ops on JSON documents, merge patch, lazy raw bytes."""

from __future__ import annotations

import copy
import random
import json
from typing import Any, Callable

import pytest

from fero import documents
from fero.documents import Documents
from fero.errors import FailedPrecondition, InvalidArgument
from fero.v1 import types_pb2


def _docs(**initial: Any) -> Documents:
    d = Documents()
    for k, v in initial.items():
        d.update(k, json.dumps(v).encode(), hlc=1)
    return d


def _read(d: Documents, key: str) -> Any:
    raw = d.read(key)
    return None if raw is None else json.loads(raw)


def _j(v: Any) -> bytes:
    return json.dumps(v).encode()


# Each case: initial documents, one op, then the expected value of document "a".
OPS: list[tuple[str, dict, Callable[[Documents], Any], Any]] = [
    ("update leaf", {"a": {"x": 1}}, lambda d: d.update("a.x", _j(2), 5), {"x": 2}),
    ("update creates intermediates", {}, lambda d: d.update("a.b.c.d", _j("v"), 5), {"b": {"c": {"d": "v"}}}),
    ("update under existing", {"a": {"b": {"k": 1}}}, lambda d: d.update("a.b.c", _j([1]), 5), {"b": {"k": 1, "c": [1]}}),
    ("update replaces an object", {"a": {"b": {"k": 1}}}, lambda d: d.update("a.b", _j(3), 5), {"b": 3}),
    ("update on a null doc", {"a": None}, lambda d: d.update("a.b", _j(1), 5), {"b": 1}),
    ("remove leaf", {"a": {"x": 1, "y": 2}}, lambda d: d.remove("a.x", 5), {"y": 2}),
    ("remove nested", {"a": {"b": {"c": 1, "d": 2}}}, lambda d: d.remove("a.b.c", 5), {"b": {"d": 2}}),
    ("remove absent is a no-op", {"a": {"x": 1}}, lambda d: d.remove("a.q.r", 5), {"x": 1}),
    ("remove through a number is a no-op", {"a": {"x": 1}}, lambda d: d.remove("a.x.y", 5), {"x": 1}),
    ("add to missing", {}, lambda d: d.add("a.n", 5, 5), {"n": 5}),
    ("add nested creates", {"a": {}}, lambda d: d.add("a.b.c", -2, 5), {"b": {"c": -2}}),
    ("add to existing", {"a": {"n": 10}}, lambda d: d.add("a.n", 2**70, 5), {"n": 10 + 2**70}),
    ("add to null", {"a": {"n": None}}, lambda d: d.add("a.n", 1, 5), {"n": 1}),
    ("push creates list", {}, lambda d: d.push("a.l", _j({"k": 1}), 5), {"l": [{"k": 1}]}),
    ("push appends", {"a": {"l": [1]}}, lambda d: d.push("a.l", _j(2), 5), {"l": [1, 2]}),
    ("push nested creates", {"a": {"x": 0}}, lambda d: d.push("a.b.l", _j("s"), 5), {"x": 0, "b": {"l": ["s"]}}),
    ("push bare key", {"a": [1]}, lambda d: d.push("a", _j(2), 5), [1, 2]),
    ("patch merges", {"a": {"x": 1, "y": 2}}, lambda d: d.patch("a", _j({"y": None, "z": 3}), 5), {"x": 1, "z": 3}),
    ("patch at path", {"a": {"p": {"q": 1}}}, lambda d: d.patch("a.p", _j({"r": 2}), 5), {"p": {"q": 1, "r": 2}}),
    ("patch creates", {}, lambda d: d.patch("a.p.q", _j({"r": 2}), 5), {"p": {"q": {"r": 2}}}),
]


@pytest.mark.parametrize("name, initial, op, expected", OPS, ids=[c[0] for c in OPS])
def test_ops(name: str, initial: dict, op: Callable[[Documents], Any], expected: Any) -> None:
    d = _docs(**initial)
    op(d)
    assert _read(d, "a") == expected
    assert d.docs["a"].hlc == (1 if "no-op" in name else 5)


def test_add_returns_new_value() -> None:
    d = _docs(a={"n": 40})
    assert d.add("a.n", 2, 2) == 42
    assert d.add("a.n", -50, 3) == -8


# Each case: initial documents, an op that must fail, the error class, a word of its message.
FAILS: list[tuple[str, dict, Callable[[Documents], Any], type, str]] = [
    ("push onto number", {"a": {"n": 1}}, lambda d: d.push("a.n", _j(2), 9), FailedPrecondition, "not a list"),
    ("push onto object", {"a": {"o": {}}}, lambda d: d.push("a.o", _j(2), 9), FailedPrecondition, "not a list"),
    ("add to string", {"a": {"s": "x"}}, lambda d: d.add("a.s", 1, 9), FailedPrecondition, "not a number"),
    ("add to bool", {"a": {"b": True}}, lambda d: d.add("a.b", 1, 9), FailedPrecondition, "not a number"),
    ("add to list", {"a": {"l": []}}, lambda d: d.add("a.l", 1, 9), FailedPrecondition, "not a number"),
    ("add to float is not exact", {"a": {"f": 1.5}}, lambda d: d.add("a.f", 1, 9), FailedPrecondition, "integer"),
    ("path through a number", {"a": {"n": 1}}, lambda d: d.update("a.n.x", _j(1), 9), FailedPrecondition, "a.n"),
    ("path through a list", {"a": {"l": [1]}}, lambda d: d.add("a.l.x.y", 1, 9), FailedPrecondition, "a list"),
    ("deep path through a string", {"a": {"b": {"c": "s"}}}, lambda d: d.push("a.b.c.d.e", _j(1), 9), FailedPrecondition, "a.b.c"),
    ("root not an object", {"a": [1, 2]}, lambda d: d.update("a.x", _j(1), 9), FailedPrecondition, "not an object"),
    ("bad json update", {"a": {"x": 1}}, lambda d: d.update("a.x", b"{nope", 9), InvalidArgument, "not valid JSON"),
    ("bad json push", {"a": {"l": []}}, lambda d: d.push("a.l", b"\xff", 9), InvalidArgument, "not valid JSON"),
    ("bad json patch", {"a": {"x": 1}}, lambda d: d.patch("a", b"{", 9), InvalidArgument, "not valid JSON"),
    ("empty segment", {"a": {"x": 1}}, lambda d: d.update("a..x", _j(1), 9), InvalidArgument, "empty segment"),
    ("trailing dot", {"a": {"x": 1}}, lambda d: d.add("a.x.", 1, 9), InvalidArgument, "empty segment"),
    ("too deep", {"a": {"x": 1}}, lambda d: d.update("a" + ".x" * documents.MAX_PATH_DEPTH, _j(1), 9), InvalidArgument, "deeper"),
]


@pytest.mark.parametrize("name, initial, op, error, says", FAILS, ids=[c[0] for c in FAILS])
def test_failures_leave_the_document_unchanged(name: str, initial: dict, op: Callable, error: type, says: str) -> None:
    d = _docs(**initial)
    before = copy.deepcopy(_read(d, "a"))
    with pytest.raises(error) as info:
        op(d)
    assert says in info.value.message
    assert _read(d, "a") == before
    assert d.docs["a"].hlc == 1
    assert list(d.docs) == ["a"]


def test_failure_on_missing_document_creates_nothing() -> None:
    d = Documents()
    with pytest.raises(InvalidArgument):
        d.update("a.b.c", b"not json", 1)
    assert len(d) == 0 and d.read("a") is None


# RFC 7386, Appendix A, every example.
RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize("target, patch, expected", RFC7386)
def test_merge_patch_rfc7386(target: Any, patch: Any, expected: Any) -> None:
    assert documents.merge_patch(copy.deepcopy(target), copy.deepcopy(patch)) == expected
    d = _docs(doc=target)
    d.patch("doc", _j(patch), 2)
    assert _read(d, "doc") == expected


def test_bare_key_update_keeps_raw_bytes_lazily() -> None:
    d = Documents()
    raw = b'{ "a" :  1,"b":[ 2 ] }'  # spacing a re-encoding would not keep
    d.update("k", raw, 3)
    assert d.read("k") == raw  # the exact bytes, never decoded
    assert d.docs["k"]._value is documents._MISSING
    assert json.loads(d.read("k.b")) == [2]  # a deeper read decodes


def test_bare_key_update_accepts_opaque_bytes() -> None:
    d = Documents()
    d.update("blob", b"\x00\xffnot json", 1)
    assert d.read("blob") == b"\x00\xffnot json"
    with pytest.raises(FailedPrecondition) as info:
        d.update("blob.x", b"1", 2)
    assert "not JSON" in info.value.message
    assert d.read("blob") == b"\x00\xffnot json"
    d.update("blob", b"[]", 3)  # the whole key can still be replaced
    d.push("blob", b"1", 4)
    assert _read(d, "blob") == [1]


@pytest.mark.parametrize(
    "key, expected",
    [("a", {"b": {"c": [1]}}), ("a.b", {"c": [1]}), ("a.b.c", [1]), ("a.x", None), ("a.b.c.d", None), ("z", None), ("z.y", None)],
)
def test_read_paths(key: str, expected: Any) -> None:
    d = _docs(a={"b": {"c": [1]}})
    assert _read(d, key) == expected


@pytest.mark.parametrize("key, part", [("a", "a"), ("a.b.c", "a"), ("user.42.name", "user")])
def test_partition_key_is_first_segment(key: str, part: str) -> None:
    assert documents.partition_key(key) == part


def test_remove_bare_key() -> None:
    d = _docs(a={"x": 1}, b=2)
    d.remove("a", 2)
    assert d.read("a") is None and _read(d, "b") == 2
    d.remove("a", 3)  # absent: no-op
    assert len(d) == 1


# -- bulk UPDATE (update_many) keeps a batch's columns as one run ---------------------


def _model_apply(d: Documents, ops: list[tuple]) -> None:
    """The same changes one key at a time: what update_many must be equivalent to."""
    for op in ops:
        if op[0] == "many":
            _, keys, raws, hlc = op
            for k, (key, raw) in enumerate(zip(keys, raws)):
                d.update(key, raw, hlc + k, "o")
        elif op[0] == "one":
            _, key, raw, hlc = op
            d.update(key, raw, hlc, "p")
        else:
            _, key, hlc = op
            d.remove(key, hlc, "p")


def _bulk_apply(d: Documents, ops: list[tuple], as_bytes: bool = False) -> None:
    """`as_bytes`: each batch given as the owner gives it, its serialised Batch (values
    read from it only when needed)."""
    for op in ops:
        if op[0] == "many":
            _, keys, raws, hlc = op
            if as_bytes:
                whole = types_pb2.Batch(keys=keys, values=raws, hlc=hlc, origin="o").SerializeToString()
                done = d.update_many(list(keys), None, hlc, "o", whole)
            else:
                done = d.update_many(list(keys), list(raws), hlc, "o")
            if not done:
                for k, (key, raw) in enumerate(zip(keys, raws)):
                    d.update(key, raw, hlc + k, "o")
        elif op[0] == "one":
            d.update(op[1], op[2], op[3], "p")
        else:
            d.remove(op[1], op[2], "p")


def _random_ops(seed: int) -> list[tuple]:
    rng = random.Random(seed)
    ops: list[tuple] = []
    hlc = 100
    names = [f"k{i}" for i in range(40)]
    for _ in range(60):
        r = rng.random()
        if r < 0.5:
            n = rng.randint(1, 12)
            keys = [rng.choice(names) for _ in range(n)]
            ops.append(("many", keys, [_j(rng.randint(0, 9)) for _ in keys], hlc))
            hlc += n
        elif r < 0.85:
            # Sometimes stamped in the past: last-writer-wins must ignore it.
            ops.append(("one", rng.choice(names), _j(rng.random()), hlc + rng.randint(-30, 3)))
            hlc += 4
        else:
            ops.append(("remove", rng.choice(names), hlc + rng.randint(-30, 3)))
            hlc += 4
    return ops


@pytest.mark.parametrize("as_bytes", [False, True])
@pytest.mark.parametrize("seed", range(40))
def test_bulk_updates_equal_the_same_updates_one_by_one(seed: int, as_bytes: bool) -> None:
    ops = _random_ops(seed)
    model, bulk = Documents(), Documents()
    _model_apply(model, ops)
    _bulk_apply(bulk, ops, as_bytes)
    assert sorted(bulk.items()) == sorted(model.items())
    assert bulk.tombstones == model.tombstones
    # A snapshot of the bulk-built state loads back to the same documents.
    from fero.v1 import storage_pb2

    cols = storage_pb2.KeyColumns()
    bulk.to_columns(cols)
    loaded = Documents()
    loaded.from_columns(cols)
    assert sorted(loaded.items()) == sorted(model.items())


def test_a_bulk_batch_is_stored_as_one_run_with_each_records_stamp() -> None:
    d = Documents()
    keys = ["a", "b", "a", "c"]  # "a" twice: the later record wins, with its stamp
    assert d.update_many(keys, [b"1", b"2", b"3", b"4"], 10, "o")
    assert sorted(d.items()) == [("a", b"3", 12, "o"), ("b", b"2", 11, "o"), ("c", b"4", 13, "o")]
    runs = {id(v) for v in d.docs.values()}
    assert len(runs) == 1 and type(next(iter(d.docs.values()))) is documents._Run


def test_a_bulk_batch_sets_the_keys_already_there_by_their_stamps() -> None:
    d = Documents()
    assert d.update_many(["a", "b", "c", "d", "e"], [b"1", b"2", b"3", b"4", b"5"], 10, "o")
    d.update("c", b"30", 100, "p")  # newer than the next batch's record for "c"
    first = d.docs["a"]
    # "z" and "y" are new: they go into the new run. "b" is the first run's, and
    # older: the new record wins. "c" is newer than the new record: it stays.
    assert d.update_many(["z", "b", "c", "y"], [b"9", b"8", b"7", b"6"], 20, "o")
    assert sorted(d.items()) == [
        ("a", b"1", 10, "o"), ("b", b"8", 21, "o"), ("c", b"30", 100, "p"), ("d", b"4", 13, "o"),
        ("e", b"5", 14, "o"), ("y", b"6", 23, "o"), ("z", b"9", 20, "o"),
    ]
    run = d.docs["z"]
    assert run.__class__ is documents._Run and d.docs["y"] is run and run is not first and run.live == 2
    assert d.docs["a"] is first and first.live == 3  # "c" left it, then "b"
    # A key removed lately declines the bulk path, and nothing changes.
    d.remove("a", 200, "p")
    assert not d.update_many(["x", "a"], [b"5", b"5"], 30, "o")
    assert d.read("x") is None and d.read("a") is None


def test_a_mostly_overwritten_run_lets_go_of_its_columns() -> None:
    d = Documents()
    keys = [f"k{i}" for i in range(10)]
    d.update_many(keys, [_j(i) for i in range(10)], 100, "o")
    run = d.docs["k0"]
    for i in range(5):  # half overwritten: the rest still refer to the run
        d.update(f"k{i}", _j("new"), 200 + i)
    assert d.docs["k9"] is run
    d.update("k5", _j("new"), 300)  # fewer than half live: the rest become tuples
    assert all(v is not run for v in d.docs.values())
    assert [json.loads(d.read(f"k{i}")) for i in range(10)] == ["new"] * 6 + [6, 7, 8, 9]
    assert ("k9", _j(9), 109, "o") in list(d.items())


def test_one_key_repeated_in_a_batch_does_not_keep_the_batch() -> None:
    d = Documents()
    d.update_many(["k"] * 100, [_j(i) for i in range(100)], 1, "o")
    assert list(d.items()) == [("k", _j(99), 100, "o")]
    assert d.docs["k"].__class__ is tuple


def test_runs_go_into_a_snapshot_as_plain_columns_with_each_records_stamp() -> None:
    # The snapshot format is the one nodes without runs read and write (state transfer
    # between versions): a key, its value, its stamp and origin, in four columns.
    from fero.v1 import storage_pb2

    d = Documents()
    d.update_many(["a", "b", "c"], [b"1", b"2", b"3"], 10, "o")
    d.update_many(["d", "e"], [b"4", b"5"], 20, "o")
    d.update("b", b"22", 30, "p")  # b leaves the first run: that run goes key by key
    cols = storage_pb2.KeyColumns()
    d.to_columns(cols)
    assert sorted(zip(cols.keys, cols.values, cols.hlcs, cols.origins)) == [
        ("a", b"1", 10, "o"), ("b", b"22", 30, "p"), ("c", b"3", 12, "o"), ("d", b"4", 20, "o"), ("e", b"5", 21, "o"),
    ]
    assert cols.SerializeToString() == storage_pb2.KeyColumns(
        keys=cols.keys, values=cols.values, hlcs=cols.hlcs, origins=cols.origins
    ).SerializeToString()
    loaded = Documents()
    loaded.from_columns(cols)
    assert sorted(loaded.items()) == sorted(d.items())


def test_a_run_can_keep_a_messages_values_field_and_reads_it_only_on_demand() -> None:
    """update_many keeps the sequence it is given; the owner gives it the batch
    message's repeated values field. Reads, a spill and a snapshot (which takes a
    whole run's values as one chunk) all see the same bytes."""
    from fero.v1 import storage_pb2, types_pb2

    keys = [f"k{i}" for i in range(10)]
    msg = types_pb2.Batch(keys=keys, values=[_j(i) for i in range(10)])
    whole = types_pb2.Batch(keys=["w1", "w2"], values=[b"[1]", b"[2]"])
    d = Documents()
    assert d.update_many(list(msg.keys), msg.values, 100, "o")
    assert d.update_many(list(whole.keys), whole.values, 200, "o")
    assert d.read("k3") == _j(3) and type(d.read("k3")) is bytes
    for i in range(6):  # fewer than half left in the run: it spills into tuples
        d.update(f"k{i}", _j(f"new{i}"), 300 + i)
    assert d.docs["k9"] == (_j(9), 109, "o")
    cols = storage_pb2.KeyColumns()
    d.to_columns(cols)
    expected = sorted([(f"k{i}", _j(f"new{i}"), 300 + i, "") for i in range(6)]
                      + [(f"k{i}", _j(i), 100 + i, "o") for i in range(6, 10)]
                      + [("w1", b"[1]", 200, "o"), ("w2", b"[2]", 201, "o")])
    assert sorted(zip(cols.keys, cols.values, cols.hlcs, cols.origins)) == expected
    loaded = Documents()
    loaded.from_columns(cols)
    assert sorted(loaded.items()) == sorted(d.items()) == expected


def test_columns_give_whole_runs_as_their_batches_and_load_runs_reads_them_back() -> None:
    from fero.v1 import storage_pb2, types_pb2

    whole = types_pb2.Batch(keys=["a", "b"], values=[b"1", b"2"], hlc=10, origin="o", ticket="t1")
    touched = types_pb2.Batch(keys=["c", "d"], values=[b"3", b"4"], hlc=20, origin="o", ticket="t2")
    d = Documents()
    d.update_many(list(whole.keys), whole.values, whole.hlc, whole.origin, whole)
    d.update_many(list(touched.keys), touched.values, touched.hlc, touched.origin, touched)
    d.update_many(["e"], [b"5"], 30, "o")  # no batch: only ever as columns
    d.update("c", b"33", 40, "p")
    columns = d.columns(runs=True)
    assert columns[4] == [whole] and sorted(columns[0]) == ["c", "d", "e"]
    assert sorted(d.columns()[0]) == ["a", "b", "c", "d", "e"] and d.columns()[4] == []
    cols = storage_pb2.KeyColumns()
    documents.fill_columns(cols, columns)  # as a snapshot is written and read back
    loaded = Documents()
    loaded.from_columns(cols)
    loaded.load_runs(columns[4])
    assert sorted(loaded.items()) == sorted(d.items())
    assert loaded.docs["a"].__class__ is documents._Run
    # A run over documents already there (not a snapshot's): each as update() sets it,
    # the newer stamp winning.
    loaded.load_runs([types_pb2.Batch(keys=["a", "z"], values=[b"old", b"26"], hlc=5, origin="o")])
    assert loaded.read("a") == b"1" and loaded.read("z") == b"26"


# -- a cut (a node snapshot reads it in another thread) -----------------------------


def _apply_any(d: Documents, op: tuple, as_bytes: bool) -> None:
    kind = op[0]
    try:
        if kind in ("many", "one") or (kind == "remove" and "." not in op[1]):
            _bulk_apply(d, [op], as_bytes)
        elif kind == "remove":
            d.remove(op[1], op[2], "p")
        elif kind == "push":
            d.push(op[1], op[2], op[3], "p")
        elif kind == "add":
            d.add(op[1], op[2], op[3], "p")
        elif kind == "patch":
            d.patch(op[1], op[2], op[3], "p")
        else:
            d.update(op[1], op[2], op[3], "p")
    except FailedPrecondition:
        pass  # the same on both sides: a path through a value that is not an object


def _ops_at_paths(seed: int) -> list[tuple]:
    rng = random.Random(seed)
    names = [f"k{i}" for i in range(12)]
    ops: list[tuple] = []
    hlc = 100
    for _ in range(200):
        name, r = rng.choice(names), rng.random()
        if r < 0.2:
            keys = [rng.choice(names) for _ in range(rng.randint(1, 6))]
            ops.append(("many", keys, [_j({"a": {"b": i}, "l": []}) for i in range(len(keys))], hlc))
            hlc += len(keys)
            continue
        if r < 0.3:
            ops.append(("one", name, _j({"a": {"b": 0}, "l": [1]}), hlc))
        elif r < 0.45:
            ops.append(("push", f"{name}.l", _j(rng.randint(0, 9)), hlc))
        elif r < 0.6:
            ops.append(("add", f"{name}.a.n", rng.randint(1, 5), hlc))
        elif r < 0.7:
            ops.append(("patch", name, _j({"p": rng.randint(0, 9)}), hlc))
        elif r < 0.8:
            ops.append(("set", f"{name}.a.b", _j(rng.randint(0, 9)), hlc))
        elif r < 0.9:
            ops.append(("remove", f"{name}.a.b", hlc))
        else:
            ops.append(("remove", name, hlc))
        hlc += 1
    return ops


def _items_of(columns: documents.Columns) -> dict[str, tuple[bytes, int, str]]:
    keys, raws, hlcs, origins, whole = columns
    out = dict(zip(keys, zip([v for chunk in raws for v in chunk], hlcs, origins)))
    for b in whole:
        b = b if isinstance(b, types_pb2.Batch) else types_pb2.Batch.FromString(b)
        out.update((key, (b.values[k], b.hlc + k, b.origin)) for k, key in enumerate(b.keys))
    return out


@pytest.mark.parametrize("as_bytes", [False, True])
@pytest.mark.parametrize("seed", range(20))
def test_a_cut_gives_the_documents_as_they_were_whatever_changes_after(seed: int, as_bytes: bool) -> None:
    """A node snapshot takes Documents.cut() on the event loop and reads it into columns
    in its writer's thread while writes go on: changes at paths (push, add, patch, a
    nested set or remove) after the cut must not show in it, though they change a
    document's value in place. Checked against a second Documents given the same
    changes, read at the cut (reading the first there would encode its documents)."""
    d, model = Documents(), Documents()
    cuts = []
    for i, op in enumerate(_ops_at_paths(seed)):
        if i % 25 == 24:
            cuts.append((d.cut(), {k: (raw, hlc, origin) for k, raw, hlc, origin in model.items()}))
        _apply_any(d, op, as_bytes)
        _apply_any(model, op, as_bytes)
    assert sorted(d.items()) == sorted(model.items())
    for n, (cut, want) in enumerate(cuts):
        assert _items_of(documents.columns_of(cut, runs=True)) == want, f"cut {n}"


def test_removed_documents_leave_nothing_to_encode_at_the_next_cut() -> None:
    """Documents changed at a path are encoded at the next cut; a node in memory never
    takes one, so a removed document must not stay on that list."""
    d = Documents()
    for i in range(100):
        d.update(f"k{i}.a", b"1", hlc=10 + i)
    for i in range(100):
        d.remove(f"k{i}", hlc=1000 + i)
    assert len(d) == 0 and not d._unencoded

"""Keyed state: JSON documents changed at key paths by UPDATE, REMOVE, ADD, PUSH, PATCH.

A key path "a.b.c" names document "a" (its first segment, which is also the partition
key, so one document's changes commit together and in order) and the path b → c inside
it. A document set whole by UPDATE on its bare key is kept as the bytes the client sent
and is not decoded until a change at a deeper path or a read of a deeper path needs it
(fero's lazy deserialisation): a bare-key UPDATE is opaque, any bytes are accepted.

    UPDATE a.b v    set a.b to v, creating objects on the way
    REMOVE a.b      delete a.b (a no-op if absent)
    ADD    a.b n    a.b += n; a missing a.b counts as 0; integers only (exact)
    PUSH   a.b v    append v to the list a.b (created if absent)
    PATCH  a.b obj  JSON merge patch (RFC 7386) of obj into a.b

Errors: InvalidArgument for a malformed path or value; FailedPrecondition when the
document's shape does not allow the change (PUSH onto a number, a path through a list).
"""

from __future__ import annotations

import json
from itertools import groupby, repeat
from operator import itemgetter
from typing import Any, Iterable, Iterator, Sequence

from fero.errors import FailedPrecondition, InvalidArgument
from fero.v1 import types_pb2

MAX_PATH_DEPTH = 32
_key, _value = itemgetter(0), itemgetter(1)
_MISSING = object()


def split_path(key: str) -> list[str]:
    """The segments of a key path; InvalidArgument if one is empty."""
    parts = key.split(".")
    if any(not p for p in parts):
        raise InvalidArgument(f"key path {key!r} has an empty segment")
    if len(parts) > MAX_PATH_DEPTH:
        raise InvalidArgument(f"key path {key!r} is deeper than {MAX_PATH_DEPTH}")
    return parts


def partition_key(key: str) -> str:
    """The first segment of a key path: what decides the partition."""
    dot = key.find(".")
    return key if dot < 0 else key[:dot]


def decode(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{what} is not valid JSON: {exc}") from None


def encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class Doc:
    """One document: raw bytes until something needs the decoded value."""

    __slots__ = ("_raw", "_value", "hlc", "origin")

    def __init__(self, raw: bytes | None = None, value: Any = _MISSING, hlc: int = 0, origin: str = "") -> None:
        self._raw = raw
        self._value = value
        self.hlc = hlc
        self.origin = origin

    @property
    def value(self) -> Any:
        if self._value is _MISSING:
            try:
                self._value = json.loads(self._raw or b"null")
            except (ValueError, UnicodeDecodeError):
                raise FailedPrecondition(
                    "the document was set with bytes that are not JSON; only the whole key can be read or replaced"
                ) from None
        return self._value

    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = encode(self._value)
        return self._raw


#: Documents as columns: keys, raw JSON values (in chunks: a bulk UPDATE's values are
#: one chunk, as the message holds them), hlcs, origins; and the fero.v1.Batch of each
#: run kept whole (columns_of with runs=True), as a message or serialised, whose
#: documents are not in the columns.
Columns = tuple[list[str], list[Sequence[bytes]], list[int], list[str], list[Any]]


def fill_columns(out: Any, columns: Columns) -> None:
    """Columns into a fero.v1.KeyColumns (the runs are the caller's)."""
    keys, raws, hlcs, origins, _ = columns
    out.keys.extend(keys)
    for chunk in raws:
        out.values.extend(chunk)
    out.hlcs.extend(hlcs)
    out.origins.extend(origins)


def columns_of(docs: dict[str, Any], runs: bool = False) -> Columns:
    """Every document as four columns (keys, raws in chunks, hlcs, origins), built in
    bulk: the columns of a run whose documents are all still there go in whole,
    with no Python step per key. With `runs`, such a run that is a Batch goes in the
    fifth element instead, as that Batch (a message, or its bytes). Chunks and runs
    are the runs' own sequences, messages and bytes, not copies, which is sound
    because an applied batch is never changed (see batch.cut and batch.drop). Without
    `runs`, a run kept as bytes is parsed here (_Run.raws). A node snapshot calls this
    in its writer's thread, on a Documents.cut()."""
    keys: list[str] = []
    raws: list[Sequence[bytes]] = []
    hlcs: list[int] = []
    origins: list[str] = []
    whole: list[Any] = []
    entry = _entry
    single: list[bytes] = []  # the current chunk of values taken one by one
    # Consecutive documents that share a value: a run's keys sit together, in its
    # order, as one dict update put them there.
    for d, group in groupby(docs.items(), _value):
        ks = list(map(_key, group))
        if d.__class__ is _Run and len(ks) == len(d.keys) and ks == d.keys:  # type: ignore[union-attr]
            if runs and d.batch is not None:  # type: ignore[union-attr]
                whole.append(d.batch)  # type: ignore[union-attr]
                continue
            keys += ks
            # Its values as one chunk, the run's own sequence: no step per value.
            if single:
                raws.append(single)
                single = []
            raws.append(d.raws)  # type: ignore[union-attr]
            hlcs += range(d.hlc, d.hlc + len(ks))  # type: ignore[union-attr]
            origins += repeat(d.origin, len(ks))  # type: ignore[union-attr]
            continue
        keys += ks
        for k in ks:
            raw, hlc, origin = entry(k, d)
            single.append(raw)
            hlcs.append(hlc)
            origins.append(origin)
    if single:
        raws.append(single)
    return keys, raws, hlcs, origins, whole


class _Run:
    """The documents one bulk UPDATE set (Documents.update_many): the batch's key and
    value columns as they came, record k stamped hlc + k. Every key it set maps to
    the run itself, so a bulk write allocates nothing per key (a tuple and an int per
    key cost more than the dict insert, and each tuple was work for the cyclic GC).
    The values may be the batch message's own repeated field, never changed after:
    a value becomes a bytes object only when it is read. Or the run may hold the
    batch as the bytes it was logged as, and parse them when a value is first read:
    the owner of a bulk write then never parses what it only stores."""

    __slots__ = ("keys", "_raws", "hlc", "origin", "batch", "live", "_at")

    def __init__(
        self, keys: Sequence[str], raws: Sequence[bytes] | None, hlc: int, origin: str, batch: Any = None,
    ) -> None:
        self.keys = keys
        self._raws = raws
        self.hlc = hlc
        self.origin = origin
        #: The fero.v1.Batch the run is, if it is one (its keys, values, hlc and
        #: origin), as a message or as its bytes (then `raws` is None: they are read
        #: from it): a snapshot writes the run as that batch while the run is whole.
        self.batch = batch
        #: How many documents still map to this run (Documents keeps it up to date).
        self.live = 0
        self._at: dict[str, int] | None = None

    @property
    def raws(self) -> Sequence[bytes]:
        raws = self._raws
        if raws is None:
            # The message replaces its bytes, so the run never holds both. Read into
            # locals: a snapshot's thread may ask at the same time as the event loop.
            batch = self.batch
            if batch.__class__ is not types_pb2.Batch:
                batch = self.batch = types_pb2.Batch.FromString(batch)
            raws = self._raws = batch.values
        return raws

    def entry(self, key: str) -> tuple[bytes, int, str]:
        """(raw, hlc, origin) of `key` in this run: its last occurrence, which won."""
        at = self._at
        if at is None:
            at = self._at = dict(zip(self.keys, range(len(self.keys))))
        k = at[key]
        return self.raws[k], self.hlc + k, self.origin


def _entry(key: str, doc: Doc | tuple[bytes, int, str] | _Run) -> tuple[bytes, int, str]:
    """(raw, hlc, origin) of a document as Documents.docs holds it."""
    cls = doc.__class__
    if cls is tuple:
        return doc  # type: ignore[return-value]
    if cls is _Run:
        return doc.entry(key)  # type: ignore[union-attr]
    return doc.raw(), doc.hlc, doc.origin  # type: ignore[union-attr]


class Documents:
    """All documents of one partition.

    Whole-document UPDATE and REMOVE are last-writer-wins by (hlc, origin): a change
    older than the document's stamp, or than the tombstone a REMOVE left, is ignored.
    In one owner's log stamps only grow, so this never changes an ordinary commit; it
    is what makes the two sides of a healed split converge to the same documents in
    whichever order their changes meet. Changes at deeper paths apply in log order.
    """

    def __init__(self) -> None:
        #: A document is a Doc; or (raw, hlc, origin) as a snapshot loaded it; or the
        #: _Run a bulk UPDATE stored it in. `_get` turns the last two into a Doc when
        #: something needs one.
        self.docs: dict[str, Doc | tuple[bytes, int, str] | _Run] = {}
        #: Removed documents: key -> (hlc, origin) of the REMOVE, kept for a while so an
        #: older UPDATE arriving late (from the other side of a split) cannot revive them.
        self.tombstones: dict[str, tuple[int, str]] = {}
        #: Documents changed at a path whose Doc has no bytes yet (see cut).
        self._unencoded: set[str] = set()

    def _get(self, name: str) -> Doc | None:
        doc = self.docs.get(name)
        if doc is None or doc.__class__ is Doc:
            return doc  # type: ignore[return-value]
        raw, hlc, origin = _entry(name, doc)
        if doc.__class__ is _Run:
            self._unlink(doc)  # type: ignore[arg-type]
        new = self.docs[name] = Doc(raw=raw, hlc=hlc, origin=origin)
        return new

    def _unlink(self, run: _Run) -> None:
        """One document left `run`. Once fewer than half of its records are live, the
        rest become tuples, so that a run whose documents were mostly overwritten does
        not keep all its values alive."""
        run.live -= 1
        if run.live * 2 < len(run.keys):
            self._spill(run)

    def _spill(self, run: _Run) -> None:
        """The documents still in `run` become tuples; nothing refers to it after."""
        docs = self.docs
        for key in run.keys:
            if docs.get(key) is run:
                docs[key] = run.entry(key)
        run.live = 0

    def items(self) -> Iterator[tuple[str, bytes, int, str]]:
        """(key, raw JSON, hlc, origin) of every document."""
        entry = _entry
        for key, doc in self.docs.items():
            yield key, *entry(key, doc)

    def to_columns(self, out: Any) -> None:
        """Every document into a fero.v1.KeyColumns (a state transfer: a node that
        does not know PartitionSnapshot.runs reads it whole)."""
        fill_columns(out, self.columns())

    def columns(self, runs: bool = False) -> Columns:
        """Every document as columns (see columns_of)."""
        return columns_of(self.docs, runs)

    def cut(self) -> dict[str, Any]:
        """The documents as they are now, for columns_of in another thread (a node
        snapshot's writer) while this partition takes writes: a copy of the dict, 20 ms
        a million. It holds what it held: a document is never changed in place (a
        change stores a new Doc, see _store), and each Doc's bytes are made here, on
        the caller's thread, for those changed at a path since the last cut (a Doc's
        value is changed in place by the next change at a path: it must not be
        encoded later)."""
        docs = self.docs
        for name in self._unencoded:
            doc = docs.get(name)
            if doc.__class__ is Doc:
                doc.raw()  # type: ignore[union-attr]
        self._unencoded.clear()
        return dict(docs)

    def from_columns(self, cols: Any) -> None:
        """Loads documents from a fero.v1.KeyColumns, in bulk."""
        self.docs.update(zip(cols.keys, zip(cols.values, cols.hlcs, cols.origins)))

    def load_runs(self, runs: Iterable[Any]) -> None:
        """Loads documents from runs as columns_of(runs=True) gave them (fero.v1.Batch),
        each a run again. A run keeps its own bytes, not the message: that is part of
        the whole snapshot frame it came in, and would keep all of it alive; its values
        are parsed again when one is first read."""
        for whole in runs:
            keys = list(whole.keys)
            if not self.update_many(keys, None, whole.hlc, whole.origin, whole.SerializeToString()):
                # (Only a key with a path or a tombstone declines the bulk path, and a
                # snapshot's runs have neither: this is for a state that was not a
                # snapshot's, the documents as update() sets them one by one.)
                for k, (key, raw) in enumerate(zip(keys, whole.values)):
                    self.update(key, raw, whole.hlc + k, whole.origin)

    def update_many(
        self, keys: Sequence[str], raws: Sequence[bytes] | None, hlc: int, origin: str, batch: Any = None,
    ) -> bool:
        """Sets whole documents: key k to raws[k], stamped hlc + k. Done in bulk, with
        no Python call per key, for the keys that are new; a key already set goes the
        way update() sets it, stamps compared. Returns False, changing nothing, if a
        key has a path or was removed lately (then update() each). Keeps the
        sequences it is given: `raws` may be the batch message's values field, so
        that a value is copied out of it only when read. `batch`: the fero.v1.Batch
        whose keys, values, hlc and origin these are, if they are, as a message or
        serialised (`raws` may then be None: read from it when first needed); a
        snapshot writes them as that batch (see columns_of). Bytes must not change
        after: they are kept, not copied."""
        docs = self.docs
        if (self.tombstones and not self.tombstones.keys().isdisjoint(keys)) or "." in "".join(keys):
            return False
        run = _Run(keys, raws, hlc, origin, batch)
        before = len(docs)
        # One probe a key, by setdefault: a new key maps to the run, a key already set
        # keeps its document and is returned. (Checking that the keys are new first,
        # then inserting them, probed the dict twice a key: each new key's first probe
        # is a cache miss, in dicts of millions of keys, and that was the owner's
        # largest cost a record.) A key repeated in the batch maps once, to its last
        # occurrence (see _Run.entry), whose stamp is the highest.
        got = list(map(docs.setdefault, keys, repeat(run)))
        run.live = len(docs) - before
        if got.count(run) != len(keys):
            for k, (key, old) in enumerate(zip(keys, got)):
                if old is not run:
                    self.update(key, run.raws[k], hlc + k, origin)
        if run.live * 2 < len(keys):  # mostly one key set again and again, or set before
            self._spill(run)
        return True

    def _older(self, name: str, hlc: int, origin: str) -> bool:
        """Whether a change stamped (hlc, origin) loses to what `name` already has."""
        stamp = (hlc, origin)
        doc = self._get(name)
        if doc is not None and stamp < (doc.hlc, doc.origin):
            return True
        tomb = self.tombstones.get(name)
        return tomb is not None and stamp < tomb

    def reap_tombstones(self, before_hlc: int) -> None:
        for k in [k for k, (h, _) in self.tombstones.items() if h < before_hlc]:
            del self.tombstones[k]

    def __len__(self) -> int:
        return len(self.docs)

    def read(self, key: str) -> bytes | None:
        parts = split_path(key)
        doc = self._get(parts[0])
        if doc is None:
            return None
        if len(parts) == 1:
            return doc.raw()
        node = doc.value
        for p in parts[1:]:
            if not isinstance(node, dict) or p not in node:
                return None
            node = node[p]
        return encode(node)

    def update(self, key: str, raw: bytes, hlc: int, origin: str = "") -> None:
        # A bare key (the common case: whole values, as in fero's cache) needs no path.
        parts = [key] if "." not in key else split_path(key)
        if len(parts) == 1:
            if self._older(parts[0], hlc, origin):
                return
            self.docs[parts[0]] = Doc(raw=raw, hlc=hlc, origin=origin)
            self.tombstones.pop(parts[0], None)
            return
        value = decode(raw, "UPDATE value")
        self._change(parts, hlc, lambda _old: value, origin)

    def remove(self, key: str, hlc: int, origin: str = "") -> None:
        parts = split_path(key)
        if len(parts) == 1:
            if self._older(parts[0], hlc, origin):
                return
            self.docs.pop(parts[0], None)
            self.tombstones[parts[0]] = (hlc, origin)
            # Without snapshots (a node in memory) no cut ever empties the set: the
            # names of removed documents would stay in it for good.
            self._unencoded.discard(parts[0])
            return
        doc = self._get(parts[0])
        if doc is None:
            return
        node = doc.value
        for p in parts[1:-1]:
            if not isinstance(node, dict) or p not in node:
                return
            node = node[p]
        if isinstance(node, dict) and parts[-1] in node:
            del node[parts[-1]]
            self._store(parts[0], doc, doc.value, hlc, origin)

    def add(self, key: str, amount: int, hlc: int, origin: str = "") -> int:
        result: list[int] = []

        def change(old: Any) -> Any:
            if old is _MISSING or old is None:
                old = 0
            if isinstance(old, float):
                raise FailedPrecondition(f"{key!r} holds {old!r}, not an integer; ADD is exact and needs an integer")
            if isinstance(old, bool) or not isinstance(old, int):
                raise FailedPrecondition(f"{key!r} holds {_type(old)}, not a number; ADD needs a number")
            result.append(old + amount)
            return result[0]

        self._change(split_path(key), hlc, change, origin)
        return result[0] if result else 0

    def push(self, key: str, raw: bytes, hlc: int, origin: str = "") -> None:
        item = decode(raw, "PUSH value")

        def change(old: Any) -> Any:
            if old is _MISSING or old is None:
                return [item]
            if not isinstance(old, list):
                raise FailedPrecondition(f"{key!r} holds {_type(old)}, not a list; PUSH needs a list")
            old.append(item)
            return old

        self._change(split_path(key), hlc, change, origin)

    def patch(self, key: str, raw: bytes, hlc: int, origin: str = "") -> None:
        patch = decode(raw, "PATCH value")
        self._change(split_path(key), hlc, lambda old: merge_patch(None if old is _MISSING else old, patch), origin)

    def _change(self, parts: list[str], hlc: int, change: Any, origin: str = "") -> None:
        """Applies `change(old) -> new` at the path, or raises without changing anything.
        A change older than the document's tombstone is ignored."""
        tomb = self.tombstones.get(parts[0])
        if tomb is not None and (hlc, origin) < tomb:
            return
        doc = self._get(parts[0])
        root = doc.value if doc is not None else _MISSING
        if len(parts) == 1:
            new_root = change(root)
        else:
            if root is _MISSING or root is None:
                root = {}
            elif not isinstance(root, dict):
                raise FailedPrecondition(f"{parts[0]!r} holds {_type(root)}, not an object")
            # Walk (and check) first, create on the way only once the change has succeeded,
            # so a failed change leaves the document exactly as it was.
            node: Any = root
            for i, p in enumerate(parts[1:-1], start=1):
                nxt = node.get(p, _MISSING) if isinstance(node, dict) else _MISSING
                if nxt is not _MISSING and not isinstance(nxt, dict):
                    raise FailedPrecondition(f"{'.'.join(parts[: i + 1])!r} holds {_type(nxt)}, not an object")
                if nxt is _MISSING:
                    break
                node = nxt
            else:
                new_leaf = change(node.get(parts[-1], _MISSING))
                node[parts[-1]] = new_leaf
                self._store(parts[0], doc, root, hlc, origin)
                return
            new_leaf = change(_MISSING)
            node = root
            for p in parts[1:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = new_leaf
            new_root = root
        self._store(parts[0], doc, new_root, hlc, origin)

    def _store(self, name: str, doc: Doc | None, value: Any, hlc: int, origin: str) -> None:
        """`value` as document `name`, in a new Doc: one a cut holds never changes. Its
        stamp is the newer of `doc`'s and (hlc, origin)."""
        if doc is None:
            self.tombstones.pop(name, None)
        elif (doc.hlc, doc.origin) > (hlc, origin):
            hlc, origin = doc.hlc, doc.origin
        self.docs[name] = Doc(value=value, hlc=hlc, origin=origin)
        self._unencoded.add(name)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = merge_patch(target.get(k), v)
    return target


def _type(v: Any) -> str:
    if v is _MISSING or v is None:
        return "nothing"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(v), "a number")

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
from itertools import repeat
from typing import Any, Iterator, Sequence

from fero.errors import FailedPrecondition, InvalidArgument

MAX_PATH_DEPTH = 32
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

    def set_value(self, value: Any) -> None:
        self._value = value
        self._raw = None

    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = encode(self._value)
        return self._raw


class Documents:
    """All documents of one partition.

    Whole-document UPDATE and REMOVE are last-writer-wins by (hlc, origin): a change
    older than the document's stamp, or than the tombstone a REMOVE left, is ignored.
    In one owner's log stamps only grow, so this never changes an ordinary commit; it
    is what makes the two sides of a healed split converge to the same documents in
    whichever order their changes meet. Changes at deeper paths apply in log order.
    """

    def __init__(self) -> None:
        #: A document is a Doc, or (raw, hlc, origin) as a batch stored it: a tuple costs
        #: no Python call to make; `_get` turns it into a Doc when something needs one.
        self.docs: dict[str, Doc | tuple[bytes, int, str]] = {}
        #: Removed documents: key -> (hlc, origin) of the REMOVE, kept for a while so an
        #: older UPDATE arriving late (from the other side of a split) cannot revive them.
        self.tombstones: dict[str, tuple[int, str]] = {}

    def _get(self, name: str) -> Doc | None:
        doc = self.docs.get(name)
        if doc.__class__ is tuple:
            raw, hlc, origin = doc  # type: ignore[misc]
            doc = self.docs[name] = Doc(raw=raw, hlc=hlc, origin=origin)
        return doc  # type: ignore[return-value]

    def items(self) -> Iterator[tuple[str, bytes, int, str]]:
        """(key, raw JSON, hlc, origin) of every document."""
        for key, doc in self.docs.items():
            if doc.__class__ is tuple:
                yield key, *doc  # type: ignore[misc]
            else:
                yield key, doc.raw(), doc.hlc, doc.origin  # type: ignore[union-attr]

    def to_columns(self, out: Any) -> None:
        """Every document into a fero.v1.KeyColumns (a snapshot), in bulk."""
        docs = self.docs
        plain = [k for k, d in docs.items() if d.__class__ is not tuple]
        if plain:
            tuples = {k: d for k, d in docs.items() if d.__class__ is tuple}
            for k in plain:
                d = docs[k]
                tuples[k] = (d.raw(), d.hlc, d.origin)  # type: ignore[union-attr]
        else:
            tuples = docs  # type: ignore[assignment]
        if not tuples:
            return
        raws, hlcs, origins = zip(*tuples.values())
        out.keys.extend(tuples.keys())
        out.values.extend(raws)
        out.hlcs.extend(hlcs)
        out.origins.extend(origins)

    def from_columns(self, cols: Any) -> None:
        """Loads documents from a fero.v1.KeyColumns, in bulk."""
        self.docs.update(zip(cols.keys, zip(cols.values, cols.hlcs, cols.origins)))

    def update_many(self, keys: Sequence[str], raws: Sequence[bytes], hlc: int, origin: str) -> bool:
        """Sets whole documents: key k to raws[k], stamped hlc + k. Done in bulk, with
        no Python call per key, when every key is bare and new (nor removed lately);
        returns False, changing nothing, otherwise (then update() each)."""
        docs = self.docs
        if (
            not docs.keys().isdisjoint(keys)
            or (self.tombstones and not self.tombstones.keys().isdisjoint(keys))
            or "." in "".join(keys)
        ):
            return False
        # A key repeated in the batch: the later one wins, as its stamp is higher.
        docs.update(zip(keys, zip(raws, range(hlc, hlc + len(keys)), repeat(origin))))
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
            doc.set_value(doc.value)
            if (hlc, origin) > (doc.hlc, doc.origin):
                doc.hlc, doc.origin = hlc, origin

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
        if doc is None:
            doc = self.docs[name] = Doc()
            self.tombstones.pop(name, None)
        doc.set_value(value)
        if (hlc, origin) > (doc.hlc, doc.origin):
            doc.hlc, doc.origin = hlc, origin


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

"""Columnar batches (`fero.v1.Batch`): the fast path of Commit and how the owner logs it.

A batch holds records of one partition in columns under one ticket. The owner checks
the columns in bulk, stamps the whole batch with one hybrid timestamp and one origin
run (record k gets hlc + k and origin_seq + k), applies it, and logs the batch as sent:
no Record message is built for any of its records. Only the rare paths that need
records one by one (subscribers, merges after a split, a replica that holds part of a
batch) see them as Records, through `records()`.

Each record of a batch has a derived ticket, `@@<batch ticket>#<k>` (k: its position
among the batch's committed records). Clients cannot send tickets starting with `@`,
so a derived ticket never collides with theirs; a partition that meets a record with a
derived ticket dedupes it by the batch ticket (see PartitionState.apply).

Pure: no I/O.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Sequence

import mmh3

from fero import values
from fero.config import LimitsConfig
from fero.documents import partition_key
from fero.errors import InvalidArgument
from fero.ring import MASK64
from fero.v1 import storage_pb2, types_pb2
from fero.values import Value

OP = types_pb2
#: Ops a batch may carry; counter setups go as Records.
OPS = frozenset((OP.OP_COUNTER_ADD, OP.OP_UPDATE, OP.OP_REMOVE, OP.OP_ADD, OP.OP_PUSH, OP.OP_PATCH, OP.OP_ACTION))
VALUE_OPS = frozenset((OP.OP_UPDATE, OP.OP_PUSH, OP.OP_PATCH, OP.OP_ACTION))
AMOUNT_OPS = frozenset((OP.OP_COUNTER_ADD, OP.OP_ADD))
DERIVED_PREFIX = "@@"
_first = itemgetter(0)


def count(entry: storage_pb2.LogEntry) -> int:
    """How many records a log frame holds."""
    return len(entry.batch.keys) if entry.HasField("batch") else len(entry.records)


def derived_ticket(ticket: str, k: int) -> str:
    return f"{DERIVED_PREFIX}{ticket}#{k}"


#: str(k) for the first positions of a batch, made once: a batch of actions derives a
#: ticket per action, and formatting each position anew was 90 of the 150 ns a ticket
#: cost. Grown as batches need, up to _POSITIONS_KEPT (a few MB).
_positions: list[str] = []
_POSITIONS_KEPT = 1 << 16


def derived_tickets(ticket: str, n: int) -> list[str]:
    """derived_ticket(ticket, k) for k in range(n), by C-level maps."""
    have = len(_positions)
    if n > have and have < _POSITIONS_KEPT:
        _positions.extend(map(str, range(have, min(n, _POSITIONS_KEPT))))
        have = len(_positions)
    prefixed = f"{DERIVED_PREFIX}{ticket}#".__add__
    out = list(map(prefixed, _positions[:n]))
    if n > have:
        out += map(prefixed, map(str, range(have, n)))
    return out


def parse_derived(ticket: str) -> tuple[str, int] | None:
    """(batch ticket, position) of a derived ticket; None for any other ticket."""
    if not ticket.startswith(DERIVED_PREFIX):
        return None
    head, _, k = ticket.rpartition("#")
    return head[len(DERIVED_PREFIX):], int(k)


def partitions_of(keys: Sequence[str], partitions: int) -> list[int]:
    """The partition of each key (as fero.ring.partition_of(partition_key(key)))."""
    if "." in "".join(keys):
        keys = [partition_key(k) for k in keys]
    # fero.ring.hash64 modulo P, by C-level maps: no Python call per key. A power of
    # two divides 2^64, so the 128-bit hash modulo P is its low 64 bits modulo P; up to
    # 256 that is the low byte, the first of the hash's (little-endian) digest, read
    # without building a 128-bit int per key (48 against 83 ns a key).
    if partitions <= 256 and not partitions & (partitions - 1):
        low = map(_first, map(mmh3.hash_bytes, keys))
        return list(low if partitions == 256 else map((partitions - 1).__and__, low))
    hashes = map(mmh3.hash128, keys)
    if partitions & (partitions - 1):
        hashes = map(MASK64.__and__, hashes)
    return list(map(partitions.__rmod__, hashes))


#: What validate returns: each batch's keys, and its values or amounts (None: not read).
Checked = list[tuple[list[str], list | None]]


def validate(
    batches: Sequence[types_pb2.Batch], partitions: int, limits: LimitsConfig, records: int = 0,
    raw: Sequence[bytes | memoryview] | None = None,
) -> Checked:
    """Raises InvalidArgument naming the first malformed batch; `records` counts the
    Records sent in the same call (the limit on a call covers both). Returns each
    batch's keys, and its values or amounts as a list (read from the message once, as
    every read of a repeated field makes new Python objects) or None.

    `raw`: each batch's bytes, if the caller has them. The values of an UPDATE or
    ACTION batch no larger than max_value_bytes are then not read at all (None
    instead of the list): none of them can be too long, and the owner stores them as
    the message holds them (see Documents.update_many). Reading them was the owner's
    largest cost a record, 100 ns for a 100-byte value."""
    sizes = None if raw is None else list(map(len, raw))
    total = records + sum(len(b.keys) for b in batches)
    if total > limits.max_batch_records:
        raise InvalidArgument(f"{total} records in one call; at most {limits.max_batch_records}")
    out = []
    for i, b in enumerate(batches):
        where = f"batch {i}"
        ticket = b.ticket
        if not ticket:
            raise InvalidArgument(f"{where}: ticket is empty (a batch needs one, so that a retry is recognised)")
        if len(ticket.encode()) > limits.max_ticket_bytes:
            raise InvalidArgument(f"{where}: ticket is {len(ticket.encode())} bytes; at most {limits.max_ticket_bytes}")
        if ticket.startswith("@"):
            raise InvalidArgument(f"{where}: tickets starting with '@' are reserved for the node")
        op = b.op
        if op not in OPS:
            name = OP.Op.Name(op) if op in OP.Op.values() else str(op)
            raise InvalidArgument(f"{where}: op {name} cannot be batched (send setups as records)")
        if (op == OP.OP_ACTION) != bool(b.action):
            raise InvalidArgument(f"{where}: " + ("action name is empty" if b.action == "" else "only OP_ACTION takes an action name"))
        keys = list(b.keys)
        n = len(keys)
        if n == 0:
            raise InvalidArgument(f"{where}: no keys")
        if "" in keys:
            raise InvalidArgument(f"{where}: key {keys.index('')} is empty")
        if max(map(len, keys)) * 4 > limits.max_key_bytes:
            for k, key in enumerate(keys):
                if len(key.encode()) > limits.max_key_bytes:
                    raise InvalidArgument(f"{where}: key {k} is {len(key.encode())} bytes; at most {limits.max_key_bytes}")
        nv, na = len(b.values), len(b.amounts)
        column: list | None = []
        if op in VALUE_OPS:
            if nv != n:
                raise InvalidArgument(f"{where}: {nv} values for {n} keys; {OP.Op.Name(op)} needs one value per key")
            if (op == OP.OP_UPDATE or op == OP.OP_ACTION) and sizes is not None and sizes[i] <= limits.max_value_bytes:
                column = None  # left in the message
            else:
                column = list(b.values)
                if max(map(len, column)) > limits.max_value_bytes:
                    k = next(k for k, v in enumerate(column) if len(v) > limits.max_value_bytes)
                    raise InvalidArgument(f"{where}: value {k} is {len(column[k])} bytes; at most {limits.max_value_bytes}")
                if op != OP.OP_UPDATE and op != OP.OP_ACTION and b"" in column:
                    raise InvalidArgument(f"{where}: value {column.index(b'')} is missing")
        elif nv:
            raise InvalidArgument(f"{where}: {OP.Op.Name(op)} takes no values")
        if op in AMOUNT_OPS:
            if na != n:
                raise InvalidArgument(f"{where}: {na} amounts for {n} keys; {OP.Op.Name(op)} needs one amount per key")
            column = list(b.amounts)
        elif na:
            raise InvalidArgument(f"{where}: {OP.Op.Name(op)} takes no amounts")
        if b.hlc or b.origin or b.origin_seq or b.position or len(b.errors):
            raise InvalidArgument(f"{where}: hlc, origin, origin_seq, position and errors are set by the owner")
        if b.partition >= partitions:
            raise InvalidArgument(f"{where}: partition {b.partition} does not exist (there are {partitions})")
        parts = partitions_of(keys, partitions)
        if parts.count(b.partition) != n:
            k = next(k for k, p in enumerate(parts) if p != b.partition)
            raise InvalidArgument(
                f"{where}: key {k} ({keys[k]!r}) is in partition {parts[k]}, not {b.partition}; "
                f"a batch holds keys of one partition"
            )
        out.append((keys, column))
    return out


def records(entry: storage_pb2.LogEntry) -> Sequence[types_pb2.Record]:
    """The records of a log frame, as Records (built for a batch frame)."""
    if not entry.HasField("batch"):
        return entry.records
    b = entry.batch
    Record = types_pb2.Record
    out = []
    op, ticket, origin = b.op, b.ticket, b.origin
    values, amounts = b.values, b.amounts
    for k, key in enumerate(b.keys):
        rec = Record(
            key=key, op=op, ticket=derived_ticket(ticket, b.position + k),
            hlc=b.hlc + k, origin=origin, origin_seq=b.origin_seq + k, action=b.action,
        )
        if values:
            rec.value = values[k]
        if amounts:
            rec.amount.i64 = amounts[k]
        out.append(rec)
    return out


def cut(entry: storage_pb2.LogEntry, start: int, end: int) -> None:
    """Keeps only the records at positions [start, end) of a frame (in place); the
    frame's base offset moves to the first one kept. Never on a frame that has been
    applied: its documents may still hold its values field (Documents.update_many)."""
    if entry.HasField("batch"):
        b = entry.batch
        del b.keys[end:]
        del b.keys[:start]
        if b.values:
            del b.values[end:]
            del b.values[:start]
        if b.amounts:
            del b.amounts[end:]
            del b.amounts[:start]
        if start:
            b.hlc += start
            b.origin_seq += start
            b.position += start
    else:
        del entry.records[end:]
        del entry.records[:start]
    entry.base_offset += start


def drop(b: types_pb2.Batch, failed: list[tuple[int, int, str]]) -> None:
    """Takes records that could not apply out of the columns: (index, code, message).
    (A batch with such records was applied one record at a time: no documents hold
    its values field.)"""
    for index, code, message in sorted(failed, reverse=True):
        del b.keys[index]
        if b.values:
            del b.values[index]
        if b.amounts:
            del b.amounts[index]
    for index, code, message in sorted(failed):
        b.errors.add(index=index, code=code, message=message)


def result(
    partition: int, ticket: str, base_offset: int, vals: "Sequence[Value] | None",
    errors: Sequence[tuple[int, int, str]] = (), duplicate: bool = False,
) -> types_pb2.BatchResult:
    """A BatchResult; values go in `values` when all fit 64 bits, else `exact_values`."""
    r = types_pb2.BatchResult(partition=partition, ticket=ticket, base_offset=base_offset, duplicate=duplicate)
    if vals:
        try:
            r.values.extend(vals)
        except (TypeError, ValueError):  # a decimal, a fraction, or a big int
            del r.values[:]
            for v in vals:
                values.to_number(v, r.exact_values.add())
    for index, code, message in errors:
        r.errors.add(index=index, code=code, message=message)
    return r


def result_values(r: types_pb2.BatchResult) -> "list[Value] | None":
    if r.values:
        return list(r.values)
    if r.exact_values:
        return [values.parse_number(n) for n in r.exact_values]
    return None

"""Shared by the batch tests: keys of a chosen partition, and the malformed batches
that the engine (InvalidArgument) and the gRPC API (INVALID_ARGUMENT) must refuse whole."""

from __future__ import annotations

from fero.config import Config
from fero.documents import partition_key
from fero.ring import partition_of
from fero.v1 import types_pb2 as pb

P = Config().dht.partitions


def part(key: str) -> int:
    return partition_of(partition_key(key), P)


def keys_in(p: int, n: int, prefix: str) -> list[str]:
    """The first n names `prefix<i>` whose partition is p."""
    out: list[str] = []
    for i in range(100_000):
        k = f"{prefix}{i}"
        if part(k) == p:
            out.append(k)
            if len(out) == n:
                return out
    raise AssertionError(f"fewer than {n} keys of partition {p} with prefix {prefix!r}")


def other_partition_key(p: int, prefix: str = "o") -> str:
    i = 0
    while part(f"{prefix}{i}") == p:
        i += 1
    return f"{prefix}{i}"


def malformed(p: int) -> list[tuple[str, pb.Batch, tuple[str, ...]]]:
    """(case, a COUNTER_ADD batch of partition p made malformed, words its error must
    contain), for every way a batch is malformed on its face."""
    ks = keys_in(p, 2, "bad")
    other = other_partition_key(p)

    def bad(**kw: object) -> pb.Batch:
        b = pb.Batch(partition=p, ticket="bad-ticket", op=pb.OP_COUNTER_ADD, keys=ks, amounts=[1, 1])
        for k, v in kw.items():
            if isinstance(v, list):
                b.ClearField(k)
                getattr(b, k).extend(v)
            else:
                setattr(b, k, v)
        return b

    return [
        ("empty ticket", bad(ticket=""), ("ticket",)),
        ("reserved ticket", bad(ticket="@n1/x/1"), ("ticket", "@")),
        ("oversized ticket", bad(ticket="t" * 129), ("ticket", "128")),
        ("no keys", bad(keys=[], amounts=[]), ("key",)),
        ("empty key", bad(keys=[ks[0], ""]), ("key",)),
        ("oversized key", bad(keys=[ks[0], "k" * 600]), ("key",)),
        ("key of another partition", bad(keys=[ks[0], other]), ("partition",)),
        ("partition out of range", bad(partition=P), ("partition",)),
        ("action without a name", bad(op=pb.OP_ACTION, amounts=[], values=[b"p", b"q"]), ("action name is empty",)),
        ("action name on another op", bad(action="echo"), ("only OP_ACTION",)),
        ("op counter setup", bad(op=pb.OP_COUNTER_SETUP, amounts=[]), ("op",)),
        ("op unspecified", bad(op=pb.OP_UNSPECIFIED, amounts=[]), ("op",)),
        ("op unknown", bad(op=99, amounts=[]), ("op",)),
        ("update values short", bad(op=pb.OP_UPDATE, amounts=[], values=[b"1"]), ("values",)),
        ("update with amounts", bad(op=pb.OP_UPDATE, values=[b"1", b"2"]), ("amounts",)),
        ("counter add amounts short", bad(amounts=[1]), ("amounts",)),
        ("counter add amounts long", bad(amounts=[1, 2, 3]), ("amounts",)),
        ("counter add with values", bad(values=[b"1", b"2"]), ("values",)),
        ("remove with values", bad(op=pb.OP_REMOVE, amounts=[], values=[b"1", b"2"]), ("values",)),
        ("push without values", bad(op=pb.OP_PUSH, amounts=[]), ("values",)),
        ("client set hlc", bad(hlc=12345), ("hlc",)),
        ("client set origin", bad(origin="evil/1"), ("origin",)),
        ("client set origin_seq", bad(origin_seq=7), ("origin_seq",)),
        ("client set errors", bad(errors=[pb.RecordError(index=0, code=9)]), ("errors",)),
        ("client set position", bad(position=1), ("position",)),
    ]

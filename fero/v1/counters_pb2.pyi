from fero.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListRequest(_message.Message):
    __slots__ = ("prefix", "limit")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    limit: int
    def __init__(self, prefix: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class CounterEntry(_message.Message):
    __slots__ = ("name", "value", "kind", "expire_at_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_AT_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: _types_pb2.Number
    kind: _types_pb2.ValueKind
    expire_at_ms: int
    def __init__(self, name: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Number, _Mapping]] = ..., kind: _Optional[_Union[_types_pb2.ValueKind, str]] = ..., expire_at_ms: _Optional[int] = ...) -> None: ...

class ListReply(_message.Message):
    __slots__ = ("counters", "truncated", "coherent", "partial")
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    COHERENT_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    counters: _containers.RepeatedCompositeFieldContainer[CounterEntry]
    truncated: bool
    coherent: bool
    partial: bool
    def __init__(self, counters: _Optional[_Iterable[_Union[CounterEntry, _Mapping]]] = ..., truncated: _Optional[bool] = ..., coherent: _Optional[bool] = ..., partial: _Optional[bool] = ...) -> None: ...

class AddRequest(_message.Message):
    __slots__ = ("name", "amount", "ticket", "acks")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ACKS_FIELD_NUMBER: _ClassVar[int]
    name: str
    amount: _types_pb2.Number
    ticket: str
    acks: _types_pb2.Acks
    def __init__(self, name: _Optional[str] = ..., amount: _Optional[_Union[_types_pb2.Number, _Mapping]] = ..., ticket: _Optional[str] = ..., acks: _Optional[_Union[_types_pb2.Acks, str]] = ...) -> None: ...

class AddReply(_message.Message):
    __slots__ = ("value", "coherent", "duplicate", "partition", "offset", "ticket")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    COHERENT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    value: _types_pb2.Number
    coherent: bool
    duplicate: bool
    partition: int
    offset: int
    ticket: str
    def __init__(self, value: _Optional[_Union[_types_pb2.Number, _Mapping]] = ..., coherent: _Optional[bool] = ..., duplicate: _Optional[bool] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., ticket: _Optional[str] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("name", "stale_ok")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STALE_OK_FIELD_NUMBER: _ClassVar[int]
    name: str
    stale_ok: bool
    def __init__(self, name: _Optional[str] = ..., stale_ok: _Optional[bool] = ...) -> None: ...

class GetReply(_message.Message):
    __slots__ = ("value", "kind", "coherent", "expire_at_ms", "exists")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    COHERENT_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    value: _types_pb2.Number
    kind: _types_pb2.ValueKind
    coherent: bool
    expire_at_ms: int
    exists: bool
    def __init__(self, value: _Optional[_Union[_types_pb2.Number, _Mapping]] = ..., kind: _Optional[_Union[_types_pb2.ValueKind, str]] = ..., coherent: _Optional[bool] = ..., expire_at_ms: _Optional[int] = ..., exists: _Optional[bool] = ...) -> None: ...

class SetupRequest(_message.Message):
    __slots__ = ("name", "kind", "expire_at_ms", "ttl_ms", "ticket", "acks")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_AT_MS_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ACKS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: _types_pb2.ValueKind
    expire_at_ms: int
    ttl_ms: int
    ticket: str
    acks: _types_pb2.Acks
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[_types_pb2.ValueKind, str]] = ..., expire_at_ms: _Optional[int] = ..., ttl_ms: _Optional[int] = ..., ticket: _Optional[str] = ..., acks: _Optional[_Union[_types_pb2.Acks, str]] = ...) -> None: ...

class SetupReply(_message.Message):
    __slots__ = ("coherent", "kind", "expire_at_ms")
    COHERENT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_AT_MS_FIELD_NUMBER: _ClassVar[int]
    coherent: bool
    kind: _types_pb2.ValueKind
    expire_at_ms: int
    def __init__(self, coherent: _Optional[bool] = ..., kind: _Optional[_Union[_types_pb2.ValueKind, str]] = ..., expire_at_ms: _Optional[int] = ...) -> None: ...

from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ValueKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALUE_KIND_UNSPECIFIED: _ClassVar[ValueKind]
    VALUE_KIND_INT: _ClassVar[ValueKind]
    VALUE_KIND_DECIMAL: _ClassVar[ValueKind]
    VALUE_KIND_RATIONAL: _ClassVar[ValueKind]

class Acks(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACKS_UNSPECIFIED: _ClassVar[Acks]
    ACKS_NONE: _ClassVar[Acks]
    ACKS_LEADER: _ClassVar[Acks]
    ACKS_ALL: _ClassVar[Acks]
    ACKS_REPLY: _ClassVar[Acks]

class Op(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OP_UNSPECIFIED: _ClassVar[Op]
    OP_COUNTER_ADD: _ClassVar[Op]
    OP_COUNTER_SETUP: _ClassVar[Op]
    OP_UPDATE: _ClassVar[Op]
    OP_REMOVE: _ClassVar[Op]
    OP_ADD: _ClassVar[Op]
    OP_PUSH: _ClassVar[Op]
    OP_PATCH: _ClassVar[Op]
    OP_ACTION: _ClassVar[Op]
VALUE_KIND_UNSPECIFIED: ValueKind
VALUE_KIND_INT: ValueKind
VALUE_KIND_DECIMAL: ValueKind
VALUE_KIND_RATIONAL: ValueKind
ACKS_UNSPECIFIED: Acks
ACKS_NONE: Acks
ACKS_LEADER: Acks
ACKS_ALL: Acks
ACKS_REPLY: Acks
OP_UNSPECIFIED: Op
OP_COUNTER_ADD: Op
OP_COUNTER_SETUP: Op
OP_UPDATE: Op
OP_REMOVE: Op
OP_ADD: Op
OP_PUSH: Op
OP_PATCH: Op
OP_ACTION: Op

class Number(_message.Message):
    __slots__ = ("i64", "text")
    I64_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    i64: int
    text: str
    def __init__(self, i64: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ("ticket", "key", "op", "value", "amount", "action", "kind", "expire_at_ms", "hlc", "origin", "origin_seq")
    TICKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_AT_MS_FIELD_NUMBER: _ClassVar[int]
    HLC_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_SEQ_FIELD_NUMBER: _ClassVar[int]
    ticket: str
    key: str
    op: Op
    value: bytes
    amount: Number
    action: str
    kind: ValueKind
    expire_at_ms: int
    hlc: int
    origin: str
    origin_seq: int
    def __init__(self, ticket: _Optional[str] = ..., key: _Optional[str] = ..., op: _Optional[_Union[Op, str]] = ..., value: _Optional[bytes] = ..., amount: _Optional[_Union[Number, _Mapping]] = ..., action: _Optional[str] = ..., kind: _Optional[_Union[ValueKind, str]] = ..., expire_at_ms: _Optional[int] = ..., hlc: _Optional[int] = ..., origin: _Optional[str] = ..., origin_seq: _Optional[int] = ...) -> None: ...

class Commit(_message.Message):
    __slots__ = ("partition", "offset", "epoch", "record", "owner")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    partition: int
    offset: int
    epoch: int
    record: Record
    owner: str
    def __init__(self, partition: _Optional[int] = ..., offset: _Optional[int] = ..., epoch: _Optional[int] = ..., record: _Optional[_Union[Record, _Mapping]] = ..., owner: _Optional[str] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("partition", "offset", "value", "duplicate", "reply", "ticket", "error_code", "error_message")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    partition: int
    offset: int
    value: Number
    duplicate: bool
    reply: bytes
    ticket: str
    error_code: int
    error_message: str
    def __init__(self, partition: _Optional[int] = ..., offset: _Optional[int] = ..., value: _Optional[_Union[Number, _Mapping]] = ..., duplicate: _Optional[bool] = ..., reply: _Optional[bytes] = ..., ticket: _Optional[str] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("partition", "ticket", "op", "keys", "values", "amounts", "hlc", "origin", "origin_seq", "errors", "position", "action")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    AMOUNTS_FIELD_NUMBER: _ClassVar[int]
    HLC_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_SEQ_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    partition: int
    ticket: str
    op: Op
    keys: _containers.RepeatedScalarFieldContainer[str]
    values: _containers.RepeatedScalarFieldContainer[bytes]
    amounts: _containers.RepeatedScalarFieldContainer[int]
    hlc: int
    origin: str
    origin_seq: int
    errors: _containers.RepeatedCompositeFieldContainer[RecordError]
    position: int
    action: str
    def __init__(self, partition: _Optional[int] = ..., ticket: _Optional[str] = ..., op: _Optional[_Union[Op, str]] = ..., keys: _Optional[_Iterable[str]] = ..., values: _Optional[_Iterable[bytes]] = ..., amounts: _Optional[_Iterable[int]] = ..., hlc: _Optional[int] = ..., origin: _Optional[str] = ..., origin_seq: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[RecordError, _Mapping]]] = ..., position: _Optional[int] = ..., action: _Optional[str] = ...) -> None: ...

class RecordError(_message.Message):
    __slots__ = ("index", "code", "message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    code: int
    message: str
    def __init__(self, index: _Optional[int] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class BatchResult(_message.Message):
    __slots__ = ("partition", "ticket", "base_offset", "values", "exact_values", "duplicate", "errors", "error_code", "error_message", "replies", "handler_errors")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    BASE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    EXACT_VALUES_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    HANDLER_ERRORS_FIELD_NUMBER: _ClassVar[int]
    partition: int
    ticket: str
    base_offset: int
    values: _containers.RepeatedScalarFieldContainer[int]
    exact_values: _containers.RepeatedCompositeFieldContainer[Number]
    duplicate: bool
    errors: _containers.RepeatedCompositeFieldContainer[RecordError]
    error_code: int
    error_message: str
    replies: _containers.RepeatedScalarFieldContainer[bytes]
    handler_errors: _containers.RepeatedCompositeFieldContainer[RecordError]
    def __init__(self, partition: _Optional[int] = ..., ticket: _Optional[str] = ..., base_offset: _Optional[int] = ..., values: _Optional[_Iterable[int]] = ..., exact_values: _Optional[_Iterable[_Union[Number, _Mapping]]] = ..., duplicate: _Optional[bool] = ..., errors: _Optional[_Iterable[_Union[RecordError, _Mapping]]] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ..., replies: _Optional[_Iterable[bytes]] = ..., handler_errors: _Optional[_Iterable[_Union[RecordError, _Mapping]]] = ...) -> None: ...

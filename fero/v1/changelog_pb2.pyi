from fero.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CommitRequest(_message.Message):
    __slots__ = ("records", "acks", "batches")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    ACKS_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[_types_pb2.Record]
    acks: _types_pb2.Acks
    batches: _containers.RepeatedCompositeFieldContainer[_types_pb2.Batch]
    def __init__(self, records: _Optional[_Iterable[_Union[_types_pb2.Record, _Mapping]]] = ..., acks: _Optional[_Union[_types_pb2.Acks, str]] = ..., batches: _Optional[_Iterable[_Union[_types_pb2.Batch, _Mapping]]] = ...) -> None: ...

class CommitReply(_message.Message):
    __slots__ = ("results", "coherent", "batch_results")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    COHERENT_FIELD_NUMBER: _ClassVar[int]
    BATCH_RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[_types_pb2.Result]
    coherent: bool
    batch_results: _containers.RepeatedCompositeFieldContainer[_types_pb2.BatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[_types_pb2.Result, _Mapping]]] = ..., coherent: _Optional[bool] = ..., batch_results: _Optional[_Iterable[_Union[_types_pb2.BatchResult, _Mapping]]] = ...) -> None: ...

class CommitStreamRequest(_message.Message):
    __slots__ = ("id", "commit")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    id: int
    commit: CommitRequest
    def __init__(self, id: _Optional[int] = ..., commit: _Optional[_Union[CommitRequest, _Mapping]] = ...) -> None: ...

class CommitStreamReply(_message.Message):
    __slots__ = ("id", "reply", "error_code", "error_message")
    ID_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: int
    reply: CommitReply
    error_code: int
    error_message: str
    def __init__(self, id: _Optional[int] = ..., reply: _Optional[_Union[CommitReply, _Mapping]] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ...) -> None: ...

class ReadRequest(_message.Message):
    __slots__ = ("key", "stale_ok")
    KEY_FIELD_NUMBER: _ClassVar[int]
    STALE_OK_FIELD_NUMBER: _ClassVar[int]
    key: str
    stale_ok: bool
    def __init__(self, key: _Optional[str] = ..., stale_ok: _Optional[bool] = ...) -> None: ...

class ReadReply(_message.Message):
    __slots__ = ("value", "exists", "coherent")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    COHERENT_FIELD_NUMBER: _ClassVar[int]
    value: bytes
    exists: bool
    coherent: bool
    def __init__(self, value: _Optional[bytes] = ..., exists: _Optional[bool] = ..., coherent: _Optional[bool] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("partition", "prefix", "from_offsets", "default_from", "partitions", "resume")
    class Start(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        START_NOW: _ClassVar[SubscribeRequest.Start]
        START_EARLIEST: _ClassVar[SubscribeRequest.Start]
    START_NOW: SubscribeRequest.Start
    START_EARLIEST: SubscribeRequest.Start
    class FromOffsetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    class ResumeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: Position
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[Position, _Mapping]] = ...) -> None: ...
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    FROM_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FROM_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    partition: int
    prefix: str
    from_offsets: _containers.ScalarMap[int, int]
    default_from: SubscribeRequest.Start
    partitions: _containers.RepeatedScalarFieldContainer[int]
    resume: _containers.MessageMap[int, Position]
    def __init__(self, partition: _Optional[int] = ..., prefix: _Optional[str] = ..., from_offsets: _Optional[_Mapping[int, int]] = ..., default_from: _Optional[_Union[SubscribeRequest.Start, str]] = ..., partitions: _Optional[_Iterable[int]] = ..., resume: _Optional[_Mapping[int, Position]] = ...) -> None: ...

class Position(_message.Message):
    __slots__ = ("offset", "epoch", "owner")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    offset: int
    epoch: int
    owner: str
    def __init__(self, offset: _Optional[int] = ..., epoch: _Optional[int] = ..., owner: _Optional[str] = ...) -> None: ...

class SubscribeEvent(_message.Message):
    __slots__ = ("commits", "reset", "subscribed")
    class Reset(_message.Message):
        __slots__ = ("partition", "epoch", "offset")
        PARTITION_FIELD_NUMBER: _ClassVar[int]
        EPOCH_FIELD_NUMBER: _ClassVar[int]
        OFFSET_FIELD_NUMBER: _ClassVar[int]
        partition: int
        epoch: int
        offset: int
        def __init__(self, partition: _Optional[int] = ..., epoch: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...
    COMMITS_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    commits: _containers.RepeatedCompositeFieldContainer[_types_pb2.Commit]
    reset: SubscribeEvent.Reset
    subscribed: bool
    def __init__(self, commits: _Optional[_Iterable[_Union[_types_pb2.Commit, _Mapping]]] = ..., reset: _Optional[_Union[SubscribeEvent.Reset, _Mapping]] = ..., subscribed: _Optional[bool] = ...) -> None: ...

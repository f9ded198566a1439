from fero.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LogEntry(_message.Message):
    __slots__ = ("partition", "epoch", "base_offset", "records", "owner", "truncate", "install", "batch")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    BASE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_FIELD_NUMBER: _ClassVar[int]
    INSTALL_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    partition: int
    epoch: int
    base_offset: int
    records: _containers.RepeatedCompositeFieldContainer[_types_pb2.Record]
    owner: str
    truncate: bool
    install: PartitionSnapshot
    batch: _types_pb2.Batch
    def __init__(self, partition: _Optional[int] = ..., epoch: _Optional[int] = ..., base_offset: _Optional[int] = ..., records: _Optional[_Iterable[_Union[_types_pb2.Record, _Mapping]]] = ..., owner: _Optional[str] = ..., truncate: _Optional[bool] = ..., install: _Optional[_Union[PartitionSnapshot, _Mapping]] = ..., batch: _Optional[_Union[_types_pb2.Batch, _Mapping]] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("partitions", "segment", "position", "partition_states", "hlc", "partition_frames")
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_STATES_FIELD_NUMBER: _ClassVar[int]
    HLC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FRAMES_FIELD_NUMBER: _ClassVar[int]
    partitions: int
    segment: int
    position: int
    partition_states: _containers.RepeatedCompositeFieldContainer[PartitionSnapshot]
    hlc: int
    partition_frames: int
    def __init__(self, partitions: _Optional[int] = ..., segment: _Optional[int] = ..., position: _Optional[int] = ..., partition_states: _Optional[_Iterable[_Union[PartitionSnapshot, _Mapping]]] = ..., hlc: _Optional[int] = ..., partition_frames: _Optional[int] = ...) -> None: ...

class PartitionSnapshot(_message.Message):
    __slots__ = ("partition", "epoch", "next_offset", "counters", "keys", "tickets", "log_start_offset", "origins", "epochs", "key_columns", "runs", "gap_end")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    TICKETS_FIELD_NUMBER: _ClassVar[int]
    LOG_START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    ORIGINS_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    KEY_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    GAP_END_FIELD_NUMBER: _ClassVar[int]
    partition: int
    epoch: int
    next_offset: int
    counters: _containers.RepeatedCompositeFieldContainer[CounterState]
    keys: _containers.RepeatedCompositeFieldContainer[KeyState]
    tickets: _containers.RepeatedCompositeFieldContainer[TicketState]
    log_start_offset: int
    origins: _containers.RepeatedCompositeFieldContainer[OriginSeq]
    epochs: _containers.RepeatedCompositeFieldContainer[EpochStart]
    key_columns: KeyColumns
    runs: _containers.RepeatedCompositeFieldContainer[_types_pb2.Batch]
    gap_end: int
    def __init__(self, partition: _Optional[int] = ..., epoch: _Optional[int] = ..., next_offset: _Optional[int] = ..., counters: _Optional[_Iterable[_Union[CounterState, _Mapping]]] = ..., keys: _Optional[_Iterable[_Union[KeyState, _Mapping]]] = ..., tickets: _Optional[_Iterable[_Union[TicketState, _Mapping]]] = ..., log_start_offset: _Optional[int] = ..., origins: _Optional[_Iterable[_Union[OriginSeq, _Mapping]]] = ..., epochs: _Optional[_Iterable[_Union[EpochStart, _Mapping]]] = ..., key_columns: _Optional[_Union[KeyColumns, _Mapping]] = ..., runs: _Optional[_Iterable[_Union[_types_pb2.Batch, _Mapping]]] = ..., gap_end: _Optional[int] = ...) -> None: ...

class KeyColumns(_message.Message):
    __slots__ = ("keys", "values", "hlcs", "origins")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    HLCS_FIELD_NUMBER: _ClassVar[int]
    ORIGINS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[str]
    values: _containers.RepeatedScalarFieldContainer[bytes]
    hlcs: _containers.RepeatedScalarFieldContainer[int]
    origins: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, keys: _Optional[_Iterable[str]] = ..., values: _Optional[_Iterable[bytes]] = ..., hlcs: _Optional[_Iterable[int]] = ..., origins: _Optional[_Iterable[str]] = ...) -> None: ...

class OriginSeq(_message.Message):
    __slots__ = ("origin", "seq")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    origin: str
    seq: int
    def __init__(self, origin: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class EpochStart(_message.Message):
    __slots__ = ("epoch", "owner", "start_offset")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    owner: str
    start_offset: int
    def __init__(self, epoch: _Optional[int] = ..., owner: _Optional[str] = ..., start_offset: _Optional[int] = ...) -> None: ...

class CounterState(_message.Message):
    __slots__ = ("name", "kind", "value", "expire_at_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_AT_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: _types_pb2.ValueKind
    value: _types_pb2.Number
    expire_at_ms: int
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[_types_pb2.ValueKind, str]] = ..., value: _Optional[_Union[_types_pb2.Number, _Mapping]] = ..., expire_at_ms: _Optional[int] = ...) -> None: ...

class KeyState(_message.Message):
    __slots__ = ("key", "value", "hlc", "removed", "origin")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    HLC_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: bytes
    hlc: int
    removed: bool
    origin: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ..., hlc: _Optional[int] = ..., removed: _Optional[bool] = ..., origin: _Optional[str] = ...) -> None: ...

class TicketState(_message.Message):
    __slots__ = ("ticket", "offset", "value", "committed_ms", "has_value", "origin", "first_seq", "batch", "weight")
    TICKET_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_MS_FIELD_NUMBER: _ClassVar[int]
    HAS_VALUE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    ticket: str
    offset: int
    value: _types_pb2.Number
    committed_ms: int
    has_value: bool
    origin: str
    first_seq: int
    batch: _types_pb2.BatchResult
    weight: int
    def __init__(self, ticket: _Optional[str] = ..., offset: _Optional[int] = ..., value: _Optional[_Union[_types_pb2.Number, _Mapping]] = ..., committed_ms: _Optional[int] = ..., has_value: _Optional[bool] = ..., origin: _Optional[str] = ..., first_seq: _Optional[int] = ..., batch: _Optional[_Union[_types_pb2.BatchResult, _Mapping]] = ..., weight: _Optional[int] = ...) -> None: ...

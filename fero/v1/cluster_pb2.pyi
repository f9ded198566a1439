from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatusRequest(_message.Message):
    __slots__ = ("include_partitions",)
    INCLUDE_PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    include_partitions: bool
    def __init__(self, include_partitions: _Optional[bool] = ...) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("id", "address", "state", "partitions_owned", "records", "counters", "keys", "uptime_s", "version", "storage", "fsync", "replication_lag_records", "partitions_replicated", "partitions_catching_up")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_OWNED_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    FSYNC_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_LAG_RECORDS_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_REPLICATED_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_CATCHING_UP_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    state: str
    partitions_owned: int
    records: int
    counters: int
    keys: int
    uptime_s: float
    version: str
    storage: str
    fsync: str
    replication_lag_records: int
    partitions_replicated: int
    partitions_catching_up: int
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., state: _Optional[str] = ..., partitions_owned: _Optional[int] = ..., records: _Optional[int] = ..., counters: _Optional[int] = ..., keys: _Optional[int] = ..., uptime_s: _Optional[float] = ..., version: _Optional[str] = ..., storage: _Optional[str] = ..., fsync: _Optional[str] = ..., replication_lag_records: _Optional[int] = ..., partitions_replicated: _Optional[int] = ..., partitions_catching_up: _Optional[int] = ...) -> None: ...

class MemberStatus(_message.Message):
    __slots__ = ("id", "address", "status", "incarnation", "partitions_owned", "ring_checksum", "rtt_ms", "partitions_replicated")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_OWNED_FIELD_NUMBER: _ClassVar[int]
    RING_CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_REPLICATED_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    status: str
    incarnation: int
    partitions_owned: int
    ring_checksum: int
    rtt_ms: float
    partitions_replicated: int
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., status: _Optional[str] = ..., incarnation: _Optional[int] = ..., partitions_owned: _Optional[int] = ..., ring_checksum: _Optional[int] = ..., rtt_ms: _Optional[float] = ..., partitions_replicated: _Optional[int] = ...) -> None: ...

class PartitionStatus(_message.Message):
    __slots__ = ("partition", "owner", "epoch", "next_offset", "log_start_offset", "counters", "keys", "replicas", "high_watermark", "lag_records", "role")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LOG_START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    HIGH_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    LAG_RECORDS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    partition: int
    owner: str
    epoch: int
    next_offset: int
    log_start_offset: int
    counters: int
    keys: int
    replicas: _containers.RepeatedScalarFieldContainer[str]
    high_watermark: int
    lag_records: int
    role: str
    def __init__(self, partition: _Optional[int] = ..., owner: _Optional[str] = ..., epoch: _Optional[int] = ..., next_offset: _Optional[int] = ..., log_start_offset: _Optional[int] = ..., counters: _Optional[int] = ..., keys: _Optional[int] = ..., replicas: _Optional[_Iterable[str]] = ..., high_watermark: _Optional[int] = ..., lag_records: _Optional[int] = ..., role: _Optional[str] = ...) -> None: ...

class StatusReply(_message.Message):
    __slots__ = ("node", "members", "coherent", "partitions", "ring_checksum", "partition_status", "vnodes", "replication_factor")
    NODE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    COHERENT_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    RING_CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    PARTITION_STATUS_FIELD_NUMBER: _ClassVar[int]
    VNODES_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    node: NodeStatus
    members: _containers.RepeatedCompositeFieldContainer[MemberStatus]
    coherent: bool
    partitions: int
    ring_checksum: int
    partition_status: _containers.RepeatedCompositeFieldContainer[PartitionStatus]
    vnodes: int
    replication_factor: int
    def __init__(self, node: _Optional[_Union[NodeStatus, _Mapping]] = ..., members: _Optional[_Iterable[_Union[MemberStatus, _Mapping]]] = ..., coherent: _Optional[bool] = ..., partitions: _Optional[int] = ..., ring_checksum: _Optional[int] = ..., partition_status: _Optional[_Iterable[_Union[PartitionStatus, _Mapping]]] = ..., vnodes: _Optional[int] = ..., replication_factor: _Optional[int] = ...) -> None: ...

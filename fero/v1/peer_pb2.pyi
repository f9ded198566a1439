from fero.v1 import storage_pb2 as _storage_pb2
from fero.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PartitionDigest(_message.Message):
    __slots__ = ("partition", "epoch", "next_offset", "log_start_offset", "epochs", "origins", "compact", "rest_fingerprint")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LOG_START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    ORIGINS_FIELD_NUMBER: _ClassVar[int]
    COMPACT_FIELD_NUMBER: _ClassVar[int]
    REST_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    partition: int
    epoch: int
    next_offset: int
    log_start_offset: int
    epochs: _containers.RepeatedCompositeFieldContainer[_storage_pb2.EpochStart]
    origins: _containers.RepeatedCompositeFieldContainer[_storage_pb2.OriginSeq]
    compact: bool
    rest_fingerprint: int
    def __init__(self, partition: _Optional[int] = ..., epoch: _Optional[int] = ..., next_offset: _Optional[int] = ..., log_start_offset: _Optional[int] = ..., epochs: _Optional[_Iterable[_Union[_storage_pb2.EpochStart, _Mapping]]] = ..., origins: _Optional[_Iterable[_Union[_storage_pb2.OriginSeq, _Mapping]]] = ..., compact: _Optional[bool] = ..., rest_fingerprint: _Optional[int] = ...) -> None: ...

class AppendRequest(_message.Message):
    __slots__ = ("owner", "frames")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    owner: str
    frames: _containers.RepeatedCompositeFieldContainer[AppendFrame]
    def __init__(self, owner: _Optional[str] = ..., frames: _Optional[_Iterable[_Union[AppendFrame, _Mapping]]] = ...) -> None: ...

class AppendFrame(_message.Message):
    __slots__ = ("has_prev", "prev_epoch", "prev_owner", "truncate", "entry", "owner_epoch", "owner_origins", "install")
    HAS_PREV_FIELD_NUMBER: _ClassVar[int]
    PREV_EPOCH_FIELD_NUMBER: _ClassVar[int]
    PREV_OWNER_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    OWNER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    OWNER_ORIGINS_FIELD_NUMBER: _ClassVar[int]
    INSTALL_FIELD_NUMBER: _ClassVar[int]
    has_prev: bool
    prev_epoch: int
    prev_owner: str
    truncate: bool
    entry: _storage_pb2.LogEntry
    owner_epoch: int
    owner_origins: _containers.RepeatedCompositeFieldContainer[_storage_pb2.OriginSeq]
    install: _storage_pb2.PartitionSnapshot
    def __init__(self, has_prev: _Optional[bool] = ..., prev_epoch: _Optional[int] = ..., prev_owner: _Optional[str] = ..., truncate: _Optional[bool] = ..., entry: _Optional[_Union[_storage_pb2.LogEntry, _Mapping]] = ..., owner_epoch: _Optional[int] = ..., owner_origins: _Optional[_Iterable[_Union[_storage_pb2.OriginSeq, _Mapping]]] = ..., install: _Optional[_Union[_storage_pb2.PartitionSnapshot, _Mapping]] = ...) -> None: ...

class AppendReply(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[AppendResult]
    def __init__(self, results: _Optional[_Iterable[_Union[AppendResult, _Mapping]]] = ...) -> None: ...

class AppendResult(_message.Message):
    __slots__ = ("partition", "ok", "next_offset", "digest", "error")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    partition: int
    ok: bool
    next_offset: int
    digest: PartitionDigest
    error: str
    def __init__(self, partition: _Optional[int] = ..., ok: _Optional[bool] = ..., next_offset: _Optional[int] = ..., digest: _Optional[_Union[PartitionDigest, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class DigestRequest(_message.Message):
    __slots__ = ("partitions", "compact")
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    COMPACT_FIELD_NUMBER: _ClassVar[int]
    partitions: _containers.RepeatedScalarFieldContainer[int]
    compact: bool
    def __init__(self, partitions: _Optional[_Iterable[int]] = ..., compact: _Optional[bool] = ...) -> None: ...

class DigestReply(_message.Message):
    __slots__ = ("digests",)
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    digests: _containers.RepeatedCompositeFieldContainer[PartitionDigest]
    def __init__(self, digests: _Optional[_Iterable[_Union[PartitionDigest, _Mapping]]] = ...) -> None: ...

class FetchRequest(_message.Message):
    __slots__ = ("partition", "from_offset", "beyond", "max_records")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    FROM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    BEYOND_FIELD_NUMBER: _ClassVar[int]
    MAX_RECORDS_FIELD_NUMBER: _ClassVar[int]
    partition: int
    from_offset: int
    beyond: OriginVector
    max_records: int
    def __init__(self, partition: _Optional[int] = ..., from_offset: _Optional[int] = ..., beyond: _Optional[_Union[OriginVector, _Mapping]] = ..., max_records: _Optional[int] = ...) -> None: ...

class OriginVector(_message.Message):
    __slots__ = ("origins",)
    ORIGINS_FIELD_NUMBER: _ClassVar[int]
    origins: _containers.RepeatedCompositeFieldContainer[_storage_pb2.OriginSeq]
    def __init__(self, origins: _Optional[_Iterable[_Union[_storage_pb2.OriginSeq, _Mapping]]] = ...) -> None: ...

class FetchReply(_message.Message):
    __slots__ = ("entries", "records", "more", "snapshot")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_storage_pb2.LogEntry]
    records: _containers.RepeatedCompositeFieldContainer[_types_pb2.Record]
    more: bool
    snapshot: _storage_pb2.PartitionSnapshot
    def __init__(self, entries: _Optional[_Iterable[_Union[_storage_pb2.LogEntry, _Mapping]]] = ..., records: _Optional[_Iterable[_Union[_types_pb2.Record, _Mapping]]] = ..., more: _Optional[bool] = ..., snapshot: _Optional[_Union[_storage_pb2.PartitionSnapshot, _Mapping]] = ...) -> None: ...

class PeerMessage(_message.Message):
    __slots__ = ("from_address", "cluster", "ping", "ack", "nack", "ping_req", "gossip", "push_pull_request", "push_pull_response")
    FROM_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    NACK_FIELD_NUMBER: _ClassVar[int]
    PING_REQ_FIELD_NUMBER: _ClassVar[int]
    GOSSIP_FIELD_NUMBER: _ClassVar[int]
    PUSH_PULL_REQUEST_FIELD_NUMBER: _ClassVar[int]
    PUSH_PULL_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    from_address: str
    cluster: str
    ping: Ping
    ack: Ack
    nack: Nack
    ping_req: PingReq
    gossip: Gossip
    push_pull_request: PushPull
    push_pull_response: PushPull
    def __init__(self, from_address: _Optional[str] = ..., cluster: _Optional[str] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., nack: _Optional[_Union[Nack, _Mapping]] = ..., ping_req: _Optional[_Union[PingReq, _Mapping]] = ..., gossip: _Optional[_Union[Gossip, _Mapping]] = ..., push_pull_request: _Optional[_Union[PushPull, _Mapping]] = ..., push_pull_response: _Optional[_Union[PushPull, _Mapping]] = ...) -> None: ...

class DeliverReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MemberUpdate(_message.Message):
    __slots__ = ("alive", "suspect", "dead")
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    SUSPECT_FIELD_NUMBER: _ClassVar[int]
    DEAD_FIELD_NUMBER: _ClassVar[int]
    alive: AliveUpdate
    suspect: SuspectUpdate
    dead: DeadUpdate
    def __init__(self, alive: _Optional[_Union[AliveUpdate, _Mapping]] = ..., suspect: _Optional[_Union[SuspectUpdate, _Mapping]] = ..., dead: _Optional[_Union[DeadUpdate, _Mapping]] = ...) -> None: ...

class AliveUpdate(_message.Message):
    __slots__ = ("node", "address", "incarnation")
    NODE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    node: str
    address: str
    incarnation: int
    def __init__(self, node: _Optional[str] = ..., address: _Optional[str] = ..., incarnation: _Optional[int] = ...) -> None: ...

class SuspectUpdate(_message.Message):
    __slots__ = ("node", "incarnation", "from_node")
    NODE_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    FROM_NODE_FIELD_NUMBER: _ClassVar[int]
    node: str
    incarnation: int
    from_node: str
    def __init__(self, node: _Optional[str] = ..., incarnation: _Optional[int] = ..., from_node: _Optional[str] = ...) -> None: ...

class DeadUpdate(_message.Message):
    __slots__ = ("node", "incarnation", "from_node")
    NODE_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    FROM_NODE_FIELD_NUMBER: _ClassVar[int]
    node: str
    incarnation: int
    from_node: str
    def __init__(self, node: _Optional[str] = ..., incarnation: _Optional[int] = ..., from_node: _Optional[str] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ("seq", "source", "target", "ring_checksum", "updates")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    RING_CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    seq: int
    source: str
    target: str
    ring_checksum: int
    updates: _containers.RepeatedCompositeFieldContainer[MemberUpdate]
    def __init__(self, seq: _Optional[int] = ..., source: _Optional[str] = ..., target: _Optional[str] = ..., ring_checksum: _Optional[int] = ..., updates: _Optional[_Iterable[_Union[MemberUpdate, _Mapping]]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("seq", "source", "ring_checksum", "updates")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RING_CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    seq: int
    source: str
    ring_checksum: int
    updates: _containers.RepeatedCompositeFieldContainer[MemberUpdate]
    def __init__(self, seq: _Optional[int] = ..., source: _Optional[str] = ..., ring_checksum: _Optional[int] = ..., updates: _Optional[_Iterable[_Union[MemberUpdate, _Mapping]]] = ...) -> None: ...

class Nack(_message.Message):
    __slots__ = ("seq", "source", "updates")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    seq: int
    source: str
    updates: _containers.RepeatedCompositeFieldContainer[MemberUpdate]
    def __init__(self, seq: _Optional[int] = ..., source: _Optional[str] = ..., updates: _Optional[_Iterable[_Union[MemberUpdate, _Mapping]]] = ...) -> None: ...

class PingReq(_message.Message):
    __slots__ = ("seq", "source", "target", "target_address", "nack", "updates")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NACK_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    seq: int
    source: str
    target: str
    target_address: str
    nack: bool
    updates: _containers.RepeatedCompositeFieldContainer[MemberUpdate]
    def __init__(self, seq: _Optional[int] = ..., source: _Optional[str] = ..., target: _Optional[str] = ..., target_address: _Optional[str] = ..., nack: _Optional[bool] = ..., updates: _Optional[_Iterable[_Union[MemberUpdate, _Mapping]]] = ...) -> None: ...

class Gossip(_message.Message):
    __slots__ = ("source", "updates")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    source: str
    updates: _containers.RepeatedCompositeFieldContainer[MemberUpdate]
    def __init__(self, source: _Optional[str] = ..., updates: _Optional[_Iterable[_Union[MemberUpdate, _Mapping]]] = ...) -> None: ...

class MemberRecord(_message.Message):
    __slots__ = ("node", "address", "incarnation", "status")
    NODE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    node: str
    address: str
    incarnation: int
    status: str
    def __init__(self, node: _Optional[str] = ..., address: _Optional[str] = ..., incarnation: _Optional[int] = ..., status: _Optional[str] = ...) -> None: ...

class PushPull(_message.Message):
    __slots__ = ("source", "source_address", "members", "join")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    JOIN_FIELD_NUMBER: _ClassVar[int]
    source: str
    source_address: str
    members: _containers.RepeatedCompositeFieldContainer[MemberRecord]
    join: bool
    def __init__(self, source: _Optional[str] = ..., source_address: _Optional[str] = ..., members: _Optional[_Iterable[_Union[MemberRecord, _Mapping]]] = ..., join: _Optional[bool] = ...) -> None: ...

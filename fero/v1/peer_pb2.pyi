from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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

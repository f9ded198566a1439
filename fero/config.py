"""fero's configuration: one dataclass tree, documented defaults, validation, overrides.

Every constant lives here. A field can be set, from weakest to strongest, by a TOML
file (`fero serve --config fero.toml`, sections as below: `[storage] fsync = "interval"`),
an environment variable `FERO_SECTION_FIELD` (e.g. `FERO_DHT_VNODES=100`), or a flag
`--constants.SECTION.FIELD VALUE` (e.g. `--constants.dht.vnodes 100`).
`validate()` refuses a bad value at start with a message that names the field.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from fero.membership.config import MembershipConfig

MiB = 1024 * 1024


@dataclass(frozen=True)
class DhtConfig:
    #: P, the number of partitions, fixed when a cluster is created. 256 gives an even
    #: spread over up to ~50 nodes while keeping per-partition overhead small. 1..65536.
    partitions: int = 256
    #: Ring points per node. 200 (the original fero's default) keeps the busiest node
    #: within ~1.3x of the least busy. 1..10000.
    vnodes: int = 200
    #: Copies of each partition (owner + replicas), capped by the cluster size. 1..7.
    replication_factor: int = 3
    #: How long, in ms, an owner gathers new frames nobody waits for (acks NONE and
    #: LEADER) before it sends them to the replicas in one Append. An Append costs
    #: about the same CPU for one write as for fifty, so a few ms take most of the
    #: replication cost off writes that arrive one by one; acks=ALL sends at once.
    #: It is how much later than the owner a replica may see such writes. 0..1000.
    replication_linger_ms: float = 2.0


@dataclass(frozen=True)
class StorageConfig:
    #: "always": fsync every group commit before acknowledging (a billing default: an
    #: acknowledged write survives power loss); "interval": fsync every
    #: fsync_interval_ms (survives a process crash, may lose that much on power loss);
    #: "never": leave it to the OS.
    fsync: str = "always"
    #: With fsync=interval, how often to fsync, in ms. 1..60000. 100 ms bounds the loss
    #: on power failure like Redis' `appendfsync everysec`, ten times tighter.
    fsync_interval_ms: int = 100
    #: A log segment is closed at this size, in bytes; retention drops whole segments.
    segment_bytes: int = 64 * MiB
    #: Keep closed log segments at least this long (s) so subscribers can replay; the
    #: state itself is always kept (in snapshots). 0 = drop as soon as a snapshot covers them.
    retention_s: int = 24 * 3600
    #: ... and at most this many bytes of closed segments. 0 = no byte limit.
    retention_bytes: int = 1024 * MiB
    #: Take a snapshot after this many committed records, so restart replays at most
    #: about this many. 1..10^9.
    snapshot_every_records: int = 200_000
    #: ... or after this many seconds with any commits. 1..86400.
    snapshot_every_s: float = 300.0
    #: Expired counters are dropped (compaction) this long after expiry, in s.
    expired_grace_s: int = 24 * 3600
    #: Retries are recognised (same ticket) within this many seconds of the first commit...
    ticket_window_s: int = 3600
    #: ... and among the last this many tickets of a partition. Bounds memory.
    ticket_window_max: int = 100_000


@dataclass(frozen=True)
class LimitsConfig:
    #: Longest counter name or key path, in UTF-8 bytes.
    max_key_bytes: int = 512
    #: Longest ticket (idempotency key), in UTF-8 bytes.
    max_ticket_bytes: int = 128
    #: Largest value of one record, in bytes.
    max_value_bytes: int = 4 * MiB
    #: Most records in one Commit call.
    max_batch_records: int = 100_000
    #: Largest gRPC message a node accepts or sends, in bytes.
    max_message_bytes: int = 64 * MiB
    #: Writes queued but not yet durable before new writes get RESOURCE_EXHAUSTED.
    max_pending_records: int = 2_000_000


@dataclass(frozen=True)
class ClusterConfig:
    #: Nodes only talk to nodes of the same cluster name; a message from another
    #: cluster is refused. Lets two clusters share a network without merging by mistake.
    name: str = "fero"
    #: What a node does when it cannot see most of the cluster. "available": keep
    #: taking writes on every side of a split (they merge exactly when it heals) and
    #: answer coherent=false; "consistent": refuse writes with UNAVAILABLE on a node
    #: that sees no majority of the last stable membership.
    split_policy: str = "available"


@dataclass(frozen=True)
class Config:
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    #: SWIM timing; `MembershipConfig.lan()` by default, `fero serve --membership local`
    #: for loopback. Each field documents its meaning, unit and source in membership/config.py.
    membership: MembershipConfig = field(default_factory=MembershipConfig.lan)
    dht: DhtConfig = field(default_factory=DhtConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)

    def validate(self) -> "Config":
        """Returns self, or raises ValueError naming the first bad field."""
        checks: list[tuple[str, bool]] = [
            ("dht.partitions", 1 <= self.dht.partitions <= 65536),
            ("dht.vnodes", 1 <= self.dht.vnodes <= 10000),
            ("dht.replication_factor", 1 <= self.dht.replication_factor <= 7),
            ("dht.replication_linger_ms", 0 <= self.dht.replication_linger_ms <= 1000),
            ("storage.fsync", self.storage.fsync in ("always", "interval", "never")),
            ("storage.fsync_interval_ms", 1 <= self.storage.fsync_interval_ms <= 60000),
            ("storage.segment_bytes", 4096 <= self.storage.segment_bytes <= 1 << 34),
            ("storage.retention_s", self.storage.retention_s >= 0),
            ("storage.retention_bytes", self.storage.retention_bytes >= 0),
            ("storage.snapshot_every_records", 1 <= self.storage.snapshot_every_records <= 10**9),
            ("storage.snapshot_every_s", 0.01 <= self.storage.snapshot_every_s <= 86400),
            ("storage.expired_grace_s", self.storage.expired_grace_s >= 0),
            ("storage.ticket_window_s", self.storage.ticket_window_s >= 1),
            ("storage.ticket_window_max", self.storage.ticket_window_max >= 1),
            ("limits.max_key_bytes", 1 <= self.limits.max_key_bytes <= 65536),
            ("limits.max_ticket_bytes", 1 <= self.limits.max_ticket_bytes <= 4096),
            ("limits.max_value_bytes", 1 <= self.limits.max_value_bytes <= self.limits.max_message_bytes),
            ("limits.max_batch_records", 1 <= self.limits.max_batch_records <= 10**7),
            ("limits.max_message_bytes", 1024 <= self.limits.max_message_bytes <= 2**31 - 1),
            ("limits.max_pending_records", self.limits.max_pending_records >= 1),
        ]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"invalid config {name} = {self.get(name)!r}")
        if self.cluster.split_policy not in ("available", "consistent"):
            raise ValueError(f"invalid config cluster.split_policy = {self.cluster.split_policy!r}: available or consistent")
        if not self.cluster.name:
            raise ValueError("invalid config cluster.name = '': a cluster needs a name")
        try:
            self.membership.validate()
        except ValueError as exc:
            raise ValueError(f"invalid config membership: {exc}") from None
        return self

    def get(self, dotted: str) -> Any:
        section, name = dotted.split(".", 1)
        return getattr(getattr(self, section), name)

    def with_overrides(self, overrides: Mapping[str, str]) -> "Config":
        """A copy with `{"section.field": "text"}` applied; ValueError names a bad field."""
        cfg = self
        for dotted, text in overrides.items():
            parts = dotted.split(".")
            sections = {f.name for f in dataclasses.fields(cfg)}
            if len(parts) != 2 or parts[0] not in sections:
                raise ValueError(f"unknown config field {dotted!r}")
            section_name, name = parts
            section = getattr(cfg, section_name)
            fields = {f.name: f for f in dataclasses.fields(section)}
            if name not in fields:
                raise ValueError(f"unknown config field {dotted!r}; {section_name} has {', '.join(fields)}")
            value = _convert(dotted, type(getattr(section, name)), text)
            cfg = dataclasses.replace(cfg, **{section_name: dataclasses.replace(section, **{name: value})})
        return cfg

    def with_toml(self, path: str) -> "Config":
        """A copy with the values of a TOML file applied; ValueError names a bad field."""
        import tomllib

        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as exc:
            raise ValueError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
        overrides: dict[str, str] = {}
        for section, fields in data.items():
            if not isinstance(fields, dict):
                raise ValueError(f"config file {path}: {section!r} must be a [section] of fields")
            for name, value in fields.items():
                overrides[f"{section}.{name}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return self.with_overrides(overrides)

    def with_environment(self, environ: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if environ is None else environ
        overrides = {}
        for section in dataclasses.fields(self):
            for f in dataclasses.fields(getattr(self, section.name)):
                key = f"FERO_{section.name}_{f.name}".upper()
                if key in env:
                    overrides[f"{section.name}.{f.name}"] = env[key]
        return self.with_overrides(overrides)


def parse_constant_flags(argv: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Splits `--constants.a.b VALUE` (or `--constants.a.b=VALUE`) out of argv."""
    overrides: dict[str, str] = {}
    rest: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--constants."):
            key = a[len("--constants.") :]
            if "=" in key:
                key, value = key.split("=", 1)
            else:
                if i + 1 >= len(args):
                    raise ValueError(f"{a} needs a value")
                i += 1
                value = args[i]
            overrides[key] = value
        else:
            rest.append(a)
        i += 1
    return overrides, rest


def _convert(name: str, typ: type, text: str) -> Any:
    try:
        if typ is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if typ is int:
            return int(text.replace("_", ""))
        if typ is float:
            return float(text)
        return typ(text)
    except ValueError:
        raise ValueError(f"invalid config {name} = {text!r}: expected {typ.__name__}") from None

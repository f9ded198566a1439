"""fero.config: defaults validate, overrides by flag and environment, bad values named."""

from __future__ import annotations

import dataclasses

import pytest

from fero.config import Config, DhtConfig, LimitsConfig, StorageConfig, parse_constant_flags


def test_defaults_validate() -> None:
    assert Config().validate() == Config()


@pytest.mark.parametrize(
    "dotted, text, expected",
    [
        ("dht.vnodes", "100", 100),
        ("dht.partitions", "1_024", 1024),
        ("storage.fsync", "interval", "interval"),
        ("storage.snapshot_every_s", "0.5", 0.5),
        ("limits.max_key_bytes", "64", 64),
    ],
)
def test_override_by_dotted_name(dotted: str, text: str, expected: object) -> None:
    cfg = Config().with_overrides({dotted: text})
    assert cfg.get(dotted) == expected
    assert cfg.validate() is cfg
    # Nothing else changed.
    others = {f"{s.name}.{f.name}" for s in dataclasses.fields(cfg) for f in dataclasses.fields(getattr(cfg, s.name))}
    for name in others - {dotted}:
        assert cfg.get(name) == Config().get(name)


@pytest.mark.parametrize(
    "argv, overrides, rest",
    [
        (["--constants.dht.vnodes", "100", "serve"], {"dht.vnodes": "100"}, ["serve"]),
        (["--port", "1", "--constants.storage.fsync=never"], {"storage.fsync": "never"}, ["--port", "1"]),
        ([], {}, []),
    ],
)
def test_parse_constant_flags(argv: list[str], overrides: dict, rest: list[str]) -> None:
    assert parse_constant_flags(argv) == (overrides, rest)


def test_flag_without_value_is_refused() -> None:
    with pytest.raises(ValueError) as info:
        parse_constant_flags(["--constants.dht.vnodes"])
    assert "dht.vnodes" in str(info.value)


@pytest.mark.parametrize(
    "env, dotted, expected",
    [
        ({"FERO_DHT_VNODES": "100"}, "dht.vnodes", 100),
        ({"FERO_STORAGE_FSYNC_INTERVAL_MS": "250"}, "storage.fsync_interval_ms", 250),
        ({"FERO_LIMITS_MAX_MESSAGE_BYTES": "2048"}, "limits.max_message_bytes", 2048),
        ({"fero_dht_vnodes": "100", "OTHER": "x"}, "dht.vnodes", 200),  # names are upper case
    ],
)
def test_environment(env: dict, dotted: str, expected: object) -> None:
    assert Config().with_environment(env).get(dotted) == expected


def test_flags_win_over_environment() -> None:
    flags, _ = parse_constant_flags(["--constants.dht.vnodes", "7"])
    cfg = Config().with_environment({"FERO_DHT_VNODES": "100", "FERO_DHT_PARTITIONS": "64"}).with_overrides(flags)
    assert (cfg.dht.vnodes, cfg.dht.partitions) == (7, 64)


@pytest.mark.parametrize(
    "dotted, text",
    [
        ("dht.vnodes", "many"),
        ("dht.vnodes", "1.5"),
        ("storage.snapshot_every_s", "soon"),
        ("dht.nope", "1"),
        ("nope.vnodes", "1"),
        ("dht", "1"),
        ("dht.vnodes.x", "1"),
        # Attributes of Config that are not sections must not be taken for one.
        ("validate.x", "1"),
        ("with_overrides.x", "1"),
        ("__class__.x", "1"),
    ],
)
def test_bad_override_names_the_field(dotted: str, text: str) -> None:
    with pytest.raises(ValueError) as info:
        Config().with_overrides({dotted: text})
    assert dotted in str(info.value)


def test_bad_environment_value_names_the_field() -> None:
    with pytest.raises(ValueError) as info:
        Config().with_environment({"FERO_DHT_REPLICATION_FACTOR": "three"})
    assert "dht.replication_factor" in str(info.value)


@pytest.mark.parametrize(
    "cfg, field",
    [
        (Config(dht=DhtConfig(partitions=0)), "dht.partitions"),
        (Config(dht=DhtConfig(vnodes=10001)), "dht.vnodes"),
        (Config(dht=DhtConfig(replication_factor=8)), "dht.replication_factor"),
        (Config(storage=StorageConfig(fsync="sometimes")), "storage.fsync"),
        (Config(storage=StorageConfig(fsync_interval_ms=0)), "storage.fsync_interval_ms"),
        (Config(storage=StorageConfig(segment_bytes=100)), "storage.segment_bytes"),
        (Config(storage=StorageConfig(retention_s=-1)), "storage.retention_s"),
        (Config(storage=StorageConfig(ticket_window_max=0)), "storage.ticket_window_max"),
        (Config(limits=LimitsConfig(max_key_bytes=0)), "limits.max_key_bytes"),
        (Config(limits=LimitsConfig(max_message_bytes=100, max_value_bytes=50)), "limits.max_message_bytes"),
        (Config(limits=LimitsConfig(max_message_bytes=2048, max_value_bytes=4096)), "limits.max_value_bytes"),
        (Config(limits=LimitsConfig(max_batch_records=0)), "limits.max_batch_records"),
    ],
)
def test_validate_names_the_bad_field(cfg: Config, field: str) -> None:
    with pytest.raises(ValueError) as info:
        cfg.validate()
    assert field in str(info.value)
    assert repr(cfg.get(field)) in str(info.value)


@pytest.mark.parametrize(
    "dotted, text",
    [("dht.partitions", "65536"), ("dht.partitions", "1"), ("limits.max_message_bytes", "1024"), ("storage.retention_s", "0")],
)
def test_bounds_are_inclusive(dotted: str, text: str) -> None:
    cfg = Config().with_overrides({dotted: text})
    if dotted == "limits.max_message_bytes":
        cfg = cfg.with_overrides({"limits.max_value_bytes": "1024"})
    assert cfg.validate() is cfg


def test_toml_file_then_environment_then_flags(tmp_path):
    from fero.config import Config

    p = tmp_path / "fero.toml"
    p.write_text('[storage]\nfsync = "interval"\nfsync_interval_ms = 250\n[dht]\nvnodes = 50\n[cluster]\nsplit_policy = "consistent"\n')
    cfg = Config().with_toml(str(p)).with_environment({"FERO_DHT_VNODES": "60"}).with_overrides({"storage.fsync_interval_ms": "300"}).validate()
    assert (cfg.storage.fsync, cfg.storage.fsync_interval_ms, cfg.dht.vnodes, cfg.cluster.split_policy) == (
        "interval", 300, 60, "consistent")


def test_toml_file_errors_name_the_problem(tmp_path):
    import pytest

    from fero.config import Config

    bad = tmp_path / "bad.toml"
    bad.write_text("[storage]\nfsync = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        Config().with_toml(str(bad))
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[storage]\nfsink = 'always'\n")
    with pytest.raises(ValueError, match="unknown config field 'storage.fsink'"):
        Config().with_toml(str(unknown))
    with pytest.raises(ValueError, match="cannot read config file"):
        Config().with_toml(str(tmp_path / "missing.toml"))
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[dht]\nvnodes = 0\n")
    with pytest.raises(ValueError, match="invalid config dht.vnodes = 0"):
        Config().with_toml(str(wrong)).validate()

"""Presets carry memberlist's numbers, and validation names the bad field."""

from __future__ import annotations

import pytest

from fero.membership.config import MembershipConfig, push_pull_scale


def test_lan_preset_is_memberlist_default_lan_config() -> None:
    c = MembershipConfig.lan()
    assert (c.probe_interval_s, c.probe_timeout_s, c.indirect_checks) == (1.0, 0.5, 3)
    assert (c.suspicion_mult, c.suspicion_max_timeout_mult, c.retransmit_mult) == (4, 6, 4)
    assert (c.gossip_interval_s, c.gossip_nodes, c.gossip_to_the_dead_s) == (0.2, 3, 30.0)
    assert (c.push_pull_interval_s, c.awareness_max_multiplier) == (30.0, 8)


def test_local_preset_is_memberlist_default_local_config() -> None:
    c = MembershipConfig.local()
    assert (c.probe_interval_s, c.probe_timeout_s, c.indirect_checks) == (1.0, 0.2, 1)
    assert (c.suspicion_mult, c.retransmit_mult) == (3, 2)
    assert (c.gossip_interval_s, c.gossip_to_the_dead_s, c.push_pull_interval_s) == (0.1, 15.0, 15.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("probe_interval_s", 0.0),
        ("probe_timeout_s", 1.0),  # must be below the probe interval
        ("indirect_checks", -1),
        ("suspicion_mult", 0),
        ("gossip_nodes", 0),
        ("nack_timeout_fraction", 1.5),
        ("max_packet_bytes", 100),
    ],
)
def test_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        MembershipConfig.lan().with_(**{field: value})


@pytest.mark.parametrize(
    ("members", "expected_s"),
    [(1, 30.0), (32, 30.0), (33, 60.0), (64, 60.0), (65, 90.0), (1000, 180.0)],
)
def test_push_pull_scale(members: int, expected_s: float) -> None:
    # memberlist util_test.go: ceil(log2 N - log2 32) + 1 times the interval above 32
    assert push_pull_scale(30.0, members) == expected_s

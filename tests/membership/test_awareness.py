"""Lifeguard local health: clamping, scaling and the per-probe delta."""

from __future__ import annotations

import pytest

from fero.membership.awareness import Awareness, probe_delta


def test_score_is_clamped_and_scales_timeouts() -> None:
    awareness = Awareness(max_multiplier=8)
    awareness.apply_delta(-1)
    assert awareness.score == 0
    assert awareness.scale(0.5) == 0.5
    awareness.apply_delta(3)
    assert awareness.scale(0.5) == 2.0  # (3 + 1) * 0.5
    awareness.apply_delta(100)
    assert awareness.score == 7  # max - 1
    assert awareness.scale(1.0) == 8.0


def test_max_multiplier_one_disables_lifeguard() -> None:
    awareness = Awareness(max_multiplier=1)
    awareness.apply_delta(5)
    assert awareness.score == 0 and awareness.scale(1.0) == 1.0
    with pytest.raises(ValueError):
        Awareness(0)


@pytest.mark.parametrize(
    ("acked", "expected_nacks", "nacks", "delta"),
    [
        (True, 0, 0, -1),
        (True, 3, 0, -1),  # an ack is all that matters
        (False, 0, 0, 1),  # nobody to vouch for our network: count it against us
        (False, 3, 3, 0),  # every intermediary answered: the target is the problem
        (False, 3, 1, 2),  # two nacks missing: our packets are being lost or late
        (False, 3, 0, 3),
    ],
)
def test_probe_delta(acked: bool, expected_nacks: int, nacks: int, delta: int) -> None:
    assert probe_delta(acked, expected_nacks, nacks) == delta

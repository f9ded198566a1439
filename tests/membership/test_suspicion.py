"""Suspicion maths against values worked out by hand (and memberlist's own table)."""

from __future__ import annotations

import math

import pytest

from fero.membership.suspicion import (
    Suspicion,
    remaining_suspicion_time_s,
    suspicion_confirmations,
    suspicion_timeout_s,
)


@pytest.mark.parametrize(
    ("mult", "members", "interval_s", "expected_s"),
    [
        (3, 0, 1.0, 3.0),  # log10 of nothing is clamped: at least mult * interval
        (3, 1, 1.0, 3.0),
        (3, 10, 1.0, 3.0),  # log10(10) = 1
        (3, 100, 1.0, 6.0),  # log10(100) = 2
        (4, 1000, 1.0, 12.0),
        (5, 1000, 0.5, 7.5),
        (4, 200, 1.0, 9.20412),  # 4 * 2.30103
        (4, 5, 1.0, 4.0),  # log10(5) < 1 is clamped to 1
    ],
)
def test_suspicion_timeout(mult: int, members: int, interval_s: float, expected_s: float) -> None:
    assert suspicion_timeout_s(mult, members, interval_s) == pytest.approx(expected_s, abs=1e-5)


@pytest.mark.parametrize(
    ("mult", "members", "expected_k"),
    [
        (4, 200, 2),  # mult - 2
        (4, 4, 2),  # exactly K others besides the suspect and the first accuser
        (4, 3, 0),  # too few members to ever confirm: go straight to min
        (3, 3, 1),
        (3, 2, 0),
        (1, 100, 0),  # mult - 2 < 0 never means negative confirmations
    ],
)
def test_confirmations_wanted(mult: int, members: int, expected_k: int) -> None:
    assert suspicion_confirmations(mult, members) == expected_k


@pytest.mark.parametrize(
    ("n", "k", "elapsed_s", "min_s", "max_s", "expected_s"),
    [
        # memberlist suspicion_test.go TestSuspicion_remainingSuspicionTime
        (0, 3, 0.0, 2.0, 30.0, 30.0),
        (1, 3, 2.0, 2.0, 30.0, 14.0),  # log2/log4 = 1/2: 30 - 14 = 16, minus 2 elapsed
        (2, 3, 3.0, 2.0, 30.0, 4.81),  # log3/log4 = .79248: 30 - 22.1895 = 7.8105 -> 7.810 ms floor
        (3, 3, 4.0, 2.0, 30.0, -2.0),  # all confirmations: min
        (4, 3, 5.0, 2.0, 30.0, -3.0),  # beyond K never goes below min
        (5, 3, 10.0, 2.0, 30.0, -8.0),
        (0, 0, 1.0, 5.0, 30.0, 4.0),  # k = 0: min from the start
    ],
)
def test_remaining_suspicion_time(n: int, k: int, elapsed_s: float, min_s: float, max_s: float, expected_s: float) -> None:
    assert remaining_suspicion_time_s(n, k, elapsed_s, min_s, max_s) == pytest.approx(expected_s, abs=1e-9)


def test_confirmations_shorten_the_deadline_only_for_new_accusers() -> None:
    suspicion = Suspicion("a", incarnation=3, k=2, min_s=10.0, max_s=60.0, now=100.0)
    assert suspicion.deadline_s == 160.0
    assert not suspicion.confirm("a", 101.0)  # the first accuser is not a confirmation
    assert suspicion.confirm("b", 101.0)
    # log2/log3 = .6309298: 60 - 31.546488 = 28.453512 -> 28.453 (ms floor), from the start
    assert suspicion.deadline_s == pytest.approx(128.453, abs=1e-9)
    assert not suspicion.confirm("b", 102.0)
    assert suspicion.confirm("c", 102.0)
    assert suspicion.deadline_s == pytest.approx(110.0)
    assert not suspicion.confirm("d", 103.0)  # K reached: nothing more to shorten
    assert suspicion.confirmations == 2


def test_no_confirmations_needed_means_min_timeout() -> None:
    suspicion = Suspicion("a", incarnation=1, k=0, min_s=4.0, max_s=24.0, now=0.0)
    assert suspicion.deadline_s == 4.0
    assert not suspicion.confirm("b", 1.0)
    assert math.isclose(suspicion.deadline_s, 4.0)

"""Tests of chapter 5's helpers (wganbook.lab.wgandiv) against hand-computed values."""

import math

import pytest

from wganbook import divergence
from wganbook.lab import wgandiv
from wganbook.lipschitz import SAMPLING_STRATEGIES


def _record(method, strategy, seed, gap):
    return {
        "combo": {"method": method, "strategy": strategy},
        "seed": seed,
        "metrics": {"w1_estimate": gap, "fd": 1.0},
        "config": {"method": method, "strategy": strategy},
    }


def test_critic_gap_ratio_by_hand():
    recs = [
        _record("wgan-div", "real", 0, 3.0),
        _record("wgan-div", "real", 1, 5.0),
        _record("wgan-div", "fake", 0, 7.0),
        _record("wgan-div", "real-fake", 0, 1.0),
        _record("wgan-div", "pooled-pairs", 0, 3.0),
        _record("wgan-gp", "real", 0, 100.0),
        _record("wgan-gp", "real-fake", 0, 100.0),
    ]
    blind = [s for s in divergence.DENSITY_STRATEGIES if s not in divergence.GAP_CHARGING_STRATEGIES]
    charging = list(divergence.GAP_CHARGING_STRATEGIES)
    # WGAN-div runs only: (3 + 5 + 7) / 3 = 5 against (1 + 3) / 2 = 2
    assert wgandiv.critic_gap_ratio(recs, blind, charging) == pytest.approx(2.5)
    assert wgandiv.critic_gap_ratio(recs, charging, blind) == pytest.approx(0.4)
    assert wgandiv.critic_gap_ratio(recs, "real", "fake") == pytest.approx(4.0 / 7.0)
    assert wgandiv.critic_gap_ratio(recs, ["real"], ["real-fake"], method="wgan-gp") == pytest.approx(1.0)
    assert wgandiv.critic_gap_ratio(recs, ["real"], ["real-fake"], metric="fd") == pytest.approx(1.0)
    # a group without runs (a chapter run with a subset of the strategies): nan
    assert math.isnan(wgandiv.critic_gap_ratio(recs, ["real+fake"], charging))


def test_the_gap_charging_strategies_are_the_two_interpolating_between_real_and_fake():
    # the split chapter 5's ratio relies on: real-fake interpolates, alone or pooled
    assert set(divergence.GAP_CHARGING_STRATEGIES) == {"real-fake", "pooled-pairs"}
    assert set(divergence.DENSITY_STRATEGIES) == set(SAMPLING_STRATEGIES)

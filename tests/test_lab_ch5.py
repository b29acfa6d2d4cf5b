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


_P_SEP = divergence.GaussianMixture1D([-1.0], [0.1])
_Q_SEP = divergence.GaussianMixture1D([1.0], [0.1])


def test_objective_over_steps_is_gap_minus_penalty_and_resumes_exactly():
    hp = {"k": 2.0, "p": 6.0, "strategy": "real+fake"}
    rows = wgandiv.objective_over_steps("wgan-div", _P_SEP, _Q_SEP, [3, 7], seed=101, n_eval=256, **hp)
    assert [r["step"] for r in rows] == [3, 7]
    for r in rows:
        assert r["objective"] == pytest.approx(r["gap"] - r["penalty"], abs=1e-5)
    # evaluating at step 3 does not disturb training: 7 steps in one go give the same critic
    (alone,) = wgandiv.objective_over_steps("wgan-div", _P_SEP, _Q_SEP, [7], seed=101, n_eval=256, **hp)
    assert alone["objective"] == pytest.approx(rows[1]["objective"], rel=1e-6)


def test_gap_blind_penalty_lets_the_objective_exceed_the_finite_maximum():
    # disjoint supports (5 sigma from the gap): W_2,6 with real-fake interpolates is finite, about
    # (5/6) 2 (2 * 6 / 2)^(-1/5) = 1.165; raw samples leave the gap unpenalised
    limit = divergence.separated_limit_wkp("real-fake")
    assert limit == pytest.approx(5 / 6 * 2 * 6 ** (-1 / 5), rel=1e-9)
    cps = [60, 120]
    blind = wgandiv.objective_over_steps("wgan-div", _P_SEP, _Q_SEP, cps, seed=100, strategy="real+fake")
    inter = wgandiv.objective_over_steps("wgan-div", _P_SEP, _Q_SEP, cps, seed=100, strategy="real-fake")
    assert inter[-1]["objective"] <= 1.05 * limit  # no critic beats the maximum (up to sampling noise)
    assert blind[-1]["objective"] > 3 * limit
    assert blind[-1]["objective"] > blind[0]["objective"]  # still climbing


def test_objective_over_steps_rejects_bad_checkpoints():
    for bad in ([], [0, 5], [5, 5], [10, 5], [2.5]):
        with pytest.raises(ValueError, match="checkpoints"):
            wgandiv.objective_over_steps("wgan-div", _P_SEP, _Q_SEP, bad)


def test_fit_critic_1d_with_zero_steps_is_the_untrained_critic():
    P = divergence.GaussianMixture1D([-1.0], [0.5])
    untrained, c0 = wgandiv.fit_critic_1d("wgan-div", P, P, steps=0, seed=3, n_eval=512, k=2.0, p=6.0)
    _, c1 = wgandiv.fit_critic_1d("wgan-div", P, P, steps=1, seed=3, n_eval=512, k=2.0, p=6.0)
    w0 = [p.detach().clone() for p in c0.parameters()]
    w1 = [p.detach().clone() for p in c1.parameters()]
    # same initialisation: one Adam step moves every weight by about lr = 2e-3 at most
    assert all((a - b).abs().max() <= 2.1e-3 for a, b in zip(w0, w1))
    assert any((a - b).abs().max() > 0 for a, b in zip(w0, w1))
    # at P = Q the objective is -penalty up to the sampling noise of the score gap
    assert untrained["objective"] == pytest.approx(untrained["gap"] - untrained["penalty"], abs=1e-5)
    with pytest.raises(ValueError, match="steps"):
        wgandiv.fit_critic_1d("wgan-div", P, P, steps=-1)

"""Tests of wganbook.lab.gaussians1d: the optimal discriminator, profiles, fits, job runner."""

import math

import numpy as np
import pytest
import torch

from wganbook.lab import gaussians1d as G


def test_optimal_discriminator_is_the_density_ratio():
    from scipy.stats import norm

    x = np.linspace(-4, 4, 81)
    pr, pg = norm(-2, 0.5).pdf(x), norm(2, 0.5).pdf(x)
    np.testing.assert_allclose(G.optimal_discriminator(x, -2, 2, 0.5), pr / (pr + pg), rtol=1e-9)
    np.testing.assert_allclose(G.optimal_logit(x, -2, 2, 0.5), -16 * x, atol=1e-12)
    d = G.optimal_discriminator(x, -2, 2, 0.5)
    np.testing.assert_allclose(G.optimal_minimax_gradient(x, -2, 2, 0.5), 16 * d, rtol=1e-12)


def test_profiles_of_known_functions():
    x = np.linspace(-3, 3, 61)

    class Affine(torch.nn.Module):
        def forward(self, z):
            return (-1.5 * z + 0.2).reshape(-1)

    p = G.critic_profile(Affine(), x)
    np.testing.assert_allclose(p["slope"], -1.5, rtol=1e-6)
    lf = G.linear_fit(x, p["f"])
    assert lf["slope"] == pytest.approx(-1.5, rel=1e-6) and lf["r2"] == pytest.approx(1.0)
    # a discriminator with logit h(x) = -16 x: minimax gradient = D * 16 (sign +), nonsat = -(1 - D) 16
    q = G.discriminator_profile(torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Flatten(0)), x)
    assert q["D"].shape == (61,)

    class Logit(torch.nn.Module):
        def forward(self, z):
            return (-16.0 * z).reshape(-1)

    q = G.discriminator_profile(Logit(), x)
    d = 1 / (1 + np.exp(16 * x))
    np.testing.assert_allclose(q["minimax"], 16 * d, rtol=1e-4, atol=1e-30)
    np.testing.assert_allclose(q["nonsat"], -16 * (1 - d), rtol=1e-4, atol=1e-12)
    with pytest.raises(ValueError, match="same length"):
        G.linear_fit([1, 2], [1, 2])


def test_sampler_is_seeded_and_checked():
    a, b = G.Gaussian1D(1.0, 2.0, seed=3), G.Gaussian1D(1.0, 2.0, seed=3)
    assert torch.equal(a(5), b(5)) and a(5).shape == (5, 1)
    big = G.Gaussian1D(1.0, 2.0, seed=4)(200_000)
    assert float(big.mean()) == pytest.approx(1.0, abs=0.02) and float(big.std()) == pytest.approx(2.0, abs=0.02)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        G.Gaussian1D(0.0, 0.0)


def test_fit_networks_serial_equals_workers_and_learns_the_sign():
    base = dict(width=8, depth=2, steps=30, batch_size=32, mu_r=-2.0, mu_g=2.0, sigma=0.5, record_every=10)
    jobs = [
        dict(base, method="wgan-gp", seed=0, hp=dict(lr=1e-2, betas=(0.5, 0.9), lam=10.0)),
        dict(base, method="wgan-clip", seed=1, hp=dict(lr=5e-5, clip=0.01)),
    ]
    serial = G.fit_networks(jobs, workers=1)
    again = G.fit_networks(jobs, workers=1)
    for (n1, h1), (n2, h2) in zip(serial, again):
        assert h1 == h2
        assert all(torch.equal(p, q) for p, q in zip(n1.parameters(), n2.parameters()))
    clipped = serial[1][0]
    assert max(p.abs().max().item() for p in clipped.parameters()) <= 0.01 + 1e-9
    assert serial[0][1]["w1_estimate"][-1] > 0  # real scored higher after a few steps
    with pytest.raises(ValueError, match="missing"):
        G.fit_networks([{"method": "wgan-gp"}])
    with pytest.raises(ValueError, match="unknown method"):
        G.fit_networks([dict(jobs[0], method="nope")])


class _Affine(torch.nn.Module):
    def __init__(self, a, b=0.0):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, z):
        return (self.a * z + self.b).reshape(-1)


def test_profile_stats_of_known_profiles():
    x = np.linspace(-4.5, 4.5, 361)
    mu_r, mu_g, sigma = -2.0, 2.0, 0.5
    # the optimal discriminator: |d/dx log(1 - D*)| = 16 D*(x) is largest at the left edge of the
    # fake mode, x = mu_g - 2 sigma = 1, where D*(1) = sigmoid(-16)
    disc = {"minimax": -G.optimal_minimax_gradient(x, mu_r, mu_g, sigma)}
    critics = {
        "affine": G.critic_profile(_Affine(-1.5, 0.2), x),
        "saturating": {"f": np.tanh(-3 * x), "slope": -3 / np.cosh(3 * x) ** 2},
    }
    s = G.profile_stats(x, mu_r, mu_g, sigma, disc, critics)
    assert s["max_minimax"] == pytest.approx(16 / (1 + math.exp(16)), rel=1e-9)
    assert s["fits"]["affine"]["r2"] == pytest.approx(1.0, abs=1e-9)
    assert s["fits"]["affine"]["slope"] == pytest.approx(-1.5, rel=1e-6)
    assert s["slope_ratio"]["affine"] == pytest.approx(1.0, abs=1e-6)
    # on [-3, 3] the tanh ramp's slope falls from 3 at 0 to 3 / cosh(9)^2 at the ends
    assert s["slope_ratio"]["saturating"] == pytest.approx(1 / math.cosh(9) ** 2, rel=1e-6)
    with pytest.raises(ValueError, match="fake mode"):
        G.profile_stats(np.linspace(-4, -3, 5), mu_r, mu_g, sigma, disc, critics)


def test_gp_slope_is_one_plus_d_over_two_lambda():
    assert G.gp_slope(4.0, 10.0) == pytest.approx(1.2)
    assert G.gp_slope(4.0, 1.0) == pytest.approx(3.0)  # chapter 1, exercise 5
    assert G.gp_slope(0.0, 1.0) == 1.0
    with pytest.raises(ValueError, match="lam"):
        G.gp_slope(4.0, 0.0)
    with pytest.raises(ValueError, match="d must be"):
        G.gp_slope(-1.0, 1.0)


def test_fresh_estimates_use_their_own_streams():
    mu_r, mu_g, sigma, n, seed = -2.0, 2.0, 0.5, 50_000, 3
    real = G.Gaussian1D(mu_r, sigma, seed=10**6 + seed)(n)
    fake = G.Gaussian1D(mu_g, sigma, seed=2 * 10**6 + seed)(n)
    est = G.fresh_estimates({"minus x": _Affine(-1.0), "2x + 1": _Affine(2.0, 1.0)}, mu_r, mu_g, sigma, n, seed)
    # an affine critic a x + b estimates a (mean real - mean fake), on the same samples for every critic
    gap = float(real.mean() - fake.mean())
    assert est["minus x"] == pytest.approx(-gap, rel=1e-5)
    assert est["2x + 1"] == pytest.approx(2 * gap, rel=1e-5)
    assert est["minus x"] == pytest.approx(4.0, abs=3 * 0.5 * math.sqrt(2 / n) * 3)  # W1 = d = 4
    with pytest.raises(ValueError, match="n must be"):
        G.fresh_estimates({}, mu_r, mu_g, sigma, 0)

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
    base = dict(width=8, depth=2, steps=30, batch_size=32, mu_r=-2.0, mu_g=2.0, sigma=0.5,
                record_every=10)
    jobs = [dict(base, method="wgan-gp", seed=0, hp=dict(lr=1e-2, betas=(0.5, 0.9), lam=10.0)),
            dict(base, method="wgan-clip", seed=1, hp=dict(lr=5e-5, clip=0.01))]
    serial = G.fit_networks(jobs, workers=1)
    again = G.fit_networks(jobs, workers=1)
    for (n1, h1), (n2, h2) in zip(serial, again):
        assert h1 == h2
        assert all(torch.equal(p, q) for p, q in zip(n1.parameters(), n2.parameters()))
    clipped = serial[1][0]
    assert max(p.abs().max().item() for p in clipped.parameters()) <= 0.01 + 1e-9
    assert serial[0][1]["w1_estimate"][-1] > 0       # real scored higher after a few steps
    with pytest.raises(ValueError, match="missing"):
        G.fit_networks([{"method": "wgan-gp"}])
    with pytest.raises(ValueError, match="unknown method"):
        G.fit_networks([dict(jobs[0], method="nope")])

"""Mathematical tests of wganbook.likelihood: KL of Gaussians, the noisy line model, ML noise."""

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm

from wganbook import likelihood as L


def test_gaussian_kl_against_quadrature_and_degenerate_cases():
    for mp, sp, mq, sq in ((0.0, 1.0, 0.5, 2.0), (1.0, 0.3, -1.0, 0.7)):
        p, q = norm(mp, sp), norm(mq, sq)
        ref = quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), mp - 12 * sp, mp + 12 * sp)[0]
        assert L.gaussian_kl(mp, sp, mq, sq) == pytest.approx(ref, rel=1e-8)
    assert L.gaussian_kl(0.0, 0.0, 0.0, 1.0) == math.inf  # point mass vs a density
    assert L.gaussian_kl(0.0, 1.0, 0.0, 0.0) == math.inf
    assert L.gaussian_kl(0.5, 0.0, 0.5, 0.0) == 0.0
    assert L.gaussian_kl(0.5, 0.0, 0.0, 0.0) == math.inf
    with pytest.raises(ValueError, match="sigma_q must be >= 0"):
        L.gaussian_kl(0.0, 1.0, 0.0, -1.0)


def test_kl_is_minus_entropy_minus_log_likelihood():
    th, s = 0.4, 0.05
    sig = np.array([0.1, 0.4, 1.0])
    entropy = 0.5 * math.log(2 * math.pi * math.e * s**2)
    np.testing.assert_allclose(L.line_kl(th, sig, s), -entropy - L.line_log_likelihood(th, sig, s), rtol=1e-12)
    # Monte Carlo log-likelihood
    x = np.random.default_rng(0).normal(0.0, s, 200_000)
    mc = norm(th, 0.4).logpdf(x).mean()
    assert L.line_log_likelihood(th, 0.4, s) == pytest.approx(mc, abs=2e-3)


def test_ml_noise_width_is_the_optimum():
    for th, s in ((0.5, 0.0), (0.5, 0.1), (-0.2, 0.01)):
        sig = np.linspace(0.01, 2.0, 200_001)
        best = sig[np.argmax(L.line_log_likelihood(th, sig, s))]
        assert best == pytest.approx(L.ml_noise_width(th, s), abs=2e-5)
        if s > 0:  # at s = 0 the KL is +inf for every sigma
            assert sig[np.argmin(L.line_kl(th, sig, s))] == pytest.approx(best, abs=2e-5)
    assert L.ml_noise_width(0.5, 0.0) == 0.5
    assert L.line_kl(0.5, 0.0, 0.1) == math.inf and L.line_kl(0.5, 0.3, 0.0) == math.inf
    assert math.isfinite(L.line_log_likelihood(0.5, 0.3, 0.0))
    assert L.line_log_likelihood(0.5, 0.0) == -math.inf

"""Tests of wganbook.lab.schematics: the numbers each schematic draws, checked against the maths (Agg backend)."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from scipy.special import ndtr  # noqa: E402
from torch import nn  # noqa: E402

from wganbook.divergence import GaussianMixture1D, cdf_gap, w1_1d_cdf  # noqa: E402
from wganbook.lab import schematics  # noqa: E402
from wganbook.lipschitz import gradient_penalty  # noqa: E402
from wganbook.transport import parallel_lines_excess, parallel_lines_sample_w1, w1_1d  # noqa: E402

_trapz = getattr(np, "trapezoid", None) or np.trapz


# ------------------------------------------------------------------------------ 1. earth mover
def _cdf_integral(x, a, y, b):
    """int |F - G| for two discrete measures, by hand: step CDFs on the merged support."""
    z = np.union1d(x, y)
    F = np.array([a[x <= t].sum() for t in z])
    G = np.array([b[y <= t].sum() for t in z])
    return float(np.sum(np.abs(F - G)[:-1] * np.diff(z)))


def test_earth_mover_plan_has_the_piles_as_marginals():
    d = schematics.earth_mover_plan()
    ua = np.asarray(schematics.GENERATED_PILE[1], float)
    ub = np.asarray(schematics.REAL_PILE[1], float)
    assert d["units"] == ua.sum() == ub.sum()
    np.testing.assert_allclose(d["a"], ua / ua.sum(), atol=1e-15)
    np.testing.assert_allclose(d["b"], ub / ub.sum(), atol=1e-15)
    assert (d["plan"] >= 0).all()
    np.testing.assert_allclose(d["plan"].sum(axis=1), d["a"], atol=1e-12)
    np.testing.assert_allclose(d["plan"].sum(axis=0), d["b"], atol=1e-12)


def test_earth_mover_plan_cost_is_w1_from_the_cdfs():
    d = schematics.earth_mover_plan()
    by_hand = _cdf_integral(d["x"], d["a"], d["y"], d["b"])
    assert by_hand == pytest.approx(32 / 12, abs=1e-12)  # 1*2 + 1*2 + 2*3 + 4*3 + 2*3 + 1*2 + 1*2 units
    assert d["w1"] == pytest.approx(by_hand, abs=1e-12)
    assert d["plan_cost"] == pytest.approx(by_hand, abs=1e-12)
    assert w1_1d(d["x"], d["y"], d["a"], d["b"]) == pytest.approx(by_hand, abs=1e-12)


def test_earth_mover_plan_is_monotone():
    """No two arrows cross: i < i' and j > j' are never both used."""
    P = schematics.earth_mover_plan()["plan"] > 1e-12
    used = list(zip(*np.nonzero(P)))
    assert not [(p, q) for p in used for q in used if p[0] < q[0] and p[1] > q[1]]


# ------------------------------------------------------------------------------ 2. critic vs discriminator
def test_discriminator_is_p_over_p_plus_q_and_flat_on_the_data():
    x = np.linspace(-4, 4, 801)
    d = schematics.discriminator_and_critic(x, 2.0, -2.0, 0.5)
    p = GaussianMixture1D([2.0], [0.5]).pdf(x)
    q = GaussianMixture1D([-2.0], [0.5]).pdf(x)
    np.testing.assert_allclose(d["p"], p, rtol=1e-12)
    np.testing.assert_allclose(d["q"], q, rtol=1e-12)
    np.testing.assert_allclose(d["D"], p / (p + q), rtol=1e-9, atol=1e-300)
    assert d["D"].min() >= 0 and d["D"].max() <= 1
    # the derivative is D(1 - D) h': compare with finite differences where D changes
    fd = np.gradient(d["D"], x)
    np.testing.assert_allclose(d["dD"], fd, atol=2e-2 * np.abs(fd).max())
    far = np.abs(x) >= 1.5  # both bumps (+-2 +- sigma) and beyond
    assert np.abs(d["dD"][far]).max() < 1e-8
    assert abs(float(np.interp(-2.0, x, d["dD"]))) < 1e-12  # on the generated mode
    assert d["D"][x <= -1.5].max() < 1e-9 and d["D"][x >= 1.5].min() > 1 - 1e-9


@pytest.mark.parametrize("mu_real,mu_fake", [(2.0, -2.0), (-1.0, 1.5)])
def test_critic_is_1_lipschitz_and_attains_w1(mu_real, mu_fake):
    sigma = 0.5
    x = np.linspace(-12, 12, 24001)
    d = schematics.discriminator_and_critic(x, mu_real, mu_fake, sigma)
    slopes = np.diff(d["f"]) / np.diff(x)
    assert np.abs(slopes).max() <= 1 + 1e-9
    gap = _trapz(d["p"] * d["f"], x) - _trapz(d["q"] * d["f"], x)
    real, fake = GaussianMixture1D([mu_real], [sigma]), GaussianMixture1D([mu_fake], [sigma])
    assert gap == pytest.approx(abs(mu_real - mu_fake), abs=1e-6)
    assert gap == pytest.approx(w1_1d_cdf(x, cdf_gap(real, fake, x)), abs=1e-6)
    # scores real high; slope +-1 towards the real bump; zero half-way
    assert float(np.interp(mu_real, x, d["f"])) > float(np.interp(mu_fake, x, d["f"]))
    mid = (x > min(mu_real, mu_fake)) & (x < max(mu_real, mu_fake))
    np.testing.assert_allclose(d["df"][mid], np.sign(mu_real - mu_fake))
    assert float(np.interp(0.5 * (mu_real + mu_fake), x, d["f"])) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"mu_real": 1.0, "mu_fake": 1.0}, "mu_real and mu_fake"),
        ({"mu_real": "2"}, "mu_real"),
    ],
)
def test_discriminator_and_critic_rejects_bad_arguments(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        schematics.discriminator_and_critic(np.linspace(-1, 1, 5), **kwargs)


@pytest.mark.parametrize("x", [[0.0, 1.0], [0.0, 2.0, 1.0], [[0.0, 1.0, 2.0]], [0.0, 1.0, float("inf")]])
def test_discriminator_and_critic_rejects_a_bad_grid(x):
    with pytest.raises(ValueError, match="x must be a strictly increasing"):
        schematics.discriminator_and_critic(x)


# ------------------------------------------------------------------------------ 3. Lipschitz routes
def test_clipped_weights_lie_in_the_box():
    d = schematics.clipping_example(c=0.01, spread=1.5)
    c = d["c"]
    assert np.abs(d["clipped"]).max() <= c
    np.testing.assert_array_equal(d["clipped"], np.clip(d["raw"], -c, c))
    assert d["share"] == pytest.approx(np.mean(np.abs(d["clipped"]) >= 0.99 * c))
    # expected share 2 Phi(-1 / spread); 2048 weights: standard error about 0.011
    assert d["share"] == pytest.approx(2 * ndtr(-1 / 1.5), abs=0.05)
    np.testing.assert_array_equal(d["raw"], schematics.clipping_example(c=0.01, spread=1.5)["raw"])


def test_interpolates_lie_on_the_real_fake_segments():
    d = schematics.penalty_example(per_pair=3)
    real, fake, pts, eps = d["real"], d["fake"], d["points"], d["eps"]
    assert pts.shape == (12, 2)
    assert (eps >= 0).all() and (eps <= 1).all()
    k = np.arange(12) % 4
    np.testing.assert_allclose(pts, eps[:, None] * real[k] + (1 - eps[:, None]) * fake[k], atol=1e-12)


def test_a_unit_slope_affine_critic_pays_no_penalty_at_the_interpolates():
    d = schematics.penalty_example()
    critic = nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.6, 0.8]], dtype=torch.float64))
    gp = gradient_penalty(critic, torch.as_tensor(d["real"]), torch.as_tensor(d["fake"]))
    assert float(gp.detach()) == pytest.approx(0.0, abs=1e-10)


def test_spectrally_normalised_layer_has_spectral_norm_one():
    d = schematics.spectral_example()
    W = np.asarray(schematics.SPECTRAL_W)
    assert d["sigma"] == pytest.approx(np.linalg.norm(W, 2), rel=1e-12)
    np.testing.assert_allclose(d["singular_values"], np.linalg.svd(W, compute_uv=False), rtol=1e-12)
    assert d["normalised_sigma"] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(d["image"], d["circle"] @ W.T, atol=1e-12)
    radii = np.linalg.norm(d["normalised_image"], axis=1)
    assert radii.max() <= 1 + 1e-12 and radii.max() == pytest.approx(1.0, abs=1e-3)
    assert np.linalg.norm(d["image"], axis=1).max() == pytest.approx(d["sigma"], rel=1e-3)


@pytest.mark.parametrize(
    "fn,kwargs,match",
    [
        (schematics.clipping_example, {"c": 0.0}, "c must be"),
        (schematics.clipping_example, {"spread": -1.0}, "spread"),
        (schematics.clipping_example, {"size": 33}, "size must be a multiple of 32"),
        (schematics.clipping_example, {"size": True}, "size"),
        (schematics.penalty_example, {"per_pair": 0}, "per_pair"),
        (schematics.spectral_example, {"n_points": 2}, "n_points"),
    ],
)
def test_route_examples_reject_bad_arguments(fn, kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        fn(**kwargs)


# ------------------------------------------------------------------------------ 4. critic tracking
def test_tracking_true_and_batch_curves():
    theta = np.linspace(-1, 1, 41)
    d = schematics.tracking_curves(theta, batch_size=16)
    np.testing.assert_allclose(d["w1"], np.abs(theta), atol=0)
    np.testing.assert_allclose(d["batch"], np.abs(theta) + parallel_lines_excess(theta, 16), rtol=1e-12)
    assert (d["batch"] > d["w1"]).all()
    assert float(schematics.tracking_curves(0.0, batch_size=16)["batch"]) == pytest.approx(
        math.sqrt(math.pi) / (4 * math.sqrt(16)), rel=1e-3
    )


def test_tracking_batch_curve_matches_exact_batch_w1_by_monte_carlo():
    n, theta, reps = 16, 0.2, 3000
    gen = np.random.default_rng(0)
    vals = [parallel_lines_sample_w1(theta, gen.random(n), gen.random(n)) for _ in range(reps)]
    expected = float(schematics.tracking_curves(theta, batch_size=n)["batch"])
    assert np.mean(vals) == pytest.approx(expected, abs=4 * np.std(vals) / math.sqrt(reps) + 2e-3)


def test_tracking_critic_follows_the_slope_law():
    theta = np.array([-0.8, -0.1, 0.0, 0.3, 1.0])
    lam, lr, steps = 10.0, 0.005, 5
    d = schematics.tracking_curves(theta, lam=lam, steps=steps, lr=lr)
    # the linear recurrence s <- s + lr * (|theta| - 2 lam (s - 1)), from 0
    s = np.zeros_like(theta)
    for _ in range(steps):
        s = s + lr * (np.abs(theta) - 2 * lam * (s - 1))
    np.testing.assert_allclose(d["slope"], s, rtol=1e-12)
    np.testing.assert_allclose(d["critic"], s * np.abs(theta), rtol=1e-12)
    np.testing.assert_allclose(d["generator_grad"], s * np.sign(theta), rtol=1e-12)
    # no steps: no estimate; many steps: the optimal penalised slope 1 + |theta| / (2 lam)
    assert np.all(schematics.tracking_curves(theta, steps=0)["critic"] == 0)
    s_inf = schematics.tracking_curves(theta, lam=lam, steps=2000, lr=lr)["slope"]
    np.testing.assert_allclose(s_inf, 1 + np.abs(theta) / (2 * lam), rtol=1e-12)


def test_tracking_critic_is_below_w1_but_points_the_right_way():
    theta = np.linspace(-1, 1, 201)
    d = schematics.tracking_curves(theta)
    moved = theta != 0
    assert (d["critic"][moved] < d["w1"][moved]).all()
    assert (np.sign(d["generator_grad"]) == np.sign(theta)).all()
    near = np.abs(theta) <= 0.1  # two real batches are farther apart than the critic reports here
    assert (d["critic"][near] < d["batch"][theta == 0]).all()


@pytest.mark.parametrize("theta", [0.4, -0.7])
def test_tracking_critic_matches_gradient_ascent_on_the_wgan_gp_objective(theta):
    """An affine critic trained with the package's gradient penalty follows s_k (started at s_0)."""
    lam, lr, steps, s0 = 10.0, 0.005, 5, 1e-3
    z = torch.rand(64, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    real = torch.cat([torch.zeros_like(z), z], 1)
    fake = torch.cat([torch.full_like(z, theta), z], 1)
    critic = nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[-math.copysign(s0, theta), 0.0]], dtype=torch.float64))
    opt = torch.optim.SGD(critic.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        opt.zero_grad()
        objective = (
            critic(real).mean() - critic(fake).mean() - lam * gradient_penalty(critic, real, fake, generator=gen)
        )
        (-objective).backward()
        opt.step()
    s = -math.copysign(1.0, theta) * float(critic.weight.detach()[0, 0])
    s_star = 1 + abs(theta) / (2 * lam)
    assert s == pytest.approx(s_star + (s0 - s_star) * (1 - 2 * lam * lr) ** steps, rel=1e-6)
    # started from 0 instead of s0, the closed form differs by s0 (1 - 2 lam lr)^k only
    s_k = float(schematics.tracking_curves(theta, lam=lam, steps=steps, lr=lr)["slope"])
    assert s == pytest.approx(s_k, abs=s0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"lam": 0.0}, "lam"),
        ({"steps": -1}, "steps"),
        ({"lr": 0.0}, "lr"),
        ({"lr": 0.1}, "2 \\* lam \\* lr"),
    ],
)
def test_tracking_curves_reject_bad_arguments(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        schematics.tracking_curves(0.5, **kwargs)


def test_tracking_curves_reject_a_bad_theta():
    with pytest.raises(ValueError, match="theta"):
        schematics.tracking_curves([0.0, float("nan")])


# ------------------------------------------------------------------------------ figures
FIGURES = ["earth_mover", "critic_vs_discriminator", "lipschitz_routes", "critic_tracking"]


@pytest.mark.parametrize("name", FIGURES)
def test_figure_is_a_new_pyplot_figure_and_closes_nothing(name):
    other = plt.figure()
    before = set(plt.get_fignums())
    fig = getattr(schematics, name)()
    try:
        assert isinstance(fig, Figure)
        after = set(plt.get_fignums())
        assert before <= after and len(after - before) == 1  # made with pyplot, nothing else opened or closed
        assert plt.fignum_exists(other.number)
        w, h = fig.get_size_inches()
        assert w <= 6.5 and h <= 6.5
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert texts and min(t.get_fontsize() for t in texts) >= 10
        fig.canvas.draw()  # lays out without error
    finally:
        plt.close(fig)
        plt.close(other)


def test_earth_mover_writes_the_computed_w1():
    fig = schematics.earth_mover()
    try:
        w1 = schematics.earth_mover_plan()["w1"]
        assert any(f"{w1:.2f}" in t.get_text() for t in fig.findobj(Text))
    finally:
        plt.close(fig)


def test_figures_are_deterministic():
    a = schematics.clipping_example()["clipped"]
    b = schematics.clipping_example()["clipped"]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(schematics.penalty_example()["points"], schematics.penalty_example()["points"])

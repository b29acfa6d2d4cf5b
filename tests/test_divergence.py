"""Tests of wganbook.divergence: 1-D closed forms of W_{k,p} and of the GP objective, and the
transcribed penalties of the published WGAN-div codes."""

import math

import numpy as np
import pytest
import torch

from wganbook import divergence as dv
from wganbook import lipschitz
from wganbook.lab import wgandiv

GRID = np.linspace(-12.0, 12.0, 24001)
P = dv.GaussianMixture1D([-1.0], [0.5])
Q = dv.GaussianMixture1D([1.0], [0.8])


def _mixture_setup(strategy="real+fake", real=P, fake=Q):
    D = dv.cdf_gap(real, fake, GRID)
    r = dv.strategy_density_1d(strategy, real, fake, GRID)
    return D, r


# ------------------------------------------------------------------ distributions
def test_mixture_pdf_integrates_to_one_and_cdf_matches():
    m = dv.GaussianMixture1D([-2.0, 3.0], [0.5, 1.5], [1.0, 3.0])
    assert m.weights == pytest.approx((0.25, 0.75))
    assert dv._trapz(m.pdf(GRID), GRID) == pytest.approx(1.0, abs=1e-8)
    # CDF is the integral of the pdf
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (m.pdf(GRID[1:]) + m.pdf(GRID[:-1])) * np.diff(GRID))])
    assert np.max(np.abs(cum - m.cdf(GRID))) < 1e-6


def test_mixture_sample_moments_and_shape():
    m = dv.GaussianMixture1D([-2.0, 2.0], [0.5, 0.5])
    x = m.sample(20000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (20000, 1) and x.dtype == torch.float32
    assert float(x.mean()) == pytest.approx(0.0, abs=0.05)
    assert float(x.var()) == pytest.approx(4.0 + 0.25, rel=0.05)  # between + within variance


def test_mixture_bad_input():
    with pytest.raises(ValueError, match="stds"):
        dv.GaussianMixture1D([0.0], [0.0])
    with pytest.raises(ValueError, match="equal length"):
        dv.GaussianMixture1D([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="weights"):
        dv.GaussianMixture1D([0.0], [1.0], [-1.0])
    with pytest.raises(ValueError, match="n must be"):
        P.sample(0)


# ------------------------------------------------------------------ closed forms
def test_identical_distributions_give_zero_and_constant_optimal_critic():
    D, r = _mixture_setup(real=P, fake=P)
    assert np.max(np.abs(D)) == 0.0
    assert dv.wkp_1d(GRID, D, r) == 0.0
    assert dv.gp_1d(GRID, D, r, lam=10.0) == 0.0
    assert np.all(dv.wkp_slope_1d(D, r) == 0.0)  # W_kp: constant critic
    assert np.allclose(dv.gp_slope_1d(D, r)[r > 0], 1.0)  # GP: unit slope everywhere


def test_wkp_is_positive_and_symmetric_for_symmetric_r():
    D, r = _mixture_setup("real+fake")
    D2, r2 = _mixture_setup("real+fake", real=Q, fake=P)
    a, b = dv.wkp_1d(GRID, D, r), dv.wkp_1d(GRID, D2, r2)
    assert a > 0
    assert a == pytest.approx(b, rel=1e-12)


def test_raw_real_or_fake_strategies_break_symmetry():
    # r = P when P is real; after swapping the roles r = Q: the values differ.
    D, r = _mixture_setup("real")
    D2, r2 = _mixture_setup("real", real=Q, fake=P)
    a, b = dv.wkp_1d(GRID, D, r), dv.wkp_1d(GRID, D2, r2)
    assert abs(a - b) > 0.1 * min(a, b)
    # and "real" with roles swapped is "fake" with the original roles (f -> -f)
    D3, r3 = _mixture_setup("fake")
    assert b == pytest.approx(dv.wkp_1d(GRID, D3, r3), rel=1e-12)


def test_wkp_closed_form_beats_perturbed_slopes():
    """The pointwise optimum is the maximum of the discretised objective."""
    D, r = _mixture_setup("real+fake")
    k, p = 2.0, 6.0
    fp = dv.wkp_slope_1d(D, r, k, p)

    def objective(slope):
        return dv._trapz(slope * D - k * r * np.abs(slope) ** p, GRID)

    best = objective(fp)
    assert best == pytest.approx(dv.wkp_1d(GRID, D, r, k, p), rel=1e-10)
    rng = np.random.default_rng(0)
    for scale in (0.9, 1.1):
        assert objective(scale * fp) < best
    assert objective(fp + 0.05 * rng.standard_normal(fp.shape) * (np.abs(fp) > 0)) < best


def test_wkp_p2_half_is_weighted_l2_and_large_p_tends_to_w1():
    D, r = _mixture_setup("real+fake")
    # k = 1/2, p = 2: (1/2) * integral of D^2 / r
    expected = 0.5 * dv._trapz(D**2 / r, GRID)
    assert dv.wkp_1d(GRID, D, r, k=0.5, p=2.0) == pytest.approx(expected, rel=1e-10)
    w1 = dv.w1_1d_cdf(GRID, D)
    assert w1 == pytest.approx(2.0, rel=1e-6)  # equal-variance shift would be |dm|; here also 2
    assert abs(dv.wkp_1d(GRID, D, r, k=2.0, p=2000.0) - w1) < 0.01 * w1


def test_w1_of_a_shift_is_the_shift():
    a = dv.GaussianMixture1D([0.0], [1.0])
    b = dv.GaussianMixture1D([1.5], [1.0])
    assert dv.w1_1d_cdf(GRID, dv.cdf_gap(a, b, GRID)) == pytest.approx(1.5, rel=1e-8)


def test_gp_closed_form_is_w1_plus_chi_square_term():
    D, r = _mixture_setup("real+fake")
    lam = 10.0
    val = dv.gp_1d(GRID, D, r, lam)
    assert val == pytest.approx(dv.w1_1d_cdf(GRID, D) + dv._trapz(D**2 / (4 * lam * r), GRID), rel=1e-10)
    t = dv.gp_slope_1d(D, r, lam)

    def objective(slope):
        return dv._trapz(slope * np.abs(D) - lam * r * (slope - 1) ** 2, GRID)

    assert objective(t) == pytest.approx(val, rel=1e-10)
    assert objective(1.05 * t) < objective(t) and objective(0.95 * t) < objective(t)


def test_zero_density_with_mass_difference_is_infinite():
    D = np.array([0.0, 0.5, 0.0])
    r = np.array([1.0, 0.0, 1.0])
    g = np.array([0.0, 1.0, 2.0])
    assert dv.wkp_1d(g, D, r) == math.inf
    assert dv.gp_1d(g, D, r) == math.inf
    assert dv.wkp_1d(g, np.zeros(3), r * 0) == 0.0


def test_linear_wkp_closed_form():
    k, p, m = 2.0, 6.0, 1.7
    t = np.linspace(0, 3, 300001)
    assert dv.linear_wkp(m, k, p) == pytest.approx(np.max(t * m - k * t**p), rel=1e-8)
    assert dv.linear_wkp(0.0) == 0.0


def test_closed_form_bad_input():
    D, r = _mixture_setup()
    with pytest.raises(ValueError, match="p must be > 1"):
        dv.wkp_1d(GRID, D, r, p=1.0)
    with pytest.raises(ValueError, match="k must be > 0"):
        dv.wkp_1d(GRID, D, r, k=0.0)
    with pytest.raises(ValueError, match="grid"):
        dv.wkp_1d(GRID[::-1], D, r)
    with pytest.raises(ValueError, match="strategy must be one of"):
        dv.strategy_density_1d("uniform", P, Q, GRID)
    with pytest.raises(ValueError, match="lam"):
        dv.gp_1d(GRID, D, r, lam=0.0)


# ------------------------------------------------------------------ penalties on critics
def _critic(seed=0, d=12):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(d, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1), torch.nn.Flatten(0)
    )


def _batches(n=32, shape=(3, 2, 2), seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n,) + shape, generator=g, dtype=torch.float64), torch.randn(
        (n,) + shape, generator=g, dtype=torch.float64
    ) + 1.0


@pytest.mark.parametrize("strategy", lipschitz.SAMPLING_STRATEGIES)
def test_linear_critic_penalty_is_k_norm_to_the_p_for_every_strategy(strategy):
    real, fake = _batches()
    w = torch.linspace(-0.3, 0.5, 12, dtype=torch.float64)
    f = wgandiv.linear_critic(w, b=0.7)
    k, p = 2.0, 6.0
    pen = lipschitz.div_penalty(f, real, fake, k=k, p=p, strategy=strategy, generator=torch.Generator().manual_seed(0))
    assert float(pen.detach()) == pytest.approx(k * float(w.norm()) ** p, rel=1e-9)
    gp = lipschitz.gradient_penalty(f, real, fake, strategy=strategy, generator=torch.Generator().manual_seed(0))
    assert float(gp.detach()) == pytest.approx((float(w.norm()) - 1) ** 2, rel=1e-6)


@pytest.mark.parametrize("strategy", lipschitz.SAMPLING_STRATEGIES)
def test_penalty_is_invariant_under_critic_sign_flip(strategy):
    real, fake = _batches()
    f = _critic().double()
    a = lipschitz.div_penalty(f, real, fake, strategy=strategy, generator=torch.Generator().manual_seed(3))
    b = lipschitz.div_penalty(
        wgandiv.Negated(f), real, fake, strategy=strategy, generator=torch.Generator().manual_seed(3)
    )
    assert float(a.detach()) == pytest.approx(float(b.detach()), rel=1e-12)


def test_reimplementation_penalty_equals_div_penalty_real_plus_fake():
    real, fake = _batches()
    f = _critic().double()
    ref = dv.reference_penalty("re-implementations", f, real, fake)
    ours = lipschitz.div_penalty(f, real, fake, k=2.0, p=6.0, strategy="real+fake")
    assert float(ref.detach()) == pytest.approx(float(ours.detach()), rel=1e-7)


@pytest.mark.parametrize("code", ["paper", "official-code"])
def test_interpolating_reference_penalties_match_div_penalty(code):
    """The codes interpolate x + a (y - x); lipschitz uses e x + (1 - e) y: with the same random
    numbers they visit the same points once the roles of the two batches are exchanged."""
    real, fake = _batches()
    f = _critic(2).double()
    cfg = dv.PUBLISHED_VARIANTS[code]
    ref = dv.reference_penalty(code, f, fake, real, generator=torch.Generator().manual_seed(5))
    ours = lipschitz.div_penalty(
        f, real, fake, k=cfg["k"], p=cfg["p"], strategy=cfg["strategy"], generator=torch.Generator().manual_seed(5)
    )
    assert float(ref.detach()) == pytest.approx(float(ours.detach()), rel=1e-7)


def test_reference_penalty_bad_input():
    real, fake = _batches()
    with pytest.raises(ValueError, match="code must be one of"):
        dv.reference_penalty("keras", _critic().double(), real, fake)
    with pytest.raises(ValueError, match="same shape"):
        dv.reference_penalty("paper", _critic().double(), real, fake[:3])
    with pytest.raises(TypeError, match="w must be"):
        wgandiv.linear_critic([1.0, 2.0])


def test_critic_objective_of_linear_critic():
    real, fake = _batches()
    w = torch.full((12,), 0.1, dtype=torch.float64)
    f = wgandiv.linear_critic(w)
    out = wgandiv.critic_objective("wgan-div", f, real, fake, k=2.0, p=6.0, strategy="real-fake")
    gap = float((real.reshape(32, -1) @ w).mean() - (fake.reshape(32, -1) @ w).mean())
    assert out["gap"] == pytest.approx(gap, rel=1e-9)
    assert out["penalty"] == pytest.approx(2.0 * float(w.norm()) ** 6, rel=1e-6)
    assert out["objective"] == pytest.approx(gap - out["penalty"], rel=1e-9)
    assert out["grad_norm"] == pytest.approx(float(w.norm()), rel=1e-6)


# ------------------------------------------------------------------ experiment helpers
def test_mlp_image_models_shapes_and_range():
    torch.manual_seed(0)
    gen, critic = wgandiv.make_models("digits", "mlp", width=16, depth=1, z_dim=4)
    with torch.no_grad():
        x = gen(gen.sample_z(5))
        assert x.shape == (5, 1, 8, 8) and float(x.abs().max()) <= 1.0
        assert critic(x).shape == (5,)
    with pytest.raises(ValueError, match="arch must be one of"):
        wgandiv.make_models("digits", "resnet")
    with pytest.raises(ValueError, match="arch must be one of"):
        wgandiv.make_train_fn("resnet")


def test_make_train_fn_is_deterministic():
    fn = wgandiv.make_train_fn("mlp", width=16, depth=1, z_dim=4)
    cfg = {
        "method": "wgan-div",
        "data": "digits",
        "steps": 2,
        "n_critic": 1,
        "batch_size": 8,
        "seed": 3,
        "device": "cpu",
        "progress": False,
    }
    images = torch.rand(32, 1, 8, 8) * 2 - 1
    a, b = fn(dict(cfg), data=images), fn(dict(cfg), data=images)
    for pa, pb in zip(a.generator.parameters(), b.generator.parameters()):
        assert torch.equal(pa, pb)
    assert isinstance(a.generator, wgandiv.MLPImageGenerator)


def test_fit_critic_1d_identical_distributions_give_zero_objective():
    out, critic = wgandiv.fit_critic_1d(
        "wgan-div", P, P, steps=30, batch_size=64, width=8, n_eval=2000, k=2.0, p=6.0, strategy="real+fake"
    )
    assert set(out) == {"objective", "gap", "penalty", "grad_norm"}
    assert out["objective"] <= out["gap"] + 1e-12  # the penalty is non-negative
    assert abs(out["gap"]) < 0.1  # same distribution: no systematic score gap
    assert critic(torch.zeros(3, 1)).shape == (3,)


def _record(method, strategy, seed, fd):
    return {
        "combo": {"method": method, "strategy": strategy},
        "seed": seed,
        "metrics": {"fd": fd},
        "config": {"method": method, "strategy": strategy},
    }


def test_strategy_sensitivity_ranges_within_seed():
    recs = [
        _record("a", "s1", 0, 1.0),
        _record("a", "s2", 0, 4.0),
        _record("a", "s3", 0, 2.0),
        _record("a", "s1", 1, 9.0),
        _record("a", "s2", 1, 8.0),
        _record("b", "s1", 0, 5.0),
        _record("b", "s2", 0, float("nan")),
    ]
    rows = wgandiv.strategy_sensitivity(recs, "fd")
    assert rows[0] == {"method": "a", "seed": 0, "range": 3.0, "best": "s1", "worst": "s2", "n": 3}
    assert rows[1]["range"] == pytest.approx(1.0) and rows[1]["best"] == "s2"
    assert rows[2]["range"] == 0.0 and rows[2]["n"] == 1  # the NaN run is left out
    with pytest.raises(ValueError, match="no finite"):
        wgandiv.strategy_sensitivity([_record("a", "s1", 0, float("nan"))])


def test_kp_grid_cross_and_product():
    cross = dv.kp_grid([1, 2, 4], [4, 6, 8])
    assert [(c["k"], c["p"]) for c in cross] == [(1, 6), (2, 6), (4, 6), (2, 4), (2, 8)]
    assert len(dv.kp_grid([1, 2, 4], [4, 6, 8], product=True)) == 9
    assert (2.0, 6.0) not in [(c["k"], c["p"]) for c in dv.kp_grid([1, 2], [6, 8], include_centre=False)]
    assert cross[0]["name"] == "k=1,p=6"
    with pytest.raises(ValueError, match="p must be > 1"):
        dv.kp_grid([2], [1.0])


def test_post_fid_table_has_six_strategies_per_model():
    assert set(wgandiv.POST_FID) == {"WGAN-GP", "CTGAN", "WGAN-div"}
    assert all(len(v) == len(lipschitz.SAMPLING_STRATEGIES) for v in wgandiv.POST_FID.values())
    # the post's finding: WGAN-GP's best is worse than WGAN-div's worst
    assert min(wgandiv.POST_FID["WGAN-GP"]) > max(wgandiv.POST_FID["WGAN-div"])


def test_plot_strategy_ablation_draws_one_bar_per_cell():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [_record(m, s, seed, 1.0 + seed) for m in ("a", "b") for s in ("s1", "s2") for seed in (0, 1)]
    fig, ax = plt.subplots()
    wgandiv.plot_strategy_ablation(ax, recs, "fd", reference=0.5)
    assert len(ax.patches) == 4
    assert [t.get_text() for t in ax.get_xticklabels()] == ["s1", "s2"]
    plt.close(fig)


def test_real_reference_distance_uses_only_images_outside_the_reference():
    from wganbook import data, metrics

    images, _ = data.load_images("digits")
    ref = metrics.reference_images("digits", 1000)
    flat = lambda x: x.reshape(x.shape[0], -1).double().numpy()  # noqa: E731 - pixel "features"
    fd, n = metrics.real_reference_distance("digits", images, 1000, flat)
    assert n == images.shape[0] - 1000  # digits: the reference is 1000 of the 1797 images
    assert fd > 0
    # the same pixels compared with the reference itself give 0
    assert metrics.frechet_distance(flat(ref), flat(ref)) == pytest.approx(0.0, abs=1e-6)


def test_trained_1d_critic_reaches_the_closed_form():
    D, r = _mixture_setup("real+fake")
    exact = dv.wkp_1d(GRID, D, r, k=2.0, p=6.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: one thread is fastest and avoids oversubscription
    try:
        out, _ = wgandiv.fit_critic_1d("wgan-div", P, Q, steps=600, k=2.0, p=6.0, strategy="real+fake")
    finally:
        torch.set_num_threads(threads)
    assert out["objective"] == pytest.approx(exact, rel=0.03)
    assert out["objective"] < exact + 0.02  # a critic cannot beat the maximum (up to sampling noise)


# ------------------------------------------------------------------ interpolate densities, separation
def _cum(density, grid):
    return np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])


def test_interpolation_density_closed_forms():
    g = np.linspace(-8, 8, 16001)
    sd = 0.7
    same = dv.GaussianMixture1D([0.0], [sd])
    r = dv.interpolation_density_1d(same, same, g)
    # r(0) = int_0^1 phi(0) / (sd sqrt(e^2 + (1-e)^2)) de = asinh(1) / (sqrt(pi) sd)
    assert r[8000] == pytest.approx(math.asinh(1.0) / (math.sqrt(math.pi) * sd), rel=1e-9)
    a, b = dv.GaussianMixture1D([-1.0, 0.5], [0.3, 0.6], [1, 3]), dv.GaussianMixture1D([2.0], [0.4])
    r = dv.interpolation_density_1d(a, b, g)
    ma, mb = float(np.dot(a.weights, a.means)), 2.0
    ea2 = float(np.dot(a.weights, np.square(a.means) + np.square(a.stds)))
    eb2 = 4.0 + 0.16
    assert dv._trapz(r, g) == pytest.approx(1.0, abs=1e-9)
    assert dv._trapz(g * r, g) == pytest.approx((ma + mb) / 2, abs=1e-9)  # E e = 1/2
    # E z^2 = E e^2 E x^2 + 2 E e(1-e) E x E y + E (1-e)^2 E y^2 = (ea2 + ma mb + eb2) / 3
    assert dv._trapz(g * g * r, g) == pytest.approx((ea2 + ma * mb + eb2) / 3, abs=1e-8)
    assert np.allclose(r, dv.interpolation_density_1d(a, b, g, n_nodes=1024), atol=1e-10)
    with pytest.raises(ValueError, match="n_nodes"):
        dv.interpolation_density_1d(a, b, g, n_nodes=12)


@pytest.mark.parametrize("strategy", lipschitz.SAMPLING_STRATEGIES)
def test_strategy_densities_match_the_sampled_penalty_points(strategy):
    """The 1-D densities are the laws of wganbook.lipschitz.sample_penalty_points."""
    real_d, fake_d = dv.GaussianMixture1D([-1.0], [0.4]), dv.GaussianMixture1D([1.5], [0.6])
    g = np.linspace(-5, 6, 5501)
    cdf = _cum(dv.strategy_density_1d(strategy, real_d, fake_d, g), g)
    gen = torch.Generator().manual_seed(0)
    pts = (
        lipschitz.sample_penalty_points(
            real_d.sample(20000, gen).double(), fake_d.sample(20000, gen).double(), strategy, generator=gen
        )
        .numpy()
        .ravel()
    )
    for x in (-1.5, -0.5, 0.25, 1.0, 2.0):
        assert np.mean(pts <= x) == pytest.approx(np.interp(x, g, cdf), abs=0.012)


def test_raw_sample_wkp_blows_up_as_supports_separate():
    """The issue's numbers: P = N(-1, s^2), Q = N(1, s^2), r = (P + Q)/2, W_{2,6}."""
    rows = dv.wkp_vs_separation([0.8, 0.5, 0.3, 0.2, 0.15], strategies=["real+fake"])
    assert [round(r["real+fake"], 2) for r in rows] == [1.19, 1.27, 1.61, 3.10, 10.69]


def test_gap_charging_strategies_stay_bounded_and_reach_the_dirac_limit():
    rows = dv.wkp_vs_separation([0.5, 0.2, 0.1])
    for s in dv.DENSITY_STRATEGIES:
        vals = [r[s] for r in rows]
        if s in dv.GAP_CHARGING_STRATEGIES:
            assert max(vals) < 1.4
        else:
            assert vals[0] < vals[1] < vals[2] and vals[2] > 1000  # grows without bound
    limit = (5 / 6) * 2 * 6.0 ** (-1 / 5)  # r = 1/2 on the gap of length 2
    assert dv.separated_limit_wkp("real-fake") == pytest.approx(limit)
    assert rows[-1]["real-fake"] == pytest.approx(limit, rel=1e-3)
    assert dv.separated_limit_wkp("pooled-pairs") == pytest.approx((5 / 6) * 2 * 3.0 ** (-1 / 5))
    assert all(
        dv.separated_limit_wkp(s) == math.inf for s in dv.DENSITY_STRATEGIES if s not in dv.GAP_CHARGING_STRATEGIES
    )
    with pytest.raises(ValueError, match="strategy must be one of"):
        dv.separated_limit_wkp("uniform")
    with pytest.raises(ValueError, match="sigma and mean"):
        dv.separated_pair(0.0)


def test_eq7_value_is_half_the_squared_linearised_w2():
    """W_{1/2,2} with r = P is (1/2) int D^2 / p_P: half the squared H^-1(P) norm, ~ W2^2 / 2."""
    g = np.linspace(-10, 10, 40001)
    Pn, Qn = dv.GaussianMixture1D([0.0], [1.0]), dv.GaussianMixture1D([0.0], [1.05])
    D = dv.cdf_gap(Pn, Qn, g)
    val = dv.wkp_1d(g, D, Pn.pdf(g), k=0.5, p=2.0)
    assert val == pytest.approx(0.5 * dv._trapz(D**2 / Pn.pdf(g), g), rel=1e-12)
    w2 = 0.05  # W2 between N(0, 1) and N(0, 1.05^2)
    w1 = dv.w1_1d_cdf(g, D)  # = 0.05 E|Z| = 0.05 sqrt(2 / pi)
    assert w1 == pytest.approx(0.05 * math.sqrt(2 / math.pi), rel=1e-6)
    assert math.sqrt(2 * val) == pytest.approx(w2, rel=0.05)
    assert math.sqrt(2 * val) / w1 > 1.2


# ------------------------------------------------------------------ record summaries
def test_sensitivity_summary_by_hand():
    recs = [
        _record("a", "s1", 0, 1.0),
        _record("a", "s2", 0, 4.0),
        _record("a", "s1", 1, 2.0),
        _record("a", "s2", 1, 3.0),
        _record("b", "s1", 0, 5.0),
        _record("b", "s2", 0, 5.5),
        _record("b", "s1", 1, 9.0),
        _record("b", "s2", 1, 9.5),
    ]
    out = wgandiv.sensitivity_summary(recs, "fd")
    assert out["per"]["a"] == {"strategy_range": 2.0, "seed_range": 1.0, "best": ["s1", "s1"]}
    assert out["per"]["b"]["strategy_range"] == pytest.approx(0.5)
    assert out["per"]["b"]["seed_range"] == pytest.approx(4.0)
    assert out["gap"] == pytest.approx(1.5) and out["noise"] == pytest.approx(2.5)
    assert out["resolved"] is False and out["more_sensitive"] == "a"


def test_select_records_and_kp_summary():
    recs = [
        _record("wgan-div", "real-fake", 0, 3.0),
        _record("wgan-div", "real-fake", 1, 5.0),
        _record("wgan-div", "real", 0, 7.0),
        _record("wgan-gp", "real-fake", 0, 9.0),
    ]
    centre = wgandiv.select_records(recs, method="wgan-div", strategy="real-fake", seed=[0])
    assert [r["metrics"]["fd"] for r in centre] == [3.0]
    assert len(wgandiv.select_records(recs, method=["wgan-div", "wgan-gp"], strategy="real-fake")) == 3
    assert wgandiv.select_records(recs, nonexistent=1) == []
    grid = [
        {
            "combo": {"kp": "k=1,p=6"},
            "seed": 0,
            "metrics": {"fd": 4.0},
            "config": {"method": "wgan-div", "k": 1.0, "p": 6.0},
        },
        {
            "combo": {"kp": "k=1,p=6"},
            "seed": 1,
            "metrics": {"fd": 6.0},
            "config": {"method": "wgan-div", "k": 1.0, "p": 6.0},
        },
    ]
    rows = wgandiv.kp_summary(wgandiv.select_records(recs, method="wgan-div", strategy="real-fake") + grid)
    assert rows == [
        {"k": 2.0, "p": 6.0, "mean": 4.0, "min": 3.0, "max": 5.0, "n": 2},
        {"k": 1.0, "p": 6.0, "mean": 5.0, "min": 4.0, "max": 6.0, "n": 2},
    ]
    with pytest.raises(ValueError, match="no finite"):
        wgandiv.kp_summary([])


def test_paper_tables_and_the_column_inference():
    assert wgandiv.PAPER_FID["WGAN-div"] == (18.1, 15.2, 15.9)
    assert all(len(v) == len(wgandiv.PAPER_FID_DATASETS) for v in wgandiv.PAPER_FID.values())
    celeba = wgandiv.PAPER_FID_DATASETS.index("CelebA")
    # column (1) of the six-strategy table equals the CelebA column for every model in both
    assert all(wgandiv.POST_FID[m][0] == wgandiv.PAPER_FID[m][celeba] for m in wgandiv.POST_FID)

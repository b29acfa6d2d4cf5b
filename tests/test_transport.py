"""Mathematical tests of wganbook.transport: exact W1, closed forms, duality, divergences."""

import math
import warnings

import numpy as np
import ot
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from wganbook import duality
from wganbook import transport as T
from wganbook.data import sample_toy

LOG2 = math.log(2.0)


def rng(seed=0):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------------------
# cost matrix
# ----------------------------------------------------------------------------------------
def test_cost_matrix_hand_values_and_flattening():
    x = np.array([[0.0, 0.0], [1.0, 1.0]])
    y = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 1.0]])
    expected = np.array([[5.0, 0.0, math.sqrt(2)], [math.sqrt(13), math.sqrt(2), 0.0]])
    np.testing.assert_allclose(T.cost_matrix(x, y), expected, rtol=0, atol=1e-12)
    # images (n, C, H, W) are flattened rows
    imgs = rng().normal(size=(4, 1, 3, 3))
    C = T.cost_matrix(imgs, imgs[:2])
    assert C.shape == (4, 2)
    np.testing.assert_allclose(C[2, 1], np.linalg.norm((imgs[2] - imgs[1]).ravel()), rtol=1e-12)


def test_cost_matrix_identical_points_are_exactly_zero_numpy_and_torch():
    # large-norm, high-dimensional points: the Gram-matrix formula alone loses digits
    x = rng(1).normal(size=(40, 3072)) * 3.0 + 5.0
    C = T.cost_matrix(x, x.copy())
    assert np.all(np.diag(C) == 0.0)
    off = C[~np.eye(40, dtype=bool)]
    ref = np.linalg.norm(x[:, None] - x[None], axis=2)[~np.eye(40, dtype=bool)]
    np.testing.assert_allclose(off, ref, rtol=1e-10)
    xt = torch.tensor(x, dtype=torch.float32)
    Ct = T.cost_matrix(xt, xt.clone())
    assert torch.all(torch.diagonal(Ct) == 0)


def test_cost_matrix_torch_matches_numpy_and_has_safe_gradient():
    x = rng(2).normal(size=(6, 3))
    y = np.concatenate([x[:2], rng(3).normal(size=(3, 3))])  # two coincident pairs
    xt = torch.tensor(x, requires_grad=True)
    C = T.cost_matrix(xt, torch.tensor(y))
    np.testing.assert_allclose(C.detach().numpy(), T.cost_matrix(x, y), rtol=1e-12, atol=1e-12)
    C.sum().backward()
    assert torch.isfinite(xt.grad).all()
    # d/dx_i sum_j ||x_i - y_j|| = sum_j (x_i - y_j)/||x_i - y_j||, 0 for coincident pairs
    diff = x[:, None, :] - y[None, :, :]
    norm = np.linalg.norm(diff, axis=2, keepdims=True)
    expected = np.where(norm > 0, diff / np.where(norm > 0, norm, 1.0), 0.0).sum(axis=1)
    np.testing.assert_allclose(xt.grad.numpy(), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "x, y, message",
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), "same number of features"),
        (np.zeros((0, 2)), np.zeros((3, 2)), "at least one sample"),
        (np.array(1.0), np.zeros((3, 1)), "scalar"),
        (np.array([[0.0, np.nan]]), np.zeros((1, 2)), "NaN"),
    ],
)
def test_cost_matrix_rejects_bad_clouds(x, y, message):
    with pytest.raises(ValueError, match=message):
        T.cost_matrix(x, y)
    with pytest.raises(ValueError, match=message):
        T.w1(x, y)


# ----------------------------------------------------------------------------------------
# exact W1: closed forms and metric properties
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n, m", [(20, 20), (17, 9)])
def test_w1_and_w1_1d_match_scipy_in_one_dimension(seed, n, m):
    r = rng(seed)
    u, v = r.normal(size=n), r.normal(loc=0.7, scale=1.5, size=m)
    expected = wasserstein_distance(u, v)
    assert T.w1(u, v) == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert T.w1(u[:, None], v[:, None]) == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert T.w1_1d(u, v) == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_weighted_w1_and_w1_1d_match_scipy(seed):
    r = rng(seed)
    u, v = r.normal(size=11), r.exponential(size=6)
    wu, wv = r.random(11), r.random(6)
    wu[3] = 0.0  # a zero weight is allowed
    expected = wasserstein_distance(u, v, wu, wv)
    assert T.w1_1d(u, v, wu, wv) == pytest.approx(expected, rel=1e-10)
    assert T.w1(u, v, wu / wu.sum(), wv / wv.sum()) == pytest.approx(expected, rel=1e-10)


def test_w1_1d_equal_sizes_is_mean_sorted_difference_and_handles_ties():
    u = np.array([3.0, 1.0, 2.0, 2.0])
    v = np.array([0.0, 5.0, 2.0, 2.0])
    # sorted: (1,2,2,3) vs (0,2,2,5): |1|+0+0+|2| over 4
    assert T.w1_1d(u, v) == pytest.approx(0.75, abs=1e-15)
    assert T.w1_1d(u, u[::-1]) == 0.0


def test_w1_1d_torch_gradient_is_sign_over_n():
    n = 8
    x = torch.linspace(0.0, 1.0, n, dtype=torch.float64, requires_grad=True)
    y = (torch.linspace(0.0, 1.0, n, dtype=torch.float64) + 0.3)[torch.randperm(n)].requires_grad_(True)
    val = T.w1_1d(x, y)
    assert val.item() == pytest.approx(0.3, abs=1e-12)
    val.backward()
    np.testing.assert_allclose(y.grad.numpy(), np.full(n, 1.0 / n), atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), np.full(n, -1.0 / n), atol=1e-12)


def test_point_masses_and_hand_computed_weighted_example():
    p, q = np.array([[1.0, 2.0, 3.0]]), np.array([[4.0, 6.0, 3.0]])
    assert T.w1(p, q) == pytest.approx(5.0, abs=1e-12)
    # mass 1/4 at 0 and 3/4 at 1 versus all mass at 0: move 3/4 over distance 1
    assert T.w1(np.array([[0.0], [1.0]]), np.array([[0.0]]), a=[0.25, 0.75]) == pytest.approx(0.75)
    # equal but unnormalised masses scale the cost
    x, y = rng(4).normal(size=(5, 2)), rng(5).normal(size=(7, 2))
    assert T.w1(x, y, a=np.full(5, 2 / 5), b=np.full(7, 2 / 7)) == pytest.approx(2 * T.w1(x, y), rel=1e-12)


def test_mean_image_identity():
    """Y = m copies of u: every plan is optimal and W1 = mean_i ||x_i - u||."""
    r = rng(6)
    x = r.uniform(-1, 1, size=(50, 1, 8, 8))
    u = x.mean(axis=0)
    y = np.repeat(u[None], 13, axis=0)
    expected = np.linalg.norm((x - u).reshape(50, -1), axis=1).mean()
    assert T.w1(x, y) == pytest.approx(expected, rel=1e-12)
    # the mean image is closer in W1 than an independent batch from the same law
    assert T.w1(x, y) < T.w1(x, r.uniform(-1, 1, size=(50, 1, 8, 8)))


@pytest.mark.parametrize("seed", range(3))
def test_translation_identity(seed):
    """W1(x, x + t) = ||t|| (upper bound: translate; lower bound: phi(z) = <z, t>/||t||)."""
    r = rng(seed)
    x = r.normal(size=(30, 5))
    for scale in (0.01, 1.0, 10.0):
        t = r.normal(size=5) * scale
        assert T.w1(x, x + t) == pytest.approx(np.linalg.norm(t), rel=1e-9)


def test_identity_symmetry_and_triangle_inequality():
    r = rng(7)
    clouds = [r.normal(loc=r.normal(size=3), size=(k, 3)) for k in (12, 20, 7, 15)]
    x = clouds[0]
    assert T.w1(x, x) == 0.0
    assert T.w1(x, x[r.permutation(12)].copy()) == 0.0
    for i, p in enumerate(clouds):
        for j, q in enumerate(clouds):
            assert T.w1(p, q) == pytest.approx(T.w1(q, p), rel=1e-12)
            for s in clouds:
                assert T.w1(p, s) <= T.w1(p, q) + T.w1(q, s) + 1e-12
            if i != j:
                assert T.w1(p, q) > 0


def test_w1_matches_pot_emd2_at_n_1024_without_warnings():
    r = rng(8)
    x, y = r.normal(size=(1024, 2)), r.normal(loc=0.5, size=(1024, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = T.w1(x, y)
    expected = ot.emd2(ot.unif(1024), ot.unif(1024), ot.dist(x, y, metric="euclidean"), numItermax=10**6)
    assert value == pytest.approx(expected, rel=1e-9)
    # lower bound from the 1-Lipschitz potential phi(z) = <z, e> with e the unit mean shift
    shift = x.mean(0) - y.mean(0)
    assert value >= np.linalg.norm(shift) - 1e-12


def test_transport_plan_marginals_and_permutation():
    r = rng(9)
    x, y = r.normal(size=(6, 2)), r.normal(size=(6, 2))
    plan, cost = T.transport_plan(x, y)
    np.testing.assert_allclose(plan.sum(1), np.full(6, 1 / 6), atol=1e-15)
    np.testing.assert_allclose(plan.sum(0), np.full(6, 1 / 6), atol=1e-15)
    # equal sizes, uniform weights: a permutation matrix / n (Birkhoff)
    assert np.count_nonzero(plan) == 6 and np.allclose(plan[plan > 0], 1 / 6)
    assert cost == pytest.approx(T.w1(x, y), rel=1e-14)
    a = r.random(6)
    a /= a.sum()
    b = np.full(4, 0.25)
    plan, _ = T.transport_plan(x, y[:4], a, b)
    np.testing.assert_allclose(plan.sum(1), a, atol=1e-12)
    np.testing.assert_allclose(plan.sum(0), b, atol=1e-12)


@pytest.mark.parametrize(
    "a, b, message",
    [
        ([0.5, 0.5, -0.0001, 0.0001], None, "a must be non-negative"),
        ([0.5, 0.5], None, "a must be a 1-D array of length 4"),
        (None, [1.0, 1.0, 1.0], "b must be a 1-D array of length 2"),
        (None, [0.7, 0.7], "same total mass"),
        ([0.0, 0.0, 0.0, 0.0], None, "positive total mass"),
        ([np.nan, 0.5, 0.25, 0.25], None, "NaN"),
    ],
)
def test_w1_validates_weights(a, b, message):
    x, y = np.zeros((4, 2)), np.ones((2, 2))
    with pytest.raises(ValueError, match=message):
        T.w1(x, y, a, b)


def test_w1_reports_solver_failure():
    x, y = rng(10).normal(size=(60, 2)), rng(11).normal(size=(60, 2))
    with pytest.raises(RuntimeError, match="num_iter_max"):
        T.w1(x, y, num_iter_max=3)
    with pytest.raises(ValueError, match="num_iter_max"):
        T.w1(x, y, num_iter_max=0)


# ----------------------------------------------------------------------------------------
# exact W1: torch and gradients
# ----------------------------------------------------------------------------------------
def test_torch_w1_returns_differentiable_scalar_of_input_dtype():
    r = rng(12)
    x, y = r.normal(size=(16, 3)), r.normal(size=(10, 3))
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    yt = torch.tensor(y, dtype=torch.float32, requires_grad=True)
    val = T.w1(xt, yt)
    assert isinstance(val, torch.Tensor) and val.ndim == 0 and val.dtype == torch.float32
    assert val.item() == pytest.approx(T.w1(x, y), rel=1e-5)
    val.backward()
    assert torch.isfinite(xt.grad).all() and torch.isfinite(yt.grad).all()
    # each point's gradient is a mass-weighted average of unit vectors: norm <= its mass
    assert (xt.grad.norm(dim=1) <= 1 / 16 + 1e-6).all()
    # mixed numpy / torch inputs work and agree
    assert T.w1(xt, y).item() == pytest.approx(val.item(), rel=1e-6)


def test_torch_w1_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: T.w1(a, b), (x, y), eps=1e-6, atol=1e-7)


def test_torch_w1_shifted_line_gradient_is_sign_over_n():
    n = 10
    x = torch.rand(n, 1, dtype=torch.float64, requires_grad=True)
    y = (torch.rand(n, 1, dtype=torch.float64) + 3.0).requires_grad_(True)  # every y_j > every x_i
    T.w1(x, y).backward()
    np.testing.assert_allclose(y.grad.numpy().ravel(), np.full(n, 1.0 / n), atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy().ravel(), np.full(n, -1.0 / n), atol=1e-12)


def test_torch_w1_gradient_step_reduces_distance():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 3, generator=g, dtype=torch.float64) + 2.0
    y = torch.randn(64, 3, generator=g, dtype=torch.float64, requires_grad=True)
    before = T.w1(x, y)
    before.backward()
    with torch.no_grad():
        y2 = y - 0.1 * 64 * y.grad  # each point moves 0.1 towards its partner
    after = T.w1(x, y2)
    assert after.item() < before.item() - 0.05


def test_torch_w1_at_coincident_points_has_zero_finite_gradient():
    x = torch.randn(8, 2, dtype=torch.float64, requires_grad=True)
    val = T.w1(x, x.detach().clone())
    val.backward()
    assert val.item() == 0.0
    assert torch.equal(x.grad, torch.zeros_like(x))


# ----------------------------------------------------------------------------------------
# parallel lines and divergences
# ----------------------------------------------------------------------------------------
def test_parallel_lines_closed_forms():
    assert T.parallel_lines(0.0) == {"w1": 0.0, "js": 0.0, "kl": 0.0, "tv": 0.0}
    d = T.parallel_lines(-0.3)
    assert d["w1"] == pytest.approx(0.3) and d["js"] == pytest.approx(LOG2)
    assert d["kl"] == math.inf and d["tv"] == 1.0
    arr = T.parallel_lines(np.array([-1.0, 0.0, 1e-9, 2.0]))
    np.testing.assert_allclose(arr["w1"], [1.0, 0.0, 1e-9, 2.0])
    np.testing.assert_allclose(arr["js"], [LOG2, 0.0, LOG2, LOG2])
    np.testing.assert_array_equal(arr["kl"], [math.inf, 0.0, math.inf, math.inf])
    np.testing.assert_array_equal(arr["tv"], [1.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        T.parallel_lines(float("nan"))
    with pytest.raises(TypeError, match="theta"):
        T.parallel_lines("a")


@pytest.mark.parametrize("theta", [-0.7, 0.05, 0.5])
def test_parallel_lines_w1_matches_sampled_lines(theta):
    # same seed -> same heights z: a pure translation, so the sample W1 is exactly |theta|
    p0 = sample_toy("parallel-lines", 256, seed=3)
    pt = sample_toy("parallel-lines", 256, seed=3, theta=theta)
    assert T.w1(p0, pt).item() == pytest.approx(abs(theta), rel=1e-5)
    # independent heights: |theta| <= W1 <= |theta| + W1(heights)
    pt = sample_toy("parallel-lines", 256, seed=4, theta=theta)
    est = T.w1(p0.numpy(), pt.numpy())
    w_heights = T.w1_1d(p0[:, 1].numpy(), pt[:, 1].numpy())
    assert abs(theta) - 1e-6 <= est <= abs(theta) + w_heights + 1e-6
    assert est == pytest.approx(T.parallel_lines(theta)["w1"], abs=0.05)


def test_parallel_lines_divergences_match_histograms_of_samples():
    """Binned samples of P0 and P_theta have disjoint support: TV=1, JS=log 2, KL=inf."""
    p0 = sample_toy("parallel-lines", 500, seed=0).numpy()
    pt = sample_toy("parallel-lines", 500, seed=1, theta=0.5).numpy()
    bins = [np.linspace(-1, 1, 21), np.linspace(0, 1, 11)]
    h0, _, _ = np.histogram2d(p0[:, 0], p0[:, 1], bins=bins)
    ht, _, _ = np.histogram2d(pt[:, 0], pt[:, 1], bins=bins)
    d = T.histogram_divergences(h0, ht)
    closed = T.parallel_lines(0.5)
    assert d["tv"] == closed["tv"] and d["kl"] == closed["kl"]
    assert d["js"] == pytest.approx(closed["js"], abs=1e-12)
    same = T.histogram_divergences(h0, h0)
    assert same == {"tv": 0.0, "kl": 0.0, "js": 0.0}


def test_histogram_divergences_hand_computed():
    p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    d = T.histogram_divergences(p, q)
    assert d["tv"] == pytest.approx(0.25)
    assert d["kl"] == pytest.approx(0.5 * math.log(2.0) + 0.5 * math.log(2.0 / 3.0))
    m = (p + q) / 2
    js = 0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m))
    assert d["js"] == pytest.approx(js)
    assert d["js"] == pytest.approx(jensenshannon(p, q) ** 2)
    # inputs are normalised; 0 log 0 = 0
    d2 = T.histogram_divergences(3 * p, [1, 3])
    assert d2 == pytest.approx(d)
    d3 = T.histogram_divergences([1.0, 0.0], [0.5, 0.5])
    assert d3["kl"] == pytest.approx(LOG2) and d3["tv"] == pytest.approx(0.5)
    assert T.histogram_divergences([0.5, 0.5], [1.0, 0.0])["kl"] == math.inf
    # disjoint supports
    assert T.histogram_divergences([1, 1, 0, 0], [0, 0, 2, 5]) == {"tv": 1.0, "kl": math.inf, "js": LOG2}


@pytest.mark.parametrize("seed", range(3))
def test_histogram_divergence_bounds(seed):
    r = rng(seed)
    p, q = r.random(10), r.random(10)
    d = T.histogram_divergences(p, q)
    assert 0 <= d["tv"] <= 1 and 0 <= d["js"] <= LOG2 and d["kl"] >= 0
    # Pinsker: TV <= sqrt(KL / 2); JS <= TV * log 2 (Lin 1991)
    assert d["tv"] <= math.sqrt(d["kl"] / 2) + 1e-12
    assert d["js"] <= d["tv"] * LOG2 + 1e-12


@pytest.mark.parametrize(
    "p, q, message",
    [
        ([1, -1, 2], [1, 1, 1], "p must be non-negative"),
        ([1, 1], [1, 1, 1], "same shape"),
        ([0, 0], [1, 1], "p must have positive total mass"),
        ([1, 1], [np.inf, 1], "q contains NaN"),
        ([], [], "must not be empty"),
    ],
)
def test_histogram_divergences_validates(p, q, message):
    with pytest.raises(ValueError, match=message):
        T.histogram_divergences(p, q)


# ----------------------------------------------------------------------------------------
# duality
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, m, weighted", [(9, 9, False), (12, 7, False), (8, 5, True)])
def test_kantorovich_potentials_strong_duality_feasibility_slackness(n, m, weighted):
    r = rng(n + m)
    x, y = r.normal(size=(n, 3)), r.normal(loc=1.0, size=(m, 3))
    a = b = None
    if weighted:
        a, b = r.random(n), r.random(m)
        a, b = a / a.sum(), b / b.sum()
    f, g, value = duality.kantorovich_potentials(x, y, a, b)
    aw = np.full(n, 1 / n) if a is None else a
    bw = np.full(m, 1 / m) if b is None else b
    C = T.cost_matrix(x, y)
    assert f.shape == (n,) and g.shape == (m,)
    assert (f[:, None] + g[None, :] - C).max() <= 1e-9  # dual feasibility
    assert value == pytest.approx(T.w1(x, y, a, b), rel=1e-12)  # primal optimum
    assert aw @ f + bw @ g == pytest.approx(value, rel=1e-9, abs=1e-12)  # strong duality
    plan, _ = T.transport_plan(x, y, a, b)
    support = plan > 0
    np.testing.assert_allclose((f[:, None] + g[None, :])[support], C[support], atol=1e-9)


def test_kantorovich_potentials_torch_in_torch_out():
    x = torch.randn(6, 2)
    f, g, value = duality.kantorovich_potentials(x, x + 1.0)
    assert isinstance(f, torch.Tensor) and f.dtype == torch.float64 and g.shape == (6,)
    assert value == pytest.approx(math.sqrt(2), rel=1e-6)


def test_kr_potential_is_one_lipschitz_and_optimal():
    r = rng(13)
    x, y = r.normal(size=(10, 2)), r.normal(loc=(2.0, 0.0), size=(14, 2))
    f, g, value = duality.kantorovich_potentials(x, y)
    phi_x, phi_y, v2 = duality.kr_potential(x, y)
    assert v2 == value
    np.testing.assert_allclose(phi_x, f, atol=1e-12)
    assert phi_x.mean() - phi_y.mean() == pytest.approx(value, rel=1e-9)
    pts, vals = np.concatenate([x, y]), np.concatenate([phi_x, phi_y])
    lip = np.abs(vals[:, None] - vals[None, :]) - T.cost_matrix(pts, pts)
    assert lip.max() <= 1e-9
    # phi anywhere: c_transform(g, y, z); it agrees on the supports and is 1-Lipschitz on a grid
    np.testing.assert_allclose(duality.c_transform(g, y, x), phi_x, atol=1e-12)
    np.testing.assert_allclose(duality.c_transform(g, y, y), phi_y, atol=1e-12)
    grid = np.stack(np.meshgrid(np.linspace(-3, 5, 15), np.linspace(-3, 3, 15)), -1).reshape(-1, 2)
    pg = duality.c_transform(g, y, grid)
    assert (np.abs(pg[:, None] - pg[None, :]) - T.cost_matrix(grid, grid)).max() <= 1e-9


def test_c_transform_hand_example_and_shapes():
    x = np.array([[0.0], [2.0]])
    f = np.array([1.0, 0.5])
    y = np.array([[0.0], [1.0], [3.0]])
    # f^c(y) = min(|y - 0| - 1, |y - 2| - 0.5)
    np.testing.assert_allclose(duality.c_transform(f, x, y), [-1.0, 0.0, 0.5])
    np.testing.assert_allclose(duality.c_transform(f[:, None], x, y), [-1.0, 0.0, 0.5])
    with pytest.raises(ValueError, match="f_x must have shape"):
        duality.c_transform(np.zeros(3), x, y)


def test_c_transform_of_one_lipschitz_function_is_minus_f_on_support():
    r = rng(14)
    x = r.normal(size=(25, 4))
    w = r.normal(size=4)
    w *= 0.9 / np.linalg.norm(w)  # ||w|| <= 1: f(z) = <w, z> is 1-Lipschitz
    f = x @ w + 0.3
    np.testing.assert_allclose(duality.c_transform(f, x, x), -f, atol=1e-12)
    # also for a nonlinear 1-Lipschitz function: f(z) = ||z - c||
    f2 = np.linalg.norm(x - 1.0, axis=1)
    np.testing.assert_allclose(duality.c_transform(f2, x, x), -f2, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_c_transform_dual_weak_duality_and_equality_at_optimum(seed):
    r = rng(seed)
    x, y = r.normal(size=(15, 3)), r.normal(loc=0.5, size=(11, 3))
    exact = T.w1(x, y)
    for scale in (0.1, 1.0, 10.0):
        f = r.normal(size=15) * scale
        fc = duality.c_transform(f, x, y)
        assert (f[:, None] + fc[None, :] - T.cost_matrix(x, y)).max() <= 1e-12  # feasible pair
        assert duality.c_transform_dual(f, x, y) <= exact + 1e-12
    f_opt, _, _ = duality.kantorovich_potentials(x, y)
    assert duality.c_transform_dual(f_opt, x, y) == pytest.approx(exact, rel=1e-9)
    # the c-transform can only improve a 1-Lipschitz critic's estimate mean f(x) - mean f(y)
    w = r.normal(size=3)
    w /= np.linalg.norm(w)
    lin_x, lin_y = x @ w, y @ w
    assert lin_x.mean() - lin_y.mean() <= duality.c_transform_dual(lin_x, x, y) + 1e-12


def test_c_transform_torch_gradients_and_agreement():
    r = rng(15)
    x, y, f = r.normal(size=(7, 2)), r.normal(size=(5, 2)), r.normal(size=7)
    ft = torch.tensor(f, requires_grad=True)
    yt = torch.tensor(y, requires_grad=True)
    xt = torch.tensor(x)
    fc = duality.c_transform(ft, xt, yt)
    np.testing.assert_allclose(fc.detach().numpy(), duality.c_transform(f, x, y), atol=1e-12)
    dual = duality.c_transform_dual(ft, xt, yt)
    assert dual.item() == pytest.approx(duality.c_transform_dual(f, x, y), rel=1e-12)
    dual.backward()
    # d/df_i = 1/n - (1/m) * #{j : argmin_i of y_j is i}
    argmin = (T.cost_matrix(x, y) - f[:, None]).argmin(axis=0)
    expected = np.full(7, 1 / 7) - np.bincount(argmin, minlength=7) / 5
    np.testing.assert_allclose(ft.grad.numpy(), expected, atol=1e-12)
    assert torch.isfinite(yt.grad).all() and yt.grad.abs().sum() > 0
    # float32 critic outputs with numpy points
    fc32 = duality.c_transform(torch.tensor(f, dtype=torch.float32), x, y)
    assert fc32.dtype == torch.float32


# ---------------------------------------------------------------------------- three families
def test_uniform_shift_closed_forms_match_histograms():
    for t in (0.1, 0.35, -0.6):
        d = T.uniform_shift(t)
        assert d["w1"] == pytest.approx(abs(t)) and d["tv"] == pytest.approx(abs(t))
        assert d["js"] == pytest.approx(abs(t) * LOG2) and d["kl"] == math.inf
        # exact: histograms of the two densities on a grid that has the shift's edges
        edges = np.linspace(-1.0, 2.0, 3001)  # cell width 1e-3, t on a cell edge
        mid = 0.5 * (edges[1:] + edges[:-1])
        p = ((mid > 0) & (mid < 1)).astype(float)
        q = ((mid > t) & (mid < 1 + t)).astype(float)
        h = T.histogram_divergences(p, q)
        assert h["tv"] == pytest.approx(d["tv"], abs=2e-3)
        assert h["js"] == pytest.approx(d["js"], abs=2e-3)
        assert T.w1_1d(mid, mid, p, q) == pytest.approx(abs(t), abs=2e-3)
    assert T.uniform_shift(1.5) == {"w1": 1.5, "tv": 1.0, "js": LOG2, "kl": math.inf}
    assert T.uniform_shift(0.0) == {"w1": 0.0, "tv": 0.0, "js": 0.0, "kl": 0.0}
    assert T.uniform_shift([0.1, 0.2])["w1"].shape == (2,)


def test_gaussian_shift_closed_forms():
    from scipy.integrate import quad
    from scipy.stats import norm

    for mu, s in ((0.3, 1.0), (2.0, 0.5), (-1.0, 2.0)):
        d = T.gaussian_shift(mu, s)
        p, q = norm(0, s).pdf, norm(mu, s).pdf
        lo, hi = min(0, mu) - 12 * s, max(0, mu) + 12 * s
        tv = 0.5 * quad(lambda x: abs(p(x) - q(x)), lo, hi, points=[mu / 2], limit=200)[0]
        m = lambda x: 0.5 * (p(x) + q(x))
        js = (
            0.5 * quad(lambda x: p(x) * math.log(p(x) / m(x)), lo, hi, limit=200)[0]
            + 0.5 * quad(lambda x: q(x) * math.log(q(x) / m(x)), lo, hi, limit=200)[0]
        )
        assert d["tv"] == pytest.approx(tv, rel=1e-6)
        assert d["js"] == pytest.approx(js, rel=1e-6)
        assert d["kl"] == pytest.approx(mu**2 / (2 * s**2))
        assert d["w1"] == pytest.approx(abs(mu))
    small = T.gaussian_shift(1e-2)
    assert small["js"] == pytest.approx(small["kl"] / 4, rel=1e-3)  # JS ~ KL / 4
    assert T.gaussian_shift(40.0)["js"] == pytest.approx(LOG2, abs=1e-9)
    with pytest.raises(ValueError, match="sigma"):
        T.gaussian_shift(1.0, sigma=0.0)


def test_parallel_lines_excess_limits_and_simulation():
    for n in (100, 10_000):
        assert T.parallel_lines_excess(0.0, n) == pytest.approx(math.sqrt(math.pi) / (4 * math.sqrt(n)), rel=1e-6)
    n, th = 100_000, 0.5
    assert T.parallel_lines_excess(th, n) == pytest.approx(1 / (6 * n * th), rel=1e-4)
    r = rng(3)
    for th in (0.0, 0.2):
        sims = [
            np.mean(np.sqrt(th**2 + (np.sort(r.random(400)) - np.sort(r.random(400))) ** 2)) - th for _ in range(400)
        ]
        se = np.std(sims) / math.sqrt(len(sims))
        assert abs(np.mean(sims) - T.parallel_lines_excess(th, 400)) < 4 * se + 2e-4
    assert T.parallel_lines_excess([0.1, -0.1], 50)[0] == T.parallel_lines_excess([0.1, -0.1], 50)[1]
    with pytest.raises(ValueError, match="n must be"):
        T.parallel_lines_excess(0.1, 0)


# ---------------------------------------------------------------------------- critics vs the dual
def test_kantorovich_potential_module_is_an_optimal_critic():
    from wganbook.lipschitz import empirical_lipschitz

    r = rng(21)
    x, y = r.normal(size=(12, 2)) + 2.0, r.normal(size=(12, 2))
    _, g, value = duality.kantorovich_potentials(x, y)
    phi = duality.KantorovichPotential(g, y)
    zx, zy = torch.tensor(x), torch.tensor(y)
    est = (phi(zx).mean() - phi(zy).mean()).item()
    assert est == pytest.approx(T.w1(x, y), abs=1e-9)
    probe = torch.tensor(r.uniform(-3, 5, size=(200, 2)))
    assert empirical_lipschitz(phi, probe) <= 1 + 1e-9
    assert phi(probe.float()).dtype == torch.float32


def test_dual_bounds_and_ctransform_checks():
    r = rng(22)
    x, y = r.normal(size=(16, 2)) + 1.5, r.normal(size=(16, 2))
    w = T.w1(x, y)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1), torch.nn.Flatten(0))
    with torch.no_grad():
        net[2].weight.mul_(50.0)  # steep: the plain value may exceed W1
    b = duality.dual_bounds(net, x, y)
    z = torch.tensor(np.concatenate([x, y]), dtype=torch.float32)
    fz = net(z).detach().double().numpy()
    assert b["plain"] == pytest.approx(fz[:16].mean() - fz[16:].mean(), rel=1e-6)
    assert b["rescaled"] <= w + 1e-9 and b["ctransform"] <= w + 1e-9
    assert b["rescaled"] == pytest.approx(b["plain"] / b["lipschitz"])
    # a linear function, made 1-Lipschitz: f^c = -f over both clouds, plain <= D(f) <= W1
    lin = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Flatten(0)).double()
    with torch.no_grad():
        lin[0].weight.copy_(torch.tensor([[1.2, 1.6]]))  # slope 2: normalised to 1
    c = duality.ctransform_checks(lin, x, y)
    assert 1.99 < c["lipschitz"] <= 2.0 + 1e-12  # largest slope over the pairs
    assert c["equal_gap"] < 1e-9 and c["order_gap"] > -1e-9
    assert c["plain"] <= c["ctransform"] + 1e-12 <= w + 1e-9 + 1e-12
    # the optimal potential of the exact dual reaches W1 after the checks' normalisation
    phi = duality.KantorovichPotential(duality.kantorovich_potentials(x, y)[1], y)
    assert duality.ctransform_checks(phi, x, y)["ctransform"] == pytest.approx(w, abs=1e-9)
    with torch.no_grad():
        lin[0].weight.zero_()
        lin[0].bias.zero_()
    with pytest.raises(ValueError, match="constant"):
        duality.ctransform_checks(lin, x, y)

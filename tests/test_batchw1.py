"""Mathematics of wganbook.batchw1: closed forms, identities and hand-computed cases."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from wganbook import batchw1, duality, transport
from wganbook.lab import paradox
from wganbook.models import Generator


# ------------------------------------------------------------------------- copies of one image
@pytest.mark.parametrize("m", [1, 3, 7, 20])
def test_copies_identity_matches_exact_w1(m):
    """W1(X, m copies of u) = mean_i ||x_i - u|| for any number of copies m."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 1, 3, 3))
    u = rng.normal(size=(1, 3, 3))
    exact = transport.w1(x.reshape(7, -1), np.repeat(u.reshape(1, -1), m, axis=0))
    assert batchw1.copies_w1(torch.as_tensor(x), torch.as_tensor(u)) == pytest.approx(exact, abs=1e-12)


def test_copies_hand_case():
    # distances 0 and 5 from the origin -> mean 2.5
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert batchw1.copies_w1(x, torch.zeros(2)) == pytest.approx(2.5)


def test_copies_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="u must have"):
        batchw1.copies_w1(torch.zeros(3, 4), torch.zeros(5))


def test_translated_batch_hand_case():
    # two points moved by 3 in the second coordinate: W1 = 3 (hand computation)
    x = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert transport.w1(x, x + np.array([0.0, 3.0])) == pytest.approx(3.0)


# --------------------------------------------------------------------- the sqrt(2) intuition
def test_sqrt2_in_expectation_high_dimension():
    """Single-image batches of N(0, I_d): E||x - x'|| / E||x - mu|| -> sqrt(2) as d grows.

    E||x - x'||^2 = 2 tr(Sigma) and E||x - mu||^2 = tr(Sigma); in high dimension the norms
    concentrate, so the ratio of the means is close to sqrt(2).
    """
    d, n = 1000, 400
    g = torch.Generator().manual_seed(0)
    pool = torch.randn(n, d, generator=g, dtype=torch.float64)
    ref = torch.randn(n, d, generator=g, dtype=torch.float64)
    sweep = batchw1.paradox_sweep(pool, ref, [1], n_batches=300, seed=1)
    real, mean, km = sweep["real"][0], sweep["mean"][0], sweep["kmeans"][0]
    assert real.mean() / mean.mean() == pytest.approx(math.sqrt(2), rel=0.01)
    # second moments: 2 tr(Sigma) = 2d and tr(Sigma) + ||mean of pool||^2 ~ d
    assert np.mean(real**2) == pytest.approx(2 * d, rel=0.02)
    assert np.mean(mean**2) == pytest.approx(d, rel=0.02)
    # with m = 1 the single k-means centroid is the pool mean
    np.testing.assert_allclose(km, mean, rtol=1e-6)


@pytest.mark.filterwarnings("ignore:Number of distinct clusters")
def test_real_batch_beats_mean_at_large_m_for_two_clusters():
    """Two-cluster data in 1-D (points at -1 and +1): hand-checkable regime change.

    m = 1: W1(R, B) = |x - x'| is 0 or 2 (mean 1), W1(R, mean) = |x - 0| = 1 -> a tie in
    expectation; m large: two balanced real batches match almost perfectly (W1 -> 0) while
    copies of the mean stay at distance 1.
    """
    pool = torch.tensor([-1.0, 1.0]).repeat(200).reshape(-1, 1)
    ref = pool.clone()
    sweep = batchw1.paradox_sweep(pool, ref, [64], n_batches=20, seed=0)
    np.testing.assert_allclose(sweep["mean"][0], 1.0)
    assert sweep["real"][0].mean() < 0.3
    # the centroids of a 2-point data set can only be the two points (duplicated): W1 >= 0, finite
    assert np.all(np.isfinite(sweep["kmeans"][0]))


def test_blur_batch_and_summary_rows():
    g = torch.Generator().manual_seed(0)
    pool = torch.rand(60, 1, 8, 8, generator=g) * 2 - 1
    ref = torch.rand(60, 1, 8, 8, generator=g) * 2 - 1
    sweep = batchw1.paradox_sweep(pool, ref, [4, 8], n_batches=5, seed=0, blur_sigma=1.0)
    rows = batchw1.paradox_summary(sweep)
    assert [r["m"] for r in rows] == [4, 8]
    for r in rows:
        assert 0.0 <= r["mean_wins"] <= 1.0 and r["n"] == 5
        # uniform noise: the mean image (about 0) is much closer than another noise batch
        assert r["mean"] < r["real"]
    # the blurred batch is exactly W1 to the blurred images
    assert np.all(np.isfinite(sweep["blur"][0]))


def test_paradox_rejects_too_large_batches():
    with pytest.raises(ValueError, match="at most"):
        batchw1.paradox_sweep(torch.zeros(10, 2), torch.zeros(5, 2), [8])


# ------------------------------------------------------------------------------ crossover
def test_crossover_hand_cases():
    # d = real - other = [1, 0, -1] -> sign change between m = 1 and m = 2: m* = 2
    assert batchw1.crossover([1, 2, 4], [3.0, 2.0, 1.0], [2.0, 2.0, 2.0]) == pytest.approx(2.0)
    # d = [1, -1] between 4 and 16: halfway in log2 -> 8
    assert batchw1.crossover([4, 16], [3.0, 1.0], [2.0, 2.0]) == pytest.approx(8.0)
    # competitor always better -> None; real better from the start -> first size
    assert batchw1.crossover([1, 2], [3.0, 3.0], [1.0, 1.0]) is None
    assert batchw1.crossover([1, 2], [1.0, 1.0], [3.0, 3.0]) == 1.0
    with pytest.raises(ValueError, match="increasing"):
        batchw1.crossover([2, 1], [1.0, 1.0], [1.0, 1.0])


# --------------------------------------------------------------------- k-means, blur, nearest
def test_kmeans_recovers_tight_clusters_and_k1_is_mean():
    centres = torch.tensor([[-5.0, 0.0], [0.0, 5.0], [5.0, 0.0]])
    g = torch.Generator().manual_seed(0)
    pts = centres.repeat(30, 1) + 0.01 * torch.randn(90, 2, generator=g)
    c = batchw1.kmeans_centroids(pts, 3, seed=0)
    got = c[torch.argsort(c[:, 0] * 10 + c[:, 1])]
    want = centres[torch.argsort(centres[:, 0] * 10 + centres[:, 1])]
    torch.testing.assert_close(got, want, atol=0.01, rtol=0)
    torch.testing.assert_close(batchw1.kmeans_centroids(pts, 1)[0], pts.mean(0), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="k must be at most"):
        batchw1.kmeans_centroids(pts, 91)


def test_gaussian_blur_properties():
    const = torch.full((2, 3, 8, 8), 0.3)
    torch.testing.assert_close(batchw1.gaussian_blur(const, 1.5), const)
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(batchw1.gaussian_blur(x, 0.0), x)
    # a centred delta in a large image spreads into the outer product of a kernel summing to 1
    delta = torch.zeros(1, 1, 21, 21)
    delta[0, 0, 10, 10] = 1.0
    out = batchw1.gaussian_blur(delta, 1.0)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert out[0, 0, 10, 10] == out.max()
    k1 = out[0, 0, 10, 9] / out[0, 0, 10, 10]
    assert k1.item() == pytest.approx(math.exp(-0.5), rel=1e-5)
    with pytest.raises(ValueError, match="sigma"):
        batchw1.gaussian_blur(x, -1.0)


def test_nearest_distances_hand_case():
    refs = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    s = torch.tensor([[3.0, 4.0], [10.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(batchw1.nearest_distances(s, refs), [5.0, 1.0, 0.0])


def test_gaussian_twin_moments():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 1, 2, 2, generator=g) * torch.tensor([1.0, 2.0, 0.5, 1.0]).reshape(1, 1, 2, 2)
    tw = batchw1.gaussian_twin(x, 20000, seed=0)
    assert tw.shape == (20000, 1, 2, 2)
    torch.testing.assert_close(tw.reshape(20000, -1).var(0), x.reshape(500, -1).var(0), rtol=0.05, atol=0)


# -------------------------------------------------------------- training on exact batch W1
class _ConstantGenerator(Generator):
    """G(z) = c for every z: the generator can output one image only."""

    def __init__(self, dim):
        super().__init__()
        self.z_dim = 1
        self.c = nn.Parameter(torch.tensor([0.7, -0.4]) if dim == 2 else torch.zeros(dim))

    def forward(self, z):
        return self.c.expand(z.shape[0], -1)


def test_exact_w1_generator_finds_geometric_median():
    """A one-image generator trained on the exact batch W1 converges to the geometric median.

    With copies of one image c, W1(X, copies) = mean_i ||x_i - c|| (the identity above), minimised by
    the geometric median; for the four corners of a square that is the centre -- an image that
    is no data point at all (a "blurry average").
    """
    corners = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    gen = _ConstantGenerator(2)
    hist = paradox.train_exact_w1_generator(
        gen, corners, steps=400, batch_size=4, lr=0.02, betas=(0.5, 0.999), seed=0, record_every=100
    )
    torch.testing.assert_close(gen.c.detach(), torch.zeros(2), atol=0.03, rtol=0)
    assert hist["w1"][-1] == pytest.approx(math.sqrt(2), abs=0.01)
    assert hist["step"][0] == 1 and hist["step"][-1] == 400


# ---------------------------------------------------------------------- critic estimates
class _Linear(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(w, dtype=torch.float32))

    def forward(self, x):
        return x.reshape(x.shape[0], -1) @ self.w


def test_estimates_of_optimal_linear_critic_on_a_translation():
    """Y = X + 3 e_1: W1 = 3, attained by the 1-Lipschitz critic f(x) = -x_1."""
    g = torch.Generator().manual_seed(0)
    real = torch.randn(200, 4, generator=g)
    shift = torch.tensor([3.0, 0.0, 0.0, 0.0])
    critic = _Linear([-1.0, 0.0, 0.0, 0.0])
    # pair each real batch with its own translate: fake drawn by the same indices
    out = paradox.evaluate_estimates("wgan-gp", critic, real, real + shift, n_batches=3, batch_size=200)
    np.testing.assert_allclose(out["exact"], 3.0, atol=1e-9)
    np.testing.assert_allclose(out["estimate"], 3.0, atol=1e-5)


def test_ct_estimate_never_exceeds_exact_w1():
    """Weak duality: for ANY potential f, mean f(x) + mean f^c(y) <= W1(X, Y)."""
    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 6, generator=g)
    fake = torch.randn(300, 6, generator=g) + 0.5
    critic = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1), nn.Flatten(0))
    out = paradox.evaluate_estimates("wgan-ct", critic, real, fake, n_batches=10, batch_size=32, seed=3)
    assert np.all(out["estimate"] <= out["exact"] + 1e-9)
    np.testing.assert_allclose(out["error"], out["estimate"] - out["exact"])


def test_ct_estimate_is_exact_at_the_kantorovich_potential():
    """Equality in weak duality at an optimal potential (strong duality)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 5, generator=g, dtype=torch.float64)
    y = torch.randn(16, 5, generator=g, dtype=torch.float64) + 1.0
    f, _, value = duality.kantorovich_potentials(x, y)
    lookup = {tuple(row.tolist()): float(v) for row, v in zip(x, f)}

    class _Table(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(1))

        def forward(self, z):
            return torch.tensor([lookup.get(tuple(r.tolist()), 0.0) for r in z.double()])

    out = paradox.evaluate_estimates("wgan-ct", _Table(), x, y, n_batches=2, batch_size=16)
    np.testing.assert_allclose(out["estimate"], value, atol=1e-9)
    np.testing.assert_allclose(out["exact"], value, atol=1e-12)


def test_evaluate_estimates_rejects_unknown_method():
    with pytest.raises(ValueError, match="method must be one of"):
        paradox.evaluate_estimates("wgan-x", _Linear([1.0]), torch.zeros(4, 1), torch.zeros(4, 1))


def test_nearest_distances_leave_one_out():
    pts = torch.tensor([[0.0], [1.0], [3.0]])
    np.testing.assert_allclose(batchw1.nearest_distances(pts, pts), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(batchw1.nearest_distances(pts, pts, exclude_self=True), [1.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="exclude_self"):
        batchw1.nearest_distances(pts, pts[:2], exclude_self=True)


def test_split_halves_disjoint_and_complete():
    x = torch.arange(11.0).reshape(11, 1)
    a, b = batchw1.split_halves(x, seed=3)
    assert a.shape[0] == 5 and b.shape[0] == 6
    assert sorted(torch.cat([a, b]).reshape(-1).tolist()) == list(range(11))


def test_batch_w1_samples_same_set_and_callable():
    # 1-D points 0..7; disjoint halves of size 4: W1 >= 0 and equals the 1-D closed form
    x = torch.arange(8.0).reshape(8, 1)
    vals = batchw1.batch_w1_samples(x, x, batch_size=4, n_batches=5, seed=0)
    assert vals.shape == (5,) and np.all(vals > 0)  # disjoint batches of distinct points never coincide
    # the second batch from a callable: constant 10 -> W1 = mean |x_i - 10| (copies identity)
    const = batchw1.batch_w1_samples(x, lambda n: torch.full((n, 1), 10.0), batch_size=8, n_batches=2)
    np.testing.assert_allclose(const, np.mean(10.0 - np.arange(8.0)))

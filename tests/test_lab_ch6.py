"""Tests of chapter 6's summaries (wganbook.lab.paradox) against closed forms and hand-computed values."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from wganbook import batchw1
from wganbook.lab import paradox


def test_error_summary_by_hand():
    ev = {"estimate": np.array([1.0, 2.0]), "exact": np.array([2.0, 4.0])}
    ev["error"] = ev["estimate"] - ev["exact"]  # -1, -2
    s = paradox.error_summary(ev)
    assert s["estimate"] == 1.5 and s["exact"] == 3.0
    assert s["error"] == -1.5 and s["error_std"] == 0.5  # population std
    assert s["abs_error"] == 1.5 and s["relative_error"] == 0.5  # |e| / W1 = 1/2 for both pairs
    with pytest.raises(ValueError, match="same|one non-zero"):
        paradox.error_summary({"estimate": [1.0], "exact": [1.0, 2.0], "error": [0.0]})


def test_weak_duality_excess_by_hand():
    est, exact = [1.0, 2.0, 2.9], [1.5, 2.0, 3.0]
    assert paradox.weak_duality_excess(est, exact) == 0.0  # equality at the second pair
    assert paradox.weak_duality_excess(est, exact, atol=1e-6) == pytest.approx(-1e-6)
    # rtol scales with the exact value: max(-0.5 - 0.15, -0.2, -0.1 - 0.3) = -0.2
    assert paradox.weak_duality_excess(est, exact, rtol=0.1) == pytest.approx(-0.2)
    assert paradox.weak_duality_excess([3.5], [3.0], atol=0.1) == pytest.approx(0.4)  # a violation
    with pytest.raises(ValueError, match="atol must be"):
        paradox.weak_duality_excess(est, exact, atol=-1.0)
    with pytest.raises(ValueError, match="same non-zero length"):
        paradox.weak_duality_excess([1.0], [1.0, 2.0])


def test_weak_duality_of_the_c_transform_dual_on_random_batches():
    from wganbook import duality, transport

    rng = np.random.default_rng(0)
    est, exact = [], []
    for _ in range(5):
        x, y, f = rng.normal(size=(8, 3)), rng.normal(1.0, size=(8, 3)), rng.normal(size=8)
        est.append(duality.c_transform_dual(f, x, y))
        exact.append(transport.w1(x, y))
    assert paradox.weak_duality_excess(est, exact, atol=1e-9) <= 0


def test_per_seed_and_mean_pm():
    runs = {("GP", 0): {"metrics": {"fd": 3.0}}, ("GP", 1): {"metrics": {"fd": 5.0}}, ("GP", 2): {"metrics": {}}}
    assert paradox.per_seed(runs, "GP", "fd", [1, 0]) == [5.0, 3.0]
    v = paradox.per_seed(runs, "GP", "fd", [0, 2])
    assert v[0] == 3.0 and math.isnan(v[1])
    assert paradox.mean_pm([3.0, 5.0], ".1f") == "4.0 ± 1.0"
    assert paradox.mean_pm([2.0], ".2f") == "2.00 ± 0.00"
    with pytest.raises(ValueError, match="empty"):
        paradox.mean_pm([])


class _Constant(nn.Module):
    """A generator whose every sample is the image u."""

    z_dim = 2

    def __init__(self, u):
        super().__init__()
        self.u = nn.Parameter(u.clone())

    def forward(self, z):
        return self.u.expand(z.shape[0], *self.u.shape) + 0.0 * z.sum()


def test_generator_batch_w1_of_a_constant_generator_is_the_mean_distance():
    # batches of copies of u: W1(X, {u..u}) = mean_i ||x_i - u||; with batches of all N images
    # every batch is the whole set
    images = torch.randn(6, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    u = torch.full((1, 2, 2), 0.5)
    w = paradox.generator_batch_w1(_Constant(u), images, batch_size=6, n_batches=3, n_samples=10)
    assert w == pytest.approx(batchw1.copies_w1(images, u), rel=1e-6)


def test_copies_lp_gap_is_zero_for_any_number_of_copies():
    ref = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    u = torch.zeros(2)
    # mean distance (0 + 5 + 10) / 3 = 5 = the LP with 1, 2, 3 or 7 copies
    for copies in (1, 2, 3, 7):
        assert paradox.copies_lp_gap(ref, u, copies) < 1e-12
    x = torch.randn(16, 1, 3, 3, generator=torch.Generator().manual_seed(1))
    assert max(paradox.copies_lp_gap(x, x.mean(0), c) for c in (5, 16)) < 1e-9
    with pytest.raises(ValueError, match="copies"):
        paradox.copies_lp_gap(ref, u, 0)


def test_distance_ratios_by_hand_and_in_expectation():
    # 1-D points 0 and 2 paired with 2 and 0, centre 1: pair distances 2, distances to the mean 1
    x, y = torch.tensor([[0.0], [2.0]]), torch.tensor([[2.0], [0.0]])
    assert paradox.distance_ratios(x, y, torch.tensor([1.0])) == pytest.approx((4.0, 2.0))
    # independent Gaussian pairs: E||x - y||^2 = 2 tr(Sigma) = 2 E||x - mean||^2, and in 50
    # dimensions the norms concentrate, so the ratio of distances is close to sqrt(2)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4000, 50, generator=g), torch.randn(4000, 50, generator=g)
    r2, r1 = paradox.distance_ratios(a, b, torch.zeros(50))
    assert r2 == pytest.approx(2.0, rel=0.02) and r1 == pytest.approx(math.sqrt(2.0), rel=0.02)
    with pytest.raises(ValueError, match="same shape"):
        paradox.distance_ratios(x, torch.zeros(3, 1), torch.tensor([1.0]))


def test_batch_schedule_by_hand():
    n = paradox.batch_schedule(50)
    assert [n(m) for m in (4, 64, 128, 256, 512, 4096)] == [50, 50, 25, 12, 6, 5]
    assert paradox.batch_schedule(2)(8) == 5  # never fewer than 5
    with pytest.raises(ValueError, match="base"):
        paradox.batch_schedule(0)


def test_crossovers_and_their_format():
    # d = real - other: mean 1, -0.5, -2 -> sign change between 4 and 8 at
    # log2 m* = 2 + 1 / 1.5; k-means wins everywhere; the blurred batch loses at once
    sweep = {
        "batch_size": [4, 8, 16],
        "real": [np.array([2.0, 4.0]), np.array([2.0]), np.array([1.0])],
        "mean": [np.array([2.0]), np.array([2.5]), np.array([3.0])],
        "kmeans": [np.array([1.0]), np.array([1.0]), np.array([0.5])],
        "blur": [np.array([3.5]), np.array([3.0]), np.array([2.0])],
    }
    c = paradox.crossovers(sweep)
    assert c["mean"] == pytest.approx(2 ** (2 + 1 / 1.5))
    assert c["kmeans"] is None and c["blur"] == 4.0
    assert paradox.format_crossover(c["mean"], 16) == "6"
    assert paradox.format_crossover(None, 16) == "beyond m = 16"


def test_paradox_sets_split_each_dataset_and_its_twin_and_cap_the_batch_sizes():
    x = torch.randn(100, 1, 2, 2, generator=torch.Generator().manual_seed(0)) * 0.5 + 1.0
    sets, sizes = paradox.paradox_sets({"toy": x}, [2, 4, 8, 16], seed=3, twin_size=400)
    assert list(sets) == ["toy", "Gaussian twin of toy"]
    ref, pool = sets["toy"]
    # disjoint halves that together are the data
    both = torch.cat([ref, pool]).flatten(1)
    assert ref.shape[0] == pool.shape[0] == 50
    assert torch.equal(both[both[:, 0].argsort()], x.flatten(1)[x.flatten(1)[:, 0].argsort()])
    # a tenth of the smaller half: 5 for the data, 20 for the twin's halves of 200
    assert sizes == {"toy": [2, 4], "Gaussian twin of toy": [2, 4, 8, 16]}
    twin = torch.cat(sets["Gaussian twin of toy"])
    assert twin.shape == (400, 1, 2, 2)
    assert torch.allclose(twin.mean(0), x.mean(0), atol=0.15)


def test_projected_bias_share_closed_form():
    # a: first coordinate 0, the others arbitrary; b: a shifted by 3 along the first axis. The mean
    # difference is (3, 0, ...), so the projections are exactly 0 (all of a) and 3 (all of b):
    # between = W1 of two point masses 3 apart = 3, within = 0, whatever the other coordinates.
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(200, 4, generator=gen) * 5.0
    a[:, 0] = 0.0
    b = a.clone()
    b[:, 0] = 3.0
    out = paradox.projected_bias_share(a, b, m=16, n_batches=4, seed=1)
    assert out["between"] == pytest.approx(3.0)
    assert out["within"] == pytest.approx(0.0, abs=1e-12)
    assert out["share"] == pytest.approx(0.0, abs=1e-12)
    # the same pixel-space measurement sees mostly the other coordinates' noise
    bias = batchw1.estimator_bias(a, b, [16], n_batches=4, seed=1, estimators=("exact",))
    assert bias["within"]["exact"][0].mean() / bias["between"]["exact"][0].mean() > 0.5


def test_projected_bias_share_one_dimension_by_hand():
    # one-dimensional data along the mean difference: the projection is the data itself (up to a
    # shift), so the result equals estimator_bias on the raw values
    a = torch.arange(40, dtype=torch.float64)[:, None]
    b = a + 10.0
    out = paradox.projected_bias_share(a, b, m=5, n_batches=3, seed=2)
    ref = batchw1.estimator_bias(a, b, [5], n_batches=3, seed=2, estimators=("exact",))
    assert out["between"] == pytest.approx(ref["between"]["exact"][0].mean())
    assert out["within"] == pytest.approx(ref["within"]["exact"][0].mean())
    with pytest.raises(ValueError, match="different means"):
        paradox.projected_bias_share(a, a.clone(), m=5)
    with pytest.raises(ValueError, match="m"):
        paradox.projected_bias_share(a, b, m=0)


def test_value_range_by_hand():
    assert paradox.value_range([3.14, 1.0, 2.5]) == "1.0–3.1"
    assert paradox.value_range([0.5], ".2f") == "0.50–0.50"
    with pytest.raises(ValueError, match="empty"):
        paradox.value_range([])


class _Zero(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.zeros(x.shape[0]) * self.w


def test_untrained_ct_estimates_zero_critic_is_nearest_neighbour():
    # f = 0: the c-transform estimate is mean_j min_i ||x_i - y_j||, by hand on fixed batches
    x = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    y = torch.tensor([[0.0, 1.0], [3.0, 4.0]])
    out = paradox.untrained_ct_estimates(_Zero, x, y, n_batches=1, batch_size=2, seed=0)
    assert out["estimate"][0] == pytest.approx((1.0 + 4.0) / 2)
    # the exact W1 pairs (0,0)-(0,1) and (3,0)-(3,4): (1 + 4) / 2 as well
    assert out["exact"][0] == pytest.approx(2.5)
    assert out["error"][0] == pytest.approx(0.0, abs=1e-12)


def test_untrained_ct_estimates_keeps_the_global_generator():
    torch.manual_seed(5)
    before = torch.rand(3)
    torch.manual_seed(5)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 4, generator=gen), torch.randn(40, 4, generator=gen) + 1.0
    a = paradox.untrained_ct_estimates(lambda: nn.Linear(4, 1), x, y, n_batches=3, batch_size=8, init_seed=3)
    assert torch.equal(torch.rand(3), before)  # the global stream is where it was
    b = paradox.untrained_ct_estimates(lambda: nn.Linear(4, 1), x, y, n_batches=3, batch_size=8, init_seed=3)
    np.testing.assert_array_equal(a["estimate"], b["estimate"])  # the same initialisation
    assert (a["estimate"] <= a["exact"] + 1e-9).all()  # weak duality
    with pytest.raises(ValueError, match="make_critic"):
        paradox.untrained_ct_estimates(None, x, y)


def test_static_test_same_batches_and_weak_duality():
    # every method is trained on the same batch sequence and evaluated on the same batch pairs, so
    # the exact W1 columns agree across methods (and with the untrained c-transform's); the
    # c-transform estimate never exceeds the exact value (weak duality)
    gen = torch.Generator().manual_seed(0)
    mu = torch.rand(60, 1, 8, 8, generator=gen) * 2 - 1
    nu = (torch.rand(60, 1, 8, 8, generator=gen) * 2 - 1) * 0.5
    methods = ["wgan-gp", "wgan-ct"]
    out = paradox.static_test("digits", mu, nu, methods, steps=2, batch_size=8, eval_batches=3, seed=4)
    ex = out["wgan-ct"]["eval"]["exact"]
    np.testing.assert_array_equal(out["wgan-gp"]["eval"]["exact"], ex)
    np.testing.assert_array_equal(out["ct-untrained"]["exact"], ex)
    np.testing.assert_allclose(out["wgan-gp"]["hist"]["w1_exact"], out["wgan-ct"]["hist"]["w1_exact"])
    assert (out["wgan-ct"]["eval"]["estimate"] <= ex + 1e-9).all()
    assert (out["ct-untrained"]["estimate"] <= ex + 1e-9).all()
    same = batchw1.batch_w1_samples(mu, mu, 8, 3, seed=6)
    np.testing.assert_array_equal(out["same"], same)
    again = paradox.static_test("digits", mu, nu, ["wgan-ct"], steps=2, batch_size=8, eval_batches=3, seed=4)
    np.testing.assert_array_equal(again["wgan-ct"]["eval"]["estimate"], out["wgan-ct"]["eval"]["estimate"])
    with pytest.raises(ValueError, match="methods"):
        paradox.static_test("digits", mu, nu, ["nope"], steps=1)

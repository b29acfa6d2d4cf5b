"""Tests of the (c, eps)-transform (wganbook.duality) and of chapter 6's ground-truth test
(wganbook.lab.groundtruth) against closed forms, bounds and hand-computed values."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from wganbook import duality, transport
from wganbook.lab import groundtruth as gt


# ------------------------------------------------------------------ the (c, eps)-transform
def test_soft_c_transform_by_hand():
    x = np.array([[0.0], [2.0]])
    # y = 1 is at cost 1 from both points: the soft minimum of two equal values is that value
    assert duality.soft_c_transform(np.zeros(2), x, np.array([[1.0]]), eps=0.7)[0] == pytest.approx(1.0, abs=1e-12)
    # y = 0: costs 0 and 2, f = 0, eps = 1: -log((e^0 + e^-2) / 2)
    want = -math.log((1.0 + math.exp(-2.0)) / 2.0)
    assert duality.soft_c_transform(np.zeros(2), x, np.array([[0.0]]), eps=1.0)[0] == pytest.approx(want, abs=1e-12)
    # with f = (1, 0): values c - f = -1 and 2 -> -log((e^1 + e^-2) / 2)
    want = -math.log((math.exp(1.0) + math.exp(-2.0)) / 2.0)
    got = duality.soft_c_transform(np.array([1.0, 0.0]), x, np.array([[0.0]]), eps=1.0)[0]
    assert got == pytest.approx(want, abs=1e-12)


def test_soft_c_transform_lies_between_the_hard_one_and_eps_log_n_above():
    rng = np.random.default_rng(0)
    x, y, f = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)), rng.normal(size=7)
    hard = duality.c_transform(f, x, y)
    for eps in (1e-3, 0.1, 1.0, 10.0):
        soft = duality.soft_c_transform(f, x, y, eps)
        assert np.all(soft >= hard - 1e-12)
        assert np.all(soft <= hard + eps * math.log(7) + 1e-12)
    # the limit eps -> 0 is the hard c-transform
    assert np.allclose(duality.soft_c_transform(f, x, y, 1e-6), hard, atol=1e-5)
    # one point: the soft and the hard transform agree exactly, for any eps
    assert np.allclose(duality.soft_c_transform(f[:1], x[:1], y, 5.0), duality.c_transform(f[:1], x[:1], y))


def test_soft_dual_is_shift_invariant_and_torch_agrees_with_numpy():
    rng = np.random.default_rng(1)
    x, y, f = rng.normal(size=(6, 2)), rng.normal(size=(4, 2)), rng.normal(size=6)
    v = duality.soft_c_transform_dual(f, x, y, 0.5)
    # adding k to f lowers f^{c,eps} by k: the dual value does not change
    assert duality.soft_c_transform_dual(f + 3.0, x, y, 0.5) == pytest.approx(v, abs=1e-12)
    ft = torch.tensor(f, requires_grad=True)
    vt = duality.soft_c_transform_dual(ft, torch.tensor(x), torch.tensor(y), 0.5)
    assert vt.item() == pytest.approx(v, abs=1e-12)
    vt.backward()
    # d/df_i = 1/n - mean_j softmax_i: the gradient sums to zero (shift invariance)
    assert float(ft.grad.sum()) == pytest.approx(0.0, abs=1e-12)
    # the soft dual is the hard dual plus at most eps log n
    hard = duality.c_transform_dual(f, x, y)
    assert hard - 1e-12 <= v <= hard + 0.5 * math.log(6) + 1e-12


@pytest.mark.parametrize("eps", [0.0, -1.0, float("nan"), "1"])
def test_soft_c_transform_refuses_a_bad_eps(eps):
    with pytest.raises((ValueError, TypeError), match="eps"):
        duality.soft_c_transform(np.zeros(2), np.zeros((2, 1)), np.zeros((1, 1)), eps)


# ------------------------------------------------------------------ the ground truth
def test_translation_w1_is_the_norm_of_the_shift_and_the_exact_solver_agrees():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 5))
    a = rng.normal(size=5)
    assert gt.translation_w1(a) == pytest.approx(float(np.sqrt((a**2).sum())), rel=1e-15)
    # the identity coupling is optimal: the exact W1 between a cloud and its translate is |a|
    assert transport.w1(x, x + a) == pytest.approx(gt.translation_w1(a), rel=1e-9)
    with pytest.raises(ValueError, match="shift"):
        gt.translation_w1([])


class _Linear(nn.Module):
    """f(x) = <x, w>: the optimal critic between mu and mu + a for w = -a / |a|."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(w, dtype=torch.float64))

    def forward(self, x):
        return x.flatten(1) @ self.w


def test_the_optimal_linear_critic_reaches_the_truth_for_every_estimate():
    rng = np.random.default_rng(3)
    mu = torch.tensor(rng.normal(size=(30, 4)))
    a = torch.tensor([0.5, -1.0, 0.0, 2.0], dtype=torch.float64)
    nu = mu + a
    truth = gt.translation_w1(a)
    f = _Linear(-a / a.norm())
    fx, fy = f(mu).detach(), f(nu).detach()
    # the mean difference of the optimal potential is |a| exactly
    assert gt.critic_value("wgan-gp", fx, fy, mu, nu) == pytest.approx(truth, rel=1e-12)
    # its c-transform is -f on the translate (f is 1-Lipschitz): the hard dual is |a| too
    # (to the rounding of the cost matrix, computed from |x|^2 + |y|^2 - 2<x, y>)
    assert gt.critic_value("wgan-ct", fx, fy, mu, nu) == pytest.approx(truth, rel=1e-6)
    # the soft dual lies between |a| and |a| + eps log n
    v = gt.critic_value("wgan-cteps", fx, fy, mu, nu, eps=0.2)
    assert truth - 1e-6 <= v <= truth + 0.2 * math.log(30) + 1e-12
    with pytest.raises(ValueError, match="eps is required"):
        gt.critic_value("wgan-cteps", fx, fy, mu, nu)
    with pytest.raises(ValueError, match="kind must be one of"):
        gt.critic_value("wgan-xx", fx, fy, mu, nu)


def test_trained_transform_critics_respect_their_bounds_at_every_record():
    torch.manual_seed(0)
    mu = torch.randn(64, 2)
    a = torch.tensor([1.5, 0.0])
    nu = mu + a
    truth = gt.translation_w1(a)
    for kind in ("wgan-ct", "wgan-cteps"):
        torch.manual_seed(0)
        critic = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1), nn.Flatten(0))
        h = gt.train_critic(kind, critic, mu, nu, steps=40, batch_size=16, seed=0, eps=0.05, record_every=10)
        assert h["step"] == [10, 20, 30, 40]
        pops = np.asarray(h["population_estimate"])
        if kind == "wgan-ct":
            # weak duality on the whole pools: never above the truth (float32 scores, float64 dual)
            assert np.all(pops <= truth + 1e-6)
        else:
            assert np.all(pops <= truth + 0.05 * math.log(64) + 1e-6)


def test_penalised_linear_optimum_is_the_argmax_of_its_objective():
    d, lam = 2.0, 10.0
    s = np.linspace(0.5, 1.5, 100001)
    best = s[np.argmax(s * d - lam * (s - 1.0) ** 2)]
    assert gt.penalised_linear_optimum(d, lam) == pytest.approx(best * d, abs=1e-4)
    assert gt.penalised_linear_optimum(d, lam) == pytest.approx(2.2)  # 2 + 4 / 20
    assert gt.penalised_linear_optimum(0.0, 1.0) == 0.0
    with pytest.raises(ValueError, match="lam"):
        gt.penalised_linear_optimum(1.0, 0.0)


def test_a_penalised_critic_overshoots_the_truth_to_its_linear_optimum_on_a_toy():
    torch.manual_seed(0)
    mu = torch.randn(256, 2)
    a = torch.tensor([2.0, 0.0])
    torch.manual_seed(1)
    critic = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1), nn.Flatten(0))
    h = gt.train_critic("wgan-gp", critic, mu, mu + a, steps=2000, batch_size=64, seed=0, record_every=250)
    pop = h["population_estimate"]
    # it starts far below |a| = 2 and ends above it, near the penalised optimum |a| + |a|^2 / (2 lam) = 2.2
    assert pop[0] < 1.0
    assert 2.0 < pop[-1] and abs(pop[-1] - gt.penalised_linear_optimum(2.0, 10.0)) < 0.06


def test_ground_truth_test_refuses_bad_input_before_training():
    x = torch.zeros(10, 1, 8, 8)
    with pytest.raises(ValueError, match="kind must be one of"):
        gt.ground_truth_test("digits", x, torch.zeros(1, 8, 8), ["wgan-xx"], steps=1)
    with pytest.raises(ValueError, match="shift must have the shape"):
        gt.ground_truth_test("digits", x, torch.zeros(8, 8), ["wgan-gp"], steps=1)
    with pytest.raises(ValueError, match="non-empty"):
        gt.ground_truth_test("digits", x, torch.zeros(1, 8, 8), [], steps=1)
    with pytest.raises(ValueError, match="missing: wgan-ct"):
        gt.ground_truth_test("digits", x, torch.zeros(1, 8, 8), ["wgan-gp", "wgan-ct"], steps={"wgan-gp": 1})
    with pytest.raises(ValueError, match="steps"):
        gt.ground_truth_test("digits", x, torch.zeros(1, 8, 8), ["wgan-gp"], steps=0)

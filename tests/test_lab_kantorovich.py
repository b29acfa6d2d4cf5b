"""Tests of chapter 2's experiments (wganbook.lab.kantorovich): random functions against W1, a critic's
summary and its gradients along the transport rays."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from wganbook import data, transport
from wganbook.lab import kantorovich as K


def _clouds(n=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    real = data.sample_toy("8gaussians", n, generator=gen)
    fake = 0.4 * torch.randn(n, 2, generator=gen)
    return real.double().numpy(), fake.double().numpy()


def test_random_function_bounds_obey_weak_duality_and_scale_log_uniformly():
    x, y = _clouds()
    w1 = transport.w1(x, y)
    torch.manual_seed(0)
    a = K.random_function_bounds(x, y, 12, seed=1)
    torch.manual_seed(0)
    b = K.random_function_bounds(x, y, 12, seed=2)
    # weak duality: the c-transform value and plain / L^ of every function are <= W1
    assert np.all(a["ctransform"] <= w1 + 1e-9) and np.all(a["rescaled"] <= w1 + 1e-9)
    np.testing.assert_allclose(a["rescaled"], a["plain"] / a["lipschitz"], rtol=1e-12)
    # the same networks (same global seed) under other scales: plain and L^ scale by the ratio
    # of the scales 10^(2u - 1) drawn from the two seeded generators; plain / L^ does not change
    ua, ub = (
        torch.rand(12, generator=torch.Generator().manual_seed(1)),
        torch.rand(12, generator=torch.Generator().manual_seed(2)),
    )
    ratio = (10 ** (2 * ua.double() - 1)) / (10 ** (2 * ub.double() - 1))
    np.testing.assert_allclose(a["plain"] / b["plain"], ratio.numpy(), rtol=1e-4)
    np.testing.assert_allclose(a["lipschitz"] / b["lipschitz"], ratio.numpy(), rtol=1e-4)
    np.testing.assert_allclose(a["rescaled"], b["rescaled"], rtol=1e-4)
    with pytest.raises(ValueError, match="n_functions"):
        K.random_function_bounds(x, y, 0)


def test_critic_summary_hand_values():
    bounds = {"plain": 1.1, "lipschitz": 1.2, "ctransform": 0.95, "rescaled": 1.1 / 1.2}
    history = {"step": [5, 10, 15], "w1_estimate": [0.5, 1.0, 1.1]}
    s = K.critic_summary(bounds, history, w1=1.0, d_zero=0.8, cost=np.array([[1.0, 2.0], [3.0, 4.0]]), lam=10.0)
    assert s["gap_closed"] == pytest.approx((0.95 - 0.8) / (1.0 - 0.8))
    assert s["first_cross"] == 10  # the first estimate >= W1
    assert s["pair_distance"] == 2.5 and s["slope_pred"] == pytest.approx(1 + 2.5 / 20)
    assert (s["estimate"], s["lipschitz"], s["ctransform"]) == (1.1, 1.2, 0.95)
    with pytest.raises(ValueError, match="d_zero"):
        K.critic_summary(bounds, history, w1=0.5, d_zero=0.8, cost=[[1.0]], lam=10.0)


def test_ray_gradients_of_a_linear_critic():
    # f(x) = a . x has gradient a everywhere: norm |a| = 5, cosine a . u / |a| with the ray u
    critic = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
    fake = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    real = torch.tensor([[2.0, 0.0], [1.0 + 0.6, 1.0 + 0.8]])  # rays (1, 0) and (0.6, 0.8)
    norms, cosines = K.ray_gradients(critic, real, fake, [0, 1], [0, 1], n_points=4)
    assert torch.allclose(norms, torch.full((8,), 5.0))
    assert torch.allclose(cosines, torch.tensor([0.6] * 4 + [1.0] * 4), atol=1e-6)
    # matched across (real 1 with fake 0): the ray (1.6, 1.8) / |.|
    _, cos = K.ray_gradients(critic, real, fake, [1], [0], n_points=2)
    u = torch.tensor([1.6, 1.8]) / math.hypot(1.6, 1.8)
    assert torch.allclose(cos, (u @ torch.tensor([3.0, 4.0]) / 5).expand(2), atol=1e-6)


def test_generator_gradient_matches_the_closed_form_of_a_linear_critic_and_generator():
    # f(x) = w.x + c and g(z) = A z + b: -E f(g(z)) = -(w.(A zbar + b) + c), so the gradient is
    # -w zbar^T in A and -w in b, whatever the batch
    w = torch.tensor([0.5, -2.0, 1.5])
    critic, gen = nn.Linear(3, 1), nn.Linear(2, 3)
    with torch.no_grad():
        critic.weight.copy_(w[None, :])
        critic.bias.fill_(0.7)
    z = torch.tensor([[1.0, 2.0], [3.0, -1.0], [-0.5, 0.5]])
    out = K.generator_gradient(critic, gen, z)
    expected = torch.cat([(-w[:, None] * z.mean(0)[None, :]).reshape(-1), -w]).double()
    assert torch.allclose(out["autograd"], expected, atol=1e-12)
    assert torch.allclose(out["explicit"], expected, atol=1e-12)
    assert out["max_abs_diff"] < 1e-12


def test_generator_gradient_explicit_equals_autograd_for_nonlinear_networks_and_leaves_them_alone():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    gen = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    before = [p.detach().clone() for p in gen.parameters()]
    z = torch.randn(20, 3)
    out = K.generator_gradient(critic, gen, z)
    assert out["rel_diff"] < 1e-10 and out["autograd"].norm() > 1e-3
    assert all(torch.equal(a, b) for a, b in zip(before, gen.parameters()))
    assert all(p.grad is None for p in gen.parameters())


def test_generator_gradient_rejects_bad_noise():
    with pytest.raises(ValueError, match="z must"):
        K.generator_gradient(nn.Linear(2, 1), nn.Linear(2, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="z must"):
        K.generator_gradient(nn.Linear(2, 1), nn.Linear(2, 2), torch.zeros(0, 2))

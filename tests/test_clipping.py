"""Tests of the helpers of chapter 3 (weight clipping): transport alignment, concentration,
the JS estimate of a GAN discriminator and the generator's best response to a frozen critic."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from wganbook import lipschitz, metrics, objectives, train


class Cone(nn.Module):
    """f(x) = s * (-|x - a|): rises at unit rate towards a (s = 1)."""

    def __init__(self, a, s=1.0):
        super().__init__()
        self.a = torch.as_tensor(a, dtype=torch.float32)
        self.s = s
        self.dummy = nn.Parameter(torch.zeros(()))  # a parameter, to check it stays untouched

    def forward(self, x):
        return self.s * (-(x - self.a.to(x.dtype)).norm(dim=1)) + 0 * self.dummy


class Linear(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = torch.as_tensor(w, dtype=torch.float32)

    def forward(self, x):
        return x @ self.w.to(x.dtype)


# ------------------------------------------------------------------ transport_alignment
def test_alignment_of_a_cone_towards_one_real_point_is_one():
    # every real point at a: the ray of each fake point goes to a, which the cone's gradient does
    a = [0.5, -1.0]
    real = torch.tensor([a] * 16)
    fake = torch.randn(16, 2, generator=torch.Generator().manual_seed(0)) * 2
    assert lipschitz.transport_alignment(Cone(a), real, fake) == pytest.approx(1.0, abs=1e-6)
    assert lipschitz.transport_alignment(Cone(a, s=-1.0), real, fake) == pytest.approx(-1.0, abs=1e-6)


def test_alignment_is_scale_free_and_zero_for_an_orthogonal_gradient():
    # real = fake shifted by (1, 0): plan = identity, rays = (1, 0); gradient (0, 1) is orthogonal
    fake = torch.randn(32, 2, generator=torch.Generator().manual_seed(1)) * 0.01
    real = fake + torch.tensor([10.0, 0.0])
    assert lipschitz.transport_alignment(Linear([0.0, 1.0]), real, fake) == pytest.approx(0.0, abs=1e-9)
    assert lipschitz.transport_alignment(Linear([1e-4, 0.0]), real, fake) == pytest.approx(1.0, abs=1e-9)
    c = 1 / math.sqrt(2)
    assert lipschitz.transport_alignment(Linear([3.0, 3.0]), real, fake) == pytest.approx(c, abs=1e-6)


def test_alignment_rejects_bad_input():
    with pytest.raises(TypeError, match="critic"):
        lipschitz.transport_alignment(None, torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="same shape"):
        lipschitz.transport_alignment(Linear([1.0, 0.0]), torch.zeros(3, 2), torch.zeros(2, 2))


# ------------------------------------------------------------------ concentration
def test_concentration_closed_forms():
    assert metrics.concentration(torch.zeros(10, 2), 0.0) == 1.0
    grid = torch.tensor([[float(i), 0.0] for i in range(8)])
    assert metrics.concentration(grid, 0.5) == pytest.approx(1 / 8)
    two = torch.tensor([[0.0, 0.0], [0.0, 0.01], [0.01, 0.0], [5.0, 5.0]])
    assert metrics.concentration(two, 0.1) == pytest.approx(0.75)
    assert metrics.concentration(grid, 1.0) == pytest.approx(3 / 8)  # a point and its 2 neighbours


def test_concentration_rejects_bad_radius():
    with pytest.raises(ValueError, match="radius"):
        metrics.concentration(torch.zeros(3, 2), -1.0)
    with pytest.raises(ValueError, match="samples"):
        metrics.concentration(torch.zeros(3), 1.0)


# ------------------------------------------------------------------ js_estimate
def test_js_estimate_limits_and_agreement_with_critic_loss():
    # D = 1/2 everywhere: loss 2 log 2, estimate 0; perfect separation: loss -> 0, estimate log 2
    assert objectives.js_estimate(2 * math.log(2)) == pytest.approx(0.0, abs=1e-15)
    assert objectives.js_estimate(0.0) == pytest.approx(math.log(2))
    real, fake = torch.randn(64, 2), torch.randn(64, 2) + 1
    critic = Linear([0.7, -0.3])
    loss, stats = objectives.critic_loss("gan-ns", critic, real, fake)
    assert float(objectives.js_estimate(float(loss.detach()))) == pytest.approx(float(stats["js_estimate"]), abs=1e-6)
    np.testing.assert_allclose(objectives.js_estimate([2 * math.log(2), 0.0]), [0.0, math.log(2)])
    with pytest.raises(ValueError, match="critic_loss"):
        objectives.js_estimate(-1.0)


# ------------------------------------------------------------------ best_response
class Affine(nn.Module):
    z_dim = 2

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, z):
        return self.lin(z)


@pytest.mark.parametrize("method", ["wgan-clip", "gan-ns"])
def test_best_response_to_a_frozen_cone_is_a_delta_at_its_maximum(method):
    torch.manual_seed(0)
    a = [1.0, -0.5]
    critic, gen = Cone(a), Affine()
    hist = train.best_response(method, critic, gen, steps=600, lr=1e-2, batch_size=32, seed=0)
    with torch.no_grad():
        x = gen(torch.randn(512, 2))
    # every sample at the cone's apex: the optimal generator for a fixed critic is a delta there
    assert float((x - torch.tensor(a)).norm(dim=1).max()) < 0.05
    assert metrics.concentration(x, 0.1) == 1.0
    assert hist["score"][-1] > hist["score"][0] and hist["score"][-1] > -0.05
    assert float(critic.dummy.detach()) == 0.0 and critic.dummy.requires_grad  # critic frozen, flags restored


def test_best_response_rejects_bad_input():
    with pytest.raises(ValueError, match="wgan-ct"):
        train.best_response("wgan-ct", Cone([0, 0]), Affine(), steps=1)
    with pytest.raises(ValueError, match="steps"):
        train.best_response("wgan-clip", Cone([0, 0]), Affine(), steps=0)
    with pytest.raises(ValueError, match="lr"):
        train.best_response("wgan-clip", Cone([0, 0]), Affine(), steps=1, lr=0.0)
    with pytest.raises(ValueError, match="unknown method|method"):
        train.best_response("nope", Cone([0, 0]), Affine(), steps=1)

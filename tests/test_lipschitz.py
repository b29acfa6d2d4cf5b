"""Tests of wganbook.lipschitz: penalties against closed forms, and the classic GP pitfalls."""

import math

import pytest
import torch
from torch import nn

from wganbook.lipschitz import (
    SAMPLING_STRATEGIES,
    clip_weights_,
    div_penalty,
    empirical_lipschitz,
    gradient_penalty,
    input_gradient_norms,
    layer_gradient_norms,
    sample_penalty_points,
    spectral_norms,
)
from wganbook.models import MLPCritic, make_critic


class Linear(nn.Module):
    """f(x) = <w, flatten(x)> + b, returning shape (n,)."""

    def __init__(self, w, b=0.0):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(w, dtype=torch.float64).clone())
        self.b = nn.Parameter(torch.tensor(float(b), dtype=torch.float64))

    def forward(self, x):
        return x.reshape(x.shape[0], -1) @ self.w.reshape(-1) + self.b


class Quadratic(nn.Module):
    """f(x) = 0.5 * ||x||^2 (flattened), so grad f(x) = x and ||grad f(x)|| = ||x||."""

    def forward(self, x):
        return 0.5 * x.reshape(x.shape[0], -1).pow(2).sum(1)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


SHAPES = [(7, 2), (5, 1, 8, 8), (3, 3, 4, 4)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale", [0.3, 1.0, 2.5])
def test_gp_of_linear_critic_is_closed_form(shape, scale):
    torch.manual_seed(0)
    d = math.prod(shape[1:])
    w = torch.randn(d, dtype=torch.float64)
    w = scale * w / w.norm()  # ||w|| = scale
    f = Linear(w.reshape(shape[1:]))
    real = torch.randn(shape, dtype=torch.float64)
    fake = torch.randn(shape, dtype=torch.float64) + 3
    gp = gradient_penalty(f, real, fake, generator=_gen())
    assert gp.item() == pytest.approx((scale - 1) ** 2, abs=1e-9)
    lp = gradient_penalty(f, real, fake, one_sided=True, generator=_gen())
    assert lp.item() == pytest.approx(max(0.0, scale - 1) ** 2, abs=1e-9)
    gp0 = gradient_penalty(f, real, fake, center=0.0, generator=_gen())
    assert gp0.item() == pytest.approx(scale**2, abs=1e-9)


def test_gp_norm_is_per_flattened_sample_not_per_pixel():
    # image-shaped linear critic with ||w|| = 1: the per-sample flattened norm is 1, so GP = 0;
    # a per-pixel norm (norm over dim=1 of a 4-D tensor) would give a non-zero value.
    torch.manual_seed(1)
    w = torch.randn(3, 4, 4, dtype=torch.float64)
    w /= w.norm()
    f = Linear(w)
    real, fake = torch.randn(6, 3, 4, 4, dtype=torch.float64), torch.randn(6, 3, 4, 4, dtype=torch.float64)
    assert gradient_penalty(f, real, fake, generator=_gen()).item() == pytest.approx(0.0, abs=1e-9)
    g = w.expand(6, 3, 4, 4)
    per_pixel = ((g.norm(dim=1) - 1) ** 2).mean()
    assert per_pixel.item() > 0.5


def test_gp_uses_one_uniform_weight_per_sample_hand_value():
    # f = 0.5||x||^2 has ||grad f(x)|| = ||x||; with real = a_i * u and fake = 0 the interpolate is
    # eps_i * a_i * u, so GP = mean_i (eps_i a_i ||u|| - 1)^2 with eps_i the first n draws of U[0,1].
    n = 5
    a = torch.arange(1.0, n + 1, dtype=torch.float64)
    u = torch.zeros(1, 2, 3, dtype=torch.float64)
    u[0, 0, 0] = 3.0
    u[0, 1, 2] = 4.0  # ||u|| = 5
    real = a.reshape(n, 1, 1) * u
    fake = torch.zeros_like(real)
    eps = torch.rand(n, generator=_gen(7), dtype=torch.float64)
    expected = ((eps * a * 5 - 1) ** 2).mean()
    gp = gradient_penalty(Quadratic(), real, fake, generator=_gen(7))
    assert gp.item() == pytest.approx(expected.item(), rel=1e-9)


def test_real_fake_points_lie_on_segments_with_one_eps_per_sample():
    torch.manual_seed(0)
    real, fake = torch.randn(8, 1, 5, 5), torch.randn(8, 1, 5, 5)
    x = sample_penalty_points(real, fake, "real-fake", generator=_gen(3))
    assert x.shape == real.shape
    d = (real - fake).reshape(8, -1)
    t = ((x - fake).reshape(8, -1) * d).sum(1) / d.pow(2).sum(1)  # x = fake + t (real - fake)
    assert torch.all((t >= 0) & (t <= 1))
    recon = fake + t.reshape(8, 1, 1, 1) * (real - fake)
    assert torch.allclose(recon, x, atol=1e-5)  # one scalar per sample reproduces every pixel


def _on_segment(p, a, b, atol=1e-5):
    d = b - a
    dd = float(d.pow(2).sum())
    if dd == 0:
        return torch.allclose(p, a, atol=atol)
    t = float(((p - a) * d).sum()) / dd
    return -1e-6 <= t <= 1 + 1e-6 and torch.allclose(a + t * d, p, atol=atol)


def _on_some_segment(p, pool_a, pool_b):
    return any(_on_segment(p, a, b) for a in pool_a for b in pool_b)


@pytest.mark.parametrize("strategy", SAMPLING_STRATEGIES)
def test_strategies_produce_points_in_the_right_sets(strategy):
    torch.manual_seed(2)
    n = 6
    real = torch.randn(n, 3)
    fake = torch.randn(n, 3) + 5.0
    x = sample_penalty_points(real, fake, strategy, generator=_gen(4))
    if strategy == "real":
        assert torch.equal(x, real)
    elif strategy == "fake":
        assert torch.equal(x, fake)
    elif strategy == "real+fake":
        assert torch.equal(x, torch.cat([real, fake]))
    elif strategy == "real-fake":
        assert x.shape[0] == n
        assert all(_on_segment(x[i], fake[i], real[i]) for i in range(n))
    elif strategy == "real-real+fake-fake":
        assert x.shape[0] == 2 * n
        assert all(_on_some_segment(p, real, real) for p in x[:n])
        assert all(_on_some_segment(p, fake, fake) for p in x[n:])
        # real-real interpolates stay in the real cluster (no mixing with fakes at +5)
        assert x[:n].mean() < 2.5 < x[n:].mean()
    elif strategy == "pooled-pairs":
        pool = torch.cat([real, fake])
        assert x.shape[0] == n
        assert all(_on_some_segment(p, pool, pool) for p in x)
    else:
        pytest.fail(f"strategy {strategy!r} has no check here: add what its points must satisfy")


@pytest.mark.parametrize("strategy", SAMPLING_STRATEGIES)
@pytest.mark.parametrize("shape", [(6, 2), (4, 1, 8, 8)])
def test_div_penalty_of_linear_critic_is_k_norm_to_the_p(strategy, shape):
    torch.manual_seed(3)
    w = torch.randn(shape[1:], dtype=torch.float64)
    f = Linear(w)
    real, fake = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    for k, p in [(2.0, 6.0), (10.0, 2.0), (0.5, 3.0)]:
        val = div_penalty(f, real, fake, k=k, p=p, strategy=strategy, generator=_gen())
        assert val.item() == pytest.approx(k * w.norm().item() ** p, rel=1e-9)


def test_penalties_are_even_in_f():
    torch.manual_seed(4)
    critic = MLPCritic(2, width=16, depth=2)

    class Neg(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = c

        def forward(self, x):
            return -self.c(x)

    real, fake = torch.randn(32, 2), torch.randn(32, 2) + 1
    for strategy in SAMPLING_STRATEGIES:
        a = gradient_penalty(critic, real, fake, generator=_gen(1), strategy=strategy)
        b = gradient_penalty(Neg(critic), real, fake, generator=_gen(1), strategy=strategy)
        assert a.item() == pytest.approx(b.item(), rel=1e-6)
        a = div_penalty(critic, real, fake, strategy=strategy, generator=_gen(2))
        b = div_penalty(Neg(critic), real, fake, strategy=strategy, generator=_gen(2))
        assert a.item() == pytest.approx(b.item(), rel=1e-6)


@pytest.mark.parametrize("penalty", ["gp", "lp", "div"])
def test_penalty_trains_the_critic(penalty):
    torch.manual_seed(5)
    critic = MLPCritic(2, width=16, depth=2)
    with torch.no_grad():  # make the gradient norm far from 1 so every penalty is active
        for p in critic.parameters():
            p.mul_(3.0)
    real, fake = torch.randn(16, 2), torch.randn(16, 2)

    def pen():
        if penalty == "div":
            return div_penalty(critic, real, fake, generator=_gen(0))
        return gradient_penalty(critic, real, fake, one_sided=(penalty == "lp"), generator=_gen(0))

    before = pen()
    assert before.item() > 0
    before.backward()
    weights = [p for name, p in critic.named_parameters() if name.endswith("weight")]
    assert all(w.grad is not None and float(w.grad.abs().sum()) > 0 for w in weights)
    grads = [p.grad for p in critic.parameters() if p.grad is not None]  # output bias: no effect
    total = sum(float(g.pow(2).sum()) for g in grads)
    assert total > 0
    with torch.no_grad():  # a small step against that gradient lowers the penalty
        for p in critic.parameters():
            if p.grad is not None:
                p -= 1e-3 / math.sqrt(total) * p.grad
    assert pen().item() < before.item()


def test_gp_is_safe_when_the_gradient_vanishes():
    critic = MLPCritic(2, width=8, depth=2)
    with torch.no_grad():
        for p in critic.parameters():
            p.zero_()
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    gp = gradient_penalty(critic, real, fake)
    gp.backward()
    assert gp.item() == pytest.approx(1.0, abs=1e-5)
    assert all(torch.isfinite(p.grad).all() for p in critic.parameters() if p.grad is not None)


@pytest.mark.parametrize("one_sided", [False, True])
def test_gp_gradcheck_and_gradgradcheck_double_precision(one_sided):
    from torch.func import functional_call

    torch.manual_seed(6)
    critic = MLPCritic(2, width=4, depth=1, activation="tanh").double()
    real, fake = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    names = [n for n, _ in critic.named_parameters()]
    params = tuple(p.detach().clone().mul(2.0).requires_grad_(True) for p in critic.parameters())

    def fn(*ps):
        def f(x):
            return functional_call(critic, dict(zip(names, ps)), (x,))

        return gradient_penalty(f, real, fake, one_sided=one_sided, generator=_gen())

    assert torch.autograd.gradcheck(fn, params)
    assert torch.autograd.gradgradcheck(fn, params)


def test_clip_weights_bounds_every_parameter():
    torch.manual_seed(0)
    critic = make_critic("digits", norm="batch")
    with torch.no_grad():
        for p in critic.parameters():
            p.normal_(0, 1)
    clip_weights_(critic, 0.01)
    for p in critic.parameters():
        assert float(p.detach().abs().max()) <= 0.01
    assert any(float(p.detach().abs().max()) == pytest.approx(0.01) for p in critic.parameters())
    with pytest.raises(ValueError, match="c must be > 0"):
        clip_weights_(critic, 0.0)


def test_input_gradient_norms_and_empirical_lipschitz_of_linear():
    w = torch.tensor([3.0, 4.0], dtype=torch.float64)
    f = Linear(w, b=1.0)
    x = torch.randn(10, 2, dtype=torch.float64)
    norms = input_gradient_norms(f, x)
    assert norms.shape == (10,)
    assert torch.allclose(norms, torch.full((10,), 5.0, dtype=torch.float64))
    with torch.no_grad():  # works under no_grad as well
        assert torch.allclose(input_gradient_norms(f, x), norms)
    y = x + w / 5  # every pair (x_i, y_i) moves along w: slope exactly ||w|| = 5
    assert empirical_lipschitz(f, x, y) == pytest.approx(5.0, rel=1e-9)
    assert empirical_lipschitz(f, x) <= 5.0 + 1e-9
    assert empirical_lipschitz(f, x[:1], x[:1]) == 0.0  # only a zero-distance pair


def test_empirical_lipschitz_of_abs_is_one():
    class Abs(nn.Module):
        def forward(self, x):
            return x.reshape(x.shape[0], -1).norm(dim=1)

    x = torch.randn(20, 3, dtype=torch.float64)
    assert empirical_lipschitz(Abs(), x, torch.zeros(1, 3, dtype=torch.float64)) == pytest.approx(1.0)


def test_layer_gradient_norms_linear_chain_hand_value():
    # critic 2 -> ReLU -> 1 with positive pre-activations: d loss / d h = w_out * (1/n) for fakes and
    # -w_out * (1/n) for reals, so the Frobenius norm over the 2n rows is ||w_out|| * sqrt(2n) / n.
    critic = MLPCritic(2, width=3, depth=1)
    with torch.no_grad():
        critic.net.net[0].weight.fill_(0.0)
        critic.net.net[0].bias.fill_(1.0)
        critic.net.net[2].weight.copy_(torch.tensor([[1.0, 2.0, 2.0]]))
    n = 4
    norms = layer_gradient_norms(critic, torch.randn(n, 2), torch.randn(n, 2))
    assert len(norms) == 1
    assert norms[0] == pytest.approx(3.0 * math.sqrt(2 * n) / n, rel=1e-6)


def test_layer_gradient_norms_order_and_length():
    torch.manual_seed(0)
    critic = make_critic("swissroll", width=32, depth=12)
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    norms = layer_gradient_norms(critic, real, fake)
    assert len(norms) == 12
    assert all(v > 0 and math.isfinite(v) for v in norms)
    # heavy clipping shrinks the weights: the gradient decays from the output towards the input
    clip_weights_(critic, 0.001)
    norms = layer_gradient_norms(critic, real, fake)
    assert norms[0] < norms[-1] * 1e-3  # element 0 = first hidden layer (input side)


def test_spectral_norms_of_plain_layers():
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[2.0, 0, 0], [0, 1.0, 0]]))
    conv = nn.Conv2d(1, 2, 2)
    net = nn.Sequential(lin)
    assert spectral_norms(net) == [pytest.approx(2.0)]
    s = spectral_norms(conv)
    assert s[0] == pytest.approx(float(torch.linalg.matrix_norm(conv.weight.detach().reshape(2, -1), 2)))


@pytest.mark.parametrize("data", ["8gaussians", "digits"])
def test_spectrally_normalised_critic_has_unit_norms(data):
    torch.manual_seed(0)
    critic = make_critic(data, width=16, spectral=True)
    shape = (8, 2) if data == "8gaussians" else (8, 1, 8, 8)
    critic.train()
    for _ in range(5):  # a few power iterations
        critic(torch.randn(shape))
    norms = spectral_norms(critic)
    assert len(norms) == sum(1 for m in critic.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    assert all(abs(s - 1) < 1e-2 for s in norms)
    # reading the norms does not change the module (no power iteration, training flag restored)
    assert critic.training
    assert spectral_norms(critic) == norms


def test_bad_arguments_raise():
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    f = MLPCritic(2, width=4, depth=1)
    with pytest.raises(ValueError, match="strategy must be one of"):
        sample_penalty_points(real, fake, "mixed")
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(f, real, torch.randn(5, 2))
    with pytest.raises(ValueError, match="k must be"):
        div_penalty(f, real, fake, k=-1.0)
    with pytest.raises(ValueError, match="p must be"):
        div_penalty(f, real, fake, p=0.0)
    with pytest.raises(ValueError, match="center"):
        gradient_penalty(f, real, fake, center=-1.0)


def test_share_at_bound_counts_weights_at_plus_minus_c():
    from wganbook.lipschitz import share_at_bound

    lin = nn.Linear(2, 2)  # 4 weights, 2 biases
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.01, -0.01], [0.00995, 0.005]]))
        lin.bias.copy_(torch.tensor([0.01, 0.01]))
    assert share_at_bound(lin, 0.01) == pytest.approx(3 / 4)  # |w| >= 0.99 c
    assert share_at_bound(lin, 0.01, rtol=0.0) == pytest.approx(2 / 4)
    assert share_at_bound(lin, 0.01, weights_only=False) == pytest.approx(5 / 6)
    assert share_at_bound(nn.ReLU(), 0.01) == 0.0
    with pytest.raises(ValueError):
        share_at_bound(lin, 0.0)
    with pytest.raises(ValueError):
        share_at_bound(lin, 0.01, rtol=1.0)


def test_stable_rank_of_known_spectra():
    from wganbook.lipschitz import singular_values, stable_rank

    # diag(3, 4): singular values 4 and 3, stable rank (9 + 16) / 16, from the values in any
    # order and from the matrix itself
    assert stable_rank(torch.tensor([4.0, 3.0])) == pytest.approx(25 / 16)
    assert stable_rank([3.0, 4.0]) == pytest.approx(25 / 16)
    assert stable_rank(torch.diag(torch.tensor([3.0, 4.0]))) == pytest.approx(25 / 16)
    # rank one: 1; an orthogonal n x n matrix (n equal singular values): n
    assert stable_rank(torch.outer(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, -1.0]))) == pytest.approx(1.0)
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    assert stable_rank(q) == pytest.approx(6.0)
    # = ||W||_F^2 / ||W||_2^2, and agrees with singular_values of an nn.Linear holding W
    w = torch.randn(5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    frob_over_spec = float((w**2).sum() / torch.linalg.matrix_norm(w, ord=2) ** 2)
    assert stable_rank(w) == pytest.approx(frob_over_spec, rel=1e-12)
    lin = nn.Linear(7, 5)
    with torch.no_grad():
        lin.weight.copy_(w)
    assert stable_rank(singular_values(lin)[0]) == pytest.approx(frob_over_spec, rel=1e-6)


def test_stable_rank_rejects_bad_input():
    from wganbook.lipschitz import stable_rank

    for bad in (
        torch.zeros(3),
        torch.zeros(2, 2),
        torch.tensor([]),
        torch.ones(2, 2, 2),
        torch.tensor([1.0, -1.0]),
        torch.tensor([1.0, float("nan")]),
    ):
        with pytest.raises(ValueError):
            stable_rank(bad)

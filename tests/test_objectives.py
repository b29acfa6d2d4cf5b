"""Tests of wganbook.objectives: signs, closed forms, the c-transform bound, hyper-parameter checks."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from wganbook.lipschitz import SAMPLING_STRATEGIES
from wganbook.models import make_critic, make_generator
from wganbook.objectives import (
    GAN_PENALTIES,
    HPARAM_KEYS,
    METHODS,
    Method,
    after_critic_step,
    batch_c_transform,
    check_critic_for_method,
    critic_loss,
    generator_loss,
    get_method,
    make_optimizers,
    resolve_hparams,
)

WGANS = ["wgan-clip", "wgan-gp", "wgan-lp", "wgan-div", "wgan-sn"]


class Linear(nn.Module):
    def __init__(self, w, b=0.0, dtype=torch.float64):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(w, dtype=dtype).clone().reshape(-1))
        self.b = nn.Parameter(torch.tensor(float(b), dtype=dtype))

    def forward(self, x):
        return x.reshape(x.shape[0], -1) @ self.w + self.b


class Const(nn.Module):
    def __init__(self, value=0.0):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(float(value)))

    def forward(self, x):
        return self.c.expand(x.shape[0]) + 0 * x.reshape(x.shape[0], -1).sum(1)


def _exact_w1(x, y):
    try:
        from wganbook.transport import w1

        return float(w1(x, y))
    except (ImportError, AttributeError):
        import ot

        xa = x.detach().reshape(len(x), -1).double().numpy()
        ya = y.detach().reshape(len(y), -1).double().numpy()
        return float(ot.emd2(ot.unif(len(xa)), ot.unif(len(ya)), ot.dist(xa, ya, metric="euclidean")))


# ----------------------------------------------------------------------------- registry
def test_registry_has_every_method_with_all_keys():
    assert set(METHODS) >= {"wgan-clip", "wgan-gp", "wgan-lp", "wgan-div", "wgan-sn", "wgan-ct", "gan-ns", "gan-mm"}
    for name, m in METHODS.items():
        assert isinstance(m, Method) and m.name == name and m.description
        assert set(m.defaults) == set(HPARAM_KEYS)
        hp = resolve_hparams(name)
        assert all(isinstance(b, float) for b in hp["betas"])
        with pytest.raises(TypeError):
            m.defaults["lr"] = 1.0  # read-only
    gp = METHODS["wgan-gp"].defaults
    assert (gp["lr"], gp["betas"], gp["n_critic"], gp["lam"]) == (1e-4, (0.0, 0.9), 5, 10.0)
    clip = METHODS["wgan-clip"].defaults
    assert (clip["optimizer"], clip["lr"], clip["clip"], clip["n_critic"]) == ("rmsprop", 5e-5, 0.01, 5)
    div = METHODS["wgan-div"].defaults
    assert (div["k"], div["p"], div["strategy"]) == (2.0, 6.0, "real-fake")
    assert METHODS["wgan-sn"].defaults["spectral"] is True and METHODS["wgan-sn"].uses_spectral_norm
    assert METHODS["wgan-ct"].uses_c_transform and METHODS["wgan-clip"].uses_clipping
    assert [n for n, m in METHODS.items() if m.penalised] == ["wgan-gp", "wgan-lp", "wgan-div"]
    ns = METHODS["gan-ns"].defaults
    assert (ns["lr"], ns["betas"], ns["n_critic"]) == (2e-4, (0.5, 0.999), 1)


def test_get_method():
    assert get_method("wgan-gp") is METHODS["wgan-gp"]
    assert get_method(METHODS["wgan-gp"]) is METHODS["wgan-gp"]
    with pytest.raises(ValueError, match="method must be one of: .*'wgan-gp'"):
        get_method("wgan-x")


# ----------------------------------------------------------------------------- signs
@pytest.mark.parametrize("method", WGANS + ["wgan-ct", "gan-ns"])
def test_critic_step_increases_w1_estimate_and_generator_step_moves_fakes_to_data(method):
    # 1-D data: real at +2, fake at -2, linear critic f(x) = w x
    real = torch.full((8, 1), 2.0, dtype=torch.float64)
    fake0 = torch.full((8, 1), -2.0, dtype=torch.float64)
    critic = Linear([0.1])
    hp = {"lr": 1e-2, "optimizer": "adam"} if method != "wgan-ct" else {"lr": 1e-2}
    loss, st = critic_loss(method, critic, real, fake0, **hp)
    loss.backward()
    with torch.no_grad():
        critic.w -= 0.05 * critic.w.grad
        critic.b -= 0.05 * critic.b.grad
    _, st2 = critic_loss(method, critic, real, fake0, **hp)
    if method != "wgan-ct":  # ct's w1 estimate does not depend on w at a single real point
        assert st2["w1_estimate"] > st["w1_estimate"]
    assert critic.w.item() > 0.1 or method == "wgan-ct"  # the critic scores real (right) high
    # generator step: fake = theta, gradient descent on the generator loss moves theta right
    theta = torch.tensor(-2.0, dtype=torch.float64, requires_grad=True)
    fake = theta * torch.ones(8, 1, dtype=torch.float64)
    generator_loss(method, Linear([1.0]), real, fake).backward()
    assert theta.grad.item() < 0


def test_trained_critic_scores_real_high_and_generator_loss_decreases_towards_real():
    torch.manual_seed(0)
    real = torch.randn(64, 2) * 0.1 + torch.tensor([2.0, 0.0])
    fake = torch.randn(64, 2) * 0.1 - torch.tensor([2.0, 0.0])
    critic = make_critic("8gaussians", width=32, depth=2)
    _, opt = make_optimizers("wgan-gp", nn.Linear(1, 1), critic, lr=1e-3)
    for _ in range(30):
        loss, _ = critic_loss("wgan-gp", critic, real, fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert critic(real).mean() > critic(fake).mean()
    # the generator loss decreases when every fake moves a little towards the real data
    step = torch.tensor([0.2, 0.0])
    losses = [generator_loss("wgan-gp", critic, real, fake + t * step).item() for t in (0.0, 1.0, 2.0)]
    assert losses[0] > losses[1] > losses[2]
    # ... which is what a gradient step on the fakes does
    y = fake.clone().requires_grad_(True)
    generator_loss("wgan-gp", critic, real, y).backward()
    assert float((-y.grad).sum(0)[0]) > 0


@pytest.mark.parametrize("method", WGANS)
def test_loss_identity_and_w1_estimate(method):
    torch.manual_seed(1)
    real, fake = torch.randn(16, 2), torch.randn(16, 2) + 1
    critic = make_critic("8gaussians", width=16, depth=2, spectral=(method == "wgan-sn"))
    loss, st = critic_loss(method, critic, real, fake, generator=torch.Generator().manual_seed(0))
    critic.eval()
    with torch.no_grad():
        w1 = critic(real).mean() - critic(fake).mean()
    assert set(st) >= {"w1_estimate", "penalty", "grad_norm"}
    assert all(v.dim() == 0 and not v.requires_grad for v in st.values())
    assert loss.item() == pytest.approx(-st["w1_estimate"].item() + st["penalty"].item(), rel=1e-5)
    if method != "wgan-sn":  # SN in train mode does a power iteration per forward
        assert st["w1_estimate"].item() == pytest.approx(w1.item(), rel=1e-5, abs=1e-6)
    if method in ("wgan-clip", "wgan-sn"):
        assert st["penalty"].item() == 0.0


def test_penalty_of_linear_critic_in_the_loss():
    w = torch.tensor([3.0, 4.0], dtype=torch.float64)  # ||w|| = 5
    real = torch.randn(10, 2, dtype=torch.float64)
    fake = torch.randn(10, 2, dtype=torch.float64)
    f = Linear(w)
    w1 = (f(real).mean() - f(fake).mean()).item()
    for method, pen in [("wgan-gp", 10 * 16.0), ("wgan-lp", 10 * 16.0), ("wgan-div", 2 * 5.0**6)]:
        loss, st = critic_loss(method, f, real, fake)
        assert st["penalty"].item() == pytest.approx(pen)
        assert loss.item() == pytest.approx(-w1 + pen)
        assert st["grad_norm"].item() == pytest.approx(5.0)
    for strategy in SAMPLING_STRATEGIES:
        _, st = critic_loss("wgan-div", f, real, fake, strategy=strategy, k=1.0, p=2.0)
        assert st["penalty"].item() == pytest.approx(25.0)
    _, st = critic_loss("wgan-lp", Linear(w / 10), real, fake)
    assert st["penalty"].item() == 0.0  # ||w|| = 0.5 < 1: one-sided penalty inactive


def test_clipping_after_critic_step_only_for_wgan_clip():
    critic = make_critic("8gaussians", width=8, depth=2)
    with torch.no_grad():
        for p in critic.parameters():
            p.fill_(1.0)
    after_critic_step("wgan-gp", critic)
    assert all(float(p.detach().min()) == 1.0 for p in critic.parameters())
    after_critic_step("wgan-clip", critic, clip=0.05)
    assert all(float(p.detach().abs().max()) == pytest.approx(0.05) for p in critic.parameters())
    after_critic_step("wgan-clip", critic)
    assert all(float(p.detach().abs().max()) == pytest.approx(0.01) for p in critic.parameters())


# ----------------------------------------------------------------------------- c-transform
def test_c_transform_matches_definition():
    torch.manual_seed(0)
    x, y = torch.randn(5, 3), torch.randn(7, 3)
    f = torch.randn(5)
    fc = batch_c_transform(f, x, y)
    ref = torch.stack(
        [min(float((x[i] - y[j]).norm()) - float(f[i]) for i in range(5)) for j in range(7)]
        and [torch.tensor(min(float((x[i] - y[j]).norm()) - float(f[i]) for i in range(5))) for j in range(7)]
    )
    assert torch.allclose(fc, ref, atol=1e-5)
    # high-dimensional path (matrix-product distances) agrees with the definition
    X, Y = torch.randn(6, 1, 8, 8), torch.randn(4, 1, 8, 8)
    g = torch.randn(6)
    fc = batch_c_transform(g, X, Y)
    ref = (torch.cdist(X.reshape(6, -1).double(), Y.reshape(4, -1).double()) - g.double()[:, None]).min(0).values
    assert torch.allclose(fc.double(), ref, atol=1e-4)


@pytest.mark.parametrize("shape", [(12, 2), (9, 1, 8, 8)])
def test_ct_dual_value_is_at_most_exact_w1(shape):
    torch.manual_seed(3)
    real, fake = torch.randn(shape), torch.randn(shape) + 0.5
    exact = _exact_w1(real, fake)
    for seed in range(3):
        torch.manual_seed(seed)
        critic = make_critic("8gaussians" if len(shape) == 2 else "digits", width=8)
        _, st = critic_loss("wgan-ct", critic, real, fake)
        assert st["w1_estimate"].item() <= exact + 1e-4
    # and the zero potential gives the mean nearest-real-neighbour distance
    _, st = critic_loss("wgan-ct", Const(0.0), real, fake)
    nn_dist = torch.cdist(fake.reshape(len(fake), -1), real.reshape(len(real), -1)).min(1).values.mean()
    assert st["w1_estimate"].item() == pytest.approx(nn_dist.item(), rel=1e-4)


def test_ct_training_approaches_exact_w1():
    torch.manual_seed(0)
    real, fake = torch.randn(16, 2), torch.randn(16, 2) + torch.tensor([2.0, 0.0])
    exact = _exact_w1(real, fake)
    critic = make_critic("8gaussians", width=32, depth=2)
    _, opt = make_optimizers("wgan-ct", nn.Linear(1, 1), critic, lr=1e-2, optimizer="adam")
    first = None
    for _ in range(150):
        loss, st = critic_loss("wgan-ct", critic, real, fake)
        first = st["w1_estimate"].item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, st = critic_loss("wgan-ct", critic, real, fake)
    assert first < st["w1_estimate"].item() <= exact + 1e-4
    assert st["w1_estimate"].item() > 0.9 * exact


def test_ct_generator_gradient_flows_through_the_cost():
    real = torch.tensor([[1.0, 0.0]])
    fake = torch.tensor([[-1.0, 0.0]], requires_grad=True)
    loss = generator_loss("wgan-ct", Const(0.3), real, fake)
    assert loss.item() == pytest.approx(2.0)  # f(x) + (|x - y| - f(x))
    loss.backward()
    assert torch.allclose(fake.grad, torch.tensor([[-1.0, 0.0]]))  # descent moves y towards x
    with pytest.raises(ValueError, match="real"):
        generator_loss("wgan-ct", Const(), None, fake)


# ----------------------------------------------------------------------------- GAN baselines
def test_gan_losses_hand_values_for_constant_critic():
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    loss, st = critic_loss("gan-ns", Const(0.0), real, fake)
    assert loss.item() == pytest.approx(2 * math.log(2))
    assert st["js_estimate"].item() == pytest.approx(0.0, abs=1e-7)
    assert generator_loss("gan-ns", Const(0.0), real, fake).item() == pytest.approx(math.log(2))
    assert generator_loss("gan-mm", Const(0.0), real, fake).item() == pytest.approx(-math.log(2))
    c = 1.7  # f = c: D = sigmoid(c)
    d = 1 / (1 + math.exp(-c))
    loss, _ = critic_loss("gan-ns", Const(c), real, fake)
    assert loss.item() == pytest.approx(-math.log(d) - math.log(1 - d), rel=1e-6)
    assert generator_loss("gan-ns", Const(c), real, fake).item() == pytest.approx(-math.log(d), rel=1e-6)
    assert generator_loss("gan-mm", Const(c), real, fake).item() == pytest.approx(math.log(1 - d), rel=1e-6)


def test_gan_penalties():
    w = torch.tensor([3.0, 4.0], dtype=torch.float64)
    real, fake = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    _, st = critic_loss("gan-ns", Linear(w), real, fake, penalty="gp", lam=2.0)
    assert st["penalty"].item() == pytest.approx(2.0 * 16.0)
    _, st = critic_loss("gan-ns", Linear(w), real, fake, penalty="r1", lam=2.0)
    assert st["penalty"].item() == pytest.approx(0.5 * 2.0 * 25.0)
    _, st = critic_loss("gan-ns", Linear(w), real, fake)
    assert st["penalty"].item() == 0.0
    assert GAN_PENALTIES == ("none", "gp", "r1")


def test_saturation_of_minimax_generator_loss():
    # when D confidently rejects the fakes (f very negative) the minimax loss has a vanishing
    # gradient while the non-saturating loss does not
    real = torch.zeros(4, 1)
    grads = {}
    for method in ("gan-mm", "gan-ns"):
        theta = torch.tensor(-8.0, requires_grad=True)
        fake = theta * torch.ones(4, 1)
        generator_loss(method, Linear([1.0], dtype=torch.float32), real, fake).backward()
        grads[method] = abs(theta.grad.item())
    assert grads["gan-mm"] < 1e-3 < 0.9 < grads["gan-ns"]


# ----------------------------------------------------------------------------- checks
@pytest.mark.parametrize(
    "method, hp",
    [("wgan-gp", {}), ("wgan-lp", {}), ("wgan-div", {}), ("gan-ns", {"penalty": "gp"}), ("gan-ns", {"penalty": "r1"})],
)
def test_batchnorm_critic_refused_for_penalised_methods(method, hp):
    bn = make_critic("digits", width=4, norm="batch")
    with pytest.raises(ValueError, match="BatchNorm"):
        check_critic_for_method(method, bn, **hp)
    with pytest.raises(ValueError, match="BatchNorm"):
        critic_loss(method, bn, torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8), **hp)
    check_critic_for_method(method, make_critic("digits", width=4, norm="layer"), **hp)


def test_batchnorm_critic_allowed_for_clipping():
    bn = make_critic("digits", width=4, norm="batch")
    check_critic_for_method("wgan-clip", bn)
    loss, _ = critic_loss("wgan-clip", bn, torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8))
    assert torch.isfinite(loss)


def test_make_optimizers():
    g, c = make_generator("8gaussians", width=8), make_critic("8gaussians", width=8)
    og, oc = make_optimizers("wgan-gp", g, c)
    assert isinstance(og, torch.optim.Adam) and isinstance(oc, torch.optim.Adam)
    assert oc.param_groups[0]["lr"] == 1e-4 and oc.param_groups[0]["betas"] == (0.0, 0.9)
    og, oc = make_optimizers("wgan-clip", g, c)
    assert isinstance(oc, torch.optim.RMSprop) and oc.param_groups[0]["lr"] == 5e-5
    og, oc = make_optimizers("wgan-gp", g, c, lr=1e-3, lr_g=2e-3, betas=(0.5, 0.9))
    assert og.param_groups[0]["lr"] == 2e-3 and oc.param_groups[0]["lr"] == 1e-3
    assert og.param_groups[0]["betas"] == (0.5, 0.9)


@pytest.mark.parametrize(
    "method, overrides, exc, match",
    [
        ("wgan-gp", {"lr": -1e-4}, ValueError, "lr must be > 0"),
        ("wgan-gp", {"lr": 0.0}, ValueError, "lr must be > 0"),
        ("wgan-gp", {"lam": -1.0}, ValueError, "lam must be >= 0"),
        ("wgan-div", {"k": -2.0}, ValueError, "k must be >= 0"),
        ("wgan-div", {"p": 0.0}, ValueError, "p must be > 0"),
        ("wgan-gp", {"n_critic": 0}, ValueError, "n_critic must be an int >= 1"),
        ("wgan-gp", {"n_critic": 2.5}, TypeError, "n_critic"),
        ("wgan-gp", {"betas": (0, 0.9)}, TypeError, r"betas must be a pair of floats"),
        ("wgan-gp", {"betas": (0.0, 1.0)}, ValueError, r"betas must be a pair of floats in \[0, 1\)"),
        ("wgan-gp", {"betas": (0.5,)}, TypeError, "betas"),
        ("wgan-gp", {"strategy": "mixed"}, ValueError, "strategy must be one of: 'real-fake'"),
        ("wgan-clip", {"clip": 0.0}, ValueError, "clip must be > 0"),
        ("wgan-clip", {"clip": -0.01}, ValueError, "clip must be > 0"),
        ("wgan-gp", {"optimizer": "sgd"}, ValueError, "optimizer must be one of: 'adam', 'rmsprop'"),
        ("wgan-gp", {"learning_rate": 1e-3}, ValueError, "unknown hyper-parameter 'learning_rate'"),
        ("wgan-clip", {"lam": 10.0}, ValueError, "'lam' is not used by method 'wgan-clip'"),
        ("wgan-gp", {"penalty": "div"}, ValueError, "penalty must be one of: 'gp'"),
        ("gan-ns", {"penalty": "wgan"}, ValueError, "penalty must be one of: 'none', 'gp', 'r1'"),
        ("wgan-gp", {"spectral": 1}, TypeError, "spectral must be a bool"),
        ("wgan-gp", {"lr": "fast"}, TypeError, "lr must be a float"),
    ],
)
def test_invalid_hyperparameters_raise_naming_the_parameter(method, overrides, exc, match):
    with pytest.raises(exc, match=match):
        resolve_hparams(method, **overrides)


def test_resolve_hparams_merges_and_none_keeps_default():
    hp = resolve_hparams("wgan-gp", lam=0.1, betas=(0.5, 0.9), clip=None, n_critic=np.int64(3))
    assert hp["lam"] == 0.1 and hp["betas"] == (0.5, 0.9) and hp["clip"] is None
    assert hp["n_critic"] == 3 and type(hp["n_critic"]) is int
    assert resolve_hparams("wgan-div", strategy="real+fake", k=1.0)["strategy"] == "real+fake"
    assert resolve_hparams("wgan-gp", spectral=True)["spectral"] is True


def test_batch_c_transform_agrees_with_transport():
    from wganbook import duality

    torch.manual_seed(0)
    for shape_x, shape_y in [((7, 2), (5, 2)), ((6, 1, 8, 8), (4, 1, 8, 8))]:
        x, y, f = torch.randn(shape_x), torch.randn(shape_y), torch.randn(shape_x[0])
        assert torch.allclose(batch_c_transform(f, x, y), duality.c_transform(f, x, y), atol=1e-4)


def test_critic_loss_works_under_no_grad_and_returns_detached_stats():
    torch.manual_seed(0)
    critic = make_critic("8gaussians", width=8, depth=2)
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    with torch.no_grad():
        for method in METHODS:
            _, st = critic_loss(method, critic, real, fake)
            assert all(torch.isfinite(v) and not v.requires_grad for v in st.values())


def test_track_grad_norm_switch():
    critic = make_critic("8gaussians", width=8, depth=2)
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    loss_a, st = critic_loss("wgan-clip", critic, real, fake, track_grad_norm=False)
    assert "grad_norm" not in st
    loss_b, st = critic_loss("wgan-clip", critic, real, fake)
    assert st["grad_norm"].item() > 0 and loss_a.item() == loss_b.item()
    _, st = critic_loss("wgan-gp", critic, real, fake, track_grad_norm=False)
    assert "grad_norm" in st  # free for penalised methods
    w = torch.tensor([3.0, 4.0], dtype=torch.float64)
    _, st = critic_loss("wgan-sn", Linear(w), real.double(), fake.double())
    assert st["grad_norm"].item() == pytest.approx(5.0)
    with pytest.raises(TypeError, match="track_grad_norm"):
        critic_loss("wgan-clip", critic, real, fake, track_grad_norm="no")

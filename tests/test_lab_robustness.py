"""Tests of chapter 7's robustness grid (wganbook.lab.robustness): every member of the batched ensemble
makes exactly the update of its own method, written with plain torch modules (nn.Linear,
torch.optim.Adam, torch's spectral_norm) and the losses of wganbook.objectives; and the failure
rates and effects are the hand-computed ones."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from wganbook import data
from wganbook.lab import robustness as R


def _mlp(layers, spectral=False):
    """nn.Sequential ReLU MLP with the ensemble's per-member weights (in, out) -> nn.Linear (out, in)."""
    mods = []
    for i, (w, b) in enumerate(layers):
        lin = nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(w.T)
            lin.bias.copy_(b.flatten())
        mods.append(spectral_norm(lin) if spectral else lin)
        if i < len(layers) - 1:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def _reference(member, seed, dataset="8gaussians", batch_size=16, width=8, depth=2):
    """One generator step of one member, with torch modules, consuming the seed's draws in the same
    order as ``train_grid`` (init of G, init of D, u/v of each critic layer, then per critic iteration
    real, z, t; then z)."""
    g = torch.Generator().manual_seed(seed)
    z_dim, x_dim = (16, 64) if dataset == "digits" else (2, 2)
    G = _mlp(R._init_layers([z_dim] + [width] * depth + [x_dim], g))
    if dataset == "digits":  # images in [-1, 1]: a tanh on the generator's output
        G = nn.Sequential(*G, nn.Tanh())
        pool = data.load_images("digits")[0].flatten(1).to(torch.get_default_dtype())
    Dl = R._init_layers([x_dim] + [width] * depth + [1], g)
    sn = member.constraint == "sn"
    D = _mlp(Dl, spectral=sn)
    uv = [
        (
            F.normalize(torch.randn(w.shape[1], generator=g), dim=0),
            F.normalize(torch.randn(w.shape[0], generator=g), dim=0),
        )
        for w, _ in Dl
    ]
    if sn:  # torch's parametrisation: u (out,), v (in,), 15 power iterations at registration
        for lin, (u, v) in zip([m for m in D if not isinstance(m, nn.ReLU)], uv):
            par = lin.parametrizations.weight[0]
            with torch.no_grad():
                par._u.copy_(u)
                par._v.copy_(v)
                W = lin.parametrizations.weight.original
                for _ in range(15):
                    par._u.copy_(F.normalize(W @ par._v, dim=0, eps=1e-12))
                    par._v.copy_(F.normalize(W.T @ par._u, dim=0, eps=1e-12))
    s = R.SETTINGS[member.setting]
    od = torch.optim.Adam(D.parameters(), lr=s["lr"], betas=s["betas"], eps=1e-8)
    og = torch.optim.Adam(G.parameters(), lr=s["lr"], betas=s["betas"], eps=1e-8)
    n_max = max(R.SETTINGS[k]["n_critic"] for k in R.SETTINGS)
    for i in range(n_max):
        if dataset == "digits":  # uniform draws, with replacement, from the 1 797 images
            real = pool[torch.randint(pool.shape[0], (batch_size,), generator=g)]
        else:
            real = data.sample_toy(dataset, batch_size, generator=g).to(torch.get_default_dtype())
        z = torch.randn(batch_size, z_dim, generator=g)
        t = torch.rand(batch_size, 1, generator=g)
        if i >= s["n_critic"]:
            continue
        fake = G(z).detach()
        f = D(torch.cat([real, fake])).squeeze(-1)  # one forward: one power iteration, as the ensemble
        f_real, f_fake = f[:batch_size], f[batch_size:]
        if member.loss == "ns":
            loss = F.softplus(-f_real).mean() + F.softplus(f_fake).mean()
        else:
            loss = f_fake.mean() - f_real.mean()
        if member.constraint == "gp":
            xh = (t * real + (1 - t) * fake).requires_grad_(True)
            (gx,) = torch.autograd.grad(D(xh).sum(), xh, create_graph=True)
            loss = loss + 10.0 * ((gx.norm(dim=1) - 1) ** 2).mean()
        od.zero_grad()
        loss.backward()
        od.step()
        if member.constraint == "clip":
            with torch.no_grad():
                for p in D.parameters():
                    p.clamp_(-0.01, 0.01)
    z = torch.randn(batch_size, z_dim, generator=g)
    f = D(G(z)).squeeze(-1)
    gl = F.softplus(-f).mean() if member.loss == "ns" else -f.mean()
    og.zero_grad()
    gl.backward()
    og.step()
    return G, D


def _linears(seq):
    return [m for m in seq if not isinstance(m, (nn.ReLU, nn.Tanh))]


@pytest.fixture
def float64():
    """Run in double precision, where the ensemble and the reference agree to rounding (in float32,
    Adam's normalisation of gradients near zero magnifies rounding differences to ~1e-6)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("dataset", ["8gaussians", "digits"])
def test_every_member_makes_exactly_the_update_of_its_own_method(float64, dataset):
    # two settings with different lr, betas and n_critic; two seeds; every method: 20 members in one loop
    grid = R.members(list(R.METHODS), ["C", "F"], [3, 8])
    res = R.train_grid(grid, dataset, steps=1, batch_size=16, width=8, depth=2, n_eval=64)
    assert not res["diverged"].any()
    for e, member in enumerate(grid):
        G, D = _reference(member, member.seed, dataset)
        for k, lin in enumerate(_linears(G)):
            torch.testing.assert_close(res["state"]["generator"][2 * k][e], lin.weight.T, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(
                res["state"]["generator"][2 * k + 1][e].flatten(), lin.bias, rtol=1e-10, atol=1e-12
            )
        for k, lin in enumerate(_linears(D)):
            w = lin.parametrizations.weight.original if member.constraint == "sn" else lin.weight
            torch.testing.assert_close(res["state"]["critic"][2 * k][e], w.T, rtol=1e-10, atol=1e-12)
        if member.constraint == "clip":
            assert max(float(p[e].abs().max()) for p in res["state"]["critic"]) <= 0.01 + 1e-7


def test_a_members_run_does_not_depend_on_the_rest_of_the_grid():
    # the same member alone and inside a grid of other methods, settings and seeds: the same weights (to the
    # rounding of a batched matrix product of another batch size)
    kw = dict(dataset="8gaussians", steps=2, batch_size=8, width=8, depth=2, n_eval=32)
    alone = R.train_grid(R.members(["GAN-NS + SN"], ["A"], [5]), **kw)
    grid = R.members(["GAN-NS", "GAN-NS + SN", "WGAN-GP"], ["C", "A"], [4, 5])
    inside = R.train_grid(grid, **kw)
    e = grid.index(R.Member("GAN-NS + SN", "A", 5))
    for key in ("generator", "critic"):
        for a, b in zip(alone["state"][key], inside["state"][key]):
            torch.testing.assert_close(a[0], b[e], rtol=1e-5, atol=1e-7)  # batched products round alike
    assert alone["modes"][0] == inside["modes"][e]


def _fake_result(modes, diverged, methods, settings, seeds, k=25):
    grid = R.members(methods, settings, seeds)
    return {
        "members": grid,
        "modes": np.array(modes),
        "high_quality": np.linspace(0, 1, len(grid)),
        "diverged": np.array(diverged),
        "total_modes": k,
    }


def test_failure_rates_count_diverged_runs_and_runs_below_half_the_modes():
    # 25 modes: a run fails below 13 modes; seeds vary fastest
    res = _fake_result([13, 12, 25, 0], [0, 0, 7, 0], ["GAN-NS"], ["A", "B"], [0, 1])
    assert R.failure_rates(res) == {("GAN-NS", "A"): 0.5, ("GAN-NS", "B"): 1.0}
    assert R.failure_rates(res, min_modes=12) == {("GAN-NS", "A"): 0.0, ("GAN-NS", "B"): 1.0}
    rows = R.outcome_table(res)
    assert rows[0] == {
        "method": "GAN-NS",
        "setting": "A",
        "failure": 0.5,
        "modes": 12.5,
        "high_quality": pytest.approx(1 / 6),
    }


def test_effects_are_differences_of_mean_failure_rates():
    methods = ["GAN-NS", "GAN-NS + SN", "WGAN, no constraint", "WGAN-GP"]
    # per method, settings A and B, one seed: failures GAN-NS 1,1; SN 0,1; WGAN none 1,1; GP 0,0
    modes = [0, 0, 25, 0, 0, 0, 25, 25]
    res = _fake_result(modes, [0] * 8, methods, ["A", "B"], [0])
    eff = R.loss_and_constraint_effects(res)
    assert eff["constraint_gan"] == pytest.approx(0.5) and eff["constraint_wgan"] == pytest.approx(1.0)
    assert eff["loss_constrained"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="must include the methods"):
        R.loss_and_constraint_effects(_fake_result([0, 0], [0, 0], ["GAN-NS"], ["A", "B"], [0]))


def test_bad_arguments_are_refused_before_any_work():
    with pytest.raises(ValueError, match="unknown methods"):
        R.members(["GAN"], ["A"], [0])
    with pytest.raises(ValueError, match="unknown settings"):
        R.members(["GAN-NS"], ["Z"], [0])
    with pytest.raises(ValueError, match="seeds must be non-negative"):
        R.members(["GAN-NS"], ["A"], [-1])
    with pytest.raises(ValueError, match="distinct"):
        R.members(["GAN-NS"], ["A", "A"], [0])
    grid = R.members(["GAN-NS"], ["A"], [0])
    with pytest.raises(ValueError, match="unknown dataset"):
        R.train_grid(grid, "swissroll")
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        R.train_grid(grid, steps=0)
    with pytest.raises(TypeError, match="Member"):
        R.train_grid([("GAN-NS", "A", 0)])


def test_settings_are_sngans_table_1():
    assert R.SETTINGS["A"] == {"lr": 1e-4, "betas": (0.5, 0.9), "n_critic": 5}
    assert R.SETTINGS["C"] == {"lr": 2e-4, "betas": (0.5, 0.999), "n_critic": 1}
    assert R.SETTINGS["F"] == {"lr": 1e-3, "betas": (0.9, 0.999), "n_critic": 5}


def test_train_by_seed_is_one_ensemble_per_seed_whatever_the_workers():
    kw = dict(dataset="8gaussians", steps=2, batch_size=8, width=8, depth=2, n_eval=32, eval_every=1)
    one = R.train_grid(R.members(["GAN-NS", "WGAN-clip"], ["A", "C"], [7]), **kw)
    for workers in (1, 2):
        res = R.train_by_seed(["GAN-NS", "WGAN-clip"], ["A", "C"], [6, 7], workers=workers, **kw)
        assert [m.seed for m in res["members"]] == [6] * 4 + [7] * 4
        for a, b in zip(one["state"]["critic"], res["state"]["critic"]):
            torch.testing.assert_close(a, b[4:], rtol=0, atol=0)
        assert res["curve"]["modes"].shape == (2, 8) and res["curve"]["steps"] == [1, 2]
    with pytest.raises(ValueError, match="unknown settings"):
        R.train_by_seed(["GAN-NS"], ["G"], [0], **kw)
    with pytest.raises(ValueError, match="batch_size must be an integer"):
        R.train_by_seed(["GAN-NS"], ["A"], [0], **{**kw, "batch_size": 0})


def test_chapter_7_presets_name_the_modules_methods_and_settings():
    from wganbook.bookkit import presets

    assert presets.ROBUSTNESS_METHODS == tuple(R.METHODS)
    assert presets.ROBUSTNESS_SETTINGS == tuple(R.SETTINGS)
    for name in ("quick", "full"):
        p = presets.get_preset("ch07", name)
        assert set(p["methods"]) <= set(R.METHODS) and set(p["settings"]) <= set(R.SETTINGS)
    with pytest.raises(ValueError, match="settings"):
        presets.validate("ch07", {"settings": ["A", "Z"]})
    with pytest.raises(ValueError, match="methods"):
        presets.validate("ch07", {"methods": ["wgan-gp"]})


def test_failure_curve_counts_modes_and_divergence_at_each_evaluation():
    res = _fake_result([8, 8, 8, 0], [0, 0, 0, 150], ["GAN-NS", "WGAN-GP"], ["A"], [0, 1], k=8)
    # evaluations at steps 100 and 200: modes (T, E); member 3 diverged at step 150
    res["curve"] = {"steps": [100, 200], "modes": np.array([[3, 8, 8, 8], [8, 8, 8, 0]])}
    curve = R.failure_curve(res)
    assert list(curve["steps"]) == [100, 200]
    assert list(curve["GAN-NS"]) == [0.5, 0.0]  # 3 < 4 modes at step 100
    assert list(curve["WGAN-GP"]) == [0.0, 0.5]  # diverged by step 200
    eff = R.loss_and_constraint_effects(
        _fake_result([0, 25, 0, 0], [0] * 4, ["GAN-NS", "GAN-NS + SN", "WGAN, no constraint", "WGAN-GP"], ["A"], [0])
    )
    # failures: GAN-NS 1, SN 0, WGAN none 1, GP 1: pooled (1 + 1)/2 - (0 + 1)/2 = 0.5
    assert eff["constraint_pooled"] == pytest.approx(0.5)


def test_every_method_has_a_short_key():
    assert set(R.METHOD_KEYS) == set(R.METHODS) and len(set(R.METHOD_KEYS.values())) == len(R.METHODS)


class _FixedLogits:
    """A stand-in classifier whose logits are given: class_coverage's counting, by hand."""

    device = torch.device("cpu")

    def __init__(self, logits):
        self.logits = torch.as_tensor(logits, dtype=torch.float32)
        self.model = lambda x: self.logits[: x.shape[0]]


def test_class_coverage_counts_confident_images_per_class_by_hand():
    # 20 images, 10 classes: a class is covered with ceil(0.2 * 20 / 10) = 1 confident image of it
    big, small = 10.0, 0.0  # softmax: e^10 / (e^10 + 9) = 0.9996 (confident); a flat row: 0.1 (not)
    logits = np.full((20, 10), small)
    for i in range(6):  # images 0-5: confidently classes 0, 0, 1, 2, 3, 3
        logits[i, [0, 0, 1, 2, 3, 3][i]] = big
    logits[6, 4] = 2.0  # class 4 at e^2 / (e^2 + 9) = 0.45: not confident
    cov = R.class_coverage(torch.zeros(20, 64), "digits", _FixedLogits(logits))
    assert cov["counts"] == [2, 1, 1, 2, 0, 0, 0, 0, 0, 0]
    assert cov["modes"] == 4 and cov["total_modes"] == 10
    assert cov["high_quality"] == pytest.approx(6 / 20)
    # 100 images: a class needs ceil(0.2 * 100 / 10) = 2 confident images, so a class seen once is not covered
    logits = np.zeros((100, 10))
    logits[:3, 0] = big
    logits[3, 1] = big
    cov = R.class_coverage(torch.zeros(100, 1, 8, 8), "digits", _FixedLogits(logits))
    assert cov["counts"][:2] == [3, 1] and cov["modes"] == 1


def test_real_digits_cover_every_class_confidently():
    # the positive control of the digits grid's failure rule: the data itself covers all ten classes
    images = data.load_images("digits")[0]
    cov = R.class_coverage(images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:1000]])
    assert cov["modes"] == 10 and cov["high_quality"] > 0.85


def test_class_coverage_refuses_bad_images_and_datasets():
    with pytest.raises(ValueError, match="images must have shape"):
        R.class_coverage(torch.zeros(5, 63), "digits", _FixedLogits(np.zeros((5, 10))))
    with pytest.raises(ValueError, match="unknown dataset"):
        R.class_coverage(torch.zeros(5, 64), "8gaussians")

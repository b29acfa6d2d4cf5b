"""Tests of the chapter-4 helpers: singular-value spectra, cross-sample Jacobians, static-critic
summaries, method variants and the held-out critic estimates of WGAN-GP Fig. 5b."""

import math

import pytest
import torch
from torch import nn

from wganbook import lipschitz, models
from wganbook.lab import critics


def _linear(w):
    lin = nn.Linear(len(w[0]), len(w), bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(w, dtype=torch.float32))
    return lin


def test_singular_values_of_known_matrices_and_agreement_with_spectral_norms():
    net = nn.Sequential(_linear([[3.0, 0.0, 0.0], [0.0, -2.0, 0.0]]), nn.ReLU(), _linear([[1.0, 1.0]]))
    sv = lipschitz.singular_values(net)
    assert len(sv) == 2
    assert torch.allclose(sv[0], torch.tensor([3.0, 2.0], dtype=torch.float64))
    assert torch.allclose(sv[1], torch.tensor([math.sqrt(2.0)], dtype=torch.float64))
    # descending, and the first one is the spectral norm of every layer
    critic = models.make_critic("8gaussians", width=16)
    for s, top in zip(lipschitz.singular_values(critic), lipschitz.spectral_norms(critic)):
        assert torch.all(s[:-1] >= s[1:]) and abs(float(s[0]) - top) < 1e-9


def test_singular_values_of_a_spectrally_normalised_critic_are_at_most_about_one():
    torch.manual_seed(0)
    critic = models.make_critic("8gaussians", width=16, spectral=True)
    critic.train()
    x = torch.randn(64, 2)
    for _ in range(30):  # power iterations converge
        critic(x)
    for s in lipschitz.singular_values(critic):
        assert abs(float(s[0]) - 1.0) < 1e-3
    assert critic.training  # mode restored


def test_singular_values_rejects_non_modules():
    with pytest.raises(TypeError, match="module must be"):
        lipschitz.singular_values([[1.0]])


def test_cross_sample_jacobian_per_sample_critic_is_diagonal_with_the_input_gradients():
    torch.manual_seed(0)
    critic = models.make_critic("8gaussians", width=16)
    x = torch.randn(6, 2)
    J = lipschitz.cross_sample_jacobian(critic, x)
    off = J[~torch.eye(6, dtype=torch.bool)]
    assert J.shape == (6, 6) and float(off.abs().max()) == 0.0
    assert torch.allclose(J.diagonal(), lipschitz.input_gradient_norms(critic, x), atol=1e-6)


class _Centered(nn.Module):
    """f(x_i) = sum_k (x_ik - mean_j x_jk): a batch-coupled 'critic' with a closed-form Jacobian."""

    def forward(self, x):
        return (x - x.mean(0, keepdim=True)).sum(1)


def test_cross_sample_jacobian_of_batch_centering_closed_form():
    n, d = 5, 3
    J = lipschitz.cross_sample_jacobian(_Centered(), torch.randn(n, d))
    # d f(x_i) / d x_j = (delta_ij - 1/n) * (1, ..., 1): norm sqrt(d) |delta_ij - 1/n|
    expect = math.sqrt(d) * (torch.eye(n) - 1.0 / n).abs()
    assert torch.allclose(J, expect.to(J.dtype), atol=1e-6)


def test_cross_sample_jacobian_batch_norm_couples_the_samples_and_mode_is_restored():
    torch.manual_seed(0)
    critic = models.make_critic("8gaussians", width=16, norm="batch")
    critic.eval()
    J = lipschitz.cross_sample_jacobian(critic, torch.randn(8, 2))
    assert float(J[~torch.eye(8, dtype=torch.bool)].max()) > 1e-3
    assert not critic.training


def _linear_fit(w, n=64):
    critic = nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([w]))
        critic.bias.zero_()
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g) + 1.0
    hist = {"step": [1, 2, 3, 4], "w1_estimate": [9.0, 1.0, 2.0, 3.0], "w1_exact": [0.0, 4.0, 4.0, 4.0]}
    return critics.StaticFit(
        label="lin", dataset="8gaussians", method="wgan-gp", critic=critic, history=hist, real=real, fake=fake
    )


def test_static_fit_summary_of_a_linear_critic():
    fit = _linear_fit([3.0, 4.0])
    s = critics.static_fit_summary(fit, last=3)
    assert s["estimate"] == pytest.approx(2.0) and s["exact batch W1"] == pytest.approx(4.0)
    # f(x) = w.x: gradient norm |w| = 5 everywhere; certified bound = sigma(w) = 5;
    # the largest slope over pairs is |w| |cos| <= 5, close to 5 for many directions
    assert s["median grad norm"] == pytest.approx(5.0, rel=1e-6)
    assert s["certified bound"] == pytest.approx(5.0, rel=1e-9)
    assert 4.5 < s["empirical Lipschitz"] <= 5.0 * (1 + 1e-6)  # float32 scores
    with pytest.raises(ValueError, match="last must be"):
        critics.static_fit_summary(fit, last=0)
    with pytest.raises(TypeError, match="StaticFit"):
        critics.static_fit_summary({"critic": None})


def test_method_variants_scale_the_published_learning_rates():
    from wganbook import objectives

    v = critics.method_variants(["wgan-clip", "wgan-gp", "wgan-sn"], lr_scale=2.0, lam=0.1)
    assert [e["name"] for e in v] == ["clipping", "GP", "SN"]
    for e in v:
        assert e["lr"] == pytest.approx(2.0 * objectives.get_method(e["method"]).defaults["lr"])
    assert v[1]["lam"] == 0.1 and "lam" not in v[0] and "lam" not in v[2]
    assert "lam" not in critics.method_variants(["wgan-gp"])[0]
    assert critics.method_variants(["wgan-gp"], labels={"wgan-gp": "WGAN-GP"})[0]["name"] == "WGAN-GP"
    with pytest.raises(ValueError, match="lr_scale"):
        critics.method_variants(["wgan-gp"], lr_scale=0)
    with pytest.raises(TypeError, match="methods"):
        critics.method_variants("wgan-gp")


def test_fit_static_critics_per_variant_steps():
    fits = critics.fit_static_critics(
        {"short": {"method": "wgan-gp", "steps": 3}, "long": {"method": "wgan-gp", "steps": 6}},
        ["8gaussians"],
        steps=4,
        batch_size=16,
        width=8,
        n_points=16,
        workers=1,
    )
    assert fits[("short", "8gaussians")].history["step"][-1] == 3
    assert fits[("long", "8gaussians")].history["step"][-1] == 6
    # the same seed: the short fit is the start of the long one (same first record)
    with pytest.raises(ValueError, match="steps must be"):
        critics.fit_static_critics({"bad": {"method": "wgan-gp", "steps": 0}}, ["8gaussians"], steps=4)


def test_critic_overfitting_records_both_estimates_and_they_agree_on_identical_sets():
    from wganbook import data, metrics

    x = data.sample_toy("8gaussians", 128, seed=0)
    cfg = dict(method="wgan-gp", data="8gaussians", steps=2, width=8, batch_size=32, seed=3, device="cpu", warmup=False)
    res = critics.critic_overfitting(cfg, x, x.clone(), eval_every=1, n_fake=50)
    h = res.history
    assert h["eval_step"] == [1, 2]
    assert h["estimate_train"] == pytest.approx(h["estimate_heldout"], abs=1e-6)
    # the last record is E f(train) - E f(fake) of the final critic and generator
    critic = res.critic.eval()
    fake = metrics.generate(res.generator, 50, seed=4)
    with torch.no_grad():
        expect = float(critic(x).mean()) - float(critic(fake).mean())
    assert h["estimate_train"][-1] == pytest.approx(expect, abs=1e-5)


def test_critic_overfitting_bad_input():
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="eval_every"):
        critics.critic_overfitting({"data": "8gaussians", "steps": 1}, x, x, eval_every=0)
    with pytest.raises(ValueError, match="must not set 'eval_fn'"):
        critics.critic_overfitting({"eval_fn": print}, x, x, eval_every=1)
    with pytest.raises(ValueError, match="same sample shape"):
        critics.critic_overfitting({"data": "8gaussians"}, x, torch.zeros(4, 3), eval_every=1)


def test_fit_static_critics_per_variant_datasets():
    fits = critics.fit_static_critics(
        {"all": {"method": "wgan-gp"}, "one": {"method": "wgan-sn", "datasets": ["swissroll"]}},
        ["8gaussians", "swissroll"],
        steps=2,
        batch_size=16,
        width=8,
        n_points=16,
        workers=1,
    )
    assert list(fits) == [("all", "8gaussians"), ("all", "swissroll"), ("one", "swissroll")]
    with pytest.raises(ValueError, match="unknown dataset 'moons'"):
        critics.fit_static_critics({"x": {"method": "wgan-gp", "datasets": "moons"}}, ["8gaussians"], steps=2)


def test_eval_curves_plots_each_record_and_the_reference():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wganbook.lab import plotting

    recs = [
        {"combo": {"variant": "GP"}, "seed": s, "history": {"eval_step": [10, 20], "high_quality": [0.1 * s, 0.5]}}
        for s in (1, 2)
    ]
    fig, ax = plt.subplots()
    plotting.eval_curves(ax, recs, "high_quality", reference=0.99, reference_label="real")
    lines = ax.get_lines()
    assert len(lines) == 3
    assert list(lines[1].get_ydata()) == [0.2, 0.5] and list(lines[2].get_ydata()) == [0.99, 0.99]
    assert [l.get_label() for l in lines] == ["GP, seed 1", "GP, seed 2", "real"]
    with pytest.raises(ValueError, match="no 'modes' evaluations"):
        plotting.eval_curves(ax, recs, "modes")
    plt.close(fig)

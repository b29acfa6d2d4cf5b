"""Tests of chapter 3's experiments (wganbook.lab.clipping): the clipping settings, the summary of a
static clipped critic, the loss-against-quality curves and the best response to a frozen critic."""

import copy
import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from wganbook import data, metrics
from wganbook.lab import clipping as C
from wganbook.lab.critics import StaticFit
from wganbook.train import TrainConfig, train


# ------------------------------------------------------------------ settings
def test_clip_settings_default_to_wgans_algorithm_1():
    assert C.clip_settings({"clip": None, "lr": None, "n_critic": None}) == {"clip": 0.01, "lr": 5e-5, "n_critic": 5}
    assert C.clip_settings({"clip": 0.1, "lr": 1e-4, "n_critic": 2}) == {"clip": 0.1, "lr": 1e-4, "n_critic": 2}


# ------------------------------------------------------------------ a static clipped critic
def test_clipped_critic_summary_of_a_linear_critic():
    # f(x) = a . x with |a| = 5, and real = fake shifted by 0.7 a/|a|: every real-fake slope is at
    # most |a| and the matched pairs reach it; the bound prod |W|_2 is |a|; the gradient a points
    # along every transport ray (the optimal plan of a shift is the shift)
    critic = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
    fake = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    real = fake + 0.7 * torch.tensor([0.6, 0.8])
    est = [float(v) for v in range(1, 11)]  # estimate 1..10, exact W1 2.5 throughout
    history = {"step": list(range(10, 110, 10)), "w1_estimate": est, "w1_exact": [2.5] * 10}
    fit = StaticFit("clipping", "8gaussians", "wgan-clip", critic, history, real, fake)
    s = C.clipped_critic_summary(fit)
    assert s["critic estimate"] == pytest.approx(8.0) and s["exact batch W1"] == pytest.approx(2.5)
    assert s["estimate / W1"] == pytest.approx(3.2)
    assert s["slope K^"] == pytest.approx(5.0, rel=1e-6)
    assert s["bound prod |W|_2"] == pytest.approx(5.0, rel=1e-6)
    assert s["estimate / (K^ W1)"] == pytest.approx(0.64, rel=1e-6)
    assert s["ray alignment"] == pytest.approx(1.0, abs=1e-6)
    # ratio r_k = k / 2.5; last two fifths (2 records each): (9 + 10) / 2 against (7 + 8) / 2
    assert s["plateau change"] == pytest.approx((9.5 - 7.5) / 9.5)
    assert set(C.STATIC_COLUMNS) <= set(s)
    with pytest.raises(ValueError, match="exact_w1"):
        C.clipped_critic_summary(dataclasses.replace(fit, history={"w1_estimate": est, "w1_exact": []}))


# ------------------------------------------------------------------ loss and quality
def test_trailing_mean_at_evals_hand_values():
    history = {"step": list(range(1, 11)), "eval_step": [1, 2, 3, 6, 10]}
    values = np.arange(1.0, 11.0)
    # window 3: (1), (1 + 2) / 2, (1 + 2 + 3) / 3, (4 + 5 + 6) / 3, (8 + 9 + 10) / 3
    np.testing.assert_allclose(C.trailing_mean_at_evals(history, values, 3), [1, 1.5, 2, 5, 9])
    np.testing.assert_allclose(C.trailing_mean_at_evals(history, values, 1), [1, 2, 3, 6, 10])
    with pytest.raises(ValueError, match="eval_step"):
        C.trailing_mean_at_evals({"step": [1, 2, 3], "eval_step": [4]}, [1.0, 2.0, 3.0], 2)
    with pytest.raises(ValueError, match="one value per"):
        C.trailing_mean_at_evals(history, values[:5], 3)


def test_loss_quality_curves_use_each_methods_own_loss():
    steps = list(range(1, 7))
    wgan = {
        "step": steps,
        "eval_step": [2, 4, 6],
        "w1_estimate": [2.0, 4.0, 6.0, 8.0, 10.0, 12.0],
        "critic_loss": [9.0] * 6,
        "w1_target": [3.0, 2.0, 1.0],
    }
    # a GAN discriminator at D = 1/2 has L_D = 2 log 2 (JS estimate 0); a perfect one L_D = 0 (log 2)
    gan = dict(wgan, critic_loss=[2 * math.log(2)] * 3 + [0.0] * 3)
    runs = [
        {"config": {"method": "wgan-clip"}, "seed": 0, "history": wgan},
        {"config": {"method": "gan-ns"}, "seed": 0, "history": gan},
    ]
    cw, cg = C.loss_quality_curves(runs, ["clipped WGAN", "GAN"], window=2)
    np.testing.assert_allclose(cw["loss"], [3.0, 7.0, 11.0])
    np.testing.assert_allclose(cg["loss"], [0.0, math.log(2) / 2, math.log(2)])
    np.testing.assert_allclose(cw["quality"], [3.0, 2.0, 1.0])
    assert cw["name"] == "clipped WGAN" and list(cg["steps"]) == [2, 4, 6]
    with pytest.raises(ValueError, match="labels"):
        C.loss_quality_curves(runs, ["GAN"], window=2)


# ------------------------------------------------------------------ best response
class Constant(nn.Module):
    """G(z) = b: a generator collapsed onto one point that it can move."""

    z_dim = 2

    def __init__(self, b):
        super().__init__()
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, z):
        return self.b.expand(z.shape[0], 2) + 0 * z


def test_best_response_to_a_linear_critic_moves_the_delta_at_adams_pace():
    # against f(x) = w . x the WGAN generator loss -w . b has the constant gradient -w: Adam moves
    # each coordinate by its learning rate (1e-3) per step, towards sign(w)
    w = torch.tensor([[2.0, -0.5]])
    critic = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(w)
    gen = Constant([0.1, 0.2])
    result = SimpleNamespace(generator=gen, critic=critic, config=SimpleNamespace(method="wgan-clip"))
    rows = C.best_response_experiment(
        [{"seed": 4, "result": result}], ["clipped WGAN"], steps=10, dataset="8gaussians", n=128, n_w1=128
    )
    (row,) = rows
    end = torch.tensor([0.1 + 10e-3, 0.2 - 10e-3])
    assert torch.allclose(row["samples"]["frozen critic"], end.expand(128, 2), atol=1e-6)
    assert torch.equal(row["samples"]["start"], torch.tensor([0.1, 0.2]).expand(128, 2))
    assert torch.equal(gen.b.detach(), torch.tensor([0.1, 0.2]))  # the run itself is untouched
    assert row["concentration"] == {"start": 1.0, "frozen critic": 1.0}
    # W1 from a delta at p to the target's points is their mean distance to p
    target = data.sample_toy("8gaussians", 128, seed=4 + 2)
    assert row["w1_to_target"]["frozen critic"] == pytest.approx(float((target - end).norm(dim=1).mean()), rel=1e-5)
    assert "critic retrained" not in row["samples"]
    with pytest.raises(ValueError, match="retrain"):
        C.best_response_experiment([{"seed": 0, "result": result}], ["GAN"], 1, "8gaussians", retrain=["WGAN"])
    with pytest.raises(ValueError, match="n_w1"):
        C.best_response_experiment([{"seed": 0, "result": result}], ["GAN"], 1, "8gaussians", n=64, n_w1=128)
    with pytest.raises(ValueError, match="keep_results"):
        C.best_response_experiment([{"seed": 0, "result": None}], ["GAN"], 1, "8gaussians")


def test_retrained_arm_continues_the_run_with_the_usual_algorithm():
    cfg = TrainConfig(
        method="wgan-clip", data="8gaussians", steps=3, width=16, depth=2, device="cpu", eval_every=0, seed=1
    )
    run = train(cfg)
    before = copy.deepcopy(run.generator.state_dict())
    (row,) = C.best_response_experiment(
        [{"seed": 1, "result": run}],
        ["clipped WGAN"],
        steps=2,
        dataset="8gaussians",
        retrain=["clipped WGAN"],
        n=32,
        n_w1=32,
    )
    # the same as continuing by hand: copies of both networks, seed s + 1000, the run's settings
    cont = train(
        dataclasses.replace(cfg, steps=2, seed=1001),
        generator=copy.deepcopy(run.generator),
        critic=copy.deepcopy(run.critic),
    )
    assert torch.equal(row["samples"]["critic retrained"], metrics.generate(cont.generator, 32, seed=2))
    assert not torch.equal(row["samples"]["critic retrained"], row["samples"]["start"])
    assert all(torch.equal(v, run.generator.state_dict()[k]) for k, v in before.items())


def test_best_response_summary_hand_values():
    pts = torch.tensor([[3.0, 4.0]] * 5)  # |x| = 5
    rows = [
        {
            "method": "clipped WGAN",
            "seed": 0,
            "samples": {"frozen critic": pts},
            "concentration": {"start": 0.2, "frozen critic": 0.9, "critic retrained": 0.2},
            "w1_to_target": {"start": 0.5, "frozen critic": 2.0, "critic retrained": 0.4},
        },
        {
            "method": "GAN",
            "seed": 0,
            "samples": {"frozen critic": 2 * pts},
            "concentration": {"start": 0.1, "frozen critic": 1.0},
            "w1_to_target": {"start": 0.25, "frozen critic": 1.0},
        },
    ]
    s = C.best_response_summary(rows)
    assert s["grow"] == {"clipped WGAN": {"clipped WGAN seed 0": 4.0}, "GAN": {"GAN seed 0": 4.0}}
    assert s["keep"] == {"clipped WGAN": {"seed 0": pytest.approx(0.8)}}
    assert s["concentration"] == [0.9, 1.0] and s["median_norm"] == [5.0, 10.0]
    assert s["table"][1]["critic retrained"] == "—" and s["table"][0]["critic retrained"] == 0.4


def test_rmsprop_best_response_to_a_linear_critic_hand_values():
    # against f(x) = w . x the gradient of -w . b is the constant -w; RMSProp (alpha 0.99, no bias
    # correction) keeps v_t = (1 - 0.99^t) w^2, so step t moves each coordinate by
    # lr / sqrt(1 - 0.99^t) towards sign(w): ten times Adam's pace at the first step
    w = torch.tensor([[2.0, -0.5]])
    critic = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(w)
    gen = Constant([0.1, 0.2])
    C.best_response_rmsprop("wgan-clip", critic, gen, steps=10, lr=1e-3, seed=3)
    dist = sum(1e-3 / math.sqrt(1 - 0.99**t) for t in range(1, 11))
    assert torch.allclose(gen.b.detach(), torch.tensor([0.1 + dist, 0.2 - dist]), atol=1e-6)
    assert dist > 0.01  # faster than Adam's 10 * lr
    assert torch.equal(critic.weight.detach(), w) and critic.weight.requires_grad
    with pytest.raises(ValueError, match="steps"):
        C.best_response_rmsprop("wgan-clip", critic, gen, steps=0)
    with pytest.raises(ValueError, match="lr"):
        C.best_response_rmsprop("wgan-clip", critic, gen, steps=1, lr=0.0)


def test_best_response_experiment_rmsprop_arm_and_summary():
    w = torch.tensor([[2.0, -0.5]])
    critic = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(w)
    result = SimpleNamespace(generator=Constant([0.1, 0.2]), critic=critic, config=SimpleNamespace(method="wgan-clip"))
    (row,) = C.best_response_experiment(
        [{"seed": 4, "result": result}],
        ["clipped WGAN"],
        steps=10,
        dataset="8gaussians",
        rmsprop=["clipped WGAN"],
        n=64,
        n_w1=64,
    )
    dist = sum(1e-3 / math.sqrt(1 - 0.99**t) for t in range(1, 11))
    end = torch.tensor([0.1 + dist, 0.2 - dist])
    assert torch.allclose(row["samples"]["frozen critic, RMSProp"], end.expand(64, 2), atol=1e-6)
    s = C.best_response_summary([row])
    ratio = row["w1_to_target"]["frozen critic, RMSProp"] / row["w1_to_target"]["start"]
    assert s["grow_rmsprop"] == {"clipped WGAN": {"clipped WGAN seed 4": ratio}}
    assert s["table"][0]["frozen critic, RMSProp"] == row["w1_to_target"]["frozen critic, RMSProp"]
    with pytest.raises(ValueError, match="rmsprop"):
        C.best_response_experiment([{"seed": 0, "result": result}], ["GAN"], 1, "8gaussians", rmsprop=["WGAN"])


# ------------------------------------------------------------------ RMSProp against Adam under clipping
def _tiny_clip_config(**kw):
    from wganbook import train as wtrain

    base = dict(
        method="wgan-clip",
        data="8gaussians",
        steps=12,
        clip=0.01,
        lr=5e-4,
        n_critic=2,
        width=16,
        batch_size=32,
        seed=0,
        device="cpu",
        w1_every=4,
        track_grad_norm=False,
    )
    base.update(kw)
    return wtrain.TrainConfig(**base)


def test_optimizer_comparison_arms_share_everything_but_the_optimiser():
    import dataclasses

    from wganbook import train as wtrain
    from wganbook.lab import clipping, sweeps

    cfg = _tiny_clip_config()
    comp = clipping.optimizer_comparison(cfg, [3], workers=1, n_eval=256)
    # the RMSProp arm of seed 3 is exactly the run of the same config with seed 3
    ref = wtrain.train(dataclasses.replace(cfg, seed=3))
    want = sweeps.final_metrics(ref, n=256)
    assert comp["RMSProp"][3]["final"]["w1_target"] == want["w1_target"]
    # the Adam arm is that config with Adam (0.5, 0.999): the same final metrics as a direct run
    ref_a = wtrain.train(dataclasses.replace(cfg, seed=3, optimizer="adam", betas=(0.5, 0.999)))
    assert comp["Adam"][3]["final"]["w1_target"] == sweeps.final_metrics(ref_a, n=256)["w1_target"]
    assert comp["Adam"][3]["final"]["w1_target"] != want["w1_target"]
    assert list(comp["RMSProp"][3]["w1_step"]) == [4, 8, 12]


def test_optimizer_summary_by_hand():
    from wganbook.lab import clipping

    def run(w1, curve, modes):
        return {"final": {"w1_target": w1, "modes": modes}, "w1_step": [1, 2, 3, 4], "w1_exact": curve}

    comp = {
        "A": {0: run(0.2, [4.0, 3.0, 2.0, 2.0], 8), 1: run(0.4, [4.0, 3.0, 2.0, 2.0], 6)},
        "B": {0: run(0.5, [4.0, 3.0, 3.0, 1.0], 2)},
    }
    s = clipping.optimizer_summary(comp)
    assert s["A"]["mean_w1"] == pytest.approx(0.3) and s["A"]["modes"] == [8, 6]
    # 4 parts of 1 record: |2 - 2| / 2 = 0 for A; |1 - 3| / 1 = 2 for B
    assert s["A"]["late_change"] == 0.0 and s["B"]["late_change"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no runs"):
        clipping.optimizer_summary({"A": {}})


def test_optimizer_comparison_refuses_bad_input_before_training():
    from wganbook.lab import clipping

    with pytest.raises(ValueError, match="method must be 'wgan-clip'"):
        clipping.optimizer_comparison(_tiny_clip_config(method="wgan-gp", clip=None), [0])
    with pytest.raises(ValueError, match="w1_every"):
        clipping.optimizer_comparison(_tiny_clip_config(w1_every=0), [0])
    with pytest.raises(ValueError, match="unknown override"):
        clipping.optimizer_comparison(_tiny_clip_config(), [0], arms={"SGD": {"momentum": 0.9}})
    with pytest.raises(ValueError, match="seeds"):
        clipping.optimizer_comparison(_tiny_clip_config(), [])
    with pytest.raises(TypeError, match="TrainConfig"):
        clipping.optimizer_comparison({"method": "wgan-clip"}, [0])

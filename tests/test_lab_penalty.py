"""Tests of chapter 4's experiment helpers (wganbook.lab.penalty) against hand-computed values."""

import math

import numpy as np
import pytest

from wganbook.lab import penalty


def test_penalty_settings_resolve_lambda_from_the_method():
    p = {"method": "wgan-gp", "dataset": "digits", "lam": None, "toy_lam": 0.1}
    # Algorithm 1's lambda = 10 when lam is None, for both penalties
    assert penalty.penalty_settings(p) == (10.0, 0.1, "gradient penalty")
    assert penalty.penalty_settings({**p, "method": "wgan-lp"}) == (10.0, 0.1, "one-sided penalty")
    assert penalty.penalty_settings({**p, "lam": 2.5, "toy_lam": 1}) == (2.5, 1.0, "gradient penalty")


def test_penalty_settings_name_the_parameter_and_the_allowed_values():
    p = {"method": "wgan-gp", "dataset": "digits", "lam": None, "toy_lam": 0.1}
    with pytest.raises(ValueError, match="method must be one of: wgan-gp, wgan-lp"):
        penalty.penalty_settings({**p, "method": "wgan-clip"})
    with pytest.raises(TypeError, match="params must be a mapping"):
        penalty.penalty_settings(["wgan-gp"])


def test_ratio_curve_is_the_running_mean_of_estimate_over_exact():
    h = {"step": [0, 10, 20, 30, 40], "w1_estimate": [1.0, 4.0, 9.0, 8.0, 10.0], "w1_exact": [1.0, 2.0, 3.0, 4.0, 5.0]}
    # ratios 1, 2, 3, 2, 2; running means of 3: (1+2+3)/3, (2+3+2)/3, (3+2+2)/3 at steps 20, 30, 40
    steps, ratio = penalty.ratio_curve(h, window=3)
    assert steps.tolist() == [20, 30, 40]
    assert ratio == pytest.approx([2.0, 7 / 3, 7 / 3])
    # a window longer than the history: one mean over all records, at the last step
    steps, ratio = penalty.ratio_curve(h, window=10)
    assert steps.tolist() == [40] and ratio == pytest.approx([2.0])
    # window 1: the plain ratios; an exact estimator gives 1 everywhere
    assert penalty.ratio_curve(h, window=1)[1] == pytest.approx([1, 2, 3, 2, 2])
    same = dict(h, w1_estimate=h["w1_exact"])
    assert penalty.ratio_curve(same)[1] == pytest.approx([1.0])


def test_ratio_curve_rejects_bad_histories():
    with pytest.raises(ValueError, match="window must be"):
        penalty.ratio_curve({"step": [0], "w1_estimate": [1.0], "w1_exact": [1.0]}, window=0)
    with pytest.raises(ValueError, match="exact_w1=True"):
        penalty.ratio_curve({"step": [0, 1], "w1_estimate": [1.0, 2.0]})


def test_estimate_at_takes_the_last_record_at_or_before_the_step():
    h = {"step": [100, 200, 300, 400], "w1_estimate": [-1.0, -0.5, 0.25, 0.75]}
    assert penalty.estimate_at(h, 250) == (-0.5, 200)
    assert penalty.estimate_at(h, 300) == (0.25, 300)
    assert penalty.estimate_at(h, 10_000) == (0.75, 400)
    assert penalty.estimate_at(h, 50) == (-1.0, 100)  # before every record: the first one
    assert penalty.estimate_at({"step": [0, 5], "grad_norm": [2.0, 3.0]}, 4, key="grad_norm") == (2.0, 0)
    with pytest.raises(TypeError, match="step must be an int"):
        penalty.estimate_at(h, 2.5)
    with pytest.raises(ValueError, match="as many"):
        penalty.estimate_at({"step": [0, 1], "w1_estimate": [1.0]}, 1)


def _run(hq, modes, grad_norm, last_hq, toy="8gaussians"):
    steps = [100 * (i + 1) for i in range(len(hq))]
    return {
        "combo": {"data": toy},
        "metrics": {"high_quality": last_hq},
        "history": {"eval_step": steps, "high_quality": hq, "modes": modes, "grad_norm": grad_norm},
    }


def test_toy_gan_summary_by_hand():
    # evaluations at steps 100..400; the second half is steps >= 200
    a = _run([0.1, 0.2, 0.6, 0.4], [5, 8, 8, 8], [9.0] * 10 + [1.0, 2.0, 3.0], 0.4)
    b = _run([0.0, 0.1, 0.3, 0.5], [2, 3, 7, 8], [4.0, 5.0], 0.5)
    s = penalty.toy_gan_summary([a, b], last=3)
    # medians of the last 3 grad norms: 2 and 4.5 -> median 3.25
    assert s["grad_norm"] == pytest.approx(3.25)
    assert s["high_quality_last"] == pytest.approx(0.45)
    # late means: (0.2 + 0.6 + 0.4) / 3 = 0.4 and (0.1 + 0.3 + 0.5) / 3 = 0.3
    assert s["high_quality_late"] == pytest.approx(0.35)
    # first run: late shares 0.2, 0.6, 0.4; all 8 modes first at step 200, share 0.2 there
    assert (s["late_min"], s["late_max"]) == pytest.approx((0.2, 0.6))
    assert s["modes_step"] == 200 and s["high_quality_at_modes"] == pytest.approx(0.2)


def test_toy_gan_summary_when_the_modes_are_never_all_covered():
    # the 25 Gaussians: 24 covered modes are not all of them
    s = penalty.toy_gan_summary([_run([0.1, 0.2], [20, 24], [1.0], 0.2, toy="25gaussians")])
    assert s["modes_step"] is None and math.isnan(s["high_quality_at_modes"])
    assert s["grad_norm"] == 1.0 and s["high_quality_late"] == pytest.approx(np.mean([0.1, 0.2]))
    with pytest.raises(ValueError, match="records must be"):
        penalty.toy_gan_summary([])
    with pytest.raises(ValueError, match="no discrete modes"):
        penalty.toy_gan_summary([_run([0.1], [1], [1.0], 0.1, toy="swissroll")])


def test_mode_shares_count_each_mode_by_hand():
    import torch

    from wganbook.metrics import mode_centres

    centres, std = mode_centres("8gaussians")
    c = torch.as_tensor(np.asarray(centres), dtype=torch.float32)
    # 3 points on mode 0, 1 on mode 5 (2 std off), 1 on mode 5 but 4 std off, 1 far away
    off = torch.tensor([2.0 * std, 0.0])
    pts = torch.stack([c[0], c[0], c[0], c[5] + off, c[5] + 2 * off, torch.tensor([0.0, 0.0])])
    s = penalty.mode_shares(pts, "8gaussians")
    expect = np.zeros(8)
    expect[0], expect[5] = 3 / 6, 1 / 6
    assert s == pytest.approx(expect)
    # the shares sum to the high-quality share; a wider threshold takes in the 4-std point
    assert penalty.mode_shares(pts, "8gaussians", std_threshold=5.0)[5] == pytest.approx(2 / 6)
    # a collapsed generator: every other mode gets 0
    assert penalty.mode_shares(c[[2, 2, 2]], "8gaussians").min() == 0.0
    with pytest.raises(ValueError, match="std_threshold"):
        penalty.mode_shares(pts, "8gaussians", std_threshold=0.0)


def test_bjorck_gives_the_polar_factor():
    import torch

    g = torch.Generator().manual_seed(3)
    for shape in ((6, 6), (7, 3), (2, 5)):
        w = torch.randn(*shape, generator=g, dtype=torch.float64)
        q = penalty.bjorck_orthonormalize(w, iters=60)
        u, _, vh = torch.linalg.svd(w, full_matrices=False)
        assert torch.allclose(q, u @ vh, atol=1e-8)  # the orthonormal polar factor U V^T
        small = min(shape)
        gram = q.T @ q if shape[0] >= shape[1] else q @ q.T
        assert torch.allclose(gram, torch.eye(small, dtype=torch.float64), atol=1e-8)
    # one step maps a singular value s to 1.5 s - 0.5 s^3: diag(0.5) -> 0.6875
    q1 = penalty.bjorck_orthonormalize(0.5 * torch.eye(3, dtype=torch.float64), iters=1, scale=1.0)
    assert torch.allclose(q1, 0.6875 * torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="iters"):
        penalty.bjorck_orthonormalize(w, iters=-1)


def test_maxmin_sorts_pairs_and_preserves_gradient_norms():
    import torch

    x = torch.tensor([[1.0, 3.0, -2.0, -5.0]])
    assert penalty.maxmin(x).tolist() == [[3.0, 1.0, -2.0, -5.0]]
    with pytest.raises(ValueError, match="even"):
        penalty.maxmin(torch.ones(1, 3))


def test_groupsort_critic_is_1_lipschitz_with_orthonormal_weights():
    import torch

    torch.manual_seed(0)
    f = penalty.GroupSortCritic(2, width=16, depth=3, iters=30)
    for layer in f.layers:
        w = layer.ortho_weight().detach().double()
        gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
        assert torch.allclose(gram, torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-5)
    x = torch.randn(400, 2, requires_grad=True)
    (g,) = torch.autograd.grad(f(x).sum(), x)
    assert g.norm(dim=1).max() <= 1 + 1e-4  # every gradient norm is at most 1
    xs = torch.randn(200, 2)
    d = (f(xs) - f(xs.flip(0))).abs().squeeze(1) / (xs - xs.flip(0)).norm(dim=1)
    assert d.max() <= 1 + 1e-4
    # a linear piece with slope exactly 1: one hidden layer whose output weight points along a
    # pair's max unit, input weights with orthonormal columns -> f(x) = e_1^T W x, |grad f| = 1
    lin = penalty.GroupSortCritic(2, width=2, depth=1, iters=30)
    with torch.no_grad():
        lin.layers[0].weight.copy_(torch.eye(2))
        lin.layers[1].weight.copy_(torch.tensor([[1.0, 0.0]]))
    x = torch.tensor([[2.0, -1.0], [0.5, 0.2]], requires_grad=True)  # x_1 > x_2: max is x_1
    (g,) = torch.autograd.grad(lin(x).sum(), x)
    assert torch.allclose(g, torch.tensor([[1.0, 0.0], [1.0, 0.0]]), atol=1e-5)

"""Tests of chapter 1's sample experiments on two parallel lines (wganbook.lab.distances) and of the
sorted-matching W1 of the lines (wganbook.transport.parallel_lines_sample_w1)."""

import math

import numpy as np
import pytest
import torch

from wganbook import data, likelihood, transport
from wganbook.lab import distances as D


# ------------------------------------------------------------------ parallel_lines_sample_w1
def test_sorted_w1_hand_values():
    # the same heights in another order: the sorted matching moves every point by |theta|
    assert transport.parallel_lines_sample_w1(0.3, [0.0, 0.5, 1.0], [1.0, 0.0, 0.5]) == pytest.approx(0.3, abs=1e-15)
    # heights (0, 1) against (0.4, 0.6): gaps -0.4 and 0.4, each sqrt(0.3^2 + 0.4^2) = 0.5
    assert transport.parallel_lines_sample_w1(-0.3, [1.0, 0.0], [0.6, 0.4]) == pytest.approx(0.5, abs=1e-15)
    # theta = 0: the 1-D W1 of the heights
    z, zp = np.random.default_rng(0).random((2, 50))
    assert transport.parallel_lines_sample_w1(0.0, z, zp) == pytest.approx(transport.w1_1d(z, zp), abs=1e-12)


def test_sorted_w1_is_the_exact_ot_optimum_and_1_lipschitz_in_theta():
    gen = torch.Generator().manual_seed(3)
    z, zp = torch.rand(200, generator=gen), torch.rand(200, generator=gen)
    values = []
    for th in (-0.7, -0.05, 0.0, 0.02, 0.4):
        pts, moved = D.moved_line(z, 0.0), D.moved_line(zp, th)
        w_sorted = transport.parallel_lines_sample_w1(th, z, zp)
        assert w_sorted == pytest.approx(transport.w1(pts.double().numpy(), moved.double().numpy()), abs=1e-7)
        assert w_sorted >= abs(th) - 1e-12
        values.append((th, w_sorted))
    for (t1, w1), (t2, w2) in zip(values, values[1:]):
        assert abs(w2 - w1) <= abs(t2 - t1) + 1e-12


def test_sorted_w1_rejects_bad_input():
    with pytest.raises(ValueError, match="same size"):
        transport.parallel_lines_sample_w1(0.1, [0.0, 1.0], [0.5])
    with pytest.raises(ValueError, match="theta"):
        transport.parallel_lines_sample_w1(float("nan"), [0.0], [0.5])
    with pytest.raises(ValueError, match="NaN"):
        transport.parallel_lines_sample_w1(0.1, [0.0, np.nan], [0.5, 0.1])


# ------------------------------------------------------------------ line_histogram
def test_line_histogram_puts_x0_at_a_bin_centre():
    h = 0.1
    # x = 0 and +-0.049 share the centre column; +-0.051 fall into the neighbours; y picks the row
    pts = torch.tensor([[0.0, 0.05], [0.049, 0.15], [-0.049, 0.95], [0.051, 0.05], [-0.051, 0.05], [0.2, 0.55]])
    counts = D.line_histogram(pts, h, lim=0.2, y_bins=10)
    # lim 0.2 = 2 h: columns centred on -0.2, -0.1, 0, 0.1, 0.2
    assert counts.shape == (5, 10) and counts.sum() == 6
    assert counts[2, 0] == 1 and counts[2, 1] == 1 and counts[2, 9] == 1
    assert counts[3, 0] == 1 and counts[1, 0] == 1 and counts[4, 5] == 1
    # two lines share a column exactly when |theta| < h/2
    for th, same in ((0.049, True), (0.051, False)):
        a = D.line_histogram(D.moved_line(torch.rand(100), 0.0), h)
        b = D.line_histogram(D.moved_line(torch.rand(100), th), h)
        assert (a.sum(axis=1).argmax() == b.sum(axis=1).argmax()) == same
    with pytest.raises(ValueError, match="h must be"):
        D.line_histogram(pts, 0.0)
    with pytest.raises(ValueError, match="shape"):
        D.line_histogram(torch.zeros(3), 0.1)


# ------------------------------------------------------------------ histogram scan and regimes
def test_histogram_regimes_of_hand_made_estimates():
    far = {"tv": 1.0, "js": math.log(2), "kl": math.inf}
    near = {"tv": 0.12, "js": 0.01, "kl": 0.03}
    r = D.histogram_regimes([0.5, 0.0, -0.02], {0.1: [far, near, dict(near, tv=0.2)]})
    assert r == {"far_err": 0.0, "near_tv": 0.2, "near_js": 0.01, "near_kl_finite": True}
    # a far estimate with a finite KL, or a TV below 1, is an error of the far regime
    assert D.histogram_regimes([0.5], {0.1: [dict(far, kl=3.0)]})["far_err"] == math.inf
    assert D.histogram_regimes([0.5], {0.1: [dict(far, tv=0.9)]})["far_err"] == pytest.approx(0.1)
    assert D.histogram_regimes([0.0], {0.1: [dict(near, kl=math.inf)]})["near_kl_finite"] is False
    with pytest.raises(ValueError, match="entries"):
        D.histogram_regimes([0.0, 0.5], {0.1: [near]})


def test_histogram_scan_is_exact_beyond_half_a_bin():
    data.seed_everything(0)
    n, h = 2000, 0.1
    target = data.sample_toy("parallel-lines", n)
    thetas = [-0.5, -0.06, -0.02, 0.0, 0.02, 0.06, 0.5]
    counts = {h: D.line_histogram(target, h), 4 * h: D.line_histogram(target, 4 * h)}
    estimates, w1 = D.histogram_scan(target, thetas, counts, n)
    r = D.histogram_regimes(thetas, estimates)
    # disjoint histograms give the closed forms exactly; shared columns give finite noise
    assert r["far_err"] < 1e-12 and r["near_kl_finite"]
    assert r["near_tv"] < 0.25 and r["near_js"] < 0.05
    # 0.06 > h/2 for h = 0.1, but < h/2 for 4h
    assert estimates[h][5]["tv"] == 1.0 and estimates[4 * h][5]["tv"] < 0.25
    assert np.all(w1 >= np.abs(thetas) - 1e-12) and np.all(w1 - np.abs(thetas) < 0.05)


# ------------------------------------------------------------------ gradients
def test_gradient_probes_sign_and_flat_js():
    # the moved line uses the target's own heights: the optimal plan moves each point straight
    # across, so dW1/dtheta = theta / |theta| exactly (Danskin), and away from h/2 the histogram
    # JS is log 2 on both sides of the probe: its finite difference is 0
    z = torch.rand(300, generator=torch.Generator().manual_seed(1))
    target = D.moved_line(z, 0.0)
    h = 0.1
    grads, fds = D.gradient_probes(target, z, [-0.5, -0.2, 0.2, 0.5], D.line_histogram(target, h), h)
    for th in grads:
        assert grads[th] == pytest.approx(math.copysign(1.0, th), abs=1e-6)
        assert fds[th] == 0.0
    # across the jump at h/2 the finite difference is not 0: (log 2 - JS(0.04)) / 0.02 > 0
    _, fd_jump = D.gradient_probes(target, z, [0.05], D.line_histogram(target, h), h)
    assert fd_jump[0.05] > 0


def test_moved_line_carries_the_gradient_of_theta():
    theta = torch.tensor(0.3, requires_grad=True)
    pts = D.moved_line(torch.linspace(0, 1, 7), theta)
    pts[:, 0].sum().backward()
    assert theta.grad.item() == 7.0
    assert torch.equal(pts[:, 1].detach(), torch.linspace(0, 1, 7))


# ------------------------------------------------------------------ likelihood on a grid
def test_ml_grid_optimum_finds_sqrt_s2_plus_theta2():
    grid = np.round(np.arange(0.01, 2.0, 0.01), 10)  # contains 0.5 exactly
    assert D.ml_grid_optimum(0.3, 0.4, grid) == pytest.approx(0.5, abs=1e-12)  # sqrt(0.09 + 0.16)
    fine = np.geomspace(1e-3, 10.0, 4001)
    for th, s in ((0.5, 0.0), (0.05, 0.01)):
        ratio = D.ml_grid_optimum(th, s, fine) / likelihood.ml_noise_width(th, s)
        assert abs(ratio - 1) <= fine[1] / fine[0] - 1  # within one grid step
    with pytest.raises(ValueError, match="sigmas"):
        D.ml_grid_optimum(0.3, 0.0, [0.0, 1.0])


def test_lines_sample_w1_agrees_with_the_network_simplex():
    data.seed_everything(2)
    target = data.sample_toy("parallel-lines", 300)
    rows = D.lines_sample_w1(target, [-0.5, 0.0, 0.2], 300)
    for th, abs_th, w_ot, w_sorted in rows:
        assert abs_th == abs(th)
        assert w_ot == pytest.approx(w_sorted, abs=1e-6) and w_ot >= abs_th - 1e-9

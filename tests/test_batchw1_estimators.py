"""Mathematics of the chapter-6 estimators and tests in wganbook.batchw1: Sinkhorn divergence,
sliced W1, their minibatch bias, the centroid matching test, the sharpness score and the
training helpers (hand-computed values and identities)."""

import math

import numpy as np
import pytest
import torch

from wganbook import batchw1, transport
from wganbook.lab import paradox


def _cloud(n, d, seed):
    return np.random.default_rng(seed).normal(size=(n, d))


# ----------------------------------------------------------------------- Sinkhorn divergence
def test_sinkhorn_divergence_of_identical_clouds_is_zero():
    x = _cloud(12, 3, 0)
    assert batchw1.sinkhorn_divergence(x, x.copy(), reg=0.5) == pytest.approx(0.0, abs=1e-10)


def test_sinkhorn_divergence_is_symmetric():
    x, y = _cloud(10, 2, 1), _cloud(13, 2, 2)
    assert batchw1.sinkhorn_divergence(x, y, 0.3) == pytest.approx(batchw1.sinkhorn_divergence(y, x, 0.3), rel=1e-7)


def test_sinkhorn_divergence_tends_to_exact_w1_for_small_reg():
    x, y = _cloud(8, 2, 3), _cloud(8, 2, 4) + 3.0
    exact = transport.w1(x, y)
    assert batchw1.sinkhorn_divergence(x, y, reg=0.01) == pytest.approx(exact, rel=1e-3)


def test_sinkhorn_divergence_two_diracs():
    # one point each: every plan is the product plan, OT_eps = |x - y| and the self terms are 0
    x, y = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])
    assert batchw1.sinkhorn_divergence(x, y, reg=2.0) == pytest.approx(5.0, abs=1e-9)


def test_sinkhorn_divergence_rejects_bad_reg():
    with pytest.raises(ValueError, match="reg must be a positive float"):
        batchw1.sinkhorn_divergence(_cloud(3, 2, 0), _cloud(3, 2, 1), reg=0.0)


# -------------------------------------------------------------------------------- sliced W1
def test_sliced_w1_in_one_dimension_is_exact_w1():
    x, y = _cloud(9, 1, 5), _cloud(9, 1, 6) * 2 + 1
    assert batchw1.sliced_w1(x, y, n_projections=7) == pytest.approx(transport.w1(x, y), rel=1e-9)


def test_sliced_w1_of_a_translation():
    # translation by t: every projection moves by theta.t, so SW1 = |t| E|theta_1| ; here check
    # SW1 <= W1 = |t| and SW1 > 0
    x = _cloud(50, 4, 7)
    t = np.array([2.0, 0.0, 0.0, 0.0])
    sw = batchw1.sliced_w1(x, x + t, n_projections=2000, seed=0)
    # E|theta_1| for theta uniform on S^3 is 1/2 ... exactly: Gamma(2)/(sqrt(pi) Gamma(5/2)) = 4/(3 pi)
    assert sw == pytest.approx(2.0 * 4.0 / (3.0 * math.pi), rel=0.05)
    assert sw <= transport.w1(x, x + t) + 1e-9


# ------------------------------------------------------------------------- estimator bias
def test_estimator_bias_shapes_and_zero_for_a_point_mass():
    # a = copies of one point: the within-distribution value of every estimator is 0 exactly
    a = torch.zeros(40, 2)
    b = torch.ones(20, 2)
    out = batchw1.estimator_bias(a, b, [2, 5], n_batches=3, reg=0.5, n_projections=20)
    for e in batchw1.ESTIMATORS:
        for v in out["within"][e]:
            assert np.allclose(v, 0.0, atol=1e-9)
    # between: every a_i is at distance sqrt 2 from every b_j
    for v in out["between"]["exact"]:
        assert np.allclose(v, math.sqrt(2.0))
    for v in out["between"]["sinkhorn"]:
        assert np.allclose(v, math.sqrt(2.0), atol=1e-8)
    assert out["full"]["exact"] == pytest.approx(math.sqrt(2.0))


def test_estimator_bias_rejects_large_batches_and_unknown_estimator():
    a, b = torch.zeros(10, 2), torch.zeros(10, 2)
    with pytest.raises(ValueError, match="at most 5"):
        batchw1.estimator_bias(a, b, [6])
    with pytest.raises(ValueError, match="unknown estimator"):
        batchw1.estimator_bias(a, b, [2], estimators=["mmd"])


def test_max_batch_size():
    assert batchw1.max_batch_size(898) == 89
    assert batchw1.max_batch_size(5) == 1
    with pytest.raises(ValueError, match="share"):
        batchw1.max_batch_size(10, share=0.0)


# ------------------------------------------------------------------------ centroid matching
def test_centroid_w1_is_zero_for_the_centroids_and_hand_case():
    c = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    assert np.allclose(batchw1.centroid_w1(c, c, n_batches=3), 0.0)
    # a collapsed batch (both samples on the first centroid) pays the distance 4 for half the mass
    collapsed = torch.zeros(2, 2)
    assert np.allclose(batchw1.centroid_w1(collapsed, c, n_batches=2), 2.0)


# --------------------------------------------------------------------------------- sharpness
def test_edge_strength_hand_cases():
    flat = torch.full((1, 1, 4, 4), 0.3)
    assert batchw1.edge_strength(flat)[0] == pytest.approx(0.0)
    # vertical stripes 0/1: horizontal differences all 1, vertical differences all 0 -> 0.5
    stripes = torch.tensor([[0.0, 1.0, 0.0, 1.0]]).repeat(4, 1).reshape(1, 1, 4, 4)
    assert batchw1.edge_strength(stripes)[0] == pytest.approx(0.5)


def test_edge_strength_drops_under_blur():
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert np.all(batchw1.edge_strength(batchw1.gaussian_blur(x, 1.0)) < batchw1.edge_strength(x))


# ---------------------------------------------------------------------------- training helpers
def test_estimate_error_hand_case():
    history = {"step": [1, 2, 3], "w1_estimate": [1.0, 3.0, 2.0], "w1_step": [1, 3], "w1_exact": [2.0, 4.0]}
    # |1 - 2| / 2 = 0.5 and |2 - 4| / 4 = 0.5
    assert paradox.estimate_error(history) == pytest.approx(0.5)


def test_train_variant_rejects_non_bool_spectral():
    with pytest.raises(TypeError, match="spectral must be a bool"):
        paradox.train_variant({"method": "gan-ns", "data": "digits", "steps": 1, "spectral": 1})


def test_exact_w1_generator_with_identity_embedding_matches_pixels():
    from wganbook.models import make_generator

    images = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    runs = []
    for embed in (None, torch.nn.Identity()):
        torch.manual_seed(0)
        g = make_generator("digits")
        runs.append(
            paradox.train_exact_w1_generator(g, images, steps=3, batch_size=8, seed=0, record_every=1, embed=embed)[
                "w1"
            ]
        )
    assert runs[0] == pytest.approx(runs[1], rel=1e-12)


def test_exact_w1_generator_rejects_bad_embed():
    from wganbook.models import make_generator

    with pytest.raises(TypeError, match="embed must be None or a callable"):
        paradox.train_exact_w1_generator(
            make_generator("digits"), torch.zeros(8, 1, 8, 8), steps=1, batch_size=4, embed="features"
        )

"""Tests of wganbook.metrics: Fréchet distance maths, feature extractors (offline), toy metrics."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from wganbook import metrics
from wganbook.data import sample_toy, toy_modes


def _rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ Fréchet distance
def test_identical_sets_have_zero_distance():
    a = _rng().normal(size=(200, 5))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert metrics.frechet_distance(torch.from_numpy(a), a) == pytest.approx(0.0, abs=1e-8)


def test_gaussian_closed_form_diagonal_and_1d():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 0.5, 2.0]), np.array([2.0, 0.5, 0.1])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    got = metrics.gaussian_frechet(mu1, np.diag(s1**2), mu2, np.diag(s2**2))
    assert got == pytest.approx(expected, rel=1e-10)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert metrics.gaussian_frechet([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9.0 + 1.0)


def test_commuting_covariances_closed_form():
    # for commuting covariances, Tr((S1 S2)^{1/2}) = sum sqrt(l1_i l2_i) in a shared eigenbasis
    q, _ = np.linalg.qr(_rng(1).normal(size=(4, 4)))
    l1, l2 = np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 1.0, 0.5, 2.0])
    s1, s2 = q @ np.diag(l1) @ q.T, q @ np.diag(l2) @ q.T
    expected = np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    assert metrics.gaussian_frechet(np.zeros(4), s1, np.zeros(4), s2) == pytest.approx(expected, rel=1e-8)


def test_matches_pytorch_fid():
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = _rng(2)
    a = rng.normal(size=(300, 6))
    b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 0.3
    mu1, s1 = metrics.feature_statistics(a)
    mu2, s2 = metrics.feature_statistics(b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = calculate_frechet_distance(mu1, s1, mu2, s2)
    assert metrics.frechet_distance(a, b) == pytest.approx(ref, rel=1e-9)
    np.testing.assert_allclose(s1, np.cov(a, rowvar=False))


def test_invariances_and_symmetry():
    rng = _rng(3)
    a = rng.normal(size=(250, 3))
    b = rng.normal(size=(250, 3)) * [1.0, 2.0, 0.5] + [1.0, 0.0, -1.0]
    d = metrics.frechet_distance(a, b)
    assert metrics.frechet_distance(b, a) == pytest.approx(d, rel=1e-8)
    shift = np.array([5.0, -3.0, 2.0])  # common translation
    assert metrics.frechet_distance(a + shift, b + shift) == pytest.approx(d, rel=1e-8)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # common rotation
    assert metrics.frechet_distance(a @ q, b @ q) == pytest.approx(d, rel=1e-8)
    assert metrics.frechet_distance(a[::-1], b) == pytest.approx(d, rel=1e-8)  # row order
    # shifting one set by c adds exactly |c|^2
    assert metrics.frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-8)


def test_singular_covariances_use_the_eps_fallback():
    a = np.zeros((10, 3))
    a[:, 0] = np.arange(10)  # rank-1 covariances
    b = a.copy()
    b[:, 0] += 2.0
    assert metrics.frechet_distance(a, b) == pytest.approx(4.0, abs=1e-4)


def test_frechet_bad_inputs():
    with pytest.raises(ValueError, match="feature dimension"):
        metrics.frechet_distance(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        metrics.frechet_distance(np.zeros((1, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="sigma"):
        metrics.gaussian_frechet(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))


# ------------------------------------------------------------------ Inception features (offline)
def test_inception_pipeline_with_random_weights():
    feats = metrics.InceptionFeatures(random_init=True, device="cpu", batch_size=2)
    x = torch.rand(3, 1, 8, 8) * 2 - 1  # grey levels, [-1, 1]
    f = feats(x)
    assert f.shape == (3, 2048) and f.dtype == np.float64 and np.isfinite(f).all()
    assert not feats.model.training
    rgb = torch.rand(2, 3, 16, 16) * 2 - 1
    assert feats(rgb).shape == (2, 2048)


def test_inception_without_weights_offline_raises_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(RuntimeError, match="pt_inception-2015-12-05"):
        metrics.InceptionFeatures(download=False, device="cpu")
    with pytest.raises(RuntimeError, match="weights_path"):
        metrics.InceptionFeatures(weights_path=tmp_path / "missing.pth", device="cpu")


# ------------------------------------------------------------------ classifier features
@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WGANBOOK_CACHE", str(tmp_path))
    monkeypatch.setattr(metrics, "_CLASSIFIER_MEMORY", {})
    return tmp_path


def test_classifier_features_are_deterministic_and_cached(cache):
    a = metrics.ClassifierFeatures("digits", epochs=3)
    assert a.test_accuracy > 0.5
    files = list(cache.glob("classifier-digits-*.pt"))
    assert len(files) == 1 and not list(cache.glob("*.tmp"))
    metrics._CLASSIFIER_MEMORY.clear()  # force a load from disk
    b = metrics.ClassifierFeatures("digits", epochs=3)
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    np.testing.assert_array_equal(a(x), b(x))
    assert a(x).shape == (5, a.dim) and b.test_accuracy == a.test_accuracy
    with pytest.raises(ValueError, match="dataset"):
        metrics.ClassifierFeatures("imagenet")


def test_classifier_training_leaves_the_global_rng_alone(cache):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    metrics.ClassifierFeatures("digits", epochs=1, cache=False)
    assert torch.equal(torch.rand(3), expected)


class _Replay(nn.Module):
    """A 'generator' that returns stored images picked by its noise (or a constant image)."""

    def __init__(self, images, constant=False):
        super().__init__()
        self.images = images
        self.constant = constant
        self.z_dim = 1
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, z):
        if self.constant:
            return self.images[:1].expand(z.shape[0], -1, -1, -1)
        idx = (z[:, 0].abs() * 1e6).long() % self.images.shape[0]
        return self.images[idx]


def test_sample_quality_prefers_real_images(cache):
    from wganbook.data import load_images

    feats = metrics.ClassifierFeatures("digits", epochs=3)
    x, _ = load_images("digits")
    good = metrics.sample_quality(_Replay(x), "digits", n=300, features=feats)
    bad = metrics.sample_quality(_Replay(x, constant=True), "digits", n=300, features=feats)
    assert 0 <= good < 0.2 * bad


# ------------------------------------------------------------------ toys
@pytest.mark.parametrize("name, k", [("8gaussians", 8), ("25gaussians", 25)])
def test_mode_coverage_exact_centres_and_single_mode(name, k):
    centres = toy_modes(name)
    allc = centres.repeat(10, 1)
    cov = metrics.mode_coverage(allc, name)
    assert cov["modes"] == k and cov["high_quality"] == 1.0 and cov["total_modes"] == k
    assert cov["counts"] == [10] * k == cov["hq_counts"]
    one = centres[:1].repeat(100, 1)
    cov = metrics.mode_coverage(one, name)
    assert cov["modes"] == 1 and cov["high_quality"] == 1.0 and cov["counts"][0] == 100
    far = torch.full((50, 2), 10.0)
    assert metrics.mode_coverage(far, name) == {
        "modes": 0,
        "high_quality": 0.0,
        "total_modes": k,
        "counts": [0] * k,
        "hq_counts": [0] * k,
    }


def test_mode_coverage_of_true_samples_and_its_thresholds():
    x = sample_toy("8gaussians", 4000, seed=0)
    cov = metrics.mode_coverage(x, "8gaussians")
    # within 3 std per coordinate: the radius 3 sigma holds 1 - exp(-9/2) = 98.9% of a 2-D Gaussian
    assert cov["modes"] == 8 and cov["high_quality"] == pytest.approx(1 - np.exp(-4.5), abs=0.01)
    assert sum(cov["counts"]) == 4000
    centres, std = metrics.mode_centres("8gaussians")
    # a blurred generator: every point 10 std away from its mode covers the modes, with no quality
    blurred = centres.repeat(50, 1) + torch.tensor([10 * std, 0.0])
    cov = metrics.mode_coverage(blurred, "8gaussians")
    assert cov["modes"] == 8 and cov["high_quality"] == 0.0
    assert metrics.mode_coverage(blurred, "8gaussians", radius=3 * std)["modes"] == 0
    # a few stray samples do not make a mode covered: 97 + 1 + 1 + 1 samples, need ceil(0.2 * 100 / 8) = 3
    stray = torch.cat([centres[:1].repeat(97, 1), centres[1:4]])
    assert metrics.mode_coverage(stray, "8gaussians")["modes"] == 1
    assert metrics.mode_coverage(stray, "8gaussians", min_share=0.0)["modes"] == 4
    with pytest.raises(ValueError, match="dataset"):
        metrics.mode_coverage(x, "swissroll")
    with pytest.raises(ValueError, match="samples"):
        metrics.mode_coverage(torch.zeros(5, 3), "8gaussians")


def test_default_coverage_radius_is_a_quarter_of_the_mode_spacing():
    centres, _ = metrics.mode_centres("25gaussians")
    spacing = 2 / 2.828
    inside = centres + torch.tensor([0.24 * spacing, 0.0])
    outside = centres + torch.tensor([0.26 * spacing, 0.0])
    assert metrics.mode_coverage(inside, "25gaussians", min_share=0.0)["modes"] == 25
    assert metrics.mode_coverage(outside, "25gaussians", min_share=0.0)["modes"] == 0


def test_w1_to_target():
    good = metrics.w1_to_target(sample_toy("8gaussians", 256, seed=1), "8gaussians", n=256)
    shifted = metrics.w1_to_target(
        sample_toy("8gaussians", 256, seed=1) + torch.tensor([1.0, 0.0]), "8gaussians", n=256
    )
    assert 0 < good < 0.3 and shifted > good + 0.5
    with pytest.raises(ValueError, match="dataset"):
        metrics.w1_to_target(torch.zeros(4, 2), "digits")


def test_generate_has_no_side_effects():
    g = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    g.z_dim = 3
    before = {k: v.clone() for k, v in g.state_dict().items()}
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    x = metrics.generate(g, 10, seed=5)
    assert x.shape == (10, 4) and torch.equal(torch.rand(2), expected)
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in before.items())
    assert torch.equal(metrics.generate(g, 10, seed=5), x)

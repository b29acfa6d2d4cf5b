"""Tests of wganbook.data: seeding, toy distributions, image loading (offline, fake files)."""

import math
import os
import pickle
import random
import struct

import numpy as np
import pytest
import torch
import torchvision.datasets  # imported at collection time: the first import takes seconds
import torchvision.datasets.cifar
from sklearn.datasets import load_digits, make_swiss_roll

from wganbook import data as D


# ----------------------------------------------------------------------------------------
# seeding
# ----------------------------------------------------------------------------------------
def test_seed_everything_makes_all_generators_reproducible():
    def draw(gen):
        return (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item())

    first = draw(D.seed_everything(123))
    second = draw(D.seed_everything(123))
    assert first == second
    assert draw(D.seed_everything(124)) != first
    g = D.seed_everything(np.int64(5))
    assert isinstance(g, torch.Generator) and g.initial_seed() == 5


@pytest.mark.parametrize(
    "seed, exc",
    [(-1, ValueError), (2**32, ValueError), (1.5, TypeError), (True, TypeError), ("3", TypeError), (None, TypeError)],
)
def test_seed_everything_validates(seed, exc):
    with pytest.raises(exc, match="seed must be"):
        D.seed_everything(seed)


# ----------------------------------------------------------------------------------------
# toys
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", D.TOY_DATASETS)
def test_sample_toy_shape_dtype_and_determinism(name):
    x = D.sample_toy(name, 300, seed=0)
    assert x.shape == (300, 2) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert torch.equal(x, D.sample_toy(name, 300, seed=0))
    assert not torch.equal(x, D.sample_toy(name, 300, seed=1))
    # an explicit generator with the same seed gives the same points
    assert torch.equal(x, D.sample_toy(name, 300, generator=torch.Generator().manual_seed(0)))
    # the global generator is seeded by seed_everything
    D.seed_everything(7)
    a = D.sample_toy(name, 50)
    D.seed_everything(7)
    assert torch.equal(a, D.sample_toy(name, 50))


def test_toy_modes_and_std_follow_gan_toy_settings():
    m8 = D.toy_modes("8gaussians")
    assert m8.shape == (8, 2) and m8.dtype == torch.float32
    np.testing.assert_allclose(m8.norm(dim=1).numpy(), np.full(8, 2 / 1.414), rtol=1e-6)
    np.testing.assert_allclose(m8[0].numpy(), [2 / 1.414, 0.0], rtol=1e-6)
    np.testing.assert_allclose(m8[4].numpy(), [math.sqrt(2) / 1.414] * 2, rtol=1e-6)
    angles = np.sort(np.mod(np.arctan2(m8[:, 1].numpy(), m8[:, 0].numpy()), 2 * np.pi))
    np.testing.assert_allclose(angles, np.arange(8) * np.pi / 4, atol=1e-6)
    m25 = D.toy_modes("25gaussians")
    assert m25.shape == (25, 2)
    grid = np.array([-4, -2, 0, 2, 4]) / 2.828
    expected = np.array([(i, j) for i in grid for j in grid])
    np.testing.assert_allclose(m25.numpy(), expected, rtol=1e-6)
    assert D.toy_std("8gaussians") == pytest.approx(0.02 / 1.414)
    assert D.toy_std("25gaussians") == pytest.approx(0.05 / 2.828)
    for f in (D.toy_modes, D.toy_std):
        with pytest.raises(ValueError, match="8gaussians, 25gaussians"):
            f("swissroll")


@pytest.mark.parametrize("name, n_modes", [("8gaussians", 8), ("25gaussians", 25)])
def test_gaussian_mixtures_have_the_stated_modes_and_spread(name, n_modes):
    x = D.sample_toy(name, 5000, seed=0)
    modes, std = D.toy_modes(name), D.toy_std(name)
    dist = torch.cdist(x, modes)
    nearest = dist.argmin(dim=1)
    # every point lies within 6 standard deviations of its component (P(r > 6 std) = e^-18 in 2-D)
    assert (dist.min(dim=1).values < 6 * std).all()
    counts = torch.bincount(nearest, minlength=n_modes).numpy()
    expected = 5000 / n_modes
    assert counts.min() > 0
    # uniform mode choice: chi-square well below its 0.999 quantile (df=7: 24.3, df=24: 51.2)
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < (24.3 if n_modes == 8 else 51.2)
    resid = (x - modes[nearest]).numpy()
    np.testing.assert_allclose(resid.std(axis=0), [std, std], rtol=0.05)
    np.testing.assert_allclose(resid.mean(axis=0), [0, 0], atol=4 * std / math.sqrt(5000))


def test_swissroll_is_sklearn_with_columns_0_2_over_7_5():
    g = torch.Generator().manual_seed(11)
    x = D.sample_toy("swissroll", 400, generator=g)
    g2 = torch.Generator().manual_seed(11)
    state = int(torch.randint(0, 2**31 - 1, (1,), generator=g2))
    ref = make_swiss_roll(n_samples=400, noise=0.25, random_state=state)[0][:, [0, 2]] / 7.5
    np.testing.assert_allclose(x.numpy(), ref.astype(np.float32), rtol=1e-6)
    # the roll's radius t in [1.5 pi, 4.5 pi] bounds |coordinates| by 4.5 pi / 7.5 plus noise
    assert x.abs().max() < 4.5 * math.pi / 7.5 + 6 * 0.25 / 7.5


def test_parallel_lines_samples():
    x = D.sample_toy("parallel-lines", 1000, seed=0, theta=-0.25)
    assert torch.all(x[:, 0] == -0.25)
    assert x[:, 1].min() >= 0 and x[:, 1].max() < 1
    assert x[:, 1].mean().item() == pytest.approx(0.5, abs=4 * math.sqrt(1 / 12 / 1000))
    assert torch.all(D.sample_toy("parallel-lines", 10, seed=0)[:, 0] == 0)
    assert torch.equal(
        D.sample_toy("parallel-lines", 10, seed=0, theta=torch.tensor(0.5))[:, 0], torch.full((10,), 0.5)
    )


@pytest.mark.parametrize(
    "kwargs, exc, message",
    [
        (dict(name="9gaussians", n=5), ValueError, "toy dataset must be one of: 8gaussians, 25gaussians"),
        (dict(name="digits", n=5), ValueError, "unknown toy dataset 'digits'"),
        (dict(name="swissroll", n=0), ValueError, "n must be an int >= 1"),
        (dict(name="swissroll", n=2.0), TypeError, "n must be an int >= 1"),
        (dict(name="8gaussians", n=5, theta=1.0), ValueError, "theta is only used by 'parallel-lines'"),
        (dict(name="parallel-lines", n=5, theta=float("inf")), TypeError, "theta must be a finite"),
        (dict(name="8gaussians", n=5, seed=1, generator=torch.Generator()), ValueError, "not both"),
        (dict(name="8gaussians", n=5, generator=3), TypeError, "generator must be a torch.Generator"),
        (dict(name="8gaussians", n=5, seed=-2), ValueError, "seed must be"),
    ],
)
def test_sample_toy_validates(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        D.sample_toy(**kwargs)


def test_is_toy_and_image_shape():
    assert all(D.is_toy(n) for n in D.TOY_DATASETS)
    assert not any(D.is_toy(n) for n in D.IMAGE_DATASETS)
    assert D.image_shape("digits") == (1, 8, 8)
    assert D.image_shape("mnist") == D.image_shape("fashion-mnist") == (1, 28, 28)
    assert D.image_shape("cifar10") == (3, 32, 32)
    with pytest.raises(ValueError, match="dataset must be one of: 8gaussians"):
        D.is_toy("celeba")
    with pytest.raises(ValueError, match="image dataset must be one of: digits, mnist, fashion-mnist, cifar10"):
        D.image_shape("8gaussians")


# ----------------------------------------------------------------------------------------
# digits and class_split
# ----------------------------------------------------------------------------------------
def test_digits_load_offline_with_exact_scaling():
    images, labels = D.load_images("digits")
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.float32
    assert labels.shape == (1797,) and labels.dtype == torch.int64
    assert images.min().item() == -1.0 and images.max().item() == 1.0
    ref = load_digits()
    np.testing.assert_array_equal(images[:, 0].numpy(), (ref.images / 8.0 - 1.0).astype(np.float32))
    np.testing.assert_array_equal(labels.numpy(), ref.target)
    assert set(labels.tolist()) == set(range(10))
    with pytest.raises(ValueError, match="no test split"):
        D.load_images("digits", train=False)


def test_class_split_digits_0_4_vs_5_9():
    images, labels = D.load_images("digits")
    lo, lo_labels = D.class_split(images, labels, range(5))
    hi, hi_labels = D.class_split(images, labels, [5, 6, 7, 8, 9])
    assert lo.shape[0] + hi.shape[0] == 1797 and lo.shape[1:] == (1, 8, 8)
    assert set(lo_labels.tolist()) == {0, 1, 2, 3, 4} and set(hi_labels.tolist()) == {5, 6, 7, 8, 9}
    assert lo.shape[0] == int((labels < 5).sum())
    np.testing.assert_array_equal(lo.numpy(), images[labels < 5].numpy())  # order kept
    with pytest.raises(ValueError, match="no sample has a label in classes"):
        D.class_split(images, labels, [11])
    with pytest.raises(ValueError, match="classes must not be empty"):
        D.class_split(images, labels, [])
    with pytest.raises(ValueError, match="one label per image"):
        D.class_split(images, labels[:10], [1])


@pytest.mark.parametrize(
    "kwargs, exc, message",
    [
        (dict(name="svhn"), ValueError, "image dataset must be one of: digits, mnist"),
        (dict(name="mnist", download="yes"), TypeError, "download must be a bool"),
        (dict(name="mnist", train=1), TypeError, "train must be a bool"),
        (dict(name="mnist", root=3), TypeError, "root must be"),
    ],
)
def test_load_images_validates(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        D.load_images(**kwargs)


# ----------------------------------------------------------------------------------------
# torchvision datasets from tiny fake files in torchvision's on-disk format
# ----------------------------------------------------------------------------------------
def write_idx(path, array):
    """MNIST's idx-ubyte format: big-endian magic 0x08<ndim>, big-endian dims, raw uint8."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 + array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + array.tobytes())


def fake_mnist(root, folder="MNIST"):
    """3 train images (all 0, all 255, a 0..255 ramp) and 2 test images."""
    ramp = (np.arange(28 * 28) % 256).reshape(28, 28)
    train = np.stack([np.zeros((28, 28)), np.full((28, 28), 255), ramp])
    raw = root / folder / "raw"
    write_idx(raw / "train-images-idx3-ubyte", train)
    write_idx(raw / "train-labels-idx1-ubyte", [3, 1, 4])
    write_idx(raw / "t10k-images-idx3-ubyte", np.full((2, 28, 28), 51))
    write_idx(raw / "t10k-labels-idx1-ubyte", [9, 2])
    return train


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_format_loads_through_torchvision_with_scaling(tmp_path, name, folder):
    train = fake_mnist(tmp_path, folder)
    images, labels = D.load_images(name, root=tmp_path)
    assert images.shape == (3, 1, 28, 28) and images.dtype == torch.float32
    assert labels.tolist() == [3, 1, 4] and labels.dtype == torch.int64
    assert torch.all(images[0] == -1) and torch.all(images[1] == 1)
    np.testing.assert_allclose(images[2, 0].numpy(), train[2] / 127.5 - 1, atol=1e-6)  # orientation kept
    test_images, test_labels = D.load_images(name, root=str(tmp_path), train=False)
    assert test_images.shape == (2, 1, 28, 28) and test_labels.tolist() == [9, 2]
    np.testing.assert_allclose(test_images.numpy(), 51 / 127.5 - 1, atol=1e-6)


def fake_cifar(root):
    """Tiny CIFAR-10 python pickles: each batch holds 2 images, rows of R, G, B planes."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    blue = (np.arange(32 * 32) % 256).astype(np.uint8)  # B[h, w] = (32 h + w) mod 256
    img = np.concatenate([np.full(1024, 255, np.uint8), np.zeros(1024, np.uint8), blue])
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, fname in enumerate(names):
        batch = {
            "batch_label": fname,
            "data": np.stack([img, 255 - img]),
            "labels": [k, 9 - k],
            "filenames": ["a.png", "b.png"],
        }
        with open(folder / fname, "wb") as fh:
            pickle.dump(batch, fh, protocol=2)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": 2}, fh)
    return blue.reshape(32, 32)


def test_fake_cifar_files_fail_torchvision_md5_check(tmp_path):
    """Without the real files torchvision's integrity (md5) check fails: that is a missing dataset."""
    fake_cifar(tmp_path)
    before = files_under(tmp_path)
    with pytest.raises(D.DatasetMissingError, match="corrupted"):
        D.load_images("cifar10", root=tmp_path)
    assert files_under(tmp_path) == before


def test_cifar_format_loads_through_torchvision_with_scaling(tmp_path, monkeypatch):
    # Fake files cannot match CIFAR-10's md5 sums, so (in this test only) torchvision's
    # integrity check is reduced to "the file exists"; everything else is torchvision's loader.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    blue = fake_cifar(tmp_path)
    images, labels = D.load_images("cifar10", root=tmp_path)
    assert images.shape == (10, 3, 32, 32) and images.dtype == torch.float32
    assert labels.tolist() == [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]
    assert torch.all(images[0, 0] == 1) and torch.all(images[0, 1] == -1)  # R = 255, G = 0
    np.testing.assert_allclose(images[0, 2].numpy(), blue / 127.5 - 1, atol=1e-6)  # B plane, orientation
    np.testing.assert_allclose(images[1].numpy(), -images[0].numpy(), atol=1e-6)  # 255 - x -> -x
    assert images.min() >= -1 and images.max() <= 1
    test_images, test_labels = D.load_images("cifar10", root=tmp_path, train=False)
    assert test_images.shape == (2, 3, 32, 32) and test_labels.tolist() == [5, 4]


@pytest.mark.parametrize(
    "name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"), ("cifar10", "cifar-10-batches-py")]
)
def test_missing_dataset_error_says_how_to_fix_and_creates_nothing(tmp_path, name, folder):
    root = tmp_path / "data"
    with pytest.raises(D.DatasetMissingError) as info:
        D.load_images(name, root=root)
    err = info.value
    assert isinstance(err, FileNotFoundError)
    msg = str(err)
    assert repr(name) in msg and str(root) in msg and folder in msg
    assert "download=True" in msg and "internet" in msg and "'digits'" in msg and "WGANBOOK_DATA" in msg
    assert err.dataset == name and err.root == str(root)
    assert not root.exists() and files_under(tmp_path) == []


def test_default_root_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WGANBOOK_DATA", str(tmp_path / "env-root"))
    assert D.default_root() == tmp_path / "env-root"
    with pytest.raises(D.DatasetMissingError, match="env-root"):
        D.load_images("mnist")
    monkeypatch.delenv("WGANBOOK_DATA")
    assert D.default_root() == D.Path.home() / ".cache" / "wganbook" / "data"


def test_partially_present_mnist_is_reported_missing(tmp_path):
    fake_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(D.DatasetMissingError, match="t10k-labels-idx1-ubyte"):
        D.load_images("mnist", root=tmp_path)


def test_truncated_mnist_file_is_reported_unreadable(tmp_path):
    fake_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(D.DatasetMissingError, match="'mnist'.*torchvision: "):
        D.load_images("mnist", root=tmp_path)


def test_failed_download_leaves_no_partial_files(tmp_path, monkeypatch):
    def broken_download(self):  # writes half a file, then the network goes away
        os.makedirs(self.raw_folder, exist_ok=True)
        with open(os.path.join(self.raw_folder, "train-images-idx3-ubyte.gz"), "wb") as fh:
            fh.write(b"\x1f\x8b partial")
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: network is unreachable")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", broken_download)
    root = tmp_path / "new" / "data"
    with pytest.raises(D.DatasetMissingError, match="download failed.*network is unreachable"):
        D.load_images("mnist", root=root, download=True)
    assert files_under(tmp_path) == [] and not (tmp_path / "new").exists()
    # an existing root keeps its other contents and gets nothing new
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(D.DatasetMissingError):
        D.load_images("mnist", root=tmp_path, download=True)
    assert files_under(tmp_path) == ["keep.txt"]


def test_successful_download_moves_only_complete_data_files(tmp_path, monkeypatch):
    def fake_download(self):  # what torchvision leaves: archives plus extracted files
        root = D.Path(self.raw_folder).parent.parent
        fake_mnist(root)
        D.Path(self.raw_folder, "train-images-idx3-ubyte.gz").write_bytes(b"archive")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fake_download)
    images, labels = D.load_images("mnist", root=tmp_path / "data", download=True)
    assert images.shape == (3, 1, 28, 28) and labels.tolist() == [3, 1, 4]
    assert files_under(tmp_path / "data") == [
        "MNIST/raw/t10k-images-idx3-ubyte",
        "MNIST/raw/t10k-labels-idx1-ubyte",
        "MNIST/raw/train-images-idx3-ubyte",
        "MNIST/raw/train-labels-idx1-ubyte",
    ]
    # already present: no download attempted
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", None)
    assert D.load_images("mnist", root=tmp_path / "data", download=True)[0].shape == (3, 1, 28, 28)

r"""Sample-quality metrics: Fréchet distance, feature extractors, toy mode coverage.

The Fréchet distance between two sets of features is the 2-Wasserstein distance
between the Gaussians fitted to them (the maths of ``pytorch-fid``):

.. math::

    d^2 = \lVert \mu_1 - \mu_2 \rVert_2^2
          + \operatorname{Tr}\bigl(\Sigma_1 + \Sigma_2 - 2 (\Sigma_1 \Sigma_2)^{1/2}\bigr).

Two feature spaces are offered:

* ``InceptionFeatures`` -- the 2048-d pool3 features of pytorch-fid's TF-ported
  InceptionV3: with these weights the distance *is* the FID (its numbers are only comparable
  with published FIDs under the same protocol: sample counts, reference set, resizing).
* ``ClassifierFeatures`` -- the penultimate layer of a small CNN trained, deterministically,
  on the dataset itself ("FD-classifier"). It is cheap and works offline, but its numbers are
  **not comparable with published FIDs**: they only rank models trained on the same dataset.

For the 2-D toys, ``mode_coverage`` counts the modes of the Gaussian mixtures that a sample
covers and ``w1_to_target`` measures the exact W1 to fresh target samples.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from wganbook import data as wdata
from wganbook._util import atomic_write
from wganbook.models import resolve_device, sample_noise
from wganbook.transport import w1

__all__ = [
    "real_reference_distance",
    "MODE_DATASETS",
    "gaussian_frechet",
    "feature_statistics",
    "frechet_distance",
    "cache_dir",
    "InceptionFeatures",
    "reference_images",
    "ClassifierFeatures",
    "generate",
    "sample_quality",
    "mode_centres",
    "mode_coverage",
    "w1_to_target",
    "concentration",
]

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]

#: Toy datasets with discrete modes (accepted by :func:`mode_coverage`).
MODE_DATASETS = ("8gaussians", "25gaussians")


# ---------------------------------------------------------------------------------------------
# Fréchet distance (pytorch-fid's maths)
# ---------------------------------------------------------------------------------------------
def _as_float64(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array or tensor of numbers, got {type(x).__name__}") from exc
    return arr


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """Matrix square root by :func:`scipy.linalg.sqrtm`, silencing its warnings (checked by the caller)."""
    from scipy import linalg

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        out = linalg.sqrtm(a)
    if isinstance(out, tuple):  # very old SciPy returned (sqrtm, errest) with disp=False only
        out = out[0]
    return np.asarray(out)


def gaussian_frechet(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike, eps: float = 1e-6) -> float:
    r"""Fréchet (2-Wasserstein) distance between two Gaussians, as pytorch-fid computes it.

    .. math::

        d^2\bigl(\mathcal N(\mu_1, \Sigma_1), \mathcal N(\mu_2, \Sigma_2)\bigr)
        = \lVert \mu_1 - \mu_2 \rVert_2^2
          + \operatorname{Tr}\bigl(\Sigma_1 + \Sigma_2 - 2 (\Sigma_1 \Sigma_2)^{1/2}\bigr)

    The square root is :func:`scipy.linalg.sqrtm` of :math:`\Sigma_1 \Sigma_2`; when it is not
    finite (nearly singular product) it is recomputed with :math:`\varepsilon I` added to both
    covariances, and a small imaginary part from round-off is dropped (an imaginary diagonal
    larger than ``1e-3`` raises, as in pytorch-fid).

    Parameters
    ----------
    mu1, mu2 : array_like, shape (d,)
        Means.
    sigma1, sigma2 : array_like, shape (d, d)
        Covariance matrices.
    eps : float, optional
        Diagonal offset used only when the plain square root is not finite.

    Returns
    -------
    float
        :math:`d^2` (the quantity called "FID"; it is a squared distance).

    Raises
    ------
    ValueError
        If the shapes disagree or the square root has a significant imaginary part.
    """
    mu1 = np.atleast_1d(_as_float64(mu1, "mu1"))
    mu2 = np.atleast_1d(_as_float64(mu2, "mu2"))
    sigma1 = np.atleast_2d(_as_float64(sigma1, "sigma1"))
    sigma2 = np.atleast_2d(_as_float64(sigma2, "sigma2"))
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"mu1 and mu2 must be vectors of the same length, got {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    if sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"sigma1 and sigma2 must have shape ({d}, {d}), got {sigma1.shape} and {sigma2.shape}")

    diff = mu1 - mu2
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            m = np.max(np.abs(covmean.imag))
            raise ValueError(
                f"Imaginary component {m} in the matrix square root (too few samples for the feature dimension?)"
            )
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def feature_statistics(feats: ArrayLike) -> tuple:
    r"""Mean and (unbiased) covariance of a feature matrix.

    .. math::

        \mu = \frac1n \sum_i x_i, \qquad
        \Sigma = \frac1{n-1} \sum_i (x_i - \mu)(x_i - \mu)^\top

    Parameters
    ----------
    feats : array_like, shape (n, d)
        One feature vector per row, n >= 2.

    Returns
    -------
    tuple of numpy.ndarray
        ``(mu, sigma)`` in float64, shapes (d,) and (d, d).
    """
    x = _as_float64(feats, "feats")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"feats must have shape (n, d), got {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"feats needs at least 2 rows to estimate a covariance, got {x.shape[0]}")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_distance(feats_a: ArrayLike, feats_b: ArrayLike, eps: float = 1e-6) -> float:
    r"""Fréchet distance between the Gaussians fitted to two feature sets.

    .. math::

        \mathrm{FD}(A, B) = \lVert \mu_A - \mu_B \rVert_2^2
          + \operatorname{Tr}\bigl(\Sigma_A + \Sigma_B - 2 (\Sigma_A \Sigma_B)^{1/2}\bigr)

    with the empirical means and unbiased covariances of the rows (see
    :func:`feature_statistics` and :func:`gaussian_frechet`). With Inception pool3 features this
    is the FID; reliable values need more samples than feature dimensions.

    Parameters
    ----------
    feats_a, feats_b : array_like, shape (n, d) and (m, d)
        Features (numpy arrays or tensors), n, m >= 2. 1-D inputs are treated as d = 1.
    eps : float, optional
        See :func:`gaussian_frechet`.

    Returns
    -------
    float
        The squared Fréchet distance (0 for identical sets).
    """
    mu_a, s_a = feature_statistics(feats_a)
    mu_b, s_b = feature_statistics(feats_b)
    if mu_a.shape != mu_b.shape:
        raise ValueError(
            f"feats_a and feats_b must have the same feature dimension, got {mu_a.shape[0]} and {mu_b.shape[0]}"
        )
    return gaussian_frechet(mu_a, s_a, mu_b, s_b, eps=eps)


# ---------------------------------------------------------------------------------------------
# Feature extractors
# ---------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """Folder of the on-disk cache: ``$WGANBOOK_CACHE`` or ``~/.cache/wganbook``.

    Returns
    -------
    pathlib.Path
        The folder (not created by this function).
    """
    env = os.environ.get("WGANBOOK_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "wganbook"


def _to_unit_rgb(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images (N, C, H, W) -> [0, 1], grey levels repeated to 3 channels."""
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    x = ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    elif x.shape[1] != 3:
        raise ValueError(f"images must have 1 or 3 channels, got {x.shape[1]}")
    return x


def _resolve(device) -> torch.device:
    return resolve_device(device)


_FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"

#: Environment variable for tests only: ``1`` makes every ``InceptionFeatures()`` use randomly
#: initialised weights (seed 0) instead of pytorch-fid's, so the FID code path runs offline. Its
#: "FID" numbers are NOT comparable with any published FID (nor meaningful as sample quality).
RANDOM_INCEPTION_ENV = "WGANBOOK_RANDOM_INCEPTION"


class InceptionFeatures:
    r"""pytorch-fid's InceptionV3 pool3 features (2048-d): the feature space of the FID.

    Images in :math:`[-1, 1]` are mapped to :math:`[0, 1]` (:math:`x \mapsto (x + 1)/2`),
    grey-level images are repeated to 3 channels, and pytorch-fid's network resizes them
    bilinearly to 299 x 299 and normalises them internally, exactly as ``python -m pytorch_fid``.

    Parameters
    ----------
    weights_path : str or path-like, optional
        A local copy of pytorch-fid's TF-ported weights (``pt_inception-2015-12-05-6726825d.pth``).
        Without it the weights are taken from the torch-hub cache, downloading them there when
        ``download`` is true.
    device : str, optional
        ``"auto"`` (CUDA, then MPS, then CPU) or a torch device string.
    batch_size : int, optional
        Images per forward pass.
    download : bool, optional
        Allow downloading the weights into the torch-hub cache.
    random_init : bool, optional
        Build the architecture with random weights (for offline tests of the pipeline; the
        resulting numbers are meaningless). The environment variable
        ``WGANBOOK_RANDOM_INCEPTION=1`` (``metrics.RANDOM_INCEPTION_ENV``) forces it for every
        instance -- for tests that run notebooks in other processes (``tests/test_full_preset.py``);
        the instance's ``name`` is then ``"inception-pool3-RANDOM-WEIGHTS"``.

    Raises
    ------
    RuntimeError
        When no weights are available (offline, nothing cached): the message says where to put
        the file and how to download it.
    """

    dim = 2048

    def __init__(
        self, weights_path=None, device="auto", batch_size: int = 50, download: bool = True, random_init: bool = False
    ):
        import pytorch_fid.inception as fid_inception

        self.device = _resolve(device)
        self.batch_size = int(batch_size)
        self.name = "inception-pool3"
        if os.environ.get(RANDOM_INCEPTION_ENV, "") not in ("", "0"):
            random_init = True
        if random_init:
            self.name = "inception-pool3-RANDOM-WEIGHTS"  # not comparable with any FID
        self.random_init = bool(random_init)
        state = None
        if not random_init:
            state = self._load_state(weights_path, download, fid_inception.FID_WEIGHTS_URL)

        def build():
            net = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
            net.Mixed_5b = fid_inception.FIDInceptionA(192, pool_features=32)
            net.Mixed_5c = fid_inception.FIDInceptionA(256, pool_features=64)
            net.Mixed_5d = fid_inception.FIDInceptionA(288, pool_features=64)
            net.Mixed_6b = fid_inception.FIDInceptionC(768, channels_7x7=128)
            net.Mixed_6c = fid_inception.FIDInceptionC(768, channels_7x7=160)
            net.Mixed_6d = fid_inception.FIDInceptionC(768, channels_7x7=160)
            net.Mixed_6e = fid_inception.FIDInceptionC(768, channels_7x7=192)
            net.Mixed_7b = fid_inception.FIDInceptionE_1(1280)
            net.Mixed_7c = fid_inception.FIDInceptionE_2(2048)
            if state is not None:
                net.load_state_dict(state)
            return net

        original = fid_inception.fid_inception_v3
        fid_inception.fid_inception_v3 = build  # InceptionV3 looks the builder up at call time
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
        finally:
            fid_inception.fid_inception_v3 = original
        self.model = model.to(self.device).eval()

    @staticmethod
    def _load_state(weights_path, download, url):
        if weights_path is not None:
            path = Path(weights_path).expanduser()
            if not path.is_file():
                raise RuntimeError(
                    f"weights_path {str(path)!r} does not exist; download pytorch-fid's Inception weights from {url}"
                )
            return torch.load(path, map_location="cpu", weights_only=True)
        hub = Path(torch.hub.get_dir()) / "checkpoints" / _FID_WEIGHTS_FILE
        if hub.is_file():
            return torch.load(hub, map_location="cpu", weights_only=True)
        help_text = (
            f"pytorch-fid's Inception weights are not available. Download {url} (e.g. "
            f'`python -c "import pytorch_fid.inception as i; i.fid_inception_v3()"` on a '
            f"machine with internet) and either place the file at {hub} (the torch-hub "
            f"cache, $TORCH_HOME/hub/checkpoints/) or pass InceptionFeatures("
            f"weights_path='.../{_FID_WEIGHTS_FILE}')."
        )
        if not download:
            raise RuntimeError(help_text)
        try:
            return torch.hub.load_state_dict_from_url(url, progress=False, map_location="cpu")
        except Exception as exc:  # offline: URLError, HTTPError, socket errors ...
            raise RuntimeError(help_text + f" (download failed: {type(exc).__name__})") from exc

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """Pool3 features of images in [-1, 1].

        Parameters
        ----------
        images : torch.Tensor, shape (N, C, H, W)
            Images in [-1, 1], C in {1, 3}.

        Returns
        -------
        numpy.ndarray, shape (N, 2048)
            Features in float64.
        """
        out = []
        for i in range(0, images.shape[0], self.batch_size):
            x = _to_unit_rgb(images[i : i + self.batch_size]).to(self.device)
            out.append(self.model(x)[0].flatten(1).double().cpu())
        return torch.cat(out).numpy()


class _SmallCNN(nn.Module):
    """conv w -> conv 2w /2 -> conv 4w /2 -> global average -> 4w (features) -> classes."""

    def __init__(self, channels: int, n_classes: int, width: int = 16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * width, 4 * width),
            nn.ReLU(),
        )
        self.head = nn.Linear(4 * width, n_classes)

    def forward(self, x):
        return self.head(self.body(x))


# epochs per dataset: digits trains in a few seconds on a CPU
_CLASSIFIER_EPOCHS = {"digits": 40, "mnist": 2, "fashion-mnist": 3, "cifar10": 10}
_CLASSIFIER_WIDTH = {"digits": 16, "mnist": 32, "fashion-mnist": 32, "cifar10": 32}
_CLASSIFIER_VERSION = 2
_DIGITS_TEST_SHARE = 0.2


def _classifier_split(wdata, dataset: str, root):
    """Training and test images of the classifier: the dataset's own split, or for ``digits``
    (no test split) a fixed random 80/20 split (seed 0)."""
    if dataset == "digits":
        x, y = wdata.load_images(dataset, root=root, train=True)
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
        n_test = int(round(_DIGITS_TEST_SHARE * x.shape[0]))
        te, tr = perm[:n_test], perm[n_test:]
        return x[tr], y[tr], x[te], y[te]
    x, y = wdata.load_images(dataset, root=root, train=True)
    xt, yt = wdata.load_images(dataset, root=root, train=False)
    return x, y, xt, yt


def reference_images(dataset: str, n: int, root=None) -> torch.Tensor:
    """Real images that generated samples are compared with by :func:`sample_quality`.

    The first ``n`` images of the test split in a fixed random order (seed 0); ``digits`` has no
    test split, so its reference is the whole dataset (like FIDs computed against training
    statistics).

    Parameters
    ----------
    dataset : str
        Image dataset name.
    n : int
        Maximum number of images.
    root : str, optional
        Data folder for ``wganbook.data.load_images``.

    Returns
    -------
    torch.Tensor
        ``min(n, N)`` images in [-1, 1].
    """

    x, _ = wdata.load_images(dataset, root=root, train=(dataset == "digits"))
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    return x[perm[:n]]


_CLASSIFIER_MEMORY: dict = {}


class ClassifierFeatures:
    r"""Penultimate-layer features of a small CNN trained on the dataset itself.

    The network (three 3x3 convolutions with ReLU of widths w, 2w, 4w, global average pooling,
    a 4w-unit ReLU layer = the features, a linear classifier; w = 16 for digits, 32 otherwise) is trained with Adam (lr 1e-3, batch 128, cross-entropy)
    on the training split, from a fixed seed, on the CPU unless ``device`` says otherwise. Global
    random state is left untouched. The trained weights are cached in memory and on disk
    (:func:`cache_dir`), so later calls are instant and give identical features.

    The Fréchet distance in this space ("FD-classifier") ranks generators of the same dataset;
    it is **not comparable with published FIDs** (different network, feature dimension and
    sample counts).

    Parameters
    ----------
    dataset : str
        An image dataset name of ``wganbook.data.IMAGE_DATASETS``.
    seed : int, optional
        Seed of the initialisation and of the minibatch order.
    epochs : int, optional
        Training epochs; default depends on the dataset (digits: 40).
    device : str, optional
        Device for training and features (``"cpu"`` by default for reproducible numbers).
    root : str, optional
        Data folder passed to ``wganbook.data.load_images``.
    cache : bool, optional
        Use the on-disk cache.

    Attributes
    ----------
    test_accuracy : float
        Accuracy on the held-out split (``train=False``).
    dim : int
        Feature dimension (64 for digits, 128 otherwise).
    """

    def __init__(
        self, dataset: str, seed: int = 0, epochs: Optional[int] = None, device="cpu", root=None, cache: bool = True
    ):

        if dataset not in wdata.IMAGE_DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; dataset must be one of: {', '.join(wdata.IMAGE_DATASETS)}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self.dataset = dataset
        self.seed = seed
        self.epochs = int(epochs if epochs is not None else _CLASSIFIER_EPOCHS.get(dataset, 5))
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        self.device = _resolve(device)
        self.name = f"classifier-{dataset}"
        key = (dataset, seed, self.epochs, _CLASSIFIER_VERSION)
        fname = f"classifier-{dataset}-seed{seed}-ep{self.epochs}-v{_CLASSIFIER_VERSION}.pt"
        entry = _CLASSIFIER_MEMORY.get(key)
        if entry is None and cache:
            path = cache_dir() / fname
            if path.is_file():
                try:
                    entry = torch.load(path, map_location="cpu", weights_only=True)
                except Exception:  # corrupt cache file: retrain
                    entry = None
        if entry is None:
            entry = self._train(wdata, root)
            if cache:
                self._save(entry, cache_dir() / fname)
        _CLASSIFIER_MEMORY[key] = entry
        shape = wdata.image_shape(dataset)
        with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten anyway
            self.model = _SmallCNN(shape[0], entry["n_classes"], width=entry["width"])
        self.dim = 4 * entry["width"]
        self.model.load_state_dict(entry["state"])
        self.model.to(self.device).eval()
        self.test_accuracy = float(entry["test_accuracy"])

    def _train(self, wdata, root) -> dict:
        x, y, xt, yt = _classifier_split(wdata, self.dataset, root)
        n_classes = int(max(int(y.max()), int(yt.max())) + 1)
        dev = self.device
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            width = _CLASSIFIER_WIDTH.get(self.dataset, 32)
            net = _SmallCNN(x.shape[1], n_classes, width=width).to(dev)
        gen = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        threads = torch.get_num_threads()
        if dev.type == "cpu" and self.dataset == "digits":
            torch.set_num_threads(1)  # tiny convolutions: one thread is faster on a busy machine
        try:
            self._fit(net, opt, gen, x, y, dev)
        finally:
            torch.set_num_threads(threads)
        net.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, xt.shape[0], 1000):
                pred = net(xt[i : i + 1000].to(dev)).argmax(1).cpu()
                correct += int((pred == yt[i : i + 1000]).sum())
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        return {"state": state, "n_classes": n_classes, "width": width, "test_accuracy": correct / max(1, xt.shape[0])}

    def _fit(self, net, opt, gen, x, y, dev) -> None:
        x, y = x.to(dev), y.to(dev)
        bs = 128
        net.train()
        for _ in range(self.epochs):
            perm = torch.randperm(x.shape[0], generator=gen).to(dev)
            for i in range(0, x.shape[0], bs):
                idx = perm[i : i + bs]
                loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

    @staticmethod
    def _save(entry: dict, path: Path) -> None:
        try:
            atomic_write(path, lambda f: torch.save(entry, f))
        except OSError:  # read-only home: the in-memory cache still works
            pass

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """Penultimate-layer features of images in [-1, 1].

        Parameters
        ----------
        images : torch.Tensor, shape (N, C, H, W)
            Images of the classifier's dataset, in [-1, 1].

        Returns
        -------
        numpy.ndarray, shape (N, dim)
            Features in float64.
        """
        if images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
        out = []
        for i in range(0, images.shape[0], 1000):
            x = images[i : i + 1000].to(self.device, torch.float32)
            out.append(self.model.body(x).double().cpu())
        return torch.cat(out).numpy()


@torch.no_grad()
def generate(generator: nn.Module, n: int, seed: int = 0, device=None, batch_size: int = 1000) -> torch.Tensor:
    r"""Draw ``n`` samples :math:`G(z)`, :math:`z \sim p_z`, from a seeded CPU noise stream.

    Buffers (e.g. BatchNorm running statistics) are restored afterwards, so sampling has no side
    effect on the generator; the global random state is not used.

    Parameters
    ----------
    generator : torch.nn.Module
        A generator with ``sample_z(n, generator=None, device=None)`` or a ``z_dim`` attribute.
    n : int
        Number of samples.
    seed : int, optional
        Seed of the noise.
    device : torch.device, optional
        Where to run the generator (default: where its parameters are).
    batch_size : int, optional
        Samples per forward pass.

    Returns
    -------
    torch.Tensor
        ``n`` samples on the CPU.
    """
    if device is None:
        p = next(generator.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    gen = torch.Generator().manual_seed(int(seed))
    buffers = {k: v.clone() for k, v in generator.named_buffers()}
    out = []
    try:
        for i in range(0, n, batch_size):
            m = min(batch_size, n - i)
            z = sample_noise(generator, m, gen, torch.device("cpu")).to(device)
            out.append(generator(z).detach().cpu())
    finally:
        if buffers:
            named = dict(generator.named_buffers())
            for k, v in buffers.items():
                named[k].copy_(v)
    return torch.cat(out) if out else torch.empty(0)


_REAL_STATS: dict = {}


def sample_quality(
    generator: nn.Module, dataset: str, n: int = 1000, features=None, seed: int = 0, device=None, root=None
) -> float:
    r"""Fréchet distance between generated and held-out real images in a feature space.

    .. math::

        \mathrm{FD} = \lVert \mu_g - \mu_r \rVert_2^2
          + \operatorname{Tr}\bigl(\Sigma_g + \Sigma_r - 2 (\Sigma_g \Sigma_r)^{1/2}\bigr)

    where :math:`(\mu_g, \Sigma_g)` are the feature statistics of ``n`` samples of the generator
    and :math:`(\mu_r, \Sigma_r)` those of (up to) ``n`` held-out real images
    (``load_images(dataset, train=False)``, the first ``n``). By default the features are those of
    ``ClassifierFeatures(dataset)`` ("FD-classifier", not comparable with published FIDs); pass an
    ``InceptionFeatures`` for the FID.

    Parameters
    ----------
    generator : torch.nn.Module
        Image generator (outputs in [-1, 1]).
    dataset : str
        Image dataset name.
    n : int, optional
        Number of generated samples (and at most that many real ones).
    features : callable, optional
        ``images -> (N, d) features``; default ``ClassifierFeatures(dataset)``.
    seed : int, optional
        Seed of the generator's noise.
    device : torch.device, optional
        Where to run the generator.
    root : str, optional
        Data folder for ``load_images``.

    Returns
    -------
    float
        The Fréchet distance (lower is better).
    """

    if dataset not in wdata.IMAGE_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; dataset must be one of: {', '.join(wdata.IMAGE_DATASETS)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    if features is None:
        features = ClassifierFeatures(dataset, root=root)
    key = (id(features), dataset, n, str(root))
    stats = _REAL_STATS.get(key)
    if stats is None or stats[0] is not features:
        stats = (features, feature_statistics(features(reference_images(dataset, n, root=root))))
        _REAL_STATS[key] = stats
    mu_r, s_r = stats[1]
    fake = generate(generator, n, seed=seed, device=device)
    mu_g, s_g = feature_statistics(features(fake))
    return gaussian_frechet(mu_g, s_g, mu_r, s_r)


# ---------------------------------------------------------------------------------------------
# 2-D toys
# ---------------------------------------------------------------------------------------------
def mode_centres(dataset: str) -> tuple:
    r"""Centres and standard deviation of the Gaussian-mixture toys of ``gan_toy.py``.

    8 Gaussians: :math:`\tfrac{2}{1.414}(\cos\tfrac{k\pi}{4}, \sin\tfrac{k\pi}{4})`, std
    :math:`0.02 / 1.414`. 25 Gaussians: :math:`\{-4,-2,0,2,4\}^2 / 2.828`, std :math:`0.05 / 2.828`
    (``wganbook.data.toy_modes`` and ``toy_std``).

    Parameters
    ----------
    dataset : str
        ``"8gaussians"`` or ``"25gaussians"``.

    Returns
    -------
    tuple
        ``(centres, std)``: a float32 tensor (K, 2) and a float.
    """

    if dataset not in MODE_DATASETS:
        raise ValueError(
            f"dataset {dataset!r} has no discrete modes; dataset must be one of: {', '.join(MODE_DATASETS)}"
        )
    return wdata.toy_modes(dataset), float(wdata.toy_std(dataset))


def mode_coverage(
    samples: torch.Tensor,
    dataset: str,
    std_threshold: float = 3.0,
    min_share: float = 0.2,
    radius: Optional[float] = None,
) -> dict:
    r"""Modes of a Gaussian-mixture toy that a sample covers, and the share of high-quality samples.

    Two separate questions, with centres :math:`c_1..c_K`, per-coordinate std :math:`\sigma` and
    :math:`k(x)` the nearest centre of :math:`x`:

    * **quality** (the usual protocol of mode-collapse studies): :math:`x` is *high quality* when
      :math:`\lVert x - c_{k(x)} \rVert_2 \le t\,\sigma` with :math:`t` = ``std_threshold`` = 3;
      ``"high_quality"`` is the share of such samples (0.989 for samples of the target itself,
      since :math:`P(\lVert \mathcal N(0, \sigma^2 I_2) \rVert \le 3\sigma) = 1 - e^{-9/2}`);
    * **coverage** (mode collapse, independent of sharpness): mode :math:`k` is *covered* when at
      least

      .. math::

          m = \max\bigl(1, \lceil s \cdot n / K \rceil\bigr)

      of the ``n`` samples lie within ``radius`` :math:`r` of :math:`c_k`, i.e. a share
      :math:`s` = ``min_share`` (default 0.2) of what a perfect generator puts there. The default
      radius is a quarter of the smallest distance between two centres (0.27 for 8 Gaussians,
      0.18 for 25 Gaussians): a sample counted for a mode is unambiguously *at* that mode, while
      a generator whose modes are still blurred counts as covering them. These two thresholds
      are our choice; pass ``radius=3 * std`` to count only high-quality samples.

    Parameters
    ----------
    samples : torch.Tensor, shape (n, 2)
        Generated points.
    dataset : str
        ``"8gaussians"`` or ``"25gaussians"``.
    std_threshold : float, optional
        :math:`t` of the quality criterion.
    min_share : float, optional
        :math:`s` (0 counts a mode with a single sample within the radius as covered).
    radius : float, optional
        :math:`r` of the coverage criterion (default: a quarter of the smallest centre spacing).

    Returns
    -------
    dict
        ``{"modes": covered modes (int), "high_quality": share of high-quality samples (float),
        "total_modes": K, "counts": samples within the radius, per mode (list of int),
        "hq_counts": high-quality samples per mode (list of int)}``.
    """
    centres, std = mode_centres(dataset)
    x = (
        samples.detach().to("cpu", torch.float32)
        if isinstance(samples, torch.Tensor)
        else torch.as_tensor(np.asarray(samples), dtype=torch.float32)
    )
    if x.ndim != 2 or x.shape[1] != 2 or x.shape[0] < 1:
        raise ValueError(f"samples must have shape (n, 2) with n >= 1, got {tuple(x.shape)}")
    if std_threshold <= 0:
        raise ValueError(f"std_threshold must be > 0, got {std_threshold}")
    if min_share < 0:
        raise ValueError(f"min_share must be >= 0, got {min_share}")
    c = centres.double()
    if radius is None:
        gaps = torch.cdist(c, c) + torch.eye(c.shape[0], dtype=c.dtype) * 1e9
        radius = float(gaps.min()) / 4.0
    if radius <= 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    d_min, nearest = torch.cdist(x.double(), c).min(dim=1)
    k = c.shape[0]
    good = d_min <= std_threshold * std
    near = d_min <= radius
    hq_counts = torch.bincount(nearest[good], minlength=k)
    counts = torch.bincount(nearest[near], minlength=k)
    need = max(1, math.ceil(min_share * x.shape[0] / k))
    return {
        "modes": int((counts >= need).sum()),
        "high_quality": float(good.double().mean()),
        "total_modes": int(k),
        "counts": [int(v) for v in counts],
        "hq_counts": [int(v) for v in hq_counts],
    }


def w1_to_target(samples: torch.Tensor, dataset: str, n: Optional[int] = None, seed: int = 12345) -> float:
    r"""Exact W1 between samples and fresh samples of a 2-D toy target.

    .. math::

        W_1(\hat P_g, \hat P_r) = \min_{\pi \in \Pi(\hat P_g, \hat P_r)}
            \sum_{ij} \pi_{ij} \lVert x_i - y_j \rVert_2

    with the empirical measures of the first ``n`` samples and ``n`` target samples drawn by
    ``wganbook.data.sample_toy(dataset, n, seed=seed)`` (a fixed seed, so that values along a
    training run are comparable). Even a perfect generator has a positive value (finite-sample
    bias).

    Parameters
    ----------
    samples : torch.Tensor, shape (m, 2)
        Generated points.
    dataset : str
        A toy dataset name.
    n : int, optional
        Number of points per side (default all samples, at most 2048).
    seed : int, optional
        Seed of the target samples.

    Returns
    -------
    float
        Exact minibatch W1 (Euclidean ground cost).
    """

    if dataset not in wdata.TOY_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; dataset must be one of: {', '.join(wdata.TOY_DATASETS)}")
    x = samples.detach().to("cpu", torch.float32)
    n = min(x.shape[0], 2048) if n is None else int(n)
    if n < 1 or n > x.shape[0]:
        raise ValueError(f"n must be in [1, {x.shape[0]}], got {n}")
    y = wdata.sample_toy(dataset, n, seed=seed)
    return float(w1(x[:n], y))


def concentration(samples: torch.Tensor, radius: float) -> float:
    r"""Largest share of the samples within ``radius`` of one of them: 1 for a delta, ~0 when spread.

    .. math::

        \operatorname{conc}_r(x_1..x_n) = \max_i \frac1n \#\{j : \lVert x_j - x_i\rVert_2 \le r\}

    A generator collapsed onto one point scores 1; onto :math:`k` equally weighted points more
    than :math:`r` apart, :math:`1/k`; a perfect 8-Gaussians generator with :math:`r` below the
    distance between modes, about :math:`1/8`.

    Parameters
    ----------
    samples : torch.Tensor, shape (n, ...)
        Points (flattened per sample).
    radius : float
        :math:`r \ge 0`.

    Returns
    -------
    float
        In :math:`[1/n, 1]`.
    """
    if not isinstance(samples, torch.Tensor) or samples.dim() < 2 or samples.shape[0] < 1:
        raise ValueError("samples must be a torch.Tensor of shape (n, ...) with n >= 1")
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not radius >= 0 or not np.isfinite(radius):
        raise ValueError(f"radius must be a finite float >= 0, got {radius!r}")
    x = samples.detach().to("cpu", torch.float64).reshape(samples.shape[0], -1)
    d = torch.cdist(x, x)
    return float((d <= float(radius)).double().mean(1).max())


def real_reference_distance(dataset: str, images: torch.Tensor, n: int, features, seed: int = 1):
    r"""Fréchet distance of real images *not* in the reference set to the reference set.

    ``wganbook.metrics.sample_quality`` compares ``n`` generated images with
    ``reference_images(dataset, n)``. This computes the same distance for up to ``n`` real images
    of ``images`` that do not occur in that reference (exact pixel match), drawn in a seeded random
    order: the score of a generator that samples the data distribution perfectly, up to the
    sample-size bias of the Fréchet distance. For ``digits`` (whose reference is drawn from the
    same 1797 images) only the images left over are available.

    Parameters
    ----------
    dataset : str
        Image dataset name.
    images : torch.Tensor
        Real images ``(N, C, H, W)`` (e.g. ``load_images(dataset)[0]``).
    n : int
        Size of the reference set (as in ``sample_quality``).
    features : callable
        ``images -> (N, d)`` features.
    seed : int, optional
        Seed of the random order.

    Returns
    -------
    (float, int)
        The distance and the number of real images used.
    """

    ref = reference_images(dataset, n)
    keys = {row.numpy().tobytes() for row in ref.reshape(ref.shape[0], -1).float()}
    flat = images.reshape(images.shape[0], -1).float()
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    idx = [int(i) for i in order if flat[i].numpy().tobytes() not in keys][:n]
    if len(idx) < 2:
        raise ValueError(f"fewer than 2 images of {dataset!r} lie outside its reference set")
    return frechet_distance(features(images[idx]), features(ref)), len(idx)

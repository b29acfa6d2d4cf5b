r"""Seeding, 2-D toy distributions and image datasets.

Toy samplers follow the WGAN-GP toy script ``gan_toy.py`` (Gulrajani et al., 2017)
and return ``(n, 2)`` float32 tensors. Image loaders return float32 tensors
``(N, C, H, W)`` scaled to :math:`[-1, 1]` and int64 labels.

``"digits"`` ships with scikit-learn and always works offline. ``"mnist"``,
``"fashion-mnist"`` and ``"cifar10"`` are read through torchvision from
``root`` (default: the environment variable ``WGANBOOK_DATA``, else
``~/.cache/wganbook/data``); when they are absent a ``DatasetMissingError``
explains how to get them.
"""

from __future__ import annotations

import math
import numbers
import os
import pickle
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from wganbook._util import Int, check_value

__all__ = [
    "TOY_DATASETS",
    "IMAGE_DATASETS",
    "seed_everything",
    "toy_modes",
    "toy_std",
    "is_toy",
    "sample_toy",
    "DatasetMissingError",
    "image_shape",
    "default_root",
    "load_images",
    "class_split",
]

#: Names of the 2-D toy distributions accepted by ``sample_toy``.
TOY_DATASETS = ("8gaussians", "25gaussians", "swissroll", "parallel-lines")
#: Names of the image datasets accepted by ``load_images``.
IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")

_IMAGE_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32)}

# gan_toy.py constants
_SCALE_8 = 2.0
_DIV_8 = 1.414
_STD_8 = 0.02
_DIV_25 = 2.828
_STD_25 = 0.05
_SWISS_NOISE = 0.25
_DIV_SWISS = 7.5


# ----------------------------------------------------------------------------------------
# seeding
# ----------------------------------------------------------------------------------------
def _check_seed(seed, name="seed"):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative int; got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"{name} must be an int in [0, 2**32 - 1]; got {seed}")
    return seed


def seed_everything(seed: int) -> torch.Generator:
    r"""Seed every random number generator the book uses and return a torch generator.

    Seeds Python's ``random``, NumPy's global generator, torch's CPU generator and,
    when CUDA is available, every CUDA generator. A run that draws all its
    randomness after this call is deterministic on CPU.

    Parameters
    ----------
    seed : int
        A non-negative integer below :math:`2^{32}` (NumPy's limit).

    Returns
    -------
    torch.Generator
        A fresh CPU generator seeded with ``seed``, for code that prefers an explicit
        generator over the global one.

    Examples
    --------
    >>> import torch
    >>> a = torch.rand(2, generator=seed_everything(0))
    >>> b = torch.rand(2, generator=seed_everything(0))
    >>> bool((a == b).all())
    True
    """
    seed = _check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


# ----------------------------------------------------------------------------------------
# 2-D toys
# ----------------------------------------------------------------------------------------
def _check_name(name, allowed, what):
    if not isinstance(name, str) or name not in allowed:
        raise ValueError(f"unknown {what} {name!r}; {what} must be one of: {', '.join(allowed)}")
    return name


def _modes_8() -> torch.Tensor:
    r = 1.0 / math.sqrt(2.0)
    centers = [(1, 0), (-1, 0), (0, 1), (0, -1), (r, r), (r, -r), (-r, r), (-r, -r)]
    return torch.tensor(centers, dtype=torch.float64) * _SCALE_8


def _modes_25() -> torch.Tensor:
    return torch.tensor([(2.0 * i, 2.0 * j) for i in range(-2, 3) for j in range(-2, 3)], dtype=torch.float64)


def toy_modes(name: str) -> torch.Tensor:
    r"""Centres of the Gaussian mixtures, in the scaled coordinates of ``sample_toy``.

    * ``"8gaussians"``: :math:`2\,(\cos\frac{k\pi}{4}, \sin\frac{k\pi}{4}) / 1.414`,
      in the order of ``gan_toy.py``: :math:`(\pm1, 0)`, :math:`(0, \pm1)`, then the
      diagonals :math:`(\pm\frac{1}{\sqrt2}, \pm\frac{1}{\sqrt2})`, each times 2.
    * ``"25gaussians"``: the grid :math:`\{-4, -2, 0, 2, 4\}^2 / 2.828`.

    Parameters
    ----------
    name : str
        ``"8gaussians"`` or ``"25gaussians"``.

    Returns
    -------
    torch.Tensor, shape (K, 2)
        Float32 centres (``K = 8`` or ``25``).
    """
    _check_name(name, ("8gaussians", "25gaussians"), "mixture")
    modes = _modes_8() / _DIV_8 if name == "8gaussians" else _modes_25() / _DIV_25
    return modes.to(torch.float32)


def toy_std(name: str) -> float:
    r"""Per-coordinate standard deviation of each mixture component after scaling.

    ``"8gaussians"``: :math:`0.02 / 1.414`; ``"25gaussians"``: :math:`0.05 / 2.828`.

    Parameters
    ----------
    name : str
        ``"8gaussians"`` or ``"25gaussians"``.

    Returns
    -------
    float
    """
    _check_name(name, ("8gaussians", "25gaussians"), "mixture")
    return _STD_8 / _DIV_8 if name == "8gaussians" else _STD_25 / _DIV_25


def is_toy(name: str) -> bool:
    """Whether ``name`` is a 2-D toy dataset (``True``) or an image dataset (``False``).

    Parameters
    ----------
    name : str
        One of ``TOY_DATASETS`` or ``IMAGE_DATASETS``.

    Returns
    -------
    bool
    """
    _check_name(name, TOY_DATASETS + IMAGE_DATASETS, "dataset")
    return name in TOY_DATASETS


def _check_n(n):
    return int(check_value("n", n, Int(lo=1)))


def sample_toy(name: str, n: int, seed: int | None = None, theta: float = 0.0, generator=None) -> torch.Tensor:
    r"""Draw ``n`` points from a 2-D toy distribution (settings of ``gan_toy.py``).

    * ``"8gaussians"``: a uniformly chosen centre :math:`2 c_k` with
      :math:`c_k \in \{(\pm1, 0), (0, \pm1), (\pm\tfrac{1}{\sqrt2}, \pm\tfrac{1}{\sqrt2})\}`,
      plus :math:`\mathcal N(0, 0.02^2 I)` noise, all divided by 1.414.
    * ``"25gaussians"``: a uniformly chosen grid point of :math:`\{-4, -2, 0, 2, 4\}^2`
      plus :math:`\mathcal N(0, 0.05^2 I)` noise, divided by 2.828. ``gan_toy.py`` draws
      one fixed set of 100,000 such points and cycles through it; here every call
      samples fresh points from the same distribution.
    * ``"swissroll"``: ``sklearn.datasets.make_swiss_roll(n, noise=0.25)``, columns
      0 and 2, divided by 7.5 (its ``random_state`` is drawn from the torch generator,
      so the result is deterministic).
    * ``"parallel-lines"``: :math:`(\theta, Z)` with :math:`Z \sim U[0, 1]` (WGAN's
      Example 1; :math:`\theta = 0` is the target line :math:`P_0`).

    Parameters
    ----------
    name : str
        One of ``TOY_DATASETS``.
    n : int
        Number of points (positive).
    seed : int, optional
        Seed of a private generator; the same seed gives the same points.
    theta : float, optional
        Offset of the line for ``"parallel-lines"``; must be 0 for the other datasets.
    generator : torch.Generator, optional
        Explicit CPU generator to draw from (mutually exclusive with ``seed``). With
        neither, torch's global generator is used (seeded by ``seed_everything``).

    Returns
    -------
    torch.Tensor, shape (n, 2)
        Float32 samples.
    """
    _check_name(name, TOY_DATASETS, "toy dataset")
    n = _check_n(n)
    if isinstance(theta, torch.Tensor):
        theta = float(theta)
    if isinstance(theta, bool) or not isinstance(theta, numbers.Real) or not math.isfinite(theta):
        raise TypeError(f"theta must be a finite real number; got {theta!r}")
    if name != "parallel-lines" and theta != 0:
        raise ValueError(f"theta is only used by 'parallel-lines'; got theta={theta} for {name!r}")
    if seed is not None and generator is not None:
        raise ValueError("pass either seed or generator, not both")
    if seed is not None:
        generator = torch.Generator().manual_seed(_check_seed(seed))
    elif generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator; got {type(generator).__name__}")
    g = generator

    if name in ("8gaussians", "25gaussians"):
        modes = _modes_8() if name == "8gaussians" else _modes_25()
        std, div = (_STD_8, _DIV_8) if name == "8gaussians" else (_STD_25, _DIV_25)
        idx = torch.randint(0, modes.shape[0], (n,), generator=g)
        noise = torch.randn(n, 2, generator=g, dtype=torch.float64) * std
        out = (modes[idx] + noise) / div
    elif name == "swissroll":
        from sklearn.datasets import make_swiss_roll

        state = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
        pts = make_swiss_roll(n_samples=n, noise=_SWISS_NOISE, random_state=state)[0]
        out = torch.from_numpy(pts[:, [0, 2]] / _DIV_SWISS)
    else:  # parallel-lines
        z = torch.rand(n, generator=g, dtype=torch.float64)
        out = torch.stack([torch.full_like(z, float(theta)), z], dim=1)
    return out.to(torch.float32).contiguous()


# ----------------------------------------------------------------------------------------
# images
# ----------------------------------------------------------------------------------------
class DatasetMissingError(FileNotFoundError):
    """An image dataset is not on disk (and could not be downloaded).

    The message names the dataset, the directory searched, and the three ways out:
    ``download=True`` on a machine with internet access, copying the files under
    ``root``, or using ``"digits"``, which works offline.

    Attributes
    ----------
    dataset : str
        The requested dataset name.
    root : str
        The directory that was searched.
    """

    def __init__(self, message: str, dataset: str = "", root: str = ""):
        super().__init__(message)
        self.dataset = dataset
        self.root = root

    def __str__(self) -> str:  # FileNotFoundError would otherwise prefix an errno
        return self.args[0]


def image_shape(name: str) -> tuple:
    """Shape ``(C, H, W)`` of one image of an image dataset.

    ``digits`` (1, 8, 8); ``mnist`` and ``fashion-mnist`` (1, 28, 28); ``cifar10`` (3, 32, 32).

    Parameters
    ----------
    name : str
        One of ``IMAGE_DATASETS``.

    Returns
    -------
    tuple of int
    """
    _check_name(name, IMAGE_DATASETS, "image dataset")
    return _IMAGE_SHAPES[name]


def default_root() -> Path:
    """Default directory of the downloadable image datasets.

    The environment variable ``WGANBOOK_DATA`` when set, else ``~/.cache/wganbook/data``.

    Returns
    -------
    pathlib.Path
    """
    env = os.environ.get("WGANBOOK_DATA")
    return Path(env).expanduser() if env else Path("~/.cache/wganbook/data").expanduser()


def _torchvision_spec(name):
    """(dataset class, folder created under root, files the loader needs)."""
    from torchvision import datasets

    if name in ("mnist", "fashion-mnist"):
        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
        folder = cls.__name__
        files = [
            f"{folder}/raw/{p}-{k}-idx{d}-ubyte" for p in ("train", "t10k") for k, d in (("images", 3), ("labels", 1))
        ]
    else:
        cls = datasets.CIFAR10
        folder = cls.base_folder
        files = [f"{folder}/{f}" for f, _ in cls.train_list + cls.test_list] + [f"{folder}/{cls.meta['filename']}"]
    return cls, folder, files


def _missing_message(name, root, files, reason=""):
    listing = ", ".join(files)
    text = (
        f"image dataset {name!r} is missing or unreadable under {root}"
        + (f" ({reason})" if reason else "")
        + f". torchvision expects: {listing}. To get it, either call "
        f"load_images({name!r}, download=True) on a machine with internet access, "
        f"or copy those files under root (pass root=... or set the WGANBOOK_DATA environment variable), "
        f"or use dataset='digits', which ships with scikit-learn and works offline."
    )
    return text


def _download(name, root: Path, train: bool):
    """Download into a temporary directory inside ``root``; move only complete files."""
    cls, folder, _ = _torchvision_spec(name)
    created = []
    for parent in reversed([root, *root.parents]):
        if not parent.exists():
            created.append(parent)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wganbook-download-", dir=root))
    ok = False
    try:
        cls(str(tmp), train=train, download=True)
        src_root = tmp / folder
        for src in sorted(src_root.rglob("*")):
            if src.is_dir() or src.suffix in (".gz", ".tgz", ".zip"):
                continue
            dst = root / folder / src.relative_to(src_root)
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
        ok = True
    except Exception as err:  # network errors come as URLError, RuntimeError, OSError, ...
        raise DatasetMissingError(
            _missing_message(name, root, _torchvision_spec(name)[2], f"download failed: {err}"), name, str(root)
        ) from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not ok:
            for d in reversed(created):  # deepest first; only directories this call created
                try:
                    d.rmdir()
                except OSError:
                    break


# what torchvision raises for absent (RuntimeError) or unreadable files (truncated idx files
# fail assertions, broken pickles raise UnpicklingError/EOFError, ...)
_UNREADABLE = (RuntimeError, AssertionError, ValueError, TypeError, EOFError, pickle.UnpicklingError)


#: Environment variable for tests only: ``1`` skips torchvision's md5 checks of the CIFAR-10
#: files (only that the files exist is checked), so that small fake files in CIFAR-10's on-disk
#: format load (``tests/test_full_preset.py``). Never set it for real data: a damaged real file
#: would then be read as it is.
SKIP_CHECKSUMS_ENV = "WGANBOOK_SKIP_CHECKSUMS"


def _unchecked(cls):
    """``cls`` with its md5 checks replaced by existence checks (CIFAR-10; see SKIP_CHECKSUMS_ENV)."""

    class Unchecked(cls):
        def _check_integrity(self):
            return all(
                os.path.isfile(os.path.join(self.root, self.base_folder, f))
                for f, _ in self.train_list + self.test_list
            )

        def _load_meta(self):
            path = os.path.join(self.root, self.base_folder, self.meta["filename"])
            if not os.path.isfile(path):
                raise RuntimeError("Dataset metadata file not found")
            with open(path, "rb") as infile:
                meta = pickle.load(infile, encoding="latin1")
            self.classes = meta[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return Unchecked


def _open_torchvision(cls, name, root, train, files):
    if os.environ.get(SKIP_CHECKSUMS_ENV, "") not in ("", "0") and hasattr(cls, "train_list"):
        cls = _unchecked(cls)
    try:
        return cls(str(root), train=train, download=False)
    except _UNREADABLE as err:
        reason = f"torchvision: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
        raise DatasetMissingError(_missing_message(name, root, files, reason), name, str(root)) from err


def _load_torchvision(name, root: Path, download: bool, train: bool):
    cls, _, files = _torchvision_spec(name)
    try:
        ds = _open_torchvision(cls, name, root, train, files)
    except DatasetMissingError:
        if not download:
            raise
        _download(name, root, train)
        ds = _open_torchvision(cls, name, root, train, files)
    data = ds.data
    if isinstance(data, np.ndarray):  # CIFAR: (N, H, W, C) uint8
        images = torch.from_numpy(np.ascontiguousarray(data.transpose(0, 3, 1, 2)))
    else:  # MNIST: (N, H, W) uint8 tensor
        images = data.unsqueeze(1)
    images = images.to(torch.float32) / 127.5 - 1.0
    labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
    return images, labels


def load_images(name: str, root=None, download: bool = False, train: bool = True):
    r"""Load an image dataset as float32 images in :math:`[-1, 1]` and int64 labels.

    Pixel values are mapped affinely onto :math:`[-1, 1]`:

    * ``"digits"`` (scikit-learn ``load_digits``, 1797 images of 8x8, values 0..16,
      offline): :math:`x / 8 - 1`. It has no test split: ``train=False`` raises.
    * ``"mnist"``, ``"fashion-mnist"`` (28x28, 1 channel) and ``"cifar10"`` (32x32,
      3 channels) through torchvision, uint8 values 0..255: :math:`x / 127.5 - 1`.

    Parameters
    ----------
    name : str
        One of ``IMAGE_DATASETS``.
    root : str or pathlib.Path, optional
        Directory holding torchvision's folders (``MNIST/raw``, ``FashionMNIST/raw``,
        ``cifar-10-batches-py``); defaults to ``default_root()``. Unused for ``"digits"``.
    download : bool, optional
        Download a missing dataset with torchvision. The download goes to a temporary
        directory inside ``root`` and only complete files are moved into place, so a
        failed download leaves nothing behind.
    train : bool, optional
        Training split (``True``) or test split (``False``).

    Returns
    -------
    images : torch.Tensor, shape (N, C, H, W)
        Float32 in :math:`[-1, 1]`.
    labels : torch.Tensor, shape (N,)
        Int64 class labels 0..9.

    Raises
    ------
    DatasetMissingError
        When a torchvision dataset is absent (or fails its integrity check) and
        ``download`` is false, or when the download fails.
    """
    _check_name(name, IMAGE_DATASETS, "image dataset")
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool; got {download!r}")
    if not isinstance(train, bool):
        raise TypeError(f"train must be a bool; got {train!r}")
    if name == "digits":
        if not train:
            raise ValueError("dataset 'digits' has no test split; use train=True and split it yourself")
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = torch.from_numpy(bunch.images.astype(np.float32)).unsqueeze(1) / 8.0 - 1.0
        return images.contiguous(), torch.as_tensor(bunch.target, dtype=torch.int64)
    if root is None:
        root = default_root()
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a str or path; got {type(root).__name__}")
    return _load_torchvision(name, Path(root).expanduser(), download, train)


def class_split(images, labels, classes):
    """The samples whose label is in ``classes``.

    Parameters
    ----------
    images : torch.Tensor, shape (N, ...)
        Samples.
    labels : torch.Tensor, shape (N,)
        Integer labels.
    classes : iterable of int
        Labels to keep, e.g. ``range(5)`` for digits 0-4.

    Returns
    -------
    images : torch.Tensor, shape (K, ...)
    labels : torch.Tensor, shape (K,)
        The kept samples, in their original order.
    """
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"labels must be 1-D with one label per image; got shape {tuple(labels.shape)} for {images.shape[0]} images"
        )
    try:
        keep = [int(c) for c in classes]
    except (TypeError, ValueError) as err:
        raise TypeError("classes must be an iterable of int labels") from err
    if not keep:
        raise ValueError("classes must not be empty")
    mask = torch.isin(labels, torch.as_tensor(keep, dtype=labels.dtype, device=labels.device))
    if not bool(mask.any()):
        present = sorted(set(labels.tolist()))
        raise ValueError(f"no sample has a label in classes={keep}; labels present: {present}")
    return images[mask.to(images.device)], labels[mask]

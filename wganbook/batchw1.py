r"""The minibatch Wasserstein-1 distance and its paradoxes (chapter 6).

A WGAN never sees the distributions it compares: every step compares a *batch* of ``m`` real
images with a batch of ``m`` generated ones. This module measures what the exact **batch**
Wasserstein-1 distance

.. math::

    W_1(X, Y) = \min_{P \in \Pi_m} \sum_{i,j} P_{ij} \|x_i - y_j\|_2,
    \qquad \Pi_m = \{P \ge 0 : P\mathbf 1 = P^\top \mathbf 1 = \tfrac1m \mathbf 1\},

rewards, with the Euclidean pixel cost on flattened images in :math:`[-1, 1]` (the exact values
come from :func:`wganbook.transport.w1`, POT's network simplex in float64):

* :func:`copies_w1` -- the closed form for a batch of identical images: if every :math:`y_j = u`
  then every coupling is optimal and :math:`W_1(X, Y) = \frac1n \sum_i \|x_i - u\|_2`;
* :func:`paradox_sweep` / :func:`crossover` -- :math:`W_1(R, \cdot)` from a held-out real batch
  :math:`R` to an independent real batch, to ``m`` copies of the dataset mean, to ``m`` k-means
  centroids and to a blurred real batch, over many batches and batch sizes, and the batch size
  above which real data wins;
* :func:`~wganbook.lab.paradox.train_exact_w1_generator` -- a generator trained on the exact batch W1 itself (the optimal
  plan is held constant, the gradient flows through the Euclidean cost, which is the gradient of
  :math:`W_1` by the envelope theorem), and :func:`nearest_distances` to compare its samples with
  k-means centroids and with real images;
* :func:`~wganbook.lab.paradox.evaluate_estimates` -- a frozen critic's W1 estimate against the exact batch W1 on fresh
  batch pairs (the c-transform estimate is computed in float64, so weak duality holds to rounding).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from wganbook import transport
from wganbook._util import Int, check_value

_POS_INT = Int(lo=1)  # the spec of every count argument here (n, k, batch sizes, ...)

__all__ = [
    "COMPETITORS",
    "copies_w1",
    "mean_image",
    "kmeans_centroids",
    "gaussian_blur",
    "gaussian_twin",
    "split_halves",
    "batch_w1_samples",
    "paradox_sweep",
    "paradox_summary",
    "crossover",
    "nearest_distances",
    "sinkhorn_divergence",
    "sliced_w1",
    "ESTIMATORS",
    "estimator_bias",
    "max_batch_size",
    "centroid_w1",
    "edge_strength",
]

#: Batches compared with a held-out real batch in :func:`paradox_sweep` (besides ``"real"``).
COMPETITORS = ("mean", "kmeans", "blur")


# ---------------------------------------------------------------------------------- helpers
def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray; got {type(x).__name__}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sample (rows are samples); got shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        x = x.to(torch.float32)
    return x


def _flat64(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().reshape(x.shape[0], -1).to(torch.float64).numpy()


def _draw(source, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` rows of a tensor without replacement, or ``source(n)`` for a callable."""
    if callable(source):
        return source(n)
    if n > source.shape[0]:
        raise ValueError(f"cannot draw a batch of {n} from {source.shape[0]} samples")
    idx = torch.randperm(source.shape[0], generator=gen)[:n]
    return source[idx]


# ------------------------------------------------------------------------------ closed form
def copies_w1(x, u):
    r"""Exact W1 between a batch and copies of one image: :math:`\frac1n \sum_i \|x_i - u\|_2`.

    If the second batch consists of :math:`m` copies of the same image :math:`u`, every coupling
    :math:`P \in \Pi(\frac1n\mathbf 1, \frac1m \mathbf 1)` has cost
    :math:`\sum_{ij} P_{ij}\|x_i - u\| = \sum_i \frac1n \|x_i - u\|`, so all couplings are optimal
    and

    .. math::

        W_1\Big(\tfrac1n\sum_i \delta_{x_i},\ \delta_u\Big) = \frac1n \sum_{i=1}^n \|x_i - u\|_2,

    for every number :math:`m` of copies -- no linear programme is needed.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray, shape (n, ...)
        The batch (trailing dimensions are flattened).
    u : torch.Tensor or numpy.ndarray, shape (...)
        One image with ``x.shape[1:]`` (or the same number of elements).

    Returns
    -------
    float
        :math:`\frac1n\sum_i \|x_i - u\|_2` (float64 arithmetic).
    """
    xt = _as_tensor(x, "x")
    ut = _as_tensor(u, "u") if not isinstance(u, (int, float)) else None
    if ut is None:
        raise TypeError("u must be a torch.Tensor or numpy.ndarray (one image)")
    xf = _flat64(xt)
    uf = ut.detach().cpu().reshape(-1).to(torch.float64).numpy()
    if uf.size != xf.shape[1]:
        raise ValueError(f"u must have as many elements as one row of x ({xf.shape[1]}); got {uf.size}")
    return float(np.linalg.norm(xf - uf[None, :], axis=1).mean())


def mean_image(images) -> torch.Tensor:
    r"""The dataset mean :math:`\bar x = \frac1N\sum_k x_k` (shape of one image).

    Parameters
    ----------
    images : torch.Tensor, shape (N, ...)

    Returns
    -------
    torch.Tensor, shape (...)
    """
    x = _as_tensor(images, "images")
    return x.mean(dim=0)


def kmeans_centroids(
    images, k: int, seed: int = 0, n_init: int = 1, max_iter: int = 100, max_samples: Optional[int] = 20000
) -> torch.Tensor:
    r"""``k`` k-means centroids of a set of images (Euclidean, scikit-learn ``KMeans``).

    Lloyd's algorithm (k-means++ initialisation, ``random_state=seed``) minimises
    :math:`\sum_k \min_c \|x_k - \mu_c\|_2^2`; each centroid is the mean of its cluster, i.e. a
    blurred average of similar images.

    Parameters
    ----------
    images : torch.Tensor, shape (N, ...)
        The images (flattened for clustering).
    k : int
        Number of centroids, ``1 <= k <= N``.
    seed : int, optional
        ``random_state`` of ``KMeans`` (deterministic).
    n_init : int, optional
        Number of k-means++ restarts (the best inertia is kept).
    max_iter : int, optional
        Lloyd iterations per restart.
    max_samples : int or None, optional
        Fit on a fixed random subset of at most this many images (speed on MNIST/CIFAR-10);
        ``None`` uses all.

    Returns
    -------
    torch.Tensor, shape (k, ...)
        The centroids, float32, in the image shape.
    """
    from sklearn.cluster import KMeans

    x = _as_tensor(images, "images")
    k = check_value("k", k, _POS_INT)
    if k > x.shape[0]:
        raise ValueError(f"k must be at most the number of images ({x.shape[0]}); got {k}")
    flat = _flat64(x)
    if max_samples is not None and flat.shape[0] > max(int(max_samples), k):
        rows = np.random.default_rng(seed).choice(flat.shape[0], int(max(max_samples, k)), replace=False)
        flat = flat[np.sort(rows)]
    km = KMeans(
        n_clusters=k,
        n_init=check_value("n_init", n_init, _POS_INT),
        max_iter=check_value("max_iter", max_iter, _POS_INT),
        random_state=int(seed),
    ).fit(flat)
    return torch.as_tensor(km.cluster_centers_, dtype=torch.float32).reshape(k, *x.shape[1:])


def gaussian_blur(images, sigma: float) -> torch.Tensor:
    r"""Blur images with a normalised Gaussian kernel (separable, replicate padding).

    Each channel is convolved with :math:`k(t) \propto \exp(-t^2 / 2\sigma^2)`,
    :math:`|t| \le \lceil 3\sigma \rceil`, along rows and columns; the kernel sums to one, so
    constant images are unchanged and the pixel range is preserved.

    Parameters
    ----------
    images : torch.Tensor, shape (N, C, H, W)
    sigma : float
        Standard deviation in pixels; ``0`` returns a copy.

    Returns
    -------
    torch.Tensor, shape (N, C, H, W)
    """
    x = _as_tensor(images, "images")
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W); got {tuple(x.shape)}")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a non-negative finite number; got {sigma!r}")
    if sigma == 0:
        return x.clone()
    r = int(math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (r, r, r, r), mode="replicate")
    y = F.conv2d(y, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def gaussian_twin(images, n: int, seed: int = 0) -> torch.Tensor:
    r"""Samples of the Gaussian with the images' mean and covariance.

    :math:`x \sim \mathcal N(\bar x, \hat\Sigma)` with the empirical mean and covariance of
    ``images`` (flattened); same first and second moments, hence the same
    :math:`\mathbb E\|x - \bar x\|^2 = \operatorname{tr}\hat\Sigma`, but no clusters, strokes or
    low-dimensional structure. Not clipped to :math:`[-1, 1]`.

    Parameters
    ----------
    images : torch.Tensor, shape (N, ...)
    n : int
        Number of samples.
    seed : int, optional
        Seed of a private NumPy generator.

    Returns
    -------
    torch.Tensor, shape (n, ...)
        float32 samples in the image shape.
    """
    x = _as_tensor(images, "images")
    flat = _flat64(x)
    rng = np.random.default_rng(int(seed))
    cov = np.cov(flat, rowvar=False)
    out = rng.multivariate_normal(flat.mean(0), cov, size=check_value("n", n, _POS_INT), method="eigh")
    return torch.as_tensor(out, dtype=torch.float32).reshape(-1, *x.shape[1:])


# ------------------------------------------------------------------------------- the paradox
def split_halves(images, seed: int = 0):
    r"""Two disjoint halves of a set of images, in a fixed random order.

    Parameters
    ----------
    images : torch.Tensor, shape (N, ...)
    seed : int, optional
        Seed of the permutation.

    Returns
    -------
    first, second : torch.Tensor
        ``images[perm[:N // 2]]`` and ``images[perm[N // 2:]]`` for a seeded permutation ``perm``.
    """
    x = _as_tensor(images, "images")
    if x.shape[0] < 2:
        raise ValueError(f"images must hold at least 2 samples to split; got {x.shape[0]}")
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(int(seed)))
    h = x.shape[0] // 2
    return x[perm[:h]], x[perm[h:]]


def batch_w1_samples(real, other, batch_size: int, n_batches: int, seed: int = 0) -> np.ndarray:
    r"""Exact batch W1 between independent batches: :math:`W_1(X_k, Y_k)`, :math:`k = 1..K`.

    :math:`X_k` holds ``batch_size`` rows of ``real`` (drawn without replacement); :math:`Y_k` holds
    ``batch_size`` rows of ``other``, or ``other(batch_size)`` for a callable (e.g. a generator).
    When ``other is real`` the two batches are disjoint rows of the same set, so the values are
    the batch W1 between two samples of one distribution -- positive although the population
    distance is 0.

    Parameters
    ----------
    real : torch.Tensor, shape (N, ...)
    other : torch.Tensor or callable
        Second set, or a function ``n -> batch``.
    batch_size, n_batches : int
    seed : int, optional
        Seed of the draws.

    Returns
    -------
    numpy.ndarray, shape (n_batches,)
        float64 values (Euclidean cost on flattened samples).
    """
    x = _as_tensor(real, "real")
    m, k = check_value("batch_size", batch_size, _POS_INT), check_value("n_batches", n_batches, _POS_INT)
    gen = torch.Generator().manual_seed(int(seed))
    out = []
    for _ in range(k):
        if other is x or other is real:
            both = _draw(x, 2 * m, gen)
            a, b = both[:m], both[m:]
        else:
            a, b = _draw(x, m, gen), _draw(other, m, gen)
        out.append(transport.w1(_flat64(a), _flat64(b)))
    return np.asarray(out, dtype=np.float64)


def paradox_sweep(
    pool,
    reference,
    batch_sizes: Sequence[int],
    n_batches: Union[int, Callable[[int], int]] = 20,
    seed: int = 0,
    blur_sigma: float = 1.0,
    kmeans_n_init: int = 1,
    kmeans_max_samples: Optional[int] = 20000,
) -> Dict[str, object]:
    r"""Exact batch W1 from held-out real batches to four kinds of batches, per batch size.

    For each batch size :math:`m` and each of ``n_batches`` repetitions, draw a reference batch
    :math:`R` of :math:`m` images from ``reference`` and an independent batch :math:`B` of
    :math:`m` images from ``pool`` (without replacement), and record

    * ``"real"``: :math:`W_1(R, B)`;
    * ``"mean"``: :math:`W_1(R, \{\bar x\}^m) = \frac1m\sum_i \|r_i - \bar x\|` (:func:`copies_w1`),
      :math:`\bar x` the mean of ``pool``;
    * ``"kmeans"``: :math:`W_1(R, \{c_1..c_m\})`, the :math:`m` k-means centroids of ``pool``
      (fitted once per :math:`m`, ``random_state=seed``);
    * ``"blur"``: :math:`W_1(R, \mathrm{blur}_\sigma(B))`.

    All with the Euclidean cost on flattened images. Using the same :math:`R` for all four makes
    the comparisons paired.

    Parameters
    ----------
    pool : torch.Tensor, shape (N, ...)
        Images for :math:`B`, the mean and the centroids.
    reference : torch.Tensor, shape (N', ...)
        Held-out images for :math:`R` (disjoint from ``pool``).
    batch_sizes : sequence of int
        Values of :math:`m`, each at most ``min(N, N')``.
    n_batches : int or callable, optional
        Repetitions per batch size (or a function ``m -> repetitions``).
    seed : int, optional
        Seed of the batch draws and of k-means.
    blur_sigma : float, optional
        Gaussian blur of the ``"blur"`` batch, in pixels.
    kmeans_n_init, kmeans_max_samples : optional
        Passed to :func:`kmeans_centroids`.

    Returns
    -------
    dict
        ``"batch_size"``: list of :math:`m`; for each of ``"real"``, ``"mean"``, ``"kmeans"``,
        ``"blur"``: a list (one entry per :math:`m`) of float64 arrays of per-batch W1 values;
        ``"blur_sigma"``.
    """
    pool = _as_tensor(pool, "pool")
    reference = _as_tensor(reference, "reference")
    if pool.shape[1:] != reference.shape[1:]:
        raise ValueError(
            f"pool and reference must hold images of the same shape; got "
            f"{tuple(pool.shape[1:])} and {tuple(reference.shape[1:])}"
        )
    sizes = [check_value(f"batch_sizes[{i}]", m, _POS_INT) for i, m in enumerate(batch_sizes)]
    if not sizes:
        raise ValueError("batch_sizes must be a non-empty list of positive ints")
    limit = min(pool.shape[0], reference.shape[0])
    if max(sizes) > limit:
        raise ValueError(
            f"every batch size must be at most {limit} (the smaller of pool and reference); got {max(sizes)}"
        )
    fixed = None if callable(n_batches) else check_value("n_batches", n_batches, _POS_INT)
    gen = torch.Generator().manual_seed(int(seed))
    mu = mean_image(pool)
    out: Dict[str, object] = {"batch_size": sizes, "blur_sigma": float(blur_sigma)}
    for key in ("real",) + COMPETITORS:
        out[key] = []
    for m in sizes:
        cents = kmeans_centroids(pool, m, seed=seed, n_init=kmeans_n_init, max_samples=kmeans_max_samples)
        vals = {key: [] for key in ("real",) + COMPETITORS}
        for _ in range(fixed or check_value("n_batches", n_batches(m), _POS_INT)):
            r = _draw(reference, m, gen)
            b = _draw(pool, m, gen)
            rf = _flat64(r)
            vals["real"].append(transport.w1(rf, _flat64(b)))
            vals["mean"].append(copies_w1(r, mu))
            vals["kmeans"].append(transport.w1(rf, _flat64(cents)))
            vals["blur"].append(
                transport.w1(rf, _flat64(gaussian_blur(b, blur_sigma))) if b.ndim == 4 else float("nan")
            )
        for key, v in vals.items():
            out[key].append(np.asarray(v, dtype=np.float64))
    return out


def paradox_summary(sweep: Dict[str, object]) -> list:
    r"""One row per batch size: mean W1 of each kind of batch and the share of paired wins.

    For competitor :math:`c` the *win rate* is the fraction of reference batches :math:`R` with
    :math:`W_1(R, c) < W_1(R, B)`, i.e. where the competitor is closer to the real batch than an
    independent real batch.

    Parameters
    ----------
    sweep : dict
        Output of :func:`paradox_sweep`.

    Returns
    -------
    list of dict
        Keys ``"m"``, ``"n"`` (repetitions), ``"real"``, ``"real_std"``, and for each competitor
        ``c``: ``c`` (mean W1), ``c + "_std"`` and ``c + "_wins"`` (win rate in [0, 1]).
    """
    rows = []
    for i, m in enumerate(sweep["batch_size"]):
        real = sweep["real"][i]
        row = {"m": int(m), "n": int(real.size), "real": float(real.mean()), "real_std": float(real.std())}
        for c in COMPETITORS:
            v = sweep[c][i]
            row[c] = float(np.mean(v))
            row[c + "_std"] = float(np.std(v))
            row[c + "_wins"] = float(np.mean(v < real))
        rows.append(row)
    return rows


def crossover(batch_sizes: Sequence[int], real: Sequence[float], other: Sequence[float]) -> Optional[float]:
    r"""The batch size at which an independent real batch becomes closer than a competitor.

    With :math:`d(m) = \overline{W_1}(R, B)(m) - \overline{W_1}(R, c)(m)` (positive while the
    competitor :math:`c` wins), return the first :math:`m` where :math:`d` changes sign from
    positive to non-positive, interpolated linearly in :math:`\log_2 m` between the two grid points:

    .. math::

        \log_2 m^\ast = \log_2 m_k + \frac{d_k}{d_k - d_{k+1}} (\log_2 m_{k+1} - \log_2 m_k).

    Parameters
    ----------
    batch_sizes : sequence of int
        Increasing batch sizes.
    real, other : sequence of float
        Mean W1 to a real batch and to the competitor, per batch size.

    Returns
    -------
    float or None
        :math:`m^\ast`; ``batch_sizes[0]`` if the real batch already wins at the smallest size;
        ``None`` if the competitor wins at every size of the grid.
    """
    m = np.asarray(batch_sizes, dtype=np.float64)
    d = np.asarray(real, dtype=np.float64) - np.asarray(other, dtype=np.float64)
    if m.ndim != 1 or m.shape != d.shape or m.size == 0:
        raise ValueError("batch_sizes, real and other must be 1-D sequences of the same non-zero length")
    if np.any(np.diff(m) <= 0) or np.any(m <= 0):
        raise ValueError("batch_sizes must be positive and strictly increasing")
    if d[0] <= 0:
        return float(m[0])
    for k in range(m.size - 1):
        if d[k] > 0 >= d[k + 1]:
            lo, hi = math.log2(m[k]), math.log2(m[k + 1])
            return float(2 ** (lo + d[k] / (d[k] - d[k + 1]) * (hi - lo)))
    return None


# ------------------------------------------------------------------- minimising batch W1
def nearest_distances(samples, references, exclude_self: bool = False, chunk: int = 1024) -> np.ndarray:
    r"""Euclidean distance from each sample to its nearest reference: :math:`\min_k \|x_i - r_k\|_2`.

    Parameters
    ----------
    samples : torch.Tensor, shape (n, ...)
    references : torch.Tensor, shape (K, ...)
        Same number of elements per row as ``samples``.
    exclude_self : bool, optional
        Leave-one-out: ``samples`` and ``references`` are the same set (``n == K``) and
        :math:`\min_{k \ne i}` is taken (a real image's nearest *other* image).
    chunk : int, optional
        Samples per block (memory).

    Returns
    -------
    numpy.ndarray, shape (n,)
        float64 distances.
    """
    x = _as_tensor(samples, "samples").detach().cpu()
    x = x.reshape(x.shape[0], -1).double()
    r = _as_tensor(references, "references").detach().cpu()
    r = r.reshape(r.shape[0], -1).double()
    if x.shape[1] != r.shape[1]:
        raise ValueError(
            f"samples and references must have the same number of features; got {x.shape[1]} and {r.shape[1]}"
        )
    chunk = check_value("chunk", chunk, _POS_INT)
    if exclude_self and x.shape[0] != r.shape[0]:
        raise ValueError("exclude_self=True needs samples and references to be the same set (same length)")
    out = []
    for s in range(0, x.shape[0], chunk):
        d = torch.cdist(x[s : s + chunk], r, compute_mode="donot_use_mm_for_euclid_dist")
        if exclude_self:
            rows = torch.arange(d.shape[0])
            d[rows, rows + s] = float("inf")
        out.append(d.min(dim=1).values)
    return torch.cat(out).numpy()


# ------------------------------------------------------------- other minibatch estimators
def _cost64(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean cost matrix in float64 (direct differences, no Gram-matrix shortcut)."""
    from scipy.spatial.distance import cdist

    return cdist(x, y, metric="euclidean")


def _entropic_cost(x: np.ndarray, y: np.ndarray, reg: float) -> float:
    import ot

    n, k = x.shape[0], y.shape[0]
    a, b = np.full(n, 1.0 / n), np.full(k, 1.0 / k)
    cost = _cost64(x, y)
    with np.errstate(all="ignore"):  # small reg can underflow the kernel: then use log-domain
        value = float(ot.sinkhorn2(a, b, cost, reg, method="sinkhorn", numItermax=5000, stopThr=1e-7, warn=False))
    if not np.isfinite(value) or np.exp(-cost.max() / reg) == 0.0:
        value = float(ot.sinkhorn2(a, b, cost, reg, method="sinkhorn_log", numItermax=5000, stopThr=1e-7, warn=False))
    return value


def sinkhorn_divergence(x, y, reg: float) -> float:
    r"""Debiased Sinkhorn divergence with the Euclidean cost (Genevay et al. 2018).

    With :math:`P_\varepsilon(X, Y)` the entropic optimal plan between the uniform clouds
    (``ot.sinkhorn2``; log-domain Sinkhorn where the kernel :math:`e^{-c/\varepsilon}` would
    underflow) and
    :math:`\mathrm{OT}_\varepsilon(X, Y) = \sum_{ij} P_{\varepsilon, ij} \|x_i - y_j\|_2` its
    transport cost,

    .. math::

        S_\varepsilon(X, Y) = \mathrm{OT}_\varepsilon(X, Y)
        - \tfrac12 \mathrm{OT}_\varepsilon(X, X) - \tfrac12 \mathrm{OT}_\varepsilon(Y, Y).

    :math:`S_\varepsilon(X, X) = 0` exactly; as :math:`\varepsilon \to 0` the self terms
    vanish and :math:`S_\varepsilon \to W_1`; for large :math:`\varepsilon` it tends to an
    energy-distance-like quantity (Feydy et al. 2019). The debiasing is what removes the
    positive value that two samples of one distribution get from :math:`\mathrm{OT}_\varepsilon`.

    Parameters
    ----------
    x, y : torch.Tensor or numpy.ndarray, shape (n, ...) and (k, ...)
        Point clouds (rows are samples; flattened).
    reg : float
        Entropic regularisation :math:`\varepsilon > 0`, in units of the cost.

    Returns
    -------
    float
    """
    if isinstance(reg, bool) or not isinstance(reg, (int, float, np.floating)) or not reg > 0:
        raise ValueError(f"reg must be a positive float; got {reg!r}")
    xf, yf = _flat64(_as_tensor(x, "x")), _flat64(_as_tensor(y, "y"))
    if xf.shape[1] != yf.shape[1]:
        raise ValueError(f"x and y must have the same number of features; got {xf.shape[1]} and {yf.shape[1]}")
    reg = float(reg)
    return _entropic_cost(xf, yf, reg) - 0.5 * _entropic_cost(xf, xf, reg) - 0.5 * _entropic_cost(yf, yf, reg)


def sliced_w1(x, y, n_projections: int = 200, seed: int = 0) -> float:
    r"""Sliced Wasserstein-1 distance (``ot.sliced_wasserstein_distance`` with ``p = 1``).

    .. math::

        SW_1(X, Y) = \mathbb E_{\theta \sim \mathrm{Unif}(S^{d-1})}\,
        W_1(\theta^\top X, \theta^\top Y),

    estimated with ``n_projections`` random directions; each 1-D :math:`W_1` is exact (sorted
    samples). In one dimension every direction is :math:`\pm 1`, so :math:`SW_1 = W_1`. In
    :math:`d` dimensions :math:`SW_1 \le W_1` (a projection is 1-Lipschitz), and its minibatch
    bias shrinks like that of 1-D distances, about :math:`m^{-1/2}`.

    Parameters
    ----------
    x, y : torch.Tensor or numpy.ndarray, shape (n, ...) and (k, ...)
    n_projections : int, optional
    seed : int, optional
        Seed of the directions.

    Returns
    -------
    float
    """
    import ot

    xf, yf = _flat64(_as_tensor(x, "x")), _flat64(_as_tensor(y, "y"))
    if xf.shape[1] != yf.shape[1]:
        raise ValueError(f"x and y must have the same number of features; got {xf.shape[1]} and {yf.shape[1]}")
    n = check_value("n_projections", n_projections, _POS_INT)
    return float(ot.sliced_wasserstein_distance(xf, yf, n_projections=n, p=1, seed=int(seed)))


#: Minibatch estimators compared by :func:`estimator_bias`.
ESTIMATORS = ("exact", "sinkhorn", "sliced")


def _estimate(name: str, x: np.ndarray, y: np.ndarray, reg: float, n_projections: int, seed: int) -> float:
    if name == "exact":
        return transport.w1(x, y)
    if name == "sinkhorn":
        return sinkhorn_divergence(x, y, reg)
    return sliced_w1(x, y, n_projections=n_projections, seed=seed)


def estimator_bias(
    a,
    b,
    batch_sizes: Sequence[int],
    n_batches: int = 10,
    seed: int = 0,
    reg: float = 1.0,
    n_projections: int = 200,
    estimators: Sequence[str] = ESTIMATORS,
) -> Dict[str, object]:
    r"""Three minibatch estimators of a distance, against their full-data values, per batch size.

    For every batch size :math:`m` and each of ``n_batches`` repetitions, draw disjoint batches
    :math:`A, A'` of :math:`m` rows of ``a`` and a batch :math:`B` of ``b`` and evaluate each
    estimator :math:`D` (``"exact"``: :func:`wganbook.transport.w1`; ``"sinkhorn"``:
    :func:`sinkhorn_divergence`; ``"sliced"``: :func:`sliced_w1`) on

    * ``"between"``: :math:`D(A, B)`, the estimate of the distance between the distributions;
    * ``"within"``: :math:`D(A, A')`, two samples of **one** distribution: the population value
      is 0, so this is the estimator's minibatch bias at this :math:`m`.

    ``"full"`` holds :math:`D(a, b)` on all rows (the largest "batch" the data allow: itself
    a sample estimate, but the least biased one available).

    Parameters
    ----------
    a, b : torch.Tensor, shape (N_a, ...) and (N_b, ...)
        Samples of the two distributions; every batch size at most ``N_a // 2`` and ``N_b``.
    batch_sizes : sequence of int
    n_batches : int, optional
    seed : int, optional
        Seed of the draws (and of the sliced directions).
    reg : float, optional
        :math:`\varepsilon` of the Sinkhorn divergence.
    n_projections : int, optional
        Directions of the sliced distance.
    estimators : sequence of str, optional
        A subset of :data:`ESTIMATORS`.

    Returns
    -------
    dict
        ``"batch_size"``; ``"between"`` and ``"within"``: dicts estimator -> list (per
        :math:`m`) of float64 arrays; ``"full"``: dict estimator -> float.
    """
    x, y = _as_tensor(a, "a"), _as_tensor(b, "b")
    names = list(estimators)
    for e in names:
        if e not in ESTIMATORS:
            raise ValueError(f"unknown estimator {e!r}; estimators must be a subset of: {', '.join(ESTIMATORS)}")
    if not names:
        raise ValueError(f"estimators must be a non-empty subset of: {', '.join(ESTIMATORS)}")
    sizes = [check_value(f"batch_sizes[{i}]", m, _POS_INT) for i, m in enumerate(batch_sizes)]
    if not sizes:
        raise ValueError("batch_sizes must be a non-empty list of positive ints")
    limit = min(x.shape[0] // 2, y.shape[0])
    if max(sizes) > limit:
        raise ValueError(f"every batch size must be at most {limit} (half of a, all of b); got {max(sizes)}")
    k = check_value("n_batches", n_batches, _POS_INT)
    gen = torch.Generator().manual_seed(int(seed))
    out: Dict[str, object] = {"batch_size": sizes, "between": {e: [] for e in names}, "within": {e: [] for e in names}}
    for m in sizes:
        vals = {(kind, e): [] for kind in ("between", "within") for e in names}
        for rep in range(k):
            aa = _draw(x, 2 * m, gen)
            a1, a2, bb = _flat64(aa[:m]), _flat64(aa[m:]), _flat64(_draw(y, m, gen))
            for e in names:
                s = int(seed) * 1000 + rep
                vals["between", e].append(_estimate(e, a1, bb, reg, n_projections, s))
                vals["within", e].append(_estimate(e, a1, a2, reg, n_projections, s))
        for (kind, e), v in vals.items():
            out[kind][e].append(np.asarray(v, dtype=np.float64))
    xf, yf = _flat64(x), _flat64(y)
    out["full"] = {e: _estimate(e, xf, yf, reg, n_projections, int(seed)) for e in names}
    return out


def max_batch_size(pool_size: int, share: float = 0.1) -> int:
    r"""The largest batch size that is still a small sample of a pool: :math:`\lfloor s N \rfloor`.

    A "fresh" batch of :math:`m` images from a pool of :math:`N` shares images with every other
    batch once :math:`m` is a sizeable fraction of :math:`N`, and k-means with :math:`k = m`
    centroids leaves :math:`N/m` images per cluster; conclusions about batches of the
    *distribution* need :math:`m \ll N` (default :math:`m \le N/10`).

    Parameters
    ----------
    pool_size : int
    share : float, optional
        In (0, 1].

    Returns
    -------
    int
    """
    n = check_value("pool_size", pool_size, _POS_INT)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ValueError(f"share must be a float in (0, 1]; got {share!r}")
    return max(1, int(math.floor(share * n)))


# ---------------------------------------------------------------- what the samples look like
def centroid_w1(samples, centroids, n_batches: int = 20, seed: int = 0) -> np.ndarray:
    r"""Exact W1 between batches of samples and a fixed set of :math:`m` centroids.

    A matching test of "the samples look like k-means centroids": for each of ``n_batches``
    batches :math:`Y` of :math:`m` = ``len(centroids)`` samples (without replacement),
    :math:`W_1(Y, C)` with the Euclidean cost. A generator whose batches *are* a set of
    centroids scores 0; a batch of real images scores the distance from data to its own
    :math:`m`-point summary. Unlike a nearest-neighbour share, the optimal matching charges a
    batch for putting several samples on one centroid (mode collapse) as well as for blur.

    Parameters
    ----------
    samples : torch.Tensor or callable
        At least ``len(centroids)`` samples, or a function ``n -> batch``.
    centroids : torch.Tensor, shape (m, ...)
    n_batches : int, optional
    seed : int, optional

    Returns
    -------
    numpy.ndarray, shape (n_batches,)
    """
    c = _as_tensor(centroids, "centroids")
    if not callable(samples):
        s = _as_tensor(samples, "samples")
        if s.shape[1:] != c.shape[1:]:
            raise ValueError(
                f"samples and centroids must have the same shape per row; got "
                f"{tuple(s.shape[1:])} and {tuple(c.shape[1:])}"
            )
        samples = s
    k = check_value("n_batches", n_batches, _POS_INT)
    gen = torch.Generator().manual_seed(int(seed))
    cf = _flat64(c)
    return np.asarray([transport.w1(_flat64(_draw(samples, c.shape[0], gen)), cf) for _ in range(k)], dtype=np.float64)


def edge_strength(images) -> np.ndarray:
    r"""Mean absolute difference between neighbouring pixels, per image (a sharpness measure).

    .. math::

        s(x) = \frac12\Big(\operatorname{mean}_{c,i,j} |x_{c,i+1,j} - x_{c,i,j}|
        + \operatorname{mean}_{c,i,j} |x_{c,i,j+1} - x_{c,i,j}|\Big).

    A constant image scores 0; blurring lowers the score (averaging neighbours shrinks their
    differences); a pixel-wise mean of many images scores less than the images.

    Parameters
    ----------
    images : torch.Tensor, shape (N, C, H, W)

    Returns
    -------
    numpy.ndarray, shape (N,)
    """
    x = _as_tensor(images, "images").detach().cpu().double()
    if x.ndim != 4 or x.shape[2] < 2 or x.shape[3] < 2:
        raise ValueError(f"images must have shape (N, C, H, W) with H, W >= 2; got {tuple(x.shape)}")
    dv = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().mean(dim=(1, 2, 3))
    dh = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))
    return (0.5 * (dv + dh)).numpy()

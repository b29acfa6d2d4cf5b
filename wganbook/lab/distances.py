r"""Chapter 1's experiments on WGAN's Example 1: two parallel line segments seen through samples.

:math:`P_0` is the law of :math:`(0, Z)` and :math:`P_\theta` that of :math:`(\theta, Z)`,
:math:`Z \sim U[0, 1]` (``wganbook.data.sample_toy("parallel-lines", n, theta=...)``). The closed
forms are in :mod:`wganbook.transport` (:func:`~wganbook.transport.parallel_lines`); this module
estimates the same quantities from samples:

* :func:`lines_sample_w1` -- the exact sample :math:`W_1` of the network simplex next to the sorted
  matching of the heights (:func:`wganbook.transport.parallel_lines_sample_w1`), at several offsets;
* :func:`line_histogram` and :func:`histogram_scan` -- TV, JS and KL from histograms whose bins
  across the lines have width :math:`h`, with :math:`x = 0` the centre of a bin, over a grid of
  offsets; :func:`histogram_regimes` sums up the two regimes :math:`|\theta| > h/2` (disjoint
  histograms: the closed forms) and :math:`|\theta| < h/2` (sampling noise);
  :func:`plot_histogram_scan` draws them;
* :func:`gradient_probes` -- :math:`\partial W_1 / \partial \theta` of the exact sample OT by
  autograd, next to a finite difference of the histogram JS;
* :func:`ml_grid_optimum` -- the noise width that maximises the likelihood of
  :mod:`wganbook.likelihood`, found on a grid.
"""

from __future__ import annotations

import math
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch

from wganbook import data, likelihood, transport
from wganbook._util import Float, Int, check_value

__all__ = [
    "lines_sample_w1",
    "line_histogram",
    "histogram_scan",
    "histogram_regimes",
    "plot_histogram_scan",
    "moved_line",
    "gradient_probes",
    "ml_grid_optimum",
]

_LINES = "parallel-lines"
_POSITIVE = Float(lo=0, lo_open=True)


def _thetas(thetas) -> List[float]:
    vals = [float(t) for t in np.asarray(thetas, dtype=np.float64).reshape(-1)]
    if not vals or not all(math.isfinite(t) for t in vals):
        raise ValueError("thetas must be a non-empty sequence of finite offsets")
    return vals


def lines_sample_w1(target: torch.Tensor, thetas: Sequence[float], n: int) -> List[Tuple[float, float, float, float]]:
    r"""The exact sample :math:`W_1` between ``target`` and a fresh sample of :math:`P_\theta`, per offset.

    For each :math:`\theta` it draws ``n`` points of :math:`P_\theta` (from the global random
    state, in the order of ``thetas``) and computes the optimal transport cost twice: with the
    network simplex (:func:`wganbook.transport.w1`, any plan) and with the sorted matching of the
    heights (:func:`wganbook.transport.parallel_lines_sample_w1`), which is optimal because the
    cost is convex in the height difference. Both are :math:`\ge |\theta|`.

    Parameters
    ----------
    target : torch.Tensor, shape (m, 2)
        A sample of :math:`P_0` (points :math:`(0, z)`); ``m`` = ``n`` for the sorted matching.
    thetas : sequence of float
        Offsets of the moved line.
    n : int
        Points drawn from each :math:`P_\theta`.

    Returns
    -------
    list of tuple
        ``(theta, |theta|, W1 by the network simplex, W1 by the sorted matching)`` per offset.
    """
    n = check_value("n", n, Int(lo=1))
    rows = []
    for th in _thetas(thetas):
        moved = data.sample_toy(_LINES, n, theta=th)
        w_ot = transport.w1(target.numpy(), moved.numpy())
        rows.append((th, abs(th), w_ot, transport.parallel_lines_sample_w1(th, target[:, 1], moved[:, 1])))
    return rows


def line_histogram(points, h: float, lim: float = 1.2, y_bins: int = 10) -> np.ndarray:
    r"""Counts of 2-D points in cells of width ``h`` across the lines and ``y_bins`` rows along them.

    The bin edges across the lines are :math:`(k - \tfrac12) h`, :math:`k = -K, \dots, K + 1` with
    :math:`K = \lceil \text{lim} / h \rceil`, so :math:`x = 0` is the centre of a bin and two lines
    :math:`|\theta|` apart share a column of cells exactly when :math:`|\theta| < h/2`. Along the
    lines the ``y_bins`` bins split :math:`[0, 1]` evenly. Points outside the cells are not counted.

    Parameters
    ----------
    points : torch.Tensor or array-like, shape (n, 2)
    h : float
        Bin width across the lines (> 0).
    lim : float, optional
        The cells cover at least :math:`[-\text{lim}, \text{lim}]` across the lines.
    y_bins : int, optional
        Bins along the lines.

    Returns
    -------
    numpy.ndarray, shape (2K + 1, y_bins)
    """
    h, lim = check_value("h", h, _POSITIVE), check_value("lim", lim, _POSITIVE)
    y_bins = check_value("y_bins", y_bins, Int(lo=1))
    pts = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2); got {pts.shape}")
    k = math.ceil(lim / h)
    x_edges = (np.arange(-k, k + 2) - 0.5) * h
    y_edges = np.linspace(0.0, 1.0, y_bins + 1)
    counts, _, _ = np.histogram2d(pts[:, 0], pts[:, 1], bins=[x_edges, y_edges])
    return counts


def histogram_scan(
    target: torch.Tensor, thetas: Sequence[float], target_counts: Mapping[float, np.ndarray], n: int
) -> Tuple[Dict[float, List[dict]], np.ndarray]:
    r"""Histogram TV, JS and KL and the exact sample :math:`W_1` between ``target`` and :math:`P_\theta`.

    For each :math:`\theta` (in order) one fresh sample of ``n`` points of :math:`P_\theta` is drawn
    from the global random state; for each bin width :math:`h` of ``target_counts`` its
    :func:`line_histogram` is compared with the target's by
    :func:`wganbook.transport.histogram_divergences`, and the exact :math:`W_1` of the two samples
    is computed by the sorted matching.

    Parameters
    ----------
    target : torch.Tensor, shape (n, 2)
        A sample of :math:`P_0`.
    thetas : sequence of float
        Offsets.
    target_counts : mapping of float to numpy.ndarray
        Bin width :math:`h` -> ``line_histogram(target, h)``.
    n : int
        Points per sample of :math:`P_\theta`.

    Returns
    -------
    (dict, numpy.ndarray)
        ``{h: [{"tv", "js", "kl"} per theta]}`` and the exact sample :math:`W_1` per theta.
    """
    n = check_value("n", n, Int(lo=1))
    if not target_counts:
        raise ValueError("target_counts must map at least one bin width h to the target's histogram")
    estimates: Dict[float, List[dict]] = {h: [] for h in target_counts}
    w1 = []
    for th in _thetas(thetas):
        pts = data.sample_toy(_LINES, n, theta=th)
        w1.append(transport.parallel_lines_sample_w1(th, target[:, 1], pts[:, 1]))
        for h, counts in target_counts.items():
            estimates[h].append(transport.histogram_divergences(counts, line_histogram(pts, h)))
    return estimates, np.asarray(w1)


def histogram_regimes(thetas: Sequence[float], estimates: Mapping[float, Sequence[Mapping[str, float]]]) -> dict:
    r"""How far the histogram estimates of :func:`histogram_scan` are from the closed forms, by regime.

    Far (:math:`|\theta| > h/2`, disjoint histograms) the closed forms of two disjoint supports
    hold exactly: TV = 1, JS = :math:`\log 2`, KL = :math:`+\infty`. Near (:math:`|\theta| < h/2`)
    both histograms sample one distribution and the estimates are noise.

    Parameters
    ----------
    thetas : sequence of float
        The offsets of the estimates.
    estimates : mapping of float to list of dict
        ``{h: [{"tv", "js", "kl"} per theta]}``.

    Returns
    -------
    dict
        ``"far_err"``: the largest of :math:`|TV - 1|`, :math:`|JS - \log 2|` (and :math:`+\infty`
        for a finite KL) over the far estimates of every :math:`h`; ``"near_tv"``, ``"near_js"``:
        the largest TV and JS over the near ones; ``"near_kl_finite"``: whether every near KL is finite.
    """
    th = np.abs(np.asarray(_thetas(thetas)))
    far_err, near_tv, near_js, near_kl_finite = 0.0, 0.0, 0.0, True
    for h, ests in estimates.items():
        if len(ests) != th.size:
            raise ValueError(f"estimates[{h!r}] has {len(ests)} entries for {th.size} thetas")
        for e, t in zip(ests, th):
            if t > h / 2:
                far_err = max(
                    far_err, abs(e["tv"] - 1), abs(e["js"] - math.log(2)), 0.0 if e["kl"] == math.inf else math.inf
                )
            elif t < h / 2:
                near_tv, near_js = max(near_tv, e["tv"]), max(near_js, e["js"])
                near_kl_finite = near_kl_finite and math.isfinite(e["kl"])
    return {"far_err": far_err, "near_tv": near_tv, "near_js": near_js, "near_kl_finite": near_kl_finite}


def plot_histogram_scan(
    axes,
    thetas,
    estimates: Mapping[float, Sequence[Mapping[str, float]]],
    w1,
    closed_thetas,
    closed: Mapping[str, np.ndarray],
) -> None:
    r"""Chapter 1's 2x2 figure: TV, JS and KL of the histograms, and the exact sample :math:`W_1`.

    ``axes[0, 0]``, ``axes[0, 1]``, ``axes[1, 0]``: TV, JS and KL per bin width (squares for the
    largest :math:`h`, dots for the others; an infinite KL is drawn at the tick marked
    :math:`+\infty`), with the closed forms for :math:`\theta \ne 0`; ``axes[1, 1]``: the exact
    sample :math:`W_1` and :math:`|\theta|`. ``closed`` is
    :func:`wganbook.transport.parallel_lines` ``(closed_thetas)``.
    """
    thetas, closed_thetas = np.asarray(thetas), np.asarray(closed_thetas)
    moved = closed_thetas != 0
    panels = (("tv", "TV"), ("js", "JS"), ("kl", r"KL$(\mathbb{P}_0\|\mathbb{P}_\theta)$"))
    widths = sorted(estimates, reverse=True)
    for ax, (name, label) in zip(axes.flat, panels):
        for h, style in zip(widths, ["s"] + ["o"] * (len(widths) - 1)):
            vals = np.array([e[name] for e in estimates[h]])
            finite = np.isfinite(vals)
            ax.plot(thetas[finite], vals[finite], style, ms=2.5, label=f"histogram, $h$ = {h:g}")
            if name == "kl":
                ax.plot(thetas[~finite], np.full((~finite).sum(), 1.0), style, ms=2.5, color=ax.lines[-1].get_color())
        if name != "kl":
            ax.plot(closed_thetas[moved], closed[name][moved], ".", color="k", ms=1, label="closed form")
        ax.set(xlabel=r"$\theta$", ylabel=label, ylim=(-0.05, 1.1))
    axes[1, 0].set_yticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "0.25", "0.5", "0.75", r"$+\infty$"])
    axes[0, 0].legend(loc="center right")
    axes[1, 1].plot(thetas, w1, "o", ms=2.5, color="C2", label="exact sample OT")
    axes[1, 1].plot(closed_thetas, closed["w1"], color="k", lw=0.8, label=r"$|\theta|$")
    axes[1, 1].set(xlabel=r"$\theta$", ylabel="$W_1$", ylim=(-0.05, 1.1))
    axes[1, 1].legend(loc="upper center")


def moved_line(z: torch.Tensor, theta) -> torch.Tensor:
    r"""The generator of Example 1, :math:`g_\theta(z) = (\theta, z)`, on heights ``z`` (shape (n,)).

    ``theta`` may be a float or a 0-dim tensor; a tensor that requires a gradient carries it to
    the points (the first column is ``theta`` expanded)."""
    z = torch.as_tensor(z).reshape(-1)
    th = theta if isinstance(theta, torch.Tensor) else torch.tensor(float(theta), dtype=z.dtype)
    return torch.stack([th.to(z.dtype).expand_as(z), z], dim=1)


def gradient_probes(
    target: torch.Tensor,
    z: torch.Tensor,
    thetas: Sequence[float],
    target_counts: np.ndarray,
    h: float,
    delta: float = 0.01,
) -> Tuple[Dict[float, float], Dict[float, float]]:
    r"""The derivative in :math:`\theta` of the exact sample :math:`W_1` and of the histogram JS.

    With the generator's noise ``z`` fixed, :math:`\partial_\theta W_1(\text{target},
    g_\theta(z))` by autograd through :func:`wganbook.transport.w1` (the envelope theorem:
    :math:`\sum_{ij} P^\star_{ij}\, \theta / \lVert x_i - g_\theta(z_j) \rVert`), and the central
    difference :math:`(JS(\theta + \delta) - JS(\theta - \delta)) / 2\delta` of the histogram JS
    (bins of width ``h``; ``target_counts`` = ``line_histogram(target, h)``).

    Returns
    -------
    (dict, dict)
        ``{theta: dW1/dtheta}`` and ``{theta: finite difference of JS}``.
    """
    h, delta = check_value("h", h, _POSITIVE), check_value("delta", delta, _POSITIVE)

    def js(th: float) -> float:
        counts = line_histogram(moved_line(z, th), h)
        return transport.histogram_divergences(target_counts, counts)["js"]

    grads, fds = {}, {}
    for th in _thetas(thetas):
        theta = torch.tensor(th, requires_grad=True)
        transport.w1(target, moved_line(z, theta)).backward()
        grads[th] = theta.grad.item()
        fds[th] = (js(th + delta) - js(th - delta)) / (2 * delta)
    return grads, fds


def ml_grid_optimum(theta: float, width: float, sigmas) -> float:
    r"""The noise width :math:`\sigma` on the grid ``sigmas`` with the largest expected log-likelihood.

    Maximises :func:`wganbook.likelihood.line_log_likelihood` ``(theta, sigma, width)`` over the
    grid; the exact optimum is :func:`wganbook.likelihood.ml_noise_width`,
    :math:`\sqrt{s^2 + \theta^2}`, which the grid value approaches as the grid is refined.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    if sigmas.size == 0 or not (sigmas > 0).all():
        raise ValueError("sigmas must be a non-empty grid of positive noise widths")
    return float(sigmas[np.argmax(likelihood.line_log_likelihood(theta, sigmas, width))])

"""Plots of the book: value surfaces, toy samples, sample grids, curves and histograms.

Every function draws on a given matplotlib ``ax``, labels its axes and returns ``ax``, so that
chapters compose figures freely (``fig, axes = plt.subplots(1, 3)``).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from wganbook.train.history import estimate_vs_exact as _pairs

__all__ = [
    "FIG_WIDTH",
    "FIG_DPI",
    "MIN_FONT_PT",
    "STYLE",
    "use_book_style",
    "figsize",
    "REAL_COLOR",
    "FAKE_COLOR",
    "value_surface",
    "toy_samples",
    "sample_grid",
    "training_curves",
    "weight_histogram",
    "layer_grad_norms",
    "gradient_norm_histogram",
    "estimate_vs_exact",
    "eval_curves",
]

#: Width of every figure of the book, in inches. On a 390 px phone the article column is about 342 px
#: wide; a figure of width ``w`` inches drawn there shows its 10-point text at ``10 * 342 / (72 * w)``
#: points, at least 9 points for ``w`` up to 5.28 in. 5.0 in leaves room for a legend or a colour bar that
#: the tight bounding box adds. Two panels side by side at most; more panels stack in rows.
FIG_WIDTH = 5.0
#: Resolution of the book's PNG figures, sharp on a high-density screen (800 px across).
FIG_DPI = 160
#: The smallest font of the book's figures, in points (ticks, legends and annotations included).
MIN_FONT_PT = 10

#: The figure style of the whole book (matplotlib rcParams), applied by
#: :func:`wganbook.bookkit.notebook.setup_notebook` and by the schematics and sliders.
STYLE = {
    "figure.dpi": FIG_DPI,
    "savefig.dpi": FIG_DPI,
    "figure.figsize": (FIG_WIDTH, 3.2),
    "figure.constrained_layout.use": True,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "font.size": MIN_FONT_PT,
    "axes.titlesize": MIN_FONT_PT + 1,
    "axes.labelsize": MIN_FONT_PT,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "legend.title_fontsize": MIN_FONT_PT,
    "figure.titlesize": MIN_FONT_PT + 2,
    "figure.labelsize": MIN_FONT_PT,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "lines.linewidth": 1.6,
    "image.interpolation": "nearest",
    "svg.fonttype": "none",
}


def use_book_style() -> None:
    """Apply :data:`STYLE` to matplotlib's global rcParams (the chapters' figures).

    Returns
    -------
    None
    """
    import matplotlib

    matplotlib.rcParams.update(STYLE)


def figsize(rows: int = 1, cols: int = 1, panel_height: Optional[float] = None) -> tuple:
    """The size of a figure of ``rows`` x ``cols`` panels in the book's style: :data:`FIG_WIDTH` wide.

    Parameters
    ----------
    rows : int, optional
        Rows of panels (>= 1).
    cols : int, optional
        Panels side by side: 1 or 2 (more would show their text below 9 points on a phone).
    panel_height : float, optional
        Height of one row in inches; by default square panels for two columns (``FIG_WIDTH / 2`` plus
        room for labels) and ``0.62 * FIG_WIDTH`` for one.

    Returns
    -------
    tuple of float
        ``(width, height)`` in inches.

    Raises
    ------
    ValueError
        If ``cols`` is not 1 or 2, or ``rows`` < 1, or ``panel_height`` <= 0.
    """
    if cols not in (1, 2):
        raise ValueError(f"cols must be 1 or 2 (panels side by side on a phone), got {cols!r}")
    if not isinstance(rows, int) or rows < 1:
        raise ValueError(f"rows must be a positive integer, got {rows!r}")
    if panel_height is None:
        panel_height = FIG_WIDTH / 2 + 0.3 if cols == 2 else 0.62 * FIG_WIDTH
    if panel_height <= 0:
        raise ValueError(f"panel_height must be > 0, got {panel_height!r}")
    return (FIG_WIDTH, round(rows * panel_height, 3))


#: Colour of real points (orange, as in the plots of gan_toy.py).
REAL_COLOR = "orange"
#: Colour of generated points (green, as in the plots of gan_toy.py).
FAKE_COLOR = "green"

_LABELS = {
    "w1_estimate": r"critic estimate $\mathbb{E}f(x) - \mathbb{E}f(G(z))$",
    "w1_exact": "exact batch $W_1$",
    "critic_loss": "critic loss",
    "penalty": "penalty",
    "grad_norm": r"mean $\|\nabla f\|$",
}


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x, dtype=np.float32)


def _module_device(module: nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def value_surface(
    ax,
    critic: nn.Module,
    real=None,
    fake=None,
    lim: float = 3.0,
    n: int = 128,
    levels: int = 20,
    cmap: str = "viridis",
    colorbar: bool = False,
    max_points: int = 512,
):
    r"""Contour plot of a 2-D critic :math:`f(x_1, x_2)` on :math:`[-l, l]^2`, as in gan_toy.py.

    The critic is evaluated on an ``n`` x ``n`` grid (no gradients, module mode unchanged); real
    points are drawn as orange "+", fake points as green "+".

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Target axes.
    critic : torch.nn.Module
        Maps (N, 2) -> (N,) or (N, 1).
    real, fake : torch.Tensor or array_like, shape (m, 2), optional
        Points to scatter (at most ``max_points`` of each).
    lim : float, optional
        Half-width :math:`l` of the square.
    n : int, optional
        Grid resolution.
    levels : int, optional
        Number of contour levels.
    cmap : str, optional
        Colour map.
    colorbar : bool, optional
        Add a colour bar labelled "critic value".
    max_points : int, optional
        Cap on scattered points per set.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    grid = np.linspace(-lim, lim, n, dtype=np.float32)
    xx, yy = np.meshgrid(grid, grid)
    pts = torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], axis=1))
    dev = _module_device(critic)
    with torch.no_grad():
        vals = []
        for i in range(0, pts.shape[0], 8192):
            vals.append(critic(pts[i : i + 8192].to(dev)).reshape(-1).float().cpu())
        zz = torch.cat(vals).numpy().reshape(n, n)
    cs = ax.contourf(xx, yy, zz, levels=levels, cmap=cmap)
    ax.contour(xx, yy, zz, levels=levels, colors="k", linewidths=0.3, alpha=0.5)
    if colorbar:
        ax.figure.colorbar(cs, ax=ax, label="critic value")
    if real is not None:
        r = _np(real)[:max_points]
        ax.scatter(r[:, 0], r[:, 1], c=REAL_COLOR, marker="+", s=30, label="real")
    if fake is not None:
        f = _np(fake)[:max_points]
        ax.scatter(f[:, 0], f[:, 1], c=FAKE_COLOR, marker="+", s=30, label="fake")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    return ax


def toy_samples(ax, real=None, fake=None, lim: Optional[float] = None, max_points: int = 2048, s: float = 4.0):
    """Scatter real (orange) and generated (green) 2-D points.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Target axes.
    real, fake : torch.Tensor or array_like, shape (m, 2), optional
        Points.
    lim : float, optional
        Symmetric axis limit (default: automatic).
    max_points : int, optional
        Cap on points per set.
    s : float, optional
        Marker size.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    if real is not None:
        r = _np(real)[:max_points]
        ax.scatter(r[:, 0], r[:, 1], s=s, c=REAL_COLOR, alpha=0.6, label="real")
    if fake is not None:
        f = _np(fake)[:max_points]
        ax.scatter(f[:, 0], f[:, 1], s=s, c=FAKE_COLOR, alpha=0.6, label="generated")
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if real is not None or fake is not None:
        ax.legend(loc="upper right", markerscale=3)
    return ax


def sample_grid(ax, images, nrow: int = 8, title: Optional[str] = None, padding: int = 1):
    r"""Show images in [-1, 1] as one grid (torchvision's ``make_grid``), mapped by :math:`(x+1)/2`.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Target axes.
    images : torch.Tensor, shape (N, C, H, W)
        Images in [-1, 1], C in {1, 3}.
    nrow : int, optional
        Images per row.
    title : str, optional
        Axes title.
    padding : int, optional
        Pixels between images.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax`` (ticks hidden; the axis labels say what is shown).
    """
    from torchvision.utils import make_grid

    x = images.detach().float().cpu() if isinstance(images, torch.Tensor) else torch.as_tensor(images).float()
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(x.shape)}")
    x = ((x + 1.0) / 2.0).clamp(0.0, 1.0)
    grid = make_grid(x, nrow=nrow, padding=padding, pad_value=1.0)
    img = grid.permute(1, 2, 0).numpy()
    if x.shape[1] == 1:
        ax.imshow(img[:, :, 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(img, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{x.shape[0]} samples")
    ax.set_ylabel(f"{x.shape[2]}x{x.shape[3]} px")
    if title is not None:
        ax.set_title(title)
    return ax


def _median_filter(y: np.ndarray, k: int) -> np.ndarray:
    if k <= 1 or y.size < 3:
        return y
    from scipy.signal import medfilt

    k = min(k, y.size if y.size % 2 == 1 else y.size - 1)
    return medfilt(y, kernel_size=k if k % 2 == 1 else k + 1)


def training_curves(
    ax,
    history: Mapping[str, Sequence[float]],
    keys: Iterable[str] = ("w1_estimate", "w1_exact"),
    smooth: int = 1,
    labels: Optional[Mapping[str, str]] = None,
    logy: bool = False,
):
    r"""Plot history columns against generator steps.

    ``"w1_exact"`` is plotted against ``"w1_step"``, evaluation metrics against ``"eval_step"``,
    everything else against ``"step"``; missing or empty columns are skipped. ``smooth`` > 1
    applies a median filter of that width (as WGAN's ``medfilt`` curves).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Target axes.
    history : mapping
        A training history (``TrainResult.history``).
    keys : iterable of str, optional
        Columns to plot.
    smooth : int, optional
        Median-filter width.
    labels : mapping, optional
        Legend labels per key.
    logy : bool, optional
        Logarithmic y axis.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    labels = dict(labels or {})
    for key in keys:
        y = history.get(key)
        if y is None or len(y) == 0:
            continue
        xkey = None
        if key == "w1_exact":
            xkey = "w1_step"
        elif len(history.get("step", ())) == len(y):
            xkey = "step"
        elif len(history.get("eval_step", ())) == len(y):
            xkey = "eval_step"
        x = np.asarray(history[xkey] if xkey in history else range(len(y)), dtype=float)
        yv = _median_filter(np.asarray(y, dtype=float), smooth)
        n = min(len(x), len(yv))
        ax.plot(x[:n], yv[:n], label=labels.get(key, _LABELS.get(key, key)))
    ax.set_xlabel("generator step")
    ax.set_ylabel("value")
    if logy:
        ax.set_yscale("log")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    return ax


def weight_histogram(
    ax,
    module: nn.Module,
    bins: int = 50,
    range: Optional[tuple] = None,
    weights_only: bool = True,
    label: Optional[str] = None,
    **hist_kw,
):
    """Histogram of a module's parameters (WGAN-GP Fig. 1b, right).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Target axes.
    module : torch.nn.Module
        The network (e.g. a critic).
    bins : int, optional
        Number of bins.
    range : tuple of float, optional
        Histogram range (e.g. ``(-0.02, 0.02)`` for clipping at 0.01).
    weights_only : bool, optional
        Use only parameters with 2+ dimensions (weight matrices and kernels, not biases).
    label : str, optional
        Legend label.
    **hist_kw
        Passed to ``ax.hist``.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    ps = [p.detach().reshape(-1).float().cpu() for p in module.parameters() if (p.ndim >= 2 or not weights_only)]
    values = torch.cat(ps).numpy() if ps else np.zeros(0)
    ax.hist(values, bins=bins, range=range, label=label, **hist_kw)
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
    if label is not None:
        ax.legend()
    return ax


def layer_grad_norms(ax, norms_by_label: Mapping[str, Sequence[float]], reverse: bool = True):
    r"""Gradient norm of the critic loss w.r.t. each layer's activations, log scale (WGAN-GP Fig. 1b).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Target axes.
    norms_by_label : mapping of str to sequence of float
        For each curve (e.g. ``"c = 0.01"``), the norms of layers 1..L (input side first).
    reverse : bool, optional
        Draw the x axis from the last layer to the first, as in the paper.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    for label, norms in norms_by_label.items():
        y = np.asarray(norms, dtype=float)
        ax.plot(np.arange(1, len(y) + 1), y, marker="o", label=str(label))
    ax.set_yscale("log")
    if reverse:
        ax.invert_xaxis()
    ax.set_xlabel("critic layer")
    ax.set_ylabel("gradient norm (log scale)")
    if norms_by_label:
        ax.legend()
    return ax


def gradient_norm_histogram(ax, norms, bins: int = 50, label: Optional[str] = None, **hist_kw):
    r"""Histogram of input-gradient norms :math:`\lVert \nabla_x f(x) \rVert_2` (1 marks a 1-Lipschitz tight critic).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Target axes.
    norms : torch.Tensor or array_like, shape (n,)
        Gradient norms.
    bins : int, optional
        Number of bins.
    label : str, optional
        Legend label.
    **hist_kw
        Passed to ``ax.hist``.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    v = _np(norms).reshape(-1)
    ax.hist(v, bins=bins, label=label, **hist_kw)
    ax.axvline(1.0, color="k", linestyle="--", linewidth=1)
    ax.set_xlabel(r"$\|\nabla_x f(x)\|_2$")
    ax.set_ylabel("count")
    if label is not None:
        ax.legend()
    return ax


def estimate_vs_exact(axes, histories: Mapping[str, Mapping[str, Sequence[float]]], logy: bool = True):
    r"""The critic's W1 estimate next to the exact batch W1 along training, and their ratio.

    For each history (a ``TrainResult.history`` recorded with ``w1_every``), the left axes show
    the exact minibatch :math:`W_1` (solid) and the critic estimate
    :math:`\hat W = \bar f(x) - \bar f(G(z))` of the same minibatches (dashed, same colour); the
    right axes show :math:`\hat W / W_1`, the factor the critic's loss carries
    (``wganbook.train.history.estimate_vs_exact`` pairs the values). On logarithmic axes non-positive
    estimates are not drawn.

    Parameters
    ----------
    axes : sequence of two matplotlib.axes.Axes
        Target axes (values, ratio).
    histories : mapping of str to mapping
        Label -> training history.
    logy : bool, optional
        Logarithmic y axes.

    Returns
    -------
    sequence of matplotlib.axes.Axes
        ``axes``.
    """

    ax_v, ax_r = axes
    for i, (label, history) in enumerate(histories.items()):
        steps, est, ex = _pairs(history)
        color = f"C{i}"
        ax_v.plot(steps, ex, color=color, marker=".", ms=3, label=f"{label}: exact batch $W_1$")
        keep = est > 0 if logy else np.ones_like(est, dtype=bool)
        ax_v.plot(steps[keep], est[keep], color=color, ls="--", label=f"{label}: critic estimate")
        ratio = est / ex
        keep_r = ratio > 0 if logy else np.ones_like(ratio, dtype=bool)
        ax_r.plot(steps[keep_r], ratio[keep_r], color=color, marker=".", ms=3, label=str(label))
    ax_v.set_xlabel("generator step")
    ax_v.set_ylabel("$W_1$ (exact) and critic estimate")
    ax_r.set_xlabel("generator step")
    ax_r.set_ylabel(r"critic estimate / exact $W_1$")
    if logy:
        ax_v.set_yscale("log")
        ax_r.set_yscale("log")
    for ax in (ax_v, ax_r):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return axes


def eval_curves(
    ax, records: Sequence[Mapping], key: str, reference: Optional[float] = None, reference_label: str = "reference"
):
    r"""Plot an evaluation metric of several runs against the generator step.

    One line per record of :func:`wganbook.lab.sweeps.run_grid`, ``record["history"][key]`` against
    ``record["history"]["eval_step"]`` (what ``TrainConfig(eval_every=..., metric=...)``
    records), labelled by the record's combination and seed; ``reference`` adds a dashed
    horizontal line (e.g. the value of real samples).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    records : list of dict
        Run records with ``"history"``, ``"combo"`` and ``"seed"``.
    key : str
        The evaluated metric (e.g. ``"high_quality"``).
    reference : float, optional
        Value of the reference line.
    reference_label : str, optional
        Its legend label.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.

    Raises
    ------
    ValueError
        If a record has no ``key`` evaluations or they do not match its ``"eval_step"``.
    """
    for rec in records:
        hist = rec.get("history", {})
        y, x = hist.get(key), hist.get("eval_step")
        if not y or x is None or len(x) != len(y):
            raise ValueError(
                f"record {rec.get('combo')} seed {rec.get('seed')} has no {key!r} "
                f"evaluations matching its 'eval_step'; train with eval_every > 0 and "
                f"a metric that returns {key!r}"
            )
        label = ", ".join(str(v) for v in rec.get("combo", {}).values())
        ax.plot(x, y, marker=".", ms=4, label=f"{label}, seed {rec.get('seed')}")
    if reference is not None:
        ax.axhline(float(reference), color="k", lw=0.8, ls="--", label=reference_label)
    ax.set_xlabel("generator step")
    ax.set_ylabel(key.replace("_", " "))
    return ax

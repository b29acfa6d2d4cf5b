r"""Two figures a reader can move in the static HTML book: no kernel, no network, laptop or phone.

Each figure is a few precomputed frames (matplotlib's ``FuncAnimation.to_jshtml``: PNG images embedded
in the page, an ``<input type="range">`` slider and inline JavaScript), cleaned of the one off-site
reference matplotlib's template carries (a Font Awesome stylesheet for the buttons' icons, replaced
by plain characters) and made to fit a phone's width:

* :func:`parallel_lines_slider` -- chapter 1's parallel lines (WGAN's Example 1): a slider over
  :math:`\theta` moves :math:`P_\theta` next to :math:`P_0` and shows TV, KL, JS and :math:`W_1` at once
  (:func:`parallel_lines_frames` gives each frame's numbers, from :func:`wganbook.transport.parallel_lines`);
* :func:`penalty_slope_slider` -- the penalised critic's slope law: a slider over :math:`\lambda` shows the
  exact optimal WGAN-GP critic of chapter 1's two Gaussians next to the Kantorovich potential (slope 1),
  and the law :math:`1 + d/(2\lambda)` (:func:`penalty_slope_frames` gives each frame's numbers, from
  :func:`wganbook.lab.gaussians1d.gp_slope` and :func:`wganbook.divergence.gp_slope_1d`).

In a notebook, a code cell (tag ``hide-input``) whose last expression is ``interactive.parallel_lines_slider()``
shows the slider once. The output is deterministic: the same arguments give the same HTML, byte for byte.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Dict, List, Sequence

import matplotlib as mpl
import matplotlib.style
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure

from wganbook import divergence, transport
from wganbook._util import Float, Seq, check_value
from wganbook.lab import plotting as _plotting
from wganbook.lab.gaussians1d import gp_slope

__all__ = [
    "PENALTY_EXAMPLE",
    "parallel_lines_frames",
    "penalty_slope_frames",
    "parallel_lines_slider",
    "penalty_slope_slider",
]

#: The 1-D example of the slope law is chapter 1's pair of Gaussians, the real one on the left and the fake one
#: on the right.
PENALTY_EXAMPLE = {"mu_r": -2.0, "mu_g": 2.0, "sigma": 0.5}

_DEFAULT_THETAS = tuple(k / 10 for k in range(-10, 11))  # 21 offsets in [-1, 1], 0 included exactly
_DEFAULT_LAMS = tuple(float(10 ** (k / 4)) for k in range(-8, 9))  # 17 weights, 0.01 ... 100 (0.1, 1, 10 too)
_MAX_FRAMES = 60  # every frame is one embedded PNG (~20 kB)
# the book's figure width; 110 dpi (not the figures' 160) keeps a slider's ~20 frames under 0.9 MB
_FIGSIZE, _DPI = (_plotting.FIG_WIDTH, 2.7), 110
_RC = dict(
    _plotting.STYLE,
    **{"savefig.bbox": "standard", "savefig.dpi": _DPI, "svg.hashsalt": "wganbook"},
)
_ICONS = {  # Font Awesome classes of matplotlib's buttons -> characters every system font has (no web font)
    "fa fa-minus": "\u2212",
    "fa fa-fast-backward": "|\u25c0\u25c0",
    "fa fa-step-backward": "|\u25c0",
    "fa fa-play fa-flip-horizontal": "\u25c0",
    "fa fa-pause": "\u275a\u275a",
    "fa fa-play": "\u25b6",
    "fa fa-step-forward": "\u25b6|",
    "fa fa-fast-forward": "\u25b6\u25b6|",
    "fa fa-plus": "+",
}


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------
def _grid(name: str, values, default: Sequence[float], positive: bool = False) -> List[float]:
    """A slider grid: ``default`` for None, else 2 to 60 finite, strictly increasing values (> 0 if ``positive``)."""
    if values is None:
        return [float(v) for v in default]
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"{name} must be a 1-D sequence of numbers; got an array of shape {values.shape}")
        values = values.tolist()
    spec = Float(lo=0, lo_open=True) if positive else Float()
    vals = check_value(name, values, Seq(spec))
    if not 2 <= len(vals) <= _MAX_FRAMES:
        raise ValueError(f"{name} must hold 2 to {_MAX_FRAMES} values (one frame each); got {len(vals)}")
    if any(b <= a for a, b in zip(vals, vals[1:])):
        raise ValueError(f"{name} must be strictly increasing (the slider's order); got {vals}")
    return vals


def _num(v: float, digits: int = 3) -> str:
    """A short number for the frames' titles: ∞, integers without decimals, else ``digits`` significant digits."""
    if math.isinf(v):
        return "\u221e"
    if float(v).is_integer() and abs(v) < 1e6:
        return f"{int(v)}"
    return f"{v:.{digits}g}"


# ---------------------------------------------------------------------------------------------
# The frames' numbers
# ---------------------------------------------------------------------------------------------
def parallel_lines_frames(thetas=None) -> List[Dict[str, object]]:
    r"""The numbers of each frame of :func:`parallel_lines_slider`: the four distances at each offset.

    From :func:`wganbook.transport.parallel_lines` (WGAN's Example 1, :math:`P_0` uniform on
    :math:`\{0\} \times [0, 1]`, :math:`P_\theta` on :math:`\{\theta\} \times [0, 1]`): TV = 1, KL = :math:`+\infty`,
    JS = :math:`\log 2` for :math:`\theta \ne 0`, all three 0 at :math:`\theta = 0`, and :math:`W_1 = |\theta|`.

    Parameters
    ----------
    thetas : sequence of float, optional
        The slider's offsets: 2 to 60 finite, strictly increasing values (default: -1, -0.9, ..., 1).

    Returns
    -------
    list of dict
        One per offset: ``"theta"``, ``"tv"``, ``"kl"``, ``"js"``, ``"w1"`` (floats) and ``"title"`` (the text the
        frame shows).
    """
    frames = []
    for th in _grid("thetas", thetas, _DEFAULT_THETAS):
        d = transport.parallel_lines(th)
        title = f"TV {_num(d['tv'])}   KL {_num(d['kl'])}   JS {_num(d['js'], 2)}   W\u2081 {d['w1']:.2f}"
        frames.append({"theta": th, **{k: float(d[k]) for k in ("tv", "kl", "js", "w1")}, "title": title})
    return frames


def _penalty_profile(lam: float, x: np.ndarray) -> np.ndarray:
    """The optimal WGAN-GP critic's signed slope on ``x`` for chapter 1's Gaussians (exact, given the interpolates)."""
    real = divergence.GaussianMixture1D((PENALTY_EXAMPLE["mu_r"],), (PENALTY_EXAMPLE["sigma"],))
    fake = divergence.GaussianMixture1D((PENALTY_EXAMPLE["mu_g"],), (PENALTY_EXAMPLE["sigma"],))
    D = divergence.cdf_gap(real, fake, x)
    r = divergence.interpolation_density_1d(real, fake, x)
    return np.sign(D) * divergence.gp_slope_1d(D, r, lam)


def penalty_slope_frames(lams=None) -> List[Dict[str, object]]:
    r"""The numbers of each frame of :func:`penalty_slope_slider`: the penalised critic's slope at each weight.

    The example is chapter 1's: real data :math:`N(-2, 0.5^2)`, fake data :math:`N(2, 0.5^2)`, so the penalised
    real-fake pairs are about :math:`d = 4` apart. The slope law (chapter 1's derivation,
    :func:`wganbook.lab.gaussians1d.gp_slope`) is :math:`|f'| \approx 1 + d/(2\lambda)`; the exact optimum of the
    penalised objective for the interpolates' density :math:`r` has :math:`|f'| = 1 + |D|/(2\lambda r)`
    (:func:`wganbook.divergence.gp_slope_1d`), which at the midpoint is :math:`1 + 1/(2\lambda r(0))` with
    :math:`1/r(0) \approx 3.87`: a little below the law, because pairs drawn closer than :math:`d` crowd the
    middle. Both tend to 1, the Kantorovich potential's slope, as :math:`\lambda` grows.

    Parameters
    ----------
    lams : sequence of float, optional
        The slider's penalty weights: 2 to 60 finite, positive, strictly increasing values (default: 17 values
        :math:`10^{k/4}`, :math:`k = -8, \dots, 8`, from 0.01 to 100).

    Returns
    -------
    list of dict
        One per weight: ``"lam"``, ``"slope"`` (the law :math:`1 + d/(2\lambda)`), ``"slope_mid"`` (the exact
        optimum's slope at the midpoint between the modes) and ``"title"`` (the text the frame shows).
    """
    d = abs(PENALTY_EXAMPLE["mu_g"] - PENALTY_EXAMPLE["mu_r"])
    frames = []
    for lam in _grid("lams", lams, _DEFAULT_LAMS, positive=True):
        slope = gp_slope(d, lam)
        mid = float(abs(_penalty_profile(lam, np.array([-1.0, 0.0, 1.0]))[1]))
        title = f"\u03bb = {_num(lam, 2)}:  slope \u2248 1 + d/2\u03bb = {_num(slope, 3)}"
        frames.append({"lam": lam, "slope": slope, "slope_mid": mid, "title": title})
    return frames


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------
def _offline_html(raw: str, name: str, alt: str, caption: str) -> str:
    """matplotlib's ``to_jshtml`` page, made offline, deterministic and phone-sized, in a captioned figure."""
    ids = set(re.findall(r'id="_anim_img([0-9a-f]+)"', raw))
    if len(ids) != 1:
        raise RuntimeError("unexpected to_jshtml output: no single animation id (matplotlib changed its template?)")
    (old,) = ids
    # A deterministic id (matplotlib draws a random uuid), unique per figure and content.
    new = f"{name}{hashlib.sha256(raw.replace(old, '').encode()).hexdigest()[:12]}"
    html = raw.replace(old, new)
    # The only off-site reference: the Font Awesome stylesheet for the buttons' icons.
    html = re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*"\s*/?>', "", html)
    html = re.sub(r'<i class="(fa [^"]*)"></i>', lambda m: _ICONS.get(m.group(1), "\u2022"), html, flags=re.MULTILINE)
    html = html.replace(f'<img id="_anim_img{new}">', f'<img id="_anim_img{new}" alt="{alt}">')
    box = f"wgb_box_{new}"
    style = (
        "<style>\n"
        f"#{box} {{ max-width: 100%; overflow-x: auto; margin: 0.5em 0; }}\n"
        f"#{box} .animation {{ max-width: 100%; }}\n"
        f"#{box} img {{ max-width: 100%; height: auto; }}\n"
        f"#{box} input[type=range].anim-slider {{ width: 100%; max-width: 374px; box-sizing: border-box; }}\n"
        f"#{box} .anim-buttons button {{ width: 34px; height: 28px; font-size: 12px; line-height: 1; "
        "white-space: nowrap; }\n"
        "</style>\n"
    )
    html = f'{style}<figure id="{box}" class="wgb-slider">\n{html}\n<figcaption>{caption}</figcaption>\n</figure>\n'
    if re.search(r"https?://", html) or "fa fa-" in html:
        raise RuntimeError("the slider's HTML still references an external resource (matplotlib changed its template?)")
    return html


def _render(draw, n: int, name: str, alt: str, caption: str):
    """Draw ``n`` frames with ``draw(fig, i)`` and return the offline slider as ``IPython.display.HTML``."""
    from IPython.display import HTML

    with mpl.style.context("default"), mpl.rc_context(_RC):
        fig = Figure(figsize=_FIGSIZE, dpi=_DPI, layout="constrained")  # not registered with pyplot: never shown

        def update(i):
            fig.clear()
            draw(fig, i)
            return []

        anim = FuncAnimation(fig, update, frames=n, interval=500, repeat=False, cache_frame_data=False)
        raw = anim.to_jshtml(default_mode="once")
        fig.clear()
    return HTML(_offline_html(raw, name, alt, caption))


def _draw_lines(fig, frames, i):
    frame = frames[i]
    th = frame["theta"]
    thetas = np.array([f["theta"] for f in frames])
    span = max(1.0, float(np.abs(thetas).max()))
    ax0, ax1 = fig.subplots(1, 2, width_ratios=(1, 1.35))

    # Left: the two segments, and the plan that moves every point of P0 by theta.
    ax0.plot([0, 0], [0, 1], color="C0", lw=7, solid_capstyle="butt")
    ax0.plot([th, th], [0, 1], color="C3", lw=3.5, solid_capstyle="butt")
    if th == 0:
        ax0.text(0, 1.05, "P\u2080 = P\u03b8", color="0.2", ha="center", va="bottom")
    else:
        near = abs(th) < 0.3 * span  # labels side by side, away from each other; centred otherwise
        ax0.text(0, 1.05, "P\u2080", color="C0", ha=("right" if th > 0 else "left") if near else "center", va="bottom")
        ax0.text(th, 1.05, "P\u03b8", color="C3", ha=("left" if th > 0 else "right") if near else "center", va="bottom")
    if abs(th) > 0.05 * span:
        for y in (0.15, 0.5, 0.85):
            ax0.annotate("", xy=(th, y), xytext=(0, y), arrowprops={"arrowstyle": "->", "color": "0.45", "lw": 1})
    ax0.set(xlim=(-1.15 * span, 1.15 * span), ylim=(-0.08, 1.25), xlabel="x", yticks=[0, 1])
    ax0.set_title(f"\u03b8 = {th:.2f}")

    # Right: the four distances as functions of theta, the current theta marked.
    top = 1.3 * span
    lo, hi = float(thetas.min()), float(thetas.max())
    for side in ((lo, 0.0), (0.0, hi)):
        if side[1] > side[0]:
            ax1.plot(side, (1, 1), color="C2", lw=2)
            ax1.plot(side, (math.log(2),) * 2, color="C1", lw=2)
            ax1.plot(side, (top,) * 2, color="C4", lw=1.5, ls=":")
    w = np.linspace(lo, hi, 201)
    ax1.plot(w, np.abs(w), color="C0", lw=2)
    if lo <= 0 <= hi:
        ax1.plot([0, 0, 0], [1, math.log(2), top], "o", mfc="white", ms=6, mec="0.3")  # the jumps at 0
        ax1.plot([0], [0], "o", color="k", ms=5)  # all four are 0 at theta = 0
    ax1.text(hi, 1.02, "TV", color="C2", ha="right", va="bottom")
    ax1.text(hi, math.log(2) + 0.02, "JS", color="C1", ha="right", va="bottom")
    ax1.text(hi, top - 0.03 * span, "KL = \u221e", color="C4", ha="right", va="top")
    ax1.text(0.97 * hi if hi > 0 else hi, abs(hi) * 0.62, "W\u2081", color="C0", ha="right", va="center")
    ax1.axvline(th, color="0.6", lw=1, zorder=0)
    ax1.plot([th], [frame["w1"]], "o", color="C0", ms=7)
    ax1.plot([th], [frame["js"]], "o", color="C1", ms=7)
    ax1.plot([th], [frame["tv"]], "o", color="C2", ms=7)
    if math.isinf(frame["kl"]):
        ax1.plot([th], [top], "^", color="C4", ms=9, clip_on=False)
    ax1.set(xlim=(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)), ylim=(-0.05, top + 0.08 * span), xlabel="\u03b8")
    ax1.set_title(frame["title"])


def _draw_penalty(fig, frames, i, x, profiles, law_grid):
    frame = frames[i]
    lam = frame["lam"]
    mu_r, mu_g, sigma = PENALTY_EXAMPLE["mu_r"], PENALTY_EXAMPLE["mu_g"], PENALTY_EXAMPLE["sigma"]
    ax0, ax1 = fig.subplots(1, 2)

    # Left: the optimal penalised critic (f(0) = 0) against the Kantorovich potential -x.
    ylim = 5.5
    for mu, color, label in ((mu_r, "orange", "real"), (mu_g, "green", "fake")):
        bump = np.exp(-0.5 * ((x - mu) / sigma) ** 2)
        ax0.fill_between(x, -ylim, -ylim + 2.2 * bump, color=color, alpha=0.3, lw=0, label=label)
    ax0.plot(x, -x, color="k", lw=1.2, ls="--", label="slope 1")
    ax0.plot(x, profiles[i], color="C4", lw=2.2, label="penalised")
    ax0.set(xlim=(x[0], x[-1]), ylim=(-ylim, ylim), xlabel="x", ylabel="critic f(x)")
    handles, labels = ax0.get_legend_handles_labels()
    order = [2, 3, 0, 1]  # lines first, then the data
    ax0.legend(
        [handles[k] for k in order],
        [labels[k] for k in order],
        loc="upper right",
        handlelength=1.3,
        borderpad=0.3,
        labelspacing=0.25,
        framealpha=0.9,
    )
    ax0.set_title(f"d = {_num(abs(mu_g - mu_r))}:  slope at 0 = {_num(frame['slope_mid'], 3)}")

    # Right: the law 1 + d / (2 lambda) over the weights, the current one marked.
    ax1.plot(law_grid, [gp_slope(abs(mu_g - mu_r), v) for v in law_grid], color="C4", lw=2)
    ax1.axhline(1.0, color="k", lw=1.2, ls="--")
    ax1.text(law_grid[0] * 1.15, 0.92, "Kantorovich potential: 1", ha="left", va="top")
    ax1.plot([lam], [frame["slope"]], "o", color="C4", ms=8, clip_on=False)
    ax1.set(xscale="log", yscale="log", xlabel="\u03bb", ylabel="slope |f\u2032|")
    ax1.set_xlim(law_grid[0], law_grid[-1])
    ax1.set_ylim(0.5, 1.6 * max(gp_slope(abs(mu_g - mu_r), law_grid[0]), 2.0))
    ax1.set_title(frame["title"])


def parallel_lines_slider(thetas=None):
    r"""A :math:`\theta` slider over chapter 1's parallel lines, showing TV, KL, JS and :math:`W_1` together.

    Each frame shows, left, the segments :math:`P_0 = \{0\} \times [0, 1]` and :math:`P_\theta = \{\theta\} \times
    [0, 1]` with the transport plan that moves every point by :math:`\theta`; right, the four distances as functions
    of :math:`\theta` (TV = 1, JS = :math:`\log 2` and KL = :math:`\infty`, drawn as a dotted line at the top, for
    every :math:`\theta \ne 0`; :math:`W_1 = |\theta|`), the current :math:`\theta` marked and its values in the
    title (:func:`parallel_lines_frames`).

    Parameters
    ----------
    thetas : sequence of float, optional
        The slider's offsets: 2 to 60 finite, strictly increasing values (default: 21 values -1, -0.9, ..., 1).

    Returns
    -------
    IPython.display.HTML
        A self-contained slider (embedded PNG frames, inline JavaScript, no network), about 0.6 MB by default.
    """
    frames = parallel_lines_frames(thetas)
    alt = "Two parallel segments and the distances TV, KL, JS and W1 between them, for the offset on the slider"
    caption = (
        "Move the slider: P\u03b8 slides past P\u2080. TV, KL and JS jump at \u03b8 = 0 and stay flat elsewhere; "
        "only W\u2081 = |\u03b8| changes smoothly, and so only W\u2081 tells the generator which way to go."
    )
    return _render(lambda fig, i: _draw_lines(fig, frames, i), len(frames), "wgb_lines_", alt, caption)


def penalty_slope_slider(lams=None):
    r"""A :math:`\lambda` slider over the penalised critic's slope law, :math:`|f'| \approx 1 + d/(2\lambda)`.

    Each frame shows, left, the exact optimal WGAN-GP critic of chapter 1's two Gaussians (real
    :math:`N(-2, 0.5^2)`, fake :math:`N(2, 0.5^2)`, :math:`d = 4`; :math:`f(0) = 0`) next to the Kantorovich
    potential of slope 1, with its slope at the midpoint; right, the law :math:`1 + d/(2\lambda)` over
    :math:`\lambda` (log axes), the current :math:`\lambda` marked and its slope in the title
    (:func:`penalty_slope_frames`). As :math:`\lambda` grows the slope falls towards 1.

    Parameters
    ----------
    lams : sequence of float, optional
        The slider's penalty weights: 2 to 60 finite, positive, strictly increasing values (default: 17 values from
        0.01 to 100, a quarter decade apart).

    Returns
    -------
    IPython.display.HTML
        A self-contained slider (embedded PNG frames, inline JavaScript, no network), about 0.6 MB by default.
    """
    frames = penalty_slope_frames(lams)
    x = np.linspace(-3.5, 3.5, 281)
    profiles = []
    for f in frames:
        slope = _penalty_profile(f["lam"], x)
        crit = np.concatenate([[0.0], np.cumsum(0.5 * (slope[1:] + slope[:-1]) * np.diff(x))])
        profiles.append(crit - np.interp(0.0, x, crit))
    lams_all = [f["lam"] for f in frames]
    law_grid = np.geomspace(min(lams_all), max(lams_all), 200)
    alt = "The optimal penalised critic of two Gaussians and its slope 1 + d/(2 lambda), for the lambda on the slider"
    caption = (
        "Move the slider: the larger the penalty weight \u03bb, the closer the optimal penalised critic's slope "
        "comes to 1, the slope of the Kantorovich potential; a small \u03bb buys a steeper critic."
    )
    draw = lambda fig, i: _draw_penalty(fig, frames, i, x, profiles, law_grid)  # noqa: E731
    return _render(draw, len(frames), "wgb_slope_", alt, caption)

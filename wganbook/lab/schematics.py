r"""Pictures of the intuition: four schematics drawn from the package's own maths.

Each figure function returns a matplotlib ``Figure`` made with ``pyplot`` (so a notebook cell
``fig = schematics.earth_mover()`` shows it once), is deterministic, and draws only numbers that a
small pure function of this module computes from the package's maths; the tests check those
numbers against closed forms.

- :func:`earth_mover` (chapter 1): :math:`W_1` as the cost of moving sand. A generated pile and a
  real pile on a few positions, the optimal transport plan as arrows (width ~ mass), the coupling
  matrix with its marginals, and :math:`W_1` computed by the exact solver
  (:func:`earth_mover_plan`).
- :func:`critic_vs_discriminator` (chapter 2): on two separated 1-D bumps, the GAN's optimal
  discriminator :math:`D^\star = p/(p+q)` (saturated and flat on the fake data) next to the WGAN
  critic, an optimal 1-Lipschitz Kantorovich potential (slope 1 from the fake towards the real
  data) (:func:`discriminator_and_critic`).
- :func:`lipschitz_routes` (chapter 4): three ways to a Lipschitz critic: weight clipping
  (:func:`clipping_example`), the gradient penalty at real-fake interpolates
  (:func:`penalty_example`) and spectral normalisation (:func:`spectral_example`).
- :func:`critic_tracking` (chapter 6): on WGAN's parallel lines, the true :math:`W_1(\theta)`,
  the expected exact :math:`W_1` of two finite batches, and the estimate of a penalised critic
  trained a few steps: not :math:`W_1`, but its slope still points the generator the right way
  (:func:`tracking_curves`).

Colours are the Okabe-Ito palette (colour-blind safe): real data blue, generated data orange.
"""

from __future__ import annotations

import math
from typing import Dict

import numpy as np
import torch
from torch import nn

from wganbook._util import Float, Int, check_value
from wganbook.divergence import GaussianMixture1D, cdf_gap
from wganbook.lab import plotting as _plotting
from wganbook.lab.gaussians1d import gp_slope, optimal_discriminator
from wganbook.lipschitz import clip_weights_, sample_penalty_points, share_at_bound, singular_values, spectral_norms
from wganbook.transport import parallel_lines, parallel_lines_excess, transport_plan

__all__ = [
    "REAL_COLOR",
    "FAKE_COLOR",
    "earth_mover_plan",
    "earth_mover",
    "discriminator_and_critic",
    "critic_vs_discriminator",
    "clipping_example",
    "penalty_example",
    "spectral_example",
    "lipschitz_routes",
    "tracking_curves",
    "critic_tracking",
]

#: Real data (Okabe-Ito blue).
REAL_COLOR = "#0072B2"
#: Generated data (Okabe-Ito orange).
FAKE_COLOR = "#E69F00"
_ACCENT = "#D55E00"  # Okabe-Ito vermillion
_GREEN = "#009E73"  # Okabe-Ito bluish green
_GREY = "#777777"
_GAP = 1.2  # half the vertical gap between the two piles of earth_mover

#: Positions and masses (in units of sand) of the two piles of :func:`earth_mover_plan`.
GENERATED_PILE = ((0.0, 1.0, 2.0, 3.0, 4.0, 5.0), (1, 3, 4, 2, 1, 1))
REAL_PILE = ((2.0, 3.0, 4.0, 5.0, 6.0, 7.0), (1, 1, 2, 4, 3, 1))

_RC = dict(_plotting.STYLE, **{"savefig.bbox": "tight"})


def _finish(fig):
    """Tick labels at 10 pt whatever the global rcParams are when the figure is drawn."""
    for ax in fig.axes:
        ax.tick_params(labelsize=_RC["xtick.labelsize"])
    return fig


def _figure(figsize, **kw):
    import matplotlib.pyplot as plt

    with plt.rc_context(_RC):
        return plt.figure(figsize=figsize, layout="constrained", **kw)


# ---------------------------------------------------------------------------------------------
# 1. earth mover (chapter 1)
# ---------------------------------------------------------------------------------------------
def earth_mover_plan() -> Dict[str, object]:
    r"""The two sand piles of :func:`earth_mover`, an optimal plan between them, and :math:`W_1`.

    The generated pile :math:`\mu = \sum_i a_i \delta_{x_i}` and the real pile
    :math:`\nu = \sum_j b_j \delta_{y_j}` are ``GENERATED_PILE`` and ``REAL_PILE``
    (masses in units of sand, divided by the total so that both are probabilities).
    :math:`W_1 = \min_P \sum_{ij} P_{ij}|x_i - y_j|` is solved exactly by
    :func:`wganbook.transport.transport_plan`. On the line many plans can be optimal (moving two
    grains past each other costs the same as not crossing them); the plan drawn is the
    *monotone* one, which never crosses: it is the exact solution (same solver) for the lifted
    cost :math:`\sqrt{(x_i - y_j)^2 + 1}`, strictly convex in :math:`x_i - y_j`, whose unique
    optimum is the monotone plan, and the monotone plan is optimal for :math:`|x_i - y_j|` too
    (so its cost equals :math:`W_1`).

    Returns
    -------
    dict
        ``"x"``, ``"a"`` (generated positions and masses), ``"y"``, ``"b"`` (real), ``"units"``
        (units of sand in each pile), ``"plan"`` (the monotone optimal plan, shape ``(n, m)``,
        total mass 1), ``"plan_cost"`` (:math:`\sum P_{ij}|x_i - y_j|`) and ``"w1"`` (the exact
        :math:`W_1` of the solver for the cost :math:`|x - y|`).
    """
    x, ua = (np.asarray(v, dtype=np.float64) for v in GENERATED_PILE)
    y, ub = (np.asarray(v, dtype=np.float64) for v in REAL_PILE)
    units = int(ua.sum())
    a, b = ua / units, ub / ub.sum()
    _, w1 = transport_plan(x, y, a, b)
    lifted_x = np.stack([x, np.zeros_like(x)], axis=1)
    lifted_y = np.stack([y, np.ones_like(y)], axis=1)
    plan, _ = transport_plan(lifted_x, lifted_y, a, b)
    plan_cost = float((plan * np.abs(x[:, None] - y[None, :])).sum())
    return {"x": x, "a": a, "y": y, "b": b, "units": units, "plan": plan, "plan_cost": plan_cost, "w1": w1}


def _sand_columns(ax, pos, units, sign, color):
    for p, k in zip(pos, units):
        for level in range(int(round(k))):
            y0 = _GAP + level if sign > 0 else -(_GAP + level + 1)
            ax.add_patch(
                _rectangle((p - 0.4, y0), 0.8, 1.0, facecolor=color, edgecolor="white", linewidth=1.2, zorder=3)
            )


def _rectangle(*args, **kw):
    from matplotlib.patches import Rectangle

    return Rectangle(*args, **kw)


def earth_mover():
    r"""Chapter 1's picture of :math:`W_1`: moving a pile of sand into another, at least cost.

    Left: the generated pile (above, orange) and the real pile (below, blue), one block per unit
    of sand; each arrow carries mass :math:`P_{ij}` (its width) over the distance
    :math:`|x_i - y_j|` (its horizontal extent), and :math:`W_1 = \sum_{ij} P_{ij}|x_i - y_j|`.
    Right: the same plan as a coupling matrix; its row sums are the generated pile, its column
    sums the real pile. All numbers come from :func:`earth_mover_plan`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    d = earth_mover_plan()
    x, y, plan, units = d["x"], d["y"], d["plan"], d["units"]
    ua, ub = np.rint(d["a"] * units).astype(int), np.rint(d["b"] * units).astype(int)
    fig = _figure((_plotting.FIG_WIDTH, 3.0))
    gs = fig.add_gridspec(1, 2, width_ratios=[1.55, 1.0])
    with plt.rc_context(_RC):
        ax = fig.add_subplot(gs[0])
        _sand_columns(ax, x, ua, +1, FAKE_COLOR)
        _sand_columns(ax, y, ub, -1, REAL_COLOR)
        top = ua.max() + _GAP
        for i, j in zip(*np.nonzero(plan > 1e-12)):
            mass = plan[i, j] * units
            ax.annotate(
                "",
                xy=(y[j], -_GAP + 0.05),
                xytext=(x[i], _GAP - 0.05),
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": "black",
                    "lw": 1.0 + 1.4 * mass,
                    "mutation_scale": 10 + 2 * mass,
                    "shrinkA": 0,
                    "shrinkB": 0,
                },
                zorder=4,
            )
        lo, hi = min(x.min(), y.min()) - 0.6, max(x.max(), y.max()) + 0.6
        ax.set_xlim(lo, hi)
        ax.set_ylim(-(ub.max() + _GAP + 0.2), top + 1.6)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_xticks(np.arange(math.ceil(lo), math.floor(hi) + 1, 1.0))
        ax.set_xlabel("position")
        # labels where the piles leave room: above the short right end of the generated pile, below the
        # empty left end of the real one
        ax.text(hi - 0.1, _GAP + 1.5, "generated", color=FAKE_COLOR, fontweight="bold", ha="right", va="bottom")
        ax.text(lo + 0.1, -(_GAP + 0.3), "real", color=REAL_COLOR, fontweight="bold", va="top")
        ax.text(
            0.5 * (lo + hi),
            top + 1.4,
            rf"$W_1$ = Σ mass × distance = {d['w1']:.2f}",
            ha="center",
            va="top",
        )
        ax.set_title("moving sand", loc="left")

        axm = fig.add_subplot(gs[1])
        n, m = plan.shape
        grid = np.zeros((n + 1, m + 1))
        grid[:n, :m] = plan * units
        axm.imshow(np.ma.masked_equal(grid[:n, :m], 0.0), cmap="Greys", vmin=0, vmax=grid.max() * 1.6, aspect="equal")
        for i in range(n):
            for j in range(m):
                if plan[i, j] > 1e-12:
                    axm.text(j, i, f"{plan[i, j] * units:g}", ha="center", va="center", fontsize=10)
            axm.text(m, i, f"{ua[i]}", ha="center", va="center", color=FAKE_COLOR, fontweight="bold")
        for j in range(m):
            axm.text(j, n, f"{ub[j]}", ha="center", va="center", color=REAL_COLOR, fontweight="bold")
        axm.set_xlim(-0.5, m + 0.5)
        axm.set_ylim(n + 0.5, -0.5)
        axm.set_xticks(range(m), [f"{v:g}" for v in y])
        axm.set_yticks(range(n), [f"{v:g}" for v in x])
        axm.tick_params(length=0)
        axm.xaxis.set_ticks_position("top")
        axm.xaxis.set_label_position("top")
        axm.set_xlabel("to (real)", color=REAL_COLOR)
        axm.set_ylabel("from (generated)", color=FAKE_COLOR)
        for s in axm.spines.values():
            s.set_visible(False)
        axm.axhline(n - 0.5, color=_GREY, lw=0.8)
        axm.axvline(m - 0.5, color=_GREY, lw=0.8)
        axm.set_title("plan $P$ (units)", loc="left", y=-0.16)
    return _finish(fig)


# ---------------------------------------------------------------------------------------------
# 2. critic vs discriminator (chapter 2)
# ---------------------------------------------------------------------------------------------
def discriminator_and_critic(
    x, mu_real: float = 2.0, mu_fake: float = -2.0, sigma: float = 0.5
) -> Dict[str, np.ndarray]:
    r"""The optimal GAN discriminator and an optimal WGAN critic for two 1-D Gaussians, on a grid.

    Real data :math:`p = N(\mu_r, \sigma^2)`, generated data :math:`q = N(\mu_g, \sigma^2)`.

    - Discriminator (:func:`wganbook.lab.gaussians1d.optimal_discriminator`):
      :math:`D^\star = p/(p + q) = \mathrm{sigmoid}(h)`, with the linear logit
      :math:`h = ((x - \mu_g)^2 - (x - \mu_r)^2)/(2\sigma^2)`, so
      :math:`D^{\star\prime} = D^\star(1 - D^\star)\,(\mu_r - \mu_g)/\sigma^2`: exponentially small
      on both bumps when they are far apart compared to :math:`\sigma`.
    - Critic: on the line :math:`\mathbb E_p f - \mathbb E_q f = \int f'(x)\,(F_q - F_p)(x)\,dx`,
      so an optimal 1-Lipschitz potential has :math:`f' = \mathrm{sign}(F_q - F_p)`
      (:func:`wganbook.divergence.cdf_gap`); it is integrated on the grid (trapezoidal rule) and
      shifted to vanish half-way between the two means. It scores real data high, and
      :math:`\mathbb E_p f - \mathbb E_q f = \int |F_q - F_p| = W_1 = |\mu_r - \mu_g|`.

    Parameters
    ----------
    x : array-like
        A strictly increasing grid of at least 3 points.
    mu_real, mu_fake : float
        The two means (distinct).
    sigma : float
        The common standard deviation, > 0.

    Returns
    -------
    dict
        Arrays on ``x``: ``"x"``, ``"p"``, ``"q"`` (densities), ``"D"`` (:math:`D^\star`), ``"dD"``
        (:math:`D^{\star\prime}`), ``"f"`` (the critic) and ``"df"`` (its slope).
    """
    mu_real = check_value("mu_real", mu_real, Float())
    mu_fake = check_value("mu_fake", mu_fake, Float())
    sigma = check_value("sigma", sigma, Float(lo=0.0, lo_open=True))
    if mu_real == mu_fake:
        raise ValueError(f"mu_real and mu_fake must differ; both are {mu_real!r}")
    grid = np.asarray(x, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 3 or not np.isfinite(grid).all() or np.any(np.diff(grid) <= 0):
        raise ValueError("x must be a strictly increasing 1-D array of at least 3 finite points")
    real, fake = GaussianMixture1D([mu_real], [sigma]), GaussianMixture1D([mu_fake], [sigma])
    D = optimal_discriminator(grid, mu_real, mu_fake, sigma)
    slope_h = (mu_real - mu_fake) / sigma**2
    dD = D * (1.0 - D) * slope_h
    df = np.sign(cdf_gap(real, fake, grid))
    f = np.concatenate([[0.0], np.cumsum(0.5 * (df[1:] + df[:-1]) * np.diff(grid))])
    f = f - np.interp(0.5 * (mu_real + mu_fake), grid, f)
    return {"x": grid, "p": real.pdf(grid), "q": fake.pdf(grid), "D": D, "dD": dD, "f": f, "df": df}


def critic_vs_discriminator():
    r"""Chapter 2's contrast: what a GAN discriminator outputs and what a WGAN critic scores.

    Same data in both panels: a generated bump :math:`N(-2, 0.5^2)` (orange) and a real bump
    :math:`N(2, 0.5^2)` (blue), densities scaled to peak 1. Left: the optimal discriminator
    :math:`D^\star(x) = p/(p + q)`, a probability that saturates at 0 on the generated data and at
    1 on the real data, flat on both: no gradient for the generator. Right: the optimal critic, a
    1-Lipschitz Kantorovich potential with slope 1 everywhere from the generated bump to the real
    one: a gradient that points each generated sample towards the real data. Numbers from
    :func:`discriminator_and_critic`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    mu_r, mu_g, sigma = 2.0, -2.0, 0.5
    x = np.linspace(-4.0, 4.0, 801)
    d = discriminator_and_critic(x, mu_r, mu_g, sigma)
    fig = _figure((_plotting.FIG_WIDTH, 2.9))
    with plt.rc_context(_RC):
        axes = fig.subplots(1, 2, sharex=True)
        # left: D*
        ax = axes[0]
        _bumps(ax, x, d, 0.0, 1.0)
        ax.plot(x, d["D"], color="black", lw=2.2)
        ax.set_ylim(-0.08, 1.32)
        ax.set_yticks([0, 0.5, 1])
        ax.set_title("GAN: discriminator", loc="left")
        ax.set_ylabel(r"$D^\star(x)$ = P(real)")
        ax.annotate(
            "flat: no\ngradient",
            xy=(mu_g, 0.0),
            xytext=(mu_g - 1.3, 0.62),
            ha="left",
            arrowprops={"arrowstyle": "->", "color": _ACCENT, "lw": 1.5},
            color=_ACCENT,
        )
        # right: critic
        ax = axes[1]
        lo, hi = float(d["f"].min()), float(d["f"].max())
        _bumps(ax, x, d, lo, 0.35 * (hi - lo))
        ax.plot(x, d["f"], color="black", lw=2.2)
        ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.1 * (hi - lo))
        ax.set_title("WGAN: critic", loc="left")
        ax.set_ylabel("score $f(x)$")
        y_arrow = lo + 0.12 * (hi - lo)
        ax.annotate(
            "",
            xy=(mu_g + 2.4, y_arrow),
            xytext=(mu_g + 0.6, y_arrow),
            arrowprops={"arrowstyle": "-|>", "color": _ACCENT, "lw": 2.2, "mutation_scale": 16},
        )
        ax.text(mu_g + 1.5, y_arrow + 0.25, "push to real", color=_ACCENT, ha="center", va="bottom")
        ax.text(-1.4, -0.3, "slope 1", color="black", ha="right", va="bottom")
        for a in axes:
            a.set_xlabel("$x$")
            a.set_xticks([-4, -2, 0, 2, 4])
        axes[0].text(mu_g, 1.08, "generated", color=FAKE_COLOR, ha="center", va="bottom", fontweight="bold")
        axes[0].text(mu_r, 1.08, "real", color=REAL_COLOR, ha="center", va="bottom", fontweight="bold")
    return _finish(fig)


def _bumps(ax, x, d, base, height):
    for dens, color in ((d["q"], FAKE_COLOR), (d["p"], REAL_COLOR)):
        ax.fill_between(x, base, base + height * dens / dens.max(), color=color, alpha=0.35, lw=0)


# ---------------------------------------------------------------------------------------------
# 3. three routes to a Lipschitz critic (chapter 4)
# ---------------------------------------------------------------------------------------------
def clipping_example(c: float = 0.01, spread: float = 1.5, size: int = 2048) -> Dict[str, object]:
    r"""Weights of one layer before and after weight clipping (WGAN).

    ``size`` weights are drawn :math:`w \sim N(0, (\text{spread}\cdot c)^2)` with a fixed local
    generator (seed 0), a stand-in for a layer's weights after an optimiser step; they are
    loaded into an ``nn.Linear`` and clamped to :math:`[-c, c]` by
    :func:`wganbook.lipschitz.clip_weights_`. The share at the bound is
    :func:`wganbook.lipschitz.share_at_bound`, in expectation :math:`2\Phi(-1/\text{spread})`.

    Parameters
    ----------
    c : float
        Clipping bound, > 0 (WGAN's default 0.01).
    spread : float
        Standard deviation of the raw weights in units of ``c``, > 0.
    size : int
        Number of weights, a multiple of 32 (a 32-input layer), >= 32.

    Returns
    -------
    dict
        ``"c"``, ``"raw"`` and ``"clipped"`` (float64 arrays of the weights) and ``"share"`` (the
        share of clipped weights at :math:`\pm c`).
    """
    c = check_value("c", c, Float(lo=0.0, lo_open=True))
    spread = check_value("spread", spread, Float(lo=0.0, lo_open=True))
    size = check_value("size", size, Int(lo=32))
    if size % 32:
        raise ValueError(f"size must be a multiple of 32 (a layer with 32 inputs); got {size}")
    gen = torch.Generator().manual_seed(0)
    raw = torch.randn(size // 32, 32, generator=gen, dtype=torch.float64) * (spread * c)
    layer = nn.Linear(32, size // 32, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(raw)
    clip_weights_(layer, c)
    clipped = layer.weight.detach().numpy().reshape(-1).copy()
    return {"c": c, "raw": raw.numpy().reshape(-1), "clipped": clipped, "share": share_at_bound(layer, c)}


#: Real and generated points of :func:`penalty_example` (four of each, in the plane).
PENALTY_REAL = ((1.6, 1.5), (2.2, 1.1), (1.3, 0.7), (2.0, 2.0))
PENALTY_FAKE = ((-1.2, -0.4), (-0.6, -1.2), (-1.6, -1.4), (-0.4, -0.2))


def penalty_example(per_pair: int = 3) -> Dict[str, np.ndarray]:
    r"""Where WGAN-GP evaluates its penalty: points on the segments between real and fake samples.

    The real points ``PENALTY_REAL`` and fake points ``PENALTY_FAKE`` are paired in
    order, as in a batch; :func:`wganbook.lipschitz.sample_penalty_points` (strategy
    ``"real-fake"``, fixed local generator, seed 0) draws :math:`\hat x = \varepsilon x + (1 -
    \varepsilon) y`, :math:`\varepsilon \sim U[0, 1]`, ``per_pair`` times per pair. The penalty
    :math:`\lambda\,(\lVert\nabla f(\hat x)\rVert - 1)^2` pushes the critic's slope to 1 there.

    Parameters
    ----------
    per_pair : int
        Interpolates per real-fake pair, >= 1.

    Returns
    -------
    dict
        ``"real"``, ``"fake"`` (shape ``(4, 2)``), ``"points"`` (shape ``(4 per_pair, 2)``, pair
        ``k % 4``) and ``"eps"`` (the :math:`\varepsilon` of each point, recovered from its
        position on its segment).
    """
    per_pair = check_value("per_pair", per_pair, Int(lo=1))
    real = torch.tensor(PENALTY_REAL, dtype=torch.float64)
    fake = torch.tensor(PENALTY_FAKE, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    pts = sample_penalty_points(real.repeat(per_pair, 1), fake.repeat(per_pair, 1), "real-fake", generator=gen)
    r, f, p = real.numpy(), fake.numpy(), pts.numpy()
    seg = np.tile(r - f, (per_pair, 1))
    eps = ((p - np.tile(f, (per_pair, 1))) * seg).sum(1) / (seg * seg).sum(1)
    return {"real": r, "fake": f, "points": p, "eps": eps}


#: The 2x2 weight matrix of :func:`spectral_example`.
SPECTRAL_W = ((1.3, 0.9), (-0.4, 0.8))


def spectral_example(n_points: int = 201) -> Dict[str, object]:
    r"""Spectral normalisation of a 2x2 layer: the unit circle under :math:`W` and :math:`W/\sigma(W)`.

    The layer is ``nn.Linear(2, 2, bias=False)`` with the weight ``SPECTRAL_W``;
    :math:`\sigma(W)` is its largest singular value (:func:`wganbook.lipschitz.spectral_norms`).
    :math:`W` maps the unit circle to an ellipse with semi-axes :math:`\sigma_1 \ge \sigma_2`
    (:func:`wganbook.lipschitz.singular_values`); the normalised layer :math:`W/\sigma_1` maps it
    to an ellipse whose longest semi-axis is 1: the layer stretches no vector, so it is
    1-Lipschitz.

    Parameters
    ----------
    n_points : int
        Points on the circle, >= 8.

    Returns
    -------
    dict
        ``"circle"``, ``"image"`` (under :math:`W`) and ``"normalised_image"`` (under
        :math:`W/\sigma_1`), arrays of shape ``(n_points, 2)``; ``"sigma"`` (:math:`\sigma_1` of
        :math:`W`), ``"singular_values"`` (of :math:`W`) and ``"normalised_sigma"`` (the spectral
        norm of the normalised layer, 1).
    """
    n_points = check_value("n_points", n_points, Int(lo=8))
    layer = nn.Linear(2, 2, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(SPECTRAL_W, dtype=torch.float64))
    sigma = spectral_norms(layer)[0]
    normalised = nn.Linear(2, 2, bias=False).double()
    with torch.no_grad():
        normalised.weight.copy_(layer.weight / sigma)
    t = np.linspace(0.0, 2 * np.pi, n_points)
    circle = np.stack([np.cos(t), np.sin(t)], axis=1)
    with torch.no_grad():
        ct = torch.as_tensor(circle)
        image, norm_image = layer(ct).numpy(), normalised(ct).numpy()
    return {
        "circle": circle,
        "image": image,
        "normalised_image": norm_image,
        "sigma": sigma,
        "singular_values": singular_values(layer)[0].numpy(),
        "normalised_sigma": spectral_norms(normalised)[0],
    }


def lipschitz_routes():
    r"""Chapter 4's three ways to a Lipschitz critic, one panel each.

    Top, weight clipping: a layer's weights before (outline) and after (filled) clamping into
    :math:`[-c, c]`; many pile up at :math:`\pm c` (:func:`clipping_example`). Bottom left, the
    gradient penalty: the slope is pushed to 1 at random points on the segments between real and
    generated samples (:func:`penalty_example`). Bottom right, spectral normalisation: dividing a
    layer's weight by its largest singular value maps the unit circle into an ellipse whose
    longest semi-axis is 1 (:func:`spectral_example`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    clip, pen, spec = clipping_example(), penalty_example(), spectral_example()
    fig = _figure((_plotting.FIG_WIDTH, 5.4))
    with plt.rc_context(_RC):
        gs = fig.add_gridspec(2, 2, height_ratios=[0.8, 1.0])
        # weight clipping
        ax = fig.add_subplot(gs[0, :])
        c = clip["c"]
        bins = np.linspace(-4 * c, 4 * c, 57)
        ax.hist(clip["raw"], bins=bins, histtype="step", color=_GREY, lw=1.5, label="before")
        ax.hist(clip["clipped"], bins=bins, color=_GREEN, alpha=0.85, label="after clipping")
        for s in (-c, c):
            ax.axvline(s, color="black", lw=1, ls="--")
        ax.set_xticks([-4 * c, -c, 0, c, 4 * c], ["−4c", "−c", "0", "+c", "+4c"])
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_xlabel("weight value")
        ax.set_title("1. clip every weight into [−c, c]", loc="left")
        ax.text(1.35 * c, ax.get_ylim()[1] * 0.82, f"{clip['share']:.0%} at ±c", va="top")
        ax.legend(loc="upper left", frameon=False)
        # gradient penalty
        ax = fig.add_subplot(gs[1, 0])
        real, fake, pts = pen["real"], pen["fake"], pen["points"]
        for r, f in zip(real, fake):
            ax.plot([f[0], r[0]], [f[1], r[1]], color=_GREY, lw=1, ls="--", zorder=1)
        ax.scatter(*real.T, s=60, color=REAL_COLOR, label="real", zorder=3)
        ax.scatter(*fake.T, s=60, color=FAKE_COLOR, marker="s", label="generated", zorder=3)
        ax.scatter(*pts.T, s=30, color="black", marker="x", label=r"$\hat x$", zorder=3)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.set_title("2. gradient penalty", loc="left")
        ax.set_xlabel(r"$\|\nabla f(\hat x)\| \to 1$ on the lines")
        ax.legend(loc="upper left", frameon=False, handletextpad=0.2, borderaxespad=0.1)
        # spectral normalisation
        ax = fig.add_subplot(gs[1, 1])
        ax.plot(*spec["circle"].T, color="black", lw=1.2, ls="--", label="unit circle")
        ax.plot(*spec["image"].T, color=_GREY, lw=1.5, label=rf"$W$: $\sigma$ = {spec['sigma']:.2f}")
        ax.plot(*spec["normalised_image"].T, color=_GREEN, lw=2.4, label=r"$W/\sigma$: longest = 1")
        lim = 1.05 * max(spec["sigma"], 1.0)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim * 1.55)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.set_title("3. spectral normalisation", loc="left")
        ax.set_xlabel("each layer: divide by $\\sigma_{max}$")
        ax.legend(loc="upper left", frameon=False, handlelength=1.2, borderaxespad=0.1)
    return _finish(fig)


# ---------------------------------------------------------------------------------------------
# 4. what a trained critic tracks (chapter 6)
# ---------------------------------------------------------------------------------------------
def tracking_curves(
    theta, batch_size: int = 16, lam: float = 10.0, steps: int = 5, lr: float = 0.005
) -> Dict[str, np.ndarray]:
    r"""True :math:`W_1`, the batch :math:`W_1` and a briefly trained critic's estimate on the parallel lines.

    The family is WGAN's Example 1: real :math:`(0, Z)`, generated :math:`(\theta, Z)`,
    :math:`Z \sim U[0, 1]`. Three curves over :math:`\theta`:

    - ``"w1"``: the true :math:`W_1 = |\theta|` (:func:`wganbook.transport.parallel_lines`);
    - ``"batch"``: the expected exact :math:`W_1` of a real and a generated batch of
      ``batch_size`` points each, :math:`\mathbb E\widehat W_1 = |\theta| + \text{excess}`, the
      excess from :func:`wganbook.transport.parallel_lines_excess` (normal approximation of the
      order statistics; at :math:`\theta = 0` it is :math:`\sqrt\pi / (4\sqrt n)`: two real
      batches are that far apart);
    - ``"critic"``: the estimate :math:`s_k|\theta|` of an affine critic
      :math:`f(x) = -s\,\mathrm{sign}(\theta)\,x_1` trained ``steps`` = :math:`k` steps of
      gradient ascent (step ``lr`` = :math:`\eta`) on the WGAN-GP objective from :math:`s_0 = 0`.
      Its gradient is the same everywhere, so the penalty at any interpolates is
      :math:`\lambda(s - 1)^2` and the objective is :math:`J(s) = s|\theta| - \lambda(s - 1)^2`,
      maximised at :math:`s^\star = 1 + |\theta|/(2\lambda)`
      (:func:`wganbook.lab.gaussians1d.gp_slope`). The ascent along the ray :math:`s \ge 0`,
      :math:`s_{i+1} = s_i + \eta J'(s_i)`, is linear, so

      .. math::

          s_k = s^\star\bigl(1 - (1 - 2\lambda\eta)^k\bigr).

    With the critic trained at :math:`\theta` held fixed, the generator's loss at offset :math:`t`,
    :math:`-\mathbb E f((t, Z)) = s_k\,\mathrm{sign}(\theta)\,t`, has the derivative
    ``"generator_grad"`` :math:`= s_k\,\mathrm{sign}(\theta)` in :math:`t`: the sign of
    :math:`\mathrm{d}|\theta|/\mathrm{d}\theta`, so a gradient step
    moves :math:`\theta` towards 0 although the estimate is far from :math:`W_1`.

    Parameters
    ----------
    theta : float or array-like
        Offset(s) of the generated line.
    batch_size : int
        Points per batch, >= 1.
    lam : float
        Penalty weight :math:`\lambda > 0` (WGAN-GP: 10).
    steps : int
        Critic steps :math:`k \ge 0` (WGAN-GP: 5 per generator step).
    lr : float
        Ascent step :math:`\eta`, with :math:`0 < 2\lambda\eta \le 1` (monotone convergence).

    Returns
    -------
    dict
        Float64 arrays of the shape of ``theta``: ``"theta"``, ``"w1"``, ``"batch"``,
        ``"critic"``, ``"slope"`` (:math:`s_k`) and ``"generator_grad"``.
    """
    batch_size = check_value("batch_size", batch_size, Int(lo=1))
    lam = check_value("lam", lam, Float(lo=0.0, lo_open=True))
    steps = check_value("steps", steps, Int(lo=0))
    lr = check_value("lr", lr, Float(lo=0.0, lo_open=True))
    if 2 * lam * lr > 1:
        raise ValueError(f"lr must satisfy 0 < 2 * lam * lr <= 1 (lr <= {1 / (2 * lam):g} for lam={lam:g}); got {lr!r}")
    w1 = np.asarray(parallel_lines(theta)["w1"], dtype=np.float64)
    th = np.asarray(theta, dtype=np.float64).reshape(w1.shape)
    batch = w1 + np.asarray(parallel_lines_excess(th, batch_size), dtype=np.float64)
    s_star = np.vectorize(lambda a: gp_slope(float(a), lam), otypes=[np.float64])(w1)
    slope = s_star * (1.0 - (1.0 - 2.0 * lam * lr) ** steps)
    return {
        "theta": th,
        "w1": w1,
        "batch": batch,
        "critic": slope * w1,
        "slope": slope,
        "generator_grad": slope * np.sign(th),
    }


def critic_tracking():
    r"""Chapter 6's picture: what a WGAN critic reports is not :math:`W_1`, yet it guides the generator.

    On WGAN's parallel lines (generated line at offset :math:`\theta`), three curves from
    :func:`tracking_curves`: the true :math:`W_1 = |\theta|` (black); the expected exact
    :math:`W_1` between a real and a generated batch of 16 points (dashed): larger, and above 0
    even at :math:`\theta = 0`, where both batches are real; and the estimate of a gradient-penalty
    critic (:math:`\lambda = 10`) trained 5 ascent steps (step 0.005) from zero (blue): a fraction
    of :math:`W_1`, below what two real batches measure near :math:`\theta = 0`. Arrows: the
    generator's step under that critic, :math:`-s_k\,\mathrm{sign}(\theta)`, points towards
    :math:`\theta = 0` on both sides.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    theta = np.linspace(-1.0, 1.0, 401)
    d = tracking_curves(theta)
    fig = _figure((_plotting.FIG_WIDTH, 3.4))
    with plt.rc_context(_RC):
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(theta, d["w1"], color="black", lw=2.2, label=r"true $W_1 = |\theta|$")
        ax.plot(theta, d["batch"], color=_ACCENT, lw=2.2, ls="--", label="exact $W_1$ of two batches of 16")
        ax.plot(theta, d["critic"], color=REAL_COLOR, lw=2.6, ls="-.", label="critic's estimate (5 steps)")
        for t0 in (-0.7, 0.7):
            e0 = float(np.interp(t0, theta, d["critic"]))
            g = float(np.interp(t0, theta, d["generator_grad"]))
            ax.annotate(
                "",
                xy=(t0 - 0.3 * np.sign(g), e0),
                xytext=(t0, e0),
                arrowprops={"arrowstyle": "-|>", "color": REAL_COLOR, "lw": 2.0, "mutation_scale": 14},
            )
        ax.text(-0.05, -0.13, r"generator steps: $\theta \to 0$", color=REAL_COLOR, ha="right", va="top")
        b0 = float(np.interp(0.0, theta, d["batch"]))
        ax.annotate(
            f"two real batches: {b0:.2f}",
            xy=(0.0, b0),
            xytext=(0.2, -0.03),
            arrowprops={"arrowstyle": "->", "color": _ACCENT, "lw": 1.3},
            color=_ACCENT,
        )
        ax.set_xlim(-1.0, 1.0)
        ax.set_ylim(-0.25, 1.15)
        ax.set_xlabel(r"generator offset $\theta$")
        ax.set_ylabel("distance")
        ax.set_title("the critic's number is not $W_1$, but it points the right way", loc="left")
        ax.legend(loc="upper center", frameon=False, ncol=1, bbox_to_anchor=(0.5, 1.0))
    return _finish(fig)

r"""Two Gaussians on the line: the optimal GAN discriminator, and trained networks seen on a grid.

WGAN's Figure 2 (Arjovsky et al. 2017) compares, for real data :math:`N(\mu_r, \sigma^2)` and
fake data :math:`N(\mu_g, \sigma^2)`, a GAN discriminator trained towards optimality with a WGAN
critic. For equal variances the optimal discriminator :math:`D^\star = p_r / (p_r + p_g)` has the
linear logit

.. math::

    h^\star(x) = \log p_r(x) - \log p_g(x)
    = \frac{(x - \mu_g)^2 - (x - \mu_r)^2}{2\sigma^2}, \qquad
    h^{\star\prime} = \frac{\mu_r - \mu_g}{\sigma^2},

so the minimax generator's gradient :math:`\partial_x \log(1 - D^\star(x)) = -D^\star(x)\,
h^{\star\prime}` vanishes exponentially on the fake mode. :func:`fit_networks` trains the
networks (independent runs, in worker processes), :func:`discriminator_profile` and
:func:`critic_profile` evaluate them and their input gradients on a grid, :func:`linear_fit`
measures how straight a critic is, and :func:`plot_profiles` / :func:`plot_gradients` draw the
figure's panels; :func:`profile_stats`, :func:`gp_slope` and :func:`fresh_estimates` give the
numbers chapter 1 states about them.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from wganbook._util import Int, check_value
from wganbook.lab.sweeps import map_runs
from wganbook.models import MLPCritic
from wganbook.objectives import METHODS
from wganbook.train.critic import fit_critic

__all__ = [
    "Gaussian1D",
    "optimal_logit",
    "optimal_discriminator",
    "optimal_minimax_gradient",
    "fit_networks",
    "discriminator_profile",
    "critic_profile",
    "linear_fit",
    "profile_stats",
    "gp_slope",
    "fresh_estimates",
    "plot_profiles",
    "plot_gradients",
]


def _finite(value, name, positive=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number; got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0; got {value!r}")
    return float(value)


class Gaussian1D:
    r"""Sampler ``n -> (n, 1)`` float32 tensor of :math:`N(\mu, \sigma^2)` with a private generator.

    The same ``seed`` gives the same stream of batches in any process (what independent runs in
    worker processes need: no global random state).

    Parameters
    ----------
    mu : float
    sigma : float
        Positive.
    seed : int, optional
    """

    def __init__(self, mu: float, sigma: float, seed: int = 0):
        self.mu = _finite(mu, "mu")
        self.sigma = _finite(sigma, "sigma", positive=True)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
        self.gen = torch.Generator().manual_seed(int(seed))

    def __call__(self, n: int) -> torch.Tensor:
        z = torch.randn(int(n), 1, generator=self.gen, dtype=torch.float64)
        return (self.mu + self.sigma * z).float()


def optimal_logit(x, mu_r: float, mu_g: float, sigma: float) -> np.ndarray:
    r"""Logit :math:`h^\star(x) = ((x - \mu_g)^2 - (x - \mu_r)^2) / (2\sigma^2)` of :math:`D^\star`."""
    mu_r, mu_g = _finite(mu_r, "mu_r"), _finite(mu_g, "mu_g")
    sigma = _finite(sigma, "sigma", positive=True)
    x = np.asarray(x, dtype=np.float64)
    return ((x - mu_g) ** 2 - (x - mu_r) ** 2) / (2 * sigma**2)


def optimal_discriminator(x, mu_r: float, mu_g: float, sigma: float) -> np.ndarray:
    r""":math:`D^\star(x) = p_r(x) / (p_r(x) + p_g(x)) = \mathrm{sigmoid}(h^\star(x))`."""
    from scipy.special import expit

    return expit(optimal_logit(x, mu_r, mu_g, sigma))


def optimal_minimax_gradient(x, mu_r: float, mu_g: float, sigma: float) -> np.ndarray:
    r""":math:`|\partial_x \log(1 - D^\star(x))| = D^\star(x)\, |\mu_r - \mu_g| / \sigma^2`."""
    slope = abs(_finite(mu_r, "mu_r") - _finite(mu_g, "mu_g")) / _finite(sigma, "sigma", True) ** 2
    return optimal_discriminator(x, mu_r, mu_g, sigma) * slope


def _fit_one(job: Mapping[str, Any]):

    torch.manual_seed(job["seed"])
    net = MLPCritic(1, width=job["width"], depth=job["depth"])
    real = Gaussian1D(job["mu_r"], job["sigma"], seed=2 * job["seed"] + 1)
    fake = Gaussian1D(job["mu_g"], job["sigma"], seed=2 * job["seed"] + 2)
    hist = fit_critic(
        job["method"],
        net,
        real,
        fake,
        job["steps"],
        batch_size=job["batch_size"],
        seed=job["seed"],
        record_every=job.get("record_every", 10),
        **dict(job.get("hp", {})),
    )
    net.eval()
    return net, hist


_JOB_KEYS = ("method", "width", "depth", "steps", "batch_size", "seed", "mu_r", "mu_g", "sigma")


def fit_networks(jobs: Sequence[Mapping[str, Any]], workers: Optional[int] = None) -> List[tuple]:
    r"""Train one 1-D network per job with ``train.fit_critic``, the jobs in worker processes.

    Each job is a dict with ``method`` (a key of ``objectives.METHODS``, e.g. ``"gan-mm"``,
    ``"wgan-gp"``, ``"wgan-clip"``), ``width``, ``depth`` (of a ``models.MLPCritic`` on
    :math:`\mathbb{R}`), ``steps``, ``batch_size``, ``seed``, ``mu_r``, ``mu_g``, ``sigma``, and
    optionally ``record_every`` (default 10) and ``hp`` (hyper-parameters for ``fit_critic``:
    ``lr``, ``betas``, ``lam``, ``clip``, ...). A job seeds everything it uses (initialisation
    from ``seed``; real and fake batches from private generators), so the results are identical
    whatever ``workers`` is (:func:`wganbook.lab.sweeps.map_runs`).

    Parameters
    ----------
    jobs : list of dict
    workers : int, optional
        Worker processes (``None``: all usable cores; 1: serial).

    Returns
    -------
    list of (torch.nn.Module, dict)
        The trained network (in eval mode, on the CPU) and its ``fit_critic`` history, per job.
    """

    jobs = [dict(j) for j in jobs]
    for j in jobs:
        missing = [k for k in _JOB_KEYS if k not in j]
        if missing:
            raise ValueError(f"job is missing {', '.join(missing)}; a job needs: {', '.join(_JOB_KEYS)}")
        if j["method"] not in METHODS:
            raise ValueError(f"unknown method {j['method']!r}; method must be one of: {', '.join(METHODS)}")
    return map_runs(_fit_one, jobs, workers=workers, describe=lambda j: j["method"])


def discriminator_profile(disc: torch.nn.Module, x) -> Dict[str, np.ndarray]:
    r"""A GAN discriminator (logit :math:`h`) on grid points ``x``, with its generator gradients.

    Returns ``"D"`` :math:`= \mathrm{sigmoid}(h(x))`, ``"minimax"``
    :math:`= \partial_x \log(1 - D(x)) = -\partial_x \mathrm{softplus}(h(x))` and ``"nonsat"``
    :math:`= \partial_x \log D(x) = -\partial_x \mathrm{softplus}(-h(x))`, as float64 arrays.
    """
    xs = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(-1, 1).requires_grad_(True)
    logit = disc(xs)
    minimax = torch.autograd.grad(-F.softplus(logit).sum(), xs, retain_graph=True)[0]
    nonsat = torch.autograd.grad(-F.softplus(-logit).sum(), xs)[0]
    return {
        "D": torch.sigmoid(logit).detach().double().numpy(),
        "minimax": minimax.detach().double().numpy().reshape(-1),
        "nonsat": nonsat.detach().double().numpy().reshape(-1),
    }


def critic_profile(critic: torch.nn.Module, x) -> Dict[str, np.ndarray]:
    r"""A critic's values ``"f"`` and slopes ``"slope"`` :math:`= f'(x)` on grid points ``x``."""
    xs = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(-1, 1).requires_grad_(True)
    f = critic(xs)
    slope = torch.autograd.grad(f.sum(), xs)[0]
    return {"f": f.detach().double().numpy(), "slope": slope.detach().double().numpy().reshape(-1)}


def linear_fit(x, f) -> Dict[str, float]:
    r"""Least-squares line through :math:`(x_k, f_k)`: ``"slope"``, ``"intercept"`` and
    ``"r2"`` :math:`= \mathrm{corr}(x, f)^2`, the share of the variation of :math:`f` a straight
    line explains (1 for an affine :math:`f`)."""
    x, f = np.asarray(x, dtype=np.float64).reshape(-1), np.asarray(f, dtype=np.float64).reshape(-1)
    if x.shape != f.shape or x.size < 3:
        raise ValueError(f"x and f must have the same length >= 3; got {x.size} and {f.size}")
    slope, intercept = np.polyfit(x, f, 1)
    r2 = float(np.corrcoef(x, f)[0, 1] ** 2) if np.std(f) > 0 else 1.0
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2}


def _between(x, mu_r, mu_g, sigma):
    """Masks of the grid: the fake mode (mu_g +- 2 sigma) and the span of both modes (+- 2 sigma)."""
    fake_mode = (x >= mu_g - 2 * sigma) & (x <= mu_g + 2 * sigma)
    span = (x >= min(mu_r, mu_g) - 2 * sigma) & (x <= max(mu_r, mu_g) + 2 * sigma)
    return fake_mode, span


def profile_stats(
    x,
    mu_r: float,
    mu_g: float,
    sigma: float,
    disc: Mapping[str, np.ndarray],
    critics: Mapping[str, Mapping[str, np.ndarray]],
) -> Dict[str, Any]:
    r"""What chapter 1 measures on the profiles of WGAN's Figure 2.

    On the fake mode :math:`[\mu_g - 2\sigma, \mu_g + 2\sigma]` the largest minimax generator
    gradient :math:`|\partial_x \log(1 - D(x))|` of the discriminator; on the span of both modes,
    :math:`[\min(\mu_r, \mu_g) - 2\sigma, \max(\mu_r, \mu_g) + 2\sigma]`, each critic's
    :func:`linear_fit` and its slopes :math:`|f'(x)|`.

    Parameters
    ----------
    x : array-like
        The grid of the profiles.
    mu_r, mu_g, sigma : float
        The two Gaussians.
    disc : dict
        :func:`discriminator_profile` on ``x``.
    critics : dict
        Label -> :func:`critic_profile` on ``x``.

    Returns
    -------
    dict
        ``"max_minimax"`` (float), ``"fits"`` (label -> :func:`linear_fit` on the span), ``"slopes"``
        (label -> the :math:`|f'|` on the span, an array) and ``"slope_ratio"`` (label -> smallest
        over largest :math:`|f'|` on the span: 1 for an affine critic, 0 for one that saturates).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    mu_r, mu_g = _finite(mu_r, "mu_r"), _finite(mu_g, "mu_g")
    fake_mode, span = _between(x, mu_r, mu_g, _finite(sigma, "sigma", positive=True))
    if not fake_mode.any():
        raise ValueError("the grid x must reach into the fake mode mu_g +- 2 sigma")
    slopes = {k: np.abs(np.asarray(p["slope"], dtype=np.float64).reshape(-1)[span]) for k, p in critics.items()}
    return {
        "max_minimax": float(np.abs(np.asarray(disc["minimax"]).reshape(-1)[fake_mode]).max()),
        "fits": {k: linear_fit(x[span], np.asarray(p["f"]).reshape(-1)[span]) for k, p in critics.items()},
        "slopes": slopes,
        "slope_ratio": {k: float(v.min() / v.max()) for k, v in slopes.items()},
    }


def gp_slope(d: float, lam: float) -> float:
    r"""The slope :math:`|f'| \approx 1 + d / (2\lambda)` of a gradient-penalty critic whose penalised
    real-fake pairs are about :math:`d` apart (chapter 1's derivation; :math:`d = |\mu_g - \mu_r|`
    for two modes far apart compared to their width).

    Maximising :math:`\int s\,w - \lambda \int \rho\,(s - 1)^2` pointwise gives
    :math:`s = 1 + w / (2\lambda\rho)`, and the interpolates' density is :math:`\rho \approx w / d`
    when the pairs are all about :math:`d` apart."""
    d = _finite(d, "d")
    if d < 0:
        raise ValueError(f"d must be a distance >= 0; got {d!r}")
    return 1.0 + d / (2.0 * _finite(lam, "lam", positive=True))


def fresh_estimates(
    critics: Mapping[str, torch.nn.Module], mu_r: float, mu_g: float, sigma: float, n: int, seed: int = 0
) -> Dict[str, float]:
    r"""Each critic's estimate :math:`\bar f(x) - \bar f(\tilde x)` on ``n`` fresh samples per side.

    The real samples :math:`x \sim N(\mu_r, \sigma^2)` come from ``Gaussian1D(mu_r, sigma,
    seed=10**6 + seed)`` and the fakes from ``Gaussian1D(mu_g, sigma, seed=2 * 10**6 + seed)``:
    streams that training (:func:`fit_networks`, seeds ``2 seed + 1`` and ``2 seed + 2``) never
    uses. The same samples for every critic.

    Returns
    -------
    dict
        Label -> the estimate (float).
    """
    n, seed = check_value("n", n, Int(lo=1)), check_value("seed", seed, Int(lo=0))
    real = Gaussian1D(mu_r, sigma, seed=10**6 + seed)(n)
    fake = Gaussian1D(mu_g, sigma, seed=2 * 10**6 + seed)(n)
    with torch.no_grad():
        return {k: float(f(real).mean() - f(fake).mean()) for k, f in critics.items()}


def _densities(ax, x, mu_r, mu_g, sigma):
    for mu, color, label in ((mu_r, "orange", "real"), (mu_g, "green", "fake")):
        ax.fill_between(
            x, np.exp(-0.5 * ((x - mu) / sigma) ** 2), color=color, alpha=0.25, label=f"{label} (density, peak 1)"
        )


def plot_profiles(
    axes, x, mu_r, mu_g, sigma, disc: Mapping[str, np.ndarray], critics: Mapping[str, Mapping[str, np.ndarray]]
):
    r"""WGAN Figure 2's two panels: the discriminator next to :math:`D^\star` (``axes[0]``), and
    each critic's values scaled to :math:`f / \max|f|` (``axes[1]``; ``critics`` maps a label to a
    :func:`critic_profile`)."""
    x = np.asarray(x, dtype=np.float64)
    for ax in axes[:2]:
        _densities(ax, x, mu_r, mu_g, sigma)
    axes[0].plot(x, disc["D"], color="C3", label="trained $D(x)$")
    axes[0].plot(x, optimal_discriminator(x, mu_r, mu_g, sigma), "--", color="k", lw=1, label=r"optimal $D^\star(x)$")
    axes[0].set(xlabel="$x$", ylabel="$D(x)$", title="GAN discriminator")
    for (label, prof), style in zip(critics.items(), ("-", "-.", ":")):
        f = prof["f"]
        axes[1].plot(x, f / np.abs(f).max(), style, lw=1.8, label=label)
    axes[1].set(xlabel="$x$", ylabel=r"$f(x) / \max|f|$", title="WGAN critics")
    for ax in axes[:2]:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)


def plot_gradients(
    ax, x, mu_r, mu_g, sigma, disc: Mapping[str, np.ndarray], critics: Mapping[str, Mapping[str, np.ndarray]]
):
    r"""Gradient magnitudes on a log scale: minimax and non-saturating generator gradients of the
    discriminator, the same for :math:`D^\star`, and each critic's slope :math:`|f'(x)|`
    divided by its median on the data (so a linear critic is the flat line at 1)."""
    x = np.asarray(x, dtype=np.float64)
    ax.semilogy(x, np.abs(disc["minimax"]) + 1e-30, color="C3", label=r"minimax $|\partial_x \log(1 - D)|$")
    ax.semilogy(
        x, optimal_minimax_gradient(x, mu_r, mu_g, sigma) + 1e-30, "--", color="k", lw=1, label=r"same for $D^\star$"
    )
    ax.semilogy(x, np.abs(disc["nonsat"]), ":", color="C3", label=r"non-saturating $|\partial_x \log D|$")
    _, span = _between(x, mu_r, mu_g, sigma)
    for (label, prof), color in zip(critics.items(), ("C0", "C4", "C5")):
        s = np.abs(prof["slope"])
        ax.semilogy(x, s / np.median(s[span]), color=color, label=f"{label}: $|f'|$ / median")
    ax.axvspan(mu_g - 2 * sigma, mu_g + 2 * sigma, color="green", alpha=0.1)
    ax.set(xlabel="$x$", ylabel="gradient magnitude", ylim=(1e-16, 1e3), title="gradients (shaded: fake mode)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)

r"""The Wasserstein divergence :math:`W_{k,p}` of WGAN-div: closed forms and reference penalties.

WGAN-div (Wu et al., 2018) trains the critic on

.. math::

    W_{k,p}(P, Q) = \max_f\; \mathbb E_{P}[f] - \mathbb E_{Q}[f]
                    - k\, \mathbb E_{x\sim r}\big[\|\nabla f(x)\|^p\big], \qquad k > 0,\ p > 1,

with no Lipschitz constraint. This module holds what chapter 5 needs beyond the core package:

- **1-D closed forms.** On the real line, for a fixed density :math:`r`, the maximisation is
  pointwise in :math:`f'`. With :math:`D(x) = F_Q(x) - F_P(x)` (difference of the CDFs),
  integration by parts gives :math:`\mathbb E_P f - \mathbb E_Q f = \int f'(x) D(x)\,dx`, so

  .. math::

      W_{k,p} = \Big(1 - \frac1p\Big) \int |D|^{\frac{p}{p-1}}\,(k p\, r)^{-\frac{1}{p-1}}\,dx,
      \qquad f^{*\prime} = \operatorname{sign}(D)\Big(\frac{|D|}{k p\, r}\Big)^{\frac{1}{p-1}},

  and the one-centred gradient penalty of WGAN-GP, :math:`\lambda\,\mathbb E_r(|f'| - 1)^2`, gives

  .. math::

      \mathrm{GP}_\lambda = \int |D| + \frac{D^2}{4\lambda r}\,dx,
      \qquad |f^{*\prime}| = 1 + \frac{|D|}{2\lambda r}.

  Both objectives are concave in :math:`f`, so these stationary points are the maxima.
  As :math:`p\to\infty`, :math:`W_{k,p} \to \int|D| = W_1` (1-D).
- :class:`GaussianMixture1D`: densities, CDFs and samples of 1-D test distributions.
- The penalties of the three published WGAN-div codes, transcribed line by line
  (:func:`reference_penalty`), and :data:`PUBLISHED_VARIANTS` (their settings for
  ``TrainConfig``).
- :class:`Negated` (the critic :math:`-f`) and :func:`linear_critic` (an affine critic with a
  given weight vector) for penalty identities.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from scipy.special import ndtr
from torch import nn

_trapz = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz

__all__ = [
    "GaussianMixture1D",
    "cdf_gap",
    "wkp_1d",
    "wkp_slope_1d",
    "gp_1d",
    "gp_slope_1d",
    "w1_1d_cdf",
    "linear_wkp",
    "strategy_density_1d",
    "CLOSED_FORM_STRATEGIES",
    "DENSITY_STRATEGIES",
    "GAP_CHARGING_STRATEGIES",
    "interpolation_density_1d",
    "separated_pair",
    "separated_limit_wkp",
    "wkp_vs_separation",
    "PUBLISHED_VARIANTS",
    "REFERENCE_CODES",
    "reference_penalty",
    "Negated",
    "linear_critic",
    "critic_objective",
    "MLPImageGenerator",
    "ARCHITECTURES",
    "make_models",
    "make_train_fn",
    "fit_critic_1d",
    "strategy_sensitivity",
    "POST_FID",
    "PAPER_FID",
    "PAPER_FID_DATASETS",
    "sensitivity_summary",
    "select_records",
    "kp_summary",
    "plot_strategy_ablation",
    "kp_grid",
    "real_reference_distance",
]


# ---------------------------------------------------------------------------------------------
# 1-D test distributions
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianMixture1D:
    r"""A mixture of 1-D Gaussians :math:`\sum_j w_j\,\mathcal N(m_j, s_j^2)`.

    Parameters
    ----------
    means : sequence of float
        Component means :math:`m_j`.
    stds : sequence of float
        Component standard deviations :math:`s_j > 0` (same length as ``means``).
    weights : sequence of float, optional
        Mixture weights :math:`w_j \ge 0`; normalised to sum to 1 (default: equal).
    """

    means: Tuple[float, ...]
    stds: Tuple[float, ...]
    weights: Optional[Tuple[float, ...]] = None

    def __post_init__(self):
        means = tuple(float(m) for m in np.atleast_1d(self.means))
        stds = tuple(float(s) for s in np.atleast_1d(self.stds))
        if len(means) == 0 or len(stds) != len(means):
            raise ValueError(f"means and stds must be non-empty and of equal length; got "
                             f"{len(means)} means and {len(stds)} stds")
        if min(stds) <= 0:
            raise ValueError(f"stds must be > 0; got {stds}")
        w = np.ones(len(means)) if self.weights is None else np.asarray(self.weights, float)
        if w.shape != (len(means),) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be {len(means)} non-negative numbers with a positive sum; "
                             f"got {self.weights}")
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "stds", stds)
        object.__setattr__(self, "weights", tuple(float(v) for v in w / w.sum()))

    def pdf(self, x: np.ndarray) -> np.ndarray:
        r"""Density :math:`\sum_j w_j \varphi((x - m_j)/s_j)/s_j` at the points ``x``."""
        x = np.asarray(x, dtype=np.float64)[..., None]
        m, s, w = (np.asarray(v) for v in (self.means, self.stds, self.weights))
        return np.sum(w * np.exp(-0.5 * ((x - m) / s) ** 2) / (s * np.sqrt(2 * np.pi)), axis=-1)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        r"""Distribution function :math:`\sum_j w_j \Phi((x - m_j)/s_j)` at the points ``x``."""
        x = np.asarray(x, dtype=np.float64)[..., None]
        m, s, w = (np.asarray(v) for v in (self.means, self.stds, self.weights))
        return np.sum(w * ndtr((x - m) / s), axis=-1)

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw ``n`` samples as a float32 tensor of shape ``(n, 1)`` (randomness from ``generator``)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive int; got {n!r}")
        w = torch.tensor(self.weights, dtype=torch.float64)
        comp = torch.multinomial(w, int(n), replacement=True, generator=generator)
        m = torch.tensor(self.means, dtype=torch.float32)[comp]
        s = torch.tensor(self.stds, dtype=torch.float32)[comp]
        return (m + s * torch.randn(int(n), generator=generator)).unsqueeze(1)


# ---------------------------------------------------------------------------------------------
# 1-D closed forms
# ---------------------------------------------------------------------------------------------
def _check_grid(grid) -> np.ndarray:
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 3 or np.any(np.diff(grid) <= 0):
        raise ValueError("grid must be a strictly increasing 1-D array of at least 3 points")
    return grid


def _check_kp(k: float, p: float) -> Tuple[float, float]:
    k, p = float(k), float(p)
    if not k > 0:
        raise ValueError(f"k must be > 0; got {k}")
    if not p > 1:
        raise ValueError(f"p must be > 1 (p = 1 makes W_kp infinite or zero); got {p}")
    return k, p


def cdf_gap(real: GaussianMixture1D, fake: GaussianMixture1D, grid) -> np.ndarray:
    r"""The CDF difference :math:`D(x) = F_Q(x) - F_P(x)` on ``grid`` (``real`` = P, ``fake`` = Q).

    With this sign, :math:`\mathbb E_P f - \mathbb E_Q f = \int f'(x)\,D(x)\,dx` for any smooth
    :math:`f` of at most polynomial growth.
    """
    grid = _check_grid(grid)
    return fake.cdf(grid) - real.cdf(grid)


def _pointwise(D: np.ndarray, r: np.ndarray, finite_part) -> np.ndarray:
    """Apply ``finite_part`` where r > 0; where r = 0 the value is 0 if D = 0 and +inf otherwise."""
    D = np.asarray(D, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    if D.shape != r.shape:
        raise ValueError(f"D and r must have the same shape; got {D.shape} and {r.shape}")
    if np.any(r < 0):
        raise ValueError("r must be a non-negative density")
    out = np.zeros_like(D)
    pos = r > 0
    out[pos] = finite_part(np.abs(D[pos]), r[pos])
    out[(~pos) & (D != 0)] = np.inf
    return out


def wkp_1d(grid, D, r, k: float = 2.0, p: float = 6.0) -> float:
    r"""Exact :math:`W_{k,p}` on the real line for a fixed penalty density :math:`r`.

    .. math::

        W_{k,p} = \Big(1 - \frac1p\Big)\int |D(x)|^{\frac{p}{p-1}}\,
                  \big(k\,p\,r(x)\big)^{-\frac{1}{p-1}}\,dx ,

    integrated with the trapezoidal rule on ``grid``. Derivation: the objective is
    :math:`\int f' D - k\int r |f'|^p`, maximised pointwise by
    :math:`|f'| = (|D|/(kpr))^{1/(p-1)}`. It is :math:`+\infty` where :math:`r = 0` but
    :math:`D \ne 0` (the critic may be arbitrarily steep where nothing is penalised).

    Parameters
    ----------
    grid : array (m,)
        Strictly increasing points covering the supports.
    D : array (m,)
        :math:`F_Q - F_P` on the grid (see :func:`cdf_gap`).
    r : array (m,)
        The penalty density on the grid.
    k, p : float
        Penalty weight :math:`k > 0` and power :math:`p > 1`.

    Returns
    -------
    float
        :math:`W_{k,p}` (``inf`` when the integral diverges on the grid).
    """
    grid = _check_grid(grid)
    k, p = _check_kp(k, p)
    q = p / (p - 1.0)
    vals = _pointwise(D, r, lambda a, rr: (1 - 1 / p) * a ** q * (k * p * rr) ** (-1 / (p - 1)))
    if not np.all(np.isfinite(vals)):
        return float("inf")
    return float(_trapz(vals, grid))


def wkp_slope_1d(D, r, k: float = 2.0, p: float = 6.0) -> np.ndarray:
    r"""The optimal critic's derivative :math:`f^{*\prime} = \operatorname{sign}(D)\,(|D|/(kpr))^{1/(p-1)}`.

    It is 0 wherever the CDFs agree; in particular the optimal critic of two identical
    distributions is constant. Entries where :math:`r = 0 \ne D` are ``±inf``.
    """
    k, p = _check_kp(k, p)
    mag = _pointwise(D, r, lambda a, rr: (a / (k * p * rr)) ** (1 / (p - 1)))
    return np.sign(np.asarray(D, dtype=np.float64)) * mag


def gp_1d(grid, D, r, lam: float = 10.0) -> float:
    r"""Exact optimum of the WGAN-GP critic objective on the real line for a fixed density :math:`r`.

    .. math::

        \max_f \int f' D - \lambda \int r\,(|f'| - 1)^2
        = \int |D| + \frac{D^2}{4\lambda r}\,dx = W_1 + \int \frac{D^2}{4\lambda r}\,dx .

    Pointwise, :math:`t|D| - \lambda r (t-1)^2` is maximised at :math:`t = 1 + |D|/(2\lambda r)`.

    Parameters
    ----------
    grid, D, r :
        As in :func:`wkp_1d`.
    lam : float
        Penalty weight :math:`\lambda > 0`.

    Returns
    -------
    float
        The optimal value (``inf`` when it diverges).
    """
    grid = _check_grid(grid)
    lam = float(lam)
    if not lam > 0:
        raise ValueError(f"lam must be > 0; got {lam}")
    vals = _pointwise(D, r, lambda a, rr: a + a ** 2 / (4 * lam * rr))
    if not np.all(np.isfinite(vals)):
        return float("inf")
    return float(_trapz(vals, grid))


def gp_slope_1d(D, r, lam: float = 10.0) -> np.ndarray:
    r"""The magnitude of the optimal WGAN-GP critic's derivative, :math:`1 + |D|/(2\lambda r)`.

    It is at least 1 everywhere on the support of :math:`r`, also where the CDFs agree (there
    the sign of :math:`f'` is arbitrary): the optimal GP critic of two identical distributions
    is *not* constant. Returned as a magnitude (non-negative array).
    """
    lam = float(lam)
    if not lam > 0:
        raise ValueError(f"lam must be > 0; got {lam}")
    return _pointwise(D, r, lambda a, rr: 1 + a / (2 * lam * rr))


def w1_1d_cdf(grid, D) -> float:
    r""":math:`W_1 = \int |F_Q - F_P|\,dx` on the real line (trapezoidal rule on ``grid``)."""
    grid = _check_grid(grid)
    return float(_trapz(np.abs(np.asarray(D, dtype=np.float64)), grid))


def linear_wkp(mean_gap: float, k: float = 2.0, p: float = 6.0) -> float:
    r""":math:`W_{k,p}` restricted to affine critics :math:`f(x) = w^\top x + b`.

    The gradient is :math:`w` everywhere, so the penalty is :math:`k\|w\|^p` for *any*
    :math:`r`, and with :math:`m = \|\mathbb E_P x - \mathbb E_Q x\|`

    .. math::

        \max_w\; w^\top(\mu_P - \mu_Q) - k\|w\|^p
        = \Big(1 - \frac1p\Big)\,(kp)^{-\frac{1}{p-1}}\, m^{\frac{p}{p-1}},
        \qquad \|w^*\| = \Big(\frac{m}{kp}\Big)^{\frac{1}{p-1}} .

    Parameters
    ----------
    mean_gap : float
        :math:`m \ge 0`.
    k, p : float
        As in :func:`wkp_1d`.
    """
    k, p = _check_kp(k, p)
    m = float(mean_gap)
    if m < 0:
        raise ValueError(f"mean_gap must be >= 0; got {m}")
    return (1 - 1 / p) * (k * p) ** (-1 / (p - 1)) * m ** (p / (p - 1))


#: The raw-sample strategies, whose penalty density is a mixture of P and Q themselves.
CLOSED_FORM_STRATEGIES = ("real+fake", "fake", "real")
#: Every sampling strategy of ``wganbook.lipschitz.SAMPLING_STRATEGIES`` has a 1-D density here.
DENSITY_STRATEGIES = ("real-fake", "real-real+fake-fake", "pooled-pairs", "real+fake", "fake", "real")
#: The strategies that interpolate *between* a real and a fake sample, and so put mass in the gap
#: between two separated supports; the others only sample within the supports (or their hulls).
GAP_CHARGING_STRATEGIES = ("real-fake", "pooled-pairs")


def interpolation_density_1d(a: GaussianMixture1D, b: GaussianMixture1D, grid,
                             n_nodes: int = 256) -> np.ndarray:
    r"""Density of :math:`\varepsilon x + (1 - \varepsilon) y`, :math:`x \sim a`, :math:`y \sim b`
    independent, :math:`\varepsilon \sim U[0, 1]` (the interpolates of WGAN-GP).

    Given :math:`\varepsilon`, a pair of components :math:`\mathcal N(m_i, s_i^2)`,
    :math:`\mathcal N(m_j, s_j^2)` gives :math:`\mathcal N(\varepsilon m_i + (1-\varepsilon)m_j,\,
    \varepsilon^2 s_i^2 + (1-\varepsilon)^2 s_j^2)`, so

    .. math::

        r(z) = \sum_{i,j} w_i v_j \int_0^1 \varphi_{\varepsilon m_i + (1-\varepsilon) m_j,\;
               \varepsilon^2 s_i^2 + (1-\varepsilon)^2 s_j^2}(z)\,d\varepsilon ,

    integrated over :math:`\varepsilon` with composite 8-point Gauss-Legendre quadrature
    (``n_nodes`` nodes; accurate to ~1e-10 for standard deviations down to ~0.05 on unit gaps).

    Returns
    -------
    numpy.ndarray
        :math:`r` on ``grid``.
    """
    grid = _check_grid(grid)
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, (int, np.integer)) or n_nodes < 8 \
            or n_nodes % 8:
        raise ValueError(f"n_nodes must be a positive multiple of 8; got {n_nodes!r}")
    x8, w8 = np.polynomial.legendre.leggauss(8)
    panels = n_nodes // 8
    left = np.arange(panels) / panels
    eps = (left[:, None] + (x8[None, :] + 1) / (2 * panels)).ravel()
    weps = np.tile(w8 / (2 * panels), panels)
    out = np.zeros_like(grid)
    for wi, mi, si in zip(a.weights, a.means, a.stds):
        for vj, mj, sj in zip(b.weights, b.means, b.stds):
            for c in range(0, eps.size, 32):
                e, we = eps[c:c + 32, None], weps[c:c + 32, None]
                m = e * mi + (1 - e) * mj
                sd = np.sqrt(e * e * si * si + (1 - e) * (1 - e) * sj * sj)
                dens = np.exp(-0.5 * ((grid[None, :] - m) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
                out += wi * vj * np.sum(we * dens, axis=0)
    return out


def strategy_density_1d(strategy: str, real: GaussianMixture1D, fake: GaussianMixture1D, grid,
                        n_nodes: int = 256) -> np.ndarray:
    r"""The penalty density :math:`r` of a sampling strategy (``wganbook.lipschitz``) on the line.

    Raw samples: ``"real+fake"`` :math:`(p_P + p_Q)/2` (an equal-size batch of each), ``"fake"``
    :math:`p_Q`, ``"real"`` :math:`p_P`. Interpolates (:func:`interpolation_density_1d`, written
    :math:`I(a, b)`): ``"real-fake"`` :math:`I(P, Q)`; ``"real-real+fake-fake"``
    :math:`(I(P, P) + I(Q, Q))/2` (pairs of distinct, independent samples);
    ``"pooled-pairs"`` :math:`\tfrac14 I(P,P) + \tfrac14 I(Q,Q) + \tfrac12 I(P,Q)` (a random pair of
    the pooled batch is real-fake with probability :math:`n/(2n-1) \to 1/2`; :math:`I(P,Q) =
    I(Q,P)` since :math:`\varepsilon` and :math:`1-\varepsilon` have the same law).

    Returns
    -------
    numpy.ndarray
        :math:`r` on ``grid``.
    """
    grid = _check_grid(grid)
    if strategy == "real+fake":
        return 0.5 * (real.pdf(grid) + fake.pdf(grid))
    if strategy == "fake":
        return fake.pdf(grid)
    if strategy == "real":
        return real.pdf(grid)
    if strategy not in DENSITY_STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; strategy must be one of: "
                         f"{', '.join(DENSITY_STRATEGIES)}")

    return _strategy_densities([strategy], real, fake, grid, n_nodes)[strategy]


def _strategy_densities(strategies, real, fake, grid, n_nodes: int = 256) -> dict:
    """:func:`strategy_density_1d` for several strategies, each interpolation density computed once."""
    cache: dict = {}

    def interp(key):
        if key not in cache:
            a, b = {"PQ": (real, fake), "PP": (real, real), "QQ": (fake, fake)}[key]
            cache[key] = interpolation_density_1d(a, b, grid, n_nodes=n_nodes)
        return cache[key]

    out = {}
    for s in strategies:
        if s in CLOSED_FORM_STRATEGIES:
            out[s] = strategy_density_1d(s, real, fake, grid)
        elif s == "real-fake":
            out[s] = interp("PQ")
        elif s == "real-real+fake-fake":
            out[s] = 0.5 * (interp("PP") + interp("QQ"))
        elif s == "pooled-pairs":
            out[s] = 0.25 * (interp("PP") + interp("QQ")) + 0.5 * interp("PQ")
        else:
            raise ValueError(f"unknown strategy {s!r}; strategy must be one of: "
                             f"{', '.join(DENSITY_STRATEGIES)}")
    return out


def separated_pair(sigma: float, mean: float = 1.0) -> Tuple[GaussianMixture1D, GaussianMixture1D]:
    r""":math:`P = \mathcal N(-m, \sigma^2)` and :math:`Q = \mathcal N(m, \sigma^2)`: as
    :math:`\sigma \to 0` their supports separate, with the gap :math:`(-m, m)` between them."""
    sigma, mean = float(sigma), float(mean)
    if not (sigma > 0 and mean > 0):
        raise ValueError(f"sigma and mean must be > 0; got sigma={sigma}, mean={mean}")
    return GaussianMixture1D([-mean], [sigma]), GaussianMixture1D([mean], [sigma])


def separated_limit_wkp(strategy: str, mean: float = 1.0, k: float = 2.0, p: float = 6.0) -> float:
    r"""The limit :math:`\sigma \to 0` of :math:`W_{k,p}` for :func:`separated_pair`.

    In the limit :math:`P = \delta_{-m}`, :math:`Q = \delta_m`, :math:`|D| = 1` on the gap
    :math:`(-m, m)`. A strategy that puts no mass there (raw samples, within-distribution
    interpolates) gives :math:`+\infty`; real-fake interpolates are uniform on the gap with weight
    :math:`w = 1` (``"real-fake"``) or :math:`w = 1/2` (``"pooled-pairs"``), so
    :math:`r = w/(2m)` and

    .. math::

        W_{k,p} \to \Big(1 - \frac1p\Big)\,2m\,\Big(\frac{k p\, w}{2m}\Big)^{-\frac1{p-1}} .
    """
    k, p = _check_kp(k, p)
    if strategy not in DENSITY_STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; strategy must be one of: "
                         f"{', '.join(DENSITY_STRATEGIES)}")
    if strategy not in GAP_CHARGING_STRATEGIES:
        return float("inf")
    w = 1.0 if strategy == "real-fake" else 0.5
    L = 2.0 * float(mean)
    return (1 - 1 / p) * L * (k * p * w / L) ** (-1 / (p - 1))


def wkp_vs_separation(sigmas: Sequence[float], strategies: Sequence[str] = DENSITY_STRATEGIES,
                      k: float = 2.0, p: float = 6.0, mean: float = 1.0, n_grid: int = 12001) -> list:
    r"""Exact :math:`W_{k,p}` of :func:`separated_pair` for each :math:`\sigma` and strategy.

    For each :math:`\sigma` the grid spans :math:`[-m - 12\sigma, m + 12\sigma]` with ``n_grid``
    points (every density is negligible beyond it); :func:`wkp_1d` integrates the pointwise optimum.

    Returns
    -------
    list of dict
        One row per :math:`\sigma`: ``{"sigma": sigma, strategy: W, ...}``.
    """
    k, p = _check_kp(k, p)
    rows = []
    for sigma in sigmas:
        P, Q = separated_pair(sigma, mean)
        grid = np.linspace(-mean - 12 * sigma, mean + 12 * sigma, int(n_grid))
        D = cdf_gap(P, Q, grid)
        row = {"sigma": float(sigma)}
        for s, r in _strategy_densities(list(strategies), P, Q, grid).items():
            row[s] = wkp_1d(grid, D, r, k=k, p=p)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# The published variants
# ---------------------------------------------------------------------------------------------
#: Settings (TrainConfig / div_penalty keyword arguments) of the three published WGAN-div variants.
PUBLISHED_VARIANTS = {
    # Wu et al. (2018): k = 2, p = 6 from their grid search; r = real-fake interpolates
    # (the first of their six strategies).
    "paper": {"k": 2.0, "p": 6.0, "strategy": "real-fake"},
    # musikisomorphie/wgan-div (the first author's code, built on WGAN-GP's):
    # LAMBDA * mean(||grad D(x_hat)||^6) with LAMBDA = 10 at real-fake interpolates.
    "official-code": {"k": 10.0, "p": 6.0, "strategy": "real-fake"},
    # bojone/gan keras/wgan_div_celeba.py and eriklindernoren/PyTorch-GAN wgan_div.py:
    # (k/2) * mean(||grad D(real)||^6 + ||grad D(fake)||^6), k = 2, raw samples.
    "re-implementations": {"k": 2.0, "p": 6.0, "strategy": "real+fake"},
}

#: Names accepted by :func:`reference_penalty`.
REFERENCE_CODES = tuple(PUBLISHED_VARIANTS)


def _grad_sq_norm(critic: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    out = critic(x)
    (g,) = torch.autograd.grad(out, x, grad_outputs=torch.ones_like(out), create_graph=True)
    return g.reshape(g.shape[0], -1).pow(2).sum(dim=1)


def reference_penalty(code: str, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
    r"""The penalty of a published WGAN-div code, transcribed independently of ``wganbook.lipschitz``.

    - ``"paper"``: :math:`2\,\frac1n\sum_i \|\nabla f(\hat x_i)\|^6`,
      :math:`\hat x_i = x_i + \alpha_i (y_i - x_i)`, :math:`\alpha_i \sim U[0,1]`;
    - ``"official-code"``: the same with weight 10 (``slopes = (sum grad^2)^3``;
      ``LAMBDA * mean(slopes)``);
    - ``"re-implementations"``: :math:`\frac k2\,\frac1n\sum_i \big(\|\nabla f(x_i)\|^6 +
      \|\nabla f(y_i)\|^6\big)`, :math:`k = 2`.

    Norms are per sample over the flattened input, computed as
    :math:`(\sum g^2)^{p/2}`. The sign convention of the original code does not matter: the
    penalty depends only on :math:`\|\nabla f\|`, so it is the same for :math:`f` and :math:`-f`.

    Parameters
    ----------
    code : str
        One of :data:`REFERENCE_CODES`.
    critic : nn.Module
        Maps ``(n, ...)`` to ``(n,)`` scores.
    real, fake : torch.Tensor
        Batches of equal size.
    generator : torch.Generator, optional
        Randomness of the interpolation weights :math:`\alpha_i` (drawn as
        ``torch.rand(n, generator=generator)``).

    Returns
    -------
    torch.Tensor
        A scalar (differentiable w.r.t. the critic's parameters).
    """
    if code not in PUBLISHED_VARIANTS:
        raise ValueError(f"unknown code {code!r}; code must be one of: {', '.join(REFERENCE_CODES)}")
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape; got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    cfg = PUBLISHED_VARIANTS[code]
    k, half_p = cfg["k"], cfg["p"] / 2
    if cfg["strategy"] == "real+fake":
        return k / 2 * (_grad_sq_norm(critic, real).pow(half_p)
                        + _grad_sq_norm(critic, fake).pow(half_p)).mean()
    n = real.shape[0]
    alpha = torch.rand(n, generator=generator, device=real.device, dtype=real.dtype)
    alpha = alpha.reshape((n,) + (1,) * (real.dim() - 1))
    x_hat = real + alpha * (fake - real)
    return k * _grad_sq_norm(critic, x_hat).pow(half_p).mean()


# ---------------------------------------------------------------------------------------------
# Small critic helpers
# ---------------------------------------------------------------------------------------------
class Negated(nn.Module):
    r"""The critic :math:`x \mapsto -f(x)` (shares ``f``'s parameters)."""

    def __init__(self, critic: nn.Module):
        super().__init__()
        self.critic = critic

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``-critic(x)``."""
        return -self.critic(x)


class _Linear(nn.Module):
    def __init__(self, w: torch.Tensor, b: float):
        super().__init__()
        self.w = nn.Parameter(w.detach().clone().reshape(-1))
        self.b = nn.Parameter(torch.tensor(float(b), dtype=self.w.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1) @ self.w + self.b


def linear_critic(w: torch.Tensor, b: float = 0.0) -> nn.Module:
    r"""The affine critic :math:`f(x) = w^\top \mathrm{vec}(x) + b` (input flattened per sample).

    Its input gradient is :math:`w` at every point, so any penalty evaluated on it is a function of
    :math:`\|w\|` alone, whatever the sampling strategy: :math:`k\|w\|^p` for WGAN-div and
    :math:`\lambda(\|w\| - 1)^2` for WGAN-GP.
    """
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"w must be a torch.Tensor; got {type(w).__name__}")
    return _Linear(w, b)


def critic_objective(method: str, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     generator: Optional[torch.Generator] = None, **hp) -> dict:
    r"""Evaluate a critic's objective on fixed batches (no training).

    Returns ``{"objective", "gap", "penalty", "grad_norm"}`` as floats, where
    :math:`\text{gap} = \bar f(\text{real}) - \bar f(\text{fake})`,
    :math:`\text{objective} = \text{gap} - \text{penalty}` (the negated critic loss of
    ``wganbook.objectives``) and ``grad_norm`` is the mean input-gradient norm over
    ``real`` and ``fake``.

    Parameters
    ----------
    method : str
        A method of ``wganbook.objectives.METHODS`` (e.g. ``"wgan-div"``, ``"wgan-gp"``).
    critic : nn.Module
        The critic.
    real, fake : torch.Tensor
        Evaluation batches.
    generator : torch.Generator, optional
        Randomness of the penalty's sampling strategy.
    **hp
        Method hyper-parameters (``k``, ``p``, ``strategy``, ``lam``, ...).
    """
    from . import lipschitz, objectives

    loss, stats = objectives.critic_loss(method, critic, real, fake, generator=generator, **hp)
    gap = float(stats["w1_estimate"])
    pen = float(stats["penalty"])
    norms = torch.cat([lipschitz.input_gradient_norms(critic, real),
                       lipschitz.input_gradient_norms(critic, fake)])
    return {"objective": float(-loss.detach()), "gap": gap, "penalty": pen,
            "grad_norm": float(norms.mean())}


# ---------------------------------------------------------------------------------------------
# Small fully connected image models (the quick ablation) and a run_grid training function
# ---------------------------------------------------------------------------------------------
class MLPImageGenerator(nn.Module):
    r"""MLP generator for small images: :math:`x = \tanh(\mathrm{MLP}(z))` reshaped to ``(C, H, W)``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of the images.
    z_dim, width, depth : int
        Latent dimension, hidden units per layer and number of hidden layers (ReLU).
    """

    def __init__(self, image_shape: Tuple[int, int, int], z_dim: int = 32, width: int = 256,
                 depth: int = 2):
        super().__init__()
        from .models import MLP

        self.image_shape = tuple(int(v) for v in image_shape)
        self.z_dim = int(z_dim)
        self.net = MLP(self.z_dim, int(np.prod(self.image_shape)), width=width, depth=depth)

    def sample_z(self, n: int, generator: Optional[torch.Generator] = None, device=None) -> torch.Tensor:
        r"""Latent codes :math:`z \sim \mathcal N(0, I)` of shape ``(n, z_dim)``."""
        from .models import Generator

        return Generator.sample_z(self, n, generator=generator, device=device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images in :math:`[-1, 1]` of shape ``(n, C, H, W)``."""
        return torch.tanh(self.net(z)).reshape((z.shape[0],) + self.image_shape)


#: Architectures of :func:`make_models`: ``"conv"`` = the package's DCGAN-style nets,
#: ``"mlp"`` = :class:`MLPImageGenerator` and ``wganbook.models.MLPCritic`` on flattened images.
ARCHITECTURES = ("conv", "mlp")


def make_models(dataset: str, arch: str = "conv", width: Optional[int] = None,
                depth: Optional[int] = None, z_dim: Optional[int] = None):
    """Build ``(generator, critic)`` for an image dataset.

    ``arch="conv"`` calls ``wganbook.models.make_generator`` / ``make_critic`` (``None`` sizes =
    their defaults); ``arch="mlp"`` builds fully connected nets with ``depth`` hidden ReLU layers of
    ``width`` units (defaults 256, 2, ``z_dim`` 32), several times faster on a CPU for 8x8 digits.
    Parameters are drawn from the global torch RNG (seed it first).
    """
    from . import models
    from .data import image_shape

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown arch {arch!r}; arch must be one of: {', '.join(ARCHITECTURES)}")
    if arch == "conv":
        return (models.make_generator(dataset, z_dim=z_dim, width=width, depth=depth),
                models.make_critic(dataset, width=width, depth=depth))
    shape = image_shape(dataset)
    width = 256 if width is None else width
    depth = 2 if depth is None else depth
    z_dim = 32 if z_dim is None else z_dim
    return (MLPImageGenerator(shape, z_dim=z_dim, width=width, depth=depth),
            models.MLPCritic(int(np.prod(shape)), width=width, depth=depth))


def make_train_fn(arch: str = "conv", width: Optional[int] = None, depth: Optional[int] = None,
                  z_dim: Optional[int] = None):
    """A ``train_fn`` for ``wganbook.sweeps.run_grid`` that trains :func:`make_models` nets.

    ``train_fn(config_kwargs, data=None, **kwargs)`` seeds everything with
    ``config_kwargs["seed"]``, builds the models, and returns ``train(TrainConfig(**config_kwargs),
    data=data, generator=G, critic=C, **kwargs)`` (e.g. ``resume=True``); runs are deterministic on
    a CPU.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown arch {arch!r}; arch must be one of: {', '.join(ARCHITECTURES)}")

    def train_fn(config_kwargs: dict, data=None, **kwargs):
        from .data import seed_everything
        from .train import TrainConfig, train

        cfg = TrainConfig(**config_kwargs)
        seed_everything(cfg.seed)
        gen, critic = make_models(cfg.data, arch, width=width, depth=depth, z_dim=z_dim)
        return train(cfg, data=data, generator=gen, critic=critic, **kwargs)

    return train_fn


# ---------------------------------------------------------------------------------------------
# Experiments of chapter 5
# ---------------------------------------------------------------------------------------------
def fit_critic_1d(method: str, real: GaussianMixture1D, fake: GaussianMixture1D, steps: int = 600,
                  batch_size: int = 256, width: int = 32, depth: int = 2, lr: float = 2e-3,
                  betas=(0.5, 0.9), seed: int = 0, n_eval: int = 20000, activation: str = "elu", **hp):
    r"""Train a 1-D MLP critic between two fixed distributions and evaluate its objective.

    The critic (``wganbook.models.MLPCritic(1, width, depth, activation)``; ELU by default, so that
    its slope is continuous — a ReLU critic's slope is piecewise constant, and in our runs its
    objective drifted a few percent *below* the optimum over long training) minimises the method's critic
    loss (``wganbook.objectives.critic_loss``) on fresh samples each step with Adam(``lr``,
    ``betas``), the learning rate decaying linearly to 0 over ``steps`` (with a constant rate the
    last iterate keeps fluctuating by a few percent, because :math:`\|\nabla f\|^6` is a
    high-variance minibatch estimate). Then :func:`critic_objective` is evaluated on ``n_eval``
    fresh samples of each distribution. For ``method="wgan-div"`` the objective estimates
    :math:`W_{k,p}` from below (any critic's objective is at most the maximum), up to sampling
    noise.

    Parameters
    ----------
    method : str
        ``"wgan-div"`` or ``"wgan-gp"`` (any method of ``wganbook.objectives``).
    real, fake : GaussianMixture1D
        The distributions P (scored high) and Q.
    steps, batch_size, width, depth, lr, betas, seed :
        Training settings (``seed`` fixes the initialisation, the samples and the penalty points).
    activation : str
        Hidden nonlinearity (``wganbook.models.ACTIVATIONS``).
    n_eval : int
        Evaluation samples per distribution.
    **hp
        Method hyper-parameters (``k``, ``p``, ``lam``, ``strategy``).

    Returns
    -------
    (dict, nn.Module)
        ``{"objective", "gap", "penalty", "grad_norm"}`` (floats) and the trained critic.
    """
    from . import objectives
    from .data import seed_everything
    from .models import MLPCritic

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1; got {steps!r}")
    seed_everything(seed)
    critic = MLPCritic(1, width=width, depth=depth, activation=activation)
    rng = torch.Generator().manual_seed(seed)
    noise = torch.Generator().manual_seed(seed + 7919)
    opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=tuple(float(b) for b in betas))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 - t / steps)
    for _ in range(steps):
        loss, _ = objectives.critic_loss(method, critic, real.sample(batch_size, rng),
                                         fake.sample(batch_size, rng), generator=noise, **hp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    ev = torch.Generator().manual_seed(seed + 10007)
    x, y = real.sample(n_eval, ev), fake.sample(n_eval, ev)
    out = critic_objective(method, critic, x, y, generator=torch.Generator().manual_seed(seed), **hp)
    return out, critic


def strategy_sensitivity(records, metric: str = "fd", by: str = "method") -> list:
    r"""How much a metric moves across sampling strategies, per method and seed.

    For each value of ``by`` (e.g. the method) and each seed, over the strategies
    :math:`s_1..s_m` run with that seed: ``"range"`` :math:`= \max_j v_j - \min_j v_j`,
    ``"best"`` / ``"worst"`` (the strategies of the min / max value) and ``"n"`` (m). Comparing
    strategies within one seed removes the part of the spread that every strategy shares (same
    initialisation and data order).

    Parameters
    ----------
    records : list of dict
        Records of ``wganbook.sweeps.run_grid`` with ``"strategy"`` and ``by`` in ``record["combo"]``
        (or ``record["config"]``).
    metric : str
        Metric name in ``record["metrics"]``.
    by : str
        Grouping key.

    Returns
    -------
    list of dict
        Rows ``{by, "seed", "range", "best", "worst", "n"}`` in order of first appearance.
    """
    def get(r, key):
        for part in ("combo", "config"):
            if key in (r.get(part) or {}):
                return r[part][key]
        if key in r:
            return r[key]
        raise KeyError(f"record has no {key!r} in combo or config")

    groups: dict = {}
    for r in records:
        v = (r.get("metrics") or {}).get(metric)
        if v is None or not np.isfinite(v):
            continue
        groups.setdefault((get(r, by), r["seed"]), []).append((float(v), get(r, "strategy")))
    if not groups:
        raise ValueError(f"no finite {metric!r} values in records")
    rows = []
    for (b, seed), vals in groups.items():
        vals.sort()
        rows.append({by: b, "seed": seed, "range": vals[-1][0] - vals[0][0], "best": vals[0][1],
                     "worst": vals[-1][1], "n": len(vals)})
    return rows


def sensitivity_summary(records, metric: str = "fd", by: str = "method") -> dict:
    r"""Is a method's metric more sensitive to the sampling strategy than to the seed?

    For each value :math:`m` of ``by``: ``"strategy_range"``, the mean over seeds of the range
    across strategies within one seed (:func:`strategy_sensitivity`); ``"seed_range"``, the mean
    over strategies of the range across seeds of one configuration; ``"best"``, the best strategy
    of each seed. Then ``"gap"`` = max - min of the strategy ranges over the values of ``by`` and
    ``"noise"`` = the mean seed range: the difference between the methods is ``"resolved"`` when
    the gap exceeds the noise, and ``"more_sensitive"`` names the value with the largest strategy
    range.

    Returns
    -------
    dict
        ``{"per": {m: {"strategy_range", "seed_range", "best"}}, "gap", "noise", "resolved",
        "more_sensitive"}``.
    """
    from .sweeps import summarize

    per: dict = {}
    for row in strategy_sensitivity(records, metric, by=by):
        d = per.setdefault(row[by], {"ranges": [], "best": []})
        d["ranges"].append(row["range"])
        d["best"].append(row["best"])
    spreads: dict = {}
    for row in summarize(records, [by, "strategy"], metric):
        if row["n"] > 0:
            spreads.setdefault(row[by], []).append(row["max"] - row["min"])
    out = {m: {"strategy_range": float(np.mean(d["ranges"])),
               "seed_range": float(np.mean(spreads.get(m, [np.nan]))), "best": d["best"]}
           for m, d in per.items()}
    ranges = {m: v["strategy_range"] for m, v in out.items()}
    gap = max(ranges.values()) - min(ranges.values())
    noise = float(np.mean([v["seed_range"] for v in out.values()]))
    return {"per": out, "gap": gap, "noise": noise, "resolved": bool(gap > noise),
            "more_sensitive": max(ranges, key=ranges.get)}


def select_records(records, **conditions) -> list:
    r"""The records whose ``combo`` / ``config`` / record values match every condition.

    A condition's value may be a list (any of its values matches), e.g.
    ``select_records(records, method="wgan-div", strategy="real-fake", seed=[0, 1])``.
    """
    from .sweeps import _lookup

    def ok(r):
        for key, want in conditions.items():
            try:
                v = _lookup(r, key)
            except KeyError:
                return False
            if v not in (list(want) if isinstance(want, (list, tuple, set)) else [want]):
                return False
        return True

    return [r for r in records if ok(r)]


def kp_summary(records, metric: str = "fd", centre: Tuple[float, float] = (2.0, 6.0)) -> list:
    r"""Mean, min, max and count of a metric per :math:`(k, p)` of WGAN-div records.

    A record's :math:`(k, p)` is read from its ``config``; ``None`` (the method's default) counts
    as ``centre`` (the WGAN-div defaults :math:`k = 2`, :math:`p = 6`), so runs of an ablation at
    the default settings and runs of a :func:`kp_grid` sweep summarise together.

    Returns
    -------
    list of dict
        Rows ``{"k", "p", "mean", "min", "max", "n"}``, centre first, then in order of appearance.
    """
    groups: dict = {(float(centre[0]), float(centre[1])): []}
    for r in records:
        cfg = r.get("config") or {}
        k = float(centre[0]) if cfg.get("k") is None else float(cfg["k"])
        p = float(centre[1]) if cfg.get("p") is None else float(cfg["p"])
        v = (r.get("metrics") or {}).get(metric)
        groups.setdefault((k, p), [])
        if v is not None and np.isfinite(v):
            groups[(k, p)].append(float(v))
    rows = []
    for (k, p), vals in groups.items():
        if not vals:
            continue
        rows.append({"k": k, "p": p, "mean": float(np.mean(vals)), "min": min(vals),
                     "max": max(vals), "n": len(vals)})
    if not rows:
        raise ValueError(f"no finite {metric!r} values in records")
    return rows


#: FID of the six sampling strategies as reported by Su Jianlin's post on WGAN-div
#: (https://kexue.fm/archives/6139, table "不同的采样方式所导致的不同模型的FID不同差异"), quoting
#: Wu et al. (2018). Columns in the order of ``wganbook.lipschitz.SAMPLING_STRATEGIES``. The post
#: does not state the dataset or the FID protocol of this table.
POST_FID = {
    "WGAN-GP": (18.4, 20.1, 19.3, 19.0, 18.3, 17.0),
    "CTGAN": (16.4, 16.5, 17.7, 17.2, 17.9, 17.5),
    "WGAN-div": (15.2, 15.9, 15.1, 14.5, 15.5, 14.9),
}


#: The main FID table of Wu et al. (2018) as quoted by Su Jianlin's post (table
#: "WGAN-div与不同的模型在不同的数据集效果比较"): model -> (CIFAR-10, CelebA, LSUN); ``None`` where
#: the table has "-" (SNGAN's CIFAR-10 entry is starred in the post: quoted from the SNGAN paper).
PAPER_FID = {
    "DCGAN": (30.9, 52.0, 61.1),
    "WGAN-GP": (18.8, 18.4, 26.8),
    "RJS-GAN": (19.6, 21.4, 16.7),
    "CTGAN": (18.6, 16.4, 20.3),
    "SNGAN": (21.7, None, None),
    "WGAN-div": (18.1, 15.2, 15.9),
}
#: Columns of :data:`PAPER_FID`.
PAPER_FID_DATASETS = ("CIFAR-10", "CelebA", "LSUN")


def plot_strategy_ablation(ax, records, metric: str = "fd", methods=None, strategies=None,
                           reference: Optional[float] = None, ylabel: Optional[str] = None,
                           reference_label: str = "reference"):
    """Plot a metric per sampling strategy: one marker per seed, a bar at each method's mean.

    Parameters
    ----------
    ax : matplotlib Axes
    records : list of dict
        Records of ``wganbook.sweeps.run_grid`` over ``method`` x ``strategy``.
    metric : str
        Metric name in ``record["metrics"]``.
    methods, strategies : list of str, optional
        Order of the groups (default: order of first appearance).
    reference : float, optional
        A horizontal reference line (e.g. the metric of real data, :func:`real_reference_distance`).
    ylabel : str, optional
        Label of the y axis (default: the metric name).
    reference_label : str, optional
        Legend entry of the reference line.
    """
    def combo(r, key):
        return (r.get("combo") or {}).get(key, (r.get("config") or {}).get(key))

    methods = list(methods or dict.fromkeys(combo(r, "method") for r in records))
    strategies = list(strategies or dict.fromkeys(combo(r, "strategy") for r in records))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        xs, means = [], []
        for j, s in enumerate(strategies):
            vals = [r["metrics"][metric] for r in records
                    if combo(r, "method") == m and combo(r, "strategy") == s and metric in r["metrics"]]
            x0 = j + (i - (len(methods) - 1) / 2) * width
            if vals:
                ax.scatter([x0] * len(vals), vals, s=14, color=f"C{i}", zorder=3)
                xs.append(x0)
                means.append(float(np.mean(vals)))
        ax.bar(xs, means, width=width * 0.9, color=f"C{i}", alpha=0.35, label=m)
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=1, label=reference_label)
    ax.set_xticks(range(len(strategies)))
    ax.set_xticklabels(strategies, rotation=20, ha="right")
    ax.set_xlabel("sampling strategy r(x)")
    ax.set_ylabel(ylabel or metric)
    ax.legend(fontsize="small")
    return ax


def kp_grid(ks: Sequence[float], ps: Sequence[float], product: bool = False,
            centre: Tuple[float, float] = (2.0, 6.0), include_centre: bool = True) -> list:
    r"""Settings of a :math:`(k, p)` grid for ``wganbook.sweeps.run_grid`` (one dict per point).

    ``product=True``: every pair :math:`(k, p) \in ks \times ps`. ``product=False``: a cross
    through ``centre`` :math:`(k_0, p_0)`: :math:`(k, p_0)` for :math:`k \in ks` and
    :math:`(k_0, p)` for :math:`p \in ps`, without duplicates. Each dict is
    ``{"name": "k=..,p=..", "k": k, "p": p}``; ``include_centre=False`` drops the centre.
    """
    ks = [float(k) for k in ks]
    ps = [float(p) for p in ps]
    if not ks or not ps:
        raise ValueError("ks and ps must be non-empty lists of numbers")
    k0, p0 = float(centre[0]), float(centre[1])
    pairs = [(k, p) for k in ks for p in ps] if product else [(k, p0) for k in ks] + [(k0, p) for p in ps]
    out, seen = [], set()
    for k, p in pairs:
        if (k, p) in seen or (not include_centre and (k, p) == (k0, p0)):
            continue
        _check_kp(k, p)
        seen.add((k, p))
        out.append({"name": f"k={k:g},p={p:g}", "k": k, "p": p})
    return out


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
    from . import metrics

    ref = metrics.reference_images(dataset, n)
    keys = {row.numpy().tobytes() for row in ref.reshape(ref.shape[0], -1).float()}
    flat = images.reshape(images.shape[0], -1).float()
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    idx = [int(i) for i in order if flat[i].numpy().tobytes() not in keys][:n]
    if len(idx) < 2:
        raise ValueError(f"fewer than 2 images of {dataset!r} lie outside its reference set")
    return metrics.frechet_distance(features(images[idx]), features(ref)), len(idx)

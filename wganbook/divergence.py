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
- :class:`~wganbook.lab.wgandiv.Negated` (the critic :math:`-f`) and :func:`~wganbook.lab.wgandiv.linear_critic` (an affine critic with a
  given weight vector) for penalty identities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from scipy.special import ndtr
from torch import nn

from wganbook._util import Int, check_value

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
    "CLOSED_FORM_STRATEGIES",
    "DENSITY_STRATEGIES",
    "GAP_CHARGING_STRATEGIES",
    "interpolation_density_1d",
    "strategy_density_1d",
    "separated_pair",
    "separated_limit_wkp",
    "wkp_vs_separation",
    "PUBLISHED_VARIANTS",
    "REFERENCE_CODES",
    "reference_penalty",
    "kp_grid",
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
            raise ValueError(
                f"means and stds must be non-empty and of equal length; got {len(means)} means and {len(stds)} stds"
            )
        if min(stds) <= 0:
            raise ValueError(f"stds must be > 0; got {stds}")
        w = np.ones(len(means)) if self.weights is None else np.asarray(self.weights, float)
        if w.shape != (len(means),) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(
                f"weights must be {len(means)} non-negative numbers with a positive sum; got {self.weights}"
            )
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
        check_value("n", n, Int(lo=1))
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
    vals = _pointwise(D, r, lambda a, rr: (1 - 1 / p) * a**q * (k * p * rr) ** (-1 / (p - 1)))
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
    vals = _pointwise(D, r, lambda a, rr: a + a**2 / (4 * lam * rr))
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


def interpolation_density_1d(a: GaussianMixture1D, b: GaussianMixture1D, grid, n_nodes: int = 256) -> np.ndarray:
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
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, (int, np.integer)) or n_nodes < 8 or n_nodes % 8:
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
                e, we = eps[c : c + 32, None], weps[c : c + 32, None]
                m = e * mi + (1 - e) * mj
                sd = np.sqrt(e * e * si * si + (1 - e) * (1 - e) * sj * sj)
                dens = np.exp(-0.5 * ((grid[None, :] - m) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
                out += wi * vj * np.sum(we * dens, axis=0)
    return out


def strategy_density_1d(
    strategy: str, real: GaussianMixture1D, fake: GaussianMixture1D, grid, n_nodes: int = 256
) -> np.ndarray:
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
        raise ValueError(f"unknown strategy {strategy!r}; strategy must be one of: {', '.join(DENSITY_STRATEGIES)}")

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
            raise ValueError(f"unknown strategy {s!r}; strategy must be one of: {', '.join(DENSITY_STRATEGIES)}")
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
        raise ValueError(f"unknown strategy {strategy!r}; strategy must be one of: {', '.join(DENSITY_STRATEGIES)}")
    if strategy not in GAP_CHARGING_STRATEGIES:
        return float("inf")
    w = 1.0 if strategy == "real-fake" else 0.5
    L = 2.0 * float(mean)
    return (1 - 1 / p) * L * (k * p * w / L) ** (-1 / (p - 1))


def wkp_vs_separation(
    sigmas: Sequence[float],
    strategies: Sequence[str] = DENSITY_STRATEGIES,
    k: float = 2.0,
    p: float = 6.0,
    mean: float = 1.0,
    n_grid: int = 12001,
) -> list:
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


def reference_penalty(
    code: str, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
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
        raise ValueError(f"real and fake must have the same shape; got {tuple(real.shape)} and {tuple(fake.shape)}")
    cfg = PUBLISHED_VARIANTS[code]
    k, half_p = cfg["k"], cfg["p"] / 2
    if cfg["strategy"] == "real+fake":
        return k / 2 * (_grad_sq_norm(critic, real).pow(half_p) + _grad_sq_norm(critic, fake).pow(half_p)).mean()
    n = real.shape[0]
    alpha = torch.rand(n, generator=generator, device=real.device, dtype=real.dtype)
    alpha = alpha.reshape((n,) + (1,) * (real.dim() - 1))
    x_hat = real + alpha * (fake - real)
    return k * _grad_sq_norm(critic, x_hat).pow(half_p).mean()


def kp_grid(
    ks: Sequence[float],
    ps: Sequence[float],
    product: bool = False,
    centre: Tuple[float, float] = (2.0, 6.0),
    include_centre: bool = True,
) -> list:
    r"""Settings of a :math:`(k, p)` grid for ``wganbook.lab.sweeps.run_grid`` (one dict per point).

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

r"""Maximum likelihood on data near a line: why classical models add noise, and how much.

Maximising the expected log-likelihood :math:`\mathbb{E}_{x \sim P_r} \log p_\theta(x)` is
minimising the Kullback-Leibler divergence, because

.. math::

    \mathrm{KL}(P_r \,\|\, P_\theta) = -H(P_r) - \mathbb{E}_{x \sim P_r} \log p_\theta(x)

and the entropy :math:`H(P_r)` does not depend on :math:`\theta` (Arjovsky et al. 2017,
Section 1). A model whose samples lie on a line, like WGAN's Example 1, has no density in the
plane, so this KL is infinite; the classical remedy gives the model a noise term. Here, across
the lines (the :math:`y` coordinates of data and model are the same :math:`U[0, 1]` and cancel):

* data: :math:`x \sim N(0, s^2)`, a segment thickened to width :math:`s` (:math:`s = 0`: the
  segment itself, a one-dimensional manifold in the plane);
* model: :math:`x \sim N(\theta, \sigma^2)`, the moved segment blurred by noise of width
  :math:`\sigma` (:math:`\sigma = 0`: no noise).

Then, per data point,

.. math::

    \mathbb{E} \log p_{\theta,\sigma}(x) = -\tfrac12 \log(2\pi\sigma^2)
        - \frac{s^2 + \theta^2}{2\sigma^2}, \qquad
    \mathrm{KL} = \log\frac{\sigma}{s} + \frac{s^2 + \theta^2}{2\sigma^2} - \frac12 ,

and the maximum-likelihood noise width is :math:`\sigma^\star = \sqrt{s^2 + \theta^2}`: a
model off by :math:`\theta` must blur its samples by at least :math:`|\theta|`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from wganbook.transport import _real_array

__all__ = [
    "gaussian_kl",
    "line_log_likelihood",
    "line_kl",
    "ml_noise_width",
]


def _nonneg(value, name):
    arr = _real_array(value, name)
    if (arr < 0).any():
        raise ValueError(f"{name} must be >= 0 (a width); got {value!r}")
    return arr


def _real(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number; got {value!r}")
    return float(value)


def _out(arr):
    return float(arr) if np.ndim(arr) == 0 else arr


def gaussian_kl(mu_p, sigma_p, mu_q, sigma_q):
    r"""KL divergence between one-dimensional Gaussians, widths allowed to be zero.

    .. math::

        \mathrm{KL}\bigl(N(\mu_p, \sigma_p^2) \,\|\, N(\mu_q, \sigma_q^2)\bigr)
        = \log\frac{\sigma_q}{\sigma_p} + \frac{\sigma_p^2 + (\mu_p - \mu_q)^2}{2\sigma_q^2}
          - \frac12 .

    A width of zero is a point mass: :math:`\mathrm{KL} = +\infty` whenever :math:`P` is not
    absolutely continuous with respect to :math:`Q` (:math:`\sigma_p = 0 < \sigma_q`, or
    :math:`\sigma_q = 0` and :math:`P \ne Q`), and 0 for two equal point masses.

    Parameters
    ----------
    mu_p, mu_q : float
        Means.
    sigma_p, sigma_q : float or array-like
        Standard deviations (>= 0); arrays broadcast.

    Returns
    -------
    float or numpy.ndarray
    """
    mp, mq = _real(mu_p, "mu_p"), _real(mu_q, "mu_q")
    sp, sq = np.broadcast_arrays(_nonneg(sigma_p, "sigma_p"), _nonneg(sigma_q, "sigma_q"))
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.log(sq / sp) + (sp**2 + (mp - mq) ** 2) / (2 * sq**2) - 0.5
    kl = np.where((sp == 0) & (sq > 0), np.inf, kl)
    kl = np.where(sq == 0, np.where((sp == 0) & (mp == mq), 0.0, np.inf), kl)
    return _out(kl)


def line_log_likelihood(theta, sigma, width=0.0):
    r"""Expected log-likelihood per data point of the noisy line model (see the module text).

    .. math::

        \mathbb{E}_{x \sim N(0, s^2)} \log N(x; \theta, \sigma^2)
        = -\tfrac12 \log(2\pi\sigma^2) - \frac{s^2 + \theta^2}{2\sigma^2}
        \quad (-\infty \text{ at } \sigma = 0 \text{ unless } s = \theta = 0).

    Finite for every :math:`\sigma > 0` even at :math:`s = 0`, where the KL is infinite: the
    infinite part is :math:`-H(P_r)`, which no model parameter changes.

    Parameters
    ----------
    theta : float
        Offset of the model's line.
    sigma : float or array-like
        The model's noise width(s), >= 0.
    width : float, optional
        The data's width :math:`s` (>= 0; 0 = data on the line).

    Returns
    -------
    float or numpy.ndarray
    """
    th = _real(theta, "theta")
    sg = _nonneg(sigma, "sigma")
    s = float(_nonneg(width, "width"))
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = -0.5 * np.log(2 * math.pi * sg**2) - (s**2 + th**2) / (2 * sg**2)
    ll = np.where(sg == 0, np.inf if (s == 0 and th == 0) else -np.inf, ll)
    return _out(ll)


def line_kl(theta, sigma, width=0.0):
    r""":math:`\mathrm{KL}(P_r \| P_{\theta,\sigma})` of the noisy line model:
    ``gaussian_kl(0, width, theta, sigma)`` (the :math:`y` parts are equal and cancel).

    Parameters
    ----------
    theta : float
    sigma : float or array-like
        Noise width(s) of the model, >= 0.
    width : float, optional
        The data's width (>= 0).

    Returns
    -------
    float or numpy.ndarray
    """
    return gaussian_kl(0.0, width, theta, sigma)


def ml_noise_width(theta, width=0.0):
    r"""The maximum-likelihood noise width :math:`\sigma^\star = \sqrt{s^2 + \theta^2}`.

    Setting :math:`\partial_\sigma \mathbb{E}\log p = -1/\sigma + (s^2 + \theta^2)/\sigma^3`
    to zero; it maximises :func:`line_log_likelihood` and minimises :func:`line_kl`.

    Parameters
    ----------
    theta : float
    width : float, optional
        The data's width (>= 0).

    Returns
    -------
    float
    """
    th = _real(theta, "theta")
    s = float(_nonneg(width, "width"))
    return math.sqrt(s**2 + th**2)

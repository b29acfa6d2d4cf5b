r"""Chapter 2's experiments on the Kantorovich duality: random test functions against :math:`W_1`, a trained
critic's certified bounds, and its gradient along the transport rays.

The duality itself (potentials, c-transforms, :func:`~wganbook.duality.dual_bounds`) is in
:mod:`wganbook.duality`; this module runs it on the chapter's networks:

* :func:`random_function_bounds` -- :func:`~wganbook.duality.dual_bounds` of freshly initialised MLPs
  multiplied by random scales, so that their Lipschitz constants vary;
* :func:`critic_summary` -- what a trained critic's bounds say against :math:`W_1` and the zero
  function's :math:`D(0)`, and where its training curve first reached :math:`W_1`;
* :func:`ray_gradients` -- the critic's gradient along the segments of an optimal plan (norm one
  and along the ray for an optimal potential: WGAN-GP's Proposition 1);
* :func:`generator_gradient` -- the generator's gradient through a fixed critic, by autograd and
  assembled explicitly from per-sample Jacobians (WGAN's Theorem 3).
"""

from __future__ import annotations

import copy
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np
import torch

from wganbook import duality, models
from wganbook._util import Int, check_value
from wganbook.lab.gaussians1d import gp_slope

__all__ = [
    "random_function_bounds",
    "critic_summary",
    "ray_gradients",
    "generator_gradient",
]


def random_function_bounds(
    x, y, n_functions: int, seed: int = 0, width: int = 32, depth: int = 2
) -> Dict[str, np.ndarray]:
    r""":func:`wganbook.duality.dual_bounds` of ``n_functions`` random functions on the clouds ``x``, ``y``.

    Each function is a freshly initialised ``models.MLPCritic(2, width, depth)`` (from the global
    random state, one after the other) whose output is multiplied by a scale :math:`10^{2u - 1}`,
    :math:`u \sim U[0, 1]` (log-uniform between 0.1 and 10, from a generator seeded by ``seed``). By
    weak duality every ``"ctransform"`` and ``"rescaled"`` value is :math:`\le W_1`; the ``"plain"``
    value :math:`\bar f(x) - \bar f(y)` of a steep function need not be.

    Returns
    -------
    dict of str to numpy.ndarray
        ``"lipschitz"``, ``"plain"``, ``"rescaled"``, ``"ctransform"``: one value per function.
    """
    n_functions = check_value("n_functions", n_functions, Int(lo=1))
    gen = torch.Generator().manual_seed(int(seed))
    bounds = []
    for _ in range(n_functions):
        net = models.MLPCritic(2, width=width, depth=depth)
        scale = float(10 ** (2 * torch.rand(1, generator=gen) - 1))
        with torch.no_grad():
            last = net.net.net[-1]  # f -> scale * f
            last.weight.mul_(scale)
            last.bias.mul_(scale)
        bounds.append(duality.dual_bounds(net, x, y))
    return {k: np.array([b[k] for b in bounds]) for k in ("lipschitz", "plain", "rescaled", "ctransform")}


def critic_summary(
    bounds: Mapping[str, float], history: Mapping[str, Sequence], w1: float, d_zero: float, cost, lam: float
) -> Dict[str, float]:
    r"""A trained critic's value and certified bounds against the exact :math:`W_1`.

    Parameters
    ----------
    bounds : dict
        :func:`wganbook.duality.dual_bounds` of the critic on the two clouds.
    history : dict
        Its ``fit_critic`` history (``"step"``, ``"w1_estimate"``).
    w1 : float
        The exact :math:`W_1` of the clouds.
    d_zero : float
        :math:`D(0)`, the c-transform value of the zero function (:math:`< W_1`).
    cost : array-like
        The cost matrix :math:`C_{ij} = \lVert x_i - y_j \rVert` (its mean is the mean distance of the
        random real-fake pairs the penalty draws).
    lam : float
        The penalty weight.

    Returns
    -------
    dict
        ``"estimate"`` (:math:`\bar f(x) - \bar f(y)`), ``"lipschitz"`` (:math:`\hat L`),
        ``"ctransform"`` (:math:`D(f)`), ``"gap_closed"`` (:math:`(D(f) - D(0)) / (W_1 - D(0))`, the
        share of the gap the critic closes), ``"first_cross"`` (the first recorded step whose estimate
        is :math:`\ge W_1`; the first step if none is), ``"pair_distance"`` (the mean of ``cost``) and
        ``"slope_pred"`` (:math:`1 + d / 2\lambda` for that distance,
        :func:`wganbook.lab.gaussians1d.gp_slope`).
    """
    if not w1 > d_zero:
        raise ValueError(f"w1 must exceed d_zero (the zero function's lower bound); got {w1!r} and {d_zero!r}")
    est = np.asarray(history["w1_estimate"], dtype=np.float64)
    steps = np.asarray(history["step"])
    pair_distance = float(np.mean(cost))
    return {
        "estimate": float(bounds["plain"]),
        "lipschitz": float(bounds["lipschitz"]),
        "ctransform": float(bounds["ctransform"]),
        "gap_closed": float((bounds["ctransform"] - d_zero) / (w1 - d_zero)),
        "first_cross": int(steps[np.argmax(est >= w1)]),
        "pair_distance": pair_distance,
        "slope_pred": gp_slope(pair_distance, lam),
    }


def ray_gradients(
    critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, rows, cols, n_points: int = 10
) -> Tuple[torch.Tensor, torch.Tensor]:
    r"""The critic's gradient along the segments from each fake point to the real point it is matched with.

    For every matched pair :math:`(x_i, y_j)` (``rows``, ``cols``: the non-zero entries of an optimal
    plan) and :math:`t` = ``n_points`` values evenly spaced in :math:`[0.05, 0.95]`, the gradient
    :math:`\nabla f` at :math:`t x_i + (1 - t) y_j`, its norm and its cosine with the ray direction
    :math:`(x_i - y_j) / \lVert x_i - y_j \rVert`. An optimal Kantorovich potential has norm 1 and
    cosine 1 everywhere on the rays.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        Norms and cosines (CPU), ``n_points`` per pair, pair-major.
    """
    n_points = check_value("n_points", n_points, Int(lo=1))
    first = next(iter(critic.parameters()), None)
    dev = first.device if first is not None else torch.device("cpu")
    t = torch.linspace(0.05, 0.95, n_points, dtype=torch.float32)
    xi, yj = real[torch.as_tensor(rows)], fake[torch.as_tensor(cols)]
    points = t[None, :, None] * xi[:, None, :] + (1 - t[None, :, None]) * yj[:, None, :]
    points = points.reshape(-1, xi.shape[1]).to(dev).requires_grad_(True)
    grad = torch.autograd.grad(critic(points).sum(), points)[0].cpu()
    direction = (xi - yj) / (xi - yj).norm(dim=1, keepdim=True)
    direction = direction.repeat_interleave(n_points, dim=0)
    grad_norm = grad.norm(dim=1)
    return grad_norm, (grad * direction).sum(dim=1) / grad_norm


def generator_gradient(critic: torch.nn.Module, generator: torch.nn.Module, z: torch.Tensor) -> Dict[str, object]:
    r"""The gradient of :math:`-\mathbb{E} f(g_\theta(z))` in the generator's parameters, computed two ways.

    WGAN's Theorem 3: for a fixed critic :math:`f`,
    :math:`\nabla_\theta \bigl(-\mathbb{E} f(g_\theta(z))\bigr) = -\mathbb{E}\bigl[(\partial g_\theta(z) /
    \partial\theta)^\top \nabla f(g_\theta(z))\bigr]`. ``"autograd"`` is the left side (backpropagation
    of the batch mean of :math:`-f(g_\theta(z_k))`); ``"explicit"`` is the right side, assembled from
    the Jacobian :math:`J_k = \partial g_\theta(z_k) / \partial\theta` of every sample (one row per
    output coordinate) and the critic's input gradient :math:`\nabla f` at :math:`g_\theta(z_k)`:
    :math:`-\frac1m \sum_k J_k^\top \nabla f(g_\theta(z_k))`. Both are computed in float64 on
    copies of the two networks (the networks themselves are not changed).

    Parameters
    ----------
    critic : torch.nn.Module
        The fixed critic, applied row by row to points of the generator's output dimension.
    generator : torch.nn.Module
        The generator :math:`g_\theta`; :math:`\theta` are its parameters that require a gradient.
    z : torch.Tensor
        Noise, shape ``(m, d_z)`` with ``m >= 1``.

    Returns
    -------
    dict
        ``"autograd"`` and ``"explicit"`` (1-D float64 tensors over the concatenated parameters),
        ``"max_abs_diff"`` (the largest difference, float) and ``"rel_diff"`` (the norm of the difference
        over the norm of ``"autograd"``).
    """
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[0] < 1:
        raise ValueError(f"z must be a 2-D tensor of shape (m, d_z) with m >= 1; got {getattr(z, 'shape', z)!r}")
    cpu = torch.device("cpu")
    f = copy.deepcopy(critic).to(cpu).double().eval()
    g = copy.deepcopy(generator).to(cpu).double()
    theta = [p for p in g.parameters() if p.requires_grad]
    if not theta:
        raise ValueError("generator must have parameters that require a gradient")
    for p in f.parameters():
        p.requires_grad_(False)
    z = z.detach().to(cpu, torch.float64)
    m = z.shape[0]

    loss = -f(g(z)).mean()
    auto = torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, theta)])

    out = g(z)  # (m, d)
    points = out.detach().requires_grad_(True)
    grad_f = torch.autograd.grad(f(points).sum(), points)[0]  # row k: grad f at g(z_k)
    explicit = torch.zeros_like(auto)
    for k in range(m):
        rows = []
        for i in range(out.shape[1]):  # row i of J_k: d g_i(z_k) / d theta
            d = torch.autograd.grad(out[k, i], theta, retain_graph=True, allow_unused=True)
            rows.append(
                torch.cat([(t if t is not None else torch.zeros_like(p)).reshape(-1) for t, p in zip(d, theta)])
            )
        jac = torch.stack(rows)  # (d, P)
        explicit -= jac.T @ grad_f[k] / m
    diff = (auto - explicit).abs()
    scale = float(auto.norm())
    return {
        "autograd": auto,
        "explicit": explicit,
        "max_abs_diff": float(diff.max()),
        "rel_diff": float((auto - explicit).norm()) / scale if scale > 0 else float(diff.max()),
    }

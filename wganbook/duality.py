"""Kantorovich duality: optimal potentials, the Kantorovich-Rubinstein potential, the c-transform, the (c, ε)-transform and its checks."""

from __future__ import annotations

import numpy as np
import torch

from wganbook._util import Float, check_value
from wganbook.lipschitz import empirical_lipschitz
from wganbook.transport import (
    NUM_ITER_MAX,
    _as_points_np,
    _emd,
    _euclidean_np,
    _is_torch,
    _np_pair,
    _weight_pair,
    cost_matrix,
)

__all__ = [
    "kantorovich_potentials",
    "kr_potential",
    "c_transform",
    "c_transform_dual",
    "soft_c_transform",
    "soft_c_transform_dual",
    "KantorovichPotential",
    "dual_bounds",
    "ctransform_checks",
]


# ----------------------------------------------------------------------------------------
# duality
# ----------------------------------------------------------------------------------------
def kantorovich_potentials(x, y, a=None, b=None, *, num_iter_max: int = NUM_ITER_MAX):
    r"""Optimal Kantorovich dual potentials of the exact W1 problem.

    Solves the dual linear programme

    .. math::

        \max_{f, g} \sum_i a_i f_i + \sum_j b_j g_j
        \quad \text{s.t.} \quad f_i + g_j \le C_{ij} = \|x_i - y_j\|_2,

    whose value equals the primal optimum :math:`W_1` (strong duality). POT's network
    simplex provides a dual solution :math:`(u, v)`; it is then replaced by the pair of
    c-transforms :math:`g = u^c`, :math:`f = g^c`,

    .. math::

        g_j = \min_i \big(C_{ij} - u_i\big), \qquad f_i = \min_j \big(C_{ij} - g_j\big),

    which is feasible by construction (up to one rounding error), still optimal, and
    *c-concave*: :math:`f` is the restriction to the :math:`x_i` of the 1-Lipschitz
    function :math:`\varphi(z) = \min_j \|z - y_j\| - g_j`
    (see ``kr_potential``).

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor, shape (n, ...)
        First cloud (for a WGAN: the real samples, so ``f`` scores them high).
    y : numpy.ndarray or torch.Tensor, shape (m, ...)
        Second cloud.
    a, b : array-like, optional
        Weights with equal total mass (uniform when omitted).
    num_iter_max : int, optional
        Iteration cap of the network simplex.

    Returns
    -------
    f : numpy.ndarray or torch.Tensor, shape (n,)
        Potential on the first cloud.
    g : numpy.ndarray or torch.Tensor, shape (m,)
        Potential on the second cloud; :math:`f_i + g_j \le C_{ij}`.
    value : float
        The primal optimum :math:`W_1 = \sum_{ij} P^\star_{ij} C_{ij}`; equals
        :math:`\sum_i a_i f_i + \sum_j b_j g_j` up to rounding.

    Notes
    -----
    Float64 throughout; torch inputs are detached and the potentials come back as
    float64 tensors on the device of ``x``.
    """
    xn, yn = _np_pair(x, y)
    aw, bw = _weight_pair(a, b, xn.shape[0], yn.shape[0])
    C = _euclidean_np(xn, yn)
    plan, log = _emd(aw, bw, C, num_iter_max)
    u = np.asarray(log["u"], dtype=np.float64)
    g = (C - u[:, None]).min(axis=0)
    f = (C - g[None, :]).min(axis=1)
    value = float((plan * C).sum())
    if _is_torch(x, y):
        device = next(v for v in (x, y) if isinstance(v, torch.Tensor)).device
        return torch.as_tensor(f, device=device), torch.as_tensor(g, device=device), value
    return f, g, value


def kr_potential(x, y, a=None, b=None, *, num_iter_max: int = NUM_ITER_MAX):
    r"""An optimal 1-Lipschitz Kantorovich-Rubinstein potential on both supports.

    The Kantorovich-Rubinstein theorem states

    .. math::

        W_1(\mu, \nu) = \max_{\mathrm{Lip}(\varphi) \le 1}
        \sum_i a_i \varphi(x_i) - \sum_j b_j \varphi(y_j).

    With :math:`g` from ``kantorovich_potentials``, the function

    .. math::

        \varphi(z) = \min_j \big(\|z - y_j\|_2 - g_j\big)

    is 1-Lipschitz (a minimum of 1-Lipschitz functions), agrees with :math:`f` on the
    :math:`x_i` and satisfies :math:`\varphi(y_j) \le -g_j`, so it attains the maximum.
    It can be evaluated at any points ``z`` as ``c_transform(g, y, z)``.

    Parameters
    ----------
    x, y : numpy.ndarray or torch.Tensor
        The two clouds (rows are samples); ``x`` plays the role of the real data.
    a, b : array-like, optional
        Weights with equal total mass (uniform when omitted).
    num_iter_max : int, optional
        Iteration cap of the network simplex.

    Returns
    -------
    phi_x : numpy.ndarray or torch.Tensor, shape (n,)
        :math:`\varphi(x_i)`.
    phi_y : numpy.ndarray or torch.Tensor, shape (m,)
        :math:`\varphi(y_j)`.
    value : float
        :math:`W_1`, equal to :math:`\sum_i a_i \varphi(x_i) - \sum_j b_j \varphi(y_j)`
        up to rounding.
    """
    f, g, value = kantorovich_potentials(x, y, a, b, num_iter_max=num_iter_max)
    yn = _as_points_np(y, "y")
    g_np = g.cpu().numpy() if isinstance(g, torch.Tensor) else g
    phi_y = (_euclidean_np(yn, yn) - g_np[:, None]).min(axis=0)
    if isinstance(f, torch.Tensor):
        return f, torch.as_tensor(phi_y, device=f.device), value
    return f, phi_y, value


def _potential_vector(f_x, n, like=None):
    if isinstance(f_x, torch.Tensor):
        f = f_x
    else:
        f = np.asarray(f_x, dtype=np.float64)
    if f.ndim == 2 and f.shape[1] == 1:
        f = f.reshape(-1)
    if f.ndim != 1 or f.shape[0] != n:
        raise ValueError(
            f"f_x must have shape (n,) or (n, 1) with n={n} (one value per row of x); got {tuple(f.shape)}"
        )
    return f


def c_transform(f_x, x, y):
    r"""The c-transform of a potential for the Euclidean cost (differentiable).

    .. math::

        f^c(y_j) = \min_i \big( \|x_i - y_j\|_2 - f(x_i) \big).

    By construction :math:`f(x_i) + f^c(y_j) \le \|x_i - y_j\|`, so
    :math:`(f, f^c)` is always dual-feasible; if :math:`f` is 1-Lipschitz then
    :math:`f^c(y) = -f(y)` at every :math:`y` in :math:`\{x_i\}`. The torch version
    propagates (sub)gradients through the minimum, to ``f_x``, ``x`` and ``y``.

    Parameters
    ----------
    f_x : numpy.ndarray or torch.Tensor, shape (n,) or (n, 1)
        Potential values :math:`f(x_i)` (e.g. critic outputs on ``x``).
    x : numpy.ndarray or torch.Tensor, shape (n, ...)
        Points where ``f`` is known.
    y : numpy.ndarray or torch.Tensor, shape (m, ...)
        Points where the transform is evaluated.

    Returns
    -------
    numpy.ndarray or torch.Tensor, shape (m,)
        :math:`f^c(y_j)`; float64 NumPy for NumPy inputs, a tensor when any input is one.
    """
    C, f = _cost_and_potential(f_x, x, y)
    if isinstance(C, torch.Tensor):
        return (C - f[:, None]).min(dim=0).values
    return (C - f[:, None]).min(axis=0)


def _cost_and_potential(f_x, x, y):
    """The Euclidean cost matrix of ``x`` and ``y`` and the potential vector in its dtype and device.

    Torch when any input is a tensor (``x`` converted to ``f_x``'s device and dtype when only ``f_x``
    is one), else float64 NumPy with finite values checked.
    """
    if _is_torch(f_x, x, y):
        if not _is_torch(x, y):
            dtype = f_x.dtype if torch.is_floating_point(f_x) else torch.get_default_dtype()
            x = torch.as_tensor(np.asarray(x, dtype=np.float64), device=f_x.device, dtype=dtype)
        C = cost_matrix(x, y)
        f = _potential_vector(f_x, C.shape[0])
        f = torch.as_tensor(f, device=C.device) if not isinstance(f, torch.Tensor) else f
        return C, f.to(device=C.device, dtype=C.dtype)
    C = cost_matrix(x, y)
    f = _potential_vector(f_x, C.shape[0])
    if not np.isfinite(f).all():
        raise ValueError("f_x contains NaN or infinite values")
    return C, f


def c_transform_dual(f_x, x, y, a=None, b=None):
    r"""The c-transform dual value of a potential: a lower bound on W1 (differentiable).

    .. math::

        D(f) = \sum_i a_i f(x_i) + \sum_j b_j f^c(y_j)
             \;\overset{\text{uniform}}{=}\; \frac1n \sum_i f(x_i) + \frac1m \sum_j f^c(y_j),

    the objective of the c-transform WGAN critic (the (q,p)-WGAN of Mallasto, Frellsen, Boomsma
    & Feragen 2019). Weak duality gives
    :math:`D(f) \le W_1` for every :math:`f`, with equality for an optimal Kantorovich
    potential (e.g. ``f`` from ``kantorovich_potentials``).

    Parameters
    ----------
    f_x : numpy.ndarray or torch.Tensor, shape (n,) or (n, 1)
        Potential values on ``x``.
    x : numpy.ndarray or torch.Tensor, shape (n, ...)
        First cloud (the real samples in a WGAN).
    y : numpy.ndarray or torch.Tensor, shape (m, ...)
        Second cloud.
    a, b : array-like, optional
        Weights with equal total mass (uniform when omitted; constants).

    Returns
    -------
    float or torch.Tensor
        A float for NumPy inputs, a 0-dim tensor otherwise.
    """
    fc = c_transform(f_x, x, y)
    n, m = len(x), fc.shape[0]
    aw, bw = _weight_pair(a, b, n, m)
    f = _potential_vector(f_x, n)
    if isinstance(fc, torch.Tensor):
        f = f if isinstance(f, torch.Tensor) else torch.as_tensor(f)
        f = f.to(device=fc.device, dtype=fc.dtype)
        at = torch.as_tensor(aw, dtype=fc.dtype, device=fc.device)
        bt = torch.as_tensor(bw, dtype=fc.dtype, device=fc.device)
        return (at * f).sum() + (bt * fc).sum()
    return float(aw @ f + bw @ fc)


def soft_c_transform(f_x, x, y, eps: float):
    r"""The entropic :math:`(c, \varepsilon)`-transform of a potential, Euclidean cost (differentiable).

    .. math::

        f^{c,\varepsilon}(y_j) = -\varepsilon \log \Big( \frac1n \sum_i
        \exp\big( (f(x_i) - \lVert x_i - y_j\rVert_2) / \varepsilon \big) \Big),

    the soft minimum of :math:`\lVert x_i - y_j\rVert - f(x_i)` over the points :math:`x_i`
    (Mallasto, Montúfar & Gerolin 2019's :math:`(c, \varepsilon)`-transform; computed with a
    log-sum-exp). It lies between the hard c-transform and that plus :math:`\varepsilon \log n`:

    .. math::

        f^c(y_j) \le f^{c,\varepsilon}(y_j) \le f^c(y_j) + \varepsilon \log n,

    so it tends to :func:`c_transform` as :math:`\varepsilon \to 0`, and with one point
    (:math:`n = 1`) it equals it exactly.

    Parameters
    ----------
    f_x : numpy.ndarray or torch.Tensor, shape (n,) or (n, 1)
        Potential values :math:`f(x_i)`.
    x : numpy.ndarray or torch.Tensor, shape (n, ...)
    y : numpy.ndarray or torch.Tensor, shape (m, ...)
    eps : float
        :math:`\varepsilon > 0`, in units of the cost.

    Returns
    -------
    numpy.ndarray or torch.Tensor, shape (m,)
        Float64 NumPy for NumPy inputs, a tensor when any input is one.
    """
    eps = check_value("eps", eps, Float(lo=0.0, lo_open=True))
    C, f = _cost_and_potential(f_x, x, y)
    z = (f[:, None] - C) / eps
    if isinstance(z, torch.Tensor):
        return -eps * (torch.logsumexp(z, dim=0) - float(np.log(C.shape[0])))
    zmax = z.max(axis=0)
    return -eps * (zmax + np.log(np.exp(z - zmax).mean(axis=0)))


def soft_c_transform_dual(f_x, x, y, eps: float):
    r"""The :math:`(c, \varepsilon)`-transform dual value: :math:`\frac1n \sum_i f(x_i) + \frac1m \sum_j f^{c,\varepsilon}(y_j)`.

    The objective and the estimate of the :math:`(c, \varepsilon)`-transform critic (uniform
    weights). Unlike :func:`c_transform_dual` it is **not** a lower bound on :math:`W_1`: by the
    bounds of :func:`soft_c_transform` it lies between the hard dual value and that plus
    :math:`\varepsilon \log n`, so it can exceed :math:`W_1` by up to :math:`\varepsilon \log n`.

    Parameters
    ----------
    f_x, x, y, eps
        As in :func:`soft_c_transform`.

    Returns
    -------
    float or torch.Tensor
        A float for NumPy inputs, a 0-dim tensor otherwise.
    """
    fc = soft_c_transform(f_x, x, y, eps)
    f = _potential_vector(f_x, len(x))
    if isinstance(fc, torch.Tensor):
        f = f if isinstance(f, torch.Tensor) else torch.as_tensor(f)
        return f.to(device=fc.device, dtype=fc.dtype).mean() + fc.mean()
    return float(f.mean() + fc.mean())


# ----------------------------------------------------------------------------------------
# critics against the exact dual
# ----------------------------------------------------------------------------------------
class KantorovichPotential(torch.nn.Module):
    r"""The c-transform :math:`\varphi(z) = \min_j (\|z - y_j\|_2 - g_j)` as a critic module.

    With ``g`` the optimal potential of the fake points (``kantorovich_potentials(x, y)[1]``),
    :math:`\varphi` is an optimal 1-Lipschitz Kantorovich-Rubinstein critic everywhere in space
    (scores real samples high), usable wherever a critic is (``plotting.value_surface``,
    ``lipschitz.empirical_lipschitz``).

    Parameters
    ----------
    g : array-like, shape (m,)
        Potential values :math:`g_j` on the points ``y``.
    y : array-like, shape (m, d)
        The points.
    """

    def __init__(self, g, y):
        super().__init__()
        y_t = (
            torch.as_tensor(np.asarray(y, dtype=np.float64)) if not isinstance(y, torch.Tensor) else y.detach().double()
        )
        g_t = (
            torch.as_tensor(np.asarray(g, dtype=np.float64)) if not isinstance(g, torch.Tensor) else g.detach().double()
        )
        g_t = _potential_vector(g_t.reshape(-1), y_t.shape[0])
        if not bool(torch.isfinite(g_t).all()):
            raise ValueError("g contains NaN or infinite values")
        self.register_buffer("g", g_t)
        self.register_buffer("y", y_t.reshape(y_t.shape[0], -1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\varphi(z_k)` of shape ``(n,)`` in ``z``'s dtype."""
        out = c_transform(self.g, self.y, z.reshape(z.shape[0], -1).to(self.y.dtype))
        return out.to(z.dtype)


def dual_bounds(critic, x, y):
    r"""A critic's value on two clouds, and the two certified lower bounds made from it.

    With :math:`\hat L` = ``lipschitz.empirical_lipschitz(critic, z)`` the largest slope of
    :math:`f` between any two of the points :math:`z = \{x_i\} \cup \{y_j\}`:

    .. math::

        \text{plain} = \bar f(x) - \bar f(y), \qquad
        \text{rescaled} = \text{plain} / \hat L \ \le W_1, \qquad
        \text{ctransform} = D(f) = \bar f(x) + \overline{f^c}(y) \ \le W_1 .

    Only the values on the points matter for distributions on those points, so
    :math:`f / \hat L` is 1-Lipschitz there and the rescaled value is a lower bound; the
    c-transform value is one for every :math:`f` (weak duality). The plain value is not.

    Parameters
    ----------
    critic : torch.nn.Module
        Maps ``(k, d)`` to ``(k,)`` scores.
    x, y : array-like or torch.Tensor, shape (n, d) and (m, d)
        Real and fake points.

    Returns
    -------
    dict
        Floats ``"plain"``, ``"lipschitz"``, ``"rescaled"``, ``"ctransform"``.
    """

    xt, yt = _points_tensor(x, "x"), _points_tensor(y, "y")
    if xt.shape[1:] != yt.shape[1:]:
        raise ValueError(f"x and y must have the same point dimension; got {tuple(xt.shape)} and {tuple(yt.shape)}")
    first = next(iter(list(critic.parameters()) + list(critic.buffers())), None)
    dtype, dev = (first.dtype, first.device) if first is not None else (torch.float32, "cpu")
    z = torch.cat([xt, yt]).to(device=dev, dtype=dtype)
    with torch.no_grad():
        fz = critic(z).double().cpu().numpy().reshape(-1)
    n = xt.shape[0]
    lip = empirical_lipschitz(critic, z)
    plain = float(fz[:n].mean() - fz[n:].mean())
    return {
        "plain": plain,
        "lipschitz": lip,
        "rescaled": plain / lip if lip > 0 else 0.0,
        "ctransform": c_transform_dual(fz[:n], xt.numpy(), yt.numpy()),
    }


def ctransform_checks(critic, x, y):
    r"""How the c-transform acts on a critic made 1-Lipschitz on the two clouds.

    The critic's values :math:`f` on :math:`z = \{x_i\} \cup \{y_j\}` are divided by its
    largest slope :math:`\hat L` on ``z`` (``lipschitz.empirical_lipschitz``), so :math:`f` is
    1-Lipschitz on ``z``, and then

    .. math::

        \text{equal\_gap} = \max_j \bigl|f^{c}_{z}(y_j) + f(y_j)\bigr| \ (= 0), \qquad
        \text{order\_gap} = \min_j \bigl(f^{c}_{x}(y_j) + f(y_j)\bigr) \ (\ge 0),

    where :math:`f^c_z` takes the minimum over all of ``z`` and :math:`f^c_x` over the real
    points only; ``plain`` :math:`\le` ``ctransform`` :math:`\le W_1` follow.

    Parameters
    ----------
    critic : torch.nn.Module
        Maps ``(k, d)`` to ``(k,)`` scores; not constant on the points.
    x, y : array-like or torch.Tensor, shape (n, d) and (m, d)
        Real and fake points.

    Returns
    -------
    dict
        Floats ``"equal_gap"``, ``"order_gap"``, ``"plain"``, ``"ctransform"`` (all for the
        normalised ``f``) and ``"lipschitz"`` (:math:`\hat L` before normalising).
    """

    xt, yt = _points_tensor(x, "x"), _points_tensor(y, "y")
    n = xt.shape[0]
    first = next(iter(list(critic.parameters()) + list(critic.buffers())), None)
    dtype, dev = (first.dtype, first.device) if first is not None else (torch.float32, "cpu")
    z = torch.cat([xt, yt]).to(device=dev, dtype=dtype)
    lip = empirical_lipschitz(critic, z)
    if not lip > 0:
        raise ValueError("the critic must not be constant on the points")
    with torch.no_grad():
        f = critic(z).double().cpu().numpy().reshape(-1) / lip
    za, ya, xa = z.double().cpu().numpy(), yt.numpy(), xt.numpy()
    fc_all = c_transform(f, za, ya)
    fc_real = c_transform(f[:n], xa, ya)
    return {
        "equal_gap": float(np.abs(fc_all + f[n:]).max()),
        "order_gap": float((fc_real + f[n:]).min()),
        "plain": float(f[:n].mean() - f[n:].mean()),
        "ctransform": float(f[:n].mean() + fc_real.mean()),
        "lipschitz": lip,
    }


def _points_tensor(x, name):
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu().double()
    else:
        t = torch.as_tensor(_as_points_np(x, name))
    return t.reshape(t.shape[0], -1) if t.ndim > 1 else t.reshape(-1, 1)

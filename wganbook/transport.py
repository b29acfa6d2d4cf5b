r"""Exact optimal transport, closed forms, the c-transform and classical divergences.

Everything here uses the **Euclidean** ground cost :math:`c(x, y) = \|x - y\|_2`
between flattened samples (never the squared cost), so the optimal transport cost
is the Wasserstein-1 distance

.. math::

    W_1(\mu, \nu) = \min_{P \in \Pi(a, b)} \sum_{i, j} P_{ij} \|x_i - y_j\|_2,
    \qquad
    \Pi(a, b) = \{P \ge 0 : P \mathbf{1} = a,\ P^\top \mathbf{1} = b\},

between the discrete measures :math:`\mu = \sum_i a_i \delta_{x_i}` and
:math:`\nu = \sum_j b_j \delta_{y_j}`. The linear programme is solved exactly with
POT's network simplex (``ot.emd``) in float64.

**Conventions.**

* Rows are samples; trailing dimensions are flattened, so a batch of images
  ``(N, C, H, W)`` is a cloud of ``N`` points in :math:`\mathbb{R}^{CHW}`.
  A one-dimensional array holds ``N`` scalar samples.
* NumPy in, NumPy (or a Python float) out; torch in, torch out. Functions marked
  *differentiable* propagate gradients to the sample positions.
* When the first cloud holds real samples and the second fake ones, the potential
  ``f`` returned by ``kantorovich_potentials`` (and the critic of a WGAN) scores
  real samples high: :math:`W_1 = \sum_i a_i f_i - \sum_j b_j \varphi(y_j)`.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import torch

from wganbook._util import Float, Int, check_value

__all__ = [
    "cost_matrix",
    "transport_plan",
    "w1",
    "w1_1d",
    "parallel_lines",
    "uniform_shift",
    "gaussian_shift",
    "parallel_lines_excess",
    "histogram_divergences",
    "parallel_lines_sample_w1",
]

#: Default iteration cap of the network simplex (POT's own default is 1e5).
NUM_ITER_MAX = 1_000_000

# Entries whose squared distance is below this fraction of ||x||^2 + ||y||^2 lose
# too many digits in the Gram-matrix formula and are recomputed as ||x - y||^2.
_CANCELLATION = 1e-6
_CHUNK = 1 << 22  # elements per block when recomputing distances directly


# ----------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------
def _is_torch(*values) -> bool:
    return any(isinstance(v, torch.Tensor) for v in values)


def _as_points_np(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numpy array or torch tensor of numbers") from err
    return _check_points(arr, name)


def _check_points(arr, name: str):
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (rows are samples); got a scalar")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sample; got shape {tuple(arr.shape)}")
    arr = arr.reshape(arr.shape[0], -1)
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has zero features per sample; got shape {tuple(arr.shape)}")
    finite = np.isfinite(arr).all() if isinstance(arr, np.ndarray) else bool(torch.isfinite(arr).all())
    if not finite:
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _as_points_torch(x, name: str, like: torch.Tensor | None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a numpy array or torch tensor of numbers") from err
        if like is not None:
            x = x.to(device=like.device, dtype=like.dtype)
    elif not torch.is_floating_point(x):
        x = x.to(torch.get_default_dtype() if like is None else like.dtype)
    return _check_points(x, name)


def _torch_pair(x, y):
    """Both clouds as flattened torch tensors on one device with a common float dtype."""
    like = next(v for v in (x, y) if isinstance(v, torch.Tensor))
    if not torch.is_floating_point(like):
        like = like.to(torch.get_default_dtype())
    xt = _as_points_torch(x, "x", like)
    yt = _as_points_torch(y, "y", like)
    dtype = torch.promote_types(xt.dtype, yt.dtype)
    xt, yt = xt.to(dtype), yt.to(device=xt.device, dtype=dtype)
    if xt.shape[1] != yt.shape[1]:
        raise ValueError(
            f"x and y must have the same number of features per sample; got {xt.shape[1]} and {yt.shape[1]}"
        )
    return xt, yt


def _np_pair(x, y):
    xn, yn = _as_points_np(x, "x"), _as_points_np(y, "y")
    if xn.shape[1] != yn.shape[1]:
        raise ValueError(
            f"x and y must have the same number of features per sample; got {xn.shape[1]} and {yn.shape[1]}"
        )
    return xn, yn


def _weights(w, n: int, name: str) -> np.ndarray:
    """Validated float64 weights (uniform 1/n when ``w`` is None)."""
    if w is None:
        return np.full(n, 1.0 / n)
    if isinstance(w, torch.Tensor):
        w = w.detach().cpu().numpy()
    try:
        w = np.asarray(w, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a 1-D array of non-negative weights") from err
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array of length {n} (one weight per sample); got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError(f"{name} contains NaN or infinite weights")
    if (w < 0).any():
        raise ValueError(f"{name} must be non-negative; got min {w.min():.3g}")
    if w.sum() <= 0:
        raise ValueError(f"{name} must have positive total mass; got all zeros")
    return w


def _weight_pair(a, b, n: int, m: int):
    a, b = _weights(a, n, "a"), _weights(b, m, "b")
    sa, sb = a.sum(), b.sum()
    if not math.isclose(sa, sb, rel_tol=1e-6, abs_tol=0.0):
        raise ValueError(
            f"a and b must have the same total mass; got sum(a)={sa:.9g} and sum(b)={sb:.9g} "
            "(normalise both to 1 for probability measures)"
        )
    return a, b * (sa / sb)


# ----------------------------------------------------------------------------------------
# cost matrix
# ----------------------------------------------------------------------------------------
def _euclidean_np(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Float64 Euclidean distances: Gram-matrix formula, cancelling entries recomputed."""
    xx = np.einsum("ij,ij->i", x, x)
    yy = np.einsum("ij,ij->i", y, y)
    d2 = xx[:, None] + yy[None, :] - 2.0 * (x @ y.T)
    np.maximum(d2, 0.0, out=d2)
    rows, cols = np.nonzero(d2 <= _CANCELLATION * (xx[:, None] + yy[None, :]))
    step = max(1, _CHUNK // x.shape[1])
    for s in range(0, rows.size, step):
        r, c = rows[s : s + step], cols[s : s + step]
        diff = x[r] - y[c]
        d2[r, c] = np.einsum("ij,ij->i", diff, diff)
    return np.sqrt(d2)


def cost_matrix(x, y):
    r"""Pairwise Euclidean distances between the rows of two sample clouds.

    .. math::

        C_{ij} = \|x_i - y_j\|_2 = \Big(\sum_k (x_{ik} - y_{jk})^2\Big)^{1/2}

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor, shape (n, ...)
        First cloud; trailing dimensions are flattened.
    y : numpy.ndarray or torch.Tensor, shape (m, ...)
        Second cloud with the same number of features per sample.

    Returns
    -------
    numpy.ndarray or torch.Tensor, shape (n, m)
        For NumPy inputs a float64 array: computed with the Gram-matrix formula
        :math:`\|x\|^2 + \|y\|^2 - 2\langle x, y\rangle`, where entries that lose
        digits to cancellation are recomputed directly, so identical points are at
        distance exactly 0. For torch inputs a tensor in the common floating dtype,
        differentiable with respect to both clouds, computed directly (no Gram
        matrix, cost :math:`O(nmd)`); the gradient at a zero distance is 0, never
        NaN.

    Examples
    --------
    >>> import numpy as np
    >>> cost_matrix(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0], [0.0, 0.0]]))
    array([[5., 0.]])
    """
    if _is_torch(x, y):
        xt, yt = _torch_pair(x, y)
        return torch.cdist(xt, yt, p=2.0, compute_mode="donot_use_mm_for_euclid_dist")
    xn, yn = _np_pair(x, y)
    return _euclidean_np(xn, yn)


# ----------------------------------------------------------------------------------------
# exact W1
# ----------------------------------------------------------------------------------------
def _emd(a, b, C, num_iter_max: int):
    """Exact plan and network-simplex log; raises unless the solver reports optimality."""
    import ot

    check_value("num_iter_max", num_iter_max, Int(lo=1))
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="(numItermax reached|Problem infeasible|Problem unbounded)", category=UserWarning
        )
        plan, log = ot.emd(a, b, C, numItermax=int(num_iter_max), log=True)
    if log["result_code"] != 1:
        reason = {
            0: "the problem is infeasible",
            2: "the problem is unbounded",
            3: f"num_iter_max={num_iter_max} was reached before optimality (increase num_iter_max)",
        }
        raise RuntimeError(
            "exact optimal transport failed: " + reason.get(log["result_code"], f"code {log['result_code']}")
        )
    return plan, log


def _support_value(plan: np.ndarray, xt: torch.Tensor, yt: torch.Tensor) -> torch.Tensor:
    r"""Differentiable :math:`\sum_{ij} P_{ij}\|x_i - y_j\|` over the support of ``plan``."""
    rows, cols = np.nonzero(plan)
    weights = torch.as_tensor(plan[rows, cols], dtype=xt.dtype, device=xt.device)
    ri = torch.as_tensor(rows, device=xt.device)
    ci = torch.as_tensor(cols, device=xt.device)
    diff = xt.index_select(0, ri) - yt.index_select(0, ci)
    sq = (diff * diff).sum(dim=1)
    # sqrt(clamp(.)) has gradient 0 (not NaN) at coincident points: a zero-cost pair
    # contributes a sub-gradient of 0, which is a valid choice.
    dist = torch.sqrt(torch.clamp(sq, min=torch.finfo(xt.dtype).tiny))
    dist = torch.where(sq > 0, dist, torch.zeros_like(dist))
    return (weights * dist).sum()


def transport_plan(x, y, a=None, b=None, *, num_iter_max: int = NUM_ITER_MAX):
    r"""An optimal transport plan for the Euclidean cost, and its cost.

    Solves exactly (network simplex, float64)

    .. math::

        P^\star \in \operatorname*{arg\,min}_{P \ge 0,\ P\mathbf{1} = a,\ P^\top\mathbf{1} = b}
        \sum_{i,j} P_{ij} \|x_i - y_j\|_2 .

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor, shape (n, ...)
        First cloud (rows are samples); torch tensors are detached.
    y : numpy.ndarray or torch.Tensor, shape (m, ...)
        Second cloud.
    a, b : array-like, shape (n,) and (m,), optional
        Non-negative weights with equal total mass; uniform :math:`1/n`, :math:`1/m`
        when omitted.
    num_iter_max : int, optional
        Iteration cap of the network simplex; a ``RuntimeError`` is raised if it is
        reached before optimality.

    Returns
    -------
    plan : numpy.ndarray, shape (n, m)
        The optimal coupling (float64). With ``n == m`` and uniform weights it is a
        permutation matrix divided by ``n``.
    cost : float
        :math:`\sum_{ij} P^\star_{ij} C_{ij}`, that is :math:`W_1`.
    """
    xn, yn = _np_pair(x, y)
    a, b = _weight_pair(a, b, xn.shape[0], yn.shape[0])
    C = _euclidean_np(xn, yn)
    plan, _ = _emd(a, b, C, num_iter_max)
    return plan, float((plan * C).sum())


def w1(x, y, a=None, b=None, *, num_iter_max: int = NUM_ITER_MAX):
    r"""Exact Wasserstein-1 distance between two weighted point clouds (differentiable).

    .. math::

        W_1\Big(\sum_i a_i \delta_{x_i}, \sum_j b_j \delta_{y_j}\Big)
        = \min_{P \ge 0,\ P\mathbf{1} = a,\ P^\top\mathbf{1} = b}
          \sum_{i,j} P_{ij} \|x_i - y_j\|_2 .

    The plan :math:`P^\star` is computed exactly with ``ot.emd`` on float64 copies.
    For torch inputs the returned value is :math:`\sum_{ij} P^\star_{ij}\|x_i - y_j\|`
    recomputed from the tensors, so by the envelope (Danskin) theorem its gradient is
    that of :math:`W_1` wherever the optimal plan is unique:

    .. math::

        \nabla_{y_j} W_1 = \sum_i P^\star_{ij} \frac{y_j - x_i}{\|y_j - x_i\|_2}.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor, shape (n, ...)
        First cloud; rows are samples, trailing dimensions are flattened (a 1-D array
        holds ``n`` scalars).
    y : numpy.ndarray or torch.Tensor, shape (m, ...)
        Second cloud; ``m`` may differ from ``n`` but the number of features must match.
    a, b : array-like, shape (n,) and (m,), optional
        Non-negative weights with the same total mass (uniform when omitted). They are
        treated as constants (no gradient flows to them).
    num_iter_max : int, optional
        Iteration cap of the network simplex (default ``1_000_000``; enough for
        ``n = m = 1024``). Reaching it raises ``RuntimeError``.

    Returns
    -------
    float or torch.Tensor
        A Python float for NumPy inputs; a 0-dim tensor (dtype of the inputs,
        differentiable with respect to ``x`` and ``y``) when either input is a tensor.

    Examples
    --------
    >>> import numpy as np
    >>> round(w1(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[0.0, 3.0], [1.0, 3.0]])), 6)
    3.0
    """
    if _is_torch(x, y):
        xt, yt = _torch_pair(x, y)
        xn = xt.detach().cpu().to(torch.float64).numpy()
        yn = yt.detach().cpu().to(torch.float64).numpy()
        aw, bw = _weight_pair(a, b, xn.shape[0], yn.shape[0])
        plan, _ = _emd(aw, bw, _euclidean_np(xn, yn), num_iter_max)
        return _support_value(plan, xt, yt)
    _, cost = transport_plan(x, y, a, b, num_iter_max=num_iter_max)
    return cost


# ----------------------------------------------------------------------------------------
# one dimension
# ----------------------------------------------------------------------------------------
def _as_1d(u, name):
    if isinstance(u, torch.Tensor):
        t = u if torch.is_floating_point(u) else u.to(torch.get_default_dtype())
        t = t.reshape(-1)
        if t.numel() == 0:
            raise ValueError(f"{name} must hold at least one sample")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
        return t
    arr = np.asarray(u, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} must hold at least one sample")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def w1_1d(u, v, u_weights=None, v_weights=None):
    r"""Closed-form Wasserstein-1 distance between two samples on the real line.

    In one dimension the optimal plan is the monotone (sorted) coupling and

    .. math::

        W_1(\mu, \nu) = \int_0^1 \big|F_\mu^{-1}(t) - F_\nu^{-1}(t)\big|\,dt
                      = \int_{\mathbb{R}} |F_\mu(s) - F_\nu(s)|\,ds,

    where :math:`F^{-1}` are the quantile functions. For equal sizes and uniform
    weights this is :math:`\frac{1}{n}\sum_k |u_{(k)} - v_{(k)}|` (sorted samples).
    In general the quantile functions are piecewise constant on the merged grid of
    cumulative weights :math:`0 = t_0 < t_1 < \dots < t_K = 1` and
    :math:`W_1 = \sum_k (t_k - t_{k-1}) |u_{(i_k)} - v_{(j_k)}|`.

    Parameters
    ----------
    u, v : array-like or torch.Tensor
        Scalar samples (flattened); sizes may differ.
    u_weights, v_weights : array-like, optional
        Non-negative weights, **normalised** to probabilities (as in
        ``scipy.stats.wasserstein_distance``); uniform when omitted.

    Returns
    -------
    float or torch.Tensor
        A float for array inputs; for tensor inputs a 0-dim tensor differentiable
        with respect to the sample values.
    """
    use_torch = _is_torch(u, v)
    un, vn = _as_1d(u, "u"), _as_1d(v, "v")
    wu = _weights(u_weights, un.shape[0], "u_weights")
    wv = _weights(v_weights, vn.shape[0], "v_weights")
    wu, wv = wu / wu.sum(), wv / wv.sum()
    u_np = un.detach().cpu().double().numpy() if isinstance(un, torch.Tensor) else un
    v_np = vn.detach().cpu().double().numpy() if isinstance(vn, torch.Tensor) else vn
    iu, iv = np.argsort(u_np, kind="stable"), np.argsort(v_np, kind="stable")
    cu, cv = np.cumsum(wu[iu]), np.cumsum(wv[iv])
    cu[-1] = cv[-1] = 1.0
    t = np.union1d(np.concatenate([[0.0], cu]), cv)
    t = t[t <= 1.0]
    mids = 0.5 * (t[1:] + t[:-1])
    lengths = np.diff(t)
    # quantile F^{-1}(s) = u_(k) with k the first index whose cumulative weight >= s
    ku = np.minimum(np.searchsorted(cu, mids, side="left"), cu.size - 1)
    kv = np.minimum(np.searchsorted(cv, mids, side="left"), cv.size - 1)
    if not use_torch:
        return float(np.sum(lengths * np.abs(u_np[iu[ku]] - v_np[iv[kv]])))
    ref = un if isinstance(un, torch.Tensor) else vn
    ut = un if isinstance(un, torch.Tensor) else torch.as_tensor(un, dtype=ref.dtype, device=ref.device)
    vt = vn if isinstance(vn, torch.Tensor) else torch.as_tensor(vn, dtype=ref.dtype, device=ref.device)
    dtype = torch.promote_types(ut.dtype, vt.dtype)
    ut, vt = ut.to(dtype), vt.to(device=ut.device, dtype=dtype)
    qu = ut[torch.as_tensor(iu[ku], device=ut.device)]
    qv = vt[torch.as_tensor(iv[kv], device=ut.device)]
    return (torch.as_tensor(lengths, dtype=dtype, device=ut.device) * (qu - qv).abs()).sum()


# ----------------------------------------------------------------------------------------
# closed forms and divergences
# ----------------------------------------------------------------------------------------
def parallel_lines(theta):
    r"""Closed-form distances of WGAN's Example 1 (learning parallel lines).

    With :math:`Z \sim U[0, 1]`, :math:`P_0` the law of :math:`(0, Z)` and
    :math:`P_\theta` the law of :math:`(\theta, Z)` in :math:`\mathbb{R}^2`
    (Arjovsky, Chintala and Bottou, 2017):

    .. math::

        W_1(P_0, P_\theta) = |\theta|, \qquad
        JS(P_0, P_\theta) = \begin{cases} \log 2 & \theta \ne 0 \\ 0 & \theta = 0 \end{cases},

    .. math::

        KL(P_\theta \| P_0) = KL(P_0 \| P_\theta) =
        \begin{cases} +\infty & \theta \ne 0 \\ 0 & \theta = 0 \end{cases}, \qquad
        \delta(P_0, P_\theta) = \begin{cases} 1 & \theta \ne 0 \\ 0 & \theta = 0 \end{cases}.

    Only :math:`W_1` is continuous in :math:`\theta`, and only it gives a usable
    gradient. JS uses the natural logarithm (maximum :math:`\log 2`); ``tv`` is the
    total variation :math:`\delta`.

    Parameters
    ----------
    theta : float or array-like
        Horizontal offset(s) of the moving line.

    Returns
    -------
    dict
        Keys ``"w1"``, ``"js"``, ``"kl"``, ``"tv"``: floats for a scalar ``theta``,
        float64 arrays of the shape of ``theta`` otherwise.
    """
    if isinstance(theta, torch.Tensor):
        theta = theta.detach().cpu().numpy()
    if isinstance(theta, bool):
        raise TypeError("theta must be a real number or an array of real numbers; got a bool")
    try:
        th = np.asarray(theta, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"theta must be a real number or an array of real numbers; got {theta!r}") from err
    if not np.isfinite(th).all():
        raise ValueError("theta must be finite")
    moved = th != 0
    out = {
        "w1": np.abs(th),
        "js": np.where(moved, math.log(2.0), 0.0),
        "kl": np.where(moved, np.inf, 0.0),
        "tv": np.where(moved, 1.0, 0.0),
    }
    if th.ndim == 0:
        return {k: float(v) for k, v in out.items()}
    return out


def uniform_shift(t):
    r"""Closed-form distances between :math:`U[0, 1]` and its shift :math:`U[t, 1 + t]`.

    For :math:`|t| < 1` the two densities overlap on an interval of length :math:`1 - |t|`:

    .. math::

        W_1 = |t|, \qquad \delta = |t|, \qquad JS = |t| \log 2, \qquad
        KL(P \| P_t) = KL(P_t \| P) = +\infty \ (t \ne 0),

    and for :math:`|t| \ge 1` the supports are disjoint (:math:`\delta = 1`,
    :math:`JS = \log 2`, :math:`W_1 = |t|`). As :math:`t \to 0` the shifts converge to
    :math:`P` in :math:`W_1`, TV and JS, but not in KL: a sequence that separates KL from the
    weaker three (WGAN's Theorem 2). JS has the factor :math:`\tfrac12` of
    :func:`histogram_divergences`. Derivation: the mixture has density 1/2 on the two
    non-overlapping pieces, each of length :math:`|t|`, so each KL term of JS is
    :math:`|t| \log 2`.

    Parameters
    ----------
    t : float or array-like
        The shift(s).

    Returns
    -------
    dict
        ``"w1"``, ``"tv"``, ``"js"``, ``"kl"``: floats for a scalar ``t``, arrays otherwise.
    """
    th = _real_array(t, "t")
    a = np.abs(th)
    out = {
        "w1": a,
        "tv": np.minimum(a, 1.0),
        "js": np.minimum(a, 1.0) * math.log(2.0),
        "kl": np.where(a > 0, np.inf, 0.0),
    }
    return _scalar_dict(out, th)


def gaussian_shift(mu, sigma=1.0):
    r"""Distances between :math:`N(0, \sigma^2)` and :math:`N(\mu, \sigma^2)` (one dimension).

    With :math:`a = |\mu| / \sigma` and :math:`\Phi` the standard normal CDF,

    .. math::

        W_1 = |\mu|, \qquad \delta = 2 \Phi(a / 2) - 1, \qquad
        KL = \frac{a^2}{2} \ \text{(both directions)},

    .. math::

        JS = \log 2 - \mathbb{E}_{\varepsilon \sim N(0, 1)}
             \log\bigl(1 + e^{a \varepsilon - a^2 / 2}\bigr)

    (the two KL terms of JS are equal by symmetry; the expectation is computed by quadrature;
    :math:`JS \approx a^2 / 8 = KL / 4` for small :math:`a`). All four tend to 0 as
    :math:`\mu \to 0`: a sequence that converges in every one of them.

    Parameters
    ----------
    mu : float or array-like
        The shift(s) of the mean.
    sigma : float, optional
        The common standard deviation (positive).

    Returns
    -------
    dict
        ``"w1"``, ``"tv"``, ``"js"``, ``"kl"``: floats for a scalar ``mu``, arrays otherwise.
    """
    from scipy.special import log_expit, ndtr

    m = _real_array(mu, "mu")
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not sigma > 0 or not math.isfinite(sigma):
        raise ValueError(f"sigma must be a positive finite number; got {sigma!r}")
    a = np.abs(m) / float(sigma)
    eps, w = np.polynomial.legendre.leggauss(400)
    eps, w = 12.0 * eps, 12.0 * w  # Gauss-Legendre on [-12, 12]
    pdf = np.exp(-0.5 * eps**2) / math.sqrt(2 * math.pi)
    arg = a.reshape(-1, 1) * eps[None, :] - 0.5 * a.reshape(-1, 1) ** 2
    softplus = -log_expit(-arg)  # log(1 + e^arg), stable
    js = math.log(2.0) - (softplus * (w * pdf)[None, :]).sum(axis=1)
    out = {
        "w1": np.abs(m),
        "tv": 2.0 * ndtr(a / 2.0) - 1.0,
        "js": np.clip(js.reshape(a.shape), 0.0, math.log(2.0)),
        "kl": 0.5 * a**2,
    }
    return _scalar_dict(out, m)


def parallel_lines_excess(theta, n):
    r"""Expected excess :math:`\mathbb{E}\,\widehat W_1 - |\theta|` of the sample W1 of Example 1.

    :math:`\widehat W_1` is the exact W1 between :math:`n` points of :math:`P_0` and :math:`n`
    independent points of :math:`P_\theta`. It matches the two samples in sorted order of
    :math:`z`, so :math:`\widehat W_1 = \frac1n \sum_i \sqrt{\theta^2 + (z_{(i)} - z'_{(i)})^2}`.
    In the normal approximation of uniform order statistics,
    :math:`z_{(i)} - z'_{(i)} \approx N(0, 2u(1-u)/n)` at :math:`u = i/n`, so

    .. math::

        \mathbb{E}\,\widehat W_1 - |\theta| \approx \int_0^1 \mathbb{E}_{G \sim N(0,1)}
        \Bigl[\sqrt{\theta^2 + \tfrac{2u(1-u)}{n} G^2} - |\theta|\Bigr] \, du ,

    computed here by quadrature. Its two regimes:

    .. math::

        \theta = 0:\ \frac{\sqrt{\pi}}{4 \sqrt n}, \qquad
        |\theta| \sqrt n \gg 1:\ \frac{\mathbb{E}(z - z')^2}{2 |\theta|} = \frac{1}{6 n |\theta|} .

    Parameters
    ----------
    theta : float or array-like
        Offset(s) of the moving line.
    n : int
        Points per sample (positive).

    Returns
    -------
    float or numpy.ndarray
        The expected excess (a float for a scalar ``theta``).
    """
    th = _real_array(theta, "theta")
    check_value("n", n, Int(lo=1))
    # u = sin^2(phi) makes sqrt(u (1 - u)) = sin(phi) cos(phi) smooth; du = sin(2 phi) dphi
    p, wp = np.polynomial.legendre.leggauss(200)
    phi, wphi = (p + 1) * math.pi / 4, wp * math.pi / 4
    s = np.sqrt(2.0 / n) * np.sin(phi) * np.cos(phi)  # sd of z_(i) - z'_(i)
    du = np.sin(2 * phi) * wphi
    g, wg = np.polynomial.legendre.leggauss(200)  # |G| on [0, 10]: no kink at 0
    g, wg = 5.0 * (g + 1), 5.0 * wg
    half = 2.0 * np.exp(-0.5 * g**2) / math.sqrt(2 * math.pi) * wg
    a = np.abs(th).reshape(-1, 1, 1)
    d2 = (s[:, None] * g[None, :]) ** 2
    # sqrt(a^2 + d^2) - a = d^2 / (sqrt(a^2 + d^2) + a): no cancellation for small d
    excess = d2[None] / (np.sqrt(a**2 + d2[None]) + a)
    val = (excess * half[None, None, :]).sum(axis=2) @ du
    val = val.reshape(th.shape)
    return float(val) if th.ndim == 0 else val


def _real_array(value, name):
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number or an array of real numbers; got a bool")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a real number or an array of real numbers; got {value!r}") from err
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    return arr


def _scalar_dict(out, like):
    if like.ndim == 0:
        return {k: float(v) for k, v in out.items()}
    return {k: np.asarray(v, dtype=np.float64).reshape(like.shape) for k, v in out.items()}


def _histogram(p, name):
    if isinstance(p, torch.Tensor):
        p = p.detach().cpu().numpy()
    try:
        arr = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of non-negative numbers") from err
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if (arr < 0).any():
        raise ValueError(f"{name} must be non-negative; got min {arr.min():.3g}")
    total = arr.sum()
    if total <= 0:
        raise ValueError(f"{name} must have positive total mass; got all zeros")
    return arr / total


def histogram_divergences(p, q):
    r"""Total variation, KL and Jensen-Shannon divergences of two discrete distributions.

    Both inputs are normalised to sum to one, then

    .. math::

        TV(p, q) = \tfrac12 \sum_k |p_k - q_k|, \qquad
        KL(p \| q) = \sum_k p_k \log\frac{p_k}{q_k},

    .. math::

        JS(p, q) = \tfrac12 KL(p \| m) + \tfrac12 KL(q \| m), \qquad m = \tfrac12 (p + q),

    with natural logarithms and the conventions :math:`0 \log(0/q) = 0` and
    :math:`p \log(p/0) = +\infty` for :math:`p > 0`. Hence :math:`0 \le TV \le 1`,
    :math:`0 \le JS \le \log 2`, and disjoint supports give :math:`TV = 1`,
    :math:`JS = \log 2`, :math:`KL = +\infty`.

    Parameters
    ----------
    p, q : array-like
        Non-negative histograms (any shape, same shape), not necessarily normalised.

    Returns
    -------
    dict
        Floats under ``"tv"``, ``"kl"`` (that is :math:`KL(p\|q)`) and ``"js"``.
    """
    from scipy.special import rel_entr

    pn, qn = _histogram(p, "p"), _histogram(q, "q")
    if pn.shape != qn.shape:
        raise ValueError(f"p and q must have the same shape; got {pn.shape} and {qn.shape}")
    pn, qn = pn.reshape(-1), qn.reshape(-1)
    m = 0.5 * (pn + qn)
    tv = 0.5 * float(np.abs(pn - qn).sum())
    kl = float(rel_entr(pn, qn).sum())
    js = 0.5 * float(rel_entr(pn, m).sum()) + 0.5 * float(rel_entr(qn, m).sum())
    return {"tv": min(max(tv, 0.0), 1.0), "kl": max(kl, 0.0), "js": min(max(js, 0.0), math.log(2.0))}


def parallel_lines_sample_w1(theta, z, z_moved):
    r"""Exact W1 between two samples of Example 1's lines, by matching them in sorted order of height.

    The points are :math:`(0, z_i)` and :math:`(\theta, z'_j)`, :math:`n` of each. The cost of moving
    one to the other, :math:`\sqrt{\theta^2 + (z_i - z'_j)^2}`, is a convex function of
    :math:`z_i - z'_j`, so the monotone (sorted) matching is an optimal plan and

    .. math::

        \widehat W_1 = \frac1n \sum_{i=1}^n \sqrt{\theta^2 + \bigl(z_{(i)} - z'_{(i)}\bigr)^2},

    the value the network simplex of :func:`w1` finds on the same points (up to rounding), in
    :math:`O(n \log n)`. It is at least :math:`|\theta|` and 1-Lipschitz in :math:`\theta` for
    fixed heights; :func:`parallel_lines_excess` gives its expected excess over :math:`|\theta|`.

    Parameters
    ----------
    theta : float
        Horizontal offset of the moved line.
    z, z_moved : array-like or torch.Tensor
        Heights of the two samples (flattened; equal sizes), computed in float64.

    Returns
    -------
    float
    """
    if isinstance(theta, torch.Tensor):
        theta = theta.detach().cpu().item()
    theta = check_value("theta", theta, Float())

    def heights(v, name):
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().double().numpy()
        return np.sort(_as_1d(v, name))

    a, b = heights(z, "z"), heights(z_moved, "z_moved")
    if a.size != b.size:
        raise ValueError(f"z and z_moved must have the same size; got {a.size} and {b.size}")
    return float(np.mean(np.sqrt(float(theta) ** 2 + (a - b) ** 2)))

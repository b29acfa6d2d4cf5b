r"""The Dirac-GAN of Mescheder et al. (2018): a two-parameter game with closed-form dynamics.

The data distribution is a point mass at :math:`0`, the generator a point mass at :math:`\theta`,
and the critic is linear, :math:`f_\psi(x) = \psi x`. In the book's convention the critic scores
real samples high, so the score gap is :math:`f_\psi(0) - f_\psi(\theta) = -\psi\theta`, and the
gradient of the critic with respect to its input is :math:`\psi` *everywhere* -- every gradient
penalty, wherever it is evaluated (any :math:`r(x)`), is a function of :math:`\psi` alone.
The unique equilibrium is :math:`(\theta, \psi) = (0, 0)`.

Simultaneous gradient flow, generator descending its loss and critic ascending its objective:

- ``"wgan"``: critic objective :math:`-\psi\theta`; field :math:`(\psi,\; -\theta)`;
- ``"wgan-gp"``: :math:`-\psi\theta - \lambda(|\psi| - n)^2`; field
  :math:`(\psi,\; -\theta + 2\lambda(n - |\psi|)\operatorname{sign}\psi)`;
- ``"wgan-div"``: :math:`-\psi\theta - k|\psi|^p`; field
  :math:`(\psi,\; -\theta - kp|\psi|^{p-1}\operatorname{sign}\psi)`;
- ``"gan"``: :math:`\log\sigma(0) + \log\sigma(-\psi\theta)` (:math:`^*`); field
  :math:`(\psi\,\sigma(\psi\theta),\; -\theta\,\sigma(\psi\theta))`;
- ``"gan-r1"``: the same minus :math:`\frac\gamma2\psi^2` (R1); field
  :math:`(\psi\,\sigma(\psi\theta),\; -\theta\,\sigma(\psi\theta) - \gamma\psi)`.

(:math:`^*` the minimax GAN objective :math:`\log\sigma(f(0)) + \log(1 - \sigma(f(\theta)))`
with :math:`1 - \sigma(t) = \sigma(-t)`; its derivative factor is :math:`\sigma(\psi\theta)`,
which is :math:`1/2` at the equilibrium.)

Linearised at the equilibrium, the smooth fields have the Jacobian
:math:`J = \begin{pmatrix} 0 & a \\ -a & -c \end{pmatrix}` with eigenvalues
:math:`-c/2 \pm \sqrt{c^2/4 - a^2}`: :math:`a = 1, c = 0` for WGAN (a pure rotation,
:math:`\pm i`), :math:`a = 1/2, c = 0` for the GAN, :math:`a = 1/2, c = \gamma` for R1 and
:math:`a = 1, c = 2k` for the zero-centred penalty with :math:`p = 2`; for :math:`p > 2` the
penalty's derivative vanishes to order :math:`p - 1` at :math:`\psi = 0`, so :math:`c = 0`.
The one-centred penalty is not differentiable at :math:`\psi = 0`, and the equilibrium is not
a stationary point of its field for :math:`\psi \to 0^\pm` (:func:`jacobian` refuses it).

The energy :math:`E = \theta^2 + \psi^2` (squared distance to the equilibrium) changes along the
WGAN-family flows at the rate :math:`\dot E = -2\psi\,\partial_\psi\mathrm{penalty}`:
:math:`0` for WGAN (circles), :math:`-2kp|\psi|^p \le 0` for WGAN-div, and
:math:`4\lambda|\psi|(n - |\psi|)`, *positive* for :math:`0 < |\psi| < n`, for WGAN-GP
(:func:`energy_rate`).
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

__all__ = [
    "METHODS",
    "DEFAULTS",
    "vector_field",
    "jacobian",
    "eigenvalues",
    "energy_rate",
    "div_radius",
    "simulate",
    "plot_field",
]

#: The games of :func:`vector_field`.
METHODS = ("wgan", "wgan-gp", "wgan-div", "gan", "gan-r1")
#: Default hyper-parameters of each game (``lam``, ``n``: one-centred penalty weight and target;
#: ``k``, ``p``: zero-centred penalty :math:`k|\psi|^p`; ``gamma``: R1 weight).
DEFAULTS = {
    "wgan": {},
    "wgan-gp": {"lam": 1.0, "n": 1.0},
    "wgan-div": {"k": 2.0, "p": 6.0},
    "gan": {},
    "gan-r1": {"gamma": 1.0},
}


def _hp(method: str, hp: dict) -> dict:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; method must be one of: {', '.join(METHODS)}")
    allowed = DEFAULTS[method]
    extra = set(hp) - set(allowed)
    if extra:
        raise ValueError(
            f"unknown hyper-parameter(s) {sorted(extra)} for {method!r}; allowed: {', '.join(allowed) or 'none'}"
        )
    out = {**allowed, **{k: float(v) for k, v in hp.items()}}
    for name in ("lam", "k", "gamma"):
        if name in out and not out[name] > 0:
            raise ValueError(f"{name} must be > 0; got {out[name]}")
    if "n" in out and not out["n"] >= 0:
        raise ValueError(f"n must be >= 0; got {out['n']}")
    if "p" in out and not out["p"] > 1:
        raise ValueError(f"p must be > 1; got {out['p']}")
    return out


def _sigmoid(t):
    return 0.5 * (1.0 + np.tanh(0.5 * t))


def _penalty_grad(method: str, psi, hp: dict):
    """Derivative of the critic's penalty with respect to psi."""
    if method == "wgan-gp":
        return -2.0 * hp["lam"] * (hp["n"] - np.abs(psi)) * np.sign(psi)
    if method == "wgan-div":
        return hp["k"] * hp["p"] * np.abs(psi) ** (hp["p"] - 1.0) * np.sign(psi)
    if method == "gan-r1":
        return hp["gamma"] * psi
    return np.zeros_like(psi)


def _scalar_field(method: str, hp: dict):
    """The field of :func:`vector_field` for Python floats (no checks; used by :func:`simulate`)."""
    import math

    def sgn(x):
        return (x > 0) - (x < 0)

    if method == "wgan":
        return lambda t, s: (s, -t)
    if method == "wgan-gp":
        lam, n = hp["lam"], hp["n"]
        return lambda t, s: (s, -t + 2.0 * lam * (n - abs(s)) * sgn(s))
    if method == "wgan-div":
        kp, q = hp["k"] * hp["p"], hp["p"] - 1.0
        return lambda t, s: (s, -t - kp * abs(s) ** q * sgn(s))
    gamma = hp.get("gamma", 0.0)

    def gan(t, s):
        g = 0.5 * (1.0 + math.tanh(0.5 * s * t))
        return s * g, -t * g - gamma * s

    return gan


def vector_field(method: str, theta, psi, **hp) -> Tuple[np.ndarray, np.ndarray]:
    r"""The simultaneous gradient field :math:`(\dot\theta, \dot\psi)` of a Dirac-GAN game.

    Parameters
    ----------
    method : str
        One of :data:`METHODS` (see the module docstring for the formulas).
    theta, psi : float or array
        Generator and critic parameters (broadcast together).
    **hp
        Hyper-parameters of the game (:data:`DEFAULTS`).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        :math:`\dot\theta` and :math:`\dot\psi`.
    """
    hp = _hp(method, hp)
    theta, psi = np.broadcast_arrays(np.asarray(theta, dtype=np.float64), np.asarray(psi, dtype=np.float64))
    if method in ("gan", "gan-r1"):
        s = _sigmoid(psi * theta)
        return psi * s, -theta * s - _penalty_grad(method, psi, hp)
    return psi.copy(), -theta - _penalty_grad(method, psi, hp)


def jacobian(method: str, **hp) -> np.ndarray:
    r"""The Jacobian of :func:`vector_field` at the equilibrium :math:`(0, 0)` (closed form).

    Raises
    ------
    ValueError
        For ``"wgan-gp"`` (not differentiable at :math:`\psi = 0`, and :math:`(0, 0)` is not a
        stationary point of its one-sided fields) and for ``"wgan-div"`` with :math:`p < 2`
        (the penalty's derivative :math:`|\psi|^{p-1}` is not differentiable at 0).
    """
    hp = _hp(method, hp)
    if method == "wgan-gp":
        raise ValueError(
            "the one-centred penalty lam(|psi| - n)^2 is not differentiable at psi = 0; "
            "the field has no Jacobian at the equilibrium (use vector_field)"
        )
    a = 0.5 if method in ("gan", "gan-r1") else 1.0
    c = 0.0
    if method == "gan-r1":
        c = hp["gamma"]
    elif method == "wgan-div":
        if hp["p"] < 2:
            raise ValueError(f"for p < 2 the penalty k|psi|^p has no second derivative at 0; got p = {hp['p']}")
        c = 2.0 * hp["k"] if hp["p"] == 2 else 0.0
    return np.array([[0.0, a], [-a, -c]])


def eigenvalues(method: str, **hp) -> np.ndarray:
    r"""Eigenvalues of :func:`jacobian`: :math:`-c/2 \pm \sqrt{c^2/4 - a^2}` (complex, sorted by
    imaginary part). Negative real parts mean local (linear) convergence of the gradient flow."""
    J = jacobian(method, **hp)
    a, c = J[0, 1], -J[1, 1]
    root = np.sqrt(complex(c * c / 4.0 - a * a))
    return np.array(sorted([-c / 2.0 - root, -c / 2.0 + root], key=lambda z: (z.imag, z.real)))


def energy_rate(method: str, theta, psi, **hp) -> np.ndarray:
    r""":math:`\dot E` for :math:`E = \theta^2 + \psi^2` along the flow: :math:`2\theta\dot\theta + 2\psi\dot\psi`."""
    dt, dp = vector_field(method, theta, psi, **hp)
    return 2.0 * np.asarray(theta) * dt + 2.0 * np.asarray(psi) * dp


def div_radius(t, rho0: float, k: float = 2.0, p: float = 6.0) -> np.ndarray:
    r"""Averaged distance to the equilibrium of the zero-centred game ``"wgan-div"`` at time ``t``.

    Near the equilibrium the flow rotates at unit speed, :math:`\psi \approx \rho\cos\phi`, while
    :math:`\rho^2 = \theta^2 + \psi^2` decays at the rate :math:`\dot{(\rho^2)} = -2kp|\psi|^p`.
    Averaging over a turn (:math:`c_p = \langle|\cos\phi|^p\rangle =
    \Gamma(\frac{p+1}2)/(\sqrt\pi\,\Gamma(\frac p2 + 1))`):

    .. math::

        u = \rho^2:\quad \dot u = -2kp\,c_p\,u^{p/2}
        \;\Rightarrow\;
        \rho(t) = \big(\rho_0^{2-p} + (p-2)\,kp\,c_p\,t\big)^{-\frac1{p-2}}\ (p > 2),
        \qquad \rho(t) = \rho_0 e^{-kt}\ (p = 2).

    For :math:`p = 6`, :math:`\rho \sim (15t)^{-1/4}` at :math:`k = 2`: convergence, but only
    polynomially fast (the linearisation is a pure rotation). Valid while the decay is slow
    against the rotation (small :math:`kp\rho^{p-2}`; for :math:`p = 2`, :math:`k \ll 1`).
    """
    from math import gamma, pi, sqrt

    k, p = float(k), float(p)
    if not (k > 0 and p >= 2 and rho0 > 0):
        raise ValueError(f"need k > 0, p >= 2 and rho0 > 0; got k={k}, p={p}, rho0={rho0}")
    t = np.asarray(t, dtype=np.float64)
    c = gamma((p + 1) / 2) / (sqrt(pi) * gamma(p / 2 + 1))
    if p == 2:
        return rho0 * np.exp(-k * t)
    return (rho0 ** (2 - p) + (p - 2) * k * p * c * t) ** (-1.0 / (p - 2))


def simulate(
    method: str, theta0: float, psi0: float, t_max: float = 30.0, dt: float = 0.01, scheme: str = "rk4", **hp
) -> dict:
    r"""Integrate the game from :math:`(\theta_0, \psi_0)`.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    theta0, psi0 : float
        Start.
    t_max, dt : float
        Time span and step (``int(round(t_max / dt))`` steps).
    scheme : {"rk4", "simgd"}
        ``"rk4"``: the continuous gradient flow (classical Runge-Kutta); ``"simgd"``: simultaneous
        gradient steps with learning rate ``dt`` (what training does), i.e. explicit Euler.
    **hp
        Hyper-parameters (:data:`DEFAULTS`).

    Returns
    -------
    dict
        ``"t"``, ``"theta"``, ``"psi"`` (arrays of length steps + 1) and ``"distance"``
        (:math:`\sqrt{\theta^2 + \psi^2}`).
    """
    _hp(method, hp)
    if scheme not in ("rk4", "simgd"):
        raise ValueError(f"unknown scheme {scheme!r}; scheme must be one of: rk4, simgd")
    if not (dt > 0 and t_max > 0):
        raise ValueError(f"dt and t_max must be > 0; got dt={dt}, t_max={t_max}")
    n = int(round(t_max / dt))
    if n < 1:
        raise ValueError(f"t_max / dt must be at least 1; got {t_max} / {dt}")
    f = _scalar_field(method, _hp(method, hp))
    th = np.empty(n + 1)
    ps = np.empty(n + 1)
    a, b = float(theta0), float(psi0)
    th[0], ps[0] = a, b
    h = float(dt)
    for i in range(n):
        if scheme == "simgd":
            u, v = f(a, b)
            a, b = a + h * u, b + h * v
        else:
            u1, v1 = f(a, b)
            u2, v2 = f(a + 0.5 * h * u1, b + 0.5 * h * v1)
            u3, v3 = f(a + 0.5 * h * u2, b + 0.5 * h * v2)
            u4, v4 = f(a + h * u3, b + h * v3)
            a += h / 6.0 * (u1 + 2 * u2 + 2 * u3 + u4)
            b += h / 6.0 * (v1 + 2 * v2 + 2 * v3 + v4)
        th[i + 1], ps[i + 1] = a, b
    x = np.stack([th, ps], axis=1)
    return {"t": np.arange(n + 1) * dt, "theta": x[:, 0], "psi": x[:, 1], "distance": np.hypot(x[:, 0], x[:, 1])}


def plot_field(
    ax,
    method: str,
    lim: float = 2.0,
    n: int = 15,
    starts=((1.5, 0.0),),
    t_max: float = 30.0,
    dt: float = 0.01,
    title: Optional[str] = None,
    **hp,
):
    """Draw the vector field of a game (arrows) and trajectories of its gradient flow from ``starts``.

    Returns the list of trajectories (dicts of :func:`simulate`).
    """
    g = np.linspace(-lim, lim, n)
    T, Psi = np.meshgrid(g, g)
    U, V = vector_field(method, T, Psi, **hp)
    ax.quiver(T, Psi, U, V, color="0.6", angles="xy", width=0.004)
    runs = []
    for i, (t0, p0) in enumerate(starts):
        run = simulate(method, t0, p0, t_max=t_max, dt=dt, **hp)
        ax.plot(run["theta"], run["psi"], color=f"C{i}", lw=1.5)
        ax.plot([t0], [p0], "o", color=f"C{i}", ms=5)
        runs.append(run)
    ax.plot([0], [0], "k*", ms=10)
    ax.set(
        xlim=(-lim, lim), ylim=(-lim, lim), xlabel=r"generator $\theta$", ylabel=r"critic $\psi$", title=title or method
    )
    ax.set_aspect("equal")
    return runs

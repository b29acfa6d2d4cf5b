r"""Chapter 6's ground truth: critics trained on a distribution and its own translate.

For any distribution :math:`\mu` and any shift :math:`a`, the Wasserstein-1 distance (Euclidean
cost) between :math:`\mu` and its translate :math:`\mu + a` is exactly :math:`\lVert a\rVert`:

* **upper bound**: the coupling :math:`x \mapsto x + a` moves every point by :math:`\lVert a\rVert`;
* **lower bound**: :math:`f(x) = \langle x, a\rangle / \lVert a\rVert` is 1-Lipschitz and
  :math:`\mathbb E_{\mu+a} f - \mathbb E_\mu f = \lVert a\rVert` (Kantorovich-Rubinstein).

The same holds for an empirical measure (the pool of images and its translate), so a critic's
estimate can be compared with the true :math:`W_1` of the pool it was trained on, not only with the
exact :math:`W_1` of two minibatches, which is biased upwards (:func:`wganbook.batchw1.batch_w1_samples`).
Here the real side is :math:`\mu` (scored high), the fake side :math:`\nu = \mu + a`.

The critics (``CRITICS``): weight clipping, the two-sided gradient penalty, the one-sided
Lipschitz penalty (WGAN-LP), the c-transform and the entropic :math:`(c, \varepsilon)`-transform
(:func:`wganbook.duality.soft_c_transform`), each with its method's optimiser defaults
(``wganbook.objectives.METHODS``; the :math:`(c, \varepsilon)`-transform uses the c-transform's).
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from wganbook import objectives, transport
from wganbook._util import Choice, Float, Int, check_value
from wganbook.data import seed_everything
from wganbook.duality import c_transform_dual, soft_c_transform_dual
from wganbook.models import make_critic, resolve_device
from wganbook.transport import w1 as exact_w1

__all__ = [
    "CRITICS",
    "translation_w1",
    "penalised_linear_optimum",
    "critic_value",
    "train_critic",
    "evaluate",
    "ground_truth_test",
]

#: The critics of the ground-truth test, key -> label. Every key but ``"wgan-cteps"`` is a key of
#: ``wganbook.objectives.METHODS``; ``"wgan-cteps"`` is the :math:`(c, \varepsilon)`-transform.
CRITICS: Dict[str, str] = {
    "wgan-clip": "weight clipping",
    "wgan-gp": "gradient penalty",
    "wgan-lp": "one-sided penalty (LP)",
    "wgan-ct": "c-transform",
    "wgan-cteps": "(c, ε)-transform",
}


def _check_kind(kind: str) -> str:
    return check_value("kind", kind, Choice(tuple(CRITICS)))


def translation_w1(shift) -> float:
    r"""The exact :math:`W_1(\mu, \mu + a) = \lVert a\rVert_2` (any :math:`\mu`; Euclidean cost).

    Parameters
    ----------
    shift : array-like or torch.Tensor
        The shift :math:`a`, of any shape (it is flattened).

    Returns
    -------
    float
    """
    a = np.asarray(shift.detach().cpu() if isinstance(shift, torch.Tensor) else shift, dtype=np.float64)
    if a.size == 0 or not np.isfinite(a).all():
        raise ValueError("shift must be a non-empty array of finite numbers")
    return float(np.linalg.norm(a.reshape(-1)))


def penalised_linear_optimum(distance: float, lam: float) -> float:
    r"""The gradient-penalty objective's best value over linear critics, for a translated pair.

    Among the linear critics :math:`f_s(x) = -s \langle x, a\rangle / \lVert a\rVert` (gradient
    norm :math:`s` everywhere), the penalised objective of WGAN-GP between :math:`\mu` and
    :math:`\mu + a` is

    .. math::

        \mathbb E_\mu f_s - \mathbb E_{\mu + a} f_s - \lambda (s - 1)^2
        = s \lVert a\rVert - \lambda (s - 1)^2,

    maximised at :math:`s^\ast = 1 + \lVert a\rVert / (2\lambda)`, where the critic's estimate
    (the mean difference) is

    .. math::

        s^\ast \lVert a\rVert = \lVert a\rVert + \frac{\lVert a\rVert^2}{2\lambda} > W_1.

    The penalty is soft: paying :math:`\lambda (s - 1)^2` for a slope above 1 buys more mean
    difference, so a penalised critic trained to its optimum overshoots the true distance by
    :math:`\lVert a\rVert^2 / (2\lambda)` (the one-sided penalty of WGAN-LP gives the same,
    since :math:`s^\ast > 1`).

    Parameters
    ----------
    distance : float
        :math:`\lVert a\rVert \ge 0` (:func:`translation_w1`).
    lam : float
        The penalty weight :math:`\lambda > 0`.

    Returns
    -------
    float
    """
    distance = check_value("distance", distance, Float(lo=0.0))
    lam = check_value("lam", lam, Float(lo=0.0, lo_open=True))
    return distance + distance**2 / (2.0 * lam)


def critic_value(kind: str, f_x, f_y, x, y, eps: Optional[float] = None) -> float:
    r"""A critic's :math:`W_1` estimate between the points ``x`` (real) and ``y`` (fake), in float64.

    * ``"wgan-ct"``: :math:`\bar f(x) + \overline{f^c}(y)` (:func:`wganbook.duality.c_transform_dual`),
      never above :math:`W_1(x, y)`;
    * ``"wgan-cteps"``: :math:`\bar f(x) + \overline{f^{c,\varepsilon}}(y)`
      (:func:`wganbook.duality.soft_c_transform_dual`);
    * the others: :math:`\bar f(x) - \bar f(y)`.

    Parameters
    ----------
    kind : str
        A key of ``CRITICS``.
    f_x, f_y : array-like, shape (n,) and (m,)
        The critic's scores of ``x`` and ``y`` (``f_y`` is not used by the transforms).
    x, y : array-like, shape (n, ...) and (m, ...)
    eps : float, optional
        :math:`\varepsilon` of ``"wgan-cteps"`` (required there).

    Returns
    -------
    float
    """
    _check_kind(kind)
    fx = np.asarray(f_x, dtype=np.float64).reshape(-1)
    if kind == "wgan-ct":
        return float(c_transform_dual(fx, _flat(x), _flat(y)))
    if kind == "wgan-cteps":
        if eps is None:
            raise ValueError("eps is required for kind 'wgan-cteps'")
        return float(soft_c_transform_dual(fx, _flat(x), _flat(y), eps))
    return float(fx.mean() - np.asarray(f_y, dtype=np.float64).mean())


def _flat(x) -> np.ndarray:
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    return a.reshape(a.shape[0], -1)


def _scores(critic: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return critic(x).reshape(-1).double().cpu().numpy()


def _population(kind, critic, mu, nu, eps) -> float:
    was = critic.training
    critic.eval()
    out = critic_value(kind, _scores(critic, mu), _scores(critic, nu), mu, nu, eps)
    critic.train(was)
    return out


class _Batches:
    """Minibatches of a tensor by seeded epoch permutations (no image repeats within an epoch)."""

    def __init__(self, x: torch.Tensor, m: int, gen: torch.Generator):
        self.x, self.m, self.gen = x, m, gen
        self.perm, self.pos = torch.randperm(len(x), generator=gen), 0

    def next(self) -> torch.Tensor:
        if self.pos + self.m > len(self.x):
            self.perm, self.pos = torch.randperm(len(self.x), generator=self.gen), 0
        idx = self.perm[self.pos : self.pos + self.m]
        self.pos += self.m
        return self.x[idx]


def train_critic(
    kind: str,
    critic: nn.Module,
    mu: torch.Tensor,
    nu: torch.Tensor,
    steps: int,
    batch_size: int = 64,
    seed: int = 0,
    eps: float = 1.0,
    record_every: int = 1,
) -> Dict[str, list]:
    r"""Train a critic between two fixed pools, recording its batch and its population estimate.

    Each step draws a batch of ``mu`` and one of ``nu`` (independent epoch permutations) and takes
    one optimiser step on the method's critic loss (``wganbook.objectives.critic_loss``, then
    ``after_critic_step``: clipping), or, for ``"wgan-cteps"``, on
    :math:`-\big(\bar f(x) + \overline{f^{c,\varepsilon}}(y)\big)` with the c-transform's optimiser
    (RMSProp :math:`10^{-3}`). Every ``record_every`` steps (and at the last) it records the
    estimate on the training batches (:func:`critic_value`) and the **population estimate**: the
    same value on the whole pools ``mu`` and ``nu``.

    Parameters
    ----------
    kind : str
        A key of ``CRITICS``.
    critic : torch.nn.Module
        Trained in place, on the device of its parameters.
    mu, nu : torch.Tensor
        The real and fake pools, on the critic's device.
    steps, batch_size : int
    seed : int, optional
        Seed of the batch order and of the penalty's random points.
    eps : float, optional
        :math:`\varepsilon` of the :math:`(c, \varepsilon)`-transform (cost units).
    record_every : int, optional

    Returns
    -------
    dict of str to list
        ``"step"``, ``"batch_estimate"``, ``"population_estimate"``.
    """
    _check_kind(kind)
    steps = check_value("steps", steps, Int(lo=1))
    batch_size = check_value("batch_size", batch_size, Int(lo=1))
    seed = check_value("seed", seed, Int(lo=0))
    eps = check_value("eps", eps, Float(lo=0.0, lo_open=True))
    record_every = check_value("record_every", record_every, Int(lo=1))
    method = "wgan-ct" if kind == "wgan-cteps" else kind
    opt = objectives.make_optimizers(method, nn.Linear(1, 1), critic)[1]
    gen = torch.Generator().manual_seed(seed)
    noise = torch.Generator(device=next(critic.parameters()).device).manual_seed(seed + 7919)
    xs, ys = _Batches(mu, batch_size, gen), _Batches(nu, batch_size, gen)
    hist: Dict[str, list] = {"step": [], "batch_estimate": [], "population_estimate": []}
    critic.train()
    for step in range(1, steps + 1):
        x, y = xs.next(), ys.next()
        if kind == "wgan-cteps":
            loss = -soft_c_transform_dual(critic(x).reshape(-1), x.flatten(1), y.flatten(1), eps)
        else:
            loss, _ = objectives.critic_loss(method, critic, x, y, generator=noise, track_grad_norm=False)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        objectives.after_critic_step(method, critic)
        if step % record_every == 0 or step == steps:
            hist["step"].append(step)
            hist["batch_estimate"].append(critic_value(kind, _scores(critic, x), _scores(critic, y), x, y, eps))
            hist["population_estimate"].append(_population(kind, critic, mu, nu, eps))
    return hist


def evaluate(
    kind: str,
    critic: nn.Module,
    mu: torch.Tensor,
    nu: torch.Tensor,
    n_batches: int = 50,
    batch_size: int = 64,
    seed: int = 0,
    eps: float = 1.0,
) -> Dict[str, object]:
    r"""A frozen critic on fresh batch pairs and on the whole pools.

    Returns
    -------
    dict
        ``"estimate"`` and ``"exact"`` (float64 arrays of length ``n_batches``: the critic's
        estimate and the exact :math:`W_1` of each batch pair, drawn without replacement with
        ``seed``), and ``"population"`` (the estimate on the whole pools).
    """
    _check_kind(kind)
    n_batches = check_value("n_batches", n_batches, Int(lo=1))
    batch_size = check_value("batch_size", batch_size, Int(lo=1, hi=min(len(mu), len(nu))))
    gen = torch.Generator().manual_seed(check_value("seed", seed, Int(lo=0)))
    was = critic.training
    critic.eval()
    est, exact = [], []
    for _ in range(n_batches):
        x = mu[torch.randperm(len(mu), generator=gen)[:batch_size]]
        y = nu[torch.randperm(len(nu), generator=gen)[:batch_size]]
        est.append(critic_value(kind, _scores(critic, x), _scores(critic, y), x, y, eps))
        exact.append(exact_w1(_flat(x), _flat(y)))
    critic.train(was)
    return {
        "estimate": np.asarray(est),
        "exact": np.asarray(exact),
        "population": _population(kind, critic, mu, nu, eps),
    }


def ground_truth_test(
    dataset: str,
    images: torch.Tensor,
    shift,
    kinds: Sequence[str],
    steps: Union[int, Mapping[str, int]],
    batch_size: int = 64,
    eval_batches: int = 50,
    seed: int = 0,
    eps: float = 1.0,
    record_every: int = 1,
    device=None,
) -> Dict[str, object]:
    r"""The ground-truth test: every critic of ``kinds`` trained on ``images`` against ``images + shift``.

    For each kind, in order: every generator seeded (:func:`wganbook.data.seed_everything` with
    ``seed``), a fresh ``make_critic(dataset)`` trained by :func:`train_critic` for ``steps`` steps
    (an int, or a mapping kind -> steps; the same batch sequence for every kind), then evaluated by :func:`evaluate` (batch pairs drawn with
    ``seed + 1``, the same for every kind). Also the untrained c-transform critic (initialisation
    ``seed``) on the same evaluation, and the exact :math:`W_1` between the two whole pools by
    POT, which equals ``translation_w1(shift)`` up to the solver's rounding.

    Returns
    -------
    dict
        ``kind -> {"hist", "eval"}`` for every kind, ``"ct-untrained"`` (an :func:`evaluate`
        result), ``"truth"`` (:math:`\lVert a\rVert`) and ``"pool_w1"`` (the exact :math:`W_1`
        of the pools).
    """
    kinds = [_check_kind(k) for k in kinds]
    if not kinds:
        raise ValueError(f"kinds must be a non-empty list of: {', '.join(CRITICS)}")
    if isinstance(steps, Mapping):
        missing = [k for k in kinds if k not in steps]
        if missing:
            raise ValueError(f"steps must give a number of steps for every kind; missing: {', '.join(missing)}")
        steps_of = {k: check_value(f"steps[{k!r}]", steps[k], Int(lo=1)) for k in kinds}
    else:
        steps_of = dict.fromkeys(kinds, check_value("steps", steps, Int(lo=1)))
    dev = resolve_device(device)
    mu = images.to(dev)
    a = torch.as_tensor(shift, dtype=mu.dtype).to(dev)
    if a.shape != mu.shape[1:]:
        raise ValueError(f"shift must have the shape of one image {tuple(mu.shape[1:])}; got {tuple(a.shape)}")
    nu = mu + a
    out: Dict[str, object] = {}
    for kind in kinds:
        seed_everything(seed)
        critic = make_critic(dataset).to(dev)
        hist = train_critic(kind, critic, mu, nu, steps_of[kind], batch_size, seed, eps, record_every)
        out[kind] = {"hist": hist, "eval": evaluate(kind, critic, mu, nu, eval_batches, batch_size, seed + 1, eps)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        critic0 = make_critic(dataset).to(dev)
    out["ct-untrained"] = evaluate("wgan-ct", critic0, mu, nu, eval_batches, batch_size, seed + 1, eps)
    out["truth"] = translation_w1(a)
    out["pool_w1"] = float(transport.w1(_flat(mu), _flat(nu)))
    return out

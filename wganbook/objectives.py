r"""The registry of training methods and their losses, with one sign convention.

The critic :math:`f` scores real samples high. For real :math:`x_1..x_n` and fake
:math:`y_1..y_n = G(z_1)..G(z_n)`:

.. math::

    L_{\text{critic}} = \frac1n\sum_i f(y_i) - \frac1n\sum_i f(x_i) + \text{penalty},\qquad
    L_{\text{generator}} = -\frac1n\sum_i f(y_i),\qquad
    \hat W_1 = \frac1n\sum_i f(x_i) - \frac1n\sum_i f(y_i).

Both players *minimise* their loss. ``critic_loss`` returns the loss and a dict of detached
statistics with ``loss == -w1_estimate + penalty`` for every WGAN method.

Methods (``METHODS``; hyper-parameter defaults in ``Method.defaults``, sources in brackets):

- ``wgan-clip``: clip every critic parameter to :math:`[-c, c]` after each critic step;
  RMSProp 5e-5, c = 0.01, n_critic = 5 [WGAN, Algorithm 1].
- ``wgan-gp``: :math:`\lambda\,\mathbb E(\lVert\nabla f(\hat x)\rVert - 1)^2` at real-fake
  interpolates; Adam 1e-4, betas (0.0, 0.9), :math:`\lambda` = 10, n_critic = 5 [WGAN-GP, Algorithm 1].
- ``wgan-lp``: one-sided :math:`\lambda\,\mathbb E\max(0, \lVert\nabla f(\hat x)\rVert - 1)^2`;
  same defaults as wgan-gp [Petzka et al. 2018].
- ``wgan-div``: :math:`k\,\mathbb E_{\hat x\sim r}\lVert\nabla f(\hat x)\rVert^p`; k = 2, p = 6,
  r = real-fake interpolates, Adam 1e-4, betas (0.0, 0.9), n_critic = 5 [Wu et al. 2018; the
  optimiser follows WGAN-GP]. Published variants: the official code uses weight 10 at real-fake
  interpolates (``k=10.0``); bojone/gan and PyTorch-GAN use k = 2 at the raw real and fake samples
  (``strategy="real+fake"``).
- ``wgan-sn``: WGAN loss, spectrally normalised critic, no penalty; Adam 1e-4, betas (0.5, 0.9),
  n_critic = 5 [SNGAN, Table 1, setting A].
- ``wgan-ct``: c-transform dual on the batch; RMSProp 1e-3, n_critic = 5 [the (q,p)-WGAN of
  Mallasto, Frellsen, Boomsma & Feragen 2019, as reproduced by Rollov et al.; qp-wgan uses
  n_critic 1 or 5].
- ``gan-ns``: non-saturating GAN on logits :math:`f`, :math:`D = \sigma(f)`; optional penalty
  "gp" or "r1" and spectral critic; Adam 2e-4, betas (0.5, 0.999), n_critic = 1 [DCGAN].
- ``gan-mm``: minimax GAN (the generator minimises :math:`\mathbb E\log(1 - D(y))`), otherwise as
  gan-ns [Goodfellow et al. 2014].

Hyper-parameters shared by every method: ``optimizer`` ("adam" or "rmsprop"), ``lr`` (critic and,
unless ``lr_g`` is set, generator learning rate), ``lr_g``, ``betas`` (Adam only), ``n_critic``,
``spectral`` (build the critic with spectral normalisation; the trainer reads it). Per-method
keys: ``clip``; ``lam``, ``center``, ``strategy``; ``k``, ``p``; ``penalty``. A key a method does not
use is ``None`` in its defaults and must stay ``None`` (passing a value raises ``ValueError``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from wganbook.lipschitz import (
    SAMPLING_STRATEGIES,
    _check_critic,
    _check_pair,
    _flat_norms,
    _scores,
    clip_weights_,
    div_penalty,
    gradient_penalty,
)
from wganbook.models import has_batchnorm

__all__ = [
    "HPARAM_KEYS",
    "OPTIMIZERS",
    "GAN_PENALTIES",
    "Method",
    "METHODS",
    "get_method",
    "resolve_hparams",
    "check_critic_for_method",
    "batch_c_transform",
    "critic_loss",
    "generator_loss",
    "after_critic_step",
    "make_optimizers",
    "js_estimate",
]

#: Every hyper-parameter name a method can have (all appear in each ``Method.defaults``).
HPARAM_KEYS = (
    "optimizer",
    "lr",
    "lr_g",
    "betas",
    "n_critic",
    "spectral",
    "penalty",
    "lam",
    "center",
    "strategy",
    "clip",
    "k",
    "p",
)
#: Optimisers ``make_optimizers`` can build.
OPTIMIZERS = ("adam", "rmsprop")
#: Penalties available to the GAN baselines ("none", the WGAN-GP penalty "gp", and "r1" of Mescheder et al. 2018).
GAN_PENALTIES = ("none", "gp", "r1")


@dataclass(frozen=True)
class Method:
    """A training method: its name, a one-line description, default hyper-parameters and flags.

    Attributes
    ----------
    name : str
    description : str
    defaults : Mapping
        Read-only mapping of all ``HPARAM_KEYS`` (unused keys are ``None``); copy it with
        ``dict(method.defaults)`` or use ``resolve_hparams``.
    penalised : bool
        The critic loss always contains a per-sample gradient penalty (no BatchNorm allowed).
    uses_clipping, uses_spectral_norm, uses_c_transform : bool
    """

    name: str
    description: str
    defaults: Mapping[str, Any] = field(repr=False, compare=False)
    penalised: bool = False
    uses_clipping: bool = False
    uses_spectral_norm: bool = False
    uses_c_transform: bool = False

    def __post_init__(self):
        d = {key: None for key in HPARAM_KEYS}
        d.update(self.defaults)
        object.__setattr__(self, "defaults", MappingProxyType(d))


def _m(name, description, defaults, **flags) -> Method:
    base = {"lr_g": None, "spectral": False}
    base.update(defaults)
    return Method(name, description, base, **flags)


METHODS: Dict[str, Method] = {
    m.name: m
    for m in (
        _m(
            "wgan-clip",
            "WGAN with weight clipping (Arjovsky et al. 2017, Algorithm 1): RMSProp 5e-5, c = 0.01, "
            "n_critic = 5; betas are used only if optimizer='adam' (the official code's --adam uses "
            "beta1 = 0.5).",
            dict(optimizer="rmsprop", lr=5e-5, betas=(0.5, 0.999), n_critic=5, penalty="none", clip=0.01),
            uses_clipping=True,
        ),
        _m(
            "wgan-gp",
            "WGAN-GP (Gulrajani et al. 2017, Algorithm 1): two-sided penalty lam*(|grad f|-1)^2 at "
            "real-fake interpolates, lam = 10, Adam 1e-4 (0.0, 0.9), n_critic = 5. The toy script "
            "gan_toy.py uses lam = 0.1 and betas (0.5, 0.9).",
            dict(
                optimizer="adam",
                lr=1e-4,
                betas=(0.0, 0.9),
                n_critic=5,
                penalty="gp",
                lam=10.0,
                center=1.0,
                strategy="real-fake",
            ),
            penalised=True,
        ),
        _m(
            "wgan-lp",
            "WGAN-LP (Petzka et al. 2018): one-sided penalty lam*max(0, |grad f|-1)^2, same defaults as wgan-gp.",
            dict(
                optimizer="adam",
                lr=1e-4,
                betas=(0.0, 0.9),
                n_critic=5,
                penalty="lp",
                lam=10.0,
                center=1.0,
                strategy="real-fake",
            ),
            penalised=True,
        ),
        _m(
            "wgan-div",
            "WGAN-div (Wu et al. 2018): penalty k*E|grad f|^p with the paper's k = 2, p = 6 at "
            "real-fake interpolates, Adam 1e-4 (0.0, 0.9), n_critic = 5. Published variants: "
            "official code k = 10 at real-fake interpolates (Adam 2e-4 (0.0, 0.9), n_critic 4); "
            "bojone/gan and PyTorch-GAN k = 2 at raw real and fake samples = strategy 'real+fake' "
            "(Adam 2e-4, beta1 0.5).",
            dict(
                optimizer="adam",
                lr=1e-4,
                betas=(0.0, 0.9),
                n_critic=5,
                penalty="div",
                k=2.0,
                p=6.0,
                strategy="real-fake",
            ),
            penalised=True,
        ),
        _m(
            "wgan-sn",
            "WGAN loss with a spectrally normalised critic (Miyato et al. 2018) and no penalty: "
            "Adam 1e-4 (0.5, 0.9), n_critic = 5 (SNGAN Table 1, setting A, the WGAN-GP code's "
            "setting).",
            dict(optimizer="adam", lr=1e-4, betas=(0.5, 0.9), n_critic=5, penalty="none", spectral=True),
            uses_spectral_norm=True,
        ),
        _m(
            "wgan-ct",
            "c-transform WGAN ((q,p)-WGAN, Mallasto, Frellsen, Boomsma & Feragen 2019): the "
            "critic maximises mean f(x_i) + mean "
            "f^c(y_j), f^c(y) = min_i |x_i - y| - f(x_i) over the real batch; the generator "
            "minimises the same dual value. RMSProp 1e-3 (Mallasto reproduction), n_critic = 5 "
            "(qp-wgan uses 1 or 5).",
            dict(optimizer="rmsprop", lr=1e-3, betas=(0.0, 0.9), n_critic=5, penalty="none"),
            uses_c_transform=True,
        ),
        _m(
            "gan-ns",
            "Non-saturating GAN on logits f, D = sigmoid(f): critic loss softplus(-f(x)) + "
            "softplus(f(y)), generator loss softplus(-f(y)); Adam 2e-4 (0.5, 0.999), n_critic = 1 "
            "(DCGAN). Optional penalty 'gp' (lam*(|grad f|-1)^2, GAN-GP) or 'r1' "
            "(lam/2*E|grad f(x_real)|^2) and spectral critic.",
            dict(
                optimizer="adam",
                lr=2e-4,
                betas=(0.5, 0.999),
                n_critic=1,
                penalty="none",
                lam=10.0,
                center=1.0,
                strategy="real-fake",
            ),
        ),
        _m(
            "gan-mm",
            "Minimax GAN (Goodfellow et al. 2014): as gan-ns, but the generator minimises "
            "E log(1 - D(y)) = -E softplus(f(y)), which saturates when D rejects the fakes.",
            dict(
                optimizer="adam",
                lr=2e-4,
                betas=(0.5, 0.999),
                n_critic=1,
                penalty="none",
                lam=10.0,
                center=1.0,
                strategy="real-fake",
            ),
        ),
    )
}

MethodLike = Union[str, Method]


def get_method(name: MethodLike) -> Method:
    """Return the ``Method`` called ``name`` (a ``Method`` is returned unchanged).

    Parameters
    ----------
    name : str or Method

    Returns
    -------
    Method

    Raises
    ------
    ValueError
        If ``name`` is not in ``METHODS``; the message lists the allowed names.
    """
    if isinstance(name, Method):
        return name
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"unknown method {name!r}; method must be one of: " + ", ".join(map(repr, METHODS)))
    return METHODS[name]


# ----------------------------------------------------------------------------- hparams
def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _float(name, v, lo=None, lo_open=False, hi=None, what=None) -> float:
    if not _is_real(v):
        raise TypeError(f"{name} must be a float; got {v!r}")
    v = float(v)
    bad = not math.isfinite(v)
    if lo is not None:
        bad = bad or (v <= lo if lo_open else v < lo)
    if hi is not None:
        bad = bad or v > hi
    if bad:
        raise ValueError(f"{name} must be {what}; got {v!r}")
    return v


def resolve_hparams(method: MethodLike, **overrides) -> Dict[str, Any]:
    r"""Merge ``method``'s defaults with ``overrides`` and validate the result.

    An override of ``None`` keeps the default. Rules (violations raise ``ValueError``, or
    ``TypeError`` for a wrong type, naming the parameter and the allowed values):

    - keys must be in ``HPARAM_KEYS``; a key the method does not use (default ``None``) must stay
      ``None``; ``penalty`` can only be changed for ``gan-ns``/``gan-mm`` (``GAN_PENALTIES``);
    - ``optimizer`` in ``OPTIMIZERS``; ``lr > 0``; ``lr_g`` ``None`` or ``> 0``;
    - ``betas``: two floats in :math:`[0, 1)` (ints such as ``0`` are refused: write ``0.0``);
    - ``n_critic``: int :math:`\ge 1`; ``spectral``: bool;
    - ``lam >= 0``, ``center >= 0``, ``k >= 0``, ``p > 0``, ``clip > 0``;
    - ``strategy`` in ``SAMPLING_STRATEGIES``.

    Parameters
    ----------
    method : str or Method
    **overrides
        Hyper-parameter values.

    Returns
    -------
    dict
        All ``HPARAM_KEYS``; ``betas`` as a tuple of floats; numbers as Python floats/ints.
    """
    m = get_method(method)
    unknown = sorted(set(overrides) - set(HPARAM_KEYS))
    if unknown:
        raise ValueError(
            f"unknown hyper-parameter {unknown[0]!r} for method {m.name!r}; allowed: " + ", ".join(HPARAM_KEYS)
        )
    hp = dict(m.defaults)
    used = [k for k, v in m.defaults.items() if v is not None] + ["lr_g"]
    for key, value in overrides.items():
        if value is None:
            continue
        if m.defaults[key] is None and key != "lr_g":
            raise ValueError(
                f"hyper-parameter {key!r} is not used by method {m.name!r} (must be None); "
                f"{m.name!r} uses: " + ", ".join(used)
            )
        hp[key] = value

    if hp["optimizer"] not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {hp['optimizer']!r}; optimizer must be one of: " + ", ".join(map(repr, OPTIMIZERS))
        )
    hp["lr"] = _float("lr", hp["lr"], lo=0.0, lo_open=True, what="> 0")
    if hp["lr_g"] is not None:
        hp["lr_g"] = _float("lr_g", hp["lr_g"], lo=0.0, lo_open=True, what="> 0 (or None)")
    betas = hp["betas"]
    if (
        not isinstance(betas, (tuple, list))
        or len(betas) != 2
        or not all(isinstance(b, float) or (_is_real(b) and not isinstance(b, numbers.Integral)) for b in betas)
    ):
        raise TypeError(f"betas must be a pair of floats in [0, 1), e.g. (0.0, 0.9); got {betas!r}")
    if not all(0.0 <= float(b) < 1.0 for b in betas):
        raise ValueError(f"betas must be a pair of floats in [0, 1), e.g. (0.0, 0.9); got {betas!r}")
    hp["betas"] = (float(betas[0]), float(betas[1]))
    nc = hp["n_critic"]
    if isinstance(nc, bool) or not isinstance(nc, numbers.Integral):
        raise TypeError(f"n_critic must be an int >= 1; got {nc!r}")
    if nc < 1:
        raise ValueError(f"n_critic must be an int >= 1; got {nc!r}")
    hp["n_critic"] = int(nc)
    if not isinstance(hp["spectral"], bool):
        raise TypeError(f"spectral must be a bool; got {hp['spectral']!r}")

    allowed_pen = GAN_PENALTIES if m.name in ("gan-ns", "gan-mm") else (m.defaults["penalty"],)
    if hp["penalty"] not in allowed_pen:
        raise ValueError(
            f"unknown penalty {hp['penalty']!r} for method {m.name!r}; penalty must be "
            "one of: " + ", ".join(map(repr, allowed_pen))
        )
    if hp["lam"] is not None:
        hp["lam"] = _float("lam", hp["lam"], lo=0.0, what=">= 0")
    if hp["center"] is not None:
        hp["center"] = _float("center", hp["center"], lo=0.0, what=">= 0")
    if hp["k"] is not None:
        hp["k"] = _float("k", hp["k"], lo=0.0, what=">= 0")
    if hp["p"] is not None:
        hp["p"] = _float("p", hp["p"], lo=0.0, lo_open=True, what="> 0")
    if hp["clip"] is not None:
        hp["clip"] = _float("clip", hp["clip"], lo=0.0, lo_open=True, what="> 0")
    if hp["strategy"] is not None and hp["strategy"] not in SAMPLING_STRATEGIES:
        raise ValueError(
            f"unknown strategy {hp['strategy']!r}; strategy must be one of: "
            + ", ".join(map(repr, SAMPLING_STRATEGIES))
        )
    return hp


# ----------------------------------------------------------------------------- checks
def check_critic_for_method(method: MethodLike, critic: nn.Module, **hp) -> None:
    """Refuse a critic that contains BatchNorm when the method penalises per-sample gradients.

    A gradient penalty is a sum of per-sample terms; BatchNorm makes each score depend on the
    whole batch, so :math:`\\nabla_x f(x_i)` is no longer the gradient of a function of
    :math:`x_i` (WGAN-GP Sec. 4). Applies to wgan-gp, wgan-lp, wgan-div and to gan-ns/gan-mm with
    ``penalty`` "gp" or "r1". Use ``norm="layer"`` or ``"none"``.

    Parameters
    ----------
    method : str or Method
    critic : torch.nn.Module
    **hp
        Hyper-parameter overrides (``penalty`` matters for the GAN baselines).

    Raises
    ------
    ValueError
    """
    m = get_method(method)
    hp = resolve_hparams(m, **hp)
    if (m.penalised or hp["penalty"] != "none") and has_batchnorm(critic):
        raise ValueError(
            f"method {m.name!r} penalises per-sample input gradients, which BatchNorm makes "
            "ill-defined; critic norm must be one of: 'none', 'layer' (not 'batch')"
        )


# ----------------------------------------------------------------------------- c-transform
def batch_c_transform(f_x: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Hard c-transform over the batch with Euclidean cost on flattened samples.

    .. math::

        f^c(y_j) = \min_{i} \big(\lVert x_i - y_j\rVert_2 - f(x_i)\big).

    Differentiable with respect to ``f_x`` and ``y`` (sub-gradient through the minimum).

    Parameters
    ----------
    f_x : torch.Tensor
        Scores ``(n,)`` of the real batch.
    x : torch.Tensor
        Real batch ``(n, ...)``.
    y : torch.Tensor
        Fake batch ``(m, ...)``.

    Returns
    -------
    torch.Tensor
        Shape ``(m,)``.
    """
    xf = x.reshape(x.shape[0], -1)
    yf = y.reshape(y.shape[0], -1)
    d2 = (
        (xf[:, None, :] - yf[None, :, :]).pow(2).sum(-1)
        if xf.shape[1] <= 16
        else (xf.pow(2).sum(1)[:, None] + yf.pow(2).sum(1)[None, :] - 2.0 * xf @ yf.T).clamp_min(0.0)
    )
    cost = torch.sqrt(d2 + 1e-12)
    return (cost - f_x.reshape(-1, 1)).min(dim=0).values


# ----------------------------------------------------------------------------- losses
def _zero(like: torch.Tensor) -> torch.Tensor:
    return torch.zeros((), dtype=like.dtype, device=like.device)


def critic_loss(
    method: MethodLike,
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: Optional[torch.Generator] = None,
    track_grad_norm: bool = True,
    **hp,
) -> Tuple[torch.Tensor, Dict]:
    r"""Loss the critic minimises, and detached statistics.

    Real and fake are scored in one forward pass on their concatenation (safe with spectral
    norm); fakes are detached. With :math:`\bar f_r = \frac1n\sum f(x_i)`,
    :math:`\bar f_g = \frac1n\sum f(y_i)`:

    - wgan-clip, wgan-sn: :math:`\bar f_g - \bar f_r`;
    - wgan-gp / wgan-lp: :math:`\bar f_g - \bar f_r + \lambda\,\mathrm{GP}` / :math:`+ \lambda\,\mathrm{LP}`
      (``wganbook.lipschitz.gradient_penalty``);
    - wgan-div: :math:`\bar f_g - \bar f_r + k\,\mathbb E_{r}\lVert\nabla f\rVert^p`
      (``wganbook.lipschitz.div_penalty``);
    - wgan-ct: :math:`-\big(\bar f_r + \frac1n\sum_j f^c(y_j)\big)` with
      :math:`f^c(y_j) = \min_i \lVert x_i - y_j\rVert - f(x_i)` (``batch_c_transform``);
    - gan-ns, gan-mm: :math:`\frac1n\sum \mathrm{softplus}(-f(x_i)) + \frac1n\sum\mathrm{softplus}(f(y_i))`
      :math:`= -\mathbb E\log D(x) - \mathbb E\log(1-D(y))`, plus
      :math:`\lambda\,\mathrm{GP}` (penalty "gp") or :math:`\frac\lambda2\,\mathbb E\lVert\nabla f(x)\rVert^2`
      (penalty "r1", real points).

    Weight clipping is not part of the loss: call ``after_critic_step`` after the optimiser step.

    Parameters
    ----------
    method : str or Method
    critic : torch.nn.Module
        Returns scores ``(n,)``.
    real, fake : torch.Tensor
        Batches of the same shape ``(n, ...)``.
    generator : torch.Generator, optional
        Random-number generator for the penalty points (a ``torch.Generator``, not the network).
    track_grad_norm : bool
        For methods without a penalty, compute ``stats["grad_norm"]`` with one extra backward pass
        through the critic (roughly doubles the cost of a critic step); with ``False`` the key is
        left out. Penalised methods always report it (no extra cost).
    **hp
        Hyper-parameter overrides (``resolve_hparams``); keys such as ``lr`` are accepted and ignored.

    Returns
    -------
    loss : torch.Tensor
        Scalar, differentiable with respect to the critic's parameters.
    stats : dict of torch.Tensor
        Detached 0-dim tensors: ``"w1_estimate"`` (:math:`\bar f_r - \bar f_g`; for wgan-ct the dual
        value :math:`\bar f_r + \overline{f^c}`), ``"penalty"`` (the weighted term added to the loss,
        0 if none), ``"grad_norm"`` (mean :math:`\lVert\nabla_x f\rVert` at the penalty points, or at
        the real and fake points for methods without a penalty); gan-ns/gan-mm also give
        ``"js_estimate"`` :math:`= \log 2 - L/2` (the Jensen-Shannon estimate of an optimal
        discriminator, without penalty).
    """
    m = get_method(method)
    hp = resolve_hparams(m, **hp)
    _check_critic(critic)
    _check_pair(real, fake)
    check_critic_for_method(m, critic, penalty=hp["penalty"])
    if not isinstance(track_grad_norm, bool):
        raise TypeError(f"track_grad_norm must be a bool; got {track_grad_norm!r}")
    with torch.enable_grad():  # the penalties and grad_norm need autograd even under no_grad()
        return _critic_loss(m, critic, real, fake, generator, hp, track_grad_norm)


def _critic_loss(m, critic, real, fake, generator, hp, track_grad_norm=True):
    n = real.shape[0]
    real, fake = real.detach(), fake.detach()
    penalised = hp["penalty"] != "none"
    x = torch.cat([real, fake])
    track = track_grad_norm and not penalised
    if track:
        x.requires_grad_(True)
    scores = _scores(critic, x, "real and fake")
    f_r, f_g = scores[:n], scores[n:]
    stats: Dict[str, torch.Tensor] = {}

    if m.uses_c_transform:
        fc = batch_c_transform(f_r, real, fake)
        dual = f_r.mean() + fc.mean()
        loss = -dual
        w1 = dual.detach()
    elif m.name in ("gan-ns", "gan-mm"):
        loss = F.softplus(-f_r).mean() + F.softplus(f_g).mean()
        stats["js_estimate"] = math.log(2.0) - loss.detach() / 2
        w1 = (f_r.mean() - f_g.mean()).detach()
    else:
        w1 = (f_r.mean() - f_g.mean()).detach()
        loss = f_g.mean() - f_r.mean()

    pen_kind = hp["penalty"]
    if pen_kind in ("gp", "lp"):
        gp, norms = gradient_penalty(
            critic,
            real,
            fake,
            center=hp["center"],
            one_sided=(pen_kind == "lp"),
            generator=generator,
            strategy=hp["strategy"],
            return_norms=True,
        )
        penalty = hp["lam"] * gp
    elif pen_kind == "div":
        penalty, norms = div_penalty(
            critic, real, fake, k=hp["k"], p=hp["p"], strategy=hp["strategy"], generator=generator, return_norms=True
        )
    elif pen_kind == "r1":
        xr = real.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(_scores(critic, xr).sum(), xr, create_graph=True)
        sq = g.reshape(n, -1).pow(2).sum(1)
        penalty = 0.5 * hp["lam"] * sq.mean()
        norms = torch.sqrt(sq + 1e-12).detach()
    else:
        penalty = None
        norms = None
        if track:
            (g,) = torch.autograd.grad(scores.sum(), x, retain_graph=True)
            norms = _flat_norms(g).detach()
    if penalty is not None:
        loss = loss + penalty
        stats["penalty"] = penalty.detach()
    else:
        stats["penalty"] = _zero(loss)
    stats["w1_estimate"] = w1
    if norms is not None:
        stats["grad_norm"] = norms.mean()
    return loss, stats


def generator_loss(
    method: MethodLike, critic: nn.Module, real: Optional[torch.Tensor], fake: torch.Tensor, **hp
) -> torch.Tensor:
    r"""Loss the generator minimises; ``fake`` must carry the generator's graph.

    - WGAN methods (clip, gp, lp, div, sn): :math:`-\frac1n\sum_j f(y_j)`;
    - wgan-ct: the dual value :math:`\frac1n\sum_i f(x_i) + \frac1n\sum_j \min_i\big(\lVert x_i - y_j\rVert - f(x_i)\big)`;
      the gradient reaches the fakes through the cost (``real`` is required);
    - gan-ns: :math:`\frac1n\sum_j \mathrm{softplus}(-f(y_j)) = -\mathbb E\log D(y)`;
    - gan-mm: :math:`-\frac1n\sum_j \mathrm{softplus}(f(y_j)) = \mathbb E\log(1 - D(y))`.

    The critic's parameters receive gradients too: zero them before the next critic step (or
    freeze them with ``requires_grad_(False)`` during the generator step).

    Parameters
    ----------
    method : str or Method
    critic : torch.nn.Module
    real : torch.Tensor or None
        Real batch; used only by wgan-ct.
    fake : torch.Tensor
        Generated batch ``(n, ...)``.
    **hp
        Accepted for symmetry with ``critic_loss`` (validated, unused).

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    m = get_method(method)
    resolve_hparams(m, **hp)
    _check_critic(critic)
    if not isinstance(fake, torch.Tensor):
        raise TypeError(f"fake must be a torch.Tensor of shape (n, ...); got {type(fake).__name__}")
    if not fake.is_floating_point():
        raise TypeError(f"fake must be a floating-point tensor (e.g. torch.float32); got dtype {fake.dtype}")
    if m.uses_c_transform:
        if real is None:
            raise ValueError("method 'wgan-ct' needs the real batch: real must be a tensor, not None")
        if real.shape[1:] != fake.shape[1:]:
            raise ValueError(
                f"real and fake samples must have the same shape; got "
                f"{tuple(real.shape[1:])} and {tuple(fake.shape[1:])}"
            )
        f_r = _scores(critic, real.detach(), "real")
        return f_r.mean() + batch_c_transform(f_r, real.detach(), fake).mean()
    f_g = _scores(critic, fake, "fake")
    if m.name == "gan-ns":
        return F.softplus(-f_g).mean()
    if m.name == "gan-mm":
        return -F.softplus(f_g).mean()
    return -f_g.mean()


def after_critic_step(method: MethodLike, critic: nn.Module, **hp) -> None:
    """Apply the method's post-step constraint: clip the critic's weights for wgan-clip.

    .. math::

        w \\leftarrow \\min(\\max(w, -c), c)

    for every critic parameter (``wganbook.lipschitz.clip_weights_`` with ``c = hp["clip"]``);
    does nothing for the other methods. Call it after every critic optimiser step.

    Parameters
    ----------
    method : str or Method
    critic : torch.nn.Module
    **hp
        Hyper-parameter overrides (``clip``).
    """
    m = get_method(method)
    hp = resolve_hparams(m, **hp)
    if m.uses_clipping:
        clip_weights_(critic, hp["clip"])


def make_optimizers(
    method: MethodLike, generator: nn.Module, critic: nn.Module, **overrides
) -> Tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    r"""Build the generator's and the critic's optimisers from the method's hyper-parameters.

    ``optimizer="adam"``: ``torch.optim.Adam(lr, betas)``; ``"rmsprop"``:
    ``torch.optim.RMSprop(lr)`` (PyTorch defaults :math:`\alpha = 0.99`, eps :math:`10^{-8}`, no
    momentum). The critic uses ``lr``, the generator ``lr_g`` (``None``: same as ``lr``).

    Parameters
    ----------
    method : str or Method
    generator, critic : torch.nn.Module
    **overrides
        Hyper-parameter overrides (``resolve_hparams``).

    Returns
    -------
    (torch.optim.Optimizer, torch.optim.Optimizer)
        ``(opt_g, opt_c)``.
    """
    hp = resolve_hparams(method, **overrides)
    lr_g = hp["lr"] if hp["lr_g"] is None else hp["lr_g"]

    def build(params, lr):
        params = [p for p in params if p.requires_grad]
        if hp["optimizer"] == "adam":
            return torch.optim.Adam(params, lr=lr, betas=hp["betas"])
        return torch.optim.RMSprop(params, lr=lr)

    return build(generator.parameters(), lr_g), build(critic.parameters(), hp["lr"])


def js_estimate(critic_loss) -> "numpy.ndarray":  # noqa: F821
    r"""The Jensen-Shannon estimate of a GAN discriminator, from its (unpenalised) loss.

    For the gan-ns/gan-mm critic loss on logits :math:`f`, :math:`D = \sigma(f)`,

    .. math::

        L_D = -\frac1n\sum_i \log D(x_i) - \frac1m\sum_j \log\bigl(1 - D(y_j)\bigr),
        \qquad
        \widehat{\mathrm{JS}} = \log 2 - \tfrac12 L_D ,

    which for the optimal :math:`D^\star = p_r/(p_r + p_g)` is the Jensen-Shannon divergence
    :math:`\tfrac12\mathrm{KL}(P_r\Vert M) + \tfrac12\mathrm{KL}(P_g\Vert M)` (Goodfellow et al.
    2014, Thm. 1), so it lies in :math:`[0, \log 2]` at the optimum: 0 when the discriminator
    cannot tell the two apart (:math:`D \equiv 1/2`), :math:`\log 2` when it separates them
    perfectly. A sub-optimal discriminator gives a lower bound (and can give a negative value).
    The same quantity is ``critic_loss(...)[1]["js_estimate"]``; this function converts a
    recorded loss curve (``history["critic_loss"]`` of a run without a penalty).

    Parameters
    ----------
    critic_loss : float or array-like
        Discriminator loss value(s) :math:`L_D \ge 0`.

    Returns
    -------
    numpy.ndarray
        :math:`\log 2 - L_D / 2`, float64, of the input's shape.
    """
    import numpy as np

    loss = np.asarray(critic_loss, dtype=np.float64)
    if not np.all(np.isfinite(loss)) or np.any(loss < 0):
        raise ValueError("critic_loss must be finite and >= 0 (a GAN discriminator loss without penalty)")
    return math.log(2.0) - loss / 2

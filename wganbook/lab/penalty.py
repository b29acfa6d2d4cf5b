r"""Chapter 4's experiment helpers: the chapter's penalty settings, a static critic's estimate against
the exact W1 over its steps, and the summary of its WGAN-GP toy GANs.

The static critics themselves are fitted by :func:`wganbook.lab.critics.fit_static_critics` and
summarised by :func:`wganbook.lab.critics.static_fit_summary`; the GANs run through
:func:`wganbook.lab.sweeps.run_grid`. What is here turns their histories into the numbers the
chapter prints.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from wganbook._util import Choice, Float, Int, check_value
from wganbook.metrics import mode_centres
from wganbook.objectives import resolve_hparams
from wganbook.train.history import late_mean, late_values

__all__ = [
    "PENALTY_LABELS",
    "penalty_settings",
    "ratio_curve",
    "estimate_at",
    "toy_gan_summary",
    "mode_shares",
    "bjorck_orthonormalize",
    "BjorckLinear",
    "maxmin",
    "GroupSortCritic",
    "fit_groupsort_critic",
]

#: The two gradient penalties chapter 4 can be run with, and how the text names them.
PENALTY_LABELS = {"wgan-gp": "gradient penalty", "wgan-lp": "one-sided penalty"}


def penalty_settings(params: Mapping[str, Any]) -> Tuple[float, float, str]:
    r"""The penalty weights and the penalty's name of a chapter-4 run.

    ``lam`` (the weight of the :math:`\lambda` fits and of the image runs) is the parameter's
    value, or, when it is ``None``, the default of the chapter's penalty ``method``
    (:math:`\lambda = 10` for both ``wgan-gp`` and ``wgan-lp``, Gulrajani et al. 2017, Algorithm 1);
    ``toy_lam`` (the toy critics' and toy GANs' weight, the toy script's 0.1) is passed through.

    The chapter's parameters are checked by ``presets.validate("ch04", ...)`` (which also refuses
    a dataset that is not an image dataset); this only resolves them.

    Parameters
    ----------
    params : mapping
        The chapter's validated parameters; reads ``method``, ``lam`` and ``toy_lam``.

    Returns
    -------
    (float, float, str)
        ``lam``, ``toy_lam`` and the penalty's name (:data:`PENALTY_LABELS`).

    Raises
    ------
    ValueError
        ``method`` is not one of the two penalties (the message names the allowed values).
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of the chapter's parameters, got {type(params).__name__}")
    method = check_value("method", params.get("method"), Choice(tuple(PENALTY_LABELS)))
    lam = resolve_hparams(method, lam=params.get("lam"))["lam"]
    return float(lam), float(params.get("toy_lam")), PENALTY_LABELS[method]


def ratio_curve(history: Mapping[str, Sequence], window: int = 5) -> Tuple[np.ndarray, np.ndarray]:
    r"""A static critic's estimate over the exact W1 of the same minibatches, as a running mean.

    With the records :math:`\hat W_k` (``history["w1_estimate"]``) and :math:`W_1^{(k)}`
    (``history["w1_exact"]``) at the critic steps :math:`t_k` (``history["step"]``), the ratio
    :math:`\rho_k = \hat W_k / W_1^{(k)}` and its running mean over
    :math:`w = \min(\text{window}, n)` records,

    .. math::

        \bar\rho_k = \frac1w \sum_{j=k-w+1}^{k} \rho_j, \qquad k = w, \dots, n,

    returned at the steps :math:`t_w, \dots, t_n` (the last step of each window). A critic that
    estimates the batch :math:`W_1` exactly gives 1; a :math:`K`-Lipschitz optimal critic,
    :math:`K`.

    Parameters
    ----------
    history : dict
        A :func:`~wganbook.train.critic.fit_critic` history recorded with ``exact_w1=True``.
    window : int, optional
        Records per running mean (fewer when the history is shorter).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Steps and running-mean ratios, of length :math:`n - w + 1`.
    """
    window = check_value("window", window, Int(lo=1))
    est = np.asarray(history.get("w1_estimate", []) or [], dtype=np.float64)
    exact = np.asarray(history.get("w1_exact", []) or [], dtype=np.float64)
    steps = np.asarray(history.get("step", []) or [])
    if exact.size == 0 or est.size != exact.size or steps.size != exact.size:
        raise ValueError(
            f"history must hold as many 'step', 'w1_estimate' and 'w1_exact' records "
            f"(at least one; fit with exact_w1=True), got {steps.size}, {est.size} and "
            f"{exact.size}"
        )
    ratio = est / exact
    w = min(window, ratio.size)
    return steps[w - 1 :], np.convolve(ratio, np.ones(w) / w, mode="valid")


def estimate_at(history: Mapping[str, Sequence], step: int, key: str = "w1_estimate") -> Tuple[float, int]:
    r"""The recorded value at the last record at or before a step.

    With records :math:`v_k` of ``history[key]`` at the steps :math:`t_k` (``history["step"]``),
    the value :math:`v_{k^\ast}` and the step :math:`t_{k^\ast}` for
    :math:`k^\ast = \max\{k : t_k \le \text{step}\}`; the first record when every record lies
    after ``step``.

    Parameters
    ----------
    history : dict
        A training history with ``"step"`` and ``key``.
    step : int
        The step asked for.
    key : str, optional
        The recorded quantity (default: the critic's W1 estimate).

    Returns
    -------
    (float, int)
        The value and the step it was recorded at.
    """
    step = check_value("step", step, Int())
    steps = list(history.get("step", []) or [])
    values = list(history.get(key, []) or [])
    if not steps or len(values) != len(steps):
        raise ValueError(
            f"history must hold as many {key!r} as 'step' records (at least one), got {len(values)} and {len(steps)}"
        )
    i = max([j for j, s in enumerate(steps) if s <= step], default=0)
    return float(values[i]), int(steps[i])


def toy_gan_summary(records: Sequence[Mapping], last: int = 50) -> Dict[str, Optional[float]]:
    r"""What the chapter reports about its toy GANs (runs of :func:`wganbook.lab.sweeps.run_grid`).

    Over the runs :math:`r = 1..R` (on Gaussian-mixture toys):

    * ``"grad_norm"``: :math:`\operatorname{median}_r \operatorname{median}` of run :math:`r`'s last
      ``last`` recorded gradient norms at the penalty points (``history["grad_norm"]``);
    * ``"high_quality_last"``: the mean over the runs of the last snapshot's high-quality share
      (``metrics["high_quality"]``);
    * ``"high_quality_late"``: the mean over the runs of
      :func:`wganbook.train.history.late_mean` of ``"high_quality"`` (second half of training);

    and for the first run, on a toy of :math:`K` modes: ``"late_min"`` / ``"late_max"``, the
    smallest and largest high-quality share over its second half
    (:func:`wganbook.train.history.late_values`), ``"modes_step"``, the first evaluation step at
    which all :math:`K` modes are covered (``None`` if never), and ``"high_quality_at_modes"``,
    the high-quality share at that evaluation (``nan`` if never).

    Parameters
    ----------
    records : list of dict
        Records with ``"combo"["data"]`` (the toy), ``"metrics"["high_quality"]`` and a
        ``"history"`` with ``"grad_norm"``, ``"eval_step"``, ``"modes"`` and ``"high_quality"``.
    last : int, optional
        Gradient-norm records per run in the late median.

    Returns
    -------
    dict
    """
    last = check_value("last", last, Int(lo=1))
    if isinstance(records, (str, Mapping)) or not isinstance(records, Sequence) or not records:
        raise ValueError("records must be a non-empty list of run records")
    n_modes = int(mode_centres(records[0]["combo"]["data"])[0].shape[0])
    h = records[0]["history"]
    late = late_values(h, "high_quality")
    full = [i for i, m in enumerate(h["modes"]) if m == n_modes]
    return {
        "grad_norm": float(np.median([np.median(r["history"]["grad_norm"][-last:]) for r in records])),
        "high_quality_last": float(np.mean([r["metrics"]["high_quality"] for r in records])),
        "high_quality_late": float(np.mean([late_mean(r["history"], "high_quality") for r in records])),
        "late_min": float(late.min()),
        "late_max": float(late.max()),
        "modes_step": int(h["eval_step"][full[0]]) if full else None,
        "high_quality_at_modes": float(h["high_quality"][full[0]]) if full else float("nan"),
    }


# ---------------------------------------------------------------------------------------------
# Mode coverage of a toy GAN's samples
# ---------------------------------------------------------------------------------------------
def mode_shares(samples, dataset: str, std_threshold: float = 3.0) -> np.ndarray:
    r"""Share of all samples that sit on each mode of a Gaussian-mixture toy.

    With the centres :math:`c_1, \dots, c_K` and per-coordinate standard deviation :math:`\sigma`
    of the toy (:func:`wganbook.metrics.mode_centres`) and :math:`n` samples :math:`x_i`, the share
    of mode :math:`k` is

    .. math::

        s_k = \frac1n \bigl|\{i : k(x_i) = k,\ \lVert x_i - c_k \rVert_2 \le t\,\sigma\}\bigr|,

    with :math:`k(x)` the nearest centre and :math:`t` = ``std_threshold``. Then
    :math:`\sum_k s_k` is the high-quality share of :func:`wganbook.metrics.mode_coverage`; a
    perfect generator gives every mode :math:`(1 - e^{-t^2/2}) / K` (0.124 for the 8 Gaussians at
    :math:`t = 3`), a generator collapsed onto one mode gives the others 0. The smallest
    :math:`s_k` is therefore a collapse-aware companion of the high-quality share.

    Parameters
    ----------
    samples : torch.Tensor or numpy.ndarray, shape (n, 2)
        Generated points.
    dataset : str
        ``"8gaussians"`` or ``"25gaussians"``.
    std_threshold : float, optional
        :math:`t` (> 0).

    Returns
    -------
    numpy.ndarray, shape (K,)
        :math:`s_1, \dots, s_K`.
    """
    check_value("std_threshold", std_threshold, Float(lo=0.0, lo_open=True))
    centres, std = mode_centres(dataset)
    x = torch.as_tensor(
        np.asarray(samples.detach().cpu() if isinstance(samples, torch.Tensor) else samples), dtype=torch.float64
    )
    if x.ndim != 2 or x.shape[1] != 2 or x.shape[0] < 1:
        raise ValueError(f"samples must have shape (n, 2) with n >= 1, got {tuple(x.shape)}")
    c = torch.as_tensor(np.asarray(centres), dtype=torch.float64)
    dist = torch.cdist(x, c)
    d, nearest = dist.min(dim=1)
    good = d <= std_threshold * float(std)
    counts = torch.bincount(nearest[good], minlength=c.shape[0])
    return counts.double().numpy() / x.shape[0]


# ---------------------------------------------------------------------------------------------
# A gradient-norm-preserving critic: GroupSort (MaxMin) with orthonormal weights (Anil et al. 2019)
# ---------------------------------------------------------------------------------------------
def bjorck_orthonormalize(weight: torch.Tensor, iters: int = 15, scale: Optional[float] = None) -> torch.Tensor:
    r"""The nearest matrix with orthonormal rows or columns, by Björck's iteration.

    The weight is first divided by ``scale`` (default: its Frobenius norm, when that exceeds 1,
    so that every singular value lies in :math:`(0, 1]`), and then, for a tall matrix
    (:math:`m \ge n`),

    .. math::

        W_{k+1} = W_k \Bigl(\tfrac32 I - \tfrac12 W_k^\top W_k\Bigr),

    (for a wide one, :math:`W_{k+1} = (\tfrac32 I - \tfrac12 W_k W_k^\top) W_k`). Each step maps
    every singular value :math:`\sigma \mapsto \tfrac32\sigma - \tfrac12\sigma^3`, which converges
    to 1 for :math:`0 < \sigma < \sqrt3` and leaves the singular vectors unchanged: the limit is
    the orthonormal polar factor :math:`U V^\top` of :math:`W = U \Sigma V^\top` (Björck & Bowie
    1971; Anil, Lucas & Grosse 2019). The iteration is differentiable, so it can run inside a
    layer's forward pass.

    Parameters
    ----------
    weight : torch.Tensor, shape (m, n)
        The unconstrained weight.
    iters : int, optional
        Iterations (>= 0).
    scale : float, optional
        Divisor applied first (> 0); converges when the largest singular value of
        ``weight / scale`` is below :math:`\sqrt3`, e.g. a power-iteration estimate of the largest.

    Returns
    -------
    torch.Tensor, shape (m, n)
    """
    iters = check_value("iters", iters, Int(lo=0))
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise ValueError("weight must be a 2-D tensor")
    if scale is None:
        w = weight / weight.norm().clamp(min=1.0)
    else:
        w = weight / check_value("scale", scale, Float(lo=0.0, lo_open=True))
    tall = w.shape[0] >= w.shape[1]
    for _ in range(iters):
        if tall:
            w = 1.5 * w - 0.5 * w @ (w.T @ w)
        else:
            w = 1.5 * w - 0.5 * (w @ w.T) @ w
    return w


class BjorckLinear(nn.Linear):
    r"""A linear layer whose weight is orthonormalised by :func:`bjorck_orthonormalize` in every forward pass.

    Its map :math:`x \mapsto \tilde W x + b` has :math:`\lVert \tilde W \rVert_2 = 1` (up to the
    convergence of the iteration): it is 1-Lipschitz, and it preserves the norm of every gradient
    that lies in the span of :math:`\tilde W`'s columns. The weight is initialised orthogonal.
    """

    def __init__(self, in_features: int, out_features: int, iters: int = 6):
        super().__init__(in_features, out_features)
        self.iters = check_value("iters", iters, Int(lo=0))
        nn.init.orthogonal_(self.weight)
        nn.init.zeros_(self.bias)
        self.register_buffer("_u", torch.ones(out_features) / out_features**0.5)

    def ortho_weight(self) -> torch.Tensor:
        """The orthonormalised weight used by the forward pass.

        The weight is divided by 1.05 times a power-iteration estimate of its largest singular
        value (one step per call, its vector kept between calls, as in spectral normalisation),
        so that the singular values start in :math:`(0, 1)` and few Björck iterations suffice.
        """
        with torch.no_grad():
            w = self.weight
            v = nn.functional.normalize(w.T @ self._u, dim=0)
            u = nn.functional.normalize(w @ v, dim=0)
            if self.training:
                self._u.copy_(u)
            sigma = float(u @ w @ v)
        return bjorck_orthonormalize(self.weight, self.iters, scale=1.05 * max(sigma, 1e-12))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.ortho_weight(), self.bias)


def maxmin(x: torch.Tensor) -> torch.Tensor:
    r"""GroupSort with groups of two (MaxMin): each pair :math:`(a, b)` of units becomes :math:`(\max, \min)`.

    A permutation of its input on each linear piece, so its Jacobian is a permutation matrix and
    it preserves every gradient norm (Anil et al. 2019); ReLU zeroes the gradient of inactive units.
    """
    if x.shape[-1] % 2:
        raise ValueError(f"maxmin needs an even number of units, got {x.shape[-1]}")
    a, b = x.unflatten(-1, (-1, 2)).unbind(-1)
    return torch.stack((torch.maximum(a, b), torch.minimum(a, b)), dim=-1).flatten(-2)


class GroupSortCritic(nn.Module):
    r"""A gradient-norm-preserving MLP critic: orthonormal layers with MaxMin activations (Anil et al. 2019).

    .. math::

        f(x) = \tilde w_{L}^\top\, \mathrm{MaxMin}\bigl(\tilde W_{L-1} \cdots
        \mathrm{MaxMin}(\tilde W_1 x + b_1) \cdots + b_{L-1}\bigr) + b_L,

    with every :math:`\tilde W_\ell` orthonormalised (:class:`BjorckLinear`). Each layer is
    1-Lipschitz, so :math:`f` is; unlike a ReLU network with spectrally normalised layers, on
    each linear piece the input gradient is
    :math:`\nabla f = \tilde W_1^\top P_1 \tilde W_2^\top \cdots P_{L-1} \tilde w_L` with
    permutations :math:`P_\ell`, so its norm is 1 whenever the back-propagated vector lies in the
    span of the first layer's rows; training can reach slope 1 everywhere.

    Parameters
    ----------
    in_dim : int
        Input dimension.
    width : int, optional
        Hidden units per layer (even).
    depth : int, optional
        Hidden layers (>= 1).
    iters : int, optional
        Björck iterations per forward pass.
    """

    def __init__(self, in_dim: int = 2, width: int = 128, depth: int = 3, iters: int = 6):
        super().__init__()
        in_dim = check_value("in_dim", in_dim, Int(lo=1))
        width = check_value("width", width, Int(lo=2))
        depth = check_value("depth", depth, Int(lo=1))
        if width % 2:
            raise ValueError(f"width must be even (MaxMin pairs units), got {width}")
        dims = [in_dim] + [width] * depth + [1]
        self.layers = nn.ModuleList(BjorckLinear(a, b, iters) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The score of each sample: MaxMin after every orthonormal layer but the last, then the last layer."""
        h = x.flatten(1)
        for layer in self.layers[:-1]:
            h = maxmin(layer(h))
        return self.layers[-1](h)


def fit_groupsort_critic(
    dataset: str,
    steps: int,
    batch_size: int = 64,
    seed: int = 0,
    width: int = 128,
    depth: int = 3,
    iters: int = 6,
    record_every: Optional[int] = None,
    exact_w1: bool = False,
    label: str = "GroupSort",
):
    r"""Train a :class:`GroupSortCritic` against the fixed generator, as the spectrally normalised critic is trained.

    The same setting as :func:`wganbook.lab.critics.fit_static_critics` for ``"wgan-sn"``: the
    WGAN critic loss :math:`\bar f(y) - \bar f(x)` without penalty, Adam :math:`10^{-4}`,
    :math:`\beta = (0.5, 0.9)`, the data against data plus unit noise
    (:func:`wganbook.lab.critics.fixed_generator`) with the same seed, hence the same
    minibatches; only the network differs. The history's ``"grad_norm"`` is the mean
    input-gradient norm at the real and fake points of each recorded step.

    Parameters
    ----------
    dataset : str
        A toy dataset.
    steps : int
        Critic steps.
    batch_size, seed, record_every, exact_w1
        As in :func:`~wganbook.lab.critics.fit_static_critics`.
    width, depth, iters : int, optional
        The critic's size and Björck iterations (:class:`GroupSortCritic`).
    label : str, optional
        The fit's label.

    Returns
    -------
    wganbook.lab.critics.StaticFit
    """
    import time

    from wganbook import data as wdata
    from wganbook.lab.critics import StaticFit, fixed_generator
    from wganbook.train.critic import fit_critic

    if not wdata.is_toy(dataset):
        raise ValueError(f"unknown dataset {dataset!r}; dataset must be one of: {', '.join(wdata.TOY_DATASETS)}")
    steps = check_value("steps", steps, Int(lo=1))
    wdata.seed_everything(seed)
    critic = GroupSortCritic(2, width=width, depth=depth, iters=iters)
    real, fake = fixed_generator(dataset, seed=seed)
    every = max(1, steps // 20) if record_every is None else record_every
    t0 = time.perf_counter()
    hist = fit_critic(
        "wgan-sn",
        critic,
        real,
        fake,
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        record_every=every,
        exact_w1=exact_w1,
    )
    wall = time.perf_counter() - t0
    critic.eval()
    ev_real, ev_fake = fixed_generator(dataset, seed=seed + 1)
    return StaticFit(
        label=label,
        dataset=dataset,
        method="wgan-sn",
        critic=critic,
        history=hist,
        real=ev_real(512),
        fake=ev_fake(512),
        hparams={"width": width, "depth": depth, "iters": iters, "activation": "maxmin"},
        wall_time=wall,
    )

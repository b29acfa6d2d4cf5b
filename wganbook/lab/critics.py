"""Chapters 3 and 4's critic experiments: static critics against a fixed generator, their summaries, the method variants and the critic-overfitting run."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from wganbook import data as wdata
from wganbook import lipschitz, models
from wganbook.lab.sweeps import map_runs
from wganbook.metrics import generate
from wganbook.models import make_critic
from wganbook.objectives import get_method
from wganbook.train.config import TrainConfig
from wganbook.train.critic import fit_critic
from wganbook.train.loop import train

__all__ = [
    "fixed_generator",
    "StaticFit",
    "shrink_into_box_",
    "fit_static_critics",
    "SampleSnapshots",
    "static_fit_summary",
    "METHOD_LABELS",
    "method_variants",
    "critic_overfitting",
]


# ---------------------------------------------------------------------------------------------
# Critics trained to optimality against a fixed "generator" (WGAN-GP Fig. 1)
# ---------------------------------------------------------------------------------------------
def fixed_generator(dataset: str, noise: float = 1.0, seed: int = 0) -> Tuple[Callable, Callable]:
    r"""Samplers of a 2-D toy and of the fixed "generator" of WGAN-GP Fig. 1: data plus noise.

    .. math::

        x \sim P_r, \qquad y = x' + \sigma\,\xi,\quad x' \sim P_r,\ \xi \sim \mathcal N(0, I_2)

    with :math:`\sigma` = ``noise`` (1 in ``gan_toy.py``'s ``FIXED_GENERATOR``); :math:`x` and
    :math:`x'` are independent. Both samplers draw from one private, seeded random stream, so a
    fit that uses them is reproducible and leaves the global random state alone.

    Parameters
    ----------
    dataset : str
        A toy dataset name (``wganbook.data.TOY_DATASETS``).
    noise : float, optional
        Standard deviation :math:`\sigma \ge 0` of the added noise.
    seed : int, optional
        Seed of the private stream.

    Returns
    -------
    (callable, callable)
        ``real(n)`` and ``fake(n)``, each returning an ``(n, 2)`` float32 tensor.
    """

    if not isinstance(dataset, str) or not wdata.is_toy(dataset):
        raise ValueError(f"unknown dataset {dataset!r}; dataset must be one of: {', '.join(wdata.TOY_DATASETS)}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise ValueError(f"noise must be a float >= 0, got {noise!r}")
    gen = torch.Generator().manual_seed(int(seed))

    def real(n: int) -> torch.Tensor:
        return wdata.sample_toy(dataset, n, generator=gen)

    def fake(n: int) -> torch.Tensor:
        x = wdata.sample_toy(dataset, n, generator=gen)
        return x + float(noise) * torch.randn(n, 2, generator=gen)

    return real, fake


@dataclass
class StaticFit:
    """One critic fitted by :func:`fit_static_critics`.

    Attributes
    ----------
    label : str
        The variant's label.
    dataset : str
        The toy dataset.
    method : str
        The method whose critic loss was minimised.
    critic : torch.nn.Module
        The fitted critic (in ``eval`` mode).
    history : dict
        What :func:`~wganbook.train.critic.fit_critic` recorded.
    real, fake : torch.Tensor
        Fresh evaluation samples of the two distributions, ``(n_points, 2)``.
    hparams : dict
        The settings of the variant (method hyper-parameters and architecture).
    wall_time : float
        Seconds spent fitting.
    """

    label: str
    dataset: str
    method: str
    critic: Any
    history: Dict[str, list]
    real: torch.Tensor
    fake: torch.Tensor
    hparams: Dict[str, Any] = field(default_factory=dict)
    wall_time: float = 0.0


_ARCH_KEYS = ("width", "depth", "norm", "activation", "inside_box")


def shrink_into_box_(module, c: float) -> None:
    r"""Rescale each parameter tensor in place so that its largest entry is :math:`0.999\,c`.

    .. math::

        W \leftarrow \frac{0.999\, c}{\max_{ij} \lvert W_{ij} \rvert}\, W

    for every parameter tensor :math:`W` (zero tensors are left alone). The initialisation's shape is
    kept, but every weight is strictly inside the clipping box :math:`(-c, c)`, so that weights found at
    :math:`\pm c` after training got there by training, not by the first clip.

    Parameters
    ----------
    module : torch.nn.Module
        Modified in place.
    c : float
        Clipping bound, ``c > 0``.
    """
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
        raise ValueError(f"c must be a float > 0, got {c!r}")
    critic = module
    with torch.no_grad():
        for p in critic.parameters():
            m = float(p.abs().max()) if p.numel() else 0.0
            if m > 0:
                p.mul_(0.999 * c / m)


def fit_static_critics(
    variants: Mapping[str, Mapping[str, Any]],
    datasets: Sequence[str],
    steps: int,
    batch_size: int = 256,
    seed: int = 0,
    noise: float = 1.0,
    n_points: int = 512,
    width: Optional[int] = None,
    depth: Optional[int] = None,
    record_every: Optional[int] = None,
    exact_w1: bool = False,
    device=None,
    workers: Optional[int] = None,
) -> Dict[Tuple[str, str], StaticFit]:
    r"""Train critics of several methods "to optimality" against a fixed generator, per toy dataset.

    For every variant and dataset a fresh critic ``make_critic(dataset, width, depth,
    spectral=<method default>)`` minimises its method's critic loss

    .. math::

        L_C = \mathbb E_{y \sim Q} f(y) - \mathbb E_{x \sim P_r} f(x) + \text{penalty}

    for ``steps`` steps of ``wganbook.train.fit_critic`` with :math:`Q` = data + unit Gaussian
    noise (:func:`fixed_generator`), the setting of WGAN-GP Fig. 1a. Every fit uses the same
    seed, so variants see the same minibatches.

    Parameters
    ----------
    variants : dict of str to dict
        Label -> settings: ``"method"`` (required), method hyper-parameters passed to
        ``fit_critic`` (``lr``, ``betas``, ``lam``, ``clip``, ``optimizer``, ...), and
        optionally ``steps`` and ``datasets`` (this variant's own number of steps and toys),
        architecture keys ``width``,
        ``depth``, ``norm``, ``activation``, and
        ``inside_box=True`` (clipping only): shrink every initial parameter tensor into
        :math:`(-c, c)` before training, so that weights reaching :math:`\pm c` are the effect of
        training, not of the first clip.
    datasets : list of str
        Toy dataset names.
    steps : int
        Critic steps per fit.
    batch_size : int, optional
        Minibatch size.
    seed : int, optional
        Seed of the data stream, the critic's initialisation and the penalty points.
    noise : float, optional
        Standard deviation of the fixed generator's noise.
    n_points : int, optional
        Size of the stored evaluation samples ``real`` / ``fake``.
    width, depth : int, optional
        Default critic size for variants that do not set their own.
    record_every : int, optional
        Passed to ``fit_critic`` (default: every ``steps // 20`` steps).
    exact_w1 : bool, optional
        Also record the exact W1 of the minibatches.
    device : str, optional
        Device of the fits (default CPU).
    workers : int, optional
        Worker processes for the fits, which are independent (:func:`~wganbook.lab.sweeps.map_runs`; ``None``: the
        usable cores, ``1``: one after the other here). The fits are the same either way.

    Returns
    -------
    dict
        ``(label, dataset) -> StaticFit``, in the order variants x datasets.
    """

    if not isinstance(variants, Mapping) or not variants:
        raise TypeError("variants must be a non-empty dict of label -> settings (with a 'method')")
    if isinstance(datasets, str):
        datasets = [datasets]
    for ds in datasets:
        if not wdata.is_toy(ds):
            raise ValueError(f"unknown dataset {ds!r}; dataset must be one of: {', '.join(wdata.TOY_DATASETS)}")
    tasks = []
    for label, settings in variants.items():
        if not isinstance(settings, Mapping) or "method" not in settings:
            raise ValueError(f"variant {label!r} must be a dict with a 'method' key")
        settings = dict(settings)
        method = settings.pop("method")
        m = get_method(method)
        n_steps = settings.pop("steps", steps)
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
            raise ValueError(f"variant {label!r}: steps must be an int >= 1, got {n_steps!r}")
        arch = {k: settings.pop(k) for k in _ARCH_KEYS if k in settings}
        inside = bool(arch.pop("inside_box", False))
        hp = settings
        c = None
        if inside:
            c = hp.get("clip") or m.defaults.get("clip")
            if not c:
                raise ValueError(f"variant {label!r}: inside_box needs a clipping method (clip), got {method!r}")
        own = settings.pop("datasets", None)
        own = datasets if own is None else ([own] if isinstance(own, str) else list(own))
        for ds in own:
            if not wdata.is_toy(ds):
                raise ValueError(
                    f"variant {label!r}: unknown dataset {ds!r}; dataset must be one of: "
                    f"{', '.join(wdata.TOY_DATASETS)}"
                )
        every = max(1, int(n_steps) // 20) if record_every is None else record_every
        for ds in own:
            tasks.append(
                _StaticTask(
                    label=label,
                    dataset=ds,
                    method=method,
                    hp=hp,
                    arch=arch,
                    clip_box=c,
                    spectral=bool(m.defaults.get("spectral", False)),
                    steps=int(n_steps),
                    batch_size=batch_size,
                    seed=seed,
                    noise=noise,
                    n_points=n_points,
                    width=width,
                    depth=depth,
                    record_every=every,
                    exact_w1=exact_w1,
                    device=device,
                )
            )
    done = map_runs(
        _fit_static,
        tasks,
        workers=workers,
        device=device,
        describe=lambda t: f"static critic {t.label!r} on {t.dataset}",
    )
    return {(f.label, f.dataset): f for f in done}


@dataclass
class _StaticTask:
    """One fit of :func:`fit_static_critics` (pickled to a worker)."""

    label: str
    dataset: str
    method: str
    hp: dict
    arch: dict
    clip_box: Optional[float]
    spectral: bool
    steps: int
    batch_size: int
    seed: int
    noise: float
    n_points: int
    width: Optional[int]
    depth: Optional[int]
    record_every: int
    exact_w1: bool
    device: Any


def _fit_static(t: _StaticTask) -> StaticFit:
    """Fit one static critic of :func:`fit_static_critics`."""

    wdata.seed_everything(t.seed)
    arch = t.arch
    critic = make_critic(
        t.dataset,
        width=arch.get("width", t.width),
        depth=arch.get("depth", t.depth),
        norm=arch.get("norm", "none"),
        activation=arch.get("activation"),
        spectral=t.spectral,
    )
    if t.clip_box is not None:
        shrink_into_box_(critic, float(t.clip_box))
    if t.device is not None:
        critic.to(t.device)
    real, fake = fixed_generator(t.dataset, noise=t.noise, seed=t.seed)
    t0 = time.perf_counter()
    hist = fit_critic(
        t.method,
        critic,
        real,
        fake,
        steps=t.steps,
        batch_size=t.batch_size,
        seed=t.seed,
        record_every=t.record_every,
        exact_w1=t.exact_w1,
        **t.hp,
    )
    wall = time.perf_counter() - t0
    critic.eval()
    ev_real, ev_fake = fixed_generator(t.dataset, noise=t.noise, seed=t.seed + 1)
    return StaticFit(
        label=t.label,
        dataset=t.dataset,
        method=t.method,
        critic=critic,
        history=hist,
        real=ev_real(t.n_points),
        fake=ev_fake(t.n_points),
        hparams=dict(t.hp, **arch, inside_box=t.clip_box is not None),
        wall_time=wall,
    )


# ---------------------------------------------------------------------------------------------
# Samples during training
# ---------------------------------------------------------------------------------------------
class SampleSnapshots:
    r"""An ``eval_fn`` for :class:`~wganbook.train.config.TrainConfig` that keeps samples along training.

    At every generator step in ``at`` it stores :math:`G(z_1), \dots, G(z_n)` for one fixed set of
    latent codes (``wganbook.metrics.generate(generator, n, seed)``), so that snapshots differ only
    through training. Use with ``TrainConfig(eval_every=e, eval_fn=snaps)`` where ``e`` divides
    every entry of ``at`` (e.g. ``snaps.eval_every``).

    Parameters
    ----------
    at : list of int
        Generator steps (>= 1) at which to keep samples.
    n : int, optional
        Samples per snapshot.
    seed : int, optional
        Seed of the fixed latent codes.
    metric : callable, optional
        ``metric(samples) -> float or dict``; its value is returned to the training loop (and so
        recorded in the history) at the snapshot steps.

    Attributes
    ----------
    steps : list of int
        Steps at which samples were kept.
    samples : list of torch.Tensor
        The samples (CPU).
    """

    def __init__(self, at: Sequence[int], n: int = 512, seed: int = 0, metric: Optional[Callable] = None):
        at = sorted(set(int(a) for a in at))
        if not at or at[0] < 1:
            raise ValueError(f"at must be a non-empty list of steps >= 1, got {at!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        self.at = at
        self.n = n
        self.seed = int(seed)
        self.metric = metric
        self.steps: List[int] = []
        self.samples: List[torch.Tensor] = []

    @property
    def eval_every(self) -> int:
        """The largest cadence that hits every step of ``at`` (their greatest common divisor)."""
        return math.gcd(*self.at) if len(self.at) > 1 else self.at[0]

    def __call__(self, generator, step: int):
        """Keep samples if ``step`` is in ``at``; return the metric (or ``{}``)."""
        if int(step) not in self.at:
            return {}

        x = generate(generator, self.n, seed=self.seed)
        self.steps.append(int(step))
        self.samples.append(x)
        if self.metric is None:
            return {}
        return self.metric(x)


# ---------------------------------------------------------------------------------------------
# Chapter 4: summaries of static critics, method variants, critic overfitting (WGAN-GP Fig. 5b)
# ---------------------------------------------------------------------------------------------
def static_fit_summary(fit: StaticFit, last: int = 5, seed: int = 0) -> Dict[str, float]:
    r"""What a fitted static critic measures: its estimate, slopes and certified bound.

    With :math:`f` the critic of ``fit``, :math:`x_i` / :math:`y_i` its stored real / fake
    evaluation samples and :math:`\hat x_i = \varepsilon_i x_i + (1 - \varepsilon_i) y_i`,
    :math:`\varepsilon_i \sim U[0, 1]` (seeded by ``seed``):

    * ``"estimate"``: the mean of the last ``last`` recorded W1 estimates
      :math:`\bar f(x) - \bar f(y)` of the fit's minibatches;
    * ``"exact batch W1"``: the mean of the last ``last`` exact minibatch W1 (only when recorded);
    * ``"empirical Lipschitz"``: :func:`wganbook.lipschitz.empirical_lipschitz` over all pairs of
      the :math:`2n` points :math:`x \cup y`;
    * ``"median grad norm"``: the median of :math:`\lVert\nabla f(\hat x_i)\rVert`;
    * ``"certified bound"``: :math:`\prod_\ell \sigma(W_\ell)`, an upper bound on the Lipschitz
      constant of a network of 1-Lipschitz activations.

    Parameters
    ----------
    fit : wganbook.lab.critics.StaticFit
    last : int, optional
        Number of final records averaged, ``>= 1``.
    seed : int, optional
        Seed of the interpolation weights.

    Returns
    -------
    dict of str to float
    """

    if not isinstance(fit, StaticFit):
        raise TypeError(f"fit must be a StaticFit (from fit_static_critics), got {type(fit).__name__}")
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise ValueError(f"last must be an int >= 1, got {last!r}")
    pts = lipschitz.sample_penalty_points(
        fit.real, fit.fake, "real-fake", generator=torch.Generator().manual_seed(int(seed))
    )
    out = {"estimate": float(np.mean(fit.history["w1_estimate"][-last:]))}
    if fit.history.get("w1_exact"):
        out["exact batch W1"] = float(np.mean(fit.history["w1_exact"][-last:]))
    out["empirical Lipschitz"] = lipschitz.empirical_lipschitz(fit.critic, torch.cat([fit.real, fit.fake]))
    out["median grad norm"] = float(lipschitz.input_gradient_norms(fit.critic, pts).median())
    out["certified bound"] = float(np.prod(lipschitz.spectral_norms(fit.critic)))
    return out


#: Short names of the methods in tables and figures.
METHOD_LABELS = {"wgan-clip": "clipping", "wgan-gp": "GP", "wgan-lp": "LP", "wgan-sn": "SN", "wgan-div": "div"}


def method_variants(
    methods: Sequence[str],
    lr_scale: float = 1.0,
    lam: Optional[float] = None,
    labels: Optional[Mapping[str, str]] = None,
) -> List[dict]:
    r"""Grid entries (for :func:`~wganbook.lab.sweeps.run_grid`) of several methods at their published learning rates.

    Method :math:`m` gets ``{"name": label, "method": m, "lr": lr_m * lr_scale}`` with
    :math:`lr_m` its published learning rate (``objectives.get_method(m).defaults["lr"]``), and
    ``"lam": lam`` for the gradient penalties (``wgan-gp``, ``wgan-lp``) when ``lam`` is given.

    Parameters
    ----------
    methods : list of str
        Method names.
    lr_scale : float, optional
        Factor on every published learning rate, ``> 0``.
    lam : float, optional
        Penalty weight of the gradient penalties (``None``: their defaults).
    labels : mapping, optional
        Method -> name (default :data:`METHOD_LABELS`, else the method name).

    Returns
    -------
    list of dict
    """

    if isinstance(methods, str) or not isinstance(methods, Sequence) or not methods:
        raise TypeError("methods must be a non-empty list of method names")
    if isinstance(lr_scale, bool) or not isinstance(lr_scale, (int, float)) or not lr_scale > 0:
        raise ValueError(f"lr_scale must be a float > 0, got {lr_scale!r}")
    names = dict(METHOD_LABELS, **(labels or {}))
    out = []
    for m in methods:
        entry = {"name": names.get(m, m), "method": m, "lr": float(get_method(m).defaults["lr"]) * float(lr_scale)}
        if lam is not None and m in ("wgan-gp", "wgan-lp"):
            entry["lam"] = float(lam)
        out.append(entry)
    return out


@dataclass
class _HeldoutEstimates:
    """``eval_fn`` of :func:`critic_overfitting`: the critic's estimate on two real sets."""

    critic: Any
    train_set: torch.Tensor
    heldout: torch.Tensor
    n_fake: int
    seed: int

    def __call__(self, generator, step: int) -> Dict[str, float]:

        fake = generate(generator, self.n_fake, seed=self.seed)
        was = self.critic.training
        self.critic.eval()
        try:
            with torch.no_grad():
                dev = next(self.critic.parameters()).device
                f_fake = float(self.critic(fake.to(dev)).mean())
                f_train = float(self.critic(self.train_set.to(dev)).mean())
                f_held = float(self.critic(self.heldout.to(dev)).mean())
        finally:
            self.critic.train(was)
        return {"estimate_train": f_train - f_fake, "estimate_heldout": f_held - f_fake}


def critic_overfitting(
    config: Mapping[str, Any],
    train_set: torch.Tensor,
    heldout: torch.Tensor,
    eval_every: int,
    n_fake: int = 500,
    checkpoint_root=None,
):
    r"""Train a GAN on a small training set and follow its critic on held-out data (WGAN-GP Fig. 5b).

    Every ``eval_every`` generator steps the critic :math:`f` is scored on the whole training
    set :math:`T`, on real samples :math:`H` it never saw, and on ``n_fake`` generated samples
    :math:`\tilde X` (fixed noise):

    .. math::

        \hat W_T = \bar f(T) - \bar f(\tilde X), \qquad \hat W_H = \bar f(H) - \bar f(\tilde X).

    A critic that generalises scores both real sets alike (:math:`\hat W_T \approx \hat W_H`);
    one that memorises the training set scores it higher, so the gap
    :math:`\hat W_T - \hat W_H` grows (WGAN-GP Fig. 5b shows it on 1000 MNIST digits).

    Parameters
    ----------
    config : dict
        ``TrainConfig`` keyword arguments (``method``, ``data``, ``steps``, ``seed``, ...);
        must not set ``eval_every`` or ``eval_fn``.
    train_set : torch.Tensor
        The real data the GAN trains on.
    heldout : torch.Tensor
        Real samples of the same distribution, not in ``train_set``.
    eval_every : int
        Generator steps between evaluations.
    n_fake : int, optional
        Generated samples per evaluation.
    checkpoint_root : str or path-like, optional
        Passed to :func:`~wganbook.train.loop.train`: the run checkpoints in a folder of its own under it
        and resumes there when called again.

    Returns
    -------
    wganbook.train.TrainResult
        Its ``history`` has ``"eval_step"``, ``"estimate_train"`` and ``"estimate_heldout"``.
    """

    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict of TrainConfig arguments, got {type(config).__name__}")
    for key in ("eval_every", "eval_fn"):
        if key in config:
            raise ValueError(f"config must not set {key!r}; critic_overfitting sets it")
    for name, t in (("train_set", train_set), ("heldout", heldout)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.shape[0] < 1:
            raise TypeError(f"{name} must be a non-empty floating-point torch.Tensor")
    if train_set.shape[1:] != heldout.shape[1:]:
        raise ValueError(
            f"train_set and heldout must have the same sample shape, got "
            f"{tuple(train_set.shape[1:])} and {tuple(heldout.shape[1:])}"
        )
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be an int >= 1, got {eval_every!r}")
    if isinstance(n_fake, bool) or not isinstance(n_fake, int) or n_fake < 1:
        raise ValueError(f"n_fake must be an int >= 1, got {n_fake!r}")
    probe = TrainConfig(**config)  # validates the configuration before any work
    spectral = bool(get_method(probe.method).defaults.get("spectral", False))
    wdata.seed_everything(probe.seed)
    generator = models.make_generator(probe.data, z_dim=probe.z_dim, width=probe.width, depth=probe.depth)
    critic = models.make_critic(probe.data, width=probe.width, depth=probe.depth, norm=probe.norm, spectral=spectral)
    ev = _HeldoutEstimates(critic, train_set.detach(), heldout.detach(), n_fake, probe.seed + 1)
    cfg = TrainConfig(**dict(config), eval_every=eval_every, eval_fn=ev)
    return train(cfg, data=train_set, generator=generator, critic=critic, checkpoint_root=checkpoint_root)

"""The configuration of a training run, checked once when it is made."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import nn

from wganbook import objectives
from wganbook import schema as P
from wganbook._util import Bool, Choice, Float, Int, Spec, check_value
from wganbook.data import TOY_DATASETS

__all__ = [
    "TOY_OVERRIDES",
    "DEFAULT_BATCH_SIZE",
    "FIELD_SPECS",
    "METRICS",
    "toy_overrides",
    "TrainConfig",
    "TrainResult",
]

#: Hyper-parameters of ``gan_toy.py`` (WGAN-GP's toy script) applied on top of a method's
#: paper defaults when the data is a 2-D toy: ``"*"`` applies to every method. Explicit
#: ``TrainConfig`` values win over these.
TOY_OVERRIDES: Dict[str, Dict[str, Any]] = {
    "*": {"batch_size": 256},
    "wgan-gp": {"lam": 0.1, "betas": (0.5, 0.9)},
    "wgan-lp": {"lam": 0.1, "betas": (0.5, 0.9)},
}

#: Batch size when neither the config nor the toy overrides give one (WGAN / WGAN-GP papers).
DEFAULT_BATCH_SIZE = 64

#: Built-in periodic metrics (``TrainConfig.metric``).
METRICS = ("modes", "w1_target", "fd")

_HP_KEYS = ("optimizer", "lr", "lr_g", "betas", "n_critic", "lam", "center", "clip", "k", "p", "strategy", "penalty")


def toy_overrides(method: str) -> Dict[str, Any]:
    """Hyper-parameters of the toy script that replace the paper defaults on 2-D toys.

    Parameters
    ----------
    method : str
        Method name.

    Returns
    -------
    dict
        ``TOY_OVERRIDES["*"]`` updated with ``TOY_OVERRIDES[method]`` (e.g. for ``wgan-gp``:
        batch 256, :math:`\\lambda = 0.1`, Adam betas (0.5, 0.9)).
    """
    out = dict(TOY_OVERRIDES.get("*", {}))
    out.update(TOY_OVERRIDES.get(method, {}))
    return out


_S = P.SCHEMA

#: Every checked field of :class:`TrainConfig` and its constraint: the schema's entry
#: (``wganbook.schema.SCHEMA``) where the name is shared, else its own. Checked in this order.
FIELD_SPECS: Dict[str, Spec] = {
    "method": _S["method"],
    "data": _S["dataset"],
    "steps": _S["steps"],
    "batch_size": _S["batch_size"],
    "n_critic": _S["n_critic"],
    "lr": _S["lr"],
    "lr_g": _S["lr"],
    "optimizer": Choice(("adam", "rmsprop"), none_ok=True),
    "betas": _S["betas"],
    "lam": _S["lam"],
    "center": Float(lo=0.0, none_ok=True),
    "penalty": Choice(("none", "gp", "r1"), none_ok=True),
    "clip": _S["clip"],
    "k": _S["k"],
    "p": _S["p"],
    "strategy": _S["strategy"],
    "seed": _S["seed"],
    "device": _S["device"],
    "width": _S["width"],
    "depth": _S["depth"],
    "z_dim": _S["z_dim"],
    "norm": Choice(("none", "layer", "batch")),
    "warmup": _S["warmup"],
    "fixed_generator": Bool(),
    "w1_every": _S["w1_every"],
    "eval_every": _S["eval_every"],
    "metric": Choice(METRICS, none_ok=True),
    "eval_n": Int(lo=2),
    "log_every": _S["log_every"],
    "checkpoint_every": _S["checkpoint_every"],
    "progress": Bool(none_ok=True),
    "toy_defaults": Bool(),
    "track_grad_norm": Bool(),
}


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    r"""Everything a training run needs; validated on construction.

    Hyper-parameters left at ``None`` take the method's defaults
    (``wganbook.objectives.resolve_hparams``), with the toy-script values of
    ``TOY_OVERRIDES`` on top when ``data`` is a 2-D toy and ``toy_defaults`` is true.

    Parameters
    ----------
    method : str
        A key of ``wganbook.objectives.METHODS``.
    data : str
        A dataset name (2-D toy or image dataset); also chooses the architectures.
    steps : int
        Number of generator steps (>= 1).
    batch_size, n_critic : int, optional
        Minibatch size (default 256 on toys, else 64) and critic steps per generator step.
    lr : float, optional
        Learning rate (> 0) of the critic and, unless ``lr_g`` is set, of the generator.
    lr_g : float, optional
        Generator learning rate.
    optimizer : str, optional
        ``"adam"`` or ``"rmsprop"``.
    betas : tuple of float, optional
        Adam betas.
    lam : float, optional
        Penalty weight :math:`\lambda \ge 0`.
    center : float, optional
        Target gradient norm of the gradient penalty (1 in WGAN-GP).
    penalty : str, optional
        Penalty of the GAN baselines (``gan-ns``, ``gan-mm``): ``"none"``, ``"gp"`` or ``"r1"``.
    clip : float, optional
        Weight-clipping bound :math:`c > 0` (``wgan-clip``).
    k, p : float, optional
        WGAN-div penalty :math:`k\,\mathbb E\lVert\nabla f\rVert^p`.
    strategy : str, optional
        Where penalties are evaluated (``wganbook.lipschitz.SAMPLING_STRATEGIES``).
    seed : int
        Seed of everything (``wganbook.data.seed_everything``).
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
    width, depth, z_dim : int, optional
        Model size (``None``: ``wganbook.models`` defaults for the data).
    norm : str
        Critic normalisation: ``"none"``, ``"layer"`` or ``"batch"``.
    warmup : bool, optional
        WGAN's schedule: 100 critic steps for the first 25 generator steps and every 500th
        (``None``: on for ``wgan-clip`` only).
    fixed_generator : bool
        Never update the generator: the critic is trained against a fixed fake distribution.
    w1_every : int
        Exact batch W1 of the current real/fake batches every that many steps (0: off).
    eval_every : int
        Evaluate ``eval_fn`` or ``metric`` every that many steps (0: off).
    metric : str, optional
        Built-in metric: ``"modes"`` (mode coverage), ``"w1_target"`` (exact W1 to the toy target)
        or ``"fd"`` (classifier Fréchet distance, images); default by data.
    eval_fn : callable, optional
        ``eval_fn(generator, step) -> float or dict of floats`` (replaces ``metric``).
    eval_n : int
        Samples used by the built-in metrics.
    log_every : int
        Host copies of the statistics (and NaN checks) every that many steps.
    checkpoint_dir : str, optional
        Folder of the checkpoint file (``checkpoint.pt``).
    checkpoint_every : int
        Checkpoint every that many steps (0: only at the end when ``checkpoint_dir`` is set).
    progress : bool, optional
        tqdm progress bar on stderr; ``None``: only when stderr is a terminal and
        ``TQDM_DISABLE`` is unset (so never in stored notebook outputs).
    toy_defaults : bool
        Apply ``TOY_OVERRIDES`` on 2-D toys.
    track_grad_norm : bool
        For methods without a penalty, compute the ``"grad_norm"`` column (mean input-gradient
        norm at the real and fake points) with one extra backward pass per critic step (about
        doubles its cost); off, the column holds NaN. Penalised methods always report the mean
        norm at their penalty points, for free.
    """

    method: str = "wgan-gp"
    data: str = "8gaussians"
    steps: int = 1000
    batch_size: Optional[int] = None
    n_critic: Optional[int] = None
    lr: Optional[float] = None
    lr_g: Optional[float] = None
    optimizer: Optional[str] = None
    betas: Optional[Tuple[float, float]] = None
    lam: Optional[float] = None
    center: Optional[float] = None
    penalty: Optional[str] = None
    clip: Optional[float] = None
    k: Optional[float] = None
    p: Optional[float] = None
    strategy: Optional[str] = None
    seed: int = 0
    device: str = "auto"
    width: Optional[int] = None
    depth: Optional[int] = None
    z_dim: Optional[int] = None
    norm: str = "none"
    warmup: Optional[bool] = None
    fixed_generator: bool = False
    w1_every: int = 0
    eval_every: int = 0
    metric: Optional[str] = None
    eval_fn: Optional[Callable] = field(default=None, repr=False, compare=False)
    eval_n: int = 1000
    log_every: int = 50
    checkpoint_dir: Optional[str] = None
    checkpoint_every: int = 0
    progress: Optional[bool] = None
    toy_defaults: bool = True
    track_grad_norm: bool = False

    def __post_init__(self):
        if isinstance(self.device, torch.device):
            self.device = str(self.device)
        for name, spec in FIELD_SPECS.items():
            setattr(self, name, check_value(name, getattr(self, name), spec))
        if self.eval_fn is not None and not callable(self.eval_fn):
            raise TypeError(
                f"eval_fn must be callable (generator, step) -> float or dict, got {type(self.eval_fn).__name__}"
            )
        if self.checkpoint_dir is not None:
            if not isinstance(self.checkpoint_dir, (str, os.PathLike)):
                raise TypeError(f"checkpoint_dir must be a str or path, got {type(self.checkpoint_dir).__name__}")
            self.checkpoint_dir = os.fspath(self.checkpoint_dir)
        self._check_combination()

    def _check_combination(self) -> None:

        is_toy = self.data in TOY_DATASETS
        if self.metric == "modes" and self.data not in ("8gaussians", "25gaussians"):
            raise ValueError(
                "metric 'modes' needs data with discrete modes; data must be one of: 8gaussians, 25gaussians"
            )
        if self.metric == "w1_target" and not is_toy:
            raise ValueError(f"metric 'w1_target' needs a 2-D toy; data must be one of: {', '.join(TOY_DATASETS)}")
        if self.metric == "fd" and is_toy:
            raise ValueError("metric 'fd' needs an image dataset; for toys use metric 'modes' or 'w1_target'")
        hp = self.hparams()
        if self.norm == "batch" and (hp.get("penalty") or "none") not in ("none", None):
            raise ValueError(
                f"norm='batch' mixes the samples of a batch and breaks the per-sample penalty of "
                f"{self.method}; norm must be one of: none, layer"
            )

    @property
    def is_toy(self) -> bool:
        """True when ``data`` is a 2-D toy."""

        return self.data in TOY_DATASETS

    def hparams(self) -> Dict[str, Any]:
        """Resolved hyper-parameters: method defaults < toy overrides < explicit values.

        Returns
        -------
        dict
            The method's defaults (``optimizer, lr, betas, n_critic, lam, clip, k, p, strategy,
            spectral, penalty, ...``) plus ``batch_size`` and ``warmup``.
        """

        explicit = {k: getattr(self, k) for k in _HP_KEYS if hasattr(self, k) and getattr(self, k) is not None}
        base: Dict[str, Any] = {}
        if self.is_toy and self.toy_defaults:
            base.update(toy_overrides(self.method))
        base.update(explicit)
        batch = base.pop("batch_size", None)
        if self.batch_size is not None:
            batch = self.batch_size
        hp = dict(objectives.resolve_hparams(self.method, **base))
        hp["batch_size"] = int(batch) if batch is not None else DEFAULT_BATCH_SIZE
        hp["warmup"] = (self.method == "wgan-clip") if self.warmup is None else bool(self.warmup)
        return hp

    def to_dict(self) -> Dict[str, Any]:
        """The configuration as a JSON-serialisable dict (``eval_fn`` omitted)."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "eval_fn":
                continue
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


@dataclass
class TrainResult:
    """What :func:`~wganbook.train.loop.train` returns.

    Attributes
    ----------
    generator, critic : torch.nn.Module
        The trained models (on ``device``).
    history : dict
        Lists by column: ``"step"``, ``"critic_loss"``, ``"generator_loss"``, ``"w1_estimate"``, ``"penalty"``,
        ``"grad_norm"`` (one entry per generator step); ``"w1_step"``, ``"w1_exact"``;
        ``"eval_step"`` and one column per metric.
    config : TrainConfig
        The configuration, as given: a checkpoint folder that :func:`~wganbook.train.loop.train` assigned itself (under
        its ``checkpoint_root``) is not in it, so ``dataclasses.replace(result.config, ...)``
        starts a new run in a folder of its own instead of overwriting or resuming this one's.
    hparams : dict
        Resolved hyper-parameters.
    wall_time : float
        Seconds spent in this call.
    device : str
        Device used.
    step : int
        Generator steps completed (``config.steps`` unless resumed past it).
    optimizers : tuple
        ``(opt_g, opt_c)``.
    """

    generator: nn.Module
    critic: nn.Module
    history: Dict[str, list]
    config: TrainConfig
    hparams: Dict[str, Any]
    wall_time: float
    device: str
    step: int
    optimizers: tuple = field(default=(), repr=False)
    #: Folder of this run's checkpoint (``config.checkpoint_dir``, or the one under ``checkpoint_root``), or None.
    checkpoint_dir: Optional[str] = None

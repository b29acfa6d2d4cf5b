r"""One training loop for every method, and static critic fitting.

Each generator step of :func:`train` runs ``n_critic`` critic steps, each on a fresh real batch
and a fresh fake batch :math:`G(z)` (detached), minimising the method's critic loss

.. math::

    L_C = \mathbb E_{z}\, f(G(z)) - \mathbb E_{x \sim P_r}\, f(x) + \text{penalty},

followed by the method's post-step (weight clipping for ``wgan-clip``), and then one generator
step minimising :math:`L_G = -\mathbb E_z f(G(z))` (the critic's parameters are frozen). The
history records, per generator step, the last critic step's loss, its W1 estimate
:math:`\hat W = \mathbb E f(x) - \mathbb E f(G(z))`, the penalty, and the mean input-gradient norm
reported by the loss; optionally the exact batch W1 of the same batches (every ``w1_every``
steps) and a sample-quality metric (every ``eval_every`` steps).

Statistics stay on the device and are copied to the host every ``log_every`` steps (no
host-device synchronisation per step); a non-finite loss, or a loss or W1 estimate beyond
``DIVERGENCE_THRESHOLD`` in absolute value, stops training with :class:`TrainingDiverged` at the
next copy (the exploded state is not checkpointed). Checkpoints hold everything needed to continue
bit-identically on a CPU: models, optimisers, all random-number-generator states, the data
order, the step and the history -- in plain types and tensors only, so that they are read with
``torch.load(weights_only=True)`` (a checkpoint cannot run code). They are written to a
temporary file, fsynced and renamed; temporary files of dead processes are removed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import random
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from .models import resolve_device, sample_noise  # noqa: F401  (re-exported: train.resolve_device)

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "TrainingInterrupted",
    "CheckpointError",
    "DIVERGENCE_THRESHOLD",
    "check_output_dir",
    "check_output_file",
    "remove_stale_temp_files",
    "train",
    "fit_critic",
    "best_response",
    "resolve_device",
    "params_sha256",
    "sample_noise",
    "toy_overrides",
    "TOY_OVERRIDES",
    "DEFAULT_BATCH_SIZE",
    "METRICS",
    "CHECKPOINT_NAME",
    "load_checkpoint",
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

#: File name of the (single, latest) checkpoint in ``checkpoint_dir``.
CHECKPOINT_NAME = "checkpoint.pt"

_HP_KEYS = ("optimizer", "lr", "lr_g", "betas", "n_critic", "lam", "center", "clip", "k", "p", "strategy",
            "penalty")
_CKPT_VERSION = 2
#: Value of the checkpoint's ``"format"`` key (tells a wganbook checkpoint from other files).
CHECKPOINT_FORMAT = "wganbook-checkpoint"

#: The divergence guard; training stops when the critic loss, the generator loss or the W1 estimate
#: exceeds this in absolute value. A heuristic: the book's runs stay within O(1)-O(1e3) (and
#: weight-clipped critics give tiny values), an exploded run (e.g. ``lr=1e6``) reaches 1e20 and
#: more; 1e12 is nine orders of magnitude above the largest normal value and far below float32
#: overflow (3.4e38).
DIVERGENCE_THRESHOLD = 1e12
# config fields that must agree between a checkpoint and the run that resumes it
_RESUME_KEYS = ("method", "data", "seed", "batch_size", "n_critic", "lr", "lr_g", "betas", "lam", "center",
                "penalty", "optimizer", "clip",
                "k", "p", "strategy", "width", "depth", "z_dim", "norm", "warmup", "fixed_generator",
                "toy_defaults")


class TrainingDiverged(RuntimeError):
    """Raised by :func:`train` / :func:`fit_critic` when a loss becomes NaN or infinite, or when
    a loss or the W1 estimate exceeds ``DIVERGENCE_THRESHOLD`` in absolute value (``value``)."""

    def __init__(self, step: int, what: str, method: str = "", value: Optional[float] = None):
        self.step = step
        self.value = value
        self._args = (step, what, method, value)
        hint = ("lower the learning rate (lr)", "check the penalty weight lam",
                "for wgan-clip check the clipping bound clip", "check the data scale and the critic's norm")
        if value is None or not math.isfinite(value):
            why = "is not finite"
        else:
            why = (f"reached {value:.3g}, beyond the divergence threshold {DIVERGENCE_THRESHOLD:.0e} "
                   f"(a heuristic: normal runs stay below 1e4)")
        super().__init__(f"training diverged at generator step {step}: {what} {why}"
                         f"{' (method ' + method + ')' if method else ''}; try to " + ", ".join(hint))


    def __reduce__(self):  # picklable across process pools (run_grid workers)
        return (type(self), self._args)


def _exploded(x: float) -> bool:
    return not math.isfinite(x) or abs(x) > DIVERGENCE_THRESHOLD


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :func:`train` on Ctrl-C (``KeyboardInterrupt``) during training.

    Attributes
    ----------
    step : int
        Generator steps completed when the interrupt arrived.
    checkpoint_step : int or None
        Step of the last valid checkpoint in ``checkpoint_dir`` (None: no checkpoint).
    checkpoint_dir : str or None
    """

    def __init__(self, step: int, checkpoint_step: Optional[int], checkpoint_dir: Optional[str]):
        self.step, self.checkpoint_step, self.checkpoint_dir = step, checkpoint_step, checkpoint_dir
        if checkpoint_step is None:
            tail = "no checkpoint was written" + ("" if checkpoint_dir else " (checkpoint_dir not set)")
        else:
            tail = f"the checkpoint in {checkpoint_dir} (step {checkpoint_step}) is valid"
        super().__init__(f"training interrupted after generator step {step}; {tail}")

    def __reduce__(self):
        return (type(self), (self.step, self.checkpoint_step, self.checkpoint_dir))


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, truncated, not a wganbook checkpoint,
    an unsupported format version, or a location that is not a writable file. The message
    names the file and what to do."""


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------
def params_sha256(module: nn.Module) -> str:
    """SHA-256 of a module's complete state (parameters and buffers), in name order.

    The digest covers, for each entry of ``module.state_dict()`` sorted by name: the name, the
    dtype, the shape and the raw bytes of the tensor (copied to the CPU). Two modules have the
    same digest iff their states are bit-identical.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        if isinstance(t, torch.Tensor):
            t = t.detach().to("cpu").contiguous()
            h.update(str(t.dtype).encode())
            h.update(str(tuple(t.shape)).encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:  # pragma: no cover - non-tensor extra state
            h.update(repr(t).encode())
    return h.hexdigest()


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


def _check(name: str, value: Any, spec) -> Any:
    from .presets import check_value

    return check_value(name, value, spec)


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
        from . import presets as P

        S = P.SCHEMA
        self.method = _check("method", self.method, S["method"])
        self.data = _check("data", self.data, S["dataset"])
        self.steps = _check("steps", self.steps, P.Int(lo=1))
        self.batch_size = _check("batch_size", self.batch_size, S["batch_size"])
        self.n_critic = _check("n_critic", self.n_critic, S["n_critic"])
        self.lr = _check("lr", self.lr, S["lr"])
        self.lr_g = _check("lr_g", self.lr_g, S["lr"])
        self.optimizer = _check("optimizer", self.optimizer, P.Choice(("adam", "rmsprop"), none_ok=True))
        self.betas = _check("betas", self.betas, S["betas"])
        self.lam = _check("lam", self.lam, S["lam"])
        self.center = _check("center", self.center, P.Float(lo=0.0, none_ok=True))
        self.penalty = _check("penalty", self.penalty, P.Choice(("none", "gp", "r1"), none_ok=True))
        self.clip = _check("clip", self.clip, S["clip"])
        self.k = _check("k", self.k, S["k"])
        self.p = _check("p", self.p, S["p"])
        self.strategy = _check("strategy", self.strategy, S["strategy"])
        self.seed = _check("seed", self.seed, P.Int(lo=0, hi=2**32 - 1))
        if isinstance(self.device, torch.device):
            self.device = str(self.device)
        self.device = _check("device", self.device, S["device"])
        self.width = _check("width", self.width, S["width"])
        self.depth = _check("depth", self.depth, S["depth"])
        self.z_dim = _check("z_dim", self.z_dim, S["z_dim"])
        self.norm = _check("norm", self.norm, P.Choice(("none", "layer", "batch")))
        self.warmup = _check("warmup", self.warmup, P.Bool(none_ok=True))
        self.fixed_generator = _check("fixed_generator", self.fixed_generator, P.Bool())
        self.w1_every = _check("w1_every", self.w1_every, P.Int(lo=0))
        self.eval_every = _check("eval_every", self.eval_every, P.Int(lo=0))
        self.metric = _check("metric", self.metric, P.Choice(METRICS, none_ok=True))
        if self.eval_fn is not None and not callable(self.eval_fn):
            raise TypeError(f"eval_fn must be callable (generator, step) -> float or dict, got {type(self.eval_fn).__name__}")
        self.eval_n = _check("eval_n", self.eval_n, P.Int(lo=2))
        self.log_every = _check("log_every", self.log_every, P.Int(lo=1))
        if self.checkpoint_dir is not None:
            if not isinstance(self.checkpoint_dir, (str, os.PathLike)):
                raise TypeError(f"checkpoint_dir must be a str or path, got {type(self.checkpoint_dir).__name__}")
            self.checkpoint_dir = os.fspath(self.checkpoint_dir)
        self.checkpoint_every = _check("checkpoint_every", self.checkpoint_every, P.Int(lo=0))
        self.progress = _check("progress", self.progress, P.Bool(none_ok=True))
        self.toy_defaults = _check("toy_defaults", self.toy_defaults, P.Bool())
        self.track_grad_norm = _check("track_grad_norm", self.track_grad_norm, P.Bool())
        self._check_combination()

    def _check_combination(self) -> None:
        from .data import TOY_DATASETS

        is_toy = self.data in TOY_DATASETS
        if self.metric == "modes" and self.data not in ("8gaussians", "25gaussians"):
            raise ValueError(f"metric 'modes' needs data with discrete modes; data must be one of: 8gaussians, 25gaussians")
        if self.metric == "w1_target" and not is_toy:
            raise ValueError(f"metric 'w1_target' needs a 2-D toy; data must be one of: {', '.join(TOY_DATASETS)}")
        if self.metric == "fd" and is_toy:
            raise ValueError("metric 'fd' needs an image dataset; for toys use metric 'modes' or 'w1_target'")
        hp = self.hparams()
        if self.norm == "batch" and (hp.get("penalty") or "none") not in ("none", None):
            raise ValueError(f"norm='batch' mixes the samples of a batch and breaks the per-sample penalty of "
                             f"{self.method}; norm must be one of: none, layer")

    @property
    def is_toy(self) -> bool:
        """True when ``data`` is a 2-D toy."""
        from .data import TOY_DATASETS

        return self.data in TOY_DATASETS

    def hparams(self) -> Dict[str, Any]:
        """Resolved hyper-parameters: method defaults < toy overrides < explicit values.

        Returns
        -------
        dict
            The method's defaults (``optimizer, lr, betas, n_critic, lam, clip, k, p, strategy,
            spectral, penalty, ...``) plus ``batch_size`` and ``warmup``.
        """
        from . import objectives

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
    """What :func:`train` returns.

    Attributes
    ----------
    generator, critic : torch.nn.Module
        The trained models (on ``device``).
    history : dict
        Lists by column: ``"step"``, ``"critic_loss"``, ``"generator_loss"``, ``"w1_estimate"``, ``"penalty"``,
        ``"grad_norm"`` (one entry per generator step); ``"w1_step"``, ``"w1_exact"``;
        ``"eval_step"`` and one column per metric.
    config : TrainConfig
        The configuration, as given: a checkpoint folder that :func:`train` assigned itself (under
        ``$WGANBOOK_CHECKPOINT_DIR``) is not in it, so ``dataclasses.replace(result.config, ...)``
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
    #: Folder of this run's checkpoint (``config.checkpoint_dir``, or the automatic one), or None.
    checkpoint_dir: Optional[str] = None


# ---------------------------------------------------------------------------------------------
# data streams
# ---------------------------------------------------------------------------------------------
class _TensorStream:
    """Minibatches of a tensor dataset by a seeded permutation per epoch (last partial batch dropped)."""

    def __init__(self, x: torch.Tensor, batch_size: int, rng: torch.Generator, device):
        self.x = x.to(device)
        self.n = self.x.shape[0]
        self.bs = batch_size
        self.rng = rng
        self.device = device
        self.full = batch_size >= self.n
        self.perm = None
        self.pos = 0

    def next(self) -> torch.Tensor:
        if self.full:
            return self.x
        if self.perm is None or self.pos + self.bs > self.n:
            self.perm = torch.randperm(self.n, generator=self.rng).to(self.device)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.bs]
        self.pos += self.bs
        return self.x[idx]

    def state(self) -> dict:
        return {"perm": None if self.perm is None else self.perm.cpu(), "pos": self.pos}

    def load(self, st: dict) -> None:
        self.perm = None if st.get("perm") is None else st["perm"].to(self.device)
        self.pos = int(st.get("pos", 0))


class _FnStream:
    """Fresh minibatches ``fn(n)`` (e.g. a toy sampler)."""

    def __init__(self, fn: Callable[[int], torch.Tensor], batch_size: int, device):
        self.fn, self.bs, self.device = fn, batch_size, device

    def next(self) -> torch.Tensor:
        return self.fn(self.bs).to(self.device, non_blocking=True)

    def state(self) -> dict:
        return {}

    def load(self, st: dict) -> None:
        pass


def _toy_fn(name: str, rng: torch.Generator) -> Callable[[int], torch.Tensor]:
    from .data import sample_toy

    return lambda n: sample_toy(name, n, generator=rng)


def _make_stream(source, batch_size: int, rng: torch.Generator, device, name: str):
    if isinstance(source, torch.Tensor):
        if source.ndim < 1 or source.shape[0] < 1:
            raise ValueError(f"{name} must be a non-empty tensor (N, ...), got shape {tuple(source.shape)}")
        return _TensorStream(source.float(), batch_size, rng, device)
    if callable(source):
        return _FnStream(source, batch_size, device)
    raise TypeError(f"{name} must be a tensor or a callable n -> tensor, got {type(source).__name__}")


# ---------------------------------------------------------------------------------------------
# RNG state
# ---------------------------------------------------------------------------------------------
def _rng_state(gens: Dict[str, torch.Generator]) -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    st = {
        "torch": torch.get_rng_state(),
        # plain types and a tensor, so that torch.load(weights_only=True) reads it back
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": random.getstate(),
        "gens": {k: g.get_state() for k, g in gens.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict, gens: Dict[str, torch.Generator]) -> None:
    torch.set_rng_state(st["torch"])
    npst = st["numpy"]
    np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["cached_gaussian"]))
    version, internal, gauss = st["python"]
    random.setstate((version, tuple(internal), gauss))
    for k, g in gens.items():
        if k in st["gens"]:
            g.set_state(st["gens"][k])
    if "cuda" in st and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(st["cuda"])
        except Exception:  # different number of GPUs: not bit-identical anyway
            pass


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists (another user's) or cannot tell: keep its file
        return True
    return True


def remove_stale_temp_files(folder: Union[str, os.PathLike], name: str) -> List[Path]:
    """Remove ``.<name>.<pid>.tmp`` files in ``folder`` left by processes that are no longer alive.

    Atomic writes go to such a temporary file first; a process killed mid-write leaves it behind.
    Files of live processes (and of this one) are kept.

    Returns
    -------
    list of Path
        The removed files.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    prefix = f".{name}."
    for p in folder.glob(f".{name}.*.tmp"):
        mid = p.name[len(prefix):-len(".tmp")]
        if not mid.isdigit() or _pid_alive(int(mid)):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Callable[[Any], None], binary: bool = True) -> None:
    """Write ``path`` atomically: ``write(f)`` into ``.<name>.<pid>.tmp``, fsync, rename, fsync
    the folder. The temporary file is removed on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _atomic_save(obj: Any, path: Path) -> None:
    _atomic_write(path, lambda f: torch.save(obj, f))


class _DeferSignals:
    """Hold SIGINT/SIGTERM back (POSIX, main thread) while a checkpoint is written and recorded;
    a signal that arrives meanwhile is delivered right after, so an interrupt never cuts a write
    short and the reported checkpoint step is the one on disk."""

    def __enter__(self):
        import threading

        self.old = None
        if hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread():
            self.old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old)
        return False


def _probe_dir(folder: Path, what: str) -> None:
    probe = folder / f".wganbook-probe.{os.getpid()}.tmp"
    try:
        with open(probe, "wb") as f:
            f.write(b"")
        probe.unlink()
    except OSError as exc:
        raise CheckpointError(f"{what} {os.fspath(folder)!s} is not writable "
                              f"({exc.strerror or exc}); choose a folder you can write to") from None


def check_output_dir(folder: Union[str, os.PathLike], what: str = "checkpoint_dir") -> Path:
    """Make sure ``folder`` is (or can be created as) a writable folder; create it.

    Parameters
    ----------
    folder : str or path-like
    what : str
        Name used in the error message (``"checkpoint_dir"``, ``"--checkpoint-dir"``, ...).

    Returns
    -------
    Path

    Raises
    ------
    CheckpointError
        ``folder`` (or a folder above it) is a file, cannot be created, or is not writable;
        the message names ``what`` and the path given.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{what} {os.fspath(folder)} is a file, not a folder; give a folder path")
    for up in folder.parents:
        if up.exists():
            if not up.is_dir():
                raise CheckpointError(f"{what} {os.fspath(folder)} lies below {os.fspath(up)}, which is a "
                                      f"file, not a folder; give a folder path")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"{what} {os.fspath(folder)} cannot be created ({exc.strerror or exc}); "
                              f"choose a folder you can write to") from None
    _probe_dir(folder, what)
    return folder


def check_output_file(path: Union[str, os.PathLike], what: str = "out", overwrite: bool = True,
                      hint: str = "") -> Path:
    """Make sure ``path`` can be written (its folder exists or is created, and is writable; the
    path is not a folder); with ``overwrite=False`` an existing file is refused too.

    The folder is probed by creating and removing a small temporary file.

    Parameters
    ----------
    path : str or path-like
    what : str
        Name used in the error message (e.g. ``"--out"``).
    overwrite : bool
        Accept an existing file.
    hint : str
        What to do about an existing file (appended to that message).

    Returns
    -------
    Path

    Raises
    ------
    CheckpointError
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{what} {os.fspath(path)} is a folder, not a file; give a file path")
    if path.exists() and not overwrite:
        raise CheckpointError(f"{what} {os.fspath(path)} already exists{'; ' + hint if hint else ''}")
    check_output_dir(path.parent, f"the folder of {what} {os.fspath(path)}:")
    return path


def _checkpoint_error(path: Path, why: str, todo: str = "") -> CheckpointError:
    todo = todo or ("delete it (or give another checkpoint_dir) and start the run again without "
                    "resume (command line: --force)")
    return CheckpointError(f"cannot resume from {os.fspath(path)}: {why}; {todo}")


def load_checkpoint(checkpoint_dir: Union[str, os.PathLike], map_location="cpu") -> dict:
    """Load the checkpoint written by :func:`train` in ``checkpoint_dir``.

    Read with ``torch.load(weights_only=True)``: only tensors and plain Python types, never
    code. Every failure -- a truncated, empty or garbage file, a file that is not a wganbook
    checkpoint, an unsupported format version -- raises one :class:`CheckpointError` that names
    the file and what to do.

    Parameters
    ----------
    checkpoint_dir : str or path-like
        The run's ``checkpoint_dir``.
    map_location : str or torch.device, optional
        Passed to ``torch.load``.

    Returns
    -------
    dict
        Keys ``"format", "version", "step", "config", "hparams", "generator", "critic", "opt_g",
        "opt_c", "rng", "data", "history", "env"`` (``env``: torch version and thread count of
        the run that wrote it).

    Raises
    ------
    FileNotFoundError
        If there is no checkpoint.
    CheckpointError
        If the file cannot be used (a ``ValueError``).
    """
    import pickle
    import zipfile

    path = Path(checkpoint_dir) / CHECKPOINT_NAME
    if path.is_dir():
        raise _checkpoint_error(path, "it is a folder, not a checkpoint file",
                                "remove or rename that folder")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {path} does not exist "
                                f"(run once with checkpoint_dir set, or drop resume)")
    if path.stat().st_size == 0:
        raise _checkpoint_error(path, "the file is empty (0 bytes; a write was cut short)")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "numpy" in msg:
            why = ("it was written by an older wganbook (checkpoint format 1, which stored NumPy "
                   "objects that weights_only=True refuses) or by other software")
        elif "global" in msg.lower():
            why = "it contains objects other than tensors and plain data (not a wganbook checkpoint)"
        else:
            why = "the file is truncated or not a torch checkpoint"
        raise _checkpoint_error(path, why) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError, IndexError,
            TypeError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise _checkpoint_error(path, f"the file is truncated or not a torch checkpoint ({first})") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        if isinstance(ck, dict) and ck.get("version") == 1 and "config" in ck:
            why = "it was written by an older wganbook (checkpoint format 1)"
        else:
            why = "it is not a wganbook checkpoint"
        raise _checkpoint_error(path, why)
    if ck.get("version") != _CKPT_VERSION:
        raise _checkpoint_error(path, f"checkpoint format version {ck.get('version')!r} is not supported "
                                      f"(this wganbook reads version {_CKPT_VERSION})")
    missing = [k for k in ("step", "config", "generator", "critic", "opt_g", "opt_c", "rng", "data",
                           "history") if k not in ck]
    if missing:
        raise _checkpoint_error(path, f"it lacks {', '.join(missing)} (incomplete checkpoint)")
    return ck


def _check_resume_env(ck: dict, path: Path) -> None:
    env = ck.get("env") or {}
    now = _env_info()
    diff = [f"{k} {env.get(k)!r} (now {now[k]!r})" for k in ("torch", "num_threads")
            if env.get(k) is not None and env.get(k) != now[k]]
    if diff:
        warnings.warn(f"resuming {os.fspath(path)}, which was written with {' and '.join(diff)}: the "
                      f"result may differ from an uninterrupted run (set torch.set_num_threads / "
                      f"OMP_NUM_THREADS as before for a bit-identical continuation)",
                      RuntimeWarning, stacklevel=3)


def _env_info() -> dict:
    from . import __version__

    return {"torch": str(torch.__version__), "num_threads": int(torch.get_num_threads()),
            "wganbook": str(__version__)}


# ---------------------------------------------------------------------------------------------
# statistics buffer
# ---------------------------------------------------------------------------------------------
_STEP_KEYS = ("critic_loss", "generator_loss", "w1_estimate", "penalty", "grad_norm")


def _empty_history() -> Dict[str, list]:
    h = {"step": []}
    for k in _STEP_KEYS:
        h[k] = []
    h["w1_step"] = []
    h["w1_exact"] = []
    h["eval_step"] = []
    return h


def _scalar(v, like: torch.Tensor) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v.detach().reshape(())
    return torch.full((), float("nan") if v is None else float(v), device=like.device)


class _Recorder:
    """Per-step statistics kept on the device, copied to the host every ``log_every`` steps."""

    def __init__(self, history: dict, method: str):
        self.history = history
        self.method = method
        self.rows: List[Tuple[int, tuple]] = []

    def add(self, step: int, row: tuple) -> None:
        self.rows.append((step, row))

    def flush(self) -> None:
        if not self.rows:
            return
        flat = [t for _, row in self.rows for t in row]
        vals = torch.stack([t.to(flat[0].device) for t in flat]).float().cpu().view(len(self.rows), -1).tolist()
        steps = [s for s, _ in self.rows]
        self.rows = []
        bad = None
        for s, v in zip(steps, vals):
            if bad is None:
                for name, x in zip(_STEP_KEYS[:4], v[:4]):
                    if not math.isfinite(x) or (name != "penalty" and abs(x) > DIVERGENCE_THRESHOLD):
                        bad = (s, name, x)
                        break
        h = self.history
        for s, v in zip(steps, vals):
            h["step"].append(s)
            for k, x in zip(_STEP_KEYS, v):
                h[k].append(x)
        if bad is not None:
            raise TrainingDiverged(bad[0], bad[1], self.method, value=bad[2])


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------
def _loss_kwargs(hp: Dict[str, Any]) -> Dict[str, Any]:
    from . import objectives

    keys = getattr(objectives, "HPARAM_KEYS", _HP_KEYS)
    return {k: v for k, v in hp.items() if k in keys}


def _show_progress(flag: Optional[bool]) -> bool:
    if flag is not None:
        return flag
    if os.environ.get("TQDM_DISABLE"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _builtin_metric(cfg: TrainConfig, device) -> Callable:
    from . import metrics

    metric = cfg.metric
    if metric is None:
        if cfg.data in metrics.MODE_DATASETS:
            metric = "modes"
        elif cfg.is_toy:
            metric = "w1_target"
        else:
            metric = "fd"
    n = cfg.eval_n
    features = []  # built on first use, then reused (its reference statistics are cached)

    def fn(generator, step):
        if metric == "fd":
            if not features:
                features.append(metrics.ClassifierFeatures(cfg.data))
            return {"fd": metrics.sample_quality(generator, cfg.data, n=n, seed=cfg.seed, features=features[0])}
        x = metrics.generate(generator, n, seed=cfg.seed + 1)
        if metric == "modes":
            cov = metrics.mode_coverage(x, cfg.data)
            return {"modes": cov["modes"], "high_quality": cov["high_quality"]}
        return {"w1_target": metrics.w1_to_target(x, cfg.data, seed=cfg.seed + 2)}

    return fn


#: Environment variable that turns on automatic checkpoints for every :func:`train` call
#: (set by ``python -m wganbook book`` so that an interrupted chapter resumes its runs).
AUTO_CHECKPOINT_ENV = "WGANBOOK_CHECKPOINT_DIR"
_auto_calls = {"n": 0}


def _auto_checkpoint(config: "TrainConfig", resume: bool):
    """Give ``config`` a checkpoint folder under ``$WGANBOOK_CHECKPOINT_DIR`` (if set).

    The k-th :func:`train` call of a process gets the folder ``k-method-data-<config hash>``, so
    rerunning the same notebook finds each run's checkpoint again and resumes it (a run that had
    finished is restored at once). Without the variable, or with an explicit ``checkpoint_dir``,
    nothing changes.
    """
    root = os.environ.get(AUTO_CHECKPOINT_ENV)
    if not root or config.checkpoint_dir is not None:
        return config, resume
    _auto_calls["n"] += 1
    blob = repr(sorted((k, repr(v)) for k, v in config.to_dict().items() if k in _RESUME_KEYS + ("steps",)))
    key = hashlib.sha256(blob.encode()).hexdigest()[:12]
    folder = Path(root) / f"{_auto_calls['n']:03d}-{config.method}-{config.data}-{key}"
    every = config.checkpoint_every or max(1, min(500, config.steps // 10))
    config = dataclasses.replace(config, checkpoint_dir=str(folder), checkpoint_every=every)
    return config, resume or (folder / CHECKPOINT_NAME).exists()


def train(config: TrainConfig, data=None, generator: Optional[nn.Module] = None,
          critic: Optional[nn.Module] = None, resume: bool = False) -> TrainResult:
    r"""Train a (W)GAN with the method of ``config``.

    Per generator step :math:`t` (``n_c`` = ``n_critic``, or 100 during WGAN's warm-up):

    .. math::

        &\text{repeat } n_c \text{ times: } x \sim P_r,\ z \sim \mathcal N(0, I),\quad
          \theta_C \leftarrow \mathrm{opt}_C\bigl(\nabla_{\theta_C}
          [\bar f(G(z)) - \bar f(x) + \text{penalty}]\bigr),\ \text{post-step (clip)}\\
        &z \sim \mathcal N(0, I),\quad \theta_G \leftarrow \mathrm{opt}_G\bigl(\nabla_{\theta_G}
          [-\bar f(G(z))]\bigr)

    Parameters
    ----------
    config : TrainConfig
        The run's configuration.
    data : torch.Tensor or callable, optional
        Real data: a tensor dataset (sampled by seeded epoch permutations; moved to the device
        once) or a callable ``n -> tensor`` (fresh samples). Default: fresh ``sample_toy`` batches
        for toys, ``load_images(config.data)`` for images.
    generator, critic : torch.nn.Module, optional
        Models to train (default ``make_generator`` / ``make_critic`` for ``config.data``).
    resume : bool, optional
        Continue from ``config.checkpoint_dir``'s checkpoint up to ``config.steps`` generator
        steps; on a CPU the final state is bit-identical to an uninterrupted run.

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingDiverged
        When a loss becomes NaN or infinite, or a loss or the W1 estimate exceeds
        ``DIVERGENCE_THRESHOLD`` (reported within ``log_every`` steps; not checkpointed).
    TrainingInterrupted
        On Ctrl-C during training (a ``KeyboardInterrupt`` carrying the step reached and the
        step of the last valid checkpoint).
    FileNotFoundError
        ``resume=True`` without a checkpoint.
    CheckpointError
        Before any training: ``checkpoint_dir`` is a file, cannot be created or is not writable,
        its ``checkpoint.pt`` is a folder, or (with ``resume``) the checkpoint cannot be read.
    ValueError
        A checkpoint from an incompatible configuration, a checkpoint beyond ``config.steps``,
        or ``data`` whose samples do not have the generator's shape.

    Warns
    -----
    RuntimeWarning
        When resuming a checkpoint written with another torch version or thread count (the
        continuation may then differ from an uninterrupted run).
    """
    from . import models, objectives
    from .data import seed_everything

    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    given = config
    config, resume = _auto_checkpoint(config, resume)
    if resume and config.checkpoint_dir is None:
        raise ValueError("resume=True needs config.checkpoint_dir (the folder holding checkpoint.pt)")
    t0 = time.perf_counter()
    cfg = config
    hp = cfg.hparams()
    device = resolve_device(cfg.device)
    method = cfg.method
    bs = hp["batch_size"]

    # every path is checked, and a checkpoint to resume read, before any work
    ckpt_path = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME if cfg.checkpoint_dir else None
    ck = None
    if ckpt_path is not None:
        check_output_dir(cfg.checkpoint_dir, "checkpoint_dir")
        remove_stale_temp_files(cfg.checkpoint_dir, CHECKPOINT_NAME)
        if ckpt_path.is_dir():
            raise CheckpointError(f"{os.fspath(ckpt_path)} is a folder; the checkpoint file of "
                                  f"checkpoint_dir must be a file there: remove or rename that folder")
    if resume:
        ck = load_checkpoint(cfg.checkpoint_dir, map_location=device)
        old = ck["config"]
        diff = [k for k in _RESUME_KEYS if _norm(old.get(k)) != _norm(cfg.to_dict().get(k))]
        if diff:
            raise ValueError(f"checkpoint in {cfg.checkpoint_dir} was written with a different "
                             f"configuration ({', '.join(f'{k}: {old.get(k)!r} != {getattr(cfg, k)!r}' for k in diff)})")
        if int(ck["step"]) > cfg.steps:
            raise ValueError(f"steps={cfg.steps} is below the step of the checkpoint {ckpt_path} "
                             f"({int(ck['step'])}); steps is the total to reach, so give "
                             f"steps >= {int(ck['step'])} (equal: restore the finished run)")
        _check_resume_env(ck, ckpt_path)

    data_rng = seed_everything(cfg.seed)
    noise_rng = torch.Generator(device=device)
    noise_rng.manual_seed(cfg.seed + 7919)

    # models
    if generator is None:
        generator = models.make_generator(cfg.data, z_dim=cfg.z_dim, width=cfg.width, depth=cfg.depth)
    if critic is None:
        critic = models.make_critic(cfg.data, width=cfg.width, depth=cfg.depth, norm=cfg.norm,
                                    spectral=bool(hp.get("spectral", False)))
    objectives.check_critic_for_method(method, critic, penalty=hp["penalty"])
    generator = generator.to(device)
    critic = critic.to(device)
    opt_g, opt_c = objectives.make_optimizers(method, generator, critic, **_loss_kwargs(hp))

    # data
    if data is None:
        if cfg.is_toy:
            data = _toy_fn(cfg.data, data_rng)
        else:
            from .data import load_images

            data = load_images(cfg.data)[0]
    _check_data_shape(data, generator)
    stream = _make_stream(data, bs, data_rng, device, "data")

    history = _empty_history()
    start = 0
    gens = {"data": data_rng, "noise": noise_rng}
    if ck is not None:
        generator.load_state_dict(ck["generator"])
        critic.load_state_dict(ck["critic"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_c.load_state_dict(ck["opt_c"])
        _set_rng_state(ck["rng"], gens)
        stream.load(ck.get("data", {}))
        history = ck["history"]
        start = int(ck["step"])

    critic_step_loss, post_step, gen_kw = _prepared_losses(objectives, method, critic, hp, noise_rng,
                                                           bool(cfg.track_grad_norm))
    n_critic = int(hp["n_critic"])
    warmup = bool(hp["warmup"])
    critic_params = [p for p in critic.parameters() if p.requires_grad]
    eval_fn = cfg.eval_fn or (_builtin_metric(cfg, device) if cfg.eval_every else None)
    rec = _Recorder(history, method)
    w1_fn = None
    if cfg.w1_every:
        from .transport import w1 as w1_fn

    show = _show_progress(cfg.progress)
    pbar = None
    if show:
        from tqdm import tqdm

        pbar = tqdm(total=cfg.steps, initial=start, desc=f"{method} {cfg.data}", file=sys.stderr,
                    unit="step", mininterval=0.5, dynamic_ncols=True)

    saved = {"step": start if ck is not None else None}
    done = {"step": start}

    def save(step: int) -> None:
        rec.flush()
        with _DeferSignals():
            _atomic_save({
                "format": CHECKPOINT_FORMAT, "version": _CKPT_VERSION, "step": step,
                "config": cfg.to_dict(), "hparams": _jsonable(hp),
                "generator": generator.state_dict(), "critic": critic.state_dict(),
                "opt_g": opt_g.state_dict(), "opt_c": opt_c.state_dict(),
                "rng": _rng_state(gens), "data": stream.state(), "history": history, "env": _env_info(),
            }, ckpt_path)
            saved["step"] = step

    nan_t = torch.full((), float("nan"), device=device)
    zero_t = torch.zeros((), device=device)
    generator.train()
    critic.train()
    real = fake = None
    try:
        for step in range(start + 1, cfg.steps + 1):
            nc = 100 if warmup and (step - 1 < 25 or (step - 1) % 500 == 0) else n_critic
            for _ in range(nc):
                real = stream.next()
                with torch.no_grad():
                    fake = generator(sample_noise(generator, real.shape[0], noise_rng, device))
                loss, stats = critic_step_loss(real, fake)
                opt_c.zero_grad(set_to_none=True)
                loss.backward()
                opt_c.step()
                if post_step is not None:
                    post_step()
            if cfg.fixed_generator:
                g_loss = zero_t
            else:
                for p in critic_params:
                    p.requires_grad_(False)
                g_fake = generator(sample_noise(generator, bs, noise_rng, device))
                g_loss = objectives.generator_loss(method, critic, real, g_fake, **gen_kw)
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                for p in critic_params:
                    p.requires_grad_(True)
            rec.add(step, (loss.detach(), g_loss.detach(), stats.get("w1_estimate", nan_t),
                           stats.get("penalty", zero_t), stats.get("grad_norm", nan_t)))
            if step % cfg.log_every == 0:
                rec.flush()
                if pbar is not None and history["w1_estimate"]:
                    pbar.set_postfix(w1_est=f"{history['w1_estimate'][-1]:.3g}", refresh=False)
            if w1_fn is not None and step % cfg.w1_every == 0:
                history["w1_step"].append(step)
                history["w1_exact"].append(float(w1_fn(real.detach().flatten(1).double().cpu().numpy(),
                                                       fake.detach().flatten(1).double().cpu().numpy())))
            if eval_fn is not None and cfg.eval_every and step % cfg.eval_every == 0:
                _record_eval(history, step, eval_fn(generator, step))
            done["step"] = step
            if ckpt_path is not None and cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                save(step)
            if pbar is not None:
                pbar.update(1)
        rec.flush()
        final = max(start, cfg.steps)
        if ckpt_path is not None and (not cfg.checkpoint_every or final % cfg.checkpoint_every != 0) \
                and final > start:
            save(final)
    except KeyboardInterrupt as exc:
        if isinstance(exc, TrainingInterrupted):
            raise
        raise TrainingInterrupted(done["step"], saved["step"], cfg.checkpoint_dir) from exc
    finally:
        if pbar is not None:
            pbar.close()
    return TrainResult(generator=generator, critic=critic, history=history, config=given, hparams=hp,
                       wall_time=time.perf_counter() - t0, device=str(device), step=max(start, cfg.steps),
                       optimizers=(opt_g, opt_c), checkpoint_dir=cfg.checkpoint_dir)


def _prepared_losses(objectives, method: str, critic: nn.Module, hp: dict, rng: torch.Generator,
                     track_grad_norm: bool = False):
    """The per-step critic loss and post-step, validated once (no per-step re-validation).

    Returns ``(loss_fn(real, fake) -> (loss, stats), post_step() or None, generator-loss kwargs)``.
    """
    kw = _loss_kwargs(hp)
    full = objectives.resolve_hparams(method, **kw)
    m = objectives.get_method(method)
    fast = getattr(objectives, "_critic_loss", None)
    if fast is not None:
        def loss_fn(real, fake):
            return fast(m, critic, real, fake, rng, full, track_grad_norm)
    else:  # pragma: no cover - public, re-validating path
        def loss_fn(real, fake):
            return objectives.critic_loss(method, critic, real, fake, generator=rng,
                                          track_grad_norm=track_grad_norm, **kw)
    post = None
    if getattr(m, "uses_clipping", True):
        def post():
            objectives.after_critic_step(m, critic, **kw)
    return loss_fn, post, kw


def _sample_shape(generator: nn.Module) -> Optional[Tuple[int, ...]]:
    """Shape of one sample of a book generator (None when it cannot be read off the module)."""
    shape = getattr(generator, "image_shape", None)
    if shape is not None:
        return tuple(int(d) for d in shape)
    net = getattr(generator, "net", None)
    out_dim = getattr(net, "out_dim", None)
    return (int(out_dim),) if isinstance(out_dim, int) else None


def _check_data_shape(data, generator: nn.Module) -> None:
    if not isinstance(data, torch.Tensor):
        return
    if data.is_complex() or data.dtype == torch.bool:
        raise TypeError(f"data must be a real-valued tensor (float, or int converted with .float()); "
                        f"got dtype {data.dtype}")
    want = _sample_shape(generator)
    if want is not None and data.ndim >= 1 and tuple(data.shape[1:]) != want:
        raise ValueError(f"data must have shape (N, {', '.join(map(str, want))}) -- the generator's "
                         f"sample shape; got {tuple(data.shape)}")


def _norm(v):
    if isinstance(v, (list, tuple)):
        return [float(x) for x in v]
    return v


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, (str, int, float, bool, list, type(None))):
            out[k] = v
        else:
            out[k] = repr(v)
    return out


def _record_eval(history: dict, step: int, value) -> None:
    items = value.items() if isinstance(value, dict) else [("metric", value)]
    history["eval_step"].append(step)
    for k, v in items:
        history.setdefault(k, []).append(float(v))


# ---------------------------------------------------------------------------------------------
# static critic fitting
# ---------------------------------------------------------------------------------------------
def fit_critic(method: str, critic: nn.Module, real, fake, steps: int, batch_size: int = 256,
               seed: int = 0, record_every: Optional[int] = None, exact_w1: bool = False,
               device=None, track_grad_norm: bool = True, **hp) -> Dict[str, list]:
    r"""Train only a critic, with ``method``'s loss and optimiser, against fixed distributions.

    Each step draws a real and a fake minibatch and takes one optimiser step on

    .. math::

        L_C = \bar f(y) - \bar f(x) + \text{penalty}

    followed by the method's post-step (clipping). The result approximates the method's optimal
    critic between the two distributions (WGAN-GP Fig. 1a; value surfaces; static W1 estimates).

    Parameters
    ----------
    method : str
        A key of ``wganbook.objectives.METHODS``.
    critic : torch.nn.Module
        Trained in place.
    real, fake : torch.Tensor or callable
        Tensors (minibatches drawn by seeded epoch permutations; the whole tensor when
        ``batch_size`` >= its length) or callables ``n -> tensor`` (fresh samples).
    steps : int
        Critic steps.
    batch_size : int, optional
        Minibatch size.
    seed : int, optional
        Seed of the minibatch order and of the penalty's random points (global RNG untouched
        unless a callable uses it).
    record_every : int, optional
        Record statistics every that many steps (default: every step).
    exact_w1 : bool, optional
        Also record the exact W1 of the same minibatches at each record (``"w1_exact"``).
    device : str, optional
        Device (default: the critic's).
    track_grad_norm : bool, optional
        Record ``"grad_norm"`` (mean input-gradient norm at the real and fake points) also for
        methods without a penalty (one extra backward pass per step); penalised methods always
        report the mean norm at their penalty points.
    **hp
        Hyper-parameter overrides (``lr``, ``betas``, ``optimizer``, ``lam``, ``clip``, ``k``,
        ``p``, ``strategy``, ...); the rest are the method's defaults.

    Returns
    -------
    dict of str to list
        ``"step"``, ``"critic_loss"``, ``"w1_estimate"``, ``"penalty"``, ``"grad_norm"`` and, with
        ``exact_w1``, ``"w1_exact"``.

    Raises
    ------
    TrainingDiverged
        If the loss becomes NaN or infinite.
    """
    from . import objectives
    from .presets import Int

    steps = _check("steps", steps, Int(lo=1))
    batch_size = _check("batch_size", batch_size, Int(lo=1))
    seed = _check("seed", seed, Int(lo=0))
    record_every = 1 if record_every is None else _check("record_every", record_every, Int(lo=1))
    if not isinstance(exact_w1, bool):
        raise TypeError(f"exact_w1 must be a bool, got {type(exact_w1).__name__}")
    hp_full = dict(objectives.resolve_hparams(method, **{k: v for k, v in hp.items() if v is not None}))
    if device is None:
        p0 = next(critic.parameters(), None)
        dev = p0.device if p0 is not None else torch.device("cpu")
    else:
        dev = resolve_device(device)
        critic.to(dev)
    objectives.check_critic_for_method(method, critic, penalty=hp_full["penalty"])
    rng = torch.Generator().manual_seed(seed)
    noise = torch.Generator(device=dev)
    noise.manual_seed(seed + 7919)
    rs = _make_stream(real, batch_size, rng, dev, "real")
    fs = _make_stream(fake, batch_size, rng, dev, "fake")
    opt_c = _critic_optimizer(objectives, method, critic, hp_full)
    critic_step_loss, post_step, _ = _prepared_losses(objectives, method, critic, hp_full, noise,
                                                      track_grad_norm)
    hist: Dict[str, list] = {"step": [], "critic_loss": [], "w1_estimate": [], "penalty": [], "grad_norm": []}
    if exact_w1:
        hist["w1_exact"] = []
        from .transport import w1 as w1_fn
    rows: List[tuple] = []
    steps_rec: List[int] = []

    def flush():
        if not rows:
            return
        flat = [t for row in rows for t in row]
        vals = torch.stack([t.to(flat[0].device) for t in flat]).float().cpu().view(len(rows), -1).tolist()
        for s, v in zip(steps_rec, vals):
            hist["step"].append(s)
            for k, x in zip(("critic_loss", "w1_estimate", "penalty", "grad_norm"), v):
                hist[k].append(x)
            for name, x in (("the critic loss", v[0]), ("the W1 estimate", v[1])):
                if _exploded(x):
                    rows.clear()
                    steps_rec.clear()
                    raise TrainingDiverged(s, name, method, value=x)
        rows.clear()
        steps_rec.clear()

    critic.train()
    for step in range(1, steps + 1):
        x = rs.next()
        y = fs.next()
        loss, stats = critic_step_loss(x, y)
        opt_c.zero_grad(set_to_none=True)
        loss.backward()
        opt_c.step()
        if post_step is not None:
            post_step()
        if step % record_every == 0 or step == steps:
            steps_rec.append(step)
            rows.append((loss.detach(), _scalar(stats.get("w1_estimate"), loss),
                         _scalar(stats.get("penalty"), loss), _scalar(stats.get("grad_norm"), loss)))
            if exact_w1:
                hist["w1_exact"].append(float(w1_fn(x.detach().flatten(1).double().cpu().numpy(),
                                                    y.detach().flatten(1).double().cpu().numpy())))
            if len(rows) >= 50:
                flush()
    flush()
    return hist


def _critic_optimizer(objectives, method: str, critic: nn.Module, hp: dict):
    dummy = nn.Linear(1, 1)  # make_optimizers builds both; only the critic's is used
    return objectives.make_optimizers(method, dummy, critic, **_loss_kwargs(hp))[1]


def best_response(method: str, critic: nn.Module, generator: nn.Module, steps: int, lr: float = 1e-3,
                  batch_size: int = 256, seed: int = 0,
                  record_every: Optional[int] = None) -> Dict[str, list]:
    r"""Train only the generator against a frozen critic: its best response to that critic.

    Each step draws latent codes :math:`z_1..z_n` and takes an Adam step (betas ``(0.5, 0.999)``)
    on the method's generator loss (``wganbook.objectives.generator_loss``), e.g.

    .. math::

        L_G(\theta) = -\frac1n \sum_{j=1}^n f\bigl(G_\theta(z_j)\bigr) \quad\text{(WGAN)},
        \qquad
        \frac1n \sum_{j=1}^n \operatorname{softplus}\bigl(-f(G_\theta(z_j))\bigr)
        \quad\text{(gan-ns)},

    with the critic's parameters fixed. Both losses decrease in :math:`f` at every sample, so the
    optimal generator for a fixed critic puts all its mass where :math:`f` is largest: a sum of
    deltas at the critic's maxima (WGAN, Sec. 3), or, for a critic that grows without bound (a
    ReLU network extrapolates linearly), samples that run off to infinity. The critic's
    ``requires_grad`` flags are restored afterwards.

    Parameters
    ----------
    method : str
        A key of ``wganbook.objectives.METHODS`` except ``wgan-ct`` (whose generator loss needs
        real samples).
    critic : torch.nn.Module
        The frozen critic (not modified).
    generator : torch.nn.Module
        Trained in place (``z_dim`` attribute or ``sample_z`` method).
    steps : int
        Generator steps (>= 1).
    lr : float, optional
        Adam learning rate (> 0).
    batch_size : int, optional
        Latent codes per step.
    seed : int, optional
        Seed of the latent codes.
    record_every : int, optional
        Record every that many steps (default ``steps // 20``, at least 1).

    Returns
    -------
    dict of str to list
        ``"step"``, ``"score"`` (mean critic score of the batch's samples) and
        ``"generator_loss"``.
    """
    from . import objectives
    from .presets import Int

    m = objectives.get_method(method)
    if m.name == "wgan-ct":
        raise ValueError("method must be one whose generator loss needs only the fakes; wgan-ct "
                         "needs real samples too: use one of "
                         + ", ".join(k for k in objectives.METHODS if k != "wgan-ct"))
    if not isinstance(critic, nn.Module) or not isinstance(generator, nn.Module):
        raise TypeError("critic and generator must be torch.nn.Module")
    steps = _check("steps", steps, Int(lo=1))
    batch_size = _check("batch_size", batch_size, Int(lo=1))
    seed = _check("seed", seed, Int(lo=0))
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a float > 0, got {lr!r}")
    if record_every is None:
        record_every = max(1, steps // 20)
    record_every = _check("record_every", record_every, Int(lo=1))
    params = [p for p in generator.parameters()]
    device = params[0].device if params else torch.device("cpu")
    rng = torch.Generator(device=device)
    rng.manual_seed(seed)
    opt = torch.optim.Adam(params, lr=float(lr), betas=(0.5, 0.999))
    flags = [p.requires_grad for p in critic.parameters()]
    hist: Dict[str, list] = {"step": [], "score": [], "generator_loss": []}
    try:
        for p in critic.parameters():
            p.requires_grad_(False)
        for step in range(1, steps + 1):
            fake = generator(sample_noise(generator, batch_size, rng, device))
            loss = objectives.generator_loss(m.name, critic, None, fake)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % record_every == 0 or step == steps:
                with torch.no_grad():
                    hist["step"].append(step)
                    hist["score"].append(float(critic(fake.detach()).mean()))
                    hist["generator_loss"].append(float(loss.detach()))
    finally:
        for p, f in zip(critic.parameters(), flags):
            p.requires_grad_(f)
    return hist

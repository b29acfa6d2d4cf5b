r"""The training loop every method shares: the run resolved once, then a small loop with callbacks.

:func:`train` resolves a configuration once into a :class:`TrainState` (hyper-parameters, device,
checkpoint folder -- given, or automatic under ``checkpoint_root`` --, seeded models, optimisers,
data, a checkpoint to resume), builds the callbacks the configuration asks for
(:mod:`wganbook.train.callbacks`: exact W1, the metric, checkpoints, progress) and runs
:func:`run_loop`, which knows only the updates and the statistics recorder.

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
``DIVERGENCE_THRESHOLD`` in absolute value, stops training with :class:`~wganbook.train.history.TrainingDiverged` at the
next copy (the exploded state is not checkpointed). Checkpoints hold everything needed to continue
bit-identically on a CPU: models, optimisers, all random-number-generator states, the data
order, the step and the history -- in plain types and tensors only, so that they are read with
``torch.load(weights_only=True)`` (a checkpoint cannot run code). They are written to a
temporary file, fsynced and renamed; temporary files of dead processes are removed.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from wganbook import models, objectives
from wganbook.data import load_images, sample_toy, seed_everything
from wganbook.lipschitz import clip_weights_
from wganbook.models import resolve_device, sample_noise
from wganbook.train.callbacks import Callback, default_callbacks
from wganbook.train.checkpoint import (
    _RESUME_KEYS,
    CHECKPOINT_NAME,
    CheckpointError,
    TrainingInterrupted,
    _check_resume_env,
    _set_rng_state,
    check_output_dir,
    load_checkpoint,
    remove_stale_temp_files,
    run_folder_name,
)
from wganbook.train.config import TrainConfig, TrainResult
from wganbook.train.history import _empty_history, _norm, _Recorder

__all__ = [
    "train",
    "run_loop",
    "TrainState",
]


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
        idx = self.perm[self.pos : self.pos + self.bs]
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
# the run: resolved once
# ---------------------------------------------------------------------------------------------
def _loss_kwargs(hp: Dict[str, Any]) -> Dict[str, Any]:
    """The entries of resolved hyper-parameters that ``wganbook.objectives`` takes."""
    return {k: v for k, v in hp.items() if k in objectives.HPARAM_KEYS}


@dataclass
class TrainState:
    """One run as the loop and its callbacks see it; built once by :func:`train` from the config.

    Attributes
    ----------
    config : TrainConfig
        The effective configuration (with the automatic checkpoint folder, if any).
    hp : dict
        The resolved hyper-parameters (``config.hparams()``, resolved once).
    device : torch.device
    generator, critic : torch.nn.Module
    opt_g, opt_c : torch.optim.Optimizer
    stream : object
        The real-data minibatches (``next()``, ``state()``, ``load()``).
    gens : dict
        ``"data"`` and ``"noise"`` random-number generators (saved in checkpoints).
    history : dict
        The history being recorded.
    recorder : object
        The per-step statistics and the divergence guard.
    loss_fn, post_step : object
        The critic loss ``(real, fake) -> (loss, stats)`` and the post-step (clipping) or None.
    start : int
        The step the run starts from (a checkpoint's step, else 0).
    step : int
        The current generator step (set before the callbacks run).
    done : int
        The last step whose callbacks all ran.
    checkpoint_path : object
        The checkpoint file (a ``pathlib.Path``), or None without checkpoints.
    checkpoint_step : int or None
        The step of the checkpoint on disk (None: none).
    real, fake : torch.Tensor
        The last critic step's batches.
    """

    config: TrainConfig
    hp: Dict[str, Any]
    device: torch.device
    generator: nn.Module
    critic: nn.Module
    opt_g: Any
    opt_c: Any
    stream: Any
    gens: Dict[str, torch.Generator]
    history: Dict[str, list]
    recorder: _Recorder
    loss_fn: Callable
    post_step: Optional[Callable]
    start: int = 0
    step: int = 0
    done: int = 0
    checkpoint_path: Optional[Path] = None
    checkpoint_step: Optional[int] = None
    real: Optional[torch.Tensor] = None
    fake: Optional[torch.Tensor] = None


def _with_checkpoint_root(config: TrainConfig, resume: bool, root, data, generator, critic):
    """``config`` with the folder ``root / run_folder_name(...)`` when ``root`` is given and the
    config has no ``checkpoint_dir``; an existing checkpoint there is resumed."""
    if root is None or config.checkpoint_dir is not None:
        return config, resume
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"checkpoint_root must be a str or path (or None), got {type(root).__name__}")
    folder = Path(root) / run_folder_name(config, data=data, generator=generator, critic=critic)
    every = config.checkpoint_every or max(1, min(500, config.steps // 10))
    config = dataclasses.replace(config, checkpoint_dir=str(folder), checkpoint_every=every)
    return config, resume or (folder / CHECKPOINT_NAME).is_file()


def _read_checkpoint(cfg: TrainConfig, ckpt_path: Optional[Path], resume: bool, device) -> Optional[dict]:
    """Check the checkpoint folder and, with ``resume``, read and check its checkpoint (before any work)."""
    if ckpt_path is None:
        return None
    check_output_dir(cfg.checkpoint_dir, "checkpoint_dir")
    remove_stale_temp_files(cfg.checkpoint_dir, CHECKPOINT_NAME)
    if ckpt_path.is_dir():
        raise CheckpointError(
            f"{os.fspath(ckpt_path)} is a folder; the checkpoint file of "
            f"checkpoint_dir must be a file there: remove or rename that folder"
        )
    if not resume:
        return None
    ck = load_checkpoint(cfg.checkpoint_dir, map_location=device)
    old, now = ck["config"], cfg.to_dict()
    diff = [k for k in _RESUME_KEYS if _norm(old.get(k)) != _norm(now.get(k))]
    if diff:
        raise ValueError(
            f"checkpoint in {cfg.checkpoint_dir} was written with a different configuration "
            f"({', '.join(f'{k}: {old.get(k)!r} != {getattr(cfg, k)!r}' for k in diff)})"
        )
    if int(ck["step"]) > cfg.steps:
        raise ValueError(
            f"steps={cfg.steps} is below the step of the checkpoint {ckpt_path} "
            f"({int(ck['step'])}); steps is the total to reach, so give "
            f"steps >= {int(ck['step'])} (equal: restore the finished run)"
        )
    _check_resume_env(ck, ckpt_path)
    return ck


def _prepare(cfg: TrainConfig, resume: bool, data, generator, critic) -> TrainState:
    """Build the run of ``cfg``: paths checked and a checkpoint read before any work, then the seeded
    models, optimisers and data, restored from the checkpoint when resuming."""
    if resume and cfg.checkpoint_dir is None:
        raise ValueError("resume=True needs config.checkpoint_dir (the folder holding checkpoint.pt)")
    hp = cfg.hparams()
    device = resolve_device(cfg.device)
    ckpt_path = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME if cfg.checkpoint_dir else None
    ck = _read_checkpoint(cfg, ckpt_path, resume, device)
    data_rng = seed_everything(cfg.seed)
    noise_rng = torch.Generator(device=device)
    noise_rng.manual_seed(cfg.seed + 7919)
    if generator is None:
        generator = models.make_generator(cfg.data, z_dim=cfg.z_dim, width=cfg.width, depth=cfg.depth)
    if critic is None:
        critic = models.make_critic(
            cfg.data, width=cfg.width, depth=cfg.depth, norm=cfg.norm, spectral=bool(hp.get("spectral", False))
        )
    objectives.check_critic_for_method(cfg.method, critic, penalty=hp["penalty"])
    generator, critic = generator.to(device), critic.to(device)
    opt_g, opt_c = objectives.make_optimizers(cfg.method, generator, critic, **_loss_kwargs(hp))
    if data is None:
        data = _toy_fn(cfg.data, data_rng) if cfg.is_toy else load_images(cfg.data)[0]
    _check_data_shape(data, generator)
    stream = _make_stream(data, hp["batch_size"], data_rng, device, "data")
    gens = {"data": data_rng, "noise": noise_rng}
    history, start = _empty_history(), 0
    if ck is not None:
        generator.load_state_dict(ck["generator"])
        critic.load_state_dict(ck["critic"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_c.load_state_dict(ck["opt_c"])
        _set_rng_state(ck["rng"], gens)
        stream.load(ck.get("data", {}))
        history, start = ck["history"], int(ck["step"])
    loss_fn, post_step = _prepared_losses(cfg.method, critic, hp, noise_rng, cfg.track_grad_norm)
    return TrainState(
        config=cfg,
        hp=hp,
        device=device,
        generator=generator,
        critic=critic,
        opt_g=opt_g,
        opt_c=opt_c,
        stream=stream,
        gens=gens,
        history=history,
        recorder=_Recorder(history, cfg.method),
        loss_fn=loss_fn,
        post_step=post_step,
        start=start,
        step=start,
        done=start,
        checkpoint_path=ckpt_path,
        checkpoint_step=start if ck is not None else None,
    )


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------
def run_loop(state: TrainState, callbacks: Sequence[Callback] = ()) -> None:
    r"""Train ``state`` from ``state.start`` to ``state.config.steps`` generator steps.

    Per generator step: ``n_critic`` critic steps (100 during WGAN's warm-up), each on a fresh real
    batch and a fresh (detached) fake batch, minimising the critic loss, then the post-step
    (clipping); then one generator step on :math:`-\bar f(G(z))` with the critic frozen (skipped
    with ``fixed_generator``). The step's statistics go to ``state.recorder`` (copied to the host
    and guarded every ``log_every`` steps), then each callback's ``on_step`` runs; after the last
    step the statistics are flushed and each ``on_end`` runs; ``close`` always runs.

    Raises
    ------
    TrainingDiverged
        From the recorder's divergence guard.
    TrainingInterrupted
        On ``KeyboardInterrupt``: the last step done (or checkpointed) and the checkpoint's step.
    """
    cfg, hp, rec = state.config, state.hp, state.recorder
    generator, critic, device = state.generator, state.critic, state.device
    noise_rng, opt_g, opt_c = state.gens["noise"], state.opt_g, state.opt_c
    n_critic, warmup, bs = int(hp["n_critic"]), bool(hp["warmup"]), hp["batch_size"]
    critic_params = [p for p in critic.parameters() if p.requires_grad]
    zero = torch.zeros((), device=device)
    generator.train()
    critic.train()
    try:
        for step in range(state.start + 1, cfg.steps + 1):
            nc = 100 if warmup and (step - 1 < 25 or (step - 1) % 500 == 0) else n_critic
            for _ in range(nc):
                real = state.stream.next()
                with torch.no_grad():
                    fake = generator(sample_noise(generator, real.shape[0], noise_rng, device))
                loss, stats = state.loss_fn(real, fake)
                opt_c.zero_grad(set_to_none=True)
                loss.backward()
                opt_c.step()
                if state.post_step is not None:
                    state.post_step()
            g_loss = zero
            if not cfg.fixed_generator:
                for p in critic_params:
                    p.requires_grad_(False)
                g_fake = generator(sample_noise(generator, bs, noise_rng, device))
                g_loss = objectives.generator_loss(cfg.method, critic, real, g_fake)
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                for p in critic_params:
                    p.requires_grad_(True)
            state.step, state.real, state.fake = step, real, fake
            rec.add(step, critic_loss=loss, generator_loss=g_loss, **stats)
            if step % cfg.log_every == 0:
                rec.flush()
            for cb in callbacks:
                cb.on_step(state)
            state.done = step
        rec.flush()
        for cb in callbacks:
            cb.on_end(state)
    except KeyboardInterrupt as exc:
        if isinstance(exc, TrainingInterrupted):
            raise
        saved = state.checkpoint_step
        raise TrainingInterrupted(max(state.done, saved or 0), saved, cfg.checkpoint_dir) from exc
    finally:
        for cb in callbacks:
            cb.close()


def train(
    config: TrainConfig,
    data=None,
    generator: Optional[nn.Module] = None,
    critic: Optional[nn.Module] = None,
    resume: bool = False,
    *,
    checkpoint_root: Union[None, str, os.PathLike] = None,
    callbacks: Optional[Sequence[Callback]] = None,
) -> TrainResult:
    r"""Train a (W)GAN with the method of ``config``.

    Per generator step :math:`t` (``n_c`` = ``n_critic``, or 100 during WGAN's warm-up):

    .. math::

        &\text{repeat } n_c \text{ times: } x \sim P_r,\ z \sim \mathcal N(0, I),\quad
          \theta_C \leftarrow \mathrm{opt}_C\bigl(\nabla_{\theta_C}
          [\bar f(G(z)) - \bar f(x) + \text{penalty}]\bigr),\ \text{post-step (clip)}\\
        &z \sim \mathcal N(0, I),\quad \theta_G \leftarrow \mathrm{opt}_G\bigl(\nabla_{\theta_G}
          [-\bar f(G(z))]\bigr)

    The configuration is resolved once (:class:`TrainState`); the loop (:func:`run_loop`) then
    runs the callbacks the configuration asks for (exact W1, metric, checkpoints, progress:
    :func:`wganbook.train.callbacks.default_callbacks`) and the caller's ``callbacks``.

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
    checkpoint_root : str or path-like, optional
        Automatic checkpoints (the book runner passes its chapter's folder): when given and
        ``config.checkpoint_dir`` is None, the run checkpoints in ``checkpoint_root /``
        :func:`~wganbook.train.checkpoint.run_folder_name` ``(config, ...)`` -- a name made of a
        digest of everything that decides the run -- every ``checkpoint_every`` steps (0: a tenth
        of the run, at most 500), and resumes the checkpoint found there. Two calls with the same
        configuration, data and models share the folder (they are the same run); a run that
        had finished is restored at once. ``result.config`` stays the config as given.
    callbacks : sequence of Callback, optional
        The caller's own callbacks (:class:`wganbook.train.callbacks.Callback`), run after the
        exact W1 and the metric and before the checkpoint of each step.

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
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    t0 = time.perf_counter()
    cfg, resume = _with_checkpoint_root(config, resume, checkpoint_root, data, generator, critic)
    state = _prepare(cfg, resume, data, generator, critic)
    run_loop(state, default_callbacks(cfg, state.start, callbacks))
    return TrainResult(
        generator=state.generator,
        critic=state.critic,
        history=state.history,
        config=config,
        hparams=state.hp,
        wall_time=time.perf_counter() - t0,
        device=str(state.device),
        step=max(state.start, cfg.steps),
        optimizers=(state.opt_g, state.opt_c),
        checkpoint_dir=cfg.checkpoint_dir,
    )


def _prepared_losses(
    method: str, critic: nn.Module, hp: Dict[str, Any], rng: torch.Generator, track_grad_norm: bool = False
):
    """The per-step critic loss and post-step of resolved hyper-parameters ``hp`` (validated once,
    not at every step).

    Returns ``(loss_fn(real, fake) -> (loss, stats), post_step() or None)``.
    """
    m = objectives.get_method(method)
    full = _loss_kwargs(hp)

    def loss_fn(real, fake):
        return objectives._critic_loss(m, critic, real, fake, rng, full, track_grad_norm)

    post = None
    if m.uses_clipping:

        def post():
            clip_weights_(critic, full["clip"])

    return loss_fn, post


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
        raise TypeError(
            f"data must be a real-valued tensor (float, or int converted with .float()); got dtype {data.dtype}"
        )
    want = _sample_shape(generator)
    if want is not None and data.ndim >= 1 and tuple(data.shape[1:]) != want:
        raise ValueError(
            f"data must have shape (N, {', '.join(map(str, want))}) -- the generator's "
            f"sample shape; got {tuple(data.shape)}"
        )

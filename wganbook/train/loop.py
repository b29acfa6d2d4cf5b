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
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import nn

from wganbook import metrics, models, objectives
from wganbook.data import load_images, sample_toy, seed_everything
from wganbook.models import resolve_device, sample_noise
from wganbook.train.checkpoint import (
    _CKPT_VERSION,
    _RESUME_KEYS,
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    CheckpointError,
    TrainingInterrupted,
    _atomic_save,
    _check_resume_env,
    _DeferSignals,
    _env_info,
    _rng_state,
    _set_rng_state,
    check_output_dir,
    load_checkpoint,
    remove_stale_temp_files,
)
from wganbook.train.config import _HP_KEYS, TrainConfig, TrainResult
from wganbook.train.history import _empty_history, _jsonable, _norm, _record_eval, _Recorder
from wganbook.transport import w1

__all__ = [
    "train",
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
# the loop
# ---------------------------------------------------------------------------------------------
def _loss_kwargs(hp: Dict[str, Any]) -> Dict[str, Any]:

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
    w1_fn = w1 if cfg.w1_every else None

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

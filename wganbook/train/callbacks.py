"""The training loop's callbacks: exact-W1 tracking, metric evaluation, checkpoints and progress.

:func:`~wganbook.train.loop.train` runs one loop (:func:`wganbook.train.loop.run_loop`) that knows
only the critic and generator updates and the statistics recorder; everything else it does at a
generator step is a callback, an object with three methods (subclass :class:`Callback`, whose
methods do nothing):

``on_step(state)``
    after generator step ``state.step`` (its statistics are in ``state.recorder``, copied to
    ``state.history`` every ``log_every`` steps; ``state.real`` / ``state.fake`` are the last
    critic step's batches);
``on_end(state)``
    after the last step, once the statistics are flushed (not after an error);
``close()``
    always, also after an error or an interrupt.

:func:`default_callbacks` builds them from the run's configuration, in the order they run:
:class:`ExactW1` (``w1_every``), :class:`Evaluate` (``eval_every``, with the caller's ``eval_fn``
or the built-in metric of :func:`builtin_metric`), the caller's own callbacks, then
:class:`Checkpointer` (``checkpoint_dir``) -- so a checkpoint of step t holds everything recorded
at step t -- and :class:`Progress` (``progress``).
"""

from __future__ import annotations

import os
import sys
from typing import Callable, List, Optional, Sequence

from wganbook import metrics
from wganbook._util import jsonable
from wganbook.train.checkpoint import (
    _CKPT_VERSION,
    CHECKPOINT_FORMAT,
    _atomic_save,
    _DeferSignals,
    _env_info,
    _rng_state,
)
from wganbook.train.config import TrainConfig
from wganbook.train.history import _record_eval
from wganbook.transport import w1

__all__ = [
    "Callback",
    "ExactW1",
    "Evaluate",
    "Checkpointer",
    "Progress",
    "builtin_metric",
    "default_callbacks",
]


class Callback:
    """Base class of the loop's callbacks: every hook does nothing (override those you need)."""

    def on_step(self, state) -> None:
        """After each generator step."""

    def on_end(self, state) -> None:
        """After the last step (statistics flushed)."""

    def close(self) -> None:
        """Always, last (also after an error)."""


class ExactW1(Callback):
    r"""Every ``every`` steps, the exact W1 (Euclidean cost) between the last critic step's real and
    fake batches: ``history["w1_step"]``, ``history["w1_exact"]``."""

    def __init__(self, every: int):
        self.every = every

    def on_step(self, state) -> None:
        if state.step % self.every == 0:
            state.history["w1_step"].append(state.step)
            state.history["w1_exact"].append(
                float(
                    w1(
                        state.real.detach().flatten(1).double().cpu().numpy(),
                        state.fake.detach().flatten(1).double().cpu().numpy(),
                    )
                )
            )


class Evaluate(Callback):
    """Every ``every`` steps, ``fn(generator, step)`` (a float or a dict of floats) into the history:
    ``history["eval_step"]`` and one column per key (``"metric"`` for a float)."""

    def __init__(self, fn: Callable, every: int):
        self.fn, self.every = fn, every

    def on_step(self, state) -> None:
        if state.step % self.every == 0:
            _record_eval(state.history, state.step, self.fn(state.generator, state.step))


class Checkpointer(Callback):
    """Write the run's checkpoint (``state.checkpoint_path``) every ``every`` steps (0: only at the
    end) and after the last step; the statistics are flushed first (an exploded state raises
    :class:`~wganbook.train.history.TrainingDiverged` and is not saved). The write is atomic and holds
    SIGINT/SIGTERM back; ``state.checkpoint_step`` names the step on disk."""

    def __init__(self, every: int):
        self.every = every

    def on_step(self, state) -> None:
        if self.every and state.step % self.every == 0:
            self.save(state, state.step)

    def on_end(self, state) -> None:
        final = max(state.start, state.config.steps)
        if final > state.start and (not self.every or final % self.every != 0):
            self.save(state, final)

    @staticmethod
    def save(state, step: int) -> None:
        """Flush the statistics and write the checkpoint of ``step``."""
        state.recorder.flush()
        with _DeferSignals():
            _atomic_save(
                {
                    "format": CHECKPOINT_FORMAT,
                    "version": _CKPT_VERSION,
                    "step": step,
                    "config": state.config.to_dict(),
                    "hparams": jsonable(state.hp),
                    "generator": state.generator.state_dict(),
                    "critic": state.critic.state_dict(),
                    "opt_g": state.opt_g.state_dict(),
                    "opt_c": state.opt_c.state_dict(),
                    "rng": _rng_state(state.gens),
                    "data": state.stream.state(),
                    "history": state.history,
                    "env": _env_info(),
                },
                state.checkpoint_path,
            )
            state.checkpoint_step = step


class Progress(Callback):
    """A tqdm progress bar on stderr, with the latest W1 estimate at each statistics copy."""

    def __init__(self, total: int, initial: int, desc: str, log_every: int):
        from tqdm import tqdm

        self.log_every = log_every
        self.bar = tqdm(
            total=total, initial=initial, desc=desc, file=sys.stderr, unit="step", mininterval=0.5, dynamic_ncols=True
        )

    def on_step(self, state) -> None:
        if state.step % self.log_every == 0 and state.history["w1_estimate"]:
            self.bar.set_postfix(w1_est=f"{state.history['w1_estimate'][-1]:.3g}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def show_progress(flag: Optional[bool]) -> bool:
    """``TrainConfig.progress`` resolved: ``None`` means "stderr is a terminal and ``TQDM_DISABLE``
    is unset" (so never in stored notebook outputs)."""
    if flag is not None:
        return flag
    if os.environ.get("TQDM_DISABLE"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def builtin_metric(config: TrainConfig) -> Callable:
    """The built-in metric of ``config.metric`` (default by data) as ``fn(generator, step) -> dict``.

    ``"modes"``: ``{"modes", "high_quality"}`` (:func:`wganbook.metrics.mode_coverage`);
    ``"w1_target"``: exact W1 to the toy target; ``"fd"``: classifier Fréchet distance (the
    classifier is built on first use, then reused). ``config.eval_n`` samples, seeded by
    ``config.seed``.
    """
    metric = config.metric
    if metric is None:
        if config.data in metrics.MODE_DATASETS:
            metric = "modes"
        elif config.is_toy:
            metric = "w1_target"
        else:
            metric = "fd"
    n = config.eval_n
    features = []  # built on first use, then reused (its reference statistics are cached)

    def fn(generator, step):
        if metric == "fd":
            if not features:
                features.append(metrics.ClassifierFeatures(config.data))
            return {"fd": metrics.sample_quality(generator, config.data, n=n, seed=config.seed, features=features[0])}
        x = metrics.generate(generator, n, seed=config.seed + 1)
        if metric == "modes":
            cov = metrics.mode_coverage(x, config.data)
            return {"modes": cov["modes"], "high_quality": cov["high_quality"]}
        return {"w1_target": metrics.w1_to_target(x, config.data, seed=config.seed + 2)}

    return fn


def default_callbacks(
    config: TrainConfig, start: int = 0, extra: Optional[Sequence[Callback]] = None
) -> List[Callback]:
    """The callbacks ``config`` asks for, with the caller's ``extra`` ones before the checkpoint.

    Parameters
    ----------
    config : TrainConfig
        The run's configuration (with its checkpoint folder, if any).
    start : int, optional
        The step the run starts from (a resumed run's progress bar starts there).
    extra : sequence of Callback, optional
        The caller's callbacks (each needs ``on_step``, ``on_end`` and ``close``).

    Returns
    -------
    list of Callback
        ``[ExactW1, Evaluate, *extra, Checkpointer, Progress]``, each only when configured.

    Raises
    ------
    TypeError
        A callback without the three methods.
    """
    extra = list(extra or ())
    for i, cb in enumerate(extra):
        if not all(callable(getattr(cb, name, None)) for name in ("on_step", "on_end", "close")):
            raise TypeError(
                f"callbacks[{i}] must have on_step(state), on_end(state) and close() "
                f"(subclass wganbook.train.Callback); got {type(cb).__name__}"
            )
    cbs: List[Callback] = []
    if config.w1_every:
        cbs.append(ExactW1(config.w1_every))
    if config.eval_every:
        cbs.append(Evaluate(config.eval_fn or builtin_metric(config), config.eval_every))
    cbs += extra
    if config.checkpoint_dir is not None:
        cbs.append(Checkpointer(config.checkpoint_every))
    if show_progress(config.progress):
        cbs.append(Progress(config.steps, start, f"{config.method} {config.data}", config.log_every))
    return cbs

"""Checkpoints: bit-identical resume on a CPU, written atomically, read without running code."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import threading
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch
from torch import nn

from wganbook import __version__
from wganbook._util import atomic_write, jsonable

__all__ = [
    "CHECKPOINT_NAME",
    "TrainingInterrupted",
    "CheckpointError",
    "params_sha256",
    "remove_stale_temp_files",
    "check_output_dir",
    "check_output_file",
    "load_checkpoint",
    "run_folder_name",
]

#: File name of the (single, latest) checkpoint in ``checkpoint_dir``.
CHECKPOINT_NAME = "checkpoint.pt"
_CKPT_VERSION = 2
#: Value of the checkpoint's ``"format"`` key (tells a wganbook checkpoint from other files).
CHECKPOINT_FORMAT = "wganbook-checkpoint"
# config fields that must agree between a checkpoint and the run that resumes it
_RESUME_KEYS = (
    "method",
    "data",
    "seed",
    "batch_size",
    "n_critic",
    "lr",
    "lr_g",
    "betas",
    "lam",
    "center",
    "penalty",
    "optimizer",
    "clip",
    "k",
    "p",
    "strategy",
    "width",
    "depth",
    "z_dim",
    "norm",
    "warmup",
    "fixed_generator",
    "toy_defaults",
)


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :func:`~wganbook.train.loop.train` on Ctrl-C (``KeyboardInterrupt``) during training.

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


#: Config fields that do not change a run's result (left out of :func:`run_folder_name`'s digest).
_NOT_IN_RUN_DIGEST = ("checkpoint_dir", "checkpoint_every", "log_every", "progress")


def _code_digest(code) -> str:
    """SHA-256 of a code object's bytecode and constants (nested code objects likewise; no addresses)."""
    h = hashlib.sha256(code.co_code)
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            c = _code_digest(c)
        elif isinstance(c, frozenset):  # `x in {"a", "b"}`: its repr's order depends on the string hash seed
            c = sorted(map(repr, c))
        h.update(repr(c).encode())
    return h.hexdigest()


def _fingerprint(obj: Any, depth: int = 0) -> Any:
    """A stable, JSON-able description of a run's data, model or ``eval_fn`` argument (None: the
    default): tensors and arrays by their bytes, models by class and parameters, functions by name
    and code, other objects by class and (two levels deep) their attributes."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.ndarray):
        obj = torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous()
        h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b"")
        return "tensor:" + h.hexdigest()
    if isinstance(obj, nn.Module):
        return f"module:{type(obj).__module__}.{type(obj).__qualname__}:{params_sha256(obj)}"
    if isinstance(obj, (list, tuple)) and depth < 2:
        return [_fingerprint(v, depth + 1) for v in obj]
    code = getattr(obj, "__code__", None)
    if code is not None:  # a Python function: its name and its code (not the state it closes over)
        return f"function:{obj.__module__}.{obj.__qualname__}:{_code_digest(code)}"
    kind = obj if isinstance(obj, type) else type(obj)
    name = f"object:{kind.__module__}.{kind.__qualname__}"
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict) and state and depth < 2 and not isinstance(obj, type):
        return [name, {str(k): _fingerprint(v, depth + 1) for k, v in sorted(state.items())}]
    return name


def run_folder_name(
    config: Any, data: Any = None, generator: Optional[nn.Module] = None, critic: Optional[nn.Module] = None
) -> str:
    """The name of a run's automatic checkpoint folder: ``<method>-<data>-<digest>``.

    The digest (SHA-256, 16 hexadecimal characters) covers everything that decides the run: the
    configuration's ``to_dict()`` without the fields that only say how it is watched or saved
    (``checkpoint_dir``, ``checkpoint_every``, ``log_every``, ``progress``), the ``eval_fn``, and the
    ``data``, ``generator`` and ``critic`` given to :func:`~wganbook.train.loop.train` (a tensor by its
    bytes, a model by its class and initial parameters, a function by its name and code -- not by
    the state it closes over --, another object by its class and attributes). Two
    calls of the same run get the same name (in any process); a run that differs in any setting
    -- ``steps`` and ``seed`` included -- gets another.

    Parameters
    ----------
    config : TrainConfig
    data, generator, critic : optional
        The arguments of ``train``.

    Returns
    -------
    str
    """
    items = {k: v for k, v in config.to_dict().items() if k not in _NOT_IN_RUN_DIGEST}
    items["eval_fn"] = _fingerprint(config.eval_fn)
    items["given"] = [_fingerprint(data), _fingerprint(generator), _fingerprint(critic)]
    blob = json.dumps(jsonable(items), sort_keys=True)
    return f"{config.method}-{config.data}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


# ---------------------------------------------------------------------------------------------
# RNG state
# ---------------------------------------------------------------------------------------------
def _rng_state(gens: Dict[str, torch.Generator]) -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    st = {
        "torch": torch.get_rng_state(),
        # plain types and a tensor, so that torch.load(weights_only=True) reads it back
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
        "gens": {k: g.get_state() for k, g in gens.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict, gens: Dict[str, torch.Generator]) -> None:
    torch.set_rng_state(st["torch"])
    npst = st["numpy"]
    np.random.set_state(
        (npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached_gaussian"])
    )
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

    Atomic writes (``wganbook._util.atomic_write``) go to such a temporary file first
    (``wganbook._util.temp_path``); a process killed mid-write leaves it behind.
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
        mid = p.name[len(prefix) : -len(".tmp")]
        if not mid.isdigit() or _pid_alive(int(mid)):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def _atomic_save(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` to ``path`` through ``wganbook._util.atomic_write`` (temporary file
    ``.<name>.<pid>.tmp``, fsync, rename, fsync of the folder)."""
    atomic_write(path, lambda f: torch.save(obj, f))


class _DeferSignals:
    """Hold SIGINT and SIGTERM back while a checkpoint is written and recorded (main thread).

    On entry each of the two handlers that is set from Python (``signal.getsignal`` not None) is
    swapped for a recorder; on exit the handlers are put back and each signal that arrived
    meanwhile is delivered once: a callable handler is called, ``SIG_DFL`` re-raises the signal
    (``signal.raise_signal``), ``SIG_IGN`` drops it. So an interrupt never cuts a write short and
    the reported checkpoint step is the one on disk. Blocking with ``pthread_sigmask`` would not
    do: it holds the signal back for the calling thread only, the kernel hands it to another
    (e.g. one of torch's) and Python still runs the handler in the main thread at its next
    bytecode, in the middle of the write. Outside the main thread (where handlers cannot be set
    and Python never runs them) the block does nothing.
    """

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))

    def __enter__(self):
        self.old: Dict[int, Any] = {}
        self.pending: List[int] = []
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in self.SIGNALS:
            handler = signal.getsignal(sig)
            if handler is not None:
                self.old[sig] = signal.signal(sig, self._record)
        return self

    def _record(self, signum, frame) -> None:
        if signum not in self.pending:
            self.pending.append(signum)

    def __exit__(self, *exc):
        for sig, handler in self.old.items():
            signal.signal(sig, handler)
        pending, self.pending = self.pending, []
        for sig in pending:
            handler = self.old[sig]
            if handler == signal.SIG_DFL:
                signal.raise_signal(sig)
            elif callable(handler):
                handler(sig, None)
        return False


def _probe_write(folder: Path) -> None:
    """Create and remove a small file in ``folder``; raises ``OSError`` where that is refused."""
    probe = folder / f".wganbook-probe.{os.getpid()}.tmp"
    with open(probe, "wb") as f:
        f.write(b"")
    probe.unlink()


def _probe_dir(folder: Path, what: str) -> None:
    try:
        _probe_write(folder)
    except OSError as exc:
        raise CheckpointError(
            f"{what} {os.fspath(folder)!s} is not writable ({exc.strerror or exc}); choose a folder you can write to"
        ) from None


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
                raise CheckpointError(
                    f"{what} {os.fspath(folder)} lies below {os.fspath(up)}, which is a "
                    f"file, not a folder; give a folder path"
                )
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(
            f"{what} {os.fspath(folder)} cannot be created ({exc.strerror or exc}); choose a folder you can write to"
        ) from None
    _probe_dir(folder, what)
    return folder


def check_output_file(path: Union[str, os.PathLike], what: str = "out", overwrite: bool = True, hint: str = "") -> Path:
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
    todo = todo or (
        "delete it (or give another checkpoint_dir) and start the run again without resume (command line: --force)"
    )
    return CheckpointError(f"cannot resume from {os.fspath(path)}: {why}; {todo}")


def load_checkpoint(checkpoint_dir: Union[str, os.PathLike], map_location="cpu") -> dict:
    """Load the checkpoint written by :func:`~wganbook.train.loop.train` in ``checkpoint_dir``.

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
        raise _checkpoint_error(path, "it is a folder, not a checkpoint file", "remove or rename that folder")
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint to resume from: {path} does not exist (run once with checkpoint_dir set, or drop resume)"
        )
    if path.stat().st_size == 0:
        raise _checkpoint_error(path, "the file is empty (0 bytes; a write was cut short)")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "numpy" in msg:
            why = (
                "it was written by an older wganbook (checkpoint format 1, which stored NumPy "
                "objects that weights_only=True refuses) or by other software"
            )
        elif "global" in msg.lower():
            why = "it contains objects other than tensors and plain data (not a wganbook checkpoint)"
        else:
            why = "the file is truncated or not a torch checkpoint"
        raise _checkpoint_error(path, why) from None
    except (
        RuntimeError,
        EOFError,
        OSError,
        zipfile.BadZipFile,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
    ) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise _checkpoint_error(path, f"the file is truncated or not a torch checkpoint ({first})") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        if isinstance(ck, dict) and ck.get("version") == 1 and "config" in ck:
            why = "it was written by an older wganbook (checkpoint format 1)"
        else:
            why = "it is not a wganbook checkpoint"
        raise _checkpoint_error(path, why)
    if ck.get("version") != _CKPT_VERSION:
        raise _checkpoint_error(
            path,
            f"checkpoint format version {ck.get('version')!r} is not supported "
            f"(this wganbook reads version {_CKPT_VERSION})",
        )
    missing = [
        k for k in ("step", "config", "generator", "critic", "opt_g", "opt_c", "rng", "data", "history") if k not in ck
    ]
    if missing:
        raise _checkpoint_error(path, f"it lacks {', '.join(missing)} (incomplete checkpoint)")
    return ck


def _check_resume_env(ck: dict, path: Path) -> None:
    env = ck.get("env") or {}
    now = _env_info()
    diff = [
        f"{k} {env.get(k)!r} (now {now[k]!r})"
        for k in ("torch", "num_threads")
        if env.get(k) is not None and env.get(k) != now[k]
    ]
    if diff:
        warnings.warn(
            f"resuming {os.fspath(path)}, which was written with {' and '.join(diff)}: the "
            f"result may differ from an uninterrupted run (set torch.set_num_threads / "
            f"OMP_NUM_THREADS as before for a bit-identical continuation)",
            RuntimeWarning,
            stacklevel=3,
        )


def _env_info() -> dict:

    return {"torch": str(torch.__version__), "num_threads": int(torch.get_num_threads()), "wganbook": str(__version__)}

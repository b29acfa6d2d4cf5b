"""Command line: ``python -m wganbook train ...``, ``book ...``, ``claims ...`` and ``stale`` (also the
``wganbook`` console script).

Subcommands are registered by functions ``add_<name>_subcommand(subparsers)`` listed in
``SUBCOMMANDS``; each sets ``func`` (``args -> exit code``) on its parser. ``build_parser()``
assembles them, ``main(argv)`` runs one.
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import sys
from pathlib import Path
from typing import Callable, List, Optional

from wganbook import __version__, metrics
from wganbook._util import Float, Int, Spec, atomic_write, check_value
from wganbook.bookkit.claims import add_claims_subcommand
from wganbook.bookkit.digest import add_stale_subcommand
from wganbook.bookkit.presets import get_preset
from wganbook.bookkit.runner import add_book_subcommand
from wganbook.data import IMAGE_DATASETS, TOY_DATASETS
from wganbook.objectives import METHODS
from wganbook.schema import SCHEMA
from wganbook.train.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    TrainingInterrupted,
    check_output_dir,
    check_output_file,
    load_checkpoint,
    params_sha256,
    remove_stale_temp_files,
)
from wganbook.train.config import TrainConfig
from wganbook.train.history import TrainingDiverged
from wganbook.train.loop import train

__all__ = ["build_parser", "main", "add_train_subcommand", "SUBCOMMANDS", "train_summary"]


def _choices(kind: str):
    if kind == "method":
        return tuple(METHODS)

    return tuple(TOY_DATASETS) + tuple(IMAGE_DATASETS)


def _arg(spec: Spec) -> Callable[[str], object]:
    """An argparse ``type``: the text read as an int or a float (``spec.kind``), then checked by
    :func:`wganbook._util.check_value`; the message names the allowed values."""

    def parse(text: str):
        try:
            return check_value("value", int(text) if spec.kind == "int" else float(text), spec)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be {spec.describe()}, got {text!r}") from None

    return parse


_positive_int = _arg(Int(lo=1))
_nonneg_int = _arg(Int(lo=0))
_positive_float = _arg(Float(lo=0.0, lo_open=True))
_nonneg_float = _arg(Float(lo=0.0))


#: Range of ``--eval-n`` (2: a covariance needs two samples; the upper bound keeps memory sane).
EVAL_N_RANGE = (2, 1_000_000)


def _device(text: str) -> str:
    base, _, idx = text.partition(":")
    if text in ("auto", "cpu", "cuda", "mps") or (base == "cuda" and idx.isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"invalid device {text!r}; choose from auto, cpu, cuda, cuda:N, mps")


class _HelpFormatter(argparse.HelpFormatter):
    """Append "(default: X)" to a flag's help when X is not None."""

    def _get_help_string(self, action):
        text = action.help or ""
        d = action.default
        if (
            "%(default)" not in text
            and d is not None
            and d is not False
            and d is not argparse.SUPPRESS
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


def add_train_subcommand(subparsers) -> argparse.ArgumentParser:
    """Register ``train``: one training run, a JSON summary on stdout and in ``--out``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``parser.add_subparsers()``.

    Returns
    -------
    argparse.ArgumentParser
        The ``train`` parser.
    """

    d = get_preset("train", "quick")
    p = subparsers.add_parser(
        "train",
        help="train one (W)GAN and write a JSON summary",
        description="Train one (W)GAN with the book's training loop and print a JSON summary "
        "(configuration, final metrics, wall time, device, SHA-256 of the final "
        "generator and critic). Hyper-parameters not given take the method's defaults "
        "(with the toy-script overrides on 2-D toys).",
        formatter_class=_HelpFormatter,
    )
    p.add_argument(
        "--method",
        default=d["method"],
        choices=_choices("method"),
        metavar="METHOD",
        help="training method; one of: %(choices)s",
    )
    p.add_argument(
        "--dataset",
        default=d["dataset"],
        choices=_choices("dataset"),
        metavar="DATASET",
        help="data (2-D toy or image dataset); one of: %(choices)s",
    )
    p.add_argument(
        "--steps",
        type=_positive_int,
        default=d["steps"],
        help="total number of generator steps (with --resume: the total to reach)",
    )
    p.add_argument("--seed", type=_arg(SCHEMA["seed"]), default=d["seed"], help="random seed, 0 to 2**32 - 1")
    p.add_argument(
        "--device", type=_device, default=d["device"], help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps"
    )
    p.add_argument(
        "--batch-size", type=_positive_int, default=None, help="minibatch size (default: 256 on 2-D toys, 64 on images)"
    )
    p.add_argument(
        "--n-critic", type=_positive_int, default=None, help="critic steps per generator step (default: the method's)"
    )
    p.add_argument("--lr", type=_positive_float, default=None, help="learning rate (default: the method's)")
    p.add_argument(
        "--lam",
        type=_nonneg_float,
        default=None,
        help="penalty weight lambda (default: the method's; 0.1 for wgan-gp/lp on 2-D toys)",
    )
    p.add_argument(
        "--clip", type=_positive_float, default=None, help="weight-clipping bound c for wgan-clip (default 0.01)"
    )
    p.add_argument(
        "--width",
        type=_positive_int,
        default=None,
        help=f"hidden width of both networks (default: {d['toy_width']} on 2-D toys -- "
        "gan_toy.py uses 512 -- and the per-image-size default otherwise)",
    )
    p.add_argument(
        "--depth", type=_positive_int, default=None, help="hidden layers (toys, default 3) or conv blocks (images)"
    )
    p.add_argument(
        "--w1-every", type=_nonneg_int, default=d["w1_every"], help="exact batch W1 every K generator steps (0: off)"
    )
    p.add_argument(
        "--checkpoint-dir",
        default=None,
        help="folder for the checkpoint (written atomically); an existing checkpoint there "
        "is refused without --resume or --force",
    )
    p.add_argument(
        "--checkpoint-every",
        type=_nonneg_int,
        default=0,
        help="checkpoint every N generator steps (0: only at the end)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir up to --steps"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="start over even if --checkpoint-dir holds a checkpoint, and replace an existing --out file",
    )
    p.add_argument(
        "--out",
        default=None,
        help="also write the JSON summary to this file (an existing file is refused without --force or --resume)",
    )
    p.add_argument(
        "--eval-n",
        type=_arg(Int(*EVAL_N_RANGE)),
        default=2048,
        help=f"generated samples for the final metrics, {EVAL_N_RANGE[0]} to "
        f"{EVAL_N_RANGE[1]} (the summary's eval_n says how many each metric used)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: on a terminal)")
    p.set_defaults(func=_run_train, _parser=p)
    return p


#: Subcommand registration functions, in order (the lead may append, e.g., ``add_book_subcommand``).
def _add_book_subcommand(subparsers):

    return add_book_subcommand(subparsers)


def _add_claims_subcommand(subparsers):

    return add_claims_subcommand(subparsers)


def _add_stale_subcommand(subparsers):

    return add_stale_subcommand(subparsers)


SUBCOMMANDS: List[Callable] = [
    add_train_subcommand,
    _add_book_subcommand,
    _add_claims_subcommand,
    _add_stale_subcommand,
]


def build_parser() -> argparse.ArgumentParser:
    """The ``wganbook`` argument parser with every subcommand of ``SUBCOMMANDS``.

    Returns
    -------
    argparse.ArgumentParser
    """

    parser = argparse.ArgumentParser(
        prog="wganbook", description="Helper package of the book 'Why Wasserstein GANs work'."
    )
    parser.add_argument("--version", action="version", version=f"wganbook {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def train_summary(result, eval_n: int = 2048, seed: int = 0) -> dict:
    """JSON-ready summary of a ``TrainResult``: config, final metrics, wall time, device, digests.

    Final metrics: toys -- exact W1 to fresh target samples (``w1_target``), and for the Gaussian
    mixtures the covered modes (``modes`` of ``total_modes``) and the share of high-quality samples;
    ``digits`` -- the classifier Fréchet distance ``fd`` (cheap); always the last critic estimate
    ``w1_estimate`` and, when tracked, the last exact batch ``w1_exact``. ``eval_n`` gives the
    number of generated samples each final metric used (the exact W1 uses at most 2048, the
    Fréchet distance at most 1000).

    Parameters
    ----------
    result : TrainResult
        A finished run.
    eval_n : int, optional
        Generated samples for the metrics.
    seed : int, optional
        Seed of the evaluation samples.

    Returns
    -------
    dict
        ``{"config", "hparams", "metrics", "eval_n", "steps", "wall_time_s", "device",
        "generator_sha256", "critic_sha256", "versions"}``.
    """
    import torch

    cfg = result.config
    hist = result.history
    mets = {}
    used = {}
    if hist.get("w1_estimate"):
        mets["w1_estimate"] = float(hist["w1_estimate"][-1])
    if hist.get("w1_exact"):
        mets["w1_exact"] = float(hist["w1_exact"][-1])
    if cfg.is_toy:
        x = metrics.generate(result.generator, eval_n, seed=seed)
        mets["w1_target"] = float(metrics.w1_to_target(x, cfg.data, n=min(eval_n, 2048)))
        used["w1_target"] = min(eval_n, 2048)
        if cfg.data in metrics.MODE_DATASETS:
            cov = metrics.mode_coverage(x, cfg.data)
            mets.update(modes=cov["modes"], total_modes=cov["total_modes"], high_quality=cov["high_quality"])
            used["modes"] = int(eval_n)
    elif cfg.data == "digits":
        mets["fd"] = float(metrics.sample_quality(result.generator, cfg.data, n=min(eval_n, 1000), seed=seed))
        used["fd"] = min(eval_n, 1000)
    hp = {k: (list(v) if isinstance(v, tuple) else v) for k, v in result.hparams.items()}
    return {
        "config": result.config.to_dict(),
        "hparams": hp,
        "metrics": mets,
        "eval_n": used,
        "steps": int(result.step),
        "wall_time_s": round(float(result.wall_time), 3),
        "device": result.device,
        "generator_sha256": params_sha256(result.generator),
        "critic_sha256": params_sha256(result.critic),
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
    }


def _error(msg: str, code: int = 2) -> int:
    print(f"wganbook train: error: {msg}", file=sys.stderr)
    return code


def _preflight(args) -> None:
    """Check every path ``train`` will read or write, before any training (raises CheckpointError)."""

    if args.out:
        out = check_output_file(
            args.out,
            "--out",
            overwrite=args.force or args.resume,
            hint="pass --force to replace it, or choose another --out",
        )
        remove_stale_temp_files(out.parent, out.name)
    if args.checkpoint_dir:
        folder = check_output_dir(args.checkpoint_dir, "--checkpoint-dir")
        ck = folder / CHECKPOINT_NAME
        if ck.is_dir():
            raise CheckpointError(
                f"--checkpoint-dir {args.checkpoint_dir}: {ck} is a folder, not a checkpoint file; remove or rename it"
            )
        if args.resume:
            if not ck.exists():
                raise CheckpointError(
                    f"--resume: no checkpoint to resume from in --checkpoint-dir "
                    f"{args.checkpoint_dir} ({CHECKPOINT_NAME} does not exist); "
                    f"run once without --resume first"
                )
            step = int(load_checkpoint(folder)["step"])
            if step > args.steps:
                raise CheckpointError(
                    f"--steps {args.steps} is below the step of the checkpoint {ck} "
                    f"({step}); --steps is the total to reach with --resume, so give "
                    f"--steps {step} or more"
                )
        elif ck.exists() and not args.force:
            raise CheckpointError(
                f"--checkpoint-dir {args.checkpoint_dir} already holds a checkpoint "
                f"({ck}); pass --resume to continue it up to --steps, or --force to "
                f"start over and replace it"
            )


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into a KeyboardInterrupt so that training stops the same way."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def _interrupted(exc: BaseException, args) -> int:

    term = isinstance(exc, _Terminated) or isinstance(getattr(exc, "__cause__", None), _Terminated)
    sig = "SIGTERM" if term else "SIGINT (Ctrl-C)"
    if isinstance(exc, TrainingInterrupted):
        where = f"after generator step {exc.step} of {args.steps}"
        ck_step = exc.checkpoint_step
    else:
        where = "before or after the training loop"
        ck_step = None
    if ck_step is not None:
        tail = (
            f"the checkpoint in {args.checkpoint_dir} (step {ck_step}) is valid; continue with the "
            f"same command plus --resume"
        )
    elif args.checkpoint_dir:
        tail = "no checkpoint of this run was written; run the same command again to start over"
    else:
        tail = "nothing was saved (give --checkpoint-dir and --checkpoint-every to keep progress)"
    print(f"wganbook train: interrupted by {sig} {where}; {tail}", file=sys.stderr)
    return 143 if term else 130


def _run_train(args) -> int:
    old = None
    try:
        old = signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main thread: leave SIGTERM alone
        pass
    import warnings

    def one_line(message, category, filename, lineno, file=None, line=None):
        print(f"wganbook train: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line
            return _train_command(args)
    except KeyboardInterrupt as exc:
        return _interrupted(exc, args)
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _train_command(args) -> int:

    parser = args._parser
    if args.resume and not args.checkpoint_dir:
        parser.error("--resume needs --checkpoint-dir (the folder holding the checkpoint)")

    width = args.width
    if width is None and args.dataset in TOY_DATASETS:
        width = get_preset("train", "quick")["toy_width"]
    try:
        cfg = TrainConfig(
            method=args.method,
            data=args.dataset,
            steps=args.steps,
            seed=args.seed,
            device=args.device,
            batch_size=args.batch_size,
            n_critic=args.n_critic,
            lr=args.lr,
            lam=args.lam,
            clip=args.clip,
            width=width,
            depth=args.depth,
            w1_every=args.w1_every,
            checkpoint_dir=args.checkpoint_dir,
            checkpoint_every=args.checkpoint_every,
            eval_n=args.eval_n,
            progress=False if args.no_progress else None,
        )
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    try:
        _preflight(args)
    except (CheckpointError, FileNotFoundError) as exc:
        return _error(str(exc))
    try:
        result = train(cfg, resume=args.resume)
    except TrainingDiverged as exc:
        return _error(str(exc), 3)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        return _error(str(exc))
    summary = train_summary(result, eval_n=args.eval_n, seed=args.seed)
    text = json.dumps(summary, indent=2, sort_keys=False)
    print(text)
    if args.out:
        try:
            atomic_write(Path(args.out), text + "\n")
        except OSError as exc:
            return _error(
                f"--out {args.out} could not be written ({exc.strerror or exc}); the summary is on stdout above", 1
            )
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code (0 on success; argparse exits with 2 on invalid flags).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

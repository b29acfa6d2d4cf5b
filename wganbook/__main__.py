"""Command line: ``python -m wganbook train ...`` and ``python -m wganbook book ...`` (also the
``wganbook`` console script).

Subcommands are registered by functions ``add_<name>_subcommand(subparsers)`` listed in
``SUBCOMMANDS``; each sets ``func`` (``args -> exit code``) on its parser. ``build_parser()``
assembles them, ``main(argv)`` runs one.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional

__all__ = ["build_parser", "main", "add_train_subcommand", "SUBCOMMANDS", "train_summary"]


def _choices(kind: str):
    if kind == "method":
        from .objectives import METHODS

        return tuple(METHODS)
    from .data import IMAGE_DATASETS, TOY_DATASETS

    return tuple(TOY_DATASETS) + tuple(IMAGE_DATASETS)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {v}")
    return v


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an int >= 0, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


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
        if "%(default)" not in text and d is not None and d is not False and d is not argparse.SUPPRESS \
                and action.option_strings:
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
    from .presets import get_preset

    d = get_preset("train", "quick")
    p = subparsers.add_parser(
        "train", help="train one (W)GAN and write a JSON summary",
        description="Train one (W)GAN with the book's training loop and print a JSON summary "
                    "(configuration, final metrics, wall time, device, SHA-256 of the final "
                    "generator and critic). Hyper-parameters not given take the method's defaults "
                    "(with the toy-script overrides on 2-D toys).",
        formatter_class=_HelpFormatter)
    p.add_argument("--method", default=d["method"], choices=_choices("method"), metavar="METHOD",
                   help="training method; one of: %(choices)s")
    p.add_argument("--dataset", default=d["dataset"], choices=_choices("dataset"), metavar="DATASET",
                   help="data (2-D toy or image dataset); one of: %(choices)s")
    p.add_argument("--steps", type=_positive_int, default=d["steps"],
                   help="total number of generator steps (with --resume: the total to reach)")
    p.add_argument("--seed", type=_nonneg_int, default=d["seed"], help="random seed")
    p.add_argument("--device", type=_device, default=d["device"],
                   help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="minibatch size (default: 256 on 2-D toys, 64 on images)")
    p.add_argument("--n-critic", type=_positive_int, default=None,
                   help="critic steps per generator step (default: the method's)")
    p.add_argument("--lr", type=_positive_float, default=None, help="learning rate (default: the method's)")
    p.add_argument("--lam", type=_nonneg_float, default=None,
                   help="penalty weight lambda (default: the method's; 0.1 for wgan-gp/lp on 2-D toys)")
    p.add_argument("--clip", type=_positive_float, default=None,
                   help="weight-clipping bound c for wgan-clip (default 0.01)")
    p.add_argument("--width", type=_positive_int, default=None,
                   help=f"hidden width of both networks (default: {d['toy_width']} on 2-D toys -- "
                        "gan_toy.py uses 512 -- and the per-image-size default otherwise)")
    p.add_argument("--depth", type=_positive_int, default=None, help="hidden layers (toys, default 3) or conv blocks (images)")
    p.add_argument("--w1-every", type=_nonneg_int, default=d["w1_every"],
                   help="exact batch W1 every K generator steps (0: off)")
    p.add_argument("--checkpoint-dir", default=None,
                   help="folder for the checkpoint (written atomically)")
    p.add_argument("--checkpoint-every", type=_nonneg_int, default=0,
                   help="checkpoint every N generator steps (0: only at the end)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --checkpoint-dir up to --steps")
    p.add_argument("--out", default=None, help="also write the JSON summary to this file")
    p.add_argument("--eval-n", type=_positive_int, default=2048,
                   help="generated samples for the final metrics")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: on a terminal)")
    p.set_defaults(func=_run_train, _parser=p)
    return p


#: Subcommand registration functions, in order (the lead may append, e.g., ``add_book_subcommand``).
def _add_book_subcommand(subparsers):
    from .book import add_book_subcommand

    return add_book_subcommand(subparsers)


def _add_claims_subcommand(subparsers):
    from .claims import add_claims_subcommand

    return add_claims_subcommand(subparsers)


SUBCOMMANDS: List[Callable] = [add_train_subcommand, _add_book_subcommand, _add_claims_subcommand]


def build_parser() -> argparse.ArgumentParser:
    """The ``wganbook`` argument parser with every subcommand of ``SUBCOMMANDS``.

    Returns
    -------
    argparse.ArgumentParser
    """
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="wganbook", description="Helper package of the book 'Why Wasserstein GANs work'.")
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
    ``w1_estimate`` and, when tracked, the last exact batch ``w1_exact``.

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
        ``{"config", "hparams", "metrics", "steps", "wall_time_s", "device", "generator_sha256",
        "critic_sha256", "versions"}``.
    """
    import torch

    from . import metrics
    from .train import params_sha256

    cfg = result.config
    hist = result.history
    mets = {}
    if hist.get("w1_estimate"):
        mets["w1_estimate"] = float(hist["w1_estimate"][-1])
    if hist.get("w1_exact"):
        mets["w1_exact"] = float(hist["w1_exact"][-1])
    if cfg.is_toy:
        x = metrics.generate(result.generator, eval_n, seed=seed)
        mets["w1_target"] = float(metrics.w1_to_target(x, cfg.data, n=min(eval_n, 2048)))
        if cfg.data in metrics.MODE_DATASETS:
            cov = metrics.mode_coverage(x, cfg.data)
            mets.update(modes=cov["modes"], total_modes=cov["total_modes"], high_quality=cov["high_quality"])
    elif cfg.data == "digits":
        mets["fd"] = float(metrics.sample_quality(result.generator, cfg.data, n=min(eval_n, 1000), seed=seed))
    hp = {k: (list(v) if isinstance(v, tuple) else v) for k, v in result.hparams.items()}
    return {
        "config": result.config.to_dict(),
        "hparams": hp,
        "metrics": mets,
        "steps": int(result.step),
        "wall_time_s": round(float(result.wall_time), 3),
        "device": result.device,
        "generator_sha256": params_sha256(result.generator),
        "critic_sha256": params_sha256(result.critic),
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
    }


def _run_train(args) -> int:
    from .train import TrainConfig, TrainingDiverged, train

    parser = args._parser
    if args.resume and not args.checkpoint_dir:
        parser.error("--resume needs --checkpoint-dir (the folder holding the checkpoint)")
    from .data import TOY_DATASETS
    from .presets import get_preset

    width = args.width
    if width is None and args.dataset in TOY_DATASETS:
        width = get_preset("train", "quick")["toy_width"]
    try:
        cfg = TrainConfig(method=args.method, data=args.dataset, steps=args.steps, seed=args.seed,
                          device=args.device, batch_size=args.batch_size, n_critic=args.n_critic,
                          lr=args.lr, lam=args.lam, clip=args.clip, width=width, depth=args.depth,
                          w1_every=args.w1_every, checkpoint_dir=args.checkpoint_dir,
                          checkpoint_every=args.checkpoint_every,
                          progress=False if args.no_progress else None)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    try:
        result = train(cfg, resume=args.resume)
    except TrainingDiverged as exc:
        print(f"wganbook train: error: {exc}", file=sys.stderr)
        return 3
    except (FileNotFoundError, ValueError) as exc:
        print(f"wganbook train: error: {exc}", file=sys.stderr)
        return 2
    summary = train_summary(result, eval_n=args.eval_n, seed=args.seed)
    text = json.dumps(summary, indent=2, sort_keys=False)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, out)
    print(text)
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

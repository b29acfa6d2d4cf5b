"""The schema: every named parameter of the package (training settings and chapter knobs) with its type and allowed values."""

from __future__ import annotations

from typing import Tuple

from wganbook._util import Bool, Choice, Device, Float, Int, Seq
from wganbook.data import IMAGE_DATASETS, TOY_DATASETS
from wganbook.lipschitz import SAMPLING_STRATEGIES
from wganbook.objectives import METHODS

#: The preset names every chapter offers.
PRESET_NAMES = ("quick", "full")

__all__ = [
    "SCHEMA",
]


def _methods() -> Tuple[str, ...]:

    return tuple(METHODS)


def _toys() -> Tuple[str, ...]:

    return tuple(TOY_DATASETS)


def _images() -> Tuple[str, ...]:

    return tuple(IMAGE_DATASETS)


def _datasets() -> Tuple[str, ...]:
    return _toys() + _images()


def _strategies() -> Tuple[str, ...]:

    return tuple(SAMPLING_STRATEGIES)


#: Shared parameter names -> constraint. Names not listed take the type of their quick-preset value.
SCHEMA = {
    "preset": Choice(PRESET_NAMES),
    "seed": Int(lo=0, hi=2**32 - 1),  # NumPy's global generator takes seeds below 2**32
    "seeds": Seq(Int(lo=0, hi=2**32 - 1)),
    "device": Device(),
    "step_scale": Float(lo=0.0, lo_open=True),
    "method": Choice(_methods),
    "methods": Seq(Choice(_methods)),
    "dataset": Choice(_datasets),
    "toy_dataset": Choice(_toys),
    "toy_datasets": Seq(Choice(_toys)),
    "image_dataset": Choice(_images),
    "steps": Int(lo=1),
    "toy_steps": Int(lo=1),
    "image_steps": Int(lo=1),
    "critic_steps": Int(lo=1),
    "batch_size": Int(lo=1, none_ok=True),
    "n_critic": Int(lo=1, none_ok=True),
    "lr": Float(lo=0.0, lo_open=True, none_ok=True),
    "betas": Seq(Float(lo=0.0, hi=1.0, hi_open=True), length=2, none_ok=True),
    "lam": Float(lo=0.0, none_ok=True),
    "lams": Seq(Float(lo=0.0)),
    "clip": Float(lo=0.0, lo_open=True, none_ok=True),
    "clips": Seq(Float(lo=0.0, lo_open=True)),
    "k": Float(lo=0.0, lo_open=True, none_ok=True),
    "p": Float(lo=0.0, lo_open=True, none_ok=True),
    "strategy": Choice(_strategies, none_ok=True),
    "strategies": Seq(Choice(_strategies)),
    "width": Int(lo=1, none_ok=True),
    "toy_width": Int(lo=1, none_ok=True),
    "depth": Int(lo=1, none_ok=True),
    "z_dim": Int(lo=1, none_ok=True),
    "norm": Choice(("none", "layer", "batch"), none_ok=True),
    "n_samples": Int(lo=2),
    "n_eval": Int(lo=2),
    "eval_every": Int(lo=0),
    "w1_every": Int(lo=0),
    "log_every": Int(lo=1),
    "checkpoint_every": Int(lo=0),
    "warmup": Bool(none_ok=True),
    "deep_steps": Int(lo=1),
    "deep_width": Int(lo=1),
    # chapter 4
    "toy_methods": Seq(Choice(_methods)),
    "escape_steps": Int(lo=1),
    "overfit_size": Int(lo=2),
    "overfit_steps": Int(lo=1),
    "toy_lam": Float(lo=0.0),
    "toy_lr_scale": Float(lo=0.0, lo_open=True),
    "refit_steps": Int(lo=1),
    "toy_batch_size": Int(lo=1),
    # chapters 1-2
    "bin_width": Float(lo=0.0, lo_open=True),
    "n_functions": Int(lo=1),
    "clip_steps": Int(lo=1),
    "clip_lr": Float(lo=0.0, lo_open=True),
    "clip_batch_size": Int(lo=1),
    "eval_samples": Int(lo=2),
    # chapter 5
    "arch": Choice(("mlp", "conv")),
    "features": Choice(("classifier", "inception")),
    "ks": Seq(Float(lo=0.0, lo_open=True)),
    "ps": Seq(Float(lo=1.0, lo_open=True)),
    "kp_seeds": Seq(Int(lo=0, hi=2**32 - 1)),
    # chapter 6
    "image_datasets": Seq(Choice(_images)),
    "batch_sizes": Seq(Int(lo=1)),
    "eval_batches": Int(lo=1),
    "paradox_batches": Int(lo=1),
    "blur_sigma": Float(lo=0.0),
    "w1gen_steps": Int(lo=1),
    "common_lr": Float(lo=0.0, lo_open=True),
    "n_critics": Seq(Int(lo=1)),
    "sinkhorn_reg": Float(lo=0.0, lo_open=True),
    "estimator_batches": Int(lo=1),
}

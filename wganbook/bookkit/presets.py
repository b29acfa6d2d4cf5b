"""Per-chapter parameter presets and their validation (the one validation function of the book).

Every chapter notebook declares its knobs once, in its ``parameters`` cell, with ``None`` meaning
"take from the preset", and right after its imports calls::

    params = presets.validate("ch04", globals())

``validate`` reads the chapter's parameters from the namespace, fills ``None`` values from
``PRESETS[chapter][preset]``, refuses unknown names (e.g. ``papermill -p bogus 1``) and bad values
at once, before any work (:class:`ParameterError` / :class:`ParameterTypeError`, subclasses of
``ValueError`` / ``TypeError``, one line naming the parameter and the allowed values) and returns
a ``Params`` dict (a plain dict whose keys are also attributes: ``params.lam``). A plain dict of
parameters (``{"preset": preset, "seed": seed, ...}``) is accepted too.

Adding a chapter parameter
--------------------------
Add ``"name": value`` to the chapter's ``"quick"`` and ``"full"`` dicts below and ``name = None``
to its parameters cell. Its type is that of the quick value (bool, int, float, str, or a list of
one of them). If the name needs a range or a set of allowed values (or its preset value is
``None``), add one line to ``wganbook.schema.SCHEMA``, e.g. ``"n_modes": Int(lo=1)``; shared names
(method, dataset, lr, lam, steps, ...) are already there; a constraint that holds for one chapter
only (chapter 3's ``dataset`` must be an image dataset) goes to :data:`CHAPTER_SPECS`.
Every chapter also accepts the names of :data:`BASE`: ``preset``, ``seed``, ``device``,
``step_scale`` (a factor on every step count: ``steps`` and ``*_steps``, at least ``MIN_STEPS``;
1 by default) and ``checkpoint_root`` (the folder under which training runs checkpoint; the book
runner sets it, ``None`` = no checkpoints).
"""

from __future__ import annotations

import copy
import types
from typing import Any, Mapping, Optional, Tuple

from wganbook._util import Choice, Float, Int, Seq, Spec, Str, _infer, check_value
from wganbook.data import IMAGE_DATASETS
from wganbook.metrics import MODE_DATASETS
from wganbook.schema import PRESET_NAMES, SCHEMA

__all__ = [
    "PRESET_NAMES",
    "PRESETS",
    "BASE",
    "CHAPTER_SPECS",
    "IPYTHON_NAMES",
    "Params",
    "ParameterError",
    "ParameterTypeError",
    "get_preset",
    "validate",
]


#: Parameters every chapter accepts, with their defaults.
BASE = {"seed": 0, "device": "auto", "step_scale": 1.0, "checkpoint_root": None}

#: Specs of the :data:`BASE` names the schema does not hold.
BASE_SPECS = {"checkpoint_root": Str(none_ok=True)}


#: Chapter 7's methods and optimiser settings (``wganbook.lab.robustness.METHODS`` / ``SETTINGS``).
ROBUSTNESS_METHODS = ("GAN-NS", "GAN-NS + SN", "WGAN, no constraint", "WGAN-GP", "WGAN-clip")
ROBUSTNESS_SETTINGS = ("A", "B", "C", "D", "E", "F")


def _images() -> Tuple[str, ...]:
    return tuple(IMAGE_DATASETS)


def _mode_toys() -> Tuple[str, ...]:
    return tuple(MODE_DATASETS)


#: The constraints that hold for one chapter only (tighter than the schema's shared ones), from what each
#: chapter's code does with the parameter (e.g. chapter 3 trains its image run on ``dataset`` and
#: counts the modes of ``toy_dataset``). They come before ``SCHEMA`` in ``spec_for``.
CHAPTER_SPECS = {
    "ch03": {"dataset": Choice(_images), "toy_dataset": Choice(_mode_toys)},
    "ch04": {
        "dataset": Choice(_images),
        "method": Choice(("wgan-gp", "wgan-lp")),
        "toy_datasets": Seq(Choice(_mode_toys)),
    },
    # the names of wganbook.lab.robustness.METHODS and SETTINGS (kept literal here, so that chapter 7's
    # module is not part of every chapter's digest; tests/test_lab_robustness.py checks they agree)
    "ch07": {
        "toy_dataset": Choice(_mode_toys),
        "methods": Seq(Choice(ROBUSTNESS_METHODS)),
        "settings": Seq(Choice(ROBUSTNESS_SETTINGS)),
        "lr_scale": Float(lo=0.0, lo_open=True),
        "width": Int(lo=1),
        "depth": Int(lo=1),
        "batch_size": Int(lo=1),
    },
}

#: Names IPython puts in a notebook's namespace (never parameters).
IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})


class ParameterError(ValueError):
    """A chapter parameter refused by :func:`validate`: an unknown name or a value not allowed."""


class ParameterTypeError(TypeError):
    """A chapter parameter of the wrong type, refused by :func:`validate`."""


#: The smallest step count ``step_scale`` can make of a preset's step count.
MIN_STEPS = 2


# ---------------------------------------------------------------------------------------------
# Presets. quick = a laptop CPU in minutes (the stored notebooks); full = paper scale on a GPU.
# Chapter helpers own their chapter's entries.
# ---------------------------------------------------------------------------------------------
PRESETS = {
    "ch01": {
        "quick": {
            "n_samples": 1000,
            "bin_width": 0.1,
            "critic_steps": 1500,
            "width": 64,
            "lr": 1e-3,
            "lam": 10.0,
            "clip": 0.01,
            "clip_lr": 5e-5,
            "clip_steps": 3000,
            "clip_batch_size": 64,
            "eval_samples": 100_000,
        },
        "full": {
            "n_samples": 4096,
            "bin_width": 0.05,
            "critic_steps": 5000,
            "width": 128,
            "lr": 1e-3,
            "lam": 10.0,
            "clip": 0.01,
            "clip_lr": 5e-5,
            "clip_steps": 20000,
            "clip_batch_size": 64,
            "eval_samples": 1_000_000,
        },
    },
    "ch02": {
        "quick": {"n_samples": 64, "critic_steps": 2000, "width": 128, "lr": 1e-4, "lam": 10.0, "n_functions": 200},
        "full": {"n_samples": 256, "critic_steps": 10000, "width": 256, "lr": 1e-4, "lam": 10.0, "n_functions": 1000},
    },
    "ch03": {
        "quick": {
            "dataset": "digits",
            "toy_dataset": "8gaussians",
            "clip": None,
            "lr": None,
            "n_critic": None,
            "warmup": False,
            "toy_steps": 500,
            "image_steps": 300,
            "critic_steps": 3000,
            "toy_width": 128,
            "clips": [0.1, 0.01, 0.001],
            "deep_steps": 200,
            "deep_width": 256,
            "toy_lr_scale": 10.0,
            "refit_steps": 200,
            "seeds": [0, 1, 2],
            "br_steps": 200,
        },
        "full": {
            "dataset": "mnist",
            "toy_dataset": "8gaussians",
            "clip": None,
            "lr": None,
            "n_critic": None,
            "warmup": True,
            "toy_steps": 20000,
            "image_steps": 20000,
            "critic_steps": 10000,
            "toy_width": 512,
            "clips": [0.1, 0.01, 0.001],
            "deep_steps": 2000,
            "deep_width": 512,
            "toy_lr_scale": 1.0,
            "refit_steps": 2000,
            "seeds": [0, 1, 2, 3, 4],
            "br_steps": 2000,
        },
    },
    "ch04": {
        # quick: one WGAN-GP toy GAN per run (the claims ledger reruns it with other seeds), long
        # enough for its samples to sit on the 8 modes; static critics trained for thousands of steps
        "quick": {
            "method": "wgan-gp",
            "dataset": "digits",
            "lam": None,
            "toy_lam": 0.1,
            "n_critic": None,
            "methods": ["wgan-clip", "wgan-gp", "wgan-sn"],
            "toy_methods": ["wgan-gp"],
            "toy_datasets": ["8gaussians"],
            "seeds": [0],
            "toy_steps": 6000,
            "toy_batch_size": 256,
            "toy_lr_scale": 1.0,
            "toy_width": 128,
            "image_steps": 120,
            "critic_steps": 2000,
            "escape_steps": 6000,
            "deep_steps": 150,
            "deep_width": 256,
            "overfit_size": 64,
            "overfit_steps": 400,
        },
        "full": {
            "method": "wgan-gp",
            "dataset": "cifar10",
            "lam": None,
            "toy_lam": 0.1,
            "n_critic": None,
            "methods": ["wgan-clip", "wgan-gp", "wgan-sn"],
            "toy_methods": ["wgan-clip", "wgan-gp", "wgan-sn"],
            "toy_datasets": ["8gaussians", "25gaussians"],
            "seeds": [0, 1, 2, 3, 4],
            "toy_steps": 20000,
            "toy_batch_size": 256,
            "toy_lr_scale": 1.0,
            "toy_width": 512,
            "image_steps": 100000,
            "critic_steps": 10000,
            "escape_steps": 20000,
            "deep_steps": 2000,
            "deep_width": 512,
            "overfit_size": 1000,
            "overfit_steps": 20000,
        },
    },
    "ch05": {
        "quick": {
            "image_dataset": "digits",
            "arch": "mlp",
            "methods": ["wgan-gp", "wgan-div"],
            "strategies": ["real-fake", "real-real+fake-fake", "pooled-pairs", "real+fake", "fake", "real"],
            "seeds": [0, 1],
            "steps": 120,
            "lr": 5e-4,
            "betas": [0.5, 0.9],
            "n_eval": 1000,
            "features": "classifier",
            "ks": [1.0, 2.0, 4.0],
            "ps": [4.0, 6.0, 8.0],
            "kp_product": False,
            "kp_seeds": [0],
            "critic_steps": 600,
        },
        "full": {
            "image_dataset": "cifar10",
            "arch": "conv",
            "methods": ["wgan-gp", "wgan-div"],
            "strategies": ["real-fake", "real-real+fake-fake", "pooled-pairs", "real+fake", "fake", "real"],
            "seeds": [0, 1, 2],
            "steps": 100000,
            "lr": None,
            "betas": None,
            "n_eval": 10000,
            "features": "inception",
            "ks": [1.0, 2.0, 4.0],
            "ps": [4.0, 6.0, 8.0],
            "kp_product": True,
            "kp_seeds": [0, 1, 2],
            "critic_steps": 5000,
        },
    },
    "ch06": {
        "quick": {
            "image_dataset": "digits",
            "image_datasets": ["digits"],
            "critic_steps": 400,
            "eval_batches": 50,
            "image_steps": 200,
            "batch_size": 64,
            "batch_sizes": [4, 8, 16, 32, 64, 128, 256, 512],
            "paradox_batches": 50,
            "blur_sigma": 1.0,
            "w1gen_steps": 600,
            "seeds": [0, 1, 2],
            "n_eval": 1000,
            "common_lr": 2e-4,
            "n_critics": [1, 5],
            "sinkhorn_reg": 5.0,
            "estimator_batches": 10,
        },
        "full": {
            "image_dataset": "mnist",
            "image_datasets": ["mnist", "cifar10"],
            "critic_steps": 10000,
            "eval_batches": 100,
            "image_steps": 20000,
            "batch_size": 64,
            "batch_sizes": [4, 8, 16, 32, 64, 128, 256, 512],
            "paradox_batches": 100,
            "blur_sigma": 1.0,
            "w1gen_steps": 5000,
            "seeds": [0, 1, 2],
            "n_eval": 5000,
            "common_lr": 2e-4,
            "n_critics": [1, 5, 10],
            "sinkhorn_reg": 5.0,
            "estimator_batches": 50,
        },
    },
    # chapter 7: the robustness grid (methods x optimiser settings x seeds), trained as one ensemble
    # per seed. quick: the 8 Gaussians with small nets, every setting's learning rate x10 so that
    # 2000 generator steps reach a plateau; full: the 25 Gaussians at gan_toy.py's width, SNGAN's
    # six settings at their own rates and its 100K generator updates.
    "ch07": {
        "quick": {
            "toy_dataset": "8gaussians",
            "methods": ["GAN-NS", "GAN-NS + SN", "WGAN, no constraint", "WGAN-GP", "WGAN-clip"],
            "settings": ["A", "C", "D", "F"],
            "seeds": [0, 1, 2],
            "steps": 2000,
            "lr_scale": 10.0,
            "width": 32,
            "depth": 3,
            "batch_size": 64,
            "eval_every": 200,
            "n_eval": 2048,
        },
        "full": {
            "toy_dataset": "25gaussians",
            "methods": ["GAN-NS", "GAN-NS + SN", "WGAN, no constraint", "WGAN-GP", "WGAN-clip"],
            "settings": ["A", "B", "C", "D", "E", "F"],
            "seeds": [0, 1, 2, 3, 4],
            "steps": 100000,
            "lr_scale": 1.0,
            "width": 512,
            "depth": 3,
            "batch_size": 256,
            "eval_every": 5000,
            "n_eval": 10000,
        },
    },
    # chapter 8 only reads the results of full runs stored in the repository
    "ch08": {
        "quick": {"results_dir": "../results"},
        "full": {"results_dir": "../results"},
    },
    # defaults of `python -m wganbook train` (None = the method's default for the data);
    # toy_width: MLP width on 2-D toys when --width is not given (quick: 3x256 MLPs -- the default
    # 2000-step run covers all 8 Gaussians (metrics.mode_coverage) in ~9 min on one busy CPU core;
    # full: gan_toy.py's 3x512)
    "train": {
        "quick": {
            "method": "wgan-gp",
            "dataset": "8gaussians",
            "steps": 2000,
            "batch_size": None,
            "n_critic": None,
            "lr": None,
            "betas": None,
            "lam": None,
            "clip": None,
            "width": None,
            "toy_width": 256,
            "depth": None,
            "w1_every": 0,
        },
        "full": {
            "method": "wgan-gp",
            "dataset": "8gaussians",
            "steps": 100000,
            "batch_size": None,
            "n_critic": None,
            "lr": None,
            "betas": None,
            "lam": None,
            "clip": None,
            "width": None,
            "toy_width": 512,
            "depth": None,
            "w1_every": 1000,
        },
    },
}


class Params(dict):
    """A plain ``dict`` whose keys can also be read as attributes (``params.lam``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}; parameters: {', '.join(self)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __dir__(self):  # pragma: no cover - interactive help
        return list(self) + list(dict.__dict__)


def _chapter(chapter: str) -> dict:
    if not isinstance(chapter, str):
        raise TypeError(f"chapter must be a str, got {type(chapter).__name__}")
    if chapter not in PRESETS:
        raise ValueError(f"unknown chapter {chapter!r}; chapter must be one of: {', '.join(PRESETS)}")
    return PRESETS[chapter]


def get_preset(chapter: str, preset: str = "quick") -> dict:
    """Return a copy of a chapter's preset, including the common ``seed`` and ``device`` defaults.

    Parameters
    ----------
    chapter : str
        ``"ch01"`` ... ``"ch06"`` or ``"train"``.
    preset : str, optional
        ``"quick"`` (CPU minutes) or ``"full"`` (paper scale, GPU).

    Returns
    -------
    dict
        ``{"preset": preset, "seed": 0, "device": "auto", **PRESETS[chapter][preset]}``.

    Raises
    ------
    ValueError
        For an unknown chapter or preset (the message lists the allowed names).
    """
    entry = _chapter(chapter)
    if not isinstance(preset, str):
        raise TypeError(f"preset must be a str, got {type(preset).__name__}")
    if preset not in entry:
        raise ValueError(f"unknown preset {preset!r}; preset must be one of: {', '.join(entry)}")
    out = {"preset": preset}
    out.update(copy.deepcopy(BASE))
    out.update(copy.deepcopy(entry[preset]))
    return out


def spec_for(chapter: str, name: str) -> Spec:
    """The spec of a chapter parameter: ``CHAPTER_SPECS``, ``SCHEMA``, ``BASE_SPECS`` or the type of its quick value.

    Parameters
    ----------
    chapter : str
        Chapter key.
    name : str
        Parameter name.

    Returns
    -------
    Spec
        The constraint used by :func:`validate`.
    """
    entry = _chapter(chapter)
    if name in CHAPTER_SPECS.get(chapter, {}):
        return CHAPTER_SPECS[chapter][name]
    if name in SCHEMA:
        return SCHEMA[name]
    if name in BASE_SPECS:
        return BASE_SPECS[name]
    for preset in entry.values():
        spec = _infer(preset.get(name))
        if spec is not None:
            return spec
    raise ValueError(f"parameter {name!r} of {chapter} has no type: add it to presets.SCHEMA")


def _looks_injected(name: str, value: Any) -> bool:
    """Whether a namespace entry that is not a parameter looks like an injected one (``bogus = 1``).

    Not: private names (``_x``), IPython's names, modules, functions, classes and other callables.
    """
    if name.startswith("_") or name in IPYTHON_NAMES:
        return False
    return not (isinstance(value, types.ModuleType) or callable(value))


def _candidates(namespace: Mapping[str, Any]) -> list:
    """The names of a namespace that may be parameters, in order.

    Names defined after an earlier result of :func:`validate` (a ``Params`` value, e.g. when a
    reader reruns the setup cell of a notebook already run) are the notebook's own variables:
    papermill injects its parameters before that cell ever ran.
    """
    names = []
    for name, value in namespace.items():
        if isinstance(value, Params):
            break
        names.append(name)
    return names


def validate(chapter: str, params: Optional[Mapping[str, Any]] = None) -> Params:
    """Resolve and check a chapter's parameters against its preset (the book's one validator).

    Values that are ``None`` are taken from ``PRESETS[chapter][preset]`` (``preset`` itself
    defaults to ``"quick"``); parameters not given at all are taken from the preset too.

    Parameters
    ----------
    chapter : str
        ``"ch01"`` ... ``"ch08"`` or ``"train"``.
    params : mapping, optional
        The notebook's namespace (``globals()``), or a dict of parameter name -> value (or
        ``None``). The chapter's parameters (its preset's names and :data:`BASE`'s) are read from
        it; any other name that looks like a parameter -- not private (``_x``), not IPython's
        (:data:`IPYTHON_NAMES`), not a module, function, class or other callable, and not defined
        after an earlier result of ``validate`` -- is refused as unknown (papermill injects
        ``-p bogus 1`` as ``bogus = 1``).

    Returns
    -------
    Params
        Every parameter of the preset, resolved and normalised; also readable as attributes.

    Raises
    ------
    ParameterError
        (a ``ValueError``) Unknown preset or parameter name; value out of range or not allowed
        (e.g. an unknown method, dataset or strategy, a dataset the chapter cannot use, a negative
        lr or lambda, n_critic < 1, steps < 1, a seed above 2**32 - 1). One line naming the
        parameter and its allowed values.
    ParameterTypeError
        (a ``TypeError``) A value of the wrong type (e.g. a str for an int; a bool is not an int).
    ValueError
        An unknown chapter.
    TypeError
        ``params`` is not a mapping.
    """
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict (or the notebook's globals()), got {type(params).__name__}")
    _chapter(chapter)
    try:
        preset = params.get("preset")
        preset = "quick" if preset is None else check_value("preset", preset, SCHEMA["preset"])
    except TypeError as exc:
        raise ParameterTypeError(str(exc)) from None
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    defaults = get_preset(chapter, preset)
    unknown = [k for k in _candidates(params) if k not in defaults and _looks_injected(k, params[k])]
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(repr(k) for k in unknown)} for {chapter}; "
            f"parameters must be among: {', '.join(sorted(defaults))}"
        )
    out = Params()
    for name, default in defaults.items():
        value = params.get(name)
        if value is None:
            value = default
        try:
            out[name] = check_value(name, value, spec_for(chapter, name))
        except TypeError as exc:
            raise ParameterTypeError(str(exc)) from None
        except ValueError as exc:
            raise ParameterError(str(exc)) from None
    if out.get("step_scale", 1.0) != 1.0:
        for name in out:
            if is_step_count(name) and isinstance(out[name], int):
                out[name] = max(MIN_STEPS, int(round(out[name] * out["step_scale"])))
    return out


def is_step_count(name: str) -> bool:
    """Whether a parameter is a number of training steps (scaled by ``step_scale``)."""
    return name == "steps" or name.endswith("_steps")

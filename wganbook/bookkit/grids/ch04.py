"""Chapter 4's training runs (gradient penalty), declared once."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from wganbook.bookkit.grids import Entry, Grid, Runs, pick
from wganbook.lab.critics import method_variants
from wganbook.objectives import resolve_hparams

__all__ = ["declare", "grid"]


def _penalty_weight(p: Mapping[str, Any]) -> float:
    """Chapter 4's ``lam``: the parameter, or its penalty ``method``'s default (as ``lab.penalty.penalty_settings``)."""
    return resolve_hparams(p["method"], lam=p["lam"])["lam"]


def declare(p) -> List[Entry]:
    lam = _penalty_weight(p)
    toy = Grid(
        "toy",
        "toy grid: toy_datasets x toy_methods x seeds",
        base={
            "steps": p["toy_steps"],
            "width": p["toy_width"],
            "batch_size": p["toy_batch_size"],
            "n_critic": p["n_critic"],
            "warmup": False,
            "device": p["device"],
            "eval_every": max(1, p["toy_steps"] // 20),
            "metric": "modes",
        },
        grid={
            "data": list(p["toy_datasets"]),
            "variant": method_variants(p["toy_methods"], lr_scale=p["toy_lr_scale"], lam=p["toy_lam"]),
        },
        seeds=list(p["seeds"]),
    )
    image = Grid(
        "image",
        "image runs: methods, one seed",
        base={
            "data": p["dataset"],
            "steps": p["image_steps"],
            "n_critic": p["n_critic"],
            "device": p["device"],
            "warmup": False,
            "w1_every": max(1, p["image_steps"] // 30),
        },
        grid={"variant": method_variants(p["methods"], lam=lam)},
        seeds=[p["seed"]],
    )
    return [toy, image, Runs("WGAN-GP on overfit_size images (critic overfitting)", 1, p["overfit_steps"])]


def grid(name: str, params: Mapping[str, Any]) -> Dict[str, Any]:
    """The keyword arguments ``base``, ``grid`` and ``seeds`` of the chapter's ``run_grid`` call ``name``.

    Used as ``sweeps.run_grid(**ch04.grid(name, params), ...)``; see :func:`wganbook.bookkit.grids.pick`.
    """
    return pick(declare(params), name, "ch04")

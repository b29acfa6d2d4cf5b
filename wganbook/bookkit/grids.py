"""Each chapter's training runs, declared once: the grids its notebook runs and the run plan counts.

For every chapter, a function of the chapter's resolved parameters (``presets.validate``) returns
its training runs in order: :class:`Grid` entries -- the ``base``, ``grid`` and ``seeds`` of one
call of :func:`wganbook.lab.sweeps.run_grid` -- and :class:`Runs` entries for the runs made
otherwise (a direct ``train()`` call, a best response, the exact-W1 generators of chapter 6). The
notebook passes a grid on with ``sweeps.run_grid(**chapters.grid("ch04", "toy", params), ...)``
and the book runner's plan (:data:`wganbook.bookkit.chapters.RUN_PLAN`) counts runs and steps from
the same declarations, so there is nothing to copy by hand.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Sequence, Union

from wganbook.divergence import PUBLISHED_VARIANTS, kp_grid
from wganbook.lab.critics import method_variants
from wganbook.objectives import resolve_hparams

__all__ = [
    "Runs",
    "Grid",
    "DECLARATIONS",
    "declare",
    "grid_names",
    "CH06_VARIANTS",
]


class Runs(NamedTuple):
    """One group of training runs of a chapter's plan.

    ``what`` (a description), ``runs`` (how many), ``steps`` (generator steps of each) and
    ``via_train`` (``True`` for runs of :func:`wganbook.train.train`, which checkpoint under the
    chapter's ``checkpoint_root``; ``False`` for generators trained by other loops, e.g. chapter 6's
    exact-W1 generators).
    """

    what: str
    runs: int
    steps: int
    via_train: bool = True


def _merged(base: Mapping[str, Any], combo: Sequence) -> Dict[str, Any]:
    """The configuration of one grid combination (as ``run_grid`` builds it: dict entries merged)."""
    out = dict(base)
    for key, value in combo:
        if isinstance(value, Mapping):
            out.update({k: v for k, v in value.items() if k != "name"})
        else:
            out[key] = value
    return out


class Grid(NamedTuple):
    """One call of :func:`wganbook.lab.sweeps.run_grid`: its ``base``, ``grid`` and ``seeds``.

    ``name`` identifies it within its chapter (``chapters.grid(chapter, name, params)``), ``what``
    describes it in the plan.
    """

    name: str
    what: str
    base: Dict[str, Any]
    grid: Dict[str, list]
    seeds: List[int]

    def kwargs(self) -> Dict[str, Any]:
        """``{"base", "grid", "seeds"}``: the keyword arguments of ``run_grid`` (fresh copies)."""
        return {"base": copy.deepcopy(self.base), "grid": copy.deepcopy(self.grid), "seeds": list(self.seeds)}

    def runs(self) -> List[Runs]:
        """The plan's entries: one per distinct step count (combinations x seeds each)."""
        keys = list(self.grid)
        counts: Dict[int, int] = {}
        for values in itertools.product(*(self.grid[k] for k in keys)):
            steps = _merged(self.base, list(zip(keys, values))).get("steps")
            counts[steps] = counts.get(steps, 0) + len(self.seeds)
        return [Runs(self.what, n, steps) for steps, n in counts.items()]


Entry = Union[Grid, Runs]


# ---------------------------------------------------------------------------------------------
# the chapters
# ---------------------------------------------------------------------------------------------
def _clip_settings(p: Mapping[str, Any]) -> Dict[str, Any]:
    """Chapter 3's ``clip``, ``lr`` and ``n_critic``, the ``wgan-clip`` defaults where ``None``.

    Resolved by :func:`wganbook.objectives.resolve_hparams`, as ``wganbook.lab.clipping.clip_settings``
    does (a test holds them equal).
    """
    hp = resolve_hparams("wgan-clip", **{k: p[k] for k in ("clip", "lr", "n_critic")})
    return {k: hp[k] for k in ("clip", "lr", "n_critic")}


def _penalty_weight(p: Mapping[str, Any]) -> float:
    """Chapter 4's ``lam``: the parameter, or its penalty ``method``'s default (as ``lab.penalty.penalty_settings``)."""
    return resolve_hparams(p["method"], lam=p["lam"])["lam"]


def _ch03(p) -> List[Entry]:
    clip = _clip_settings(p)
    toy = Grid(
        "toy",
        "toy runs: clipped WGAN and GAN x seeds",
        base=dict(
            data=p["toy_dataset"],
            steps=p["toy_steps"],
            width=p["toy_width"],
            n_critic=clip["n_critic"],
            eval_every=max(1, p["toy_steps"] // 20),
            metric="w1_target",
            eval_n=512,
            track_grad_norm=False,
        ),
        grid={
            "variant": [
                {
                    "name": "clipped WGAN",
                    "method": "wgan-clip",
                    "clip": clip["clip"],
                    "warmup": p["warmup"],
                    "lr": clip["lr"] * p["toy_lr_scale"],
                },
                {"name": "GAN", "method": "gan-ns"},
            ]
        },
        seeds=list(p["seeds"]),
    )
    n_seeds = len(p["seeds"])
    return [
        Runs("toy run (clipping, snapshots)", 1, p["toy_steps"]),
        toy,
        Runs("clipped WGAN continued with its critic retrained: seeds", n_seeds, p["br_steps"]),
        Runs(
            "generator best responses to a frozen critic: toy variants x seeds",
            len(toy.grid["variant"]) * n_seeds,
            p["br_steps"],
            via_train=False,
        ),
        Runs("image run (clipping)", 1, p["image_steps"]),
    ]


def _ch04(p) -> List[Entry]:
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


def _ch05(p) -> List[Entry]:
    base = {
        "data": p["image_dataset"],
        "steps": p["steps"],
        "lr": p["lr"],
        "betas": p["betas"],
        "device": p["device"],
        "progress": False,
    }
    return [
        Grid(
            "strategies",
            "grid: methods x strategies x seeds",
            base=base,
            grid={"method": list(p["methods"]), "strategy": list(p["strategies"])},
            seeds=list(p["seeds"]),
        ),
        Grid(
            "official",
            "official-code WGAN-div: seeds",
            base={**base, "method": "wgan-div", **PUBLISHED_VARIANTS["official-code"]},
            grid={},
            seeds=list(p["seeds"]),
        ),
        Grid(
            "kp",
            "(k, p) grid without its centre: points x kp_seeds",
            base={**base, "method": "wgan-div", "strategy": "real-fake"},
            grid={"kp": kp_grid(p["ks"], p["ps"], product=p["kp_product"], include_centre=False)},
            seeds=list(p["kp_seeds"]),
        ),
    ]


#: Chapter 6's training variants (sections B, C, F), all with the common optimiser.
CH06_VARIANTS = (
    {"name": "WGAN-GP", "method": "wgan-gp"},
    {"name": "WGAN, no constraint", "method": "wgan-gp", "lam": 0.0},
    {"name": "WGAN-CT", "method": "wgan-ct"},
    {"name": "GAN-NS + SN", "method": "gan-ns", "n_critic": 5, "spectral": True},
)


def _ch06(p) -> List[Entry]:
    base = {
        "data": p["image_dataset"],
        "steps": p["image_steps"],
        "batch_size": p["batch_size"],
        "w1_every": max(1, p["image_steps"] // 20),
        "device": p["device"],
        "optimizer": "adam",
        "lr": p["common_lr"],
        "betas": (0.5, 0.9),
    }
    variants = [dict(v) for v in CH06_VARIANTS]
    sweep = [{"name": f"WGAN-GP, n_critic = {k}", "method": "wgan-gp", "n_critic": k} for k in p["n_critics"] if k != 5]
    return [
        Grid(
            "gp_vs_none",
            "WGAN-GP and WGAN without constraint x seeds",
            base,
            {"variant": variants[:2]},
            list(p["seeds"]),
        ),
        Grid("ct_and_sn", "WGAN-CT and GAN-NS + SN x seeds", base, {"variant": variants[2:]}, list(p["seeds"])),
        Grid(
            "n_critics",
            "WGAN-GP with each n_critics value other than 5, first seed",
            base,
            {"variant": sweep},
            list(p["seeds"][:1]),
        ),
        Runs("generators trained on the exact batch W1 (pixel and feature cost)", 2, p["w1gen_steps"], via_train=False),
    ]


def _none(p) -> List[Entry]:
    return []


#: Chapter key -> its declaration: a function of the resolved parameters returning the chapter's
#: training runs in order (:class:`Grid` and :class:`Runs` entries).
DECLARATIONS: Dict[str, Callable[[Mapping[str, Any]], List[Entry]]] = {
    "ch01": _none,
    "ch02": _none,
    "ch03": _ch03,
    "ch04": _ch04,
    "ch05": _ch05,
    "ch06": _ch06,
    "ch07": _none,
}


def declare(chapter: str, params: Mapping[str, Any]) -> List[Entry]:
    """The training runs of a chapter, in order.

    Parameters
    ----------
    chapter : str
        ``"ch01"`` ... ``"ch07"``.
    params : mapping
        The chapter's resolved parameters (``presets.validate(chapter, ...)``).

    Returns
    -------
    list of Grid and Runs

    Raises
    ------
    ValueError
        For a chapter without a declaration (naming the chapters that have one).
    """
    if chapter not in DECLARATIONS:
        raise ValueError(f"unknown chapter {chapter!r}; chapter must be one of: {', '.join(DECLARATIONS)}")
    return DECLARATIONS[chapter](params)


def grid_names(chapter: str, params: Mapping[str, Any]) -> List[str]:
    """The names of a chapter's grids, in order."""
    return [e.name for e in declare(chapter, params) if isinstance(e, Grid)]

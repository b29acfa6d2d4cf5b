"""Chapter 3's training runs (weight clipping), declared once."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from wganbook.bookkit.grids import Entry, Grid, Runs, pick
from wganbook.objectives import resolve_hparams

__all__ = ["declare", "grid"]


def _clip_settings(p: Mapping[str, Any]) -> Dict[str, Any]:
    """Chapter 3's ``clip``, ``lr`` and ``n_critic``, the ``wgan-clip`` defaults where ``None``.

    Resolved by :func:`wganbook.objectives.resolve_hparams`, as ``wganbook.lab.clipping.clip_settings``
    does (a test holds them equal).
    """
    hp = resolve_hparams("wgan-clip", **{k: p[k] for k in ("clip", "lr", "n_critic")})
    return {k: hp[k] for k in ("clip", "lr", "n_critic")}


def declare(p) -> List[Entry]:
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
        # lab.clipping.optimizer_comparison: the toy run again with each of OPTIMIZER_ARMS' two optimisers
        Runs("the toy run with RMSProp and with Adam (clipping): optimisers x seeds", 2 * n_seeds, p["toy_steps"]),
        toy,
        Runs("clipped WGAN continued with its critic retrained: seeds", n_seeds, p["br_steps"]),
        Runs(
            "generator best responses to a frozen critic: toy variants x seeds",
            len(toy.grid["variant"]) * n_seeds,
            p["br_steps"],
            via_train=False,
        ),
        Runs(
            "the same best responses with RMSProp (clipped WGAN, control): seeds",
            n_seeds,
            p["br_steps"],
            via_train=False,
        ),
        Runs("image run (clipping)", 1, p["image_steps"]),
    ]


def grid(name: str, params: Mapping[str, Any]) -> Dict[str, Any]:
    """The keyword arguments ``base``, ``grid`` and ``seeds`` of the chapter's ``run_grid`` call ``name``.

    Used as ``sweeps.run_grid(**ch03.grid(name, params), ...)``; see :func:`wganbook.bookkit.grids.pick`.
    """
    return pick(declare(params), name, "ch03")

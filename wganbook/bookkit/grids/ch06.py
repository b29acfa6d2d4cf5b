"""Chapter 6's training runs (fails to approximate), declared once."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from wganbook.bookkit.grids import Entry, Grid, Runs, pick

__all__ = ["VARIANTS", "declare", "grid"]


#: Chapter 6's training variants (sections B, C, F), all with the common optimiser.
VARIANTS = (
    {"name": "WGAN-GP", "method": "wgan-gp"},
    {"name": "WGAN, no constraint", "method": "wgan-gp", "lam": 0.0},
    {"name": "WGAN-CT", "method": "wgan-ct"},
    {"name": "GAN-NS + SN", "method": "gan-ns", "n_critic": 5, "spectral": True},
)


def declare(p) -> List[Entry]:
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
    variants = [dict(v) for v in VARIANTS]
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


def grid(name: str, params: Mapping[str, Any]) -> Dict[str, Any]:
    """The keyword arguments ``base``, ``grid`` and ``seeds`` of the chapter's ``run_grid`` call ``name``.

    Used as ``sweeps.run_grid(**ch06.grid(name, params), ...)``; see :func:`wganbook.bookkit.grids.pick`.
    """
    return pick(declare(params), name, "ch06")

"""Chapter 5's training runs (WGAN-div), declared once."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from wganbook.bookkit.grids import Entry, Grid, pick
from wganbook.divergence import PUBLISHED_VARIANTS, kp_grid

__all__ = ["declare", "grid"]


def declare(p) -> List[Entry]:
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


def grid(name: str, params: Mapping[str, Any]) -> Dict[str, Any]:
    """The keyword arguments ``base``, ``grid`` and ``seeds`` of the chapter's ``run_grid`` call ``name``.

    Used as ``sweeps.run_grid(**ch05.grid(name, params), ...)``; see :func:`wganbook.bookkit.grids.pick`.
    """
    return pick(declare(params), name, "ch05")

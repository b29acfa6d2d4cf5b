"""Chapter 7's training runs (the robustness grid on a toy and on the digits), declared once.

Every GAN of the grid is one member of a batched ensemble (:func:`wganbook.lab.robustness.train_grid`,
one ensemble per seed), not a :func:`~wganbook.train.loop.train` run, so none of them checkpoints."""

from __future__ import annotations

from typing import List

from wganbook.bookkit.grids import Entry, Runs
from wganbook.lab.robustness import digits_schedule

__all__ = ["declare"]


def declare(p) -> List[Entry]:
    n = len(p["methods"]) * len(p["settings"]) * len(p["seeds"])
    return [
        Runs("robustness grid: methods x settings x seeds (one batched ensemble per seed)", n, p["steps"], False),
        Runs("the same grid on the 8x8 digits", n, digits_schedule(p["steps"])["steps"], False),
    ]

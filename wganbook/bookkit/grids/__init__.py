"""Each chapter's training runs, declared once: the grids its notebook runs and the run plan counts.

Each chapter with training runs has a module here (``ch03`` ... ``ch06``) whose ``declare(params)``
returns, from the chapter's resolved parameters (``presets.validate``), its training runs in order:
:class:`Grid` entries -- the ``base``, ``grid`` and ``seeds`` of one call of
:func:`wganbook.lab.sweeps.run_grid` -- and :class:`Runs` entries for the runs made otherwise (a
direct ``train()`` call, a best response, the exact-W1 generators of chapter 6). The notebook passes
a grid on with ``sweeps.run_grid(**ch04.grid("toy", params), ...)`` and the book runner's plan
(:data:`wganbook.bookkit.chapters.RUN_PLAN`) counts runs and steps from the same declarations, so
there is nothing to copy by hand. One module per chapter: a chapter's stored outputs depend on its
own declaration only (the scoped digest of :mod:`wganbook.bookkit.digest`).
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, Dict, List, Mapping, NamedTuple, Sequence, Union

__all__ = [
    "Runs",
    "Grid",
    "Entry",
    "pick",
]


class Runs(NamedTuple):
    """One group of training runs of a chapter's plan.

    ``what`` (a description), ``runs`` (how many), ``steps`` (generator steps of each) and
    ``via_train`` (``True`` for runs of :func:`~wganbook.train.loop.train`, which checkpoint under the
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


def pick(entries: Sequence[Entry], name: str, chapter: str) -> Dict[str, Any]:
    """The keyword arguments ``base``, ``grid`` and ``seeds`` of the grid ``name`` among a chapter's entries.

    Parameters
    ----------
    entries : sequence of Grid and Runs
        A chapter's declaration (``chNN.declare(params)``).
    name : str
        The grid's name within the chapter.
    chapter : str
        The chapter key, for the error message.

    Returns
    -------
    dict
        ``{"base": dict, "grid": dict, "seeds": list}`` (fresh copies).

    Raises
    ------
    ValueError
        An unknown grid name (naming the chapter's grids).
    """
    grids = [e for e in entries if isinstance(e, Grid)]
    for entry in grids:
        if entry.name == name:
            return entry.kwargs()
    names = ", ".join(e.name for e in grids) or "none (it has no grid)"
    raise ValueError(f"unknown grid {name!r} of {chapter}; name must be one of: {names}")

"""The chapters of the book: their notebooks, keys and parameters (:mod:`~wganbook.bookkit.toc`), their grids
(declared once in :mod:`~wganbook.bookkit.grids`) and the plan of a book run derived from them."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping

from wganbook.bookkit.grids import Entry, Grid, Runs, ch03, ch04, ch05, ch06, ch07, pick
from wganbook.bookkit.toc import chapter_key, chapter_notebooks, chapter_parameters

__all__ = [
    "chapter_notebooks",
    "chapter_key",
    "chapter_parameters",
    "grid",
    "grid_names",
    "declare",
    "DECLARATIONS",
    "Runs",
    "RUN_PLAN",
]


# ---------------------------------------------------------------------------------------------
# Each chapter's grids and the plan (dry run), read from the declarations in grids/
# ---------------------------------------------------------------------------------------------
def _none(p: Mapping[str, Any]) -> List[Entry]:
    return []


#: Each chapter's declaration, by chapter key, is a function of the resolved parameters returning the
#: chapter's training runs in order, as :class:`~wganbook.bookkit.grids.Grid` and :class:`Runs` entries.
DECLARATIONS: Dict[str, Callable[[Mapping[str, Any]], List[Entry]]] = {
    "ch01": _none,
    "ch02": _none,
    "ch03": ch03.declare,
    "ch04": ch04.declare,
    "ch05": ch05.declare,
    "ch06": ch06.declare,
    "ch07": ch07.declare,
    "ch08": _none,
}


def declare(chapter: str, params: Mapping[str, Any]) -> List[Entry]:
    """The training runs of a chapter, in order (its module's ``declare``).

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


def grid(chapter: str, name: str, params: Mapping[str, Any]) -> Dict[str, Any]:
    """The keyword arguments ``base``, ``grid`` and ``seeds`` of one of a chapter's ``run_grid`` calls.

    The chapter's notebook runs the same as ``sweeps.run_grid(**ch04.grid("toy", params), ...)``
    (``from wganbook.bookkit.grids import ch04``); the plan (:data:`RUN_PLAN`) counts the same declaration.

    Parameters
    ----------
    chapter : str
        ``"ch03"`` ... ``"ch06"``.
    name : str
        The grid's name within the chapter (see :func:`grid_names`).
    params : mapping
        The chapter's resolved parameters (``presets.validate(chapter, globals())``).

    Returns
    -------
    dict
        ``{"base": dict, "grid": dict, "seeds": list}`` (fresh copies).

    Raises
    ------
    ValueError
        An unknown chapter or grid name (naming the allowed ones).
    """
    return pick(declare(chapter, params), name, chapter)


def _plan(chapter: str) -> Callable[[Mapping[str, Any]], List[Runs]]:
    def plan(p: Mapping[str, Any]) -> List[Runs]:
        out: List[Runs] = []
        for entry in declare(chapter, p):
            out.extend(entry.runs() if isinstance(entry, Grid) else [entry])
        return out

    plan.__doc__ = f"The training runs of {chapter} (from its declaration in wganbook.bookkit.grids)."
    return plan


#: Training runs of each chapter as a function of its resolved parameters (a list of
#: :class:`Runs`), derived from the chapters' declarations (:mod:`wganbook.bookkit.grids`): each grid
#: counts its combinations x seeds (one entry per step count), the other runs come as declared.
#: ``tests/test_full_preset.py`` checks its :func:`~wganbook.train.loop.train` runs against those every
#: chapter really makes. Critic fits against fixed samples are not training runs (their step counts
#: are in the plan's step counts).
RUN_PLAN: Dict[str, Callable[[Mapping[str, Any]], List[Runs]]] = {key: _plan(key) for key in DECLARATIONS}

"""The chapters of the book: their notebooks, keys and parameters (:mod:`~wganbook.bookkit.toc`), their grids
(declared once in :mod:`~wganbook.bookkit.grids`) and the plan of a book run derived from them."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping

from wganbook.bookkit.grids import DECLARATIONS, Grid, Runs, declare
from wganbook.bookkit.toc import chapter_key, chapter_notebooks, chapter_parameters

__all__ = [
    "chapter_notebooks",
    "chapter_key",
    "chapter_parameters",
    "grid",
    "Runs",
    "RUN_PLAN",
]


# ---------------------------------------------------------------------------------------------
# Each chapter's grids and the plan (dry run), read from the declarations in grids.py
# ---------------------------------------------------------------------------------------------
def grid(chapter: str, name: str, params: Mapping[str, Any]) -> Dict[str, Any]:
    """The keyword arguments ``base``, ``grid`` and ``seeds`` of one of a chapter's ``run_grid`` calls.

    The chapter's notebook runs it as ``sweeps.run_grid(**chapters.grid("ch04", "toy", params),
    n_eval=..., keep_results=...)``; the plan (:data:`RUN_PLAN`) counts the same declaration.

    Parameters
    ----------
    chapter : str
        ``"ch03"`` ... ``"ch06"``.
    name : str
        The grid's name within the chapter (see :func:`wganbook.bookkit.grids.grid_names`).
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
    entries = [e for e in declare(chapter, params) if isinstance(e, Grid)]
    for entry in entries:
        if entry.name == name:
            return entry.kwargs()
    names = ", ".join(e.name for e in entries) or "none (it has no grid)"
    raise ValueError(f"unknown grid {name!r} of {chapter}; name must be one of: {names}")


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
#: ``tests/test_full_preset.py`` checks its :func:`wganbook.train.train` runs against those every
#: chapter really makes. Critic fits against fixed samples are not training runs (their step counts
#: are in the plan's step counts).
RUN_PLAN: Dict[str, Callable[[Mapping[str, Any]], List[Runs]]] = {key: _plan(key) for key in DECLARATIONS}

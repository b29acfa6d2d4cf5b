"""The table of contents: the chapter notebooks of a book folder, their keys and their parameters cells.

Kept free of the package's heavier modules, so that the claims module (imported by every chapter)
and the digest read the book folder without making every chapter depend on the chapters' grids.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Dict, Iterable, List, Optional

__all__ = [
    "chapter_notebooks",
    "chapter_key",
    "chapter_parameters",
]


def chapter_notebooks(book_dir="book", only: Optional[Iterable[str]] = None) -> List[Path]:
    """The chapter notebooks ``NN_name.ipynb`` of ``book_dir``, in order.

    Parameters
    ----------
    book_dir : str or Path
        Folder of the stored notebooks.
    only : iterable of str, optional
        Keep only these chapters, given as ``"03"``, ``"ch03"`` or ``"03_weight_clipping"``.
    """
    book_dir = Path(book_dir)
    paths = sorted(p for p in book_dir.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no chapter notebooks (NN_name.ipynb) in {book_dir}")
    if only:
        wanted = {str(c).replace("ch", "")[:2] for c in only}
        known = {p.name[:2] for p in paths}
        unknown = sorted(wanted - known)
        if unknown:
            raise ValueError(f"unknown chapter(s) {unknown}; chapters must be among: {sorted(known)}")
        paths = [p for p in paths if p.name[:2] in wanted]
    return paths


def chapter_key(path) -> str:
    """Preset key of a chapter notebook: ``book/03_weight_clipping.ipynb`` -> ``"ch03"``."""
    return "ch" + Path(path).name[:2]


def chapter_parameters(path) -> Dict[str, object]:
    """Names and default values of the notebook's ``parameters`` cell.

    Every top-level ``name = value`` of the cell, in order; the value is read with
    ``ast.literal_eval`` (its source text when it is not a literal). The cell is parsed with
    Python's own parser rather than papermill's line patterns, which give up (with a logged
    warning) on some comments, e.g. one holding an apostrophe and an ``=``.
    """
    nb = json.loads(Path(path).read_text())
    cells = [
        c
        for c in nb.get("cells", [])
        if c.get("cell_type") == "code" and "parameters" in c.get("metadata", {}).get("tags", [])
    ]
    if not cells:
        raise ValueError(f"{Path(path).name} has no cell tagged 'parameters'")
    source = cells[0]["source"]
    source = source if isinstance(source, str) else "".join(source)
    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                values[node.targets[0].id] = ast.get_source_segment(source, node.value)
    return values

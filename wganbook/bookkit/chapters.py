"""The chapters of the book: their notebooks, keys, parameters and each chapter's grid of runs."""
from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional

from wganbook.divergence import kp_grid

__all__ = [
    "chapter_notebooks",
    "chapter_key",
    "chapter_parameters",
    "Runs",
    "RUN_PLAN",
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
    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"
             and "parameters" in c.get("metadata", {}).get("tags", [])]
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


# ---------------------------------------------------------------------------------------------
# The plan (dry run)
# ---------------------------------------------------------------------------------------------
class Runs(NamedTuple):
    """One group of training runs of a chapter's plan: ``what`` (a description), ``runs`` (how
    many), ``steps`` (generator steps of each) and ``via_train`` (``True`` for runs of
    ``wganbook.train.train``, which checkpoint under ``WGANBOOK_CHECKPOINT_DIR``; ``False`` for
    generators trained by other loops, e.g. chapter 6's exact-W1 generators)."""

    what: str
    runs: int
    steps: int
    via_train: bool = True


def _kp_points(p) -> int:

    return len(kp_grid(p["ks"], p["ps"], product=p["kp_product"], include_centre=False))


#: Training runs of each chapter as a function of its resolved parameters (a list of
#: :class:`Runs`). It mirrors the chapters' grids (e.g. chapter 4's toy grid is toy_datasets x
#: methods x seeds, each of toy_steps generator steps); ``tests/test_full_preset.py`` checks its
#: :func:`wganbook.train.train` runs against those every chapter really makes. Critic fits against
#: fixed samples are not training runs (their step counts are in the plan's step counts). A chapter
#: missing here is shown as "n/a".
RUN_PLAN: Dict[str, Callable[[Dict[str, object]], List[Runs]]] = {
    "ch01": lambda p: [],
    "ch02": lambda p: [],
    "ch03": lambda p: [
        Runs("toy run (clipping, snapshots)", 1, p["toy_steps"]),
        Runs("toy runs: clipped WGAN and GAN x seeds", 2 * len(p["seeds"]), p["toy_steps"]),
        Runs("clipped WGAN continued with its critic retrained: seeds", len(p["seeds"]),
             p["br_steps"]),
        Runs("generator best responses to a frozen critic: 2 x seeds", 2 * len(p["seeds"]),
             p["br_steps"], via_train=False),
        Runs("image run (clipping)", 1, p["image_steps"])],
    "ch04": lambda p: [
        Runs("toy grid: toy_datasets x toy_methods x seeds",
             len(p["toy_datasets"]) * len(p["toy_methods"]) * len(p["seeds"]), p["toy_steps"]),
        Runs("image runs: methods, one seed", len(p["methods"]), p["image_steps"]),
        Runs("WGAN-GP on overfit_size images (critic overfitting)", 1, p["overfit_steps"])],
    "ch05": lambda p: [
        Runs("grid: methods x strategies x seeds",
             len(p["methods"]) * len(p["strategies"]) * len(p["seeds"]), p["steps"]),
        Runs("official-code WGAN-div: seeds", len(p["seeds"]), p["steps"]),
        Runs("(k, p) grid without its centre: points x kp_seeds", _kp_points(p) * len(p["kp_seeds"]),
             p["steps"])],
    "ch06": lambda p: [
        Runs("4 variants (WGAN-GP, WGAN without constraint, WGAN-CT, GAN-NS + SN) x seeds",
             4 * len(p["seeds"]), p["image_steps"]),
        Runs("WGAN-GP with each n_critics value other than 5, first seed",
             len([k for k in p["n_critics"] if k != 5]), p["image_steps"]),
        Runs("generators trained on the exact batch W1 (pixel and feature cost)", 2,
             p["w1gen_steps"], via_train=False)],
    "ch07": lambda p: [],
}

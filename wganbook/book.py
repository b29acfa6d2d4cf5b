"""Rerun the book's chapters with papermill, e.g. at the ``full`` preset on a GPU.

``python -m wganbook book --preset full --out runs/full`` (or ``make full``) executes every chapter
notebook of ``book/`` with ``preset="full"`` (plus ``-p NAME VALUE`` overrides) into a folder of its
own under ``--out``, never touching the stored quick-run notebooks in ``book/`` and never collected by
nbval (``runs/`` is outside ``book/``). For each chapter it writes::

    runs/full/03_weight_clipping/03_weight_clipping.ipynb   the executed notebook
    runs/full/03_weight_clipping/results.json               key metrics, config, device, wall time
    runs/full/03_weight_clipping/checkpoints/               training checkpoints (for resuming)

A chapter whose ``results.json`` says ``"status": "completed"`` for the same parameters is skipped;
an interrupted chapter is rerun and every training run inside it resumes from its last checkpoint
(:func:`wganbook.train.train` reads ``WGANBOOK_CHECKPOINT_DIR``), so a disconnect loses at most the
steps since the last checkpoint.

Before anything runs, the datasets the chapters will load are checked: offline, a missing MNIST or
CIFAR-10 stops the run at once with the dataset-missing message and the override that runs the full
scale on the offline dataset (``-p dataset digits``).
"""
from __future__ import annotations

import ast
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

__all__ = ["chapter_notebooks", "chapter_key", "chapter_parameters", "check_datasets",
           "glued_values", "run_book", "preset_table", "load_results", "results_table",
           "add_book_subcommand", "RESULTS_FILE"]

RESULTS_FILE = "results.json"


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
    """Names and default values of the notebook's ``parameters`` cell (via papermill)."""
    import papermill

    info = papermill.inspect_notebook(str(path))
    values = {}
    for name, spec in info.items():
        try:
            values[name] = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            values[name] = spec["default"]
    return values


def _preset_values(key: str, preset: str, overrides: Dict[str, object]) -> Dict[str, object]:
    from . import presets

    try:
        values = dict(presets.get_preset(key, preset))
    except (KeyError, ValueError):
        return dict(overrides)
    values.update({k: v for k, v in overrides.items() if k in values})
    return values


def check_datasets(notebooks: Iterable[Path], preset: str, overrides: Dict[str, object],
                   download: bool = False, root=None) -> None:
    """Make sure every image dataset the chapters will load is available, before any training.

    Raises
    ------
    wganbook.data.DatasetMissingError
        With the dataset-missing message and the override that runs the same preset offline.
    """
    from .data import IMAGE_DATASETS, DatasetMissingError, load_images

    needed = {}
    for nb in notebooks:
        values = _preset_values(chapter_key(nb), preset, overrides)
        for name, value in values.items():
            if "dataset" not in name:
                continue
            for ds in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(ds, str) and ds in IMAGE_DATASETS and ds != "digits":
                    needed.setdefault((name, isinstance(value, (list, tuple)), ds), []).append(nb.stem)
    for (param, is_list, ds), chapters in sorted(needed.items()):
        try:
            load_images(ds, root=root, download=download)
        except DatasetMissingError as exc:
            fix = f"-p {param} '[digits]'" if is_list else f"-p {param} digits"
            raise DatasetMissingError(
                f"{exc}\nChapter(s) {', '.join(chapters)} need {ds!r} at preset {preset!r}. "
                f"To run the {preset} preset on the offline dataset instead, add `{fix}` "
                f"(python -m wganbook book --preset {preset} {fix}), or allow downloads with --download "
                f"on an online machine."
            ) from None


def glued_values(nb) -> Dict[str, object]:
    """Values a notebook glued with :func:`wganbook.notebook.glue` (name -> plain value)."""
    values = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if not name:
                continue
            data = out.get("data", {})
            text = None
            for key, val in data.items():
                if key.endswith("text/plain"):
                    text = val if isinstance(val, str) else "".join(val)
            if text is None:
                continue
            try:
                values[name] = json.loads(text)
            except ValueError:
                values[name] = text.strip("'\"")
    return values


def _device_info() -> Dict[str, object]:
    import torch

    info = {"torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(terse=True), "cpu_count": os.cpu_count()}
    if torch.cuda.is_available():
        info["device"] = "cuda"
        info["gpu"] = torch.cuda.get_device_name(0)
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        info["device"] = "mps"
    else:
        info["device"] = "cpu"
    return info


def _git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_book(preset: str = "full", out="runs/full", overrides: Optional[Dict[str, object]] = None,
             chapters: Optional[Iterable[str]] = None, book_dir="book", download: bool = False,
             force: bool = False, log: Callable[[str], None] = print,
             execution_timeout: Optional[int] = None) -> List[Dict[str, object]]:
    """Execute every chapter with papermill at ``preset`` into ``out``; return the results records.

    Parameters
    ----------
    preset : {"quick", "full"}
        Preset passed to every chapter as ``-p preset``.
    out : str or Path
        Output folder (must not be inside ``book_dir``).
    overrides : dict, optional
        Extra papermill parameters (e.g. ``{"dataset": "digits"}``); each is passed to the chapters
        whose parameters cell defines it, and a name no chapter defines is an error.
    chapters : iterable of str, optional
        Run only these chapters (``"03"`` or ``"ch03"``).
    download : bool
        Allow dataset downloads (an online machine); offline a missing dataset stops the run at once.
    force : bool
        Rerun chapters that already completed.
    """
    import papermill

    from . import presets

    if preset not in presets.PRESET_NAMES:
        raise ValueError(f"unknown preset {preset!r}; preset must be one of: {', '.join(presets.PRESET_NAMES)}")
    overrides = dict(overrides or {})
    book_dir, out = Path(book_dir).resolve(), Path(out).resolve()
    if out == book_dir or book_dir in out.parents:
        raise ValueError(f"out must be outside the book folder {book_dir} (nbval replays everything in it)")
    notebooks = chapter_notebooks(book_dir, chapters)
    params_of = {nb: chapter_parameters(nb) for nb in notebooks}
    known = set().union(*params_of.values())
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; the chapters' parameters are: {', '.join(sorted(known))}")
    # Validate every chapter's parameters before any training starts.
    for nb in notebooks:
        names = params_of[nb]
        given = {"preset": preset, **{k: v for k, v in overrides.items() if k in names}}
        presets.validate(chapter_key(nb), {**names, **given})
    check_datasets(notebooks, preset, overrides, download=download)

    records = []
    out.mkdir(parents=True, exist_ok=True)
    for i, nb in enumerate(notebooks, 1):
        folder = out / nb.stem
        folder.mkdir(parents=True, exist_ok=True)
        results_path = folder / RESULTS_FILE
        params = {"preset": preset, **{k: v for k, v in overrides.items() if k in params_of[nb]}}
        if results_path.exists() and not force:
            previous = json.loads(results_path.read_text())
            if previous.get("status") == "completed" and previous.get("parameters") == params:
                log(f"[{i}/{len(notebooks)}] {nb.stem}: already completed, skipped")
                records.append(previous)
                continue
        log(f"[{i}/{len(notebooks)}] {nb.stem}: running with {params} ...")
        env_before = os.environ.get("WGANBOOK_CHECKPOINT_DIR")
        os.environ["WGANBOOK_CHECKPOINT_DIR"] = str(folder / "checkpoints")
        if download:
            os.environ["WGANBOOK_DOWNLOAD"] = "1"
        started = _dt.datetime.now(_dt.timezone.utc)
        t0 = time.perf_counter()
        status, error = "completed", None
        try:
            executed = papermill.execute_notebook(
                str(nb), str(folder / nb.name), parameters=params, cwd=str(book_dir),
                kernel_name="python3", progress_bar=False, log_output=False,
                execution_timeout=execution_timeout)
        except Exception as exc:  # noqa: BLE001 - recorded, then re-raised below
            status, error, executed = "failed", f"{type(exc).__name__}: {exc}"[:2000], None
        finally:
            if env_before is None:
                os.environ.pop("WGANBOOK_CHECKPOINT_DIR", None)
            else:
                os.environ["WGANBOOK_CHECKPOINT_DIR"] = env_before
        wall = time.perf_counter() - t0
        record = {
            "chapter": nb.stem, "status": status, "parameters": params,
            "wall_time_s": round(wall, 1),
            "started_utc": started.isoformat(timespec="seconds"),
            "machine": _device_info(), "git_commit": _git_commit(),
            "metrics": glued_values(executed) if executed is not None else {},
        }
        if error:
            record["error"] = error
        results_path.write_text(json.dumps(record, indent=2, sort_keys=True))
        records.append(record)
        log(f"[{i}/{len(notebooks)}] {nb.stem}: {status} in {wall / 60:.1f} min")
        if status != "completed":
            raise RuntimeError(f"chapter {nb.stem} failed: {error}\n"
                               f"Rerun the same command to resume from its checkpoints.")
    summary = out / "summary.json"
    summary.write_text(json.dumps(records, indent=2, sort_keys=True))
    return records


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: python -m wganbook book --preset full --out runs/full")


def _fmt(value) -> str:
    if value is None:
        return "method default"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def preset_table(chapters: Iterable[str]) -> str:
    """A markdown table comparing the ``quick`` and ``full`` presets of ``chapters``.

    One row per (chapter, parameter) whose value differs between the two presets, plus the
    parameters that are the same, so a reader sees at a glance what the full scale changes.
    """
    from . import presets

    rows = ["| chapter | parameter | quick | full |", "| --- | --- | --- | --- |"]
    for ch in chapters:
        quick, full = presets.get_preset(ch, "quick"), presets.get_preset(ch, "full")
        for name in quick:
            if name in ("preset", "seed", "device"):
                continue
            rows.append(f"| {ch} | `{name}` | {_fmt(quick[name])} | {_fmt(full.get(name))} |")
    return "\n".join(rows)


def load_results(results_dir) -> List[Dict[str, object]]:
    """All ``results.json`` records under ``results_dir`` (recursively), sorted by path."""
    root = Path(results_dir)
    if not root.exists():
        return []
    records = []
    for path in sorted(root.rglob(RESULTS_FILE)):
        record = json.loads(path.read_text())
        record.setdefault("source", str(path.relative_to(root)))
        records.append(record)
    return records


def results_table(records: Iterable[Dict[str, object]]) -> str:
    """A markdown table of full-run records: chapter, status, device, date, dataset, wall time."""
    rows = ["| chapter | status | device | date (UTC) | dataset | wall time (min) |",
            "| --- | --- | --- | --- | --- | --- |"]
    for r in records:
        machine = r.get("machine", {})
        dev = machine.get("gpu") or machine.get("device", "?")
        params = r.get("parameters", {})
        dataset = params.get("dataset") or params.get("image_dataset") or "preset default"
        date = str(r.get("started_utc", "?"))[:10]
        wall = r.get("wall_time_s")
        rows.append(f"| {r.get('chapter')} | {r.get('status')} | {dev} | {date} | {dataset} | "
                    f"{'?' if wall is None else f'{wall / 60:.1f}'} |")
    return "\n".join(rows)


def _parse_override(text: str):
    """``NAME=VALUE`` or a pair from ``-p NAME VALUE``: the value is read as a Python/YAML literal."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def add_book_subcommand(subparsers):
    """Register ``book``: rerun every chapter with papermill at a preset (see :func:`run_book`).

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``parser.add_subparsers()``.
    """
    p = subparsers.add_parser(
        "book", help="rerun the book's chapters with papermill (e.g. --preset full on a GPU)",
        description="Execute every chapter notebook of book/ with papermill at a preset into its own "
                    "folder under --out (never touching book/), writing the executed notebook and a "
                    "results.json per chapter; completed chapters are skipped and interrupted ones "
                    "resume from their training checkpoints.")
    p.add_argument("--preset", default="full", choices=("quick", "full"), help="preset for every chapter")
    p.add_argument("--out", default="runs/full", help="output folder (outside book/)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="papermill parameter override, e.g. -p dataset digits (repeatable)")
    p.add_argument("--chapters", nargs="+", default=None, metavar="NN",
                   help="only these chapters, e.g. --chapters 03 04")
    p.add_argument("--book-dir", default="book", help="folder of the chapter notebooks")
    p.add_argument("--download", action="store_true",
                   help="allow dataset downloads (online machines); offline a missing dataset stops the run")
    p.add_argument("--force", action="store_true", help="rerun chapters that already completed")
    p.add_argument("--execution-timeout", type=int, default=None,
                   help="per-cell timeout in seconds (default: none)")
    p.set_defaults(func=_run_book_command, _parser=p)
    return p


def _run_book_command(args) -> int:
    from .data import DatasetMissingError

    overrides = {name: _parse_override(value) for name, value in args.parameter}
    try:
        run_book(preset=args.preset, out=args.out, overrides=overrides, chapters=args.chapters,
                 book_dir=args.book_dir, download=args.download, force=args.force,
                 log=lambda msg: print(msg, flush=True), execution_timeout=args.execution_timeout)
    except (DatasetMissingError, ValueError, FileNotFoundError) as exc:
        print(f"wganbook book: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"wganbook book: {exc}", file=sys.stderr)
        return 1
    return 0

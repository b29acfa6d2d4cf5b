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
(the runner passes the chapter the papermill parameter ``checkpoint_root`` =
``<out>/<chapter>/checkpoints``, which the chapter hands on to its training runs), so a disconnect
loses at most the steps since the last checkpoint. A chapter that refuses its parameters (the
chapter's own ``presets.validate``) is reported as such: rerunning the same command would fail the
same way.

Before anything runs, every chapter's parameters are validated and the datasets the chapters will
load are checked: offline, the missing MNIST / CIFAR-10 files stop the run at once, all of them
listed in one message, with the one switch that runs the same preset on the bundled digits instead:
``--offline-data digits`` replaces every image-dataset parameter of every chapter (the parameters
whose name contains ``dataset`` and whose value is an image dataset, or a list of them: e.g.
chapter 3's ``dataset``, chapter 5's ``image_dataset``, chapter 6's ``image_datasets``).
``--dry-run`` stops after these checks and prints the plan: per chapter the training runs, their
generator steps and the other step counts, and the expected GPU minutes where a measured
throughput exists (:data:`THROUGHPUT_FILE`). ``-p step_scale 0.01`` multiplies every step count of
every chapter (see :mod:`wganbook.bookkit.presets`).

Claims run in *record* mode (``WGANBOOK_CLAIMS=record``): a claim that fails at the full scale is
a finding, recorded in ``results.json`` (``claims``), not a crash hours into a run; ``--strict-claims``
raises instead.

On a Dask cluster, ``--scheduler tcp://host:8786`` (or a scheduler file) sends every chapter's
training runs to that cluster: the runner puts the address into ``$WGANBOOK_SCHEDULER`` for each
chapter's kernel (:mod:`wganbook.lab.cluster`), and ``--jobs N`` runs up to ``N`` chapters side by
side, each kernel sending its grid to the same cluster. The scheduler is checked (form and
connection) before any chapter runs. Results, executed notebooks and checkpoints go under ``--out`` as
without a cluster; the checkpoints must then lie on a path every worker sees.
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

from wganbook._util import atomic_write
from wganbook.bookkit import presets
from wganbook.bookkit.chapters import (
    DECLARATIONS,
    RUN_PLAN,
    chapter_key,
    chapter_notebooks,
    chapter_parameters,
    declare,
)
from wganbook.bookkit.claims import MODE_ENV, collect
from wganbook.bookkit.grids import Grid
from wganbook.data import IMAGE_DATASETS, DatasetMissingError, default_root, load_images
from wganbook.lab.cluster import SCHEDULER_ENV, check_scheduler, require_dask, resolve_scheduler

__all__ = [
    "RESULTS_FILE",
    "CHECKPOINT_PARAMETER",
    "OFFLINE_DATASETS",
    "SMOKE_STEP_SCALE",
    "SMOKE_OVERRIDES",
    "THROUGHPUT_FILE",
    "dataset_parameters",
    "offline_overrides",
    "resolve_chapters",
    "check_datasets",
    "load_throughput",
    "plan_book",
    "plan_table",
    "gpu_rates",
    "plan_on_gpus",
    "gpus_table",
    "glued_values",
    "run_book",
    "preset_table",
    "load_results",
    "results_table",
    "add_book_subcommand",
    "format_plan",
]

RESULTS_FILE = "results.json"

#: The papermill parameter through which the runner gives each chapter its checkpoint folder.
CHECKPOINT_PARAMETER = "checkpoint_root"

#: Names of the exceptions with which ``presets.validate`` refuses a chapter's parameters.
PARAMETER_ERRORS = (presets.ParameterError.__name__, presets.ParameterTypeError.__name__)

#: The values of ``--offline-data``, image datasets that need no files (they ship with scikit-learn).
OFFLINE_DATASETS = ("digits",)

#: The CPU smoke test of the full preset (``tests/test_full_preset.py``, part of ``make test``):
#: every chapter at ``preset="full"`` with this ``step_scale`` (each step count floors at
#: ``presets.MIN_STEPS``) ...
SMOKE_STEP_SCALE = 1e-4
#: ... and these test-only overrides per chapter (evaluation sizes and grid lengths whose CPU cost
#: would not fit CI's 10 minutes; e.g. a 299x299 Inception forward pass costs ~0.5 s of CPU per
#: image; two seeds instead of five or three, as the quick presets run). Everything else is the
#: full preset.
SMOKE_OVERRIDES: Dict[str, Dict[str, object]] = {
    "ch01": {"n_samples": 1024, "eval_samples": 10_000},
    "ch03": {"seeds": [0, 1]},
    "ch04": {"seeds": [0, 1]},
    "ch05": {
        "n_eval": 8,
        "seeds": [0],
        "kp_seeds": [0],
        "ks": [2.0],
        "ps": [4.0],
        "strategies": ["real-fake", "real-real+fake-fake"],
    },
    "ch06": {
        "n_eval": 64,
        "seeds": [0, 1],
        "paradox_batches": 2,
        "batch_sizes": [4, 64],
        "eval_batches": 2,
        "estimator_batches": 2,
    },
    "ch07": {"seeds": [0], "settings": ["A", "F"], "n_eval": 256},
}

#: Measured GPU throughput (repository-relative), read by the dry run's plan when it exists:
#: ``{"gpu": ..., "torch": ..., "chapters": {"ch03": {"generator_steps_per_s": ...}, ...}}``.
THROUGHPUT_FILE = Path("results") / "gpu_throughput.json"


def _is_image(value) -> bool:

    return isinstance(value, str) and value in IMAGE_DATASETS


def dataset_parameters(values: Dict[str, object]) -> Dict[str, object]:
    """The image-dataset parameters among a chapter's resolved ``values``.

    A parameter counts when its name contains ``dataset`` and its value is an image dataset
    (``wganbook.data.IMAGE_DATASETS``) or a list holding one (toy datasets do not count), so the
    mapping follows the presets and notebooks instead of a hand-kept list.
    """
    out = {}
    for name, value in values.items():
        if "dataset" not in name:
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        if any(_is_image(v) for v in items):
            out[name] = value
    return out


def offline_overrides(values: Dict[str, object], offline: str) -> Dict[str, object]:
    """Overrides that replace every downloadable image dataset in ``values`` by ``offline``.

    A single dataset becomes ``offline``; in a list each downloadable item becomes ``offline``
    (duplicates dropped, toy datasets kept). Parameters already offline are left out.
    """
    out = {}
    for name, value in dataset_parameters(values).items():
        if isinstance(value, (list, tuple)):
            new = []
            for v in value:
                v = offline if _is_image(v) and v not in OFFLINE_DATASETS else v
                if v not in new:
                    new.append(v)
            if new != list(value):
                out[name] = new
        elif value not in OFFLINE_DATASETS:
            out[name] = offline
    return out


def _check_offline(offline: Optional[str]) -> Optional[str]:
    if offline is None:
        return None
    if not isinstance(offline, str) or offline not in OFFLINE_DATASETS:
        raise ValueError(
            f"unknown offline dataset {offline!r}; --offline-data must be one of: {', '.join(OFFLINE_DATASETS)}"
        )
    return offline


def _validate(key: str, stem: str, values: Dict[str, object]):
    """``presets.validate`` with the chapter in the message and a hint for list parameters."""

    try:
        return presets.validate(key, values)
    except (TypeError, ValueError) as exc:
        hint = ""
        for name, value in values.items():
            if isinstance(value, str) and str(exc).startswith(f"{name} must be a list"):
                hint = f" (a list on the command line: -p {name} '[{value}]')"
        raise type(exc)(f"{stem}: {exc}{hint}") from None


def resolve_chapters(
    notebooks: Iterable[Path], preset: str, overrides: Dict[str, object], offline_data: Optional[str] = None
) -> List[Dict[str, object]]:
    """Validate every chapter's parameters and work out what papermill will pass to it.

    Parameters
    ----------
    notebooks : iterable of Path
        Chapter notebooks.
    preset : str
        The preset of every chapter.
    overrides : dict
        ``-p NAME VALUE`` overrides; each goes to the chapters whose parameters cell defines it
        (``step_scale`` must be defined by every chapter, else it would silently not apply).
    offline_data : str, optional
        Replace every downloadable image dataset by this one (``--offline-data``); an explicit
        override of the same parameter wins.

    Returns
    -------
    list of dict
        Per chapter: ``notebook``, ``key`` (``"ch03"``), ``parameters`` (papermill's) and
        ``resolved`` (the validated :class:`wganbook.bookkit.presets.Params` the chapter will use).

    Raises
    ------
    ValueError, TypeError
        Unknown parameter, bad value (naming the chapter and the parameter), unknown offline
        dataset.
    """
    offline_data = _check_offline(offline_data)
    if CHECKPOINT_PARAMETER in overrides:
        raise ValueError(
            f"{CHECKPOINT_PARAMETER} is set by the book runner (<out>/<chapter>/checkpoints); "
            f"leave out -p {CHECKPOINT_PARAMETER} and choose the folder with --out"
        )
    notebooks = list(notebooks)
    params_of = {nb: chapter_parameters(nb) for nb in notebooks}
    known = set().union(*params_of.values()) if params_of else set()
    lacking = [nb.stem for nb in notebooks if "step_scale" in overrides and "step_scale" not in params_of[nb]]
    if lacking:
        raise ValueError(
            f"step_scale: chapter(s) {', '.join(lacking)} do not take step_scale (their "
            f"parameters cell has no `step_scale = None`), so it would not apply there; "
            f"leave those chapters out with --chapters"
        )
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; the chapters' parameters are: {', '.join(sorted(known))}")
    plans = []
    for nb in notebooks:
        names, key = params_of[nb], chapter_key(nb)
        given = {"preset": preset, **{k: v for k, v in overrides.items() if k in names}}
        resolved = _validate(key, nb.stem, {**names, **given})
        if offline_data is not None:
            extra = {
                k: v for k, v in offline_overrides(resolved, offline_data).items() if k in names and k not in overrides
            }
            if extra:
                given.update(extra)
                resolved = _validate(key, nb.stem, {**names, **given})
        plans.append({"notebook": nb, "key": key, "parameters": given, "resolved": resolved})
    return plans


def _missing_reason(exc) -> str:
    text = str(exc)
    return text.split(". To get it")[0]


def check_datasets(
    notebooks: Iterable,
    preset: str,
    overrides: Dict[str, object],
    download: bool = False,
    root=None,
    offline_data: Optional[str] = None,
) -> None:
    """Make sure every image dataset the chapters will load is available, before any training.

    Parameters
    ----------
    notebooks : iterable of Path, or the list returned by :func:`resolve_chapters`
        The chapters.
    preset, overrides, offline_data
        As for :func:`resolve_chapters` (unused when ``notebooks`` is already resolved).
    download : bool
        Allow torchvision downloads.
    root : str or Path, optional
        Data folder (default ``wganbook.data.default_root()``: ``$WGANBOOK_DATA``).

    Raises
    ------
    wganbook.data.DatasetMissingError
        Listing *every* missing dataset with the chapters and parameters that need it, the
        one switch that replaces them all (``--offline-data digits``) and the equivalent
        ``-p`` overrides.
    """

    plans = list(notebooks)
    if plans and not isinstance(plans[0], dict):
        plans = resolve_chapters(plans, preset, overrides, offline_data)
    needed: Dict[str, List[tuple]] = {}
    for plan in plans:
        for name, value in dataset_parameters(plan["resolved"]).items():
            for ds in value if isinstance(value, (list, tuple)) else [value]:
                if _is_image(ds) and ds not in OFFLINE_DATASETS:
                    needed.setdefault(ds, []).append((plan["notebook"].stem, name))
    missing = {}
    for ds in needed:
        try:
            load_images(ds, root=root, download=download)
        except DatasetMissingError as exc:
            missing[ds] = _missing_reason(exc)
    if not missing:
        return
    fixes = {}
    for plan in plans:
        values = dict(plan["resolved"])
        for name, value in dataset_parameters(values).items():
            items = value if isinstance(value, (list, tuple)) else [value]
            if any(v in missing for v in items):
                fix = offline_overrides({name: value}, OFFLINE_DATASETS[0])[name]
                fixes[name] = f"-p {name} '[{', '.join(fix)}]'" if isinstance(fix, list) else f"-p {name} {fix}"
    where = Path(root).expanduser() if root is not None else default_root()
    lines = [f"{len(missing)} image dataset(s) needed at preset {preset!r} are missing under {where}:"]
    for ds, reason in missing.items():
        users = {}
        for stem, name in needed[ds]:
            users.setdefault(stem, []).append(name)
        used = "; ".join(f"{stem}: {', '.join(names)}" for stem, names in users.items())
        lines.append(f"  - {ds!r}, needed by {used} -- {reason}")
    lines.append(
        f"To run the {preset} preset on the bundled digits instead, add --offline-data "
        f"{OFFLINE_DATASETS[0]} (python -m wganbook book --preset {preset} --offline-data "
        f"{OFFLINE_DATASETS[0]}); it replaces all of them, like {' '.join(fixes.values())}. "
        f"Or put the files under {where} (or set WGANBOOK_DATA), or allow downloads with --download "
        f"on an online machine."
    )
    raise DatasetMissingError("\n".join(lines), ",".join(missing), str(where))


def load_throughput(path=None) -> Optional[Dict[str, object]]:
    """The measured GPU throughput (:data:`THROUGHPUT_FILE`), or ``None`` when none was measured.

    Raises
    ------
    ValueError
        When the file exists but is not valid JSON (naming the file).
    """
    path = Path(path) if path is not None else THROUGHPUT_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); regenerate or delete it") from None


def plan_book(
    preset: str = "full",
    overrides: Optional[Dict[str, object]] = None,
    chapters: Optional[Iterable[str]] = None,
    book_dir="book",
    offline_data: Optional[str] = None,
    throughput=None,
) -> List[Dict[str, object]]:
    """The plan of a book run, without running anything: per chapter its runs and step counts.

    Parameters
    ----------
    preset, overrides, chapters, book_dir, offline_data
        As for :func:`run_book`.
    throughput : dict, optional
        Measured GPU throughput (default: :func:`load_throughput`).

    Returns
    -------
    list of dict
        Per chapter: ``chapter``, ``parameters`` (papermill's), ``runs`` and ``generator_steps``
        (``None`` when :data:`~wganbook.bookkit.chapters.RUN_PLAN` has no entry), ``step_counts`` (every ``steps`` /
        ``*_steps`` parameter, after ``step_scale``), ``datasets``, ``gpu_minutes``
        (``None`` without a measured throughput for the chapter) and ``stages`` (the declaration in
        order: ``(parallel, entries)``, ``parallel`` true for a grid, whose runs are independent, false
        for runs made one after the other; ``None`` without a declaration), used by :func:`plan_on_gpus`.
    """

    if preset not in presets.PRESET_NAMES:
        raise ValueError(f"unknown preset {preset!r}; preset must be one of: {', '.join(presets.PRESET_NAMES)}")
    if throughput is None:
        throughput = load_throughput(Path(book_dir).resolve().parent / THROUGHPUT_FILE)
    measured = (throughput or {}).get("chapters", {})
    rows = []
    for plan in resolve_chapters(chapter_notebooks(book_dir, chapters), preset, dict(overrides or {}), offline_data):
        p, key = plan["resolved"], plan["key"]
        entries = RUN_PLAN[key](p) if key in RUN_PLAN else None
        stages = None
        if key in DECLARATIONS:
            stages = [(isinstance(e, Grid), e.runs() if isinstance(e, Grid) else [e]) for e in declare(key, p)]
        runs = None if entries is None else sum(e.runs for e in entries)
        steps = None if entries is None else sum(e.runs * e.steps for e in entries)
        rate = (measured.get(key) or {}).get("generator_steps_per_s")
        rows.append(
            {
                "chapter": plan["notebook"].stem,
                "key": key,
                "parameters": plan["parameters"],
                "runs": runs,
                "generator_steps": steps,
                "entries": entries,
                "stages": stages,
                "step_counts": {k: v for k, v in p.items() if presets.is_step_count(k) and isinstance(v, int)},
                "datasets": dataset_parameters(p),
                "gpu_minutes": (steps / rate / 60.0) if (rate and steps is not None) else None,
            }
        )
    return rows


def gpu_rates(plan: Iterable[Dict[str, object]], throughput=None, cpu_rates=None):
    """Generator steps per second of each chapter of a plan, and where the numbers come from.

    Parameters
    ----------
    plan : list of dict
        Rows of :func:`plan_book`.
    throughput : dict, optional
        The measured GPU throughput (the format of :data:`THROUGHPUT_FILE`); used for every chapter it
        has a ``generator_steps_per_s`` for.
    cpu_rates : dict of str to float, optional
        Generator steps per second measured on a CPU, by chapter key (``"ch03"``), for the chapters
        without a GPU measurement.

    Returns
    -------
    dict of str to (float, str)
        Chapter key -> ``(rate, source)``, ``source`` = ``"measured on <gpu>"`` or ``"estimated from the
        CPU"``; chapters with neither are left out.

    Raises
    ------
    ValueError
        If a rate is not a positive number (naming the chapter).
    """
    measured = (throughput or {}).get("chapters", {}) or {}
    gpu = (throughput or {}).get("gpu") or "a GPU"
    out = {}
    for row in plan:
        key = row["key"]
        for rate, source in (
            ((measured.get(key) or {}).get("generator_steps_per_s"), f"measured on {gpu}"),
            ((cpu_rates or {}).get(key), "estimated from the CPU"),
        ):
            if rate is None:
                continue
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
                raise ValueError(f"the generator steps per second of {key} must be a positive number, got {rate!r}")
            out[key] = (float(rate), source)
            break
    return out


def _makespan(durations: List[float], gpus: int) -> float:
    """Wall time of independent runs on ``gpus`` GPUs, one run per GPU at a time (longest first)."""
    loads = [0.0] * gpus
    for d in sorted(durations, reverse=True):
        i = loads.index(min(loads))
        loads[i] += d
    return max(loads) if loads else 0.0


def _chapter_times(stages, rate: float, gpus: List[int]):
    """A chapter's time on each number of GPUs, its time on one GPU and its longest path (in seconds).

    ``stages`` as in :func:`plan_book`; every run of ``s`` generator steps takes ``s / rate``. A grid
    (parallel stage) takes the makespan of its runs, the other stages the sum; the stages add up.
    """
    wall, total, critical = dict.fromkeys(gpus, 0.0), 0.0, 0.0
    for parallel, entries in stages:
        durations = [e.steps / rate for e in entries for _ in range(e.runs)]
        total += sum(durations)
        critical += max(durations, default=0.0) if parallel else sum(durations)
        for g in gpus:
            wall[g] += _makespan(durations, g) if parallel else sum(durations)
    return wall, total, critical


# Units of plan_on_gpus: wall hours from the chapters' rates, or generator steps (one GPU's
# generator steps, the wall time at a rate of one step per second in every chapter).
_GPU_PLAN_UNITS = ("hours", "steps")


def plan_on_gpus(
    plan: Iterable[Dict[str, object]],
    gpus: Iterable[int] = (1, 4, 16),
    throughput=None,
    cpu_rates=None,
    unit: str = "hours",
) -> List[Dict[str, object]]:
    r"""Wall time of a book run on 1, 4, 16 ... GPUs of a Dask cluster, estimated from the plan's structure.

    A run of :math:`s` generator steps in a chapter of throughput :math:`r` (generator steps per second,
    :func:`gpu_rates`) takes :math:`s / r`. A chapter's **grid** sends its runs to the cluster at once
    (:func:`wganbook.lab.sweeps.map_runs`): on :math:`G` GPUs it takes the makespan of its runs, each on
    one GPU, longest first (at least :math:`\max_j s_j/r` and :math:`\sum_j s_j / (rG)`). Its other runs are
    made one after the other and take :math:`\sum_j s_j/r` whatever :math:`G`. A chapter's wall time is
    the sum over its stages, in order. For the whole book two numbers: the chapters one after another
    (``--jobs 1``: the sum of the chapters' times), and side by side (``--jobs`` = number of chapters,
    all sharing the GPUs): the larger of the longest chapter's time on :math:`G` GPUs and the total
    time on one GPU over :math:`G` -- the best case, as if the GPUs never waited. Evaluation, data
    loading and the critic fits outside training runs are not counted.

    With ``unit="steps"`` no rate is needed: every chapter runs at one generator step per second, so
    the times are generator steps on the longest path -- what the grid structure alone determines,
    the same for every GPU; a chapter's time in hours is its steps over its rate, over 3600.

    Parameters
    ----------
    plan : list of dict
        Rows of :func:`plan_book` (with ``stages``).
    gpus : iterable of int
        Numbers of GPUs (each >= 1).
    throughput, cpu_rates
        As for :func:`gpu_rates` (only for ``unit="hours"``).
    unit : {"hours", "steps"}
        ``"hours"`` (default): wall hours from the rates; ``"steps"``: generator steps.

    Returns
    -------
    list of dict
        One row per chapter with a rate (``chapter``, ``key``, ``source`` -- where the rate comes from,
        ``"grid structure"`` for steps --, ``unit``, ``wall`` = ``{G: wall time on G GPUs}``,
        ``one_gpu`` -- the time on one GPU, all runs one after the other --, ``critical`` -- the time on
        unlimited GPUs -- and ``speedup`` = ``{G: one_gpu / wall[G]}``), then a row ``chapter`` =
        ``"book, chapters one after another"`` and a row ``"book, chapters side by side"``; ``source``
        of these is the chapters' sources joined. Times are in ``unit``. Chapters without training runs
        are left out; so are chapters without a rate or a declaration (the book rows name them in
        ``missing``).

    Raises
    ------
    ValueError
        If a number of GPUs is not an int >= 1, a rate is not positive, the unit is unknown, or rates
        are given with ``unit="steps"``.
    """
    gpus = list(gpus)
    for g in gpus:
        if isinstance(g, bool) or not isinstance(g, int) or g < 1:
            raise ValueError(f"gpus must be ints >= 1 (numbers of GPUs), got {g!r}")
    if unit not in _GPU_PLAN_UNITS:
        raise ValueError(f"unit must be one of {', '.join(_GPU_PLAN_UNITS)}, got {unit!r}")
    plan = list(plan)
    if unit == "steps":
        if throughput is not None or cpu_rates is not None:
            raise ValueError("unit='steps' counts generator steps and takes no rates (throughput, cpu_rates)")
        rates = {row["key"]: (1.0, "grid structure") for row in plan}
        scale = 1.0
    else:
        rates = gpu_rates(plan, throughput, cpu_rates)
        scale = 1.0 / 3600.0

    def row_of(chapter, source, wall, one_gpu, critical, **extra):
        return {
            "chapter": chapter,
            **extra,
            "source": source,
            "unit": unit,
            "wall": wall,
            "one_gpu": one_gpu,
            "critical": critical,
            "speedup": {g: (one_gpu / w if w > 0 else 1.0) for g, w in wall.items()},
        }

    rows, missing = [], []
    for row in plan:
        key = row["key"]
        if not row.get("runs"):  # a chapter without training runs
            continue
        if key not in rates or row.get("stages") is None:
            missing.append(row["chapter"])
            continue
        rate, source = rates[key]
        wall, total, critical = _chapter_times(row["stages"], rate, gpus)
        rows.append(
            row_of(
                row["chapter"],
                source,
                {g: w * scale for g, w in wall.items()},
                total * scale,
                critical * scale,
                key=key,
            )
        )
    sources = ", ".join(sorted({r["source"] for r in rows})) or "none"
    total = sum(r["one_gpu"] for r in rows)
    chapters = list(rows)
    rows.append(
        row_of(
            "book, chapters one after another",
            sources,
            {g: sum(r["wall"][g] for r in chapters) for g in gpus},
            total,
            sum(r["critical"] for r in chapters),
            missing=missing,
        )
    )
    rows.append(
        row_of(
            "book, chapters side by side",
            sources,
            {g: max(max((r["wall"][g] for r in chapters), default=0.0), total / g) for g in gpus},
            total,
            max((r["critical"] for r in chapters), default=0.0),
            missing=missing,
        )
    )
    return rows


def gpus_table(rows: Iterable[Dict[str, object]]) -> str:
    """The rows of :func:`plan_on_gpus` as a Markdown table, in either unit.

    One column per number of GPUs: the wall time (hours with two decimals, or generator steps with
    thousands separators) and, for more than one GPU, the speed-up over one GPU with one decimal, as
    :func:`~wganbook.bookkit.notebook.glue` writes it (``3.9×``, ``13×``). Hours come with a column
    naming the source of each chapter's rate.
    """
    from wganbook.bookkit.notebook import format_value

    rows = list(rows)
    if not rows:
        return ""
    gpus, unit = list(rows[0]["wall"]), rows[0]["unit"]
    label, fmt = ("hours", "{:.2f}") if unit == "hours" else ("generator steps", "{:,.0f}")
    source = unit == "hours"

    def cell(r, g):
        text = fmt.format(r["wall"][g])
        return text if g == 1 else f"{text} ({format_value(r['speedup'][g], '.1f')}×)"

    head = ["chapter"] + (["source of the rates"] if source else [])
    head += [f"{g} GPU{'s' if g > 1 else ''} ({label})" for g in gpus]
    out = [
        "| " + " | ".join(head) + " |",
        "| --- | " + ("--- | " if source else "") + " | ".join("---:" for _ in gpus) + " |",
    ]
    for r in rows:
        cells = [r["chapter"]] + ([r["source"]] if source else []) + [cell(r, g) for g in gpus]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def plan_table(rows: Iterable[Dict[str, object]]) -> str:
    """The plan of :func:`plan_book` as a Markdown table (n/a where the plan has no number)."""

    def na(v, fmt="{:,}"):
        return "n/a" if v is None else fmt.format(v)

    out = [
        "| chapter | training runs | generator steps | step counts (after step_scale) | datasets | GPU minutes |",
        "| --- | ---: | ---: | --- | --- | ---: |",
    ]
    for r in rows:
        counts = ", ".join(f"{k} {v:,}" for k, v in r["step_counts"].items()) or "none"
        data = ", ".join(f"{k} {_fmt(v)}" for k, v in r["datasets"].items()) or "none"
        out.append(
            f"| {r['chapter']} | {na(r['runs'])} | {na(r['generator_steps'])} | {counts} | "
            f"{data} | {na(r['gpu_minutes'], '{:.1f}')} |"
        )
    return "\n".join(out)


def _plain_value(text: str) -> object:
    """A glued text as a value: a number where it is one (``'0.25'`` -> 0.25), else the text."""
    try:
        value = ast.literal_eval(text)  # glue stores a string literal; older notebooks the bare text
    except (SyntaxError, ValueError):
        value = text
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = value if isinstance(value, str) else text
    try:
        return json.loads(text)
    except ValueError:
        return text.strip("'\"")


def glued_values(nb) -> Dict[str, object]:
    """Values a notebook glued with :func:`wganbook.bookkit.notebook.glue` (name -> plain value)."""
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
            values[name] = _plain_value(text)
    return values


def _device_info() -> Dict[str, object]:
    import torch

    info = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu_count": os.cpu_count(),
    }
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


def _read_record(path: Path, what: str) -> Dict[str, object]:
    try:
        record = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc}): it is the record of an interrupted or damaged run. Delete it to {what}."
        ) from None
    if not isinstance(record, dict):
        raise ValueError(f"{path} is not a results record (a JSON object). Delete it to {what}.")
    return record


def _check_out(out: Path, book_dir: Path) -> None:
    if out == book_dir or book_dir in out.parents:
        raise ValueError(f"--out must be outside the book folder {book_dir} (nbval replays everything in it)")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is an existing file, not a folder; pass a folder (e.g. runs/full)")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"--out {out} lies below the file {parent}; pass a folder path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: the folder {parent} is not writable")


def run_book(
    preset: str = "full",
    out="runs/full",
    overrides: Optional[Dict[str, object]] = None,
    chapters: Optional[Iterable[str]] = None,
    book_dir="book",
    download: bool = False,
    force: bool = False,
    log: Callable[[str], None] = print,
    execution_timeout: Optional[int] = None,
    offline_data: Optional[str] = None,
    dry_run: bool = False,
    strict_claims: bool = False,
    scheduler: Optional[str] = None,
    jobs: int = 1,
) -> List[Dict[str, object]]:
    """Execute every chapter with papermill at ``preset`` into ``out``; return the results records.

    Parameters
    ----------
    preset : {"quick", "full"}
        Preset passed to every chapter as ``-p preset``.
    out : str or Path
        Output folder (must not be inside ``book_dir``, nor an existing file).
    overrides : dict, optional
        Extra papermill parameters (e.g. ``{"step_scale": 0.01}``); each is passed to the chapters
        whose parameters cell defines it, and a name no chapter defines is an error.
    chapters : iterable of str, optional
        Run only these chapters (``"03"`` or ``"ch03"``).
    download : bool
        Allow dataset downloads (an online machine); offline a missing dataset stops the run at once.
    force : bool
        Rerun chapters that already completed (and ignore damaged ``results.json`` files).
    offline_data : str, optional
        ``"digits"``: replace every downloadable image dataset of every chapter by it.
    dry_run : bool
        Validate parameters and data, then return the plan (:func:`plan_book`) without running.
    strict_claims : bool
        Let a failing claim stop its chapter (default: record it in ``results.json``).
    scheduler : str, optional
        A Dask scheduler (``tcp://host:port`` or a scheduler file) for every chapter's training runs,
        passed to each kernel as ``$WGANBOOK_SCHEDULER``; checked (form, then a connection) first.
        ``None``: ``$WGANBOOK_SCHEDULER`` when it is set, else no cluster.
    jobs : int
        Chapters run side by side (default 1); more than one needs ``scheduler`` (without a cluster,
        each chapter's runs already use every core).

    Raises
    ------
    ValueError, TypeError
        A bad preset, parameter, output folder, ``scheduler`` form or ``jobs``, before anything runs.
    ConnectionError
        If the scheduler does not answer (naming its address), before anything runs.
    ImportError
        With a scheduler but without ``dask``/``distributed`` (``pip install 'wganbook[cluster]'``).
    DatasetMissingError
        Offline, when a dataset a chapter needs is missing.
    RuntimeError
        When a chapter fails (after the others that were running have finished).
    """

    if preset not in presets.PRESET_NAMES:
        raise ValueError(f"unknown preset {preset!r}; preset must be one of: {', '.join(presets.PRESET_NAMES)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1 (chapters run side by side), got {jobs!r}")
    scheduler = resolve_scheduler(scheduler)  # None: $WGANBOOK_SCHEDULER when set
    if jobs > 1 and scheduler is None:
        raise ValueError(
            f"jobs={jobs} needs a scheduler (--scheduler tcp://host:port): without a cluster every chapter's "
            "runs already use all the cores"
        )
    overrides = dict(overrides or {})
    book_dir, out = Path(book_dir).resolve(), Path(out).resolve()
    _check_out(out, book_dir)
    plans = resolve_chapters(chapter_notebooks(book_dir, chapters), preset, overrides, offline_data)
    check_datasets(plans, preset, overrides, download=download)
    if scheduler is not None:
        require_dask()
        check_scheduler(scheduler)
    if dry_run:
        return plan_book(preset, overrides, chapters, book_dir, offline_data)
    if not force:  # damaged records are reported before anything runs
        for plan in plans:
            path = out / plan["notebook"].stem / RESULTS_FILE
            if path.exists():
                _read_record(path, "rerun that chapter (or pass --force)")

    out.mkdir(parents=True, exist_ok=True)
    env = {MODE_ENV: "assert" if strict_claims else "record"}
    if download:
        env["WGANBOOK_DOWNLOAD"] = "1"
    if scheduler is not None:
        env[SCHEDULER_ENV] = scheduler
    # the kernels inherit this process's environment; the values are the same for every chapter, so they are
    # set once around all of them (chapters side by side would race on per-chapter changes)
    saved = {k: os.environ.get(k) for k in (*env, "WGANBOOK_DOWNLOAD", MODE_ENV, SCHEDULER_ENV)}
    os.environ.update(env)
    lock = threading.Lock()

    def locked_log(msg: str) -> None:
        with lock:
            log(msg)

    run = dict(
        n=len(plans),
        out=out,
        book_dir=book_dir,
        force=force,
        log=locked_log,
        execution_timeout=execution_timeout,
        scheduler=scheduler,
    )
    try:
        if jobs == 1:
            records = []
            for i, plan in enumerate(plans, 1):
                record, failure = _run_chapter(i, plan, **run)
                records.append(record)
                if failure is not None:
                    _raise_failure(*failure)
        else:
            with ThreadPoolExecutor(max_workers=min(jobs, len(plans)) or 1) as pool:
                done = list(pool.map(lambda ip: _run_chapter(*ip, **run), enumerate(plans, 1)))
            records = [record for record, _ in done]
            for _, failure in done:
                if failure is not None:
                    _raise_failure(*failure)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    atomic_write(out / "summary.json", json.dumps(records, indent=2, sort_keys=True))
    return records


def _run_chapter(
    i: int,
    plan: Dict[str, object],
    n: int,
    out: Path,
    book_dir: Path,
    force: bool,
    log,
    execution_timeout,
    scheduler: Optional[str] = None,
):
    """Execute one chapter (or skip it when completed); return its record and ``None`` or the failure to raise."""
    import papermill

    nb, params = plan["notebook"], plan["parameters"]
    folder = out / nb.stem
    folder.mkdir(parents=True, exist_ok=True)
    results_path = folder / RESULTS_FILE
    if results_path.exists() and not force:
        previous = _read_record(results_path, "rerun that chapter (or pass --force)")
        if previous.get("status") == "completed" and previous.get("parameters") == params:
            log(f"[{i}/{n}] {nb.stem}: already completed, skipped")
            return previous, None
    log(f"[{i}/{n}] {nb.stem}: running with {params} ...")
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    status, error, failure = "completed", None, None
    try:
        executed = papermill.execute_notebook(
            str(nb),
            str(folder / nb.name),
            parameters={**params, CHECKPOINT_PARAMETER: str(folder / "checkpoints")},
            cwd=str(book_dir),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            execution_timeout=execution_timeout,
        )
    except Exception as exc:  # noqa: BLE001 - recorded, then re-raised by the caller
        status, error, executed, failure = "failed", f"{type(exc).__name__}: {exc}"[:2000], None, exc
    wall = time.perf_counter() - t0
    record = {
        "chapter": nb.stem,
        "status": status,
        "parameters": params,
        "wall_time_s": round(wall, 1),
        "started_utc": started.isoformat(timespec="seconds"),
        "machine": _device_info(),
        "git_commit": _git_commit(),
        "metrics": glued_values(executed) if executed is not None else {},
        "claims": _claims_of(collect, executed),
    }
    if scheduler is not None:  # the training ran on the cluster's workers, not on "machine"
        record["scheduler"] = scheduler
    if error:
        record["error"] = error
    atomic_write(results_path, json.dumps(record, indent=2, sort_keys=True))
    log(f"[{i}/{n}] {nb.stem}: {status} in {wall / 60:.1f} min")
    return record, (None if status == "completed" else (nb.stem, failure, error))


def _raise_failure(stem: str, exc: BaseException, error: str) -> None:
    """Raise the error of a failed chapter, with the advice that fits how it failed.

    A parameter the chapter refused (its ``presets.validate`` raised :class:`presets.ParameterError`
    or :class:`presets.ParameterTypeError`): a ``ValueError`` in one line, since a rerun would fail
    the same way. An error raised by a cell: fix it, then the rerun resumes. Anything else (the
    kernel died, a timeout, a lost connection): rerun to resume from the checkpoints.
    """
    ename = getattr(exc, "ename", None)
    if ename in PARAMETER_ERRORS:
        evalue = " ".join(str(getattr(exc, "evalue", "")).split())
        raise ValueError(
            f"{stem}: {evalue} (the chapter refused this parameter; rerunning the same "
            f"command would fail the same way: change the parameter)"
        )
    if ename is not None:
        raise RuntimeError(
            f"chapter {stem} failed: {error}\nAfter fixing the cause, rerun the same command: "
            f"completed chapters are skipped and training runs resume from their checkpoints."
        )
    raise RuntimeError(f"chapter {stem} failed: {error}\nRerun the same command to resume from its checkpoints.")


def _claims_of(collect, executed) -> List[Dict[str, object]]:
    """id, held and value of every claim an executed notebook recorded."""
    if executed is None:
        return []
    return [{k: c.get(k) for k in ("id", "held", "value")} for c in collect(executed)["claims"]]


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

    rows = ["| chapter | parameter | quick | full |", "| --- | --- | --- | --- |"]
    for ch in chapters:
        quick, full = presets.get_preset(ch, "quick"), presets.get_preset(ch, "full")
        for name in quick:
            if name == "preset" or name in presets.BASE:  # seed, device, step_scale
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
        record = _read_record(path, "read the other results")
        record.setdefault("source", str(path.relative_to(root)))
        records.append(record)
    return records


def results_table(records: Iterable[Dict[str, object]]) -> str:
    """A markdown table of full-run records: chapter, status, device, date, dataset, wall time."""
    rows = [
        "| chapter | status | device | date (UTC) | dataset | wall time (min) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in records:
        machine = r.get("machine", {})
        dev = machine.get("gpu") or machine.get("device", "?")
        params = r.get("parameters", {})
        dataset = params.get("dataset") or params.get("image_dataset") or "preset default"
        date = str(r.get("started_utc", "?"))[:10]
        wall = r.get("wall_time_s")
        rows.append(
            f"| {r.get('chapter')} | {r.get('status')} | {dev} | {date} | {dataset} | "
            f"{'?' if wall is None else f'{wall / 60:.1f}'} |"
        )
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
        "book",
        help="rerun the book's chapters with papermill (e.g. --preset full on a GPU)",
        description="Execute every chapter notebook of book/ with papermill at a preset into its own "
        "folder under --out (never touching book/), writing the executed notebook and a "
        "results.json per chapter; completed chapters are skipped and interrupted ones "
        "resume from their training checkpoints. Parameters and datasets are checked "
        "before anything runs.",
    )
    p.add_argument("--preset", default="full", choices=("quick", "full"), help="preset for every chapter")
    p.add_argument("--out", default="runs/full", help="output folder (outside book/)")
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="papermill parameter override, e.g. -p step_scale 0.01 or -p seeds '[0, 1]' (repeatable)",
    )
    p.add_argument(
        "--offline-data",
        default=None,
        metavar="NAME",
        help="replace every downloadable image dataset of every chapter (MNIST, CIFAR-10) "
        f"by this bundled one; one of: {', '.join(OFFLINE_DATASETS)}",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check every chapter's parameters and data, print the plan (training runs, "
        "generator steps, expected GPU minutes where measured) and stop",
    )
    p.add_argument(
        "--chapters", nargs="+", default=None, metavar="NN", help="only these chapters, e.g. --chapters 03 04"
    )
    p.add_argument("--book-dir", default="book", help="folder of the chapter notebooks")
    p.add_argument(
        "--download",
        action="store_true",
        help="allow dataset downloads (online machines); offline a missing dataset stops the run",
    )
    p.add_argument("--force", action="store_true", help="rerun chapters that already completed")
    p.add_argument(
        "--strict-claims",
        action="store_true",
        help="a failing claim stops its chapter (default: recorded in results.json)",
    )
    p.add_argument("--execution-timeout", type=int, default=None, help="per-cell timeout in seconds (default: none)")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="a Dask scheduler (tcp://host:8786 or a scheduler file) that runs every chapter's training runs; "
        f"default: ${SCHEDULER_ENV} when set, else this machine (README, 'A cluster')",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="chapters run side by side (needs --scheduler; default 1)",
    )
    p.set_defaults(func=_run_book_command, _parser=p)
    return p


def format_plan(rows: Iterable[Dict[str, object]], preset: str, throughput=None) -> str:
    """The dry run's plan as aligned text: one block per chapter and a total line."""
    rows = list(rows)
    lines = [f"Plan of the {preset} preset (nothing was run):"]
    for r in rows:
        runs = "n/a" if r["runs"] is None else f"{r['runs']:,}"
        gsteps = "n/a" if r["generator_steps"] is None else f"{r['generator_steps']:,}"
        gpu = "n/a" if r["gpu_minutes"] is None else f"{r['gpu_minutes']:.1f}"
        lines.append(f"  {r['chapter']:<26} training runs {runs:>4}   generator steps {gsteps:>10}   GPU minutes {gpu}")
        for e in r["entries"] or []:
            lines.append(f"      {e.runs} x {e.steps:,} generator steps: {e.what}")
        counts = ", ".join(f"{k} {v:,}" for k, v in r["step_counts"].items())
        if counts:
            lines.append(f"      step counts: {counts}")
        if r["datasets"]:
            lines.append("      datasets: " + ", ".join(f"{k} {_fmt(v)}" for k, v in r["datasets"].items()))
    known = [r for r in rows if r["runs"] is not None]
    lines.append(
        f"  total over {len(known)} chapter(s) with a plan: {sum(r['runs'] for r in known):,} "
        f"training runs, {sum(r['generator_steps'] for r in known):,} generator steps"
    )
    if throughput is None:
        lines.append(f"  GPU minutes: n/a -- no GPU throughput has been measured ({THROUGHPUT_FILE} does not exist)")
    return "\n".join(lines)


def _run_book_command(args) -> int:

    overrides = {name: _parse_override(value) for name, value in args.parameter}
    try:
        result = run_book(
            preset=args.preset,
            out=args.out,
            overrides=overrides,
            chapters=args.chapters,
            book_dir=args.book_dir,
            download=args.download,
            force=args.force,
            log=lambda msg: print(msg, flush=True),
            execution_timeout=args.execution_timeout,
            offline_data=args.offline_data,
            dry_run=args.dry_run,
            strict_claims=args.strict_claims,
            scheduler=args.scheduler,
            jobs=args.jobs,
        )
    except (DatasetMissingError, ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        print(f"wganbook book: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"wganbook book: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"wganbook book: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        throughput = load_throughput(Path(args.book_dir).resolve().parent / THROUGHPUT_FILE)
        print(format_plan(result, args.preset, throughput))
    return 0

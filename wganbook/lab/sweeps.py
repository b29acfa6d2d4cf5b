r"""Small hyper-parameter sweeps: one training run per grid point and seed, and their summary.

A *sweep* trains ``wganbook.train.train(TrainConfig(**base, **combo, seed=s))`` for every
combination ``combo`` of the grid (the Cartesian product of its value lists) and every seed,
evaluates the final generator, and returns one *record* per run::

    {"combo": {...}, "seed": s, "metrics": {...}, "history": {...}, "wall_time": t,
     "config": {...}, "result": TrainResult or None}

The final metrics depend on the data (see :func:`final_metrics`):

* 2-D toys: ``"w1_target"`` -- exact W1 between generated and fresh target samples; for the
  Gaussian mixtures also ``"modes"`` (modes covered) and ``"high_quality"`` (share of samples
  within 3 standard deviations of a mode), from :mod:`wganbook.metrics`;
* images: ``"fd"`` -- the Fréchet distance in the feature space of a small classifier
  (:func:`wganbook.metrics.sample_quality`; not comparable with published FIDs);
* always, when the run recorded them: ``"w1_exact"`` (last exact batch W1) and ``"w1_estimate"``
  (the critic's last W1 estimate :math:`\hat W = \bar f(\text{real}) - \bar f(\text{fake})`).

:func:`summarize` groups records and reports mean, standard deviation, min, max and count of one
metric per group; :func:`markdown_table` renders rows (dicts) as a Markdown table, and
:func:`summary_table` does both for several metrics at once ("mean ± std" cells).

Independent runs go to worker processes (:func:`map_runs`, one torch thread each): by default
as many as the usable CPU cores (``$WGANBOOK_WORKERS`` overrides, ``workers=1`` is serial). Every
run seeds itself, so the records are bit-identical whatever the number of workers; on a GPU the
runs stay in one process. When a Dask scheduler is configured (``scheduler=`` or
``$WGANBOOK_SCHEDULER``), the runs go to that cluster instead (:mod:`wganbook.lab.cluster`), with
the same records.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import math
import os
import time
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from wganbook import data as wdata
from wganbook import metrics as wmetrics
from wganbook.data import seed_everything
from wganbook.lab import cluster as wcluster
from wganbook.models import resolve_device
from wganbook.train.config import TrainConfig
from wganbook.train.history import TrainingDiverged
from wganbook.train.loop import train

__all__ = [
    "TOY_METRICS",
    "IMAGE_METRICS",
    "expand_grid",
    "final_metrics",
    "resolve_workers",
    "map_runs",
    "run_grid",
    "summarize",
    "markdown_table",
    "summary_table",
]

#: Final metrics computed for 2-D toys (``modes``/``high_quality`` only for Gaussian mixtures).
TOY_METRICS = ("modes", "high_quality", "w1_target")
#: Final metrics computed for image datasets.
IMAGE_METRICS = ("fd",)
_HISTORY_METRICS = ("w1_exact", "w1_estimate")


# ---------------------------------------------------------------------------------------------
# Grid expansion
# ---------------------------------------------------------------------------------------------
def _label(value: Any) -> Any:
    """The value recorded in ``combo`` for one grid entry (dict entries get a short label)."""
    if isinstance(value, Mapping):
        if "name" in value:
            return value["name"]
        return ",".join(f"{k}={v}" for k, v in value.items())
    return value


def _overrides(key: str, value: Any) -> dict:
    """The TrainConfig keyword arguments of one grid entry."""
    if isinstance(value, Mapping):
        return {k: v for k, v in value.items() if k != "name"}
    return {key: value}


def expand_grid(grid: Mapping[str, Sequence]) -> List[dict]:
    r"""All combinations of a grid, in order (the last key varies fastest).

    For ``grid = {k_1: [v_{11}, ...], ..., k_m: [v_{m1}, ...]}`` the combinations are the
    Cartesian product :math:`\prod_j \{v_{j1}, v_{j2}, \dots\}`, i.e.
    :math:`\prod_j |\mathrm{grid}[k_j]|` dicts ``{k_1: v_1, ..., k_m: v_m}``. An empty grid has
    one (empty) combination.

    A grid value may be a **dict** of several ``TrainConfig`` settings that belong together,
    e.g. ``{"variant": [{"name": "clip", "method": "wgan-clip"}, {"name": "gp", "method":
    "wgan-gp", "lam": 0.1}]}``; such a dict is merged into the configuration and the combination
    records its ``"name"`` (or ``"k=v,..."`` without one).

    Parameters
    ----------
    grid : dict of str to list
        Parameter name -> non-empty list of values.

    Returns
    -------
    list of dict
        The combinations (labels, as recorded in each record's ``"combo"``).

    Raises
    ------
    TypeError
        If ``grid`` is not a mapping or a value is not a list/tuple.
    ValueError
        If a value list is empty or a key is ``"seed"`` (seeds are passed separately).
    """
    return [dict((k, _label(v)) for k, v in c) for c in _combos(grid)]


def _combos(grid: Mapping[str, Sequence]) -> List[list]:
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a dict of parameter name -> list of values, got {type(grid).__name__}")
    keys = list(grid)
    for k in keys:
        if not isinstance(k, str):
            raise TypeError(f"grid keys must be str, got {k!r}")
        if k == "seed":
            raise ValueError("grid must not contain 'seed'; pass the seeds as run_grid(..., seeds=[...])")
        v = grid[k]
        if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)):
            raise TypeError(f"grid[{k!r}] must be a list of values, got {type(v).__name__}")
        if len(v) == 0:
            raise ValueError(f"grid[{k!r}] is empty; each grid entry needs at least one value")
    return [list(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


# ---------------------------------------------------------------------------------------------
# Final metrics of one run
# ---------------------------------------------------------------------------------------------
def _last_finite(seq) -> Optional[float]:
    if seq is None:
        return None
    for v in reversed(list(seq)):
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            return f
    return None


def final_metrics(
    result, dataset: Optional[str] = None, n: Optional[int] = None, seed: int = 0, features=None
) -> Dict[str, float]:
    r"""Evaluate the final state of one training run.

    With :math:`n` generated samples :math:`x_i = G(z_i)`:

    * toys: ``w1_target`` :math:`= W_1(\hat P_g, \hat P_r)` on :math:`n` generated and :math:`n`
      fresh target samples (:func:`wganbook.metrics.w1_to_target`); for ``8gaussians`` and
      ``25gaussians`` also ``modes`` and ``high_quality`` (:func:`wganbook.metrics.mode_coverage`);
    * images: ``fd`` :math:`= \lVert\mu_g-\mu_r\rVert^2 + \mathrm{Tr}(\Sigma_g+\Sigma_r-2(\Sigma_g\Sigma_r)^{1/2})`
      in classifier features (:func:`wganbook.metrics.sample_quality`);
    * from the history, when present: ``w1_exact`` (last exact batch W1) and ``w1_estimate``
      (last critic estimate :math:`\bar f(\text{real})-\bar f(\text{fake})`).

    Parameters
    ----------
    result : TrainResult
        Has ``.generator``, ``.history`` and ``.config`` (whose ``.data`` names the dataset).
    dataset : str, optional
        Dataset name (default ``result.config.data``).
    n : int, optional
        Number of generated samples (default 2048 for toys, 1000 for images).
    seed : int, optional
        Seed of the evaluation noise.
    features : callable, optional
        Feature extractor for images (default: ``ClassifierFeatures(dataset)``).

    Returns
    -------
    dict of str to float
        The metrics above (keys absent when not applicable).
    """

    if dataset is None:
        dataset = getattr(getattr(result, "config", None), "data", None)
    if not isinstance(dataset, str):
        raise ValueError("dataset must be given (a dataset name) when result.config has no 'data'")
    out: Dict[str, float] = {}
    if wdata.is_toy(dataset):
        n = 2048 if n is None else int(n)
        x = wmetrics.generate(result.generator, n, seed=seed)
        out["w1_target"] = float(wmetrics.w1_to_target(x, dataset))
        if dataset in wmetrics.MODE_DATASETS:
            cov = wmetrics.mode_coverage(x, dataset)
            out["modes"] = int(cov["modes"])
            out["high_quality"] = float(cov["high_quality"])
    elif dataset in wdata.IMAGE_DATASETS:
        n = 1000 if n is None else int(n)
        out["fd"] = float(wmetrics.sample_quality(result.generator, dataset, n=n, features=features, seed=seed))
    else:
        raise ValueError(
            f"unknown dataset {dataset!r}; dataset must be one of: "
            f"{', '.join(tuple(wdata.TOY_DATASETS) + tuple(wdata.IMAGE_DATASETS))}"
        )
    hist = getattr(result, "history", None) or {}
    for key in _HISTORY_METRICS:
        v = _last_finite(hist.get(key))
        if v is not None:
            out[key] = v
    return out


# ---------------------------------------------------------------------------------------------
# Independent runs in worker processes
# ---------------------------------------------------------------------------------------------
#: Environment variable that overrides the default number of workers (``workers=None``).
WORKERS_ENV = "WGANBOOK_WORKERS"


def _check_workers(value, name: str) -> int:
    allowed = "an int >= 1" if name == WORKERS_ENV else "None or an int >= 1"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be {allowed} (1 = serial, in this process), got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be {allowed} (1 = serial, in this process), got {value!r}")
    return int(value)


def resolve_workers(workers: Optional[int] = None) -> int:
    r"""The number of worker processes for independent runs.

    ``None`` means ``$WGANBOOK_WORKERS`` when that is set, else the number of CPU cores this
    process may run on (``len(os.sched_getaffinity(0))``, or ``os.cpu_count()`` where the
    affinity is not available). An int :math:`\ge 1` is taken as it is; ``1`` is the serial path.

    Parameters
    ----------
    workers : int, optional
        Requested number of workers.

    Returns
    -------
    int
        :math:`\ge 1`.

    Raises
    ------
    TypeError, ValueError
        If ``workers`` (or ``$WGANBOOK_WORKERS``) is not a positive int (``bool`` is refused).
    """
    if workers is not None:
        return _check_workers(workers, "workers")
    env = os.environ.get(WORKERS_ENV)
    if env is not None and env.strip() != "":
        try:
            value = int(env.strip())
        except ValueError:
            raise ValueError(f"{WORKERS_ENV} must be an int >= 1 (1 = serial, in this process), got {env!r}") from None
        return _check_workers(value, WORKERS_ENV)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


class _PackedModule:
    """A module whose parametrizations (e.g. spectral norm) were taken off for pickling."""

    def __init__(self, module, specs):
        self.module = module
        self.specs = specs  # [(submodule path, tensor name, [parametrization modules])]


def _pack(obj):
    """Make ``obj`` picklable: parametrized modules (spectral norm) cannot be pickled as such."""
    from torch.nn.utils import parametrize

    if isinstance(obj, torch.nn.Module):
        specs = [
            (path, name, list(sub.parametrizations[name]))
            for path, sub in obj.named_modules()
            if parametrize.is_parametrized(sub)
            for name in list(sub.parametrizations)
        ]
        if not specs:
            return obj
        for path, name, _ in specs:
            parametrize.remove_parametrizations(obj.get_submodule(path), name, leave_parametrized=False)
        return _PackedModule(obj, specs)
    if isinstance(obj, dict):
        return {k: _pack(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(_pack(v) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = copy.copy(obj)
        for f in dataclasses.fields(obj):
            object.__setattr__(out, f.name, _pack(getattr(obj, f.name)))
        return out
    return obj


def _unpack(obj):
    """Undo :func:`_pack`: put the parametrizations back (same modules, buffers and parameters)."""
    from torch.nn.utils import parametrize

    if isinstance(obj, _PackedModule):
        for path, name, mods in obj.specs:
            sub = obj.module.get_submodule(path)
            for m in mods:
                parametrize.register_parametrization(sub, name, m, unsafe=True)
        return obj.module
    if isinstance(obj, dict):
        return {k: _unpack(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(_unpack(v) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            object.__setattr__(obj, f.name, _unpack(getattr(obj, f.name)))
        return obj
    return obj


def _note(err: BaseException, where: str) -> None:
    if hasattr(err, "add_note"):
        err.add_note(where)


def _worker_call(fn, item, where: str, filters):
    """Run ``fn(item)`` in a worker process: one torch thread, the caller's warning filters."""
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.filters[:] = filters
        try:
            return _pack(fn(item))
        except BaseException as err:
            _note(err, f"{where}:\n{traceback.format_exc()}")
            raise


def map_runs(
    fn: Callable[[Any], Any],
    items: Iterable,
    workers: Optional[int] = None,
    *,
    describe: Optional[Callable[[Any], str]] = None,
    device=None,
    scheduler: Optional[str] = None,
) -> list:
    r"""``[fn(item) for item in items]``, the items spread over worker processes.

    Every item must be an independent run that seeds itself (no shared random state), so the
    results are **bit-identical** whatever the number of workers, and they come back in the
    order of ``items``. With :math:`w` workers (:func:`resolve_workers`) and more than one item,
    the runs go to a pool of :math:`w` processes of joblib's ``loky``
    backend (spawned, not forked: safe in a Jupyter kernel and with torch; the pool is reused by
    later calls), each on **one** torch thread and with the caller's warning filters. ``fn`` and
    the items are pickled with cloudpickle, so functions defined in a notebook work;
    modules with parametrizations (spectral norm) travel back intact. ``workers=1``, a single
    item, or a CUDA/MPS ``device`` run everything here, in this process, as a plain loop.

    The serial path uses this process's torch thread count; the records equal those of the
    workers when it is one thread, as in every chapter notebook
    (:func:`wganbook.bookkit.notebook.setup_notebook`).

    **On a Dask cluster.** When a scheduler is configured -- ``scheduler``, or else
    ``$WGANBOOK_SCHEDULER`` (:func:`wganbook.lab.cluster.resolve_scheduler`) -- every item is one
    task on that cluster (:func:`wganbook.lab.cluster.run_on_cluster`), whatever ``workers`` and
    ``device`` say: each on one torch thread with the caller's warning filters, as in the local pool,
    so the records are the same as the serial run's on the same kind of device. The scheduler is
    checked (its form, then a connection) before any run starts; a run whose worker died is run again
    by another worker.

    Parameters
    ----------
    fn : callable
        ``fn(item) -> result``.
    items : iterable
        One item per run.
    workers : int, optional
        Number of worker processes; ``None``: ``$WGANBOOK_WORKERS`` or the usable cores.
    describe : callable, optional
        ``describe(item) -> str``: how a failing run is named in the error (default ``repr``).
    device : str or torch.device, optional
        Where the runs train; anything that resolves to a GPU keeps them in this process (unless they
        go to a cluster).
    scheduler : str, optional
        A Dask scheduler's address (``tcp://host:8786``) or scheduler file; ``None``:
        ``$WGANBOOK_SCHEDULER`` when set, else no cluster.

    Returns
    -------
    list
        ``fn(item)`` for every item, in order.

    Raises
    ------
    TypeError, ValueError
        For a bad ``workers`` or ``scheduler`` (before any run starts).
    ConnectionError
        If the scheduler cannot be reached (naming its address), before any run starts.
    ImportError
        With a scheduler but without ``dask``/``distributed`` (``pip install 'wganbook[cluster]'``).
    Exception
        The first failing run's own exception (same type and message), with a note naming the
        run (its index and ``describe(item)``) and, from a worker, the worker's traceback.
    """
    n = resolve_workers(workers)
    address = wcluster.resolve_scheduler(scheduler)
    items = list(items)
    describe = repr if describe is None else describe
    if address is not None:
        filters = list(warnings.filters)
        names = [f"run {i} of {len(items)} failed: {describe(item)}" for i, item in enumerate(items)]
        calls = [
            functools.partial(_worker_call, fn, item, f"{name} (in a worker process)", filters)
            for item, name in zip(items, names)
        ]
        return [_unpack(r) for r in wcluster.run_on_cluster(calls, names, address)]
    if n > 1 and device is not None and str(device) != "cpu":
        if resolve_device(device).type != "cpu":
            n = 1
    if n <= 1 or len(items) <= 1:
        out = []
        for i, item in enumerate(items):
            try:
                out.append(fn(item))
            except BaseException as err:
                _note(err, f"run {i} of {len(items)} failed: {describe(item)}")
                raise
        return out
    from joblib import Parallel, delayed

    filters = list(warnings.filters)
    tasks = (
        delayed(_worker_call)(
            fn, item, f"run {i} of {len(items)} failed: {describe(item)} (in a worker process)", filters
        )
        for i, item in enumerate(items)
    )
    # the same pool size on every call, so that joblib reuses the running workers
    results = Parallel(n_jobs=n, backend="loky")(tasks)
    return [_unpack(r) for r in results]


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------
def _train_config(config_kwargs: dict, **kwargs):
    """The default ``train_fn`` of :func:`run_grid`: ``train(TrainConfig(**config_kwargs))``."""

    return train(TrainConfig(**config_kwargs), **kwargs)


def _default_train():
    return _train_config


def run_grid(
    base: Mapping[str, Any],
    grid: Mapping[str, Sequence],
    seeds: Iterable[int],
    metric: Union[None, str, Sequence[str], Callable] = None,
    *,
    data=None,
    train_fn: Optional[Callable] = None,
    keep_results: bool = False,
    n_eval: Optional[int] = None,
    eval_seed: int = 0,
    features=None,
    on_diverge: str = "raise",
    verbose: bool = False,
    workers: Optional[int] = None,
    checkpoint_root=None,
    scheduler: Optional[str] = None,
) -> List[dict]:
    r"""Train one model per grid combination and seed; return one record per run.

    For every combination ``combo`` of :func:`expand_grid` ``(grid)`` and every seed ``s`` the
    run is ``train.train(TrainConfig(**{**base, **combo, "seed": s}), data=data)`` (grid values
    override ``base``). The number of runs is :math:`|\text{seeds}|\prod_j |\mathrm{grid}[k_j]|`.
    Before each run, :func:`wganbook.data.seed_everything` ``(s)`` seeds the global random
    state, so a ``train_fn`` that builds its nets before ``train`` seeds does not depend on the
    runs before it (nor on which worker process it lands in).

    Parameters
    ----------
    base : dict
        ``TrainConfig`` keyword arguments shared by all runs (e.g. ``data``, ``steps``).
        Must not contain ``"seed"``.
    grid : dict of str to list
        Values to sweep (see :func:`expand_grid`; dict values bundle several settings).
    seeds : iterable of int
        Seeds; every combination is trained once per seed.
    metric : None, str, list of str or callable, optional
        Which final metrics to keep. ``None``: all of :func:`final_metrics`. A name or list of
        names: only those (a ``KeyError``-free subset; unknown names raise ``ValueError``). A
        callable ``metric(result) -> dict`` replaces :func:`final_metrics` altogether.
    data : optional
        Passed to ``train(..., data=data)`` (e.g. preloaded images), so it is loaded once.
    train_fn : callable, optional
        ``train_fn(config_kwargs: dict, data=...) -> result``; default builds
        ``TrainConfig(**config_kwargs)`` and calls :func:`~wganbook.train.loop.train`. Tests inject a
        fake here.
    keep_results : bool, optional
        Keep each run's result object (generator, critic) in ``record["result"]``; default
        ``False`` keeps only metrics and history, to save memory.
    n_eval : int, optional
        Number of generated samples for the final metrics (see :func:`final_metrics`).
    eval_seed : int, optional
        Seed of the evaluation noise.
    features : callable, optional
        Image feature extractor for the Fréchet distance.
    on_diverge : {"raise", "record"}, optional
        What to do when a run raises :class:`~wganbook.train.history.TrainingDiverged` (a NaN loss):
        re-raise, or keep a record with empty ``"metrics"`` and ``"diverged"`` = the step (such
        runs count as ``missing`` in :func:`summarize`).
    verbose : bool, optional
        Print one line per finished run (when all runs are done, if they ran in workers).
    workers : int, optional
        Worker processes for the runs (:func:`map_runs`): ``None`` = ``$WGANBOOK_WORKERS`` or
        the usable CPU cores; ``1`` = one after the other in this process. Runs on a GPU
        (``base["device"]`` resolving to CUDA) stay in this process. Every run seeds itself, so
        the records are the same whatever the number of workers. ``train_fn``, ``metric`` and
        ``features`` must be picklable by cloudpickle (module-level or notebook functions are).
    checkpoint_root : str or path-like, optional
        Passed to every run, ``train_fn(config_kwargs, data=..., checkpoint_root=...)`` (also in
        worker processes; not passed when None): each run checkpoints in its own folder under it,
        named by a digest of the run, and an interrupted grid resumes its runs when called again
        (see :func:`~wganbook.train.loop.train`). On a cluster, put it on a path every worker sees,
        so that a run whose worker died resumes from its checkpoint on another worker.
    scheduler : str, optional
        A Dask scheduler (address or scheduler file) to send the runs to; ``None``:
        ``$WGANBOOK_SCHEDULER`` when set, else local workers (see :func:`map_runs`).

    Returns
    -------
    list of dict
        Records ``{"combo", "seed", "metrics", "history", "wall_time", "config", "result",
        "diverged"}`` in the order combination-major, seed-minor (``"diverged"`` is ``None`` for
        a run that finished).

    Raises
    ------
    TypeError, ValueError
        On a malformed grid, seeds, metric, workers or scheduler (before any training starts).
    ConnectionError
        If the scheduler cannot be reached (before any training starts).
    Exception
        A run's own error, with a note giving its configuration (see :func:`map_runs`).
    """
    if not isinstance(base, Mapping):
        raise TypeError(f"base must be a dict of TrainConfig arguments, got {type(base).__name__}")
    if "seed" in base:
        raise ValueError("base must not contain 'seed'; pass the seeds as run_grid(..., seeds=[...])")
    seeds = list(seeds) if not isinstance(seeds, int) else [seeds]
    if not seeds:
        raise ValueError("seeds must be a non-empty list of int")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"seeds must be ints, got {s!r}")
    combos = _combos(grid)
    if metric is None or callable(metric):
        wanted = None
    else:
        wanted = [metric] if isinstance(metric, str) else list(metric)
        allowed = TOY_METRICS + IMAGE_METRICS + _HISTORY_METRICS
        for m in wanted:
            if m not in allowed:
                raise ValueError(f"unknown metric {m!r}; metric must be one of: {', '.join(allowed)}")
    if on_diverge not in ("raise", "record"):
        raise ValueError(f"unknown on_diverge {on_diverge!r}; on_diverge must be one of: raise, record")
    if checkpoint_root is not None and not isinstance(checkpoint_root, (str, os.PathLike)):
        raise TypeError(f"checkpoint_root must be a str or path (or None), got {type(checkpoint_root).__name__}")
    if train_fn is None:
        train_fn = _default_train()
    n_workers = resolve_workers(workers)
    address = wcluster.resolve_scheduler(scheduler)
    tasks = []
    for combo in combos:
        label = dict((k, _label(v)) for k, v in combo)
        kwargs = dict(base)
        for k, v in combo:
            kwargs.update(_overrides(k, v))
        for s in seeds:
            tasks.append(
                _GridRun(
                    label=label,
                    config=dict(kwargs, seed=int(s)),
                    train_fn=train_fn,
                    data=data,
                    metric=metric,
                    wanted=wanted,
                    n_eval=n_eval,
                    eval_seed=eval_seed,
                    features=features,
                    on_diverge=on_diverge,
                    keep_results=keep_results,
                    checkpoint_root=checkpoint_root,
                )
            )
    devices = [t.config.get("device", "auto") for t in tasks]
    device = next((d for d in devices if d is not None and str(d) != "cpu"), "cpu")
    records = map_runs(_grid_run, tasks, workers=n_workers, describe=_describe_run, device=device, scheduler=address)
    if verbose:
        for rec in records:
            if rec["diverged"] is not None:
                print(f"{_fmt_combo(rec['combo'])} seed={rec['seed']}: diverged")
            else:
                shown = ", ".join(f"{k}={_fmt(v, '.3g')}" for k, v in rec["metrics"].items())
                print(f"{_fmt_combo(rec['combo'])} seed={rec['seed']}: {shown}")
    return records


@dataclass
class _GridRun:
    """Everything one run of :func:`run_grid` needs (pickled to a worker)."""

    label: dict
    config: dict
    train_fn: Callable
    data: Any
    metric: Any
    wanted: Optional[list]
    n_eval: Optional[int]
    eval_seed: int
    features: Any
    on_diverge: str
    keep_results: bool
    checkpoint_root: Any = None


def _describe_run(task: "_GridRun") -> str:
    return f"configuration {task.config!r}"


def _grid_run(task: _GridRun) -> dict:
    """Train and evaluate one run of :func:`run_grid`; return its record."""

    cfg, label = task.config, task.label
    # a train_fn that builds nets before train() seeds must not depend on the runs before it
    seed_everything(cfg["seed"])
    t0 = time.perf_counter()
    try:
        extra = {} if task.checkpoint_root is None else {"checkpoint_root": task.checkpoint_root}
        result = task.train_fn(cfg, data=task.data, **extra)
    except TrainingDiverged as err:
        if task.on_diverge == "raise":
            raise
        return {
            "combo": label,
            "seed": cfg["seed"],
            "metrics": {},
            "history": {},
            "wall_time": time.perf_counter() - t0,
            "config": cfg,
            "result": None,
            "diverged": getattr(err, "step", -1),
        }
    wall = float(getattr(result, "wall_time", None) or (time.perf_counter() - t0))
    if callable(task.metric):
        mets = dict(task.metric(result))
    else:
        mets = final_metrics(
            result, dataset=cfg.get("data"), n=task.n_eval, seed=task.eval_seed, features=task.features
        )
        if task.wanted is not None:
            mets = {m: mets[m] for m in task.wanted if m in mets}
    history = getattr(result, "history", None)
    return {
        "combo": label,
        "seed": cfg["seed"],
        "metrics": mets,
        "history": dict(history) if history is not None else {},
        "wall_time": wall,
        "config": cfg,
        "result": result if task.keep_results else None,
        "diverged": None,
    }


def _fmt_combo(label: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in label.items()) or "(base)"


# ---------------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------------
def _lookup(record: Mapping, key: str):
    """A value of a record by name: combo, then metrics, then the record itself, then config."""
    for part in ("combo", "metrics"):
        d = record.get(part)
        if isinstance(d, Mapping) and key in d:
            return d[key]
    if key in record:
        return record[key]
    cfg = record.get("config")
    if isinstance(cfg, Mapping) and key in cfg:
        return cfg[key]
    raise KeyError(key)


def summarize(records: Sequence[Mapping], by: Union[str, Sequence[str]], metric: str) -> List[dict]:
    r"""Mean, standard deviation, min, max and count of one metric per group of records.

    Records are grouped by the values of the keys ``by`` (looked up in ``record["combo"]``, then
    ``record["metrics"]``, the record itself (e.g. ``"seed"``), then ``record["config"]``), in order
    of first appearance. For the finite values :math:`v_1..v_n` of ``metric`` in a group:

    .. math::

        \text{mean} = \frac1n\sum_i v_i, \qquad
        \text{std} = \sqrt{\frac{1}{n-1}\sum_i (v_i - \text{mean})^2}\ \ (0 \text{ when } n = 1).

    Runs whose value is missing or not finite (a diverged run) are not averaged; they are counted
    in ``"missing"``.

    Parameters
    ----------
    records : list of dict
        Records of :func:`run_grid` (or any dicts with the looked-up keys).
    by : str or list of str
        Grouping key(s); ``[]`` puts all records in one group.
    metric : str
        Metric name (e.g. ``"modes"``, ``"fd"``, ``"w1_target"``).

    Returns
    -------
    list of dict
        One row per group: the ``by`` values, ``"metric"``, ``"mean"``, ``"std"``, ``"min"``,
        ``"max"``, ``"n"`` (finite values) and ``"missing"``; statistics are ``nan`` when ``n = 0``.

    Raises
    ------
    KeyError
        If a record lacks a grouping key.
    ValueError
        If ``records`` is empty.
    """
    if isinstance(by, str):
        by = [by]
    by = list(by)
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a str, got {type(metric).__name__}")
    if len(records) == 0:
        raise ValueError("records is empty; run_grid returned no runs")
    groups: Dict[tuple, list] = {}
    missing: Dict[tuple, int] = {}
    for r in records:
        key = tuple(_lookup(r, b) for b in by)
        groups.setdefault(key, [])
        missing.setdefault(key, 0)
        try:
            v = float(_lookup(r, metric))
        except (KeyError, TypeError, ValueError):
            missing[key] += 1
            continue
        if math.isfinite(v):
            groups[key].append(v)
        else:
            missing[key] += 1
    rows = []
    for key, vals in groups.items():
        a = np.asarray(vals, dtype=np.float64)
        n = int(a.size)
        row = dict(zip(by, key))
        row.update(
            {
                "metric": metric,
                "mean": float(a.mean()) if n else float("nan"),
                "std": float(a.std(ddof=1)) if n > 1 else (0.0 if n == 1 else float("nan")),
                "min": float(a.min()) if n else float("nan"),
                "max": float(a.max()) if n else float("nan"),
                "n": n,
                "missing": missing[key],
            }
        )
        rows.append(row)
    return rows


def _fmt(v: Any, floatfmt: str) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(float(v)):
            return "nan" if math.isnan(float(v)) else ("inf" if v > 0 else "-inf")
        return format(float(v), floatfmt)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v).replace("|", "\\|")


def markdown_table(
    rows: Sequence[Mapping],
    columns: Optional[Sequence[str]] = None,
    headers: Optional[Mapping[str, str]] = None,
    floatfmt: str = ".3g",
) -> str:
    r"""Render rows (dicts) as a GitHub-flavoured Markdown table.

    Parameters
    ----------
    rows : list of dict
        One dict per row.
    columns : list of str, optional
        Columns to show, in order (default: the keys of the first row, then new keys of later
        rows in order of appearance).
    headers : dict of str to str, optional
        Display names of columns (default: the column names).
    floatfmt : str, optional
        ``format`` spec for floats (default ``".3g"``); ints and strings are shown as they are,
        missing cells as empty.

    Returns
    -------
    str
        ``| a | b |`` / ``| --- | --- |`` / one line per row, joined by newlines.
    """
    if columns is None:
        columns = []
        for r in rows:
            for k in r:
                if k not in columns:
                    columns.append(k)
    columns = list(columns)
    if not columns:
        raise ValueError("markdown_table needs at least one column")
    headers = dict(headers or {})
    lines = [
        "| " + " | ".join(str(headers.get(c, c)).replace("|", "\\|") for c in columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
    ]
    for r in rows:
        lines.append(
            "| " + " | ".join(_fmt(r[c], floatfmt) if c in r and r[c] is not None else "" for c in columns) + " |"
        )
    return "\n".join(lines)


def summary_table(
    records: Sequence[Mapping],
    by: Union[str, Sequence[str]],
    metrics: Sequence[str],
    floatfmt: str = ".3g",
    headers: Optional[Mapping[str, str]] = None,
    spread: str = "std",
) -> str:
    r"""A Markdown table with one row per group and one ``mean ± spread`` cell per metric.

    Uses :func:`summarize` for each metric; ``spread="std"`` shows the standard deviation,
    ``spread="range"`` shows ``mean [min, max]``. The last column is the number of runs ``n``.

    Parameters
    ----------
    records : list of dict
        Records of :func:`run_grid`.
    by : str or list of str
        Grouping key(s).
    metrics : list of str
        Metric names (columns).
    floatfmt : str, optional
        ``format`` spec of the numbers.
    headers : dict of str to str, optional
        Display names of ``by`` keys and metrics.
    spread : {"std", "range"}, optional
        What follows the mean.

    Returns
    -------
    str
        The Markdown table.
    """
    if spread not in ("std", "range"):
        raise ValueError(f"unknown spread {spread!r}; spread must be one of: std, range")
    if isinstance(metrics, str):
        metrics = [metrics]
    by = [by] if isinstance(by, str) else list(by)
    rows: Dict[tuple, dict] = {}
    for m in metrics:
        for s in summarize(records, by, m):
            key = tuple(s[b] for b in by)
            row = rows.setdefault(key, {b: s[b] for b in by})
            if spread == "std":
                row[m] = f"{_fmt(s['mean'], floatfmt)} ± {_fmt(s['std'], floatfmt)}"
            else:
                row[m] = f"{_fmt(s['mean'], floatfmt)} [{_fmt(s['min'], floatfmt)}, {_fmt(s['max'], floatfmt)}]"
            row["n"] = max(row.get("n", 0), s["n"] + s["missing"])
    return markdown_table(list(rows.values()), columns=by + list(metrics) + ["n"], headers=headers, floatfmt=floatfmt)

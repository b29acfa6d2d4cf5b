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
runs stay in one process.
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import numbers
import os
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

__all__ = [
    "expand_grid",
    "final_metrics",
    "resolve_workers",
    "map_runs",
    "run_grid",
    "summarize",
    "markdown_table",
    "summary_table",
    "StaticFit",
    "fixed_generator",
    "fit_static_critics",
    "SampleSnapshots",
    "estimate_vs_exact",
    "late_mean",
    "late_values",
    "shrink_into_box_",
    "static_fit_summary",
    "METHOD_LABELS",
    "method_variants",
    "critic_overfitting",
    "TOY_METRICS",
    "IMAGE_METRICS",
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


def final_metrics(result, dataset: Optional[str] = None, n: Optional[int] = None, seed: int = 0,
                  features=None) -> Dict[str, float]:
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
    from . import data as wdata
    from . import metrics as wmetrics

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
        raise ValueError(f"unknown dataset {dataset!r}; dataset must be one of: "
                         f"{', '.join(tuple(wdata.TOY_DATASETS) + tuple(wdata.IMAGE_DATASETS))}")
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
            raise ValueError(f"{WORKERS_ENV} must be an int >= 1 (1 = serial, in this process), "
                             f"got {env!r}") from None
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
        specs = [(path, name, list(sub.parametrizations[name]))
                 for path, sub in obj.named_modules() if parametrize.is_parametrized(sub)
                 for name in list(sub.parametrizations)]
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
            _note(err, f"{where} (in a worker process):\n{traceback.format_exc()}")
            raise


def map_runs(fn: Callable[[Any], Any], items: Iterable, workers: Optional[int] = None, *,
             describe: Optional[Callable[[Any], str]] = None, device=None) -> list:
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
    (:func:`wganbook.notebook.setup_notebook`).

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
        Where the runs train; anything that resolves to a GPU keeps them in this process.

    Returns
    -------
    list
        ``fn(item)`` for every item, in order.

    Raises
    ------
    TypeError, ValueError
        For a bad ``workers`` (before any run starts).
    Exception
        The first failing run's own exception (same type and message), with a note naming the
        run (its index and ``describe(item)``) and, from a worker, the worker's traceback.
    """
    n = resolve_workers(workers)
    items = list(items)
    describe = repr if describe is None else describe
    if n > 1 and device is not None and str(device) != "cpu":
        from .models import resolve_device

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
    tasks = (delayed(_worker_call)(fn, item, f"run {i} of {len(items)} failed: {describe(item)}", filters)
             for i, item in enumerate(items))
    # the same pool size on every call, so that joblib reuses the running workers
    results = Parallel(n_jobs=n, backend="loky")(tasks)
    return [_unpack(r) for r in results]


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------
def _train_config(config_kwargs: dict, **kwargs):
    """The default ``train_fn`` of :func:`run_grid`: ``train(TrainConfig(**config_kwargs))``."""
    from .train import TrainConfig, train

    return train(TrainConfig(**config_kwargs), **kwargs)


def _default_train():
    return _train_config


def run_grid(base: Mapping[str, Any], grid: Mapping[str, Sequence], seeds: Iterable[int],
             metric: Union[None, str, Sequence[str], Callable] = None, *, data=None,
             train_fn: Optional[Callable] = None, keep_results: bool = False,
             n_eval: Optional[int] = None, eval_seed: int = 0, features=None,
             on_diverge: str = "raise", verbose: bool = False,
             workers: Optional[int] = None) -> List[dict]:
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
        ``TrainConfig(**config_kwargs)`` and calls :func:`wganbook.train.train`. Tests inject a
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
        What to do when a run raises :class:`wganbook.train.TrainingDiverged` (a NaN loss):
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

    Returns
    -------
    list of dict
        Records ``{"combo", "seed", "metrics", "history", "wall_time", "config", "result",
        "diverged"}`` in the order combination-major, seed-minor (``"diverged"`` is ``None`` for
        a run that finished).

    Raises
    ------
    TypeError, ValueError
        On a malformed grid, seeds, metric or workers (before any training starts).
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
    if train_fn is None:
        train_fn = _default_train()
    n_workers = resolve_workers(workers)
    tasks = []
    for combo in combos:
        label = dict((k, _label(v)) for k, v in combo)
        kwargs = dict(base)
        for k, v in combo:
            kwargs.update(_overrides(k, v))
        for s in seeds:
            tasks.append(_GridRun(label=label, config=dict(kwargs, seed=int(s)), train_fn=train_fn,
                                  data=data, metric=metric, wanted=wanted, n_eval=n_eval,
                                  eval_seed=eval_seed, features=features, on_diverge=on_diverge,
                                  keep_results=keep_results))
    devices = [t.config.get("device", "auto") for t in tasks]
    device = next((d for d in devices if d is not None and str(d) != "cpu"), "cpu")
    records = map_runs(_grid_run, tasks, workers=n_workers, describe=_describe_run, device=device)
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


def _describe_run(task: "_GridRun") -> str:
    return f"configuration {task.config!r}"


def _grid_run(task: _GridRun) -> dict:
    """Train and evaluate one run of :func:`run_grid`; return its record."""
    from .data import seed_everything
    from .train import TrainingDiverged

    cfg, label = task.config, task.label
    # a train_fn that builds nets before train() seeds must not depend on the runs before it
    seed_everything(cfg["seed"])
    t0 = time.perf_counter()
    try:
        result = task.train_fn(cfg, data=task.data)
    except TrainingDiverged as err:
        if task.on_diverge == "raise":
            raise
        return {"combo": label, "seed": cfg["seed"], "metrics": {}, "history": {},
                "wall_time": time.perf_counter() - t0, "config": cfg, "result": None,
                "diverged": getattr(err, "step", -1)}
    wall = float(getattr(result, "wall_time", None) or (time.perf_counter() - t0))
    if callable(task.metric):
        mets = dict(task.metric(result))
    else:
        mets = final_metrics(result, dataset=cfg.get("data"), n=task.n_eval, seed=task.eval_seed,
                             features=task.features)
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


def estimate_vs_exact(history: Mapping[str, Sequence]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The critic's estimate and the exact batch W1 at the same generator steps.

    ``wganbook.train.train`` records the critic estimate
    :math:`\hat W_t = \bar f(x) - \bar f(G(z))` at every generator step :math:`t` (``"step"``) and,
    with ``w1_every``, the exact :math:`W_1` of the *same* last real and fake minibatches at the steps
    ``"w1_step"``. This pairs them: :math:`(t_k, \hat W_{t_k}, W_1^{(k)})`; the ratio
    :math:`\hat W / W_1` is the factor the critic's loss carries (:math:`K` for a :math:`K`-Lipschitz
    optimal critic).

    Parameters
    ----------
    history : dict
        A training history with ``"step"``, ``"w1_estimate"``, ``"w1_step"`` and ``"w1_exact"``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        Steps, estimates and exact W1 values (float64, equal lengths).

    Raises
    ------
    ValueError
        If the history has no exact W1 records (train with ``w1_every > 0``).
    """
    w1_steps = list(history.get("w1_step", []) or [])
    if not w1_steps:
        raise ValueError("history has no exact W1 records; train with w1_every > 0")
    index = {int(s): i for i, s in enumerate(history["step"])}
    missing = [s for s in w1_steps if int(s) not in index]
    if missing:
        raise ValueError(f"w1_step {missing[0]} has no matching entry in history['step']")
    est = np.asarray([history["w1_estimate"][index[int(s)]] for s in w1_steps], dtype=np.float64)
    return (np.asarray(w1_steps, dtype=np.int64), est,
            np.asarray(history["w1_exact"][:len(w1_steps)], dtype=np.float64))


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
        row.update({
            "metric": metric,
            "mean": float(a.mean()) if n else float("nan"),
            "std": float(a.std(ddof=1)) if n > 1 else (0.0 if n == 1 else float("nan")),
            "min": float(a.min()) if n else float("nan"),
            "max": float(a.max()) if n else float("nan"),
            "n": n,
            "missing": missing[key],
        })
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


def markdown_table(rows: Sequence[Mapping], columns: Optional[Sequence[str]] = None,
                   headers: Optional[Mapping[str, str]] = None, floatfmt: str = ".3g") -> str:
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
    lines = ["| " + " | ".join(str(headers.get(c, c)).replace("|", "\\|") for c in columns) + " |",
             "| " + " | ".join("---" for _ in columns) + " |"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[c], floatfmt) if c in r and r[c] is not None else ""
                                       for c in columns) + " |")
    return "\n".join(lines)


def summary_table(records: Sequence[Mapping], by: Union[str, Sequence[str]], metrics: Sequence[str],
                  floatfmt: str = ".3g", headers: Optional[Mapping[str, str]] = None,
                  spread: str = "std") -> str:
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
    return markdown_table(list(rows.values()), columns=by + list(metrics) + ["n"], headers=headers,
                          floatfmt=floatfmt)


# ---------------------------------------------------------------------------------------------
# Critics trained to optimality against a fixed "generator" (WGAN-GP Fig. 1)
# ---------------------------------------------------------------------------------------------
def fixed_generator(dataset: str, noise: float = 1.0, seed: int = 0) -> Tuple[Callable, Callable]:
    r"""Samplers of a 2-D toy and of the fixed "generator" of WGAN-GP Fig. 1: data plus noise.

    .. math::

        x \sim P_r, \qquad y = x' + \sigma\,\xi,\quad x' \sim P_r,\ \xi \sim \mathcal N(0, I_2)

    with :math:`\sigma` = ``noise`` (1 in ``gan_toy.py``'s ``FIXED_GENERATOR``); :math:`x` and
    :math:`x'` are independent. Both samplers draw from one private, seeded random stream, so a
    fit that uses them is reproducible and leaves the global random state alone.

    Parameters
    ----------
    dataset : str
        A toy dataset name (``wganbook.data.TOY_DATASETS``).
    noise : float, optional
        Standard deviation :math:`\sigma \ge 0` of the added noise.
    seed : int, optional
        Seed of the private stream.

    Returns
    -------
    (callable, callable)
        ``real(n)`` and ``fake(n)``, each returning an ``(n, 2)`` float32 tensor.
    """
    from . import data as wdata

    if not isinstance(dataset, str) or not wdata.is_toy(dataset):
        raise ValueError(f"unknown dataset {dataset!r}; dataset must be one of: {', '.join(wdata.TOY_DATASETS)}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise ValueError(f"noise must be a float >= 0, got {noise!r}")
    gen = torch.Generator().manual_seed(int(seed))

    def real(n: int) -> torch.Tensor:
        return wdata.sample_toy(dataset, n, generator=gen)

    def fake(n: int) -> torch.Tensor:
        x = wdata.sample_toy(dataset, n, generator=gen)
        return x + float(noise) * torch.randn(n, 2, generator=gen)

    return real, fake


@dataclass
class StaticFit:
    """One critic fitted by :func:`fit_static_critics`.

    Attributes
    ----------
    label : str
        The variant's label.
    dataset : str
        The toy dataset.
    method : str
        The method whose critic loss was minimised.
    critic : torch.nn.Module
        The fitted critic (in ``eval`` mode).
    history : dict
        What :func:`wganbook.train.fit_critic` recorded.
    real, fake : torch.Tensor
        Fresh evaluation samples of the two distributions, ``(n_points, 2)``.
    hparams : dict
        The settings of the variant (method hyper-parameters and architecture).
    wall_time : float
        Seconds spent fitting.
    """

    label: str
    dataset: str
    method: str
    critic: Any
    history: Dict[str, list]
    real: torch.Tensor
    fake: torch.Tensor
    hparams: Dict[str, Any] = field(default_factory=dict)
    wall_time: float = 0.0


_ARCH_KEYS = ("width", "depth", "norm", "activation", "inside_box")


def shrink_into_box_(module, c: float) -> None:
    r"""Rescale each parameter tensor in place so that its largest entry is :math:`0.999\,c`.

    .. math::

        W \leftarrow \frac{0.999\, c}{\max_{ij} \lvert W_{ij} \rvert}\, W

    for every parameter tensor :math:`W` (zero tensors are left alone). The initialisation's shape is
    kept, but every weight is strictly inside the clipping box :math:`(-c, c)`, so that weights found at
    :math:`\pm c` after training got there by training, not by the first clip.

    Parameters
    ----------
    module : torch.nn.Module
        Modified in place.
    c : float
        Clipping bound, ``c > 0``.
    """
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
        raise ValueError(f"c must be a float > 0, got {c!r}")
    critic = module
    with torch.no_grad():
        for p in critic.parameters():
            m = float(p.abs().max()) if p.numel() else 0.0
            if m > 0:
                p.mul_(0.999 * c / m)


def fit_static_critics(variants: Mapping[str, Mapping[str, Any]], datasets: Sequence[str], steps: int,
                       batch_size: int = 256, seed: int = 0, noise: float = 1.0, n_points: int = 512,
                       width: Optional[int] = None, depth: Optional[int] = None,
                       record_every: Optional[int] = None, exact_w1: bool = False,
                       device=None, workers: Optional[int] = None) -> Dict[Tuple[str, str], StaticFit]:
    r"""Train critics of several methods "to optimality" against a fixed generator, per toy dataset.

    For every variant and dataset a fresh critic ``make_critic(dataset, width, depth,
    spectral=<method default>)`` minimises its method's critic loss

    .. math::

        L_C = \mathbb E_{y \sim Q} f(y) - \mathbb E_{x \sim P_r} f(x) + \text{penalty}

    for ``steps`` steps of ``wganbook.train.fit_critic`` with :math:`Q` = data + unit Gaussian
    noise (:func:`fixed_generator`), the setting of WGAN-GP Fig. 1a. Every fit uses the same
    seed, so variants see the same minibatches.

    Parameters
    ----------
    variants : dict of str to dict
        Label -> settings: ``"method"`` (required), method hyper-parameters passed to
        ``fit_critic`` (``lr``, ``betas``, ``lam``, ``clip``, ``optimizer``, ...), and
        optionally ``steps`` and ``datasets`` (this variant's own number of steps and toys),
        architecture keys ``width``,
        ``depth``, ``norm``, ``activation``, and
        ``inside_box=True`` (clipping only): shrink every initial parameter tensor into
        :math:`(-c, c)` before training, so that weights reaching :math:`\pm c` are the effect of
        training, not of the first clip.
    datasets : list of str
        Toy dataset names.
    steps : int
        Critic steps per fit.
    batch_size : int, optional
        Minibatch size.
    seed : int, optional
        Seed of the data stream, the critic's initialisation and the penalty points.
    noise : float, optional
        Standard deviation of the fixed generator's noise.
    n_points : int, optional
        Size of the stored evaluation samples ``real`` / ``fake``.
    width, depth : int, optional
        Default critic size for variants that do not set their own.
    record_every : int, optional
        Passed to ``fit_critic`` (default: every ``steps // 20`` steps).
    exact_w1 : bool, optional
        Also record the exact W1 of the minibatches.
    device : str, optional
        Device of the fits (default CPU).
    workers : int, optional
        Worker processes for the fits, which are independent (:func:`map_runs`; ``None``: the
        usable cores, ``1``: one after the other here). The fits are the same either way.

    Returns
    -------
    dict
        ``(label, dataset) -> StaticFit``, in the order variants x datasets.
    """
    from . import data as wdata
    from .objectives import get_method

    if not isinstance(variants, Mapping) or not variants:
        raise TypeError("variants must be a non-empty dict of label -> settings (with a 'method')")
    if isinstance(datasets, str):
        datasets = [datasets]
    for ds in datasets:
        if not wdata.is_toy(ds):
            raise ValueError(f"unknown dataset {ds!r}; dataset must be one of: {', '.join(wdata.TOY_DATASETS)}")
    tasks = []
    for label, settings in variants.items():
        if not isinstance(settings, Mapping) or "method" not in settings:
            raise ValueError(f"variant {label!r} must be a dict with a 'method' key")
        settings = dict(settings)
        method = settings.pop("method")
        m = get_method(method)
        n_steps = settings.pop("steps", steps)
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
            raise ValueError(f"variant {label!r}: steps must be an int >= 1, got {n_steps!r}")
        arch = {k: settings.pop(k) for k in _ARCH_KEYS if k in settings}
        inside = bool(arch.pop("inside_box", False))
        hp = settings
        c = None
        if inside:
            c = hp.get("clip") or m.defaults.get("clip")
            if not c:
                raise ValueError(f"variant {label!r}: inside_box needs a clipping method (clip), got {method!r}")
        own = settings.pop("datasets", None)
        own = datasets if own is None else ([own] if isinstance(own, str) else list(own))
        for ds in own:
            if not wdata.is_toy(ds):
                raise ValueError(f"variant {label!r}: unknown dataset {ds!r}; dataset must be one of: "
                                 f"{', '.join(wdata.TOY_DATASETS)}")
        every = max(1, int(n_steps) // 20) if record_every is None else record_every
        for ds in own:
            tasks.append(_StaticTask(label=label, dataset=ds, method=method, hp=hp, arch=arch, clip_box=c,
                                     spectral=bool(m.defaults.get("spectral", False)), steps=int(n_steps),
                                     batch_size=batch_size, seed=seed, noise=noise, n_points=n_points,
                                     width=width, depth=depth, record_every=every, exact_w1=exact_w1,
                                     device=device))
    done = map_runs(_fit_static, tasks, workers=workers, device=device,
                    describe=lambda t: f"static critic {t.label!r} on {t.dataset}")
    return {(f.label, f.dataset): f for f in done}


@dataclass
class _StaticTask:
    """One fit of :func:`fit_static_critics` (pickled to a worker)."""

    label: str
    dataset: str
    method: str
    hp: dict
    arch: dict
    clip_box: Optional[float]
    spectral: bool
    steps: int
    batch_size: int
    seed: int
    noise: float
    n_points: int
    width: Optional[int]
    depth: Optional[int]
    record_every: int
    exact_w1: bool
    device: Any


def _fit_static(t: _StaticTask) -> StaticFit:
    """Fit one static critic of :func:`fit_static_critics`."""
    from . import data as wdata
    from .models import make_critic
    from .train import fit_critic

    wdata.seed_everything(t.seed)
    arch = t.arch
    critic = make_critic(t.dataset, width=arch.get("width", t.width), depth=arch.get("depth", t.depth),
                         norm=arch.get("norm", "none"), activation=arch.get("activation"),
                         spectral=t.spectral)
    if t.clip_box is not None:
        shrink_into_box_(critic, float(t.clip_box))
    if t.device is not None:
        critic.to(t.device)
    real, fake = fixed_generator(t.dataset, noise=t.noise, seed=t.seed)
    t0 = time.perf_counter()
    hist = fit_critic(t.method, critic, real, fake, steps=t.steps, batch_size=t.batch_size, seed=t.seed,
                      record_every=t.record_every, exact_w1=t.exact_w1, **t.hp)
    wall = time.perf_counter() - t0
    critic.eval()
    ev_real, ev_fake = fixed_generator(t.dataset, noise=t.noise, seed=t.seed + 1)
    return StaticFit(label=t.label, dataset=t.dataset, method=t.method, critic=critic, history=hist,
                     real=ev_real(t.n_points), fake=ev_fake(t.n_points),
                     hparams=dict(t.hp, **arch, inside_box=t.clip_box is not None), wall_time=wall)


# ---------------------------------------------------------------------------------------------
# Samples during training
# ---------------------------------------------------------------------------------------------
class SampleSnapshots:
    r"""An ``eval_fn`` for :class:`wganbook.train.TrainConfig` that keeps samples along training.

    At every generator step in ``at`` it stores :math:`G(z_1), \dots, G(z_n)` for one fixed set of
    latent codes (``wganbook.metrics.generate(generator, n, seed)``), so that snapshots differ only
    through training. Use with ``TrainConfig(eval_every=e, eval_fn=snaps)`` where ``e`` divides
    every entry of ``at`` (e.g. ``snaps.eval_every``).

    Parameters
    ----------
    at : list of int
        Generator steps (>= 1) at which to keep samples.
    n : int, optional
        Samples per snapshot.
    seed : int, optional
        Seed of the fixed latent codes.
    metric : callable, optional
        ``metric(samples) -> float or dict``; its value is returned to the training loop (and so
        recorded in the history) at the snapshot steps.

    Attributes
    ----------
    steps : list of int
        Steps at which samples were kept.
    samples : list of torch.Tensor
        The samples (CPU).
    """

    def __init__(self, at: Sequence[int], n: int = 512, seed: int = 0, metric: Optional[Callable] = None):
        at = sorted(set(int(a) for a in at))
        if not at or at[0] < 1:
            raise ValueError(f"at must be a non-empty list of steps >= 1, got {at!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        self.at = at
        self.n = n
        self.seed = int(seed)
        self.metric = metric
        self.steps: List[int] = []
        self.samples: List[torch.Tensor] = []

    @property
    def eval_every(self) -> int:
        """The largest cadence that hits every step of ``at`` (their greatest common divisor)."""
        return math.gcd(*self.at) if len(self.at) > 1 else self.at[0]

    def __call__(self, generator, step: int):
        """Keep samples if ``step`` is in ``at``; return the metric (or ``{}``)."""
        if int(step) not in self.at:
            return {}
        from .metrics import generate

        x = generate(generator, self.n, seed=self.seed)
        self.steps.append(int(step))
        self.samples.append(x)
        if self.metric is None:
            return {}
        return self.metric(x)


def late_mean(history: Mapping[str, Sequence], key: str, fraction: float = 0.5) -> float:
    r"""Mean of an evaluated metric over the last ``fraction`` of training (:func:`late_values`).

    With the evaluations :math:`v_k` of ``history[key]`` at the generator steps
    :math:`t_k` = ``history["eval_step"]`` and :math:`T = \max_k t_k`, the mean of the
    :math:`v_k` with :math:`t_k \ge (1 - \text{fraction})\,T` (e.g. steps 3 000-6 000 of a 6 000-step
    run for the default 0.5). A GAN trained with a constant learning rate need not settle: its
    generator can keep moving (chapter 5's Dirac-GAN never converges), so a metric of the last
    snapshot alone can fluctuate from one evaluation to the next; this is its level over late
    training.

    Parameters
    ----------
    history : dict
        A training history with ``"eval_step"`` and ``key`` (``TrainConfig(eval_every=...)``).
    key : str
        The evaluated metric, e.g. ``"high_quality"``.
    fraction : float, optional
        Share of training (0 < fraction <= 1) whose evaluations are averaged.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        A bad ``fraction``, no evaluations of ``key``, or evaluations that do not match the steps.
    """
    return float(late_values(history, key, fraction).mean())


def late_values(history: Mapping[str, Sequence], key: str, fraction: float = 0.5) -> np.ndarray:
    r"""The evaluations of ``key`` over the last ``fraction`` of training, in step order.

    Those :math:`v_k` of ``history[key]`` whose step :math:`t_k` (``history["eval_step"]``) is
    :math:`\ge (1 - \text{fraction})\,T`, :math:`T = \max_k t_k`. Arguments and errors as
    :func:`late_mean`.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}")
    steps = np.asarray(history.get("eval_step", []) or [], dtype=float)
    values = np.asarray(history.get(key, []) or [], dtype=float)
    if values.size == 0:
        raise ValueError(f"history has no evaluations of {key!r}; train with eval_every > 0 and "
                         f"a metric that records {key!r}")
    if values.shape != steps.shape:
        raise ValueError(f"history[{key!r}] has {values.size} values but history['eval_step'] "
                         f"{steps.size}")
    start = (1 - fraction) * steps.max()
    return values[steps >= start - 1e-9 * abs(start)]  # (1 - 1/3) * 1800 is 1200.0000000000002


# ---------------------------------------------------------------------------------------------
# Chapter 4: summaries of static critics, method variants, critic overfitting (WGAN-GP Fig. 5b)
# ---------------------------------------------------------------------------------------------
def static_fit_summary(fit: StaticFit, last: int = 5, seed: int = 0) -> Dict[str, float]:
    r"""What a fitted static critic measures: its estimate, slopes and certified bound.

    With :math:`f` the critic of ``fit``, :math:`x_i` / :math:`y_i` its stored real / fake
    evaluation samples and :math:`\hat x_i = \varepsilon_i x_i + (1 - \varepsilon_i) y_i`,
    :math:`\varepsilon_i \sim U[0, 1]` (seeded by ``seed``):

    * ``"estimate"``: the mean of the last ``last`` recorded W1 estimates
      :math:`\bar f(x) - \bar f(y)` of the fit's minibatches;
    * ``"exact batch W1"``: the mean of the last ``last`` exact minibatch W1 (only when recorded);
    * ``"empirical Lipschitz"``: :func:`wganbook.lipschitz.empirical_lipschitz` over all pairs of
      the :math:`2n` points :math:`x \cup y`;
    * ``"median grad norm"``: the median of :math:`\lVert\nabla f(\hat x_i)\rVert`;
    * ``"certified bound"``: :math:`\prod_\ell \sigma(W_\ell)`, an upper bound on the Lipschitz
      constant of a network of 1-Lipschitz activations.

    Parameters
    ----------
    fit : wganbook.sweeps.StaticFit
    last : int, optional
        Number of final records averaged, ``>= 1``.
    seed : int, optional
        Seed of the interpolation weights.

    Returns
    -------
    dict of str to float
    """
    from . import lipschitz

    if not isinstance(fit, StaticFit):
        raise TypeError(f"fit must be a StaticFit (from fit_static_critics), got {type(fit).__name__}")
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise ValueError(f"last must be an int >= 1, got {last!r}")
    pts = lipschitz.sample_penalty_points(fit.real, fit.fake, "real-fake",
                                          generator=torch.Generator().manual_seed(int(seed)))
    out = {"estimate": float(np.mean(fit.history["w1_estimate"][-last:]))}
    if fit.history.get("w1_exact"):
        out["exact batch W1"] = float(np.mean(fit.history["w1_exact"][-last:]))
    out["empirical Lipschitz"] = lipschitz.empirical_lipschitz(fit.critic, torch.cat([fit.real, fit.fake]))
    out["median grad norm"] = float(lipschitz.input_gradient_norms(fit.critic, pts).median())
    out["certified bound"] = float(np.prod(lipschitz.spectral_norms(fit.critic)))
    return out


#: Short names of the methods in tables and figures.
METHOD_LABELS = {"wgan-clip": "clipping", "wgan-gp": "GP", "wgan-lp": "LP", "wgan-sn": "SN",
                 "wgan-div": "div"}


def method_variants(methods: Sequence[str], lr_scale: float = 1.0, lam: Optional[float] = None,
                    labels: Optional[Mapping[str, str]] = None) -> List[dict]:
    r"""Grid entries (for :func:`run_grid`) of several methods at their published learning rates.

    Method :math:`m` gets ``{"name": label, "method": m, "lr": lr_m * lr_scale}`` with
    :math:`lr_m` its published learning rate (``objectives.get_method(m).defaults["lr"]``), and
    ``"lam": lam`` for the gradient penalties (``wgan-gp``, ``wgan-lp``) when ``lam`` is given.

    Parameters
    ----------
    methods : list of str
        Method names.
    lr_scale : float, optional
        Factor on every published learning rate, ``> 0``.
    lam : float, optional
        Penalty weight of the gradient penalties (``None``: their defaults).
    labels : mapping, optional
        Method -> name (default :data:`METHOD_LABELS`, else the method name).

    Returns
    -------
    list of dict
    """
    from .objectives import get_method

    if isinstance(methods, str) or not isinstance(methods, Sequence) or not methods:
        raise TypeError("methods must be a non-empty list of method names")
    if isinstance(lr_scale, bool) or not isinstance(lr_scale, (int, float)) or not lr_scale > 0:
        raise ValueError(f"lr_scale must be a float > 0, got {lr_scale!r}")
    names = dict(METHOD_LABELS, **(labels or {}))
    out = []
    for m in methods:
        entry = {"name": names.get(m, m), "method": m,
                 "lr": float(get_method(m).defaults["lr"]) * float(lr_scale)}
        if lam is not None and m in ("wgan-gp", "wgan-lp"):
            entry["lam"] = float(lam)
        out.append(entry)
    return out


@dataclass
class _HeldoutEstimates:
    """``eval_fn`` of :func:`critic_overfitting`: the critic's estimate on two real sets."""

    critic: Any
    train_set: torch.Tensor
    heldout: torch.Tensor
    n_fake: int
    seed: int

    def __call__(self, generator, step: int) -> Dict[str, float]:
        from .metrics import generate

        fake = generate(generator, self.n_fake, seed=self.seed)
        was = self.critic.training
        self.critic.eval()
        try:
            with torch.no_grad():
                dev = next(self.critic.parameters()).device
                f_fake = float(self.critic(fake.to(dev)).mean())
                f_train = float(self.critic(self.train_set.to(dev)).mean())
                f_held = float(self.critic(self.heldout.to(dev)).mean())
        finally:
            self.critic.train(was)
        return {"estimate_train": f_train - f_fake, "estimate_heldout": f_held - f_fake}


def critic_overfitting(config: Mapping[str, Any], train_set: torch.Tensor, heldout: torch.Tensor,
                       eval_every: int, n_fake: int = 500):
    r"""Train a GAN on a small training set and follow its critic on held-out data (WGAN-GP Fig. 5b).

    Every ``eval_every`` generator steps the critic :math:`f` is scored on the whole training
    set :math:`T`, on real samples :math:`H` it never saw, and on ``n_fake`` generated samples
    :math:`\tilde X` (fixed noise):

    .. math::

        \hat W_T = \bar f(T) - \bar f(\tilde X), \qquad \hat W_H = \bar f(H) - \bar f(\tilde X).

    A critic that generalises scores both real sets alike (:math:`\hat W_T \approx \hat W_H`);
    one that memorises the training set scores it higher, so the gap
    :math:`\hat W_T - \hat W_H` grows (WGAN-GP Fig. 5b shows it on 1000 MNIST digits).

    Parameters
    ----------
    config : dict
        ``TrainConfig`` keyword arguments (``method``, ``data``, ``steps``, ``seed``, ...);
        must not set ``eval_every`` or ``eval_fn``.
    train_set : torch.Tensor
        The real data the GAN trains on.
    heldout : torch.Tensor
        Real samples of the same distribution, not in ``train_set``.
    eval_every : int
        Generator steps between evaluations.
    n_fake : int, optional
        Generated samples per evaluation.

    Returns
    -------
    wganbook.train.TrainResult
        Its ``history`` has ``"eval_step"``, ``"estimate_train"`` and ``"estimate_heldout"``.
    """
    from . import data as wdata
    from . import models
    from .objectives import get_method
    from .train import TrainConfig, train

    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict of TrainConfig arguments, got {type(config).__name__}")
    for key in ("eval_every", "eval_fn"):
        if key in config:
            raise ValueError(f"config must not set {key!r}; critic_overfitting sets it")
    for name, t in (("train_set", train_set), ("heldout", heldout)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.shape[0] < 1:
            raise TypeError(f"{name} must be a non-empty floating-point torch.Tensor")
    if train_set.shape[1:] != heldout.shape[1:]:
        raise ValueError(f"train_set and heldout must have the same sample shape, got "
                         f"{tuple(train_set.shape[1:])} and {tuple(heldout.shape[1:])}")
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be an int >= 1, got {eval_every!r}")
    if isinstance(n_fake, bool) or not isinstance(n_fake, int) or n_fake < 1:
        raise ValueError(f"n_fake must be an int >= 1, got {n_fake!r}")
    probe = TrainConfig(**config)  # validates the configuration before any work
    spectral = bool(get_method(probe.method).defaults.get("spectral", False))
    wdata.seed_everything(probe.seed)
    generator = models.make_generator(probe.data, z_dim=probe.z_dim, width=probe.width, depth=probe.depth)
    critic = models.make_critic(probe.data, width=probe.width, depth=probe.depth, norm=probe.norm,
                                spectral=spectral)
    ev = _HeldoutEstimates(critic, train_set.detach(), heldout.detach(), n_fake, probe.seed + 1)
    cfg = TrainConfig(**dict(config), eval_every=eval_every, eval_fn=ev)
    return train(cfg, data=train_set, generator=generator, critic=critic)

r"""Chapter 3's experiments on weight clipping: converged clipped critics, loss against sample quality,
and the generator's best response to a frozen critic.

* :func:`clip_settings` -- the chapter's clipping bound, learning rate and :math:`n_\text{critic}`
  (WGAN's Algorithm 1 defaults where a parameter is ``None``);
* :func:`clipped_critic_summary` -- what a static clipped critic (``wganbook.lab.critics.StaticFit``)
  measures: its estimate against the exact batch :math:`W_1`, its slope, the certified bound, the
  share of the slope-:math:`\hat K` optimum it reaches, its ray alignment and how much its
  estimate/:math:`W_1` still moves (:func:`wganbook.train.history.plateau_change`);
* :func:`trailing_mean_at_evals`, :func:`loss_quality_curves` and :func:`plot_loss_vs_quality` --
  WGAN's Figures 3 and 4: each run's own loss (the critic's :math:`W_1` estimate for a WGAN, the
  discriminator's JS estimate for a GAN) next to the :math:`W_1` of its samples to the target;
* :func:`best_response_experiment` and :func:`best_response_summary` -- from a trained run, the
  generator's best response to its **frozen** critic (``wganbook.train.best_response``) against the
  same number of steps of the usual algorithm with the critic **retrained**.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import torch

from wganbook import lipschitz, metrics
from wganbook._util import Float, Int, check_value
from wganbook.lab.sweeps import final_metrics, map_runs
from wganbook.models import sample_noise
from wganbook.objectives import generator_loss, get_method, js_estimate, resolve_hparams
from wganbook.train.config import TrainConfig
from wganbook.train.critic import best_response
from wganbook.train.history import estimate_vs_exact, plateau_change
from wganbook.train.loop import train

__all__ = [
    "clip_settings",
    "STATIC_COLUMNS",
    "clipped_critic_summary",
    "trailing_mean_at_evals",
    "loss_quality_curves",
    "plot_loss_vs_quality",
    "BEST_RESPONSE_ARMS",
    "best_response_rmsprop",
    "best_response_experiment",
    "best_response_summary",
    "OPTIMIZER_ARMS",
    "optimizer_comparison",
    "optimizer_summary",
]


def clip_settings(params: Mapping[str, Any]) -> Dict[str, Any]:
    r"""The clipping bound :math:`c`, the learning rate and :math:`n_\text{critic}` of a chapter-3 run.

    ``params["clip"]``, ``params["lr"]`` and ``params["n_critic"]``, each replaced by the default of
    the ``wgan-clip`` method when ``None``: WGAN's Algorithm 1, :math:`c = 0.01`, RMSProp
    :math:`5 \cdot 10^{-5}`, :math:`n_\text{critic} = 5` (Arjovsky et al. 2017).

    Returns
    -------
    dict
        ``{"clip": float, "lr": float, "n_critic": int}``.
    """
    hp = resolve_hparams("wgan-clip", **{k: params.get(k) for k in ("clip", "lr", "n_critic")})
    return {"clip": float(hp["clip"]), "lr": float(hp["lr"]), "n_critic": int(hp["n_critic"])}


#: The columns of chapter 3's table of static clipped critics, in order.
STATIC_COLUMNS = (
    "critic estimate",
    "exact batch W1",
    "estimate / W1",
    "slope K^",
    "bound prod |W|_2",
    "estimate / (K^ W1)",
    "ray alignment",
)


def clipped_critic_summary(fit, last: int = 5, parts: int = 5) -> Dict[str, float]:
    r"""What a clipped critic fitted to a fixed pair of distributions measures.

    With :math:`f` the critic, :math:`\hat W` and :math:`W_1` its recorded estimates
    :math:`\bar f(x) - \bar f(y)` and the exact :math:`W_1` of the same minibatches:

    * ``"critic estimate"``, ``"exact batch W1"``: the means of the last ``last`` records, and
      ``"estimate / W1"`` their ratio;
    * ``"slope K^"``: :math:`\hat K = \max_{ij} |f(x_i) - f(y_j)| / \lVert x_i - y_j \rVert` over the
      fit's real and fake evaluation points (:func:`wganbook.lipschitz.empirical_lipschitz`), a lower
      bound on the Lipschitz constant :math:`K`;
    * ``"bound prod |W|_2"``: :math:`\prod_\ell \lVert W_\ell \rVert_2 \ge K`;
    * ``"estimate / (K^ W1)"``: the share of the slope-:math:`\hat K` optimum :math:`\hat K W_1`
      reached (:math:`\hat W \le K W_1` by the Kantorovich-Rubinstein duality);
    * ``"ray alignment"``: :func:`wganbook.lipschitz.transport_alignment` (1 for an optimal potential);
    * ``"plateau change"``: :func:`wganbook.train.history.plateau_change` of the per-record ratio
      :math:`\hat W / W_1` with ``parts`` parts (the last two fifths by default).

    Parameters
    ----------
    fit : wganbook.lab.critics.StaticFit
        Fitted with ``exact_w1=True``.
    last : int, optional
        Records averaged for the estimate and the exact W1.
    parts : int, optional
        Parts of the plateau statistic.

    Returns
    -------
    dict of str to float
        The keys of :data:`STATIC_COLUMNS` and ``"plateau change"``.
    """
    last = check_value("last", last, Int(lo=1))
    est = np.asarray(fit.history.get("w1_estimate", []) or [], dtype=np.float64)
    exact = np.asarray(fit.history.get("w1_exact", []) or [], dtype=np.float64)
    if exact.size == 0 or exact.size != est.size:
        raise ValueError(
            f"fit.history must hold as many 'w1_estimate' as 'w1_exact' records (fit with "
            f"exact_w1=True); got {est.size} and {exact.size}"
        )
    w_est, w_ex = float(est[-last:].mean()), float(exact[-last:].mean())
    slope = lipschitz.empirical_lipschitz(fit.critic, fit.real, fit.fake)
    return {
        "critic estimate": w_est,
        "exact batch W1": w_ex,
        "estimate / W1": w_est / w_ex,
        "slope K^": slope,
        "bound prod |W|_2": float(np.prod(lipschitz.spectral_norms(fit.critic))),
        "estimate / (K^ W1)": w_est / w_ex / slope,
        "ray alignment": lipschitz.transport_alignment(fit.critic, fit.real, fit.fake),
        "plateau change": plateau_change(est / exact, parts=parts),
    }


def trailing_mean_at_evals(history: Mapping[str, Sequence], values: Sequence[float], window: int) -> np.ndarray:
    r"""A per-step curve averaged over the last ``window`` steps, read at the evaluation steps.

    ``values[i]`` belongs to ``history["step"][i]``; at each step :math:`t` of
    ``history["eval_step"]`` (which must be among the steps) the result is the mean of the values at
    :math:`t` and the ``window - 1`` records before it (fewer at the start of training).

    Returns
    -------
    numpy.ndarray
        One mean per evaluation step.
    """
    window = check_value("window", window, Int(lo=1))
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    steps = np.asarray(history["step"])
    if v.size != steps.size:
        raise ValueError(f"values must hold one value per history['step'] ({steps.size}); got {v.size}")
    evals = np.asarray(history["eval_step"])
    idx = np.searchsorted(steps, evals)
    if (idx >= steps.size).any() or not np.array_equal(steps[idx], evals):
        raise ValueError("every history['eval_step'] must be one of history['step']")
    sums = np.convolve(v, np.ones(window))[: v.size]
    return (sums / np.minimum(np.arange(1, v.size + 1), window))[idx]


def _is_gan(method: str) -> bool:
    return get_method(method).name.startswith("gan-")


def loss_quality_curves(
    runs: Sequence[Mapping[str, Any]], labels: Sequence[str], window: int, quality: str = "w1_target"
) -> List[dict]:
    r"""Each run's own loss next to its sample quality, at the evaluation steps (WGAN Figs. 3-4).

    The loss is the critic's :math:`W_1` estimate :math:`\hat W` for a WGAN method and the
    discriminator's Jensen-Shannon estimate :math:`\log 2 - L_D / 2`
    (:func:`wganbook.objectives.js_estimate`) for a GAN method (``gan-ns``, ``gan-mm``), each a
    :func:`trailing_mean_at_evals` over ``window`` steps; the quality is the history's ``quality``
    column (the :math:`W_1` of the samples to the target: lower is better).

    Parameters
    ----------
    runs : list of dict
        Records of :func:`wganbook.lab.sweeps.run_grid` (``"config"``, ``"seed"``, ``"history"``).
    labels : list of str
        One name per record (e.g. ``"clipped WGAN"``, ``"GAN"``).
    window : int
        Steps per trailing mean.
    quality : str, optional
        The evaluated metric.

    Returns
    -------
    list of dict
        ``{"name", "seed", "steps", "loss", "quality"}`` per run, the last three arrays.
    """
    if len(labels) != len(runs):
        raise ValueError(f"labels must name every run: {len(labels)} labels for {len(runs)} runs")
    curves = []
    for r, name in zip(runs, labels):
        h = r["history"]
        loss = js_estimate(h["critic_loss"]) if _is_gan(r["config"]["method"]) else h["w1_estimate"]
        curves.append(
            {
                "name": name,
                "seed": r["seed"],
                "steps": np.asarray(h["eval_step"]),
                "loss": trailing_mean_at_evals(h, loss, window),
                "quality": np.asarray(h[quality], dtype=np.float64),
            }
        )
    return curves


def plot_loss_vs_quality(
    axes, curves: Sequence[Mapping[str, Any]], wgan: str = "clipped WGAN", gan: str = "GAN"
) -> None:
    r"""WGAN's Figures 3 and 4 side by side: each method's loss (top row) and the :math:`W_1` of its
    samples to the target (bottom row), one line per seed; the WGAN (``wgan``) on the left, the GAN
    (``gan``, with the JS maximum :math:`\log 2` marked) on the right. ``axes`` is a 2x2 array."""
    for cv in curves:
        col = 0 if cv["name"] == wgan else 1
        axes[0, col].plot(cv["steps"], cv["loss"], label=f"seed {cv['seed']}")
        axes[1, col].plot(cv["steps"], cv["quality"], label=f"seed {cv['seed']}")
    axes[0, 1].axhline(np.log(2), color="k", ls=":", label="log 2")
    axes[0, 0].set_ylabel("critic estimate $\\hat W$")
    axes[0, 1].set_ylabel("JS estimate $\\log 2 - L_D/2$")
    axes[0, 0].set_title(f"{wgan}: its loss")
    axes[0, 1].set_title(f"{gan}: its loss")
    for ax in axes[1]:
        ax.set_xlabel("generator step")
        ax.set_ylabel("$W_1$ to the target (quality)")
    for ax in axes.flat:
        ax.legend()


#: The states of the best-response experiment, in order (the last only where asked for).
BEST_RESPONSE_ARMS = ("start", "frozen critic", "critic retrained", "frozen critic, RMSProp")


def best_response_rmsprop(
    method: str, critic, generator, steps: int, lr: float = 1e-3, batch_size: int = 256, seed: int = 0
) -> None:
    r"""The generator's best response to a frozen critic, with RMSProp instead of Adam.

    The control of :func:`wganbook.train.critic.best_response`: the same loop (latent codes seeded
    by ``seed``, ``steps`` steps on the method's generator loss, e.g. :math:`-\frac1n\sum_j f(G(z_j))`
    for a WGAN, the critic's parameters fixed) with ``torch.optim.RMSprop(lr, alpha=0.99)``, the
    optimiser of WGAN's Algorithm 1, which has no momentum. Against a constant gradient :math:`g`
    RMSProp's :math:`t`-th step has length :math:`\alpha_\text{lr} / \sqrt{1 - 0.99^t}` per
    coordinate (no bias correction), so it starts ten times faster than Adam and settles at Adam's pace.

    Parameters
    ----------
    method : str
        A key of ``wganbook.objectives.METHODS`` whose generator loss needs only the fakes.
    critic : torch.nn.Module
        The frozen critic (its parameters are not updated; ``requires_grad`` flags are restored).
    generator : torch.nn.Module
        Trained in place.
    steps : int
        Generator steps (>= 1).
    lr : float, optional
        RMSProp learning rate (> 0).
    batch_size : int, optional
        Latent codes per step.
    seed : int, optional
        Seed of the latent codes.
    """
    m = get_method(method)
    if m.name == "wgan-ct":
        raise ValueError("method must be one whose generator loss needs only the fakes; got 'wgan-ct'")
    steps = check_value("steps", steps, Int(lo=1))
    batch_size = check_value("batch_size", batch_size, Int(lo=1))
    lr = check_value("lr", lr, Float(lo=0.0, lo_open=True))
    params = list(generator.parameters())
    device = params[0].device if params else torch.device("cpu")
    rng = torch.Generator(device=device)
    rng.manual_seed(int(seed))
    opt = torch.optim.RMSprop(params, lr=lr, alpha=0.99)
    flags = [p.requires_grad for p in critic.parameters()]
    try:
        for p in critic.parameters():
            p.requires_grad_(False)
        for _ in range(steps):
            fake = generator(sample_noise(generator, batch_size, rng, device))
            loss = generator_loss(m.name, critic, None, fake)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    finally:
        for p, f in zip(critic.parameters(), flags):
            p.requires_grad_(f)


def best_response_experiment(
    runs: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    steps: int,
    dataset: str,
    retrain: Iterable[str] = (),
    rmsprop: Iterable[str] = (),
    n: int = 1024,
    radius: float = 0.1,
    n_w1: int = 512,
    checkpoint_root: Optional[str] = None,
) -> List[dict]:
    r"""From each trained run, the generator's best response to its frozen critic, and (for the
    runs named in ``retrain``) the same number of steps of the usual algorithm with the critic retrained.

    For a run with seed :math:`s` (its ``"result"``, a ``TrainResult``, is not modified):

    * ``"start"``: the trained generator;
    * ``"frozen critic"``: a copy trained ``steps`` steps against a copy of the frozen critic by
      :func:`~wganbook.train.critic.best_response` (the run's method, latent codes seeded by :math:`s`): for a
      WGAN it minimises :math:`-\mathbb E f(G(z))`, whose optimum for a fixed :math:`f` puts all the
      mass where :math:`f` is largest;
    * ``"critic retrained"`` (labels in ``retrain`` only): copies of both trained ``steps`` more
      generator steps by :func:`~wganbook.train.loop.train` with the run's configuration (seed
      :math:`s + 1000`, no evaluations), the critic retrained :math:`n_\text{critic}` steps before
      each generator step;
    * ``"frozen critic, RMSProp"`` (labels in ``rmsprop`` only): the best response of the first
      bullet with RMSProp at the same learning rate (:func:`best_response_rmsprop`), the control
      that the result does not depend on Adam's momentum.

    Each state's ``n`` samples (``metrics.generate``, seed :math:`s + 1`: the same latent codes in
    every state) are scored by their concentration (:func:`wganbook.metrics.concentration` within
    ``radius``: 1 for a delta) and by their exact :math:`W_1` to the target
    (:func:`wganbook.metrics.w1_to_target`, ``n_w1`` points, seed :math:`s + 2`).

    Parameters
    ----------
    runs : list of dict
        Records of :func:`wganbook.lab.sweeps.run_grid` with ``keep_results=True``.
    labels : list of str
        One name per record (e.g. ``"clipped WGAN"``).
    steps : int
        Generator steps of both arms.
    dataset : str
        The 2-D toy the runs were trained on.
    retrain : iterable of str, optional
        The labels whose runs also get the retrained arm.
    rmsprop : iterable of str, optional
        The labels whose runs also get the RMSProp best response.
    n, n_w1 : int, optional
        Samples per state; points of the W1 to the target.
    radius : float, optional
        Radius of the concentration.
    checkpoint_root : str, optional
        Passed to :func:`~wganbook.train.loop.train` for the retrained arm (``None``: no checkpoints).

    Returns
    -------
    list of dict
        Per run: ``"method"`` (the label), ``"seed"``, and ``"samples"``, ``"concentration"``,
        ``"w1_to_target"``, each a dict keyed by the states of :data:`BEST_RESPONSE_ARMS` it has.
    """
    steps, n, n_w1 = (check_value(k, v, Int(lo=1)) for k, v in (("steps", steps), ("n", n), ("n_w1", n_w1)))
    if n_w1 > n:
        raise ValueError(f"n_w1 must be <= n (the W1 to the target uses n_w1 of the n samples); got {n_w1} > {n}")
    retrain, rmsprop = set(retrain), set(rmsprop)
    if len(labels) != len(runs):
        raise ValueError(f"labels must name every run: {len(labels)} labels for {len(runs)} runs")
    for arg, names in (("retrain", retrain), ("rmsprop", rmsprop)):
        unknown = names - set(labels)
        if unknown:
            raise ValueError(f"{arg} names {sorted(unknown)} that label no run; labels are: {sorted(set(labels))}")
    if any(r.get("result") is None for r in runs):
        raise ValueError("every run needs its 'result' (run_grid(..., keep_results=True))")
    rows = []
    for r, label in zip(runs, labels):
        res, s = r["result"], int(r["seed"])
        samples = {"start": metrics.generate(res.generator, n, seed=s + 1)}
        gen, critic = copy.deepcopy(res.generator), copy.deepcopy(res.critic)
        best_response(res.config.method, critic, gen, steps=steps, seed=s)
        samples["frozen critic"] = metrics.generate(gen, n, seed=s + 1)
        if label in retrain:
            config = dataclasses.replace(res.config, steps=steps, seed=s + 1000, eval_every=0)
            cont = train(
                config,
                generator=copy.deepcopy(res.generator),
                critic=copy.deepcopy(res.critic),
                checkpoint_root=checkpoint_root,
            )
            samples["critic retrained"] = metrics.generate(cont.generator, n, seed=s + 1)
        if label in rmsprop:
            gen = copy.deepcopy(res.generator)
            best_response_rmsprop(res.config.method, copy.deepcopy(res.critic), gen, steps=steps, seed=s)
            samples["frozen critic, RMSProp"] = metrics.generate(gen, n, seed=s + 1)
        rows.append(
            {
                "method": label,
                "seed": s,
                "samples": samples,
                "concentration": {k: metrics.concentration(x, radius) for k, x in samples.items()},
                "w1_to_target": {k: metrics.w1_to_target(x, dataset, n=n_w1, seed=s + 2) for k, x in samples.items()},
            }
        )
    return rows


def best_response_summary(rows: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    r"""The table and the ratios chapter 3 reports from :func:`best_response_experiment`.

    Returns
    -------
    dict
        ``"table"``: one row per run (its W1 to the target in each state, ``"—"`` where the state is
        missing; the concentration and the median distance from the origin of the frozen-critic
        samples); ``"grow"``: label -> ``{"<label> seed <s>": W1(frozen) / W1(start)}``; ``"keep"``:
        label -> ``{"seed <s>": W1(retrained) / W1(start)}`` (labels with a retrained arm);
        ``"grow_rmsprop"``: label -> ``{"<label> seed <s>": W1(frozen, RMSProp) / W1(start)}`` (labels
        with an RMSProp arm; the table then has a column ``"frozen critic, RMSProp"``);
        ``"concentration"``: the frozen-critic concentrations and ``"median_norm"``: the frozen-critic
        median :math:`\lVert x \rVert`, both lists in row order.
    """
    table, grow, keep, grow_rms, conc, far = [], {}, {}, {}, [], []
    with_rms = any("frozen critic, RMSProp" in row["w1_to_target"] for row in rows)
    for row in rows:
        m, s, w1 = row["method"], row["seed"], row["w1_to_target"]
        median_norm = float(row["samples"]["frozen critic"].norm(dim=1).median())
        table.append(
            {
                "method": m,
                "seed": s,
                "W1 to target, start": w1["start"],
                "frozen critic": w1["frozen critic"],
                "critic retrained": w1.get("critic retrained", "—"),
                **({"frozen critic, RMSProp": w1.get("frozen critic, RMSProp", "—")} if with_rms else {}),
                "conc., frozen critic": row["concentration"]["frozen critic"],
                "median |x|, frozen": median_norm,
            }
        )
        grow.setdefault(m, {})[f"{m} seed {s}"] = w1["frozen critic"] / w1["start"]
        if "critic retrained" in w1:
            keep.setdefault(m, {})[f"seed {s}"] = w1["critic retrained"] / w1["start"]
        if "frozen critic, RMSProp" in w1:
            grow_rms.setdefault(m, {})[f"{m} seed {s}"] = w1["frozen critic, RMSProp"] / w1["start"]
        conc.append(row["concentration"]["frozen critic"])
        far.append(median_norm)
    return {
        "table": table,
        "grow": grow,
        "keep": keep,
        "grow_rmsprop": grow_rms,
        "concentration": conc,
        "median_norm": far,
    }


# ------------------------------------------------------------------ RMSProp against Adam
#: The critic optimisers compared under clipping in WGAN's Section 3, RMSProp as published and Adam with
#: the betas of the official code's ``--adam`` option, (0.5, 0.999); everything else is shared.
OPTIMIZER_ARMS: Dict[str, Dict[str, Any]] = {
    "RMSProp": {"optimizer": "rmsprop"},
    "Adam": {"optimizer": "adam", "betas": (0.5, 0.999)},
}


def _optimizer_run(item) -> Dict[str, Any]:
    cfg, checkpoint_root, n_eval = item
    run = train(cfg, checkpoint_root=checkpoint_root)
    steps, _, exact = estimate_vs_exact(run.history)
    return {"final": final_metrics(run, n=n_eval), "w1_step": steps, "w1_exact": exact}


def optimizer_comparison(
    config: TrainConfig,
    seeds: Sequence[int],
    arms: Optional[Mapping[str, Mapping[str, Any]]] = None,
    checkpoint_root=None,
    n_eval: int = 1024,
    workers: Optional[int] = None,
) -> Dict[str, Dict[int, Dict[str, Any]]]:
    r"""The same clipped WGAN trained with each critic optimiser, seed by seed.

    Every run is ``config`` with its ``seed`` replaced and the arm's overrides applied (by default
    ``OPTIMIZER_ARMS``: RMSProp, and Adam with betas (0.5, 0.999)), with no evaluation callback;
    learning rate, steps, :math:`n_\text{critic}`, clipping bound, networks and batches are
    shared, so the arms of one seed start from the same weights and see the same data. The runs go
    through :func:`wganbook.lab.sweeps.map_runs` (workers or a Dask cluster).

    Parameters
    ----------
    config : TrainConfig
        The clipped WGAN's configuration (``method="wgan-clip"``; needs ``w1_every`` > 0 for the curves).
    seeds : sequence of int
    arms : mapping, optional
        Arm name -> overrides of ``optimizer`` and ``betas``.
    checkpoint_root : path, optional
        Passed to ``wganbook.train.train``.
    n_eval : int, optional
        Samples of the final evaluation (:func:`wganbook.lab.sweeps.final_metrics`).
    workers : int, optional
        Worker processes (default: ``$WGANBOOK_WORKERS`` or the usable cores).

    Returns
    -------
    dict
        ``arm -> seed -> {"final": final_metrics(...), "w1_step", "w1_exact"}`` (the exact batch
        :math:`W_1` between real and generated batches along training).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig; got {type(config).__name__}")
    if config.method != "wgan-clip":
        raise ValueError(f"config.method must be 'wgan-clip'; got {config.method!r}")
    if not config.w1_every:
        raise ValueError("config.w1_every must be > 0: the comparison records the exact batch W1")
    arms = dict(OPTIMIZER_ARMS if arms is None else arms)
    if not arms:
        raise ValueError("arms must name at least one optimiser arm")
    for name, over in arms.items():
        bad = sorted(set(over) - {"optimizer", "betas"})
        if bad:
            raise ValueError(f"arm {name!r}: unknown override(s) {', '.join(bad)}; allowed: optimizer, betas")
    seeds = [check_value("seeds", s, Int(lo=0)) for s in seeds]
    if not seeds:
        raise ValueError("seeds must be a non-empty list of ints >= 0")
    n_eval = check_value("n_eval", n_eval, Int(lo=1))
    items, keys = [], []
    for name, over in arms.items():
        for s in seeds:
            cfg = dataclasses.replace(config, seed=s, eval_fn=None, eval_every=0, **dict(over))
            items.append((cfg, checkpoint_root, n_eval))
            keys.append((name, s))
    results = map_runs(_optimizer_run, items, workers, describe=lambda it: f"{it[0].optimizer} seed {it[0].seed}")
    out: Dict[str, Dict[int, Dict[str, Any]]] = {name: {} for name in arms}
    for (name, s), r in zip(keys, results):
        out[name][s] = r
    return out


def optimizer_summary(comparison: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    r"""Per arm of :func:`optimizer_comparison`: the final :math:`W_1` to the target and how much the
    exact batch :math:`W_1` still moves at the end.

    Returns
    -------
    dict
        ``arm -> {"w1_target": per-seed list, "mean_w1": their mean, "modes": per-seed list,
        "late_change": relative change of the seed-averaged exact batch W1 curve between the last two
        quarters of training (:func:`wganbook.train.history.plateau_change` with 4 parts)}``.
    """
    out: Dict[str, Dict[str, Any]] = {}
    for name, runs in comparison.items():
        if not runs:
            raise ValueError(f"arm {name!r} has no runs")
        w1 = [float(r["final"]["w1_target"]) for r in runs.values()]
        curves = [np.asarray(r["w1_exact"], dtype=float) for r in runs.values()]
        if len({c.size for c in curves}) != 1:
            raise ValueError(f"arm {name!r}: the runs' curves have different lengths")
        out[name] = {
            "w1_target": w1,
            "mean_w1": float(np.mean(w1)),
            "modes": [r["final"].get("modes") for r in runs.values()],
            "late_change": plateau_change(np.mean(curves, axis=0), parts=4),
        }
    return out

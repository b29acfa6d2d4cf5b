"""Chapter 5's experiments: WGAN-GP and WGAN-div with each sampling strategy, their summaries and the published tables."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
from torch import nn

from wganbook import lipschitz, models, objectives
from wganbook.data import image_shape, seed_everything
from wganbook.divergence import GaussianMixture1D
from wganbook.lab.sweeps import _lookup, summarize
from wganbook.models import MLP, Generator, MLPCritic
from wganbook.train.config import TrainConfig
from wganbook.train.loop import train

__all__ = [
    "Negated",
    "linear_critic",
    "critic_objective",
    "MLPImageGenerator",
    "ARCHITECTURES",
    "make_models",
    "make_train_fn",
    "fit_critic_1d",
    "objective_over_steps",
    "strategy_sensitivity",
    "sensitivity_summary",
    "select_records",
    "kp_summary",
    "POST_FID",
    "PAPER_FID",
    "PAPER_FID_DATASETS",
    "plot_strategy_ablation",
    "critic_gap_ratio",
]


# ---------------------------------------------------------------------------------------------
# Small critic helpers
# ---------------------------------------------------------------------------------------------
class Negated(nn.Module):
    r"""The critic :math:`x \mapsto -f(x)` (shares ``f``'s parameters)."""

    def __init__(self, critic: nn.Module):
        super().__init__()
        self.critic = critic

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``-critic(x)``."""
        return -self.critic(x)


class _Linear(nn.Module):
    def __init__(self, w: torch.Tensor, b: float):
        super().__init__()
        self.w = nn.Parameter(w.detach().clone().reshape(-1))
        self.b = nn.Parameter(torch.tensor(float(b), dtype=self.w.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1) @ self.w + self.b


def linear_critic(w: torch.Tensor, b: float = 0.0) -> nn.Module:
    r"""The affine critic :math:`f(x) = w^\top \mathrm{vec}(x) + b` (input flattened per sample).

    Its input gradient is :math:`w` at every point, so any penalty evaluated on it is a function of
    :math:`\|w\|` alone, whatever the sampling strategy: :math:`k\|w\|^p` for WGAN-div and
    :math:`\lambda(\|w\| - 1)^2` for WGAN-GP.
    """
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"w must be a torch.Tensor; got {type(w).__name__}")
    return _Linear(w, b)


def critic_objective(
    method: str,
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: Optional[torch.Generator] = None,
    **hp,
) -> dict:
    r"""Evaluate a critic's objective on fixed batches (no training).

    Returns ``{"objective", "gap", "penalty", "grad_norm"}`` as floats, where
    :math:`\text{gap} = \bar f(\text{real}) - \bar f(\text{fake})`,
    :math:`\text{objective} = \text{gap} - \text{penalty}` (the negated critic loss of
    ``wganbook.objectives``) and ``grad_norm`` is the mean input-gradient norm over
    ``real`` and ``fake``.

    Parameters
    ----------
    method : str
        A method of ``wganbook.objectives.METHODS`` (e.g. ``"wgan-div"``, ``"wgan-gp"``).
    critic : nn.Module
        The critic.
    real, fake : torch.Tensor
        Evaluation batches.
    generator : torch.Generator, optional
        Randomness of the penalty's sampling strategy.
    **hp
        Method hyper-parameters (``k``, ``p``, ``strategy``, ``lam``, ...).
    """

    loss, stats = objectives.critic_loss(method, critic, real, fake, generator=generator, **hp)
    gap = float(stats["w1_estimate"])
    pen = float(stats["penalty"])
    norms = torch.cat([lipschitz.input_gradient_norms(critic, real), lipschitz.input_gradient_norms(critic, fake)])
    return {"objective": float(-loss.detach()), "gap": gap, "penalty": pen, "grad_norm": float(norms.mean())}


# ---------------------------------------------------------------------------------------------
# Small fully connected image models (the quick ablation) and a run_grid training function
# ---------------------------------------------------------------------------------------------
class MLPImageGenerator(nn.Module):
    r"""MLP generator for small images: :math:`x = \tanh(\mathrm{MLP}(z))` reshaped to ``(C, H, W)``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of the images.
    z_dim, width, depth : int
        Latent dimension, hidden units per layer and number of hidden layers (ReLU).
    """

    def __init__(self, image_shape: Tuple[int, int, int], z_dim: int = 32, width: int = 256, depth: int = 2):
        super().__init__()

        self.image_shape = tuple(int(v) for v in image_shape)
        self.z_dim = int(z_dim)
        self.net = MLP(self.z_dim, int(np.prod(self.image_shape)), width=width, depth=depth)

    def sample_z(self, n: int, generator: Optional[torch.Generator] = None, device=None) -> torch.Tensor:
        r"""Latent codes :math:`z \sim \mathcal N(0, I)` of shape ``(n, z_dim)``."""

        return Generator.sample_z(self, n, generator=generator, device=device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images in :math:`[-1, 1]` of shape ``(n, C, H, W)``."""
        return torch.tanh(self.net(z)).reshape((z.shape[0],) + self.image_shape)


#: Architectures of :func:`make_models`: ``"conv"`` = the package's DCGAN-style nets,
#: ``"mlp"`` = :class:`MLPImageGenerator` and ``wganbook.models.MLPCritic`` on flattened images.
ARCHITECTURES = ("conv", "mlp")


def make_models(
    dataset: str,
    arch: str = "conv",
    width: Optional[int] = None,
    depth: Optional[int] = None,
    z_dim: Optional[int] = None,
):
    """Build ``(generator, critic)`` for an image dataset.

    ``arch="conv"`` calls ``wganbook.models.make_generator`` / ``make_critic`` (``None`` sizes =
    their defaults); ``arch="mlp"`` builds fully connected nets with ``depth`` hidden ReLU layers of
    ``width`` units (defaults 256, 2, ``z_dim`` 32), several times faster on a CPU for 8x8 digits.
    Parameters are drawn from the global torch RNG (seed it first).
    """

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown arch {arch!r}; arch must be one of: {', '.join(ARCHITECTURES)}")
    if arch == "conv":
        return (
            models.make_generator(dataset, z_dim=z_dim, width=width, depth=depth),
            models.make_critic(dataset, width=width, depth=depth),
        )
    shape = image_shape(dataset)
    width = 256 if width is None else width
    depth = 2 if depth is None else depth
    z_dim = 32 if z_dim is None else z_dim
    return (
        MLPImageGenerator(shape, z_dim=z_dim, width=width, depth=depth),
        models.MLPCritic(int(np.prod(shape)), width=width, depth=depth),
    )


def make_train_fn(
    arch: str = "conv", width: Optional[int] = None, depth: Optional[int] = None, z_dim: Optional[int] = None
):
    """A ``train_fn`` for ``wganbook.lab.sweeps.run_grid`` that trains :func:`make_models` nets.

    ``train_fn(config_kwargs, data=None, **kwargs)`` seeds everything with
    ``config_kwargs["seed"]``, builds the models, and returns ``train(TrainConfig(**config_kwargs),
    data=data, generator=G, critic=C, **kwargs)`` (e.g. ``resume=True``); runs are deterministic on
    a CPU.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown arch {arch!r}; arch must be one of: {', '.join(ARCHITECTURES)}")

    def train_fn(config_kwargs: dict, data=None, **kwargs):

        cfg = TrainConfig(**config_kwargs)
        seed_everything(cfg.seed)
        gen, critic = make_models(cfg.data, arch, width=width, depth=depth, z_dim=z_dim)
        return train(cfg, data=data, generator=gen, critic=critic, **kwargs)

    return train_fn


# ---------------------------------------------------------------------------------------------
# Experiments of chapter 5
# ---------------------------------------------------------------------------------------------
def fit_critic_1d(
    method: str,
    real: GaussianMixture1D,
    fake: GaussianMixture1D,
    steps: int = 600,
    batch_size: int = 256,
    width: int = 32,
    depth: int = 2,
    lr: float = 2e-3,
    betas=(0.5, 0.9),
    seed: int = 0,
    n_eval: int = 20000,
    activation: str = "elu",
    **hp,
):
    r"""Train a 1-D MLP critic between two fixed distributions and evaluate its objective.

    The critic (``wganbook.models.MLPCritic(1, width, depth, activation)``; ELU by default, so that
    its slope is continuous — a ReLU critic's slope is piecewise constant, and in our runs its
    objective drifted a few percent *below* the optimum over long training) minimises the method's critic
    loss (``wganbook.objectives.critic_loss``) on fresh samples each step with Adam(``lr``,
    ``betas``), the learning rate decaying linearly to 0 over ``steps`` (with a constant rate the
    last iterate keeps fluctuating by a few percent, because :math:`\|\nabla f\|^6` is a
    high-variance minibatch estimate). Then :func:`critic_objective` is evaluated on ``n_eval``
    fresh samples of each distribution. For ``method="wgan-div"`` the objective estimates
    :math:`W_{k,p}` from below (any critic's objective is at most the maximum), up to sampling
    noise.

    Parameters
    ----------
    method : str
        ``"wgan-div"`` or ``"wgan-gp"`` (any method of ``wganbook.objectives``).
    real, fake : GaussianMixture1D
        The distributions P (scored high) and Q.
    steps, batch_size, width, depth, lr, betas, seed :
        Training settings (``seed`` fixes the initialisation, the samples and the penalty points).
        ``steps=0`` evaluates the untrained critic (the same initialisation as any ``steps``), the
        baseline that shows what training did.
    activation : str
        Hidden nonlinearity (``wganbook.models.ACTIVATIONS``).
    n_eval : int
        Evaluation samples per distribution.
    **hp
        Method hyper-parameters (``k``, ``p``, ``lam``, ``strategy``).

    Returns
    -------
    (dict, nn.Module)
        ``{"objective", "gap", "penalty", "grad_norm"}`` (floats) and the trained critic.
    """

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0; got {steps!r}")
    seed_everything(seed)
    critic = MLPCritic(1, width=width, depth=depth, activation=activation)
    rng = torch.Generator().manual_seed(seed)
    noise = torch.Generator().manual_seed(seed + 7919)
    opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=tuple(float(b) for b in betas))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 - t / max(steps, 1))
    for _ in range(steps):
        loss, _ = objectives.critic_loss(
            method, critic, real.sample(batch_size, rng), fake.sample(batch_size, rng), generator=noise, **hp
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    ev = torch.Generator().manual_seed(seed + 10007)
    x, y = real.sample(n_eval, ev), fake.sample(n_eval, ev)
    out = critic_objective(method, critic, x, y, generator=torch.Generator().manual_seed(seed), **hp)
    return out, critic


def objective_over_steps(
    method: str,
    real: GaussianMixture1D,
    fake: GaussianMixture1D,
    checkpoints,
    batch_size: int = 256,
    width: int = 32,
    depth: int = 2,
    lr: float = 2e-3,
    betas=(0.5, 0.9),
    seed: int = 0,
    n_eval: int = 4096,
    activation: str = "elu",
    **hp,
) -> list:
    r"""Train a 1-D critic with a constant learning rate and record its objective at checkpoints.

    The same critic and training as :func:`fit_critic_1d` (``MLPCritic(1, width, depth,
    activation)``, Adam, fresh samples each step), but the learning rate stays constant, so that
    the objective shows what more critic steps do: where the method's objective has a finite
    maximum it levels off, where it has none (e.g. WGAN-div with ``strategy="real+fake"`` and
    separated supports, :math:`W_{k,p} = \infty`) it keeps growing. At each checkpoint
    :func:`critic_objective` is evaluated on the same ``n_eval`` samples per distribution and the
    same penalty points.

    Parameters
    ----------
    method : str
        A method of ``wganbook.objectives`` (e.g. ``"wgan-div"``).
    real, fake : GaussianMixture1D
        The distributions P (scored high) and Q.
    checkpoints : sequence of int
        Strictly increasing step counts >= 1 at which to evaluate.
    batch_size, width, depth, lr, betas, seed, activation :
        As in :func:`fit_critic_1d`.
    n_eval : int
        Evaluation samples per distribution.
    **hp
        Method hyper-parameters (``k``, ``p``, ``strategy``, ...).

    Returns
    -------
    list of dict
        One row ``{"step", "objective", "gap", "penalty", "grad_norm"}`` per checkpoint.
    """

    checkpoints = list(checkpoints)
    if (
        not checkpoints
        or any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1 for c in checkpoints)
        or any(b <= a for a, b in zip(checkpoints, checkpoints[1:]))
    ):
        raise ValueError(f"checkpoints must be strictly increasing ints >= 1; got {checkpoints!r}")
    seed_everything(seed)
    critic = MLPCritic(1, width=width, depth=depth, activation=activation)
    rng = torch.Generator().manual_seed(seed)
    noise = torch.Generator().manual_seed(seed + 7919)
    opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=tuple(float(b) for b in betas))
    ev = torch.Generator().manual_seed(seed + 10007)
    x, y = real.sample(n_eval, ev), fake.sample(n_eval, ev)
    rows, done = [], 0
    for stop in checkpoints:
        for _ in range(int(stop) - done):
            loss, _ = objectives.critic_loss(
                method, critic, real.sample(batch_size, rng), fake.sample(batch_size, rng), generator=noise, **hp
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        done = int(stop)
        out = critic_objective(method, critic, x, y, generator=torch.Generator().manual_seed(seed), **hp)
        rows.append({"step": done, **out})
    return rows


def strategy_sensitivity(records, metric: str = "fd", by: str = "method") -> list:
    r"""How much a metric moves across sampling strategies, per method and seed.

    For each value of ``by`` (e.g. the method) and each seed, over the strategies
    :math:`s_1..s_m` run with that seed: ``"range"`` :math:`= \max_j v_j - \min_j v_j`,
    ``"best"`` / ``"worst"`` (the strategies of the min / max value) and ``"n"`` (m). Comparing
    strategies within one seed removes the part of the spread that every strategy shares (same
    initialisation and data order).

    Parameters
    ----------
    records : list of dict
        Records of ``wganbook.lab.sweeps.run_grid`` with ``"strategy"`` and ``by`` in ``record["combo"]``
        (or ``record["config"]``).
    metric : str
        Metric name in ``record["metrics"]``.
    by : str
        Grouping key.

    Returns
    -------
    list of dict
        Rows ``{by, "seed", "range", "best", "worst", "n"}`` in order of first appearance.
    """

    def get(r, key):
        for part in ("combo", "config"):
            if key in (r.get(part) or {}):
                return r[part][key]
        if key in r:
            return r[key]
        raise KeyError(f"record has no {key!r} in combo or config")

    groups: dict = {}
    for r in records:
        v = (r.get("metrics") or {}).get(metric)
        if v is None or not np.isfinite(v):
            continue
        groups.setdefault((get(r, by), r["seed"]), []).append((float(v), get(r, "strategy")))
    if not groups:
        raise ValueError(f"no finite {metric!r} values in records")
    rows = []
    for (b, seed), vals in groups.items():
        vals.sort()
        rows.append(
            {
                by: b,
                "seed": seed,
                "range": vals[-1][0] - vals[0][0],
                "best": vals[0][1],
                "worst": vals[-1][1],
                "n": len(vals),
            }
        )
    return rows


def sensitivity_summary(records, metric: str = "fd", by: str = "method") -> dict:
    r"""Is a method's metric more sensitive to the sampling strategy than to the seed?

    For each value :math:`m` of ``by``: ``"strategy_range"``, the mean over seeds of the range
    across strategies within one seed (:func:`strategy_sensitivity`); ``"seed_range"``, the mean
    over strategies of the range across seeds of one configuration; ``"best"``, the best strategy
    of each seed. Then ``"gap"`` = max - min of the strategy ranges over the values of ``by`` and
    ``"noise"`` = the mean seed range: the difference between the methods is ``"resolved"`` when
    the gap exceeds the noise, and ``"more_sensitive"`` names the value with the largest strategy
    range.

    Returns
    -------
    dict
        ``{"per": {m: {"strategy_range", "seed_range", "best"}}, "gap", "noise", "resolved",
        "more_sensitive"}``.
    """

    per: dict = {}
    for row in strategy_sensitivity(records, metric, by=by):
        d = per.setdefault(row[by], {"ranges": [], "best": []})
        d["ranges"].append(row["range"])
        d["best"].append(row["best"])
    spreads: dict = {}
    for row in summarize(records, [by, "strategy"], metric):
        if row["n"] > 0:
            spreads.setdefault(row[by], []).append(row["max"] - row["min"])
    out = {
        m: {
            "strategy_range": float(np.mean(d["ranges"])),
            "seed_range": float(np.mean(spreads.get(m, [np.nan]))),
            "best": d["best"],
        }
        for m, d in per.items()
    }
    ranges = {m: v["strategy_range"] for m, v in out.items()}
    gap = max(ranges.values()) - min(ranges.values())
    noise = float(np.mean([v["seed_range"] for v in out.values()]))
    return {
        "per": out,
        "gap": gap,
        "noise": noise,
        "resolved": bool(gap > noise),
        "more_sensitive": max(ranges, key=ranges.get),
    }


def select_records(records, **conditions) -> list:
    r"""The records whose ``combo`` / ``config`` / record values match every condition.

    A condition's value may be a list (any of its values matches), e.g.
    ``select_records(records, method="wgan-div", strategy="real-fake", seed=[0, 1])``.
    """

    def ok(r):
        for key, want in conditions.items():
            try:
                v = _lookup(r, key)
            except KeyError:
                return False
            if v not in (list(want) if isinstance(want, (list, tuple, set)) else [want]):
                return False
        return True

    return [r for r in records if ok(r)]


def kp_summary(records, metric: str = "fd", centre: Tuple[float, float] = (2.0, 6.0)) -> list:
    r"""Mean, min, max and count of a metric per :math:`(k, p)` of WGAN-div records.

    A record's :math:`(k, p)` is read from its ``config``; ``None`` (the method's default) counts
    as ``centre`` (the WGAN-div defaults :math:`k = 2`, :math:`p = 6`), so runs of an ablation at
    the default settings and runs of a :func:`~wganbook.divergence.kp_grid` sweep summarise together.

    Returns
    -------
    list of dict
        Rows ``{"k", "p", "mean", "min", "max", "n"}``, centre first, then in order of appearance.
    """
    groups: dict = {(float(centre[0]), float(centre[1])): []}
    for r in records:
        cfg = r.get("config") or {}
        k = float(centre[0]) if cfg.get("k") is None else float(cfg["k"])
        p = float(centre[1]) if cfg.get("p") is None else float(cfg["p"])
        v = (r.get("metrics") or {}).get(metric)
        groups.setdefault((k, p), [])
        if v is not None and np.isfinite(v):
            groups[(k, p)].append(float(v))
    rows = []
    for (k, p), vals in groups.items():
        if not vals:
            continue
        rows.append({"k": k, "p": p, "mean": float(np.mean(vals)), "min": min(vals), "max": max(vals), "n": len(vals)})
    if not rows:
        raise ValueError(f"no finite {metric!r} values in records")
    return rows


#: FID of the six sampling strategies as reported by Su Jianlin's post on WGAN-div
#: (https://kexue.fm/archives/6139, table "不同的采样方式所导致的不同模型的FID不同差异"), quoting
#: Wu et al. (2018). Columns in the order of ``wganbook.lipschitz.SAMPLING_STRATEGIES``. The post
#: does not state the dataset or the FID protocol of this table.
POST_FID = {
    "WGAN-GP": (18.4, 20.1, 19.3, 19.0, 18.3, 17.0),
    "CTGAN": (16.4, 16.5, 17.7, 17.2, 17.9, 17.5),
    "WGAN-div": (15.2, 15.9, 15.1, 14.5, 15.5, 14.9),
}


#: The main FID table of Wu et al. (2018) as quoted by Su Jianlin's post (table
#: "WGAN-div与不同的模型在不同的数据集效果比较"): model -> (CIFAR-10, CelebA, LSUN); ``None`` where
#: the table has "-" (SNGAN's CIFAR-10 entry is starred in the post: quoted from the SNGAN paper).
PAPER_FID = {
    "DCGAN": (30.9, 52.0, 61.1),
    "WGAN-GP": (18.8, 18.4, 26.8),
    "RJS-GAN": (19.6, 21.4, 16.7),
    "CTGAN": (18.6, 16.4, 20.3),
    "SNGAN": (21.7, None, None),
    "WGAN-div": (18.1, 15.2, 15.9),
}
#: Columns of :data:`PAPER_FID`.
PAPER_FID_DATASETS = ("CIFAR-10", "CelebA", "LSUN")


def plot_strategy_ablation(
    ax,
    records,
    metric: str = "fd",
    methods=None,
    strategies=None,
    reference: Optional[float] = None,
    ylabel: Optional[str] = None,
    reference_label: str = "reference",
):
    """Plot a metric per sampling strategy: one marker per seed, a bar at each method's mean.

    Parameters
    ----------
    ax : matplotlib Axes
    records : list of dict
        Records of ``wganbook.lab.sweeps.run_grid`` over ``method`` x ``strategy``.
    metric : str
        Metric name in ``record["metrics"]``.
    methods, strategies : list of str, optional
        Order of the groups (default: order of first appearance).
    reference : float, optional
        A horizontal reference line (e.g. the metric of real data, :func:`wganbook.metrics.real_reference_distance`).
    ylabel : str, optional
        Label of the y axis (default: the metric name).
    reference_label : str, optional
        Legend entry of the reference line.
    """

    def combo(r, key):
        return (r.get("combo") or {}).get(key, (r.get("config") or {}).get(key))

    methods = list(methods or dict.fromkeys(combo(r, "method") for r in records))
    strategies = list(strategies or dict.fromkeys(combo(r, "strategy") for r in records))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        xs, means = [], []
        for j, s in enumerate(strategies):
            vals = [
                r["metrics"][metric]
                for r in records
                if combo(r, "method") == m and combo(r, "strategy") == s and metric in r["metrics"]
            ]
            x0 = j + (i - (len(methods) - 1) / 2) * width
            if vals:
                ax.scatter([x0] * len(vals), vals, s=14, color=f"C{i}", zorder=3)
                xs.append(x0)
                means.append(float(np.mean(vals)))
        ax.bar(xs, means, width=width * 0.9, color=f"C{i}", alpha=0.35, label=m)
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=1, label=reference_label)
    ax.set_xticks(range(len(strategies)))
    ax.set_xticklabels(strategies, rotation=20, ha="right")
    ax.set_xlabel("sampling strategy r(x)")
    ax.set_ylabel(ylabel or metric)
    ax.legend()
    return ax


def critic_gap_ratio(records, numerator, denominator, metric: str = "w1_estimate", method: str = "wgan-div") -> float:
    r"""How much larger one group of sampling strategies leaves a metric than another.

    With :math:`\bar v(S)` the mean of ``metric`` over the runs of ``method`` whose strategy is in
    :math:`S` (every run counts once, whatever its seed),

    .. math::

        \frac{\bar v(S_\text{num})}{\bar v(S_\text{den})}.

    Chapter 5 compares the critic's final score gap :math:`\bar f(\text{real}) -
    \bar f(\text{fake})` of the four strategies whose :math:`W_{k,p}` is infinite for separated
    supports (``divergence.DENSITY_STRATEGIES`` minus ``divergence.GAP_CHARGING_STRATEGIES``) with
    that of the two that charge the gap.

    Parameters
    ----------
    records : list of dict
        Records of :func:`wganbook.lab.sweeps.run_grid` with ``method`` and ``strategy``.
    numerator, denominator : sequence of str
        The two groups of strategies.
    metric : str, optional
        A final metric of the records (default: the critic's last W1 estimate).
    method : str, optional

    Returns
    -------
    float
        ``nan`` when a group has no run that records the metric (e.g. a run of the chapter with a
        subset of the strategies).
    """
    means = []
    for group in (numerator, denominator):
        group = [group] if isinstance(group, str) else list(group)
        values = [
            r["metrics"][metric]
            for r in select_records(records, method=method, strategy=group)
            if metric in r.get("metrics", {})
        ]
        if not values:
            return float("nan")
        means.append(float(np.mean(values)))
    return means[0] / means[1]

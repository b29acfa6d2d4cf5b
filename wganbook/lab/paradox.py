"""Chapter 6's experiments: generators trained on exact batch W1, critics' estimates against exact W1, the image variants of the batch-W1 paradox."""

from __future__ import annotations

from typing import Callable, Dict, Mapping, Optional

import numpy as np
import torch

from wganbook import batchw1, duality, metrics, models, transport
from wganbook._util import Float, Int, check_value
from wganbook.batchw1 import _as_tensor, _draw, _flat64
from wganbook.data import seed_everything
from wganbook.metrics import ClassifierFeatures
from wganbook.objectives import METHODS
from wganbook.train.config import TrainConfig
from wganbook.train.critic import fit_critic
from wganbook.train.history import estimate_vs_exact
from wganbook.train.loop import train

__all__ = [
    "train_exact_w1_generator",
    "evaluate_estimates",
    "classifier_embedding",
    "train_variant",
    "estimate_error",
    "error_summary",
    "weak_duality_excess",
    "per_seed",
    "generator_batch_w1",
    "mean_pm",
    "paradox_sets",
    "copies_lp_gap",
    "distance_ratios",
    "batch_schedule",
    "crossovers",
    "format_crossover",
    "projected_bias_share",
    "untrained_ct_estimates",
    "static_test",
    "value_range",
]


def train_exact_w1_generator(
    generator: torch.nn.Module,
    images,
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    betas=(0.5, 0.999),
    seed: int = 0,
    record_every: int = 50,
    embed: Optional[Callable] = None,
) -> Dict[str, list]:
    r"""Train a generator by gradient descent on the exact batch W1 (no critic).

    Each step draws a real batch :math:`X` (``batch_size`` images of ``images``) and a fake batch
    :math:`Y = G_\theta(Z)`, solves the assignment problem exactly (POT, float64) for the plan
    :math:`P^\star`, and takes an Adam step on

    .. math::

        L(\theta) = \sum_{ij} P^\star_{ij}\, \|x_i - G_\theta(z_j)\|_2 = W_1(X, Y),

    with :math:`P^\star` held constant: by the envelope (Danskin) theorem this is the gradient of
    the batch W1 wherever the optimal plan is unique (:func:`wganbook.transport.w1`).

    Parameters
    ----------
    generator : torch.nn.Module
        A ``wganbook.models`` generator (has ``sample_z``); trained in place.
    images : torch.Tensor, shape (N, C, H, W)
        Real images in :math:`[-1, 1]`.
    steps : int
        Number of generator updates.
    batch_size : int, optional
        :math:`m`, the size of both batches.
    lr : float, optional
        Adam learning rate.
    betas : tuple of float, optional
        Adam betas.
    seed : int, optional
        Seeds the batch draws and the latent codes (``wganbook.data.seed_everything``).
    record_every : int, optional
        Record the batch W1 every this many steps (and at the last step).
    embed : callable, optional
        A differentiable feature map :math:`\phi` (e.g. :func:`classifier_embedding`): the
        ground cost becomes :math:`\|\phi(x_i) - \phi(G_\theta(z_j))\|_2` instead of the pixel
        distance (``None``: pixels).

    Returns
    -------
    dict
        ``"step"`` and ``"w1"`` (the exact batch W1 of the training batch at that step, before the
        update, in the ground cost used).
    """

    x = _as_tensor(images, "images")
    steps, batch_size = check_value("steps", steps, Int(lo=1)), check_value("batch_size", batch_size, Int(lo=1))
    record_every = check_value("record_every", record_every, Int(lo=1))
    if embed is not None and not callable(embed):
        raise TypeError(f"embed must be None or a callable feature map; got {type(embed).__name__}")
    gen = seed_everything(int(seed))
    device = next(generator.parameters()).device
    opt = torch.optim.Adam(generator.parameters(), lr=float(lr), betas=tuple(float(b) for b in betas))
    hist: Dict[str, list] = {"step": [], "w1": []}
    generator.train()
    for step in range(1, steps + 1):
        real = _draw(x, batch_size, gen).to(device)
        fake = generator(generator.sample_z(batch_size, generator=gen, device=device))
        if embed is not None:
            with torch.no_grad():
                real = embed(real)
            fake = embed(fake)
        loss = transport.w1(real.reshape(batch_size, -1), fake.reshape(batch_size, -1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % record_every == 0 or step == steps or step == 1:
            hist["step"].append(step)
            hist["w1"].append(float(loss.detach()))
    generator.eval()
    return hist


# ---------------------------------------------------------------------- critic estimates
def evaluate_estimates(
    method: str, critic: torch.nn.Module, real, fake, n_batches: int = 50, batch_size: int = 64, seed: int = 0
) -> Dict[str, np.ndarray]:
    r"""A frozen critic's W1 estimate and the exact batch W1 on fresh batch pairs.

    For each of ``n_batches`` pairs :math:`(X, Y)` of ``batch_size`` samples:

    * c-transform critic (``method == "wgan-ct"``):
      :math:`\hat W = \frac1m\sum_i f(x_i) + \frac1m \sum_j f^c(y_j)`,
      :math:`f^c(y_j) = \min_i \|x_i - y_j\| - f(x_i)`, evaluated in float64, so
      :math:`\hat W \le W_1(X, Y)` holds to rounding error (weak duality);
    * every other method: :math:`\hat W = \frac1m\sum_i f(x_i) - \frac1m \sum_j f(y_j)`;

    and the exact :math:`W_1(X, Y)` (POT, Euclidean cost).

    Parameters
    ----------
    method : str
        A key of ``wganbook.objectives.METHODS``.
    critic : torch.nn.Module
        Maps a batch to scores of shape ``(n,)``.
    real, fake : torch.Tensor or callable
        Samples (batches drawn without replacement) or functions ``n -> batch``.
    n_batches, batch_size : int, optional
    seed : int, optional
        Seed of the batch draws.

    Returns
    -------
    dict
        ``"estimate"``, ``"exact"`` and ``"error"`` (= estimate - exact): float64 arrays of
        length ``n_batches``.
    """

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; method must be one of: {', '.join(METHODS)}")
    n_batches = check_value("n_batches", n_batches, Int(lo=1))
    batch_size = check_value("batch_size", batch_size, Int(lo=1))
    gen = torch.Generator().manual_seed(int(seed))
    device = next(critic.parameters()).device
    est, exact = [], []
    was_training = critic.training
    critic.eval()
    with torch.no_grad():
        for _ in range(n_batches):
            x = _draw(real, batch_size, gen).to(device)
            y = _draw(fake, batch_size, gen).to(device)
            fx = critic(x).reshape(-1).double().cpu().numpy()
            xf, yf = _flat64(x), _flat64(y)
            if method == "wgan-ct":
                est.append(duality.c_transform_dual(fx, xf, yf))
            else:
                fy = critic(y).reshape(-1).double().cpu().numpy()
                est.append(float(fx.mean() - fy.mean()))
            exact.append(transport.w1(xf, yf))
    critic.train(was_training)
    est, exact = np.asarray(est), np.asarray(exact)
    return {"estimate": est, "exact": exact, "error": est - exact}


def classifier_embedding(dataset: str) -> torch.nn.Module:
    r"""The offline classifier's feature map as a frozen, differentiable torch module.

    :class:`wganbook.metrics.ClassifierFeatures` (the network of the sample-quality score)
    returns numpy features without gradients; this returns the same map
    :math:`\phi: [-1, 1]^{C \times H \times W} \to \mathbb R^{d}` as a module whose parameters
    do not require gradients, so a loss on :math:`\phi(G_\theta(z))` trains :math:`\theta`
    (the ground cost :math:`\|\phi(x) - \phi(y)\|_2` of :func:`train_exact_w1_generator`).

    Parameters
    ----------
    dataset : str

    Returns
    -------
    torch.nn.Module
    """

    body = ClassifierFeatures(dataset).model.body
    for p in body.parameters():
        p.requires_grad_(False)
    return body.eval()


# ------------------------------------------------------------------------ training helpers
def train_variant(config_kwargs: dict, data=None, **kwargs):
    r"""A ``train_fn`` for :func:`wganbook.lab.sweeps.run_grid` with a ``spectral`` switch.

    ``config_kwargs`` are ``TrainConfig`` arguments plus an optional ``"spectral"`` (bool): when
    present, the critic is built by :func:`wganbook.models.make_critic` with that spectral
    normalisation (``True`` adds it to any method; ``False`` on ``wgan-sn`` gives the WGAN loss
    with **no** Lipschitz constraint at all). Without it this is
    ``train(TrainConfig(**config_kwargs), data=data)``.

    Parameters
    ----------
    config_kwargs : dict
    data : optional
        Preloaded training data.
    **kwargs
        Passed to :func:`~wganbook.train.loop.train`.

    Returns
    -------
    wganbook.train.TrainResult
    """

    cfg = dict(config_kwargs)
    spectral = cfg.pop("spectral", None)
    if spectral is not None and not isinstance(spectral, bool):
        raise TypeError(f"spectral must be a bool; got {spectral!r}")
    config = TrainConfig(**cfg)
    critic = None
    if spectral is not None:
        critic = models.make_critic(
            config.data, width=config.width, depth=config.depth, norm=config.norm, spectral=spectral
        )
    return train(config, data=data, critic=critic, **kwargs)


def estimate_error(history) -> float:
    r"""Mean relative error of a critic's W1 estimate along a run: mean of :math:`|\hat W - W_1| / W_1`.

    Pairs the estimate with the exact batch W1 of the same batches
    (:func:`wganbook.train.history.estimate_vs_exact`) at every recorded step.

    Parameters
    ----------
    history : dict
        A training history with exact W1 records (``w1_every > 0``).

    Returns
    -------
    float
    """

    _, est, exact = estimate_vs_exact(history)
    return float(np.mean(np.abs(est - exact) / exact))


# ------------------------------------------------------------------ the chapter's summaries
def error_summary(evaluation: Mapping[str, np.ndarray]) -> Dict[str, float]:
    r"""Mean estimate, exact value and errors of a frozen critic on fresh batch pairs.

    With :math:`\hat W_k`, :math:`W_1^{(k)}` and :math:`e_k = \hat W_k - W_1^{(k)}` over the
    :math:`K` batch pairs of :func:`evaluate_estimates`:

    .. math::

        \bar e = \frac1K \sum_k e_k, \qquad s_e = \Big(\frac1K \sum_k (e_k - \bar e)^2\Big)^{1/2},
        \qquad \overline{|e|} = \frac1K \sum_k |e_k|, \qquad
        \overline{|e| / W_1} = \frac1K \sum_k \frac{|e_k|}{W_1^{(k)}}.

    Parameters
    ----------
    evaluation : dict
        ``"estimate"``, ``"exact"`` and ``"error"`` arrays (:func:`evaluate_estimates`).

    Returns
    -------
    dict
        ``"estimate"`` and ``"exact"`` (means), ``"error"`` (:math:`\bar e`), ``"error_std"``
        (:math:`s_e`, population standard deviation), ``"abs_error"`` and ``"relative_error"``.
    """
    est, exact, err = (np.asarray(evaluation[k], dtype=np.float64) for k in ("estimate", "exact", "error"))
    if est.size == 0 or est.shape != exact.shape or err.shape != exact.shape:
        raise ValueError("evaluation must hold 'estimate', 'exact' and 'error' arrays of one non-zero length")
    return {
        "estimate": float(est.mean()),
        "exact": float(exact.mean()),
        "error": float(err.mean()),
        "error_std": float(err.std()),
        "abs_error": float(np.mean(np.abs(err))),
        "relative_error": float(np.mean(np.abs(err) / exact)),
    }


def weak_duality_excess(estimate, exact, atol: float = 0.0, rtol: float = 0.0) -> float:
    r"""By how much a dual estimate exceeds the exact W1 beyond a rounding allowance.

    .. math::

        \max_k \big(\hat W_k - W_1^{(k)} - \text{atol} - \text{rtol}\,W_1^{(k)}\big).

    Weak duality makes a c-transform estimate :math:`\hat W = \bar f(X) + \overline{f^c}(Y)` a
    lower bound of :math:`W_1(X, Y)`, so the value is :math:`\le 0` up to floating-point rounding;
    a positive value is a violation.

    Parameters
    ----------
    estimate, exact : sequence of float
        Estimates and exact values on the same batch pairs.
    atol, rtol : float, optional
        Absolute and relative allowance for rounding (e.g. float32 statistics), ``>= 0``.

    Returns
    -------
    float
    """
    est, ex = np.asarray(estimate, dtype=np.float64), np.asarray(exact, dtype=np.float64)
    if est.size == 0 or est.shape != ex.shape:
        raise ValueError("estimate and exact must be sequences of the same non-zero length")
    atol, rtol = check_value("atol", atol, Float(lo=0)), check_value("rtol", rtol, Float(lo=0))
    return float(np.max(est - ex - atol - rtol * ex))


def per_seed(runs: Mapping, name: str, key: str, seeds) -> list:
    """A final metric of one variant for every seed: ``runs[name, s]["metrics"][key]``, ``nan`` if absent.

    Parameters
    ----------
    runs : dict
        ``(variant name, seed) -> record`` of :func:`wganbook.lab.sweeps.run_grid`.
    name, key : str
        The variant and the metric (e.g. ``"fd"``).
    seeds : sequence of int

    Returns
    -------
    list of float
    """
    return [runs[name, s]["metrics"].get(key, float("nan")) for s in seeds]


def generator_batch_w1(
    generator: torch.nn.Module,
    images,
    batch_size: int,
    n_batches: int,
    n_samples: int = 1000,
    seed: int = 0,
    batch_seed: int = 0,
) -> float:
    r"""Mean exact batch W1 between real batches and batches of a generator's samples.

    Draws ``n_samples`` samples :math:`G(z)` (seeded noise, :func:`wganbook.metrics.generate`) and
    returns :math:`\frac1K\sum_k W_1(X_k, Y_k)` over :math:`K` = ``n_batches`` pairs of
    ``batch_size`` real images :math:`X_k` and samples :math:`Y_k`
    (:func:`wganbook.batchw1.batch_w1_samples`, Euclidean cost).

    Parameters
    ----------
    generator : torch.nn.Module
    images : torch.Tensor, shape (N, ...)
        Real images.
    batch_size, n_batches : int
    n_samples : int, optional
        Generated samples the batches are drawn from.
    seed : int, optional
        Seed of the generator's noise.
    batch_seed : int, optional
        Seed of the batch draws.

    Returns
    -------
    float
    """
    x = metrics.generate(generator, check_value("n_samples", n_samples, Int(lo=1)), seed=seed)
    return float(batchw1.batch_w1_samples(images, x, batch_size, n_batches, seed=batch_seed).mean())


def mean_pm(values, spec: str = ".2f") -> str:
    r"""``"mean ± std"`` of a list of numbers (population standard deviation), each formatted by ``spec``.

    Parameters
    ----------
    values : sequence of float
    spec : str, optional
        A format spec, e.g. ``".1f"``.

    Returns
    -------
    str
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("values must not be empty")
    return f"{v.mean():{spec}} ± {v.std():{spec}}"


def paradox_sets(images: Mapping[str, torch.Tensor], batch_sizes, seed: int = 0, twin_size: int = 20000):
    r"""The reference and pool halves of each dataset and of its Gaussian twin, and their batch sizes.

    For each dataset :math:`D` (in order): ``sets[D]`` = :func:`wganbook.batchw1.split_halves` of
    its images, and ``sets["Gaussian twin of D"]`` = the halves of ``twin_size`` samples of the
    Gaussian with the images' mean and covariance (:func:`wganbook.batchw1.gaussian_twin`). The
    batch sizes of a set are those of ``batch_sizes`` that are at most a tenth of its smaller half
    (:func:`wganbook.batchw1.max_batch_size`): larger batches describe the pool, not the data.

    Parameters
    ----------
    images : dict of str to torch.Tensor
        Dataset name -> images ``(N, ...)``.
    batch_sizes : sequence of int
    seed : int, optional
        Seed of the twins and of the splits.
    twin_size : int, optional
        Samples of each Gaussian twin.

    Returns
    -------
    (dict, dict)
        ``sets``: name -> ``(reference, pool)``; ``sizes``: name -> list of batch sizes.
    """
    if not isinstance(images, Mapping) or not images:
        raise TypeError("images must be a non-empty dict of dataset name -> images")
    sets = {}
    for name, x in images.items():
        twin = batchw1.gaussian_twin(x, twin_size, seed=seed)
        sets[name] = batchw1.split_halves(x, seed=seed)
        sets[f"Gaussian twin of {name}"] = batchw1.split_halves(twin, seed=seed)
    sizes = {}
    for name, (ref, pool) in sets.items():
        cap = batchw1.max_batch_size(min(ref.shape[0], pool.shape[0]))
        sizes[name] = [s for s in batch_sizes if s <= cap]
    return sets, sizes


def copies_lp_gap(reference, u, copies: int) -> float:
    r"""The closed form of :func:`wganbook.batchw1.copies_w1` against the exact linear programme.

    .. math::

        \Big| \frac1n \sum_{i=1}^n \lVert r_i - u\rVert_2
        - W_1\big(\{r_1..r_n\}, \{\underbrace{u, \dots, u}_{\text{copies}}\}\big) \Big|,

    the second term solved by POT (float64, Euclidean cost). Zero up to rounding for every number
    of copies, since every coupling with a batch of copies costs the same.

    Parameters
    ----------
    reference : torch.Tensor, shape (n, ...)
    u : torch.Tensor
        One image of shape ``reference.shape[1:]``.
    copies : int

    Returns
    -------
    float
    """
    r = _as_tensor(reference, "reference")
    u = _as_tensor(u, "u")
    lp = transport.w1(_flat64(r), _flat64(u.expand(check_value("copies", copies, Int(lo=1)), *u.shape)))
    return abs(batchw1.copies_w1(r, u) - lp)


def distance_ratios(x, y, centre) -> tuple:
    r"""How much farther an image is from another image than from the mean.

    Over pairs :math:`(x_i, y_i)` and a centre :math:`c`,

    .. math::

        \rho_2 = \frac{\sum_i \lVert x_i - y_i\rVert^2}{\sum_i \lVert x_i - c\rVert^2}, \qquad
        \rho_1 = \frac{\sum_i \lVert x_i - y_i\rVert}{\sum_i \lVert x_i - c\rVert}.

    For independent :math:`x, y` with mean :math:`c` and covariance :math:`\Sigma`,
    :math:`\mathbb E\lVert x - y\rVert^2 = 2\operatorname{tr}\Sigma = 2\,\mathbb E\lVert x - c\rVert^2`,
    so :math:`\rho_2 \to 2`; :math:`\rho_1 \to \sqrt 2` only when the norms concentrate.

    Parameters
    ----------
    x, y : torch.Tensor, shape (n, ...)
    centre : torch.Tensor
        One image of shape ``x.shape[1:]``.

    Returns
    -------
    (float, float)
        :math:`\rho_2` and :math:`\rho_1` (float64 arithmetic).
    """
    x, y = _flat64(_as_tensor(x, "x")), _flat64(_as_tensor(y, "y"))
    c = _flat64(_as_tensor(centre, "centre").reshape(1, -1))
    if x.shape != y.shape or c.shape[1] != x.shape[1]:
        raise ValueError(
            f"x and y must have the same shape and centre one sample's size; got "
            f"{x.shape}, {y.shape} and {c.shape[1]} values"
        )
    d_pair = np.linalg.norm(x - y, axis=1)
    d_mean = np.linalg.norm(x - c, axis=1)
    return float((d_pair**2).mean() / (d_mean**2).mean()), float(d_pair.mean() / d_mean.mean())


def batch_schedule(base: int) -> Callable[[int], int]:
    r"""Reference batches per batch size for :func:`wganbook.batchw1.paradox_sweep`.

    :math:`n(m) = \max\big(5, \lfloor 64\,\text{base} / \max(m, 64) \rfloor\big)`: ``base``
    repetitions up to :math:`m = 64`, then fewer as one exact linear programme costs more, and
    never fewer than 5.

    Parameters
    ----------
    base : int
        Repetitions at batch sizes up to 64.

    Returns
    -------
    callable
        ``m -> repetitions``.
    """
    base = check_value("base", base, Int(lo=1))

    def n_batches(m: int) -> int:
        return max(5, base * 64 // max(check_value("batch size", m, Int(lo=1)), 64))

    return n_batches


def crossovers(sweep: Mapping[str, object]) -> Dict[str, Optional[float]]:
    r"""The crossover batch size :math:`m^\ast` of each competitor of a paradox sweep.

    :func:`wganbook.batchw1.crossover` of the mean W1 to an independent real batch and the mean
    W1 to the competitor (``"mean"``, ``"kmeans"``, ``"blur"``) over the sweep's batch sizes.

    Parameters
    ----------
    sweep : dict
        Output of :func:`wganbook.batchw1.paradox_sweep`.

    Returns
    -------
    dict
        Competitor -> :math:`m^\ast` (``None`` if the competitor wins at every batch size).
    """
    real = [float(np.mean(v)) for v in sweep["real"]]
    return {
        c: batchw1.crossover(sweep["batch_size"], real, [float(np.mean(v)) for v in sweep[c]])
        for c in batchw1.COMPETITORS
    }


def format_crossover(value: Optional[float], largest: int) -> str:
    """A crossover batch size as the chapter prints it: ``"23"``, or ``"beyond m = 64"`` when the
    competitor still wins at the largest batch size of the sweep (``value`` is ``None``)."""
    return f"beyond m = {largest}" if value is None else f"{value:.0f}"


def projected_bias_share(a, b, m: int, n_batches: int = 10, seed: int = 0) -> Dict[str, float]:
    r"""The exact batch :math:`W_1`'s within/between share on one dimension: the direction between the means.

    Every row of ``a`` and ``b`` (flattened) is projected onto the unit vector
    :math:`d = (\bar b - \bar a) / \lVert \bar b - \bar a\rVert` of the full-data means, and the
    within/between comparison of :func:`wganbook.batchw1.estimator_bias` (exact :math:`W_1`, the same
    disjoint draws) is made on the projections: ``between`` :math:`= W_1(A, B)`, ``within``
    :math:`= W_1(A, A')` with :math:`A, A'` disjoint batches of ``a``. In one dimension the batch
    :math:`W_1` of :math:`m` points converges like :math:`m^{-1/2}`, so the sampling noise that
    dominates the batch value in many dimensions is small here: this is the positive control of the
    claim that the exact batch :math:`W_1` in pixel space cannot tell two batches of one distribution
    from batches of two.

    Parameters
    ----------
    a, b : torch.Tensor, shape (N_a, ...) and (N_b, ...)
        Samples of the two distributions (at least ``2 m`` rows of ``a``, ``m`` of ``b``), with
        different means.
    m : int
        Batch size.
    n_batches : int, optional
        Repetitions (pairs of batches).
    seed : int, optional
        Seed of the draws.

    Returns
    -------
    dict
        ``"between"`` and ``"within"`` (means over the repetitions) and ``"share"`` (their ratio).

    Raises
    ------
    ValueError
        If ``m`` or ``n_batches`` is not a positive int, ``m`` exceeds half of ``a`` or all of ``b``,
        or the two means coincide (no direction).
    """
    m = check_value("m", m, Int(lo=1))
    n_batches = check_value("n_batches", n_batches, Int(lo=1))
    x, y = _flat64(_as_tensor(a, "a")), _flat64(_as_tensor(b, "b"))
    d = y.mean(0) - x.mean(0)
    norm = float(np.linalg.norm(d))
    if norm == 0.0:
        raise ValueError("a and b must have different means (the projection direction is their difference)")
    d = d / norm
    bias = batchw1.estimator_bias(
        torch.from_numpy(x @ d)[:, None],
        torch.from_numpy(y @ d)[:, None],
        [m],
        n_batches=n_batches,
        seed=seed,
        estimators=("exact",),
    )
    between = float(bias["between"]["exact"][0].mean())
    within = float(bias["within"]["exact"][0].mean())
    return {"between": between, "within": within, "share": within / between}


def value_range(values, spec: str = ".1f") -> str:
    r"""``"min–max"`` of a list of numbers, each formatted by ``spec`` (the spread quoted in the prose).

    Parameters
    ----------
    values : sequence of float
    spec : str, optional
        A format spec, e.g. ``".1f"``.

    Returns
    -------
    str
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("values must not be empty")
    return f"{v.min():{spec}}–{v.max():{spec}}"


def untrained_ct_estimates(
    make_critic: Callable[[], torch.nn.Module],
    real,
    fake,
    n_batches: int = 50,
    batch_size: int = 64,
    seed: int = 0,
    init_seed: int = 0,
) -> Dict[str, np.ndarray]:
    r"""The c-transform estimate of an **untrained** critic against the exact batch :math:`W_1`.

    The critic is built by ``make_critic()`` after ``torch.manual_seed(init_seed)`` (the
    initialisation a run seeded with ``init_seed`` starts from) inside :func:`torch.random.fork_rng`,
    so torch's global generator is left as it was and later draws do not change; it is then
    evaluated by :func:`evaluate_estimates` with ``method="wgan-ct"`` on the batch pairs that
    ``seed`` draws. With a critic :math:`f \approx 0` the estimate is the mean nearest-neighbour
    distance :math:`\frac1m \sum_j \min_i \lVert x_i - y_j\rVert`: what the c-transform gives
    before any training.

    Parameters
    ----------
    make_critic : callable
        ``() -> torch.nn.Module``, e.g. ``lambda: models.make_critic("digits")``.
    real, fake : torch.Tensor or callable
        As in :func:`evaluate_estimates`.
    n_batches, batch_size : int, optional
    seed : int, optional
        Seed of the batch draws.
    init_seed : int, optional
        Seed of the critic's initialisation.

    Returns
    -------
    dict
        As :func:`evaluate_estimates`: ``"estimate"``, ``"exact"``, ``"error"``.
    """
    if not callable(make_critic):
        raise ValueError("make_critic must be a callable returning a torch.nn.Module")
    init_seed = check_value("init_seed", init_seed, Int(lo=0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        critic = make_critic()
    return evaluate_estimates("wgan-ct", critic, real, fake, n_batches=n_batches, batch_size=batch_size, seed=seed)


def static_test(
    dataset: str,
    mu,
    nu,
    methods,
    steps: int,
    batch_size: int = 64,
    eval_batches: int = 50,
    seed: int = 0,
    record_every: int = 1,
    device=None,
) -> Dict[str, object]:
    r"""Chapter 6's static test: critics trained to tell two fixed distributions apart, then frozen.

    For each method, in the given order: every generator is seeded (:func:`wganbook.data.seed_everything`
    with ``seed``), a fresh critic ``models.make_critic(dataset)`` is trained by
    :func:`wganbook.train.critic.fit_critic` for ``steps`` steps on batches of ``mu`` (real) and ``nu`` (fake),
    recording its estimate and the exact batch :math:`W_1` of the same batches, and the frozen critic
    is evaluated by :func:`evaluate_estimates` on ``eval_batches`` fresh batch pairs drawn with
    ``seed + 1``. Every method sees the same training batches and the same evaluation batches. Then
    the untrained c-transform critic (:func:`untrained_ct_estimates`, initialisation seed ``seed``) on
    the same evaluation batches, and the exact :math:`W_1` between two independent batches of ``mu``
    (seed ``seed + 2``): the batch value between a distribution and itself.

    Parameters
    ----------
    dataset : str
        Dataset name for :func:`wganbook.models.make_critic`.
    mu, nu : torch.Tensor
        The two distributions' images.
    methods : sequence of str
        Keys of ``wganbook.objectives.METHODS``, e.g. ``["wgan-clip", "wgan-gp", "wgan-ct"]``.
    steps : int
        Critic steps of each method.
    batch_size, eval_batches : int, optional
    seed : int, optional
    record_every : int, optional
        Steps between two records of the training history.
    device : torch.device or str, optional
        Where the critics train.

    Returns
    -------
    dict
        ``method -> {"hist": history, "eval": evaluate_estimates(...)}`` for every method, plus
        ``"ct-untrained"`` (the untrained c-transform critic's evaluation) and ``"same"`` (float64
        array of the exact :math:`W_1` between two batches of ``mu``).
    """
    methods = list(methods)
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; methods must be keys of: {', '.join(METHODS)}")
    if not methods:
        raise ValueError(f"methods must be a non-empty list of: {', '.join(METHODS)}")
    out: Dict[str, object] = {}
    for method in methods:
        seed_everything(seed)
        critic = models.make_critic(dataset)
        hist = fit_critic(
            method,
            critic,
            mu,
            nu,
            steps=steps,
            batch_size=batch_size,
            seed=seed,
            record_every=record_every,
            exact_w1=True,
            device=device,
            track_grad_norm=False,
        )
        ev = evaluate_estimates(method, critic, mu, nu, n_batches=eval_batches, batch_size=batch_size, seed=seed + 1)
        out[method] = {"hist": hist, "eval": ev}
    out["ct-untrained"] = untrained_ct_estimates(
        lambda: models.make_critic(dataset),
        mu,
        nu,
        n_batches=eval_batches,
        batch_size=batch_size,
        seed=seed + 1,
        init_seed=seed,
    )
    out["same"] = batchw1.batch_w1_samples(mu, mu, batch_size, eval_batches, seed=seed + 2)
    return out

r"""Chapter 7: is it the Lipschitz constraint? A robustness grid of small GANs, trained all at once.

The papers' evidence that a constrained critic makes GAN training robust is a grid: the same
networks trained under several optimiser settings (SNGAN, Miyato et al. 2018, Fig. 1 and Table 1,
settings A-F), and a failure rate per method and setting. This module trains such a grid on a 2-D
mixture of Gaussians or on scikit-learn's 8x8 digits (flattened; the generator draws 16-dimensional noise
and ends in a tanh, and a run's digits are judged by the book's digit classifier, :func:`class_coverage`):
every combination of a *method* (a loss and a constraint on the critic), an
optimiser *setting* and a *seed* is one **member** of an ensemble. All members are trained in one
loop, with batched matrix products (``torch.baddbmm``): member :math:`e` has its own generator and
critic weights, its own Adam state, learning rate, betas and number of critic steps, and nothing it
computes depends on another member (the losses of the members are summed, and member :math:`e`'s
parameters receive the gradient of its own loss only). Python's and the kernel launches' overhead, which
dominates the step of a small network, is paid once for all members.

Each member's update is exactly the one its method prescribes (``tests/test_lab_robustness.py`` checks
every member's step, in double precision, against ``nn.Linear`` layers, :class:`torch.optim.Adam` and
:func:`torch.nn.utils.parametrizations.spectral_norm`):

* loss ``"ns"`` (non-saturating GAN on logits :math:`f`): critic
  :math:`\mathbb E\,\mathrm{softplus}(-f(x)) + \mathbb E\,\mathrm{softplus}(f(y))`, generator
  :math:`\mathbb E\,\mathrm{softplus}(-f(y))`;
* loss ``"wgan"``: critic :math:`\mathbb E f(y) - \mathbb E f(x)` (+ penalty), generator :math:`-\mathbb E f(y)`;
* constraint ``"none"``, ``"sn"`` (every critic layer divided by its largest singular value, one
  power iteration per step with a persistent vector), ``"gp"`` (:math:`\lambda\,\mathbb E(\lVert\nabla
  f(\hat x)\rVert - 1)^2` at real-fake interpolates, :math:`\lambda = 10`) or ``"clip"`` (every critic
  weight clamped to :math:`[-c, c]` after each critic step, :math:`c = 0.01`).

Common random numbers: all members of one seed start from the same generator and critic weights and
see the same real batches and noise, so two methods of one seed differ only by what the grid varies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from wganbook import data as wdata
from wganbook import metrics as wmetrics
from wganbook.lab import plotting, sweeps
from wganbook.models import resolve_device

__all__ = [
    "SETTINGS",
    "METHODS",
    "METHOD_KEYS",
    "LOSSES",
    "CONSTRAINTS",
    "Member",
    "members",
    "train_grid",
    "train_by_seed",
    "merge",
    "failure_rates",
    "outcome_table",
    "loss_and_constraint_effects",
    "failure_curve",
    "plot_failure_map",
    "plot_failure_curves",
    "plot_samples",
    "GRID_DATASETS",
    "class_coverage",
    "digits_schedule",
    "plot_digit_samples",
]

#: The optimiser settings of SNGAN (Miyato et al. 2018, Table 1), each an Adam learning rate (critic and
#: generator), betas and critic steps per generator step. A is WGAN-GP's setting, C DCGAN's; D-F
#: are the aggressive ones (a ten times larger rate; F with momentum 0.9).
SETTINGS: Dict[str, Dict[str, Any]] = {
    "A": {"lr": 1e-4, "betas": (0.5, 0.9), "n_critic": 5},
    "B": {"lr": 1e-4, "betas": (0.5, 0.999), "n_critic": 1},
    "C": {"lr": 2e-4, "betas": (0.5, 0.999), "n_critic": 1},
    "D": {"lr": 1e-3, "betas": (0.5, 0.9), "n_critic": 5},
    "E": {"lr": 1e-3, "betas": (0.5, 0.999), "n_critic": 5},
    "F": {"lr": 1e-3, "betas": (0.9, 0.999), "n_critic": 5},
}

LOSSES = ("ns", "wgan")
CONSTRAINTS = ("none", "sn", "gp", "clip")

#: The methods of the grid, each a loss and a constraint on the critic. Two pairs share a loss and differ
#: only by the constraint (GAN-NS / GAN-NS + SN, WGAN without constraint / WGAN-GP).
METHODS: Dict[str, Dict[str, str]] = {
    "GAN-NS": {"loss": "ns", "constraint": "none"},
    "GAN-NS + SN": {"loss": "ns", "constraint": "sn"},
    "WGAN, no constraint": {"loss": "wgan", "constraint": "none"},
    "WGAN-GP": {"loss": "wgan", "constraint": "gp"},
    "WGAN-clip": {"loss": "wgan", "constraint": "clip"},
}

#: Short keys of the methods (for names in code and glued values).
METHOD_KEYS: Dict[str, str] = {
    "GAN-NS": "gan_ns",
    "GAN-NS + SN": "gan_ns_sn",
    "WGAN, no constraint": "wgan_free",
    "WGAN-GP": "wgan_gp",
    "WGAN-clip": "wgan_clip",
}

_LAM, _CLIP, _EPS = 10.0, 0.01, 1e-8

#: The datasets a grid trains on (the two Gaussian-mixture toys and scikit-learn's 8x8 digits, flattened).
GRID_DATASETS = ("8gaussians", "25gaussians", "digits")
#: Noise and data dimensions of the networks, per dataset.
_DIMS = {"8gaussians": (2, 2), "25gaussians": (2, 2), "digits": (16, 64)}
#: Digits: a class counts as covered when at least this share of a perfect generator's samples of it
#: is classified as it with at least ``_CONFIDENCE`` (the toys' rule, with the classifier for a radius).
_MIN_SHARE, _CONFIDENCE = 0.2, 0.9


@dataclass(frozen=True)
class Member:
    """One member of the grid: a method, an optimiser setting and a seed."""

    method: str
    setting: str
    seed: int

    @property
    def loss(self) -> str:
        return METHODS[self.method]["loss"]

    @property
    def constraint(self) -> str:
        return METHODS[self.method]["constraint"]


def _check_names(name: str, values, allowed) -> List[str]:
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise TypeError(f"{name} must be a non-empty list, got {values!r}")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"unknown {name} {bad}; {name} must be among: {', '.join(map(repr, allowed))}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must be distinct, got {list(values)}")
    return list(values)


def members(methods: Sequence[str], settings: Sequence[str], seeds: Sequence[int]) -> List[Member]:
    """Every combination ``method x setting x seed``, in that order (the seed varies fastest).

    Raises
    ------
    ValueError
        An unknown method or setting (naming the allowed ones), a repeated entry or a negative seed.
    """
    methods = _check_names("methods", methods, tuple(METHODS))
    settings = _check_names("settings", settings, tuple(SETTINGS))
    if isinstance(seeds, str) or not isinstance(seeds, Sequence) or not seeds:
        raise TypeError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative integers, got {list(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    return [Member(m, s, int(r)) for m in methods for s in settings for r in seeds]


# ---------------------------------------------------------------------------------------------
# Batched networks: weight (E, in, out), bias (E, 1, out); x (E, B, in)
# ---------------------------------------------------------------------------------------------
def _init_layers(dims: Sequence[int], gen: torch.Generator) -> List[List[torch.Tensor]]:
    """He-uniform weights and zero biases (as ``wganbook.models.MLP``), for one seed."""
    out = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        gain = math.sqrt(2.0) if i < len(dims) - 2 else 1.0
        bound = gain * math.sqrt(3.0 / a)
        out.append([(torch.rand(a, b, generator=gen) * 2 - 1) * bound, torch.zeros(1, b)])
    return out


def _stack(per_member: List[List[List[torch.Tensor]]], device) -> List[torch.Tensor]:
    flat = []
    for layer in range(len(per_member[0])):
        for j in range(2):
            flat.append(torch.stack([m[layer][j] for m in per_member]).to(device).contiguous().requires_grad_(True))
    return flat


def _forward(
    params: Sequence[torch.Tensor], x: torch.Tensor, scale: Optional[List[torch.Tensor]] = None, squash: bool = False
) -> torch.Tensor:
    """ReLU MLP; ``scale[l]`` (E, 1, 1) divides layer ``l``'s weight (spectral normalisation);
    ``squash``: a tanh on the output (images in [-1, 1])."""
    n = len(params) // 2
    for i in range(n):
        w, b = params[2 * i], params[2 * i + 1]
        if scale is not None:
            w = w / scale[i]
        x = torch.baddbmm(b, x, w)
        if i < n - 1:
            x = torch.relu(x)
    return torch.tanh(x) if squash else x


def digits_schedule(steps: int) -> Dict[str, int]:
    """The digits grid's schedule from the toy grid's generator steps: a quarter of them (at least 2),
    with ten evaluations of 1 000 generated images each (``train_grid``'s ``steps``, ``eval_every``, ``n_eval``)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    d = max(2, int(steps) // 4)
    return {"steps": d, "eval_every": max(1, d // 10), "n_eval": 1000}


def _real_sampler(dataset: str):
    """``(n, generator) -> (n, d)`` real batches: the toy's sampler, or digits drawn uniformly with
    replacement from the 1 797 flattened images (in [-1, 1])."""
    if dataset != "digits":
        return lambda n, g: wdata.sample_toy(dataset, n, generator=g).to(torch.get_default_dtype())
    pool = wdata.load_images("digits")[0].flatten(1).to(torch.get_default_dtype())
    return lambda n, g: pool[torch.randint(pool.shape[0], (n,), generator=g)]


def class_coverage(images: torch.Tensor, dataset: str = "digits", features=None) -> dict:
    r"""Classes of an image dataset that generated images cover, and the share of confident ones.

    The toys' two questions (:func:`wganbook.metrics.mode_coverage`), with the book's classifier
    (:class:`wganbook.metrics.ClassifierFeatures`) in place of the distance to a mode centre: an image
    is *confident* when the classifier gives its most likely class a probability of at least 0.9;
    class :math:`k` is *covered* when at least :math:`\max(1, \lceil 0.2\, n / K \rceil)` of the
    :math:`n` images are confident and of class :math:`k`, a fifth of a perfect generator's share.

    Parameters
    ----------
    images : torch.Tensor, shape (n, C, H, W) or (n, C * H * W)
        Images in [-1, 1] (flattened ones are reshaped to the dataset's image shape).
    dataset : str
        An image dataset of ``wganbook.data.IMAGE_DATASETS``.
    features : ClassifierFeatures, optional
        The classifier (default: ``ClassifierFeatures(dataset)``).

    Returns
    -------
    dict
        ``{"modes": covered classes, "high_quality": share of confident images, "total_modes": K,
        "counts": confident images per class}``.
    """
    if dataset not in wdata.IMAGE_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; dataset must be one of: {', '.join(wdata.IMAGE_DATASETS)}")
    shape = wdata.image_shape(dataset)
    x = torch.as_tensor(images).detach().to("cpu", torch.float32)
    if x.ndim == 2 and x.shape[1] == math.prod(shape):
        x = x.view(-1, *shape)
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape) or x.shape[0] < 1:
        raise ValueError(
            f"images must have shape (n, {', '.join(map(str, shape))}) or (n, {math.prod(shape)}), "
            f"got {tuple(images.shape)}"
        )
    clf = features if features is not None else wmetrics.ClassifierFeatures(dataset)
    weights = getattr(clf.model, "parameters", None)  # the classifier's dtype (float64 under that default)
    x = x.to(next(weights()).dtype) if weights is not None else x
    with torch.no_grad():
        probs = torch.cat(
            [torch.softmax(clf.model(x[i : i + 1000].to(clf.device)), 1).cpu() for i in range(0, x.shape[0], 1000)]
        )
    top, label = probs.max(1)
    k = probs.shape[1]
    sure = top >= _CONFIDENCE
    counts = torch.bincount(label[sure], minlength=k)
    need = max(1, math.ceil(_MIN_SHARE * x.shape[0] / k))
    return {
        "modes": int((counts >= need).sum()),
        "high_quality": float(sure.double().mean()),
        "total_modes": int(k),
        "counts": [int(v) for v in counts],
    }


class _Adam:
    """Adam with a learning rate, betas and step count per member (``torch.optim.Adam``'s update)."""

    def __init__(self, params, lr, b1, b2):
        self.params = list(params)
        self.lr, self.b1, self.b2 = lr, b1, b2  # (E,)
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = torch.zeros_like(lr)

    @torch.no_grad()
    def step(self, grads, active: torch.Tensor) -> None:
        """Update the members where ``active`` (E,) is true; the others keep parameters and state."""
        act = active.to(self.t.dtype)
        self.t += act
        t = self.t.clamp(min=1)
        # per member: m += (1 - b1)(g - m), v += (1 - b2)(g^2 - v), p -= lr / bc1 * m / (sqrt(v / bc2) + eps)
        c1, c2 = act * (1 - self.b1), act * (1 - self.b2)
        step = act * self.lr / (1 - self.b1**t)
        rbc2 = 1 / (1 - self.b2**t).sqrt()
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            shape = (-1,) + (1,) * (p.ndim - 1)
            m.add_((g - m) * c1.view(shape))
            v.add_((g * g - v) * c2.view(shape))
            p.sub_(step.view(shape) * m / (v.sqrt() * rbc2.view(shape) + _EPS))


def _power_iteration(weights, us, vs) -> List[torch.Tensor]:
    """One power-iteration step per layer (``torch``'s ``spectral_norm``: W of shape (out, in)),
    updating ``us``/``vs`` in place; returns the singular-value estimates (E, 1, 1)."""
    sig = []
    for w, u, v in zip(weights, us, vs):
        wt = w.transpose(1, 2)  # (E, out, in): torch's layout
        with torch.no_grad():
            u.copy_(F.normalize(torch.bmm(wt, v.unsqueeze(-1)).squeeze(-1), dim=1, eps=1e-12))
            v.copy_(F.normalize(torch.bmm(wt.transpose(1, 2), u.unsqueeze(-1)).squeeze(-1), dim=1, eps=1e-12))
        s = torch.einsum("eo,eoi,ei->e", u, wt, v)
        sig.append(s.view(-1, 1, 1))
    return sig


def _critic_losses(loss_ns: torch.Tensor, f_real: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    """Per-member critic loss (E,) without penalty; ``loss_ns`` (E,) is true for the GAN members."""
    ns = F.softplus(-f_real).mean(1) + F.softplus(f_fake).mean(1)
    w = f_fake.mean(1) - f_real.mean(1)
    return torch.where(loss_ns, ns, w)


def _generator_losses(loss_ns: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    return torch.where(loss_ns, F.softplus(-f_fake).mean(1), -f_fake.mean(1))


def train_grid(
    grid: Sequence[Member],
    dataset: str = "25gaussians",
    steps: int = 2000,
    batch_size: int = 64,
    width: int = 64,
    depth: int = 3,
    eval_every: int = 0,
    n_eval: int = 2048,
    eval_seed: int = 12345,
    lr_scale: float = 1.0,
    device: Any = "cpu",
) -> Dict[str, Any]:
    r"""Train every member of ``grid`` for ``steps`` generator steps; evaluate its mode coverage.

    Per generator step, every member makes ``n_critic`` critic steps (its setting's; the loop runs
    the largest, and a member with fewer skips the rest: its parameters and Adam state stay), then
    one generator step. Members of seed :math:`s` share their initial weights and their draws (a
    CPU generator seeded with :math:`s`). A member whose parameters or losses become non-finite is
    *diverged*: it stops training and counts as a failure.

    Parameters
    ----------
    grid : list of Member
        From :func:`members`.
    dataset : str
        ``"8gaussians"``, ``"25gaussians"`` or ``"digits"`` (:data:`GRID_DATASETS`).
    steps : int
        Generator steps (at least 1).
    batch_size, width, depth : int
        Batch size, hidden units per layer and hidden layers of both networks (generator noise: 2-D
        for the toys, 16-D for the digits).
    eval_every : int
        Also evaluate every member every that many generator steps (0: only at the end).
    n_eval : int
        Generated samples per evaluation (:func:`wganbook.metrics.mode_coverage` for the toys,
        :func:`class_coverage` for the digits: "modes" are then the digits covered).
    eval_seed : int
        Seed of the evaluation noise (the same for every member).
    lr_scale : float
        Factor on every setting's learning rate (> 0; 1 = SNGAN's rates).
    device : str or torch.device
        Where the networks train (``"cpu"``, ``"cuda"``, ...; ``"auto"``: CUDA when available). The
        draws come from CPU generators, so a seed's draws are the same on every device.

    Returns
    -------
    dict
        ``{"members": grid, "modes": (E,) int array, "high_quality": (E,) array, "diverged": (E,) bool
        array (step + 1 of divergence or 0), "total_modes": K, "curve": {"steps": [...], "modes": (T, E)
        array, "high_quality": (T, E) array}, "lr_scale": lr_scale, "samples": (E, 512, d) array of final samples, "state":
        {"generator": [...], "critic": [...]}}`` (the final weights and biases, stacked over members:
        weight ``(E, in, out)``, bias ``(E, 1, out)``).
    """
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence) or not grid:
        raise TypeError("grid must be a non-empty list of Member (see robustness.members)")
    if not all(isinstance(m, Member) for m in grid):
        raise TypeError("grid must hold Member entries (see robustness.members)")
    if dataset not in GRID_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; dataset must be one of: {', '.join(GRID_DATASETS)}")
    for name, v, lo in (
        ("steps", steps, 1),
        ("batch_size", batch_size, 1),
        ("width", width, 1),
        ("depth", depth, 1),
        ("eval_every", eval_every, 0),
        ("n_eval", n_eval, 1),
        ("eval_seed", eval_seed, 0),
    ):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if isinstance(lr_scale, bool) or not isinstance(lr_scale, (int, float)) or not lr_scale > 0:
        raise ValueError(f"lr_scale must be a number > 0, got {lr_scale!r}")
    dev = resolve_device(device)
    E = len(grid)
    seeds = sorted({m.seed for m in grid})
    sidx = torch.tensor([seeds.index(m.seed) for m in grid])
    sidx_dev = sidx.to(dev)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    z_dim, x_dim = _DIMS[dataset]
    image = dataset in wdata.IMAGE_DATASETS
    sample_real = _real_sampler(dataset)
    clf = wmetrics.ClassifierFeatures(dataset) if image else None
    gdims = [z_dim] + [width] * depth + [x_dim]
    cdims = [x_dim] + [width] * depth + [1]
    init = [(_init_layers(gdims, g), _init_layers(cdims, g)) for g in gens]
    G = _stack([init[i][0] for i in sidx.tolist()], dev)
    D = _stack([init[i][1] for i in sidx.tolist()], dev)
    st = [SETTINGS[m.setting] for m in grid]
    lr = torch.tensor([s["lr"] * float(lr_scale) for s in st], device=dev)
    b1 = torch.tensor([s["betas"][0] for s in st], device=dev)
    b2 = torch.tensor([s["betas"][1] for s in st], device=dev)
    ncrit = torch.tensor([s["n_critic"] for s in st], device=dev)
    loss_ns = torch.tensor([m.loss == "ns" for m in grid], device=dev)
    sn = torch.tensor([m.constraint == "sn" for m in grid], device=dev)
    gp = torch.tensor([m.constraint == "gp" for m in grid], device=dev)
    clip = torch.tensor([m.constraint == "clip" for m in grid], device=dev)
    opt_g, opt_d = _Adam(G, lr, b1, b2), _Adam(D, lr.clone(), b1, b2)
    # spectral normalisation: persistent u (E, out) and v (E, in) per critic layer, torch's initialisation
    # (drawn once per seed, layer by layer: u then v, and shared by the seed's members)
    uv = [
        [
            (
                F.normalize(torch.randn(w.shape[1], generator=g), dim=0),
                F.normalize(torch.randn(w.shape[0], generator=g), dim=0),
            )
            for w, _ in init[i][1]
        ]
        for i, g in enumerate(gens)
    ]
    us = [torch.stack([uv[i][k][0] for i in sidx.tolist()]).to(dev) for k in range(len(cdims) - 1)]
    vs = [torch.stack([uv[i][k][1] for i in sidx.tolist()]).to(dev) for k in range(len(cdims) - 1)]
    with torch.no_grad():
        for _ in range(15):  # torch's spectral_norm makes 15 power iterations at registration
            _power_iteration(D[0::2], us, vs)
    alive = torch.ones(E, dtype=torch.bool, device=dev)
    diverged = np.zeros(E, dtype=int)
    eval_z = torch.randn(n_eval, z_dim, generator=torch.Generator().manual_seed(eval_seed)).to(dev).expand(E, -1, -1)
    curve: Dict[str, list] = {"steps": [], "modes": [], "high_quality": []}

    def scales(idx: torch.Tensor) -> List[torch.Tensor]:
        """Spectral-norm divisors of members ``idx`` (one power iteration for those members; 1 where
        a member has no spectral normalisation)."""
        ws = [w[idx] for w in D[0::2]]
        u_i, v_i = [u[idx] for u in us], [v[idx] for v in vs]
        sig = _power_iteration(ws, u_i, v_i)
        with torch.no_grad():
            for u, v, a, b in zip(us, vs, u_i, v_i):
                u[idx], v[idx] = a, b
        one = torch.ones(len(idx), 1, 1, device=dev)
        return [torch.where(sn[idx].view(-1, 1, 1), s, one) for s in sig]

    def evaluate():
        with torch.no_grad():
            x = _forward(G, eval_z, squash=image).cpu()
        modes, hq = [], []
        for e in range(E):
            if not alive[e] or not torch.isfinite(x[e]).all():
                modes.append(0)
                hq.append(0.0)
                continue
            cov = class_coverage(x[e], dataset, clf) if image else wmetrics.mode_coverage(x[e], dataset)
            modes.append(cov["modes"])
            hq.append(cov["high_quality"])
        return np.array(modes), np.array(hq), x

    def kill(bad: torch.Tensor, step: int) -> None:
        newly = bad & alive
        if newly.any():
            for e in torch.nonzero(newly).flatten().tolist():
                diverged[e] = step + 1
            alive.logical_and_(~newly)
            with torch.no_grad():  # a diverged member stops: zero weights and optimiser state
                for p in list(G) + list(D) + opt_g.m + opt_g.v + opt_d.m + opt_d.v:
                    p[newly] = 0.0

    for step in range(steps):
        for i in range(int(ncrit.max())):
            active = alive & (ncrit > i)
            real_all = torch.stack([sample_real(batch_size, g) for g in gens]).to(dev)
            z_all = torch.stack([torch.randn(batch_size, z_dim, generator=g) for g in gens]).to(dev)
            t_all = torch.stack([torch.rand(batch_size, 1, generator=g) for g in gens]).to(dev)
            idx = torch.nonzero(active).flatten()
            if len(idx) == 0:
                continue
            real, z = real_all[sidx_dev[idx]], z_all[sidx_dev[idx]]
            Ds = [p[idx] for p in D]
            with torch.no_grad():
                fake = _forward([p[idx] for p in G], z, squash=image)
            sc = scales(idx)
            f_real, f_fake = _forward(Ds, real, sc).squeeze(-1), _forward(Ds, fake, sc).squeeze(-1)
            loss = _critic_losses(loss_ns[idx], f_real, f_fake)
            sub = torch.nonzero(gp[idx]).flatten()  # positions (within idx) of the penalised members
            if len(sub):
                t = t_all[sidx_dev[idx[sub]]]
                xh = (t * real[sub] + (1 - t) * fake[sub]).requires_grad_(True)
                f_h = _forward([p[sub] for p in Ds], xh, [s[sub] for s in sc])
                (gx,) = torch.autograd.grad(f_h.sum(), xh, create_graph=True)
                pen = torch.zeros_like(loss)
                pen[sub] = _LAM * ((gx.norm(dim=2) - 1) ** 2).mean(1)
                loss = loss + pen
            bad = torch.zeros(E, dtype=torch.bool, device=dev)
            bad[idx] = ~torch.isfinite(loss.detach())
            kill(bad, step)
            loss = torch.where(alive[idx], loss, torch.zeros_like(loss))
            grads = torch.autograd.grad(loss.sum(), D)
            upd = active & alive
            opt_d.step(grads, upd)
            with torch.no_grad():
                cm = (clip & upd).view(-1, 1, 1)
                for p in D:
                    p.copy_(torch.where(cm, p.clamp(-_CLIP, _CLIP), p))
        z = torch.stack([torch.randn(batch_size, z_dim, generator=g) for g in gens]).to(dev)[sidx_dev]
        everyone = torch.arange(E, device=dev)
        sc = [s.detach() for s in scales(everyone)]
        g_loss = _generator_losses(loss_ns, _forward(D, _forward(G, z, squash=image), sc).squeeze(-1))
        kill(~torch.isfinite(g_loss.detach()), step)
        g_loss = torch.where(alive, g_loss, torch.zeros_like(g_loss))
        grads = torch.autograd.grad(g_loss.sum(), G)
        opt_g.step(grads, alive.clone())
        with torch.no_grad():
            finite = torch.stack([torch.isfinite(p).flatten(1).all(1) for p in list(G) + list(D)]).all(0)
        kill(~finite, step)
        if eval_every and ((step + 1) % eval_every == 0) and step + 1 < steps:
            m, h, _ = evaluate()
            curve["steps"].append(step + 1)
            curve["modes"].append(m)
            curve["high_quality"].append(h)
    m, h, x = evaluate()
    curve["steps"].append(steps)
    curve["modes"].append(m)
    curve["high_quality"].append(h)
    return {
        "members": list(grid),
        "modes": m,
        "high_quality": h,
        "diverged": diverged,
        "total_modes": int(clf.model.head.out_features) if image else int(wmetrics.mode_centres(dataset)[0].shape[0]),
        "lr_scale": float(lr_scale),
        "curve": {
            "steps": curve["steps"],
            "modes": np.stack(curve["modes"]),
            "high_quality": np.stack(curve["high_quality"]),
        },
        "samples": x[:, :512].numpy().copy(),
        "state": {"generator": [p.detach().cpu() for p in G], "critic": [p.detach().cpu() for p in D]},
    }


def _train_one_seed(item) -> Dict[str, Any]:
    grid, kwargs = item
    return train_grid(grid, **kwargs)


def merge(parts: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """One result from several :func:`train_grid` results (of the same steps and evaluations)."""
    if not parts:
        raise ValueError("parts must hold at least one train_grid result")
    steps = [list(p["curve"]["steps"]) for p in parts]
    if any(s != steps[0] for s in steps) or len({p["lr_scale"] for p in parts}) > 1:
        raise ValueError("the parts must share their evaluation steps and lr_scale")
    cat = np.concatenate
    return {
        "members": [m for p in parts for m in p["members"]],
        "modes": cat([p["modes"] for p in parts]),
        "high_quality": cat([p["high_quality"] for p in parts]),
        "diverged": cat([p["diverged"] for p in parts]),
        "total_modes": parts[0]["total_modes"],
        "lr_scale": parts[0]["lr_scale"],
        "curve": {
            "steps": steps[0],
            "modes": cat([p["curve"]["modes"] for p in parts], axis=1),
            "high_quality": cat([p["curve"]["high_quality"] for p in parts], axis=1),
        },
        "samples": cat([p["samples"] for p in parts]),
        "state": {
            key: [torch.cat([p["state"][key][k] for p in parts]) for k in range(len(parts[0]["state"][key]))]
            for key in ("generator", "critic")
        },
    }


def train_by_seed(
    methods: Sequence[str],
    settings: Sequence[str],
    seeds: Sequence[int],
    workers: Optional[int] = None,
    scheduler: Optional[str] = None,
    **kwargs,
) -> Dict[str, Any]:
    """The grid ``methods x settings x seeds``, one :func:`train_grid` ensemble per seed, the seeds
    spread over the worker processes of :func:`wganbook.lab.sweeps.map_runs` (or a Dask cluster),
    merged (:func:`merge`). ``kwargs`` go to :func:`train_grid`; they are checked before any run.
    """
    members(methods, settings, seeds)  # refuse bad names before any work
    probe = dict(kwargs)
    train_grid(members(methods[:1], settings[:1], seeds[:1]), **{**probe, "steps": 1, "n_eval": 1, "eval_every": 0})
    items = [(members(methods, settings, [s]), dict(kwargs)) for s in seeds]
    parts = sweeps.map_runs(
        _train_one_seed,
        items,
        workers=workers,
        describe=lambda it: f"seed {it[0][0].seed}",
        device=kwargs.get("device", "cpu"),
        scheduler=scheduler,
    )
    return merge(parts)


def failure_rates(result: Mapping[str, Any], min_modes: Optional[int] = None) -> Dict[tuple, float]:
    """Failure rate per ``(method, setting)`` over seeds: a run fails when it diverged or covers
    fewer than ``min_modes`` modes (default: half of them, rounded up)."""
    k = result["total_modes"]
    need = math.ceil(k / 2) if min_modes is None else int(min_modes)
    fails: Dict[tuple, list] = {}
    for e, mem in enumerate(result["members"]):
        failed = bool(result["diverged"][e]) or int(result["modes"][e]) < need
        fails.setdefault((mem.method, mem.setting), []).append(failed)
    return {key: float(np.mean(v)) for key, v in fails.items()}


def outcome_table(result: Mapping[str, Any]) -> List[dict]:
    """One row per ``(method, setting)``: failure rate, median modes covered and median
    high-quality share over seeds."""
    rates = failure_rates(result)
    rows = []
    for method, setting in rates:
        idx = [e for e, m in enumerate(result["members"]) if (m.method, m.setting) == (method, setting)]
        rows.append(
            {
                "method": method,
                "setting": setting,
                "failure": rates[(method, setting)],
                "modes": float(np.median(result["modes"][idx])),
                "high_quality": float(np.median(result["high_quality"][idx])),
            }
        )
    return rows


def loss_and_constraint_effects(result: Mapping[str, Any]) -> Dict[str, float]:
    """The thesis in numbers: each method's mean failure rate over the grid (``failure[method]``), and the effects.

    * ``constraint_gan`` = ``failure[GAN-NS] - failure[GAN-NS + SN]``: what the constraint does to one loss;
    * ``constraint_wgan`` = ``failure[WGAN, no constraint] - failure[WGAN-GP]``: same for the other loss;
    * ``constraint_pooled``: the mean of the two;
    * ``loss_constrained`` = ``abs(failure[GAN-NS + SN] - failure[WGAN-GP])``: what the loss changes
      between two constrained critics.
    """
    rates = failure_rates(result)
    per: Dict[str, list] = {}
    for (method, _), r in rates.items():
        per.setdefault(method, []).append(r)
    mean = {m: float(np.mean(v)) for m, v in per.items()}
    need = ("GAN-NS", "GAN-NS + SN", "WGAN, no constraint", "WGAN-GP")
    missing = [m for m in need if m not in mean]
    if missing:
        raise ValueError(f"the grid must include the methods {', '.join(need)}; missing {missing}")
    return {
        **{f"failure[{m}]": v for m, v in mean.items()},
        "constraint_gan": mean["GAN-NS"] - mean["GAN-NS + SN"],
        "constraint_wgan": mean["WGAN, no constraint"] - mean["WGAN-GP"],
        "constraint_pooled": 0.5 * (mean["GAN-NS"] + mean["WGAN, no constraint"])
        - 0.5 * (mean["GAN-NS + SN"] + mean["WGAN-GP"]),
        "loss_constrained": abs(mean["GAN-NS + SN"] - mean["WGAN-GP"]),
    }


def failure_curve(result: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    """Each method's failure rate over all its settings and seeds at every evaluation step
    (``result["curve"]``): ``{method: (T,) array}``, with ``"steps"`` the evaluation steps."""
    out: Dict[str, Any] = {"steps": np.asarray(result["curve"]["steps"])}
    need = math.ceil(result["total_modes"] / 2)
    div_step = np.asarray(result["diverged"])
    for method in dict.fromkeys(m.method for m in result["members"]):
        idx = [e for e, m in enumerate(result["members"]) if m.method == method]
        modes = np.asarray(result["curve"]["modes"])[:, idx]
        dead = (div_step[idx] > 0)[None, :] & (div_step[idx][None, :] <= out["steps"][:, None])
        out[method] = ((modes < need) | dead).mean(axis=1)
    return out


def plot_failure_map(ax, result: Mapping[str, Any]):
    """Methods (rows) x settings (columns), coloured by failure rate, each cell annotated with the
    failed runs out of the seeds."""
    rates = failure_rates(result)
    methods = list(dict.fromkeys(m for m, _ in rates))
    settings = list(dict.fromkeys(s for _, s in rates))
    n_seeds = len({m.seed for m in result["members"]})
    grid = np.array([[rates[(m, s)] for s in settings] for m in methods])
    ax.imshow(grid, cmap="Reds", vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(len(methods)):
        for j in range(len(settings)):
            v = grid[i, j]
            ax.text(
                j, i, f"{round(v * n_seeds)}/{n_seeds}", ha="center", va="center", color="white" if v > 0.6 else "black"
            )
    ax.set_xticks(range(len(settings)), [f"{s}\n{_setting_label(s, result.get('lr_scale', 1.0))}" for s in settings])
    ax.set_yticks(range(len(methods)), methods)
    ax.set_xlabel("setting: learning rate; β1, β2; critic steps")
    ax.tick_params(length=0)
    return ax


def _setting_label(name: str, lr_scale: float = 1.0) -> str:
    s = SETTINGS[name]
    return f"{s['lr'] * lr_scale:g}\n{s['betas'][0]:g}, {s['betas'][1]:g}\n{s['n_critic']}"


def plot_failure_curves(ax, result: Mapping[str, Any]):
    """Each method's failure rate (over its settings and seeds) against generator steps."""
    curve = failure_curve(result)
    for i, method in enumerate(k for k in curve if k != "steps"):
        ax.plot(curve["steps"], curve[method], "o-", ms=3, color=f"C{i}", label=method)
    ax.set(xlabel="generator steps", ylabel="failure rate", ylim=(-0.03, 1.03))
    ax.legend(ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    return ax


def plot_samples(axes, result: Mapping[str, Any], settings: Sequence[str], seed: int, dataset: str, lim: float = 1.8):
    """The final samples of every method (rows of ``axes``) in ``settings`` (columns) for one seed,
    over the real data, each panel titled with the method, the setting and the modes covered."""
    methods = list(dict.fromkeys(m.method for m in result["members"]))
    axes = np.asarray(axes).reshape(len(methods), len(settings))
    real = wdata.sample_toy(dataset, 512, seed=10_000 + int(seed))
    k = result["total_modes"]
    for i, method in enumerate(methods):
        for j, setting in enumerate(settings):
            e = result["members"].index(Member(method, setting, int(seed)))
            ax = axes[i, j]
            fake = result["samples"][e]
            fake = fake[np.isfinite(fake).all(axis=1)]
            ax.scatter(real[:, 0], real[:, 1], s=2, c=plotting.REAL_COLOR, alpha=0.5)
            ax.scatter(fake[:, 0], fake[:, 1], s=2, c=plotting.FAKE_COLOR, alpha=0.5)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[], yticks=[], aspect="equal")
            status = "diverged" if result["diverged"][e] else f"{int(result['modes'][e])}/{k} modes"
            ax.set_title(f"{method}\n{setting}: {status}", fontsize=plotting.MIN_FONT_PT)
    return axes


def plot_digit_samples(axes, result: Mapping[str, Any], settings: Sequence[str], seed: int, n: int = 4):
    """The final images of every method (rows of ``axes``) in ``settings`` (columns) for one seed of a
    digits grid, ``n x n`` of them per panel, each panel titled with the method, the setting and the
    classes covered."""
    methods = list(dict.fromkeys(m.method for m in result["members"]))
    axes = np.asarray(axes).reshape(len(methods), len(settings))
    k = result["total_modes"]
    for i, method in enumerate(methods):
        for j, setting in enumerate(settings):
            e = result["members"].index(Member(method, setting, int(seed)))
            imgs = np.nan_to_num(result["samples"][e][: n * n]).reshape(n, n, 8, 8)
            mosaic = np.pad(imgs, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-1.0)
            ax = axes[i, j]
            ax.imshow(
                mosaic.transpose(0, 2, 1, 3).reshape(n * 10, n * 10),
                cmap="gray",
                vmin=-1,
                vmax=1,
                interpolation="nearest",
            )
            ax.set(xticks=[], yticks=[])
            status = "diverged" if result["diverged"][e] else f"{int(result['modes'][e])}/{k} classes"
            ax.set_title(f"{method}\n{setting}: {status}", fontsize=plotting.MIN_FONT_PT)
    return axes

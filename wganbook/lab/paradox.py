"""Chapter 6's experiments: generators trained on exact batch W1, critics' estimates against exact W1, the image variants of the batch-W1 paradox."""
from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np
import torch

from wganbook import duality, models, transport
from wganbook.batchw1 import _as_tensor, _draw, _flat64, _pos_int
from wganbook.data import seed_everything
from wganbook.metrics import ClassifierFeatures
from wganbook.objectives import METHODS
from wganbook.train.config import TrainConfig
from wganbook.train.history import estimate_vs_exact
from wganbook.train.loop import train

__all__ = [
    "train_exact_w1_generator",
    "evaluate_estimates",
    "classifier_embedding",
    "train_variant",
    "estimate_error",
]


def train_exact_w1_generator(generator: torch.nn.Module, images, steps: int, batch_size: int = 64,
                             lr: float = 1e-3, betas=(0.5, 0.999), seed: int = 0,
                             record_every: int = 50, embed: Optional[Callable] = None) -> Dict[str, list]:
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
    steps, batch_size = _pos_int(steps, "steps"), _pos_int(batch_size, "batch_size")
    record_every = _pos_int(record_every, "record_every")
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
def evaluate_estimates(method: str, critic: torch.nn.Module, real, fake, n_batches: int = 50,
                       batch_size: int = 64, seed: int = 0) -> Dict[str, np.ndarray]:
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
    n_batches, batch_size = _pos_int(n_batches, "n_batches"), _pos_int(batch_size, "batch_size")
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
        Passed to :func:`wganbook.train.train`.

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
        critic = models.make_critic(config.data, width=config.width, depth=config.depth,
                                    norm=config.norm, spectral=spectral)
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

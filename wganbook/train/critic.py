"""Fitting a critic against fixed data (a static critic), and the generator's best response to a frozen critic."""

from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from wganbook import objectives
from wganbook._util import Bool, Float, Int, check_value
from wganbook.models import resolve_device, sample_noise
from wganbook.schema import SCHEMA
from wganbook.train.history import _Recorder
from wganbook.train.loop import _loss_kwargs, _make_stream, _prepared_losses
from wganbook.transport import w1 as w1_fn

__all__ = [
    "fit_critic",
    "best_response",
]


# ---------------------------------------------------------------------------------------------
# static critic fitting
# ---------------------------------------------------------------------------------------------
def fit_critic(
    method: str,
    critic: nn.Module,
    real,
    fake,
    steps: int,
    batch_size: int = 256,
    seed: int = 0,
    record_every: Optional[int] = None,
    exact_w1: bool = False,
    device=None,
    track_grad_norm: bool = True,
    **hp,
) -> Dict[str, list]:
    r"""Train only a critic, with ``method``'s loss and optimiser, against fixed distributions.

    Each step draws a real and a fake minibatch and takes one optimiser step on

    .. math::

        L_C = \bar f(y) - \bar f(x) + \text{penalty}

    followed by the method's post-step (clipping). The result approximates the method's optimal
    critic between the two distributions (WGAN-GP Fig. 1a; value surfaces; static W1 estimates).

    Parameters
    ----------
    method : str
        A key of ``wganbook.objectives.METHODS``.
    critic : torch.nn.Module
        Trained in place.
    real, fake : torch.Tensor or callable
        Tensors (minibatches drawn by seeded epoch permutations; the whole tensor when
        ``batch_size`` >= its length) or callables ``n -> tensor`` (fresh samples).
    steps : int
        Critic steps.
    batch_size : int, optional
        Minibatch size.
    seed : int, optional
        Seed of the minibatch order and of the penalty's random points (global RNG untouched
        unless a callable uses it).
    record_every : int, optional
        Record statistics every that many steps (default: every step).
    exact_w1 : bool, optional
        Also record the exact W1 of the same minibatches at each record (``"w1_exact"``).
    device : str, optional
        Device (default: the critic's).
    track_grad_norm : bool, optional
        Record ``"grad_norm"`` (mean input-gradient norm at the real and fake points) also for
        methods without a penalty (one extra backward pass per step); penalised methods always
        report the mean norm at their penalty points.
    **hp
        Hyper-parameter overrides (``lr``, ``betas``, ``optimizer``, ``lam``, ``clip``, ``k``,
        ``p``, ``strategy``, ...); the rest are the method's defaults.

    Returns
    -------
    dict of str to list
        ``"step"``, ``"critic_loss"``, ``"w1_estimate"``, ``"penalty"``, ``"grad_norm"`` and, with
        ``exact_w1``, ``"w1_exact"``.

    Raises
    ------
    TrainingDiverged
        The training loop's divergence guard (its recorder, ``wganbook.train.history._Recorder``):
        a NaN or infinite loss, W1 estimate or penalty, or a loss or W1 estimate beyond
        ``DIVERGENCE_THRESHOLD``, checked every 50 records and at the end.
    """

    steps = check_value("steps", steps, Int(lo=1))
    batch_size = check_value("batch_size", batch_size, Int(lo=1))
    seed = check_value("seed", seed, SCHEMA["seed"])
    record_every = 1 if record_every is None else check_value("record_every", record_every, Int(lo=1))
    check_value("exact_w1", exact_w1, Bool())
    hp_full = objectives.resolve_hparams(method, **{k: v for k, v in hp.items() if v is not None})
    if device is None:
        p0 = next(critic.parameters(), None)
        dev = p0.device if p0 is not None else torch.device("cpu")
    else:
        dev = resolve_device(device)
        critic.to(dev)
    objectives.check_critic_for_method(method, critic, penalty=hp_full["penalty"])
    rng = torch.Generator().manual_seed(seed)
    noise = torch.Generator(device=dev)
    noise.manual_seed(seed + 7919)
    rs = _make_stream(real, batch_size, rng, dev, "real")
    fs = _make_stream(fake, batch_size, rng, dev, "fake")
    opt_c = _critic_optimizer(method, critic, hp_full)
    critic_step_loss, post_step = _prepared_losses(method, critic, hp_full, noise, track_grad_norm)
    columns = ("critic_loss", "w1_estimate", "penalty", "grad_norm")
    hist: Dict[str, list] = {"step": [], **{c: [] for c in columns}}
    if exact_w1:
        hist["w1_exact"] = []
    rec = _Recorder(hist, method, columns)  # the loop's recorder and divergence guard

    critic.train()
    for step in range(1, steps + 1):
        x = rs.next()
        y = fs.next()
        loss, stats = critic_step_loss(x, y)
        opt_c.zero_grad(set_to_none=True)
        loss.backward()
        opt_c.step()
        if post_step is not None:
            post_step()
        if step % record_every == 0 or step == steps:
            rec.add(step, critic_loss=loss, **stats)
            if exact_w1:
                hist["w1_exact"].append(
                    float(
                        w1_fn(
                            x.detach().flatten(1).double().cpu().numpy(), y.detach().flatten(1).double().cpu().numpy()
                        )
                    )
                )
            if len(rec.rows) >= 50:
                rec.flush()
    rec.flush()
    return hist


def _critic_optimizer(method: str, critic: nn.Module, hp: dict):
    dummy = nn.Linear(1, 1)  # make_optimizers builds both; only the critic's is used
    return objectives.make_optimizers(method, dummy, critic, **_loss_kwargs(hp))[1]


def best_response(
    method: str,
    critic: nn.Module,
    generator: nn.Module,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
    record_every: Optional[int] = None,
) -> Dict[str, list]:
    r"""Train only the generator against a frozen critic: its best response to that critic.

    Each step draws latent codes :math:`z_1..z_n` and takes an Adam step (betas ``(0.5, 0.999)``)
    on the method's generator loss (``wganbook.objectives.generator_loss``), e.g.

    .. math::

        L_G(\theta) = -\frac1n \sum_{j=1}^n f\bigl(G_\theta(z_j)\bigr) \quad\text{(WGAN)},
        \qquad
        \frac1n \sum_{j=1}^n \operatorname{softplus}\bigl(-f(G_\theta(z_j))\bigr)
        \quad\text{(gan-ns)},

    with the critic's parameters fixed. Both losses decrease in :math:`f` at every sample, so the
    optimal generator for a fixed critic puts all its mass where :math:`f` is largest: a sum of
    deltas at the critic's maxima (WGAN, Sec. 3), or, for a critic that grows without bound (a
    ReLU network extrapolates linearly), samples that run off to infinity. The critic's
    ``requires_grad`` flags are restored afterwards.

    Parameters
    ----------
    method : str
        A key of ``wganbook.objectives.METHODS`` except ``wgan-ct`` (whose generator loss needs
        real samples).
    critic : torch.nn.Module
        The frozen critic (not modified).
    generator : torch.nn.Module
        Trained in place (``z_dim`` attribute or ``sample_z`` method).
    steps : int
        Generator steps (>= 1).
    lr : float, optional
        Adam learning rate (> 0).
    batch_size : int, optional
        Latent codes per step.
    seed : int, optional
        Seed of the latent codes.
    record_every : int, optional
        Record every that many steps (default ``steps // 20``, at least 1).

    Returns
    -------
    dict of str to list
        ``"step"``, ``"score"`` (mean critic score of the batch's samples) and
        ``"generator_loss"``.
    """

    m = objectives.get_method(method)
    if m.name == "wgan-ct":
        raise ValueError(
            "method must be one whose generator loss needs only the fakes; wgan-ct "
            "needs real samples too: use one of " + ", ".join(k for k in objectives.METHODS if k != "wgan-ct")
        )
    if not isinstance(critic, nn.Module) or not isinstance(generator, nn.Module):
        raise TypeError("critic and generator must be torch.nn.Module")
    steps = check_value("steps", steps, Int(lo=1))
    batch_size = check_value("batch_size", batch_size, Int(lo=1))
    seed = check_value("seed", seed, SCHEMA["seed"])
    lr = check_value("lr", lr, Float(lo=0.0, lo_open=True))
    if record_every is None:
        record_every = max(1, steps // 20)
    record_every = check_value("record_every", record_every, Int(lo=1))
    params = [p for p in generator.parameters()]
    device = params[0].device if params else torch.device("cpu")
    rng = torch.Generator(device=device)
    rng.manual_seed(seed)
    opt = torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))
    flags = [p.requires_grad for p in critic.parameters()]
    hist: Dict[str, list] = {"step": [], "score": [], "generator_loss": []}
    try:
        for p in critic.parameters():
            p.requires_grad_(False)
        for step in range(1, steps + 1):
            fake = generator(sample_noise(generator, batch_size, rng, device))
            loss = objectives.generator_loss(m.name, critic, None, fake)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % record_every == 0 or step == steps:
                with torch.no_grad():
                    hist["step"].append(step)
                    hist["score"].append(float(critic(fake.detach()).mean()))
                    hist["generator_loss"].append(float(loss.detach()))
    finally:
        for p, f in zip(critic.parameters(), flags):
            p.requires_grad_(f)
    return hist

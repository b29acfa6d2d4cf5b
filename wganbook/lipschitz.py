r"""Lipschitz constraints and measurements of critics.

Constraints: weight clipping (WGAN), the gradient penalty (WGAN-GP, two-sided) and its
one-sided variant (WGAN-LP), the Wasserstein-divergence penalty (WGAN-div) with the six
sampling strategies of its ablation, and spectral normalisation (measured by
:func:`spectral_norms`; applied by ``wganbook.models`` via ``spectral=True``).

Measurements: per-sample input-gradient norms, an empirical Lipschitz constant over pairs,
per-layer gradient norms (WGAN-GP Fig. 1b) and the spectral norm of every weight matrix.

All penalties evaluate the critic at points built from **detached** inputs and take the norm
of the gradient of each sample, flattened to a vector; they are differentiable with respect to
the critic's parameters (``create_graph=True``), so adding them to the critic loss trains the
critic. Norms are computed as :math:`\sqrt{\sum g^2 + 10^{-12}}` so double back-propagation never
divides by zero.
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import nn

from wganbook._util import Float, check_value
from wganbook.transport import transport_plan

__all__ = [
    "SAMPLING_STRATEGIES",
    "clip_weights_",
    "sample_penalty_points",
    "gradient_penalty",
    "div_penalty",
    "input_gradient_norms",
    "empirical_lipschitz",
    "layer_gradient_norms",
    "spectral_norms",
    "share_at_bound",
    "singular_values",
    "stable_rank",
    "cross_sample_jacobian",
    "transport_alignment",
]

#: The six choices of the distribution :math:`r(x)` of penalty points in the WGAN-div
#: ablation (Wu et al. 2018), in the paper's order.
SAMPLING_STRATEGIES = ("real-fake", "real-real+fake-fake", "pooled-pairs", "real+fake", "fake", "real")

_EPS = 1e-12


# ----------------------------------------------------------------------------- helpers
def _scores(critic: nn.Module, x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Critic scores as a 1-D tensor of length n (accepts critics returning (n,) or (n, 1)).

    A shape or dtype error raised inside the critic's forward pass becomes a ``ValueError`` that
    names ``name`` (the argument the input came from) and its shape.
    """
    try:
        out = critic(x)
    except RuntimeError as exc:
        text = str(exc).strip()
        if isinstance(exc, torch.OutOfMemoryError) or not any(
            w in text.lower() for w in ("shape", "size", "dim", "dtype", "expected", "mat1")
        ):
            raise
        first = text.splitlines()[0]
        want = getattr(critic, "image_shape", None) or getattr(getattr(critic, "net", None), "in_dim", None)
        want = (
            f"(n, {', '.join(map(str, want))})"
            if isinstance(want, tuple)
            else f"(n, {want})"
            if isinstance(want, int)
            else "the sample shape the critic was built for"
        )
        raise ValueError(
            f"the critic cannot score {name} of shape {tuple(x.shape)} and dtype {x.dtype} "
            f"({first}); {name} must have shape {want}"
        ) from exc
    n = x.shape[0]
    if out.numel() != n:
        raise ValueError(f"critic must return one score per sample (shape ({n},)); got shape {tuple(out.shape)}")
    return out.reshape(n)


def _check_pair(real: torch.Tensor, fake: torch.Tensor) -> None:
    for name, t in (("real", real), ("fake", fake)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (n, ...); got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(
                f"{name} must be a floating-point tensor (e.g. torch.float32); got "
                f"dtype {t.dtype} (convert with {name}.float())"
            )
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape; got {tuple(real.shape)} and {tuple(fake.shape)}")
    if real.dim() < 2 or real.shape[0] < 1:
        raise ValueError(f"real and fake must have shape (n, ...) with n >= 1; got {tuple(real.shape)}")


def _check_strategy(strategy: str) -> str:
    if strategy not in SAMPLING_STRATEGIES:
        raise ValueError(
            f"unknown strategy {strategy!r}; strategy must be one of: " + ", ".join(map(repr, SAMPLING_STRATEGIES))
        )
    return strategy


def _check_critic(critic) -> None:
    if not callable(critic):
        raise TypeError(f"critic must be a torch.nn.Module (or a callable x -> scores); got {type(critic).__name__}")


def _uniform(n: int, like: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    """eps ~ U[0, 1] of shape (n, 1, ..., 1): one weight per sample, broadcast over its entries."""
    shape = (n,) + (1,) * (like.dim() - 1)
    dev = generator.device if generator is not None else like.device
    return torch.rand(shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


def _randperm(n: int, like: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    dev = generator.device if generator is not None else like.device
    return torch.randperm(n, generator=generator, device=dev).to(like.device)


def _flat_norms(g: torch.Tensor) -> torch.Tensor:
    r"""Per-sample Euclidean norms :math:`\sqrt{\sum g^2 + 10^{-12}}` of the flattened rows."""
    return torch.sqrt(g.reshape(g.shape[0], -1).pow(2).sum(1) + _EPS)


def _input_grads(critic: nn.Module, x: torch.Tensor, create_graph: bool) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = _scores(critic, x, "the penalty points (from real and fake)")
        (g,) = torch.autograd.grad(out.sum(), x, create_graph=create_graph)
    return g


# ----------------------------------------------------------------------------- clipping
def clip_weights_(module: nn.Module, c: float) -> nn.Module:
    r"""Clamp every parameter of ``module`` to :math:`[-c, c]`, in place (WGAN, Algorithm 1).

    .. math::

        w \leftarrow \min(\max(w, -c), c)\quad\text{for every parameter entry } w.

    This bounds the Lipschitz constant by some :math:`K(c, \text{architecture})`, not by 1.

    Parameters
    ----------
    module : torch.nn.Module
    c : float
        Clipping bound, ``c > 0`` (WGAN default 0.01).

    Returns
    -------
    torch.nn.Module
        ``module`` itself.
    """
    if isinstance(c, bool) or not isinstance(c, (int, float)):
        raise TypeError(f"c must be a positive float; got {c!r}")
    if not c > 0:
        raise ValueError(f"c must be > 0; got {c!r}")
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-c, c)
    return module


# ----------------------------------------------------------------------------- penalty points
def sample_penalty_points(
    real: torch.Tensor, fake: torch.Tensor, strategy: str = "real-fake", generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    r"""Draw the points :math:`x \sim r(x)` at which a gradient penalty is evaluated.

    With a real batch :math:`x_1..x_n`, a fake batch :math:`y_1..y_n` and one
    :math:`\varepsilon_i \sim U[0, 1]` per output point:

    - ``"real-fake"``: :math:`\varepsilon_i x_i + (1-\varepsilon_i) y_i` (WGAN-GP), n points;
    - ``"real-real+fake-fake"``: :math:`\varepsilon_i x_{\pi(i)} + (1-\varepsilon_i) x_{\pi(i+1)}` and
      the same within the fake batch (:math:`\pi` a random permutation, so no point is paired with
      itself when n > 1), 2n points;
    - ``"pooled-pairs"``: pool the 2n points, split a random permutation of the pool into n
      disjoint pairs :math:`(a_i, b_i)`, return :math:`\varepsilon_i a_i + (1-\varepsilon_i) b_i`, n points;
    - ``"real+fake"``: the raw real and fake samples, 2n points;
    - ``"fake"``: the raw fake samples; ``"real"``: the raw real samples, n points.

    Parameters
    ----------
    real, fake : torch.Tensor
        Batches of the same shape ``(n, ...)``; they are detached.
    strategy : str
        One of ``SAMPLING_STRATEGIES``.
    generator : torch.Generator, optional
        Random-number generator for :math:`\varepsilon` and the permutations.

    Returns
    -------
    torch.Tensor
        Detached points of shape ``(m, ...)``, m = n or 2n as listed above.
    """
    _check_pair(real, fake)
    _check_strategy(strategy)
    real, fake = real.detach(), fake.detach()
    n = real.shape[0]
    if strategy == "real-fake":
        eps = _uniform(n, real, generator)
        return eps * real + (1 - eps) * fake
    if strategy == "real-real+fake-fake":
        out = []
        for batch in (real, fake):
            idx = _randperm(n, batch, generator)
            eps = _uniform(n, batch, generator)
            out.append(eps * batch[idx] + (1 - eps) * batch[idx.roll(1)])
        return torch.cat(out)
    if strategy == "pooled-pairs":
        pool = torch.cat([real, fake])
        idx = _randperm(2 * n, pool, generator)
        eps = _uniform(n, pool, generator)
        return eps * pool[idx[:n]] + (1 - eps) * pool[idx[n:]]
    if strategy == "real+fake":
        return torch.cat([real, fake])
    if strategy == "fake":
        return fake.clone()
    return real.clone()


# ----------------------------------------------------------------------------- penalties
def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    center: float = 1.0,
    one_sided: bool = False,
    generator: Optional[torch.Generator] = None,
    strategy: str = "real-fake",
    return_norms: bool = False,
):
    r"""Gradient penalty of WGAN-GP (two-sided) or WGAN-LP (one-sided), without the weight λ.

    .. math::

        \mathrm{GP} = \frac1m\sum_{i=1}^m \big(\lVert\nabla_x f(\hat x_i)\rVert_2 - c\big)^2,
        \qquad
        \mathrm{LP} = \frac1m\sum_{i=1}^m \max\big(0, \lVert\nabla_x f(\hat x_i)\rVert_2 - c\big)^2,

    with :math:`\hat x_i = \varepsilon_i x_i + (1-\varepsilon_i) y_i`, one
    :math:`\varepsilon_i\sim U[0,1]` per sample (default ``strategy="real-fake"``; any entry of
    ``SAMPLING_STRATEGIES`` may be used, see ``sample_penalty_points``), the norm taken over each
    flattened sample, and :math:`c` = ``center`` (1 in WGAN-GP). Real and fake are detached; the
    result is differentiable with respect to the critic's parameters.

    Parameters
    ----------
    critic : torch.nn.Module
        Maps ``(n, ...)`` to scores ``(n,)``; must not contain BatchNorm (per-sample penalty).
    real, fake : torch.Tensor
        Batches of the same shape.
    center : float
        Target norm :math:`c \ge 0`.
    one_sided : bool
        Penalise only norms above ``center`` (WGAN-LP).
    generator : torch.Generator, optional
        Random-number generator for the interpolation weights.
    strategy : str
        Where to evaluate the gradient (``SAMPLING_STRATEGIES``).
    return_norms : bool
        Also return the detached per-point gradient norms.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        The scalar penalty (and the norms of shape ``(m,)`` when ``return_norms``).
    """
    _check_critic(critic)
    check_value("center", center, Float(lo=0.0))
    x = sample_penalty_points(real, fake, strategy, generator=generator)
    norms = _flat_norms(_input_grads(critic, x, create_graph=True))
    dev = norms - center
    pen = (torch.relu(dev) if one_sided else dev).pow(2).mean()
    return (pen, norms.detach()) if return_norms else pen


def div_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    k: float = 2.0,
    p: float = 6.0,
    strategy: str = "real-fake",
    generator: Optional[torch.Generator] = None,
    return_norms: bool = False,
):
    r"""Wasserstein-divergence penalty of WGAN-div (Wu et al. 2018), weight included.

    .. math::

        \mathrm{DIV} = k\,\frac1m\sum_{i=1}^m \lVert\nabla_x f(\hat x_i)\rVert_2^{\,p}
        = k\,\frac1m\sum_{i=1}^m \Big(\sum_j (\partial_j f(\hat x_i))^2\Big)^{p/2},
        \qquad \hat x_i \sim r(x),

    where :math:`r` is chosen by ``strategy`` (``sample_penalty_points``). With
    ``strategy="real+fake"`` this equals the re-implementations' (bojone/gan, PyTorch-GAN)
    :math:`\tfrac k2(\mathbb E\lVert\nabla f(x_{real})\rVert^p + \mathbb E\lVert\nabla f(x_{fake})\rVert^p)`
    with the same k. The official code uses ``strategy="real-fake"`` with weight ``k=10``.

    Parameters
    ----------
    critic : torch.nn.Module
    real, fake : torch.Tensor
        Batches of the same shape.
    k : float
        Weight, ``k >= 0`` (paper: 2).
    p : float
        Power, ``p > 0`` (paper: 6; the divergence theory needs ``p > 1``).
    strategy : str
        One of ``SAMPLING_STRATEGIES``.
    generator : torch.Generator, optional
    return_norms : bool
        Also return the detached per-point gradient norms.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
    """
    _check_critic(critic)
    check_value("k", k, Float(lo=0.0))
    check_value("p", p, Float(lo=0.0, lo_open=True))
    x = sample_penalty_points(real, fake, strategy, generator=generator)
    g = _input_grads(critic, x, create_graph=True)
    sq = g.reshape(g.shape[0], -1).pow(2).sum(1)
    pen = k * (sq + _EPS).pow(p / 2).mean()
    return (pen, torch.sqrt(sq + _EPS).detach()) if return_norms else pen


# ----------------------------------------------------------------------------- measurements
def input_gradient_norms(critic: nn.Module, x: torch.Tensor) -> torch.Tensor:
    r"""Per-sample norms :math:`\lVert\nabla_x f(x_i)\rVert_2` of the flattened input gradient.

    Works under ``torch.no_grad()`` too. A critic in training mode is evaluated as such (BatchNorm
    uses batch statistics; spectral norm does a power iteration); call ``critic.eval()`` first
    to measure the inference-mode function.

    Parameters
    ----------
    critic : torch.nn.Module
    x : torch.Tensor
        Shape ``(n, ...)``.

    Returns
    -------
    torch.Tensor
        Detached, shape ``(n,)``.
    """
    return torch.sqrt(_input_grads(critic, x, create_graph=False).reshape(x.shape[0], -1).pow(2).sum(1)).detach()


def empirical_lipschitz(
    critic: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor] = None, tol: float = 1e-12
) -> float:
    r"""Largest slope of the critic over all pairs, a lower bound on its Lipschitz constant.

    .. math::

        \hat L = \max_{i,j:\ \lVert x_i - y_j\rVert > 0}
        \frac{\lvert f(x_i) - f(y_j)\rvert}{\lVert x_i - y_j\rVert_2}

    (vectorised over the n x m pairs; zero-distance pairs are skipped). With ``y=None`` the pairs
    are taken within ``x``.

    Parameters
    ----------
    critic : torch.nn.Module
    x : torch.Tensor
        Shape ``(n, ...)``.
    y : torch.Tensor, optional
        Shape ``(m, ...)``; defaults to ``x``.
    tol : float
        Distances ``<= tol`` count as zero.

    Returns
    -------
    float
        0.0 if every pair has zero distance.
    """
    y = x if y is None else y
    with torch.no_grad():
        fx, fy = _scores(critic, x), _scores(critic, y)
        d = torch.cdist(x.reshape(x.shape[0], -1).double(), y.reshape(y.shape[0], -1).double())
        diff = (fx.double()[:, None] - fy.double()[None, :]).abs()
        mask = d > tol
        if not bool(mask.any()):
            return 0.0
        return float((diff[mask] / d[mask]).max())


def layer_gradient_norms(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, layers: Optional[List[nn.Module]] = None
) -> List[float]:
    r"""Norms of the gradient of the critic loss with respect to each hidden layer's activations.

    .. math::

        L = \frac1n\sum_i f(y_i) - \frac1n\sum_i f(x_i),\qquad
        g_\ell = \Big\lVert \frac{\partial L}{\partial h_\ell} \Big\rVert_2 \quad(\text{Frobenius norm over the batch}),

    where :math:`h_\ell` is the output of the :math:`\ell`-th hidden activation module
    (``wganbook.models.critic_layers``). This is the quantity of WGAN-GP Fig. 1b (log scale).

    The list is in **forward order**: element 0 is the first hidden layer (next to the input),
    the last element is the layer next to the output, matching ``critic_layers(critic)``. The
    figure's x-axis runs from the output side to the input side (13 to 1), i.e. the reverse of this
    list. Real and fake are scored in one forward pass on their concatenation.

    Parameters
    ----------
    critic : torch.nn.Module
    real, fake : torch.Tensor
        Batches of the same shape.
    layers : list of torch.nn.Module, optional
        Modules whose outputs are measured; defaults to ``critic_layers(critic)``.

    Returns
    -------
    list of float
    """
    from wganbook.models import critic_layers

    _check_pair(real, fake)
    layers = critic_layers(critic) if layers is None else list(layers)
    if not layers:
        raise ValueError("critic has no hidden activation modules to measure (layers is empty)")
    acts: dict = {}
    handles = [
        m.register_forward_hook(lambda mod, inp, out, i=i: acts.__setitem__(i, out)) for i, m in enumerate(layers)
    ]
    try:
        with torch.enable_grad():
            n = real.shape[0]
            s = _scores(critic, torch.cat([real.detach(), fake.detach()]))
            loss = s[n:].mean() - s[:n].mean()
            missing = [i for i in range(len(layers)) if i not in acts]
            if missing:
                raise ValueError(f"layers {missing} were not called in the critic's forward pass")
            grads = torch.autograd.grad(loss, [acts[i] for i in range(len(layers))], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    return [0.0 if g is None else float(g.norm()) for g in grads]


def _matrix_of(m: nn.Module) -> torch.Tensor:
    w = m.weight
    if isinstance(m, nn.modules.conv._ConvTransposeNd):
        w = w.transpose(0, 1)  # (out, in, k...) like spectral_norm(dim=1)
    return w.reshape(w.shape[0], -1)


def spectral_norms(module: nn.Module) -> List[float]:
    r"""Largest singular value of every linear/conv weight of ``module``, as used by its forward.

    .. math::

        \sigma(W) = \max_{\lVert v\rVert=1} \lVert W v\rVert_2,

    with conv weights of shape ``(out, in, k, k)`` reshaped to ``(out, in*k*k)`` (transposed conv
    weights are first permuted to ``(out, in, ...)``), which is the matrix spectral normalisation
    divides by; it is not the operator norm of the convolution. For a module wrapped with
    ``torch.nn.utils.parametrizations.spectral_norm`` the normalised weight :math:`W/\hat\sigma` is
    measured, read without running a power iteration (the module's state is not changed).

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    list of float
        One value per ``nn.Linear`` / ``nn.Conv*`` / ``nn.ConvTranspose*`` submodule, in
        registration order.
    """
    layer_types = (nn.Linear, nn.modules.conv._ConvNd)
    out: List[float] = []
    saved = [(m, m.training) for m in module.modules()]
    try:
        module.eval()  # spectral_norm parametrizations do no power iteration in eval mode
        with torch.no_grad():
            for m in module.modules():
                if isinstance(m, layer_types):
                    w = _matrix_of(m).double()
                    out.append(float(torch.linalg.matrix_norm(w, ord=2)))
    finally:
        for m, t in saved:
            m.training = t
    return out


def share_at_bound(module: nn.Module, c: float, rtol: float = 0.01, weights_only: bool = True) -> float:
    r"""Share of a module's weights that sit at the clipping bound :math:`\pm c`.

    .. math::

        s = \frac{1}{N} \#\{\, w : \lvert w \rvert \ge (1 - r)\,c \,\}

    over the :math:`N` entries of the weight matrices and kernels (parameters with two or more
    dimensions; biases too when ``weights_only=False``), with :math:`r` = ``rtol``. After weight
    clipping (WGAN) most weights end up at the bounds (WGAN-GP Fig. 1b, right).

    Parameters
    ----------
    module : torch.nn.Module
    c : float
        Clipping bound, ``c > 0``.
    rtol : float
        Relative tolerance :math:`r \in [0, 1)`.
    weights_only : bool
        Count only parameters with ``ndim >= 2``.

    Returns
    -------
    float
        :math:`s \in [0, 1]` (0.0 for a module without such parameters).
    """
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
        raise ValueError(f"c must be a float > 0; got {c!r}")
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 <= rtol < 1:
        raise ValueError(f"rtol must be a float in [0, 1); got {rtol!r}")
    ws = [p.detach().reshape(-1) for p in module.parameters() if p.ndim >= 2 or not weights_only]
    if not ws:
        return 0.0
    # compare in each tensor's own precision, so that clamp_(-c, c) counts as "at the bound"
    hits = sum(int((t.abs() >= torch.tensor((1.0 - rtol) * c, dtype=t.dtype)).sum()) for t in ws)
    return hits / sum(t.numel() for t in ws)


# ----------------------------------------------------------------------------- chapter 4
def singular_values(module: nn.Module) -> List[torch.Tensor]:
    r"""All singular values of every linear/conv weight of ``module``, as used by its forward.

    .. math::

        W = U\,\mathrm{diag}(\sigma_1 \ge \sigma_2 \ge \dots \ge \sigma_r)\,V^\top,
        \qquad r = \min(\text{out}, \text{in}),

    with the same matrices as :func:`spectral_norms` (conv kernels reshaped to
    ``(out, in*k*k)``; for a spectrally normalised layer the normalised weight
    :math:`W/\hat\sigma`, read without a power iteration), so ``singular_values(m)[l][0]`` equals
    ``spectral_norms(m)[l]``. SNGAN (Miyato et al. 2018, Fig. 3) compares these spectra: a clipped
    weight matrix concentrates on few singular values, a normalised one keeps many.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    list of torch.Tensor
        One float64 tensor of the :math:`r` singular values (descending) per ``nn.Linear`` /
        ``nn.Conv*`` submodule, in registration order.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    layer_types = (nn.Linear, nn.modules.conv._ConvNd)
    out: List[torch.Tensor] = []
    saved = [(m, m.training) for m in module.modules()]
    try:
        module.eval()  # no power iteration of spectral_norm parametrizations
        with torch.no_grad():
            for m in module.modules():
                if isinstance(m, layer_types):
                    out.append(torch.linalg.svdvals(_matrix_of(m).double()))
    finally:
        for m, t in saved:
            m.training = t
    return out


def cross_sample_jacobian(critic: nn.Module, x: torch.Tensor) -> torch.Tensor:
    r"""Norms of the cross-sample derivatives of a critic on one batch, in training mode.

    .. math::

        J_{ij} = \Big\lVert \frac{\partial f(x_i)}{\partial x_j} \Big\rVert_2,
        \qquad i, j = 1..n,

    where :math:`f(x_i)` is the critic's score of sample :math:`i` when the whole batch
    :math:`x_1..x_n` goes through it at once (batch normalisation then mixes the samples). A
    per-sample critic has :math:`J_{ij} = 0` for :math:`i \ne j` and :math:`J_{ii}` =
    :func:`input_gradient_norms`; a penalty on :math:`\lVert\nabla_{x_i} \sum_j f(x_j)\rVert`
    only constrains :math:`f` when the off-diagonal terms vanish. The critic's training/eval
    mode is restored afterwards.

    Parameters
    ----------
    critic : torch.nn.Module
    x : torch.Tensor
        One batch, shape ``(n, ...)``.

    Returns
    -------
    torch.Tensor
        Shape ``(n, n)``, detached.
    """
    if not callable(critic):
        raise TypeError(f"critic must be a torch.nn.Module; got {type(critic).__name__}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise TypeError("x must be a floating-point torch.Tensor of shape (n, ...)")
    was = critic.training if isinstance(critic, nn.Module) else None
    if was is not None:
        critic.train()
    try:
        jac = torch.autograd.functional.jacobian(lambda inp: _scores(critic, inp), x.detach())
    finally:
        if was is not None:
            critic.train(was)
    n = x.shape[0]
    return jac.reshape(n, n, -1).norm(dim=-1).detach()


def transport_alignment(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> float:
    r"""Mean cosine between the critic's gradient at the fake points and their transport rays.

    With an optimal plan :math:`P^\star` between the two clouds (exact, Euclidean cost,
    :func:`wganbook.transport.transport_plan`), the direction in which an optimal Kantorovich
    potential rises fastest at :math:`y_j` is the unit ray towards the real points it is sent to,

    .. math::

        u_j = \sum_i P^\star_{ij}\, \frac{x_i - y_j}{\lVert x_i - y_j\rVert_2},
        \qquad
        \operatorname{align} = \frac1m \sum_{j=1}^m
        \frac{\langle \nabla f(y_j),\, u_j\rangle}{\lVert \nabla f(y_j)\rVert_2\,\lVert u_j\rVert_2}

    (WGAN-GP Proposition 1: :math:`\nabla f^\star(y) = (x - y)/\lVert x - y\rVert` on the rays).
    It is 1 for a critic whose gradient points along every ray, about 0 for a gradient unrelated
    to the transport, and -1 for one pointing away. Points with a zero gradient or a zero
    :math:`u_j` count as 0. The value is scale-free: it measures the *direction* the generator
    is pushed in, which is what a weight-clipped critic of unknown scale can still get right.

    Parameters
    ----------
    critic : torch.nn.Module
        Scores ``(n, ...) -> (n,)`` or ``(n, 1)``.
    real, fake : torch.Tensor
        Two clouds of the same shape ``(n, ...)`` (equal sizes: the plan is a permutation).

    Returns
    -------
    float
        The mean cosine, in :math:`[-1, 1]`.
    """

    if not callable(critic):
        raise TypeError(f"critic must be a torch.nn.Module; got {type(critic).__name__}")
    _check_pair(real, fake)
    plan, _ = transport_plan(real.detach(), fake.detach())
    xr = real.detach().reshape(real.shape[0], -1).double()
    yf = fake.detach().reshape(fake.shape[0], -1).double()
    diff = xr[:, None, :] - yf[None, :, :]  # (n, m, d): x_i - y_j
    dist = diff.norm(dim=-1, keepdim=True)
    rays = torch.where(dist > _EPS, diff / dist.clamp_min(_EPS), torch.zeros_like(diff))
    u = (torch.as_tensor(plan, dtype=torch.float64)[:, :, None] * rays).sum(0)  # (m, d)
    g = _input_grads(critic, fake.detach(), create_graph=False).reshape(fake.shape[0], -1).double()
    den = g.norm(dim=1) * u.norm(dim=1)
    cos = torch.where(den > _EPS, (g * u).sum(1) / den.clamp_min(_EPS), torch.zeros_like(den))
    return float(cos.mean())


def stable_rank(x) -> float:
    r"""Stable rank of a matrix: how many singular values carry it.

    .. math::

        \operatorname{srank}(W) = \frac{\sum_k \sigma_k^2}{\sigma_1^2}
        = \frac{\lVert W \rVert_F^2}{\lVert W \rVert_2^2},
        \qquad 1 \le \operatorname{srank}(W) \le \operatorname{rank}(W),

    with :math:`\sigma_1` the largest singular value. It is 1 for a rank-one matrix and
    :math:`r` for one with :math:`r` equal singular values (e.g. an orthogonal :math:`r \times r`
    matrix). SNGAN (Miyato et al. 2018) reads it off the spectra of :func:`singular_values`: a
    clipped weight matrix has a low stable rank, a spectrally normalised one keeps it higher.

    Parameters
    ----------
    x : torch.Tensor or array_like
        Either the singular values of a matrix (1-D, any order, e.g. one entry of
        :func:`singular_values`) or the matrix itself (2-D).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        An input that is not 1-D or 2-D, is empty, holds a negative singular value or a
        non-finite entry, or is all zeros (the stable rank of the zero matrix is undefined).
    """
    t = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if t.ndim not in (1, 2) or t.numel() == 0:
        raise ValueError(
            f"x must be a non-empty 1-D tensor of singular values or a 2-D matrix; got shape {tuple(t.shape)}"
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError("x must hold finite values only")
    if t.ndim == 2:
        s = torch.linalg.svdvals(t)
    else:
        if bool((t < 0).any()):
            raise ValueError("singular values must be >= 0; pass a 2-D tensor for a matrix")
        s = t
    top = float(s.max())
    if top == 0.0:
        raise ValueError("the stable rank of the zero matrix is undefined (all singular values are 0)")
    return float((s**2).sum()) / top**2

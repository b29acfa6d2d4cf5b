r"""Generators and critics: MLPs for the 2-D toys, DCGAN-style conv nets for images.

Conventions used throughout the package:

- A **critic** maps a batch ``x`` of shape ``(n, ...)`` to one raw score per sample,
  a tensor of shape ``(n,)``. There is no sigmoid and no clamp on the output; the
  critic scores real samples high.
- A **generator** maps latent codes ``z`` of shape ``(n, z_dim)``, drawn from
  :math:`\mathcal N(0, I)`, to samples: ``(n, 2)`` points for the toys and
  ``(n, C, H, W)`` images in :math:`[-1, 1]` (``tanh`` output) for image data.
- Hidden layers use He (Kaiming) uniform initialisation for their nonlinearity,
  biases start at zero; output layers use the linear gain.
- Every hidden nonlinearity is its own module, so :func:`critic_layers` can hook
  the activations layer by layer (WGAN-GP Fig. 1b).

Use :func:`make_generator` and :func:`make_critic` with a dataset name; the
classes are public for custom dimensions (e.g. a 1-D critic ``MLPCritic(1)``).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from wganbook._util import Int, check_value
from wganbook.data import IMAGE_DATASETS, TOY_DATASETS, image_shape

__all__ = [
    "ACTIVATIONS",
    "NORMS",
    "MLP",
    "Generator",
    "Critic",
    "MLPGenerator",
    "MLPCritic",
    "ConvGenerator",
    "ConvCritic",
    "make_generator",
    "make_critic",
    "critic_layers",
    "has_batchnorm",
    "resolve_device",
    "sample_noise",
]

#: Allowed hidden nonlinearities (``"leaky_relu"`` has slope 0.2).
ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh", "softplus", "gelu")
#: Allowed normalisations of hidden layers ("none", per-sample "layer" norm, "batch" norm).
NORMS = ("none", "layer", "batch")

_ACT_TYPES = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Tanh, nn.Softplus, nn.GELU)

# Per-dataset defaults for the image nets: (z_dim, width, generator depth, critic depth).
_IMAGE_DEFAULTS = {
    (1, 8, 8): (64, 32, 1, 2),
    (1, 28, 28): (128, 64, 2, 3),
    (3, 32, 32): (128, 64, 3, 3),
}
_TOY_DEFAULTS = (2, 512, 3, 3)  # z_dim, width, generator depth, critic depth (gan_toy.py)


# ----------------------------------------------------------------------------- helpers
def _check_choice(name: str, value, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; {name} must be one of: " + ", ".join(map(repr, allowed)))
    return value


def _make_activation(activation: str) -> nn.Module:
    _check_choice("activation", activation, ACTIVATIONS)
    if activation == "relu":
        return nn.ReLU()
    if activation == "leaky_relu":
        return nn.LeakyReLU(0.2)
    if activation == "elu":
        return nn.ELU()
    if activation == "tanh":
        return nn.Tanh()
    if activation == "softplus":
        return nn.Softplus()
    return nn.GELU()


def _init_gain_args(activation: Optional[str]) -> Tuple[str, float]:
    """(nonlinearity, a) for ``nn.init.kaiming_uniform_``."""
    if activation == "relu":
        return "relu", 0.0
    if activation == "leaky_relu":
        return "leaky_relu", 0.2
    if activation == "tanh":
        return "tanh", 0.0
    if activation in ("elu", "softplus", "gelu"):
        return "relu", 0.0
    return "linear", 0.0


def _he_init(layer: nn.Module, activation: Optional[str]) -> None:
    nonlinearity, a = _init_gain_args(activation)
    nn.init.kaiming_uniform_(layer.weight, a=a, nonlinearity=nonlinearity)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def _dataset_info(data: str):
    """Return ``("toy", None)`` or ``("image", (C, H, W))`` for a dataset name."""
    names = tuple(TOY_DATASETS) + tuple(IMAGE_DATASETS)
    if not isinstance(data, str) or data not in names:
        raise ValueError(f"unknown data {data!r}; data must be one of: " + ", ".join(map(repr, names)))
    if data in TOY_DATASETS:
        return "toy", None
    return "image", tuple(int(s) for s in image_shape(data))


# ----------------------------------------------------------------------------- MLP
class MLP(nn.Module):
    r"""Plain multilayer perceptron with ``depth`` hidden layers of ``width`` units.

    .. math::

        h_0 = x,\qquad h_\ell = \sigma\big(\mathrm{norm}(W_\ell h_{\ell-1} + b_\ell)\big),
        \quad \ell = 1..\mathrm{depth},\qquad y = W_{\mathrm{out}} h_{\mathrm{depth}} + b_{\mathrm{out}}.

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output dimensions.
    width : int
        Units per hidden layer (WGAN-GP toy nets: 512).
    depth : int
        Number of hidden layers (WGAN-GP toy nets: 3; clipping pathology: 12).
    activation : str
        One of ``ACTIVATIONS``.
    norm : str
        ``"none"``, ``"layer"`` (``nn.LayerNorm`` per sample) or ``"batch"`` (``nn.BatchNorm1d``).
    spectral : bool
        Wrap every linear layer in ``torch.nn.utils.parametrizations.spectral_norm``.

    Notes
    -----
    The hidden nonlinearity modules are listed, in forward order, in ``self.activations``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        width: int = 512,
        depth: int = 3,
        activation: str = "relu",
        norm: str = "none",
        spectral: bool = False,
    ):
        super().__init__()
        check_value("in_dim", in_dim, Int(lo=1))
        check_value("out_dim", out_dim, Int(lo=1))
        check_value("width", width, Int(lo=1))
        check_value("depth", depth, Int(lo=1))
        _check_choice("activation", activation, ACTIVATIONS)
        _check_choice("norm", norm, NORMS)
        if not isinstance(spectral, bool):
            raise TypeError(f"spectral must be a bool; got {spectral!r}")
        layers: List[nn.Module] = []
        acts: List[nn.Module] = []
        d = in_dim
        for _ in range(depth):
            lin = nn.Linear(d, width)
            _he_init(lin, activation)
            layers.append(_spectral_norm(lin) if spectral else lin)
            if norm == "layer":
                layers.append(nn.LayerNorm(width))
            elif norm == "batch":
                layers.append(nn.BatchNorm1d(width))
            act = _make_activation(activation)
            layers.append(act)
            acts.append(act)
            d = width
        out = nn.Linear(d, out_dim)
        _he_init(out, None)
        layers.append(_spectral_norm(out) if spectral else out)
        self.net = nn.Sequential(*layers)
        # a plain list (not a ModuleList): the modules are already registered in self.net
        self.activations = acts
        self.in_dim, self.out_dim, self.width, self.depth = in_dim, out_dim, width, depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network to ``x`` of shape ``(n, in_dim)``; returns ``(n, out_dim)``."""
        return self.net(x)


# ----------------------------------------------------------------------------- bases
class Generator(nn.Module):
    r"""Base class of generators: :math:`x = G(z)`, :math:`z \sim \mathcal N(0, I_{z\_dim})`.

    Subclasses set ``self.z_dim`` and implement ``forward(z)``.
    """

    z_dim: int

    def sample_z(self, n: int, generator: Optional[torch.Generator] = None, device=None) -> torch.Tensor:
        r"""Draw latent codes :math:`z_1..z_n \sim \mathcal N(0, I)`.

        Parameters
        ----------
        n : int
            Number of codes.
        generator : torch.Generator, optional
            Random-number generator (e.g. from ``wganbook.data.seed_everything``). Codes are drawn
            on the generator's device and then moved to ``device``.
        device : torch.device or str, optional
            Device of the result; defaults to the device of the module's parameters.

        Returns
        -------
        torch.Tensor
            Shape ``(n, z_dim)``, same dtype as the parameters.
        """
        check_value("n", n, Int(lo=1))
        p = next(self.parameters())
        device = p.device if device is None else torch.device(device)
        draw_on = generator.device if generator is not None else device
        z = torch.randn(n, self.z_dim, generator=generator, device=draw_on, dtype=p.dtype)
        return z.to(device)

    def generate(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Return ``self(self.sample_z(n, generator))`` (with gradients; wrap in ``torch.no_grad()``
        to sample for plotting)."""
        return self(self.sample_z(n, generator=generator))


class Critic(nn.Module):
    """Base class of critics: ``forward(x)`` returns one raw score per sample, shape ``(n,)``.

    Subclasses list their hidden nonlinearity modules, in forward order, in ``self.activations``.
    """

    activations: List[nn.Module]


class MLPGenerator(Generator):
    r"""MLP generator :math:`\mathbb R^{z\_dim} \to \mathbb R^{out\_dim}` (toys: 2 to 2, 3x512 ReLU).

    Parameters
    ----------
    z_dim, out_dim : int
        Latent and output dimensions.
    width, depth, activation :
        As in ``MLP``.
    """

    def __init__(self, z_dim: int = 2, out_dim: int = 2, width: int = 512, depth: int = 3, activation: str = "relu"):
        super().__init__()
        self.z_dim = check_value("z_dim", z_dim, Int(lo=1))
        self.net = MLP(z_dim, out_dim, width=width, depth=depth, activation=activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map ``z`` of shape ``(n, z_dim)`` to samples of shape ``(n, out_dim)``."""
        return self.net(z)


class MLPCritic(Critic):
    r"""MLP critic :math:`f: \mathbb R^{in\_dim} \to \mathbb R`; inputs are flattened per sample.

    Parameters
    ----------
    in_dim : int
        Input dimension (2 for the toys).
    width, depth, activation, norm, spectral :
        As in ``MLP``.
    """

    def __init__(
        self,
        in_dim: int = 2,
        width: int = 512,
        depth: int = 3,
        activation: str = "relu",
        norm: str = "none",
        spectral: bool = False,
    ):
        super().__init__()
        self.net = MLP(in_dim, 1, width=width, depth=depth, activation=activation, norm=norm, spectral=spectral)
        self.activations = self.net.activations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of shape ``(n,)`` for ``x`` of shape ``(n, ...)`` (flattened to ``(n, in_dim)``)."""
        return self.net(x.reshape(x.shape[0], -1)).squeeze(-1)


# ----------------------------------------------------------------------------- conv nets
def _conv_out(h: int) -> int:
    """Spatial size after a 4x4 conv with stride 2 and padding 1."""
    return (h + 2 - 4) // 2 + 1


class ConvGenerator(Generator):
    r"""DCGAN-style generator for ``(C, H, W)`` images in :math:`[-1, 1]`.

    ``z`` :math:`\to` linear to ``(width * 2**depth, H/2**depth, W/2**depth)`` + BatchNorm + ReLU
    :math:`\to` ``depth`` blocks [ConvTranspose 4x4 stride 2 (channels halve) + BatchNorm + ReLU]
    :math:`\to` Conv 3x3 to ``C`` channels :math:`\to \tanh`.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)``; ``H`` and ``W`` must be divisible by ``2**depth``.
    z_dim : int
        Latent dimension.
    width : int
        Channels of the last up-sampling block (the first has ``width * 2**(depth-1)``).
    depth : int
        Number of up-sampling blocks.
    """

    def __init__(self, image_shape: Tuple[int, int, int], z_dim: int = 128, width: int = 64, depth: int = 2):
        super().__init__()
        c, h, w = image_shape
        self.z_dim = check_value("z_dim", z_dim, Int(lo=1))
        check_value("width", width, Int(lo=1))
        check_value("depth", depth, Int(lo=1))
        f = 2**depth
        if h % f or w % f:
            allowed = [d for d in range(1, 8) if h % 2**d == 0 and w % 2**d == 0]
            raise ValueError(
                f"depth={depth} does not fit images of size {h}x{w} (size must be divisible by "
                f"2**depth); depth must be one of: {allowed}"
            )
        self.image_shape = (c, h, w)
        self.h0, self.w0, self.c0 = h // f, w // f, width * 2**depth
        self.fc = nn.Linear(z_dim, self.c0 * self.h0 * self.w0)
        _he_init(self.fc, "relu")
        self.fc_norm = nn.BatchNorm2d(self.c0)
        blocks: List[nn.Module] = [nn.ReLU()]
        ch = self.c0
        for _ in range(depth):
            up = nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1)
            _he_init(up, "relu")
            blocks += [up, nn.BatchNorm2d(ch // 2), nn.ReLU()]
            ch //= 2
        out = nn.Conv2d(ch, c, 3, padding=1)
        _he_init(out, "tanh")
        blocks += [out, nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map ``z`` of shape ``(n, z_dim)`` to images ``(n, C, H, W)`` in ``[-1, 1]``."""
        x = self.fc(z).view(z.shape[0], self.c0, self.h0, self.w0)
        return self.blocks(self.fc_norm(x))


class ConvCritic(Critic):
    r"""DCGAN-style critic: strided convolutions, LeakyReLU(0.2), a final linear layer to a scalar.

    ``depth`` blocks [Conv 4x4 stride 2 (channels ``width * 2**i``) + norm + activation]
    :math:`\to` flatten :math:`\to` linear to 1. The first block has no normalisation (DCGAN).
    ``norm="layer"`` is ``GroupNorm(1, C)``: per-sample normalisation over ``(C, H, W)``, safe
    with per-sample gradient penalties; ``norm="batch"`` (BatchNorm2d) mixes samples and is
    meant only for weight clipping and experiments.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)``.
    width : int
        Channels of the first block.
    depth : int
        Number of strided conv blocks.
    activation, norm, spectral :
        As in ``MLP``; ``spectral`` wraps every conv and the final linear layer.
    """

    def __init__(
        self,
        image_shape: Tuple[int, int, int],
        width: int = 64,
        depth: int = 3,
        activation: str = "leaky_relu",
        norm: str = "none",
        spectral: bool = False,
    ):
        super().__init__()
        c, h, w = image_shape
        check_value("width", width, Int(lo=1))
        check_value("depth", depth, Int(lo=1))
        _check_choice("activation", activation, ACTIVATIONS)
        _check_choice("norm", norm, NORMS)
        if not isinstance(spectral, bool):
            raise TypeError(f"spectral must be a bool; got {spectral!r}")
        hh, ww = h, w
        for i in range(depth):
            hh, ww = _conv_out(hh), _conv_out(ww)
            if hh < 1 or ww < 1:
                raise ValueError(f"depth={depth} is too deep for images of size {h}x{w}; depth must be <= {i}")
        self.image_shape = (c, h, w)
        layers: List[nn.Module] = []
        acts: List[nn.Module] = []
        ch_in = c
        for i in range(depth):
            ch = width * 2**i
            conv = nn.Conv2d(ch_in, ch, 4, stride=2, padding=1)
            _he_init(conv, activation)
            layers.append(_spectral_norm(conv) if spectral else conv)
            if i > 0 and norm == "layer":
                layers.append(nn.GroupNorm(1, ch))
            elif i > 0 and norm == "batch":
                layers.append(nn.BatchNorm2d(ch))
            act = _make_activation(activation)
            layers += [act]
            acts.append(act)
            ch_in = ch
        self.features = nn.Sequential(*layers)
        fc = nn.Linear(ch_in * hh * ww, 1)
        _he_init(fc, None)
        self.fc = _spectral_norm(fc) if spectral else fc
        self.activations = acts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of shape ``(n,)`` for images ``x`` of shape ``(n, C, H, W)``."""
        return self.fc(self.features(x).flatten(1)).squeeze(-1)


# ----------------------------------------------------------------------------- factories
def make_generator(
    data: str, z_dim: Optional[int] = None, width: Optional[int] = None, depth: Optional[int] = None
) -> Generator:
    r"""Build the generator used for dataset ``data``.

    Toys (``wganbook.data.TOY_DATASETS``): ``MLPGenerator`` with :math:`z \in \mathbb R^2`,
    3 hidden ReLU layers of 512 units, output in :math:`\mathbb R^2` (``gan_toy.py``).
    Images: ``ConvGenerator`` with defaults per image shape

    =============  =====  =====  =====
    shape          z_dim  width  depth
    =============  =====  =====  =====
    (1, 8, 8)      64     32     1
    (1, 28, 28)    128    64     2
    (3, 32, 32)    128    64     3
    =============  =====  =====  =====

    Parameters
    ----------
    data : str
        Dataset name.
    z_dim, width, depth : int, optional
        Override the defaults (``None`` keeps them).

    Returns
    -------
    Generator
        Has ``.z_dim``, ``sample_z(n, generator=None, device=None)``, ``forward(z)``, ``generate(n)``.
    """
    kind, shape = _dataset_info(data)
    if kind == "toy":
        z0, w0, d0, _ = _TOY_DEFAULTS
    else:
        z0, w0, d0, _ = _IMAGE_DEFAULTS.get(shape, (128, 64, 2, 3))
    z_dim = z0 if z_dim is None else check_value("z_dim", z_dim, Int(lo=1))
    width = w0 if width is None else check_value("width", width, Int(lo=1))
    depth = d0 if depth is None else check_value("depth", depth, Int(lo=1))
    if kind == "toy":
        return MLPGenerator(z_dim, 2, width=width, depth=depth)
    return ConvGenerator(shape, z_dim=z_dim, width=width, depth=depth)


def make_critic(
    data: str,
    width: Optional[int] = None,
    depth: Optional[int] = None,
    norm: str = "none",
    spectral: bool = False,
    activation: Optional[str] = None,
) -> Critic:
    r"""Build the critic used for dataset ``data``; it returns scores of shape ``(n,)``.

    Toys: ``MLPCritic`` 2 :math:`\to` 3 hidden ReLU layers of 512 :math:`\to` 1 (``gan_toy.py``;
    ``depth=12`` gives the 12-layer critic of WGAN-GP Fig. 1b). Images: ``ConvCritic`` with
    LeakyReLU(0.2); defaults width 32 / depth 2 for 8x8, 64 / 3 for 28x28 and 32x32.

    Parameters
    ----------
    data : str
        Dataset name.
    width, depth : int, optional
        Override the defaults.
    norm : str
        ``"none"``, ``"layer"`` or ``"batch"``. Penalised methods refuse ``"batch"``
        (``wganbook.objectives.check_critic_for_method``).
    spectral : bool
        Spectral normalisation of every linear/conv layer.
    activation : str, optional
        Hidden nonlinearity; ``None`` means ``"relu"`` for toys, ``"leaky_relu"`` for images.

    Returns
    -------
    Critic
    """
    kind, shape = _dataset_info(data)
    _check_choice("norm", norm, NORMS)
    if kind == "toy":
        _, w0, _, d0 = _TOY_DEFAULTS
        act0 = "relu"
    else:
        _, w0, _, d0 = _IMAGE_DEFAULTS.get(shape, (128, 64, 2, 3))
        act0 = "leaky_relu"
    width = w0 if width is None else check_value("width", width, Int(lo=1))
    depth = d0 if depth is None else check_value("depth", depth, Int(lo=1))
    activation = act0 if activation is None else _check_choice("activation", activation, ACTIVATIONS)
    if kind == "toy":
        return MLPCritic(2, width=width, depth=depth, activation=activation, norm=norm, spectral=spectral)
    return ConvCritic(shape, width=width, depth=depth, activation=activation, norm=norm, spectral=spectral)


def critic_layers(critic: nn.Module) -> List[nn.Module]:
    """Hidden activation modules of ``critic`` in forward order (first hidden layer first).

    Uses ``critic.activations`` when present (all critics of this module); otherwise collects
    the nonlinearity modules (ReLU, LeakyReLU, ELU, Tanh, Softplus, GELU) in registration order.

    Parameters
    ----------
    critic : torch.nn.Module

    Returns
    -------
    list of torch.nn.Module
    """
    acts = getattr(critic, "activations", None)
    if acts is not None:
        return list(acts)
    return [m for m in critic.modules() if isinstance(m, _ACT_TYPES)]


def has_batchnorm(module: nn.Module) -> bool:
    """True if ``module`` contains a batch-norm layer (which mixes the samples of a batch)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


# ---------------------------------------------------------------------------------------------
# devices and latent codes (used by train and metrics alike)
# ---------------------------------------------------------------------------------------------
def resolve_device(device: Union[str, torch.device, None] = "auto") -> torch.device:
    """Turn ``"auto"`` into the best available device: CUDA, then Apple MPS, then CPU.

    Parameters
    ----------
    device : str or torch.device, optional
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a ``torch.device``
        (``None`` means ``"auto"``).

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        For an unknown device string or a device that is not available here.
    """
    if device is None:
        device = "auto"
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    base, _, index = device.partition(":")
    if base not in ("cpu", "cuda", "mps") or (index and not index.isdigit()):
        raise ValueError(f"unknown device {device!r}; device must be one of: auto, cpu, cuda, cuda:N, mps")
    if base == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use device='auto' or 'cpu'")
    if base == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} requested but MPS is not available; use device='auto' or 'cpu'")
    return torch.device(device)


def sample_noise(generator: nn.Module, n: int, rng: Optional[torch.Generator], device) -> torch.Tensor:
    r"""Latent codes :math:`z_1..z_n \sim \mathcal N(0, I)` for ``generator``.

    Uses ``generator.sample_z(n, generator=rng, device=device)`` when the module has it,
    otherwise ``torch.randn(n, generator.z_dim)``.

    Parameters
    ----------
    generator : torch.nn.Module
        The generator (``sample_z`` method or ``z_dim`` attribute).
    n : int
        Number of codes.
    rng : torch.Generator, optional
        Random-number generator.
    device : torch.device
        Device of the result.

    Returns
    -------
    torch.Tensor
        Shape ``(n, z_dim)``.
    """
    sample_z = getattr(generator, "sample_z", None)
    if sample_z is not None:
        return sample_z(n, generator=rng, device=device)
    z_dim = getattr(generator, "z_dim", None)
    if z_dim is None:
        raise TypeError("generator must have a sample_z(n, generator=None, device=None) method or a z_dim attribute")
    draw_on = rng.device if rng is not None else device
    return torch.randn(n, z_dim, generator=rng, device=draw_on).to(device)

"""Tests of wganbook.models: shapes, ranges, factories, layer access, argument validation."""

import pytest
import torch
from torch import nn

from wganbook.models import (
    MLP,
    ConvCritic,
    ConvGenerator,
    MLPCritic,
    critic_layers,
    has_batchnorm,
    make_critic,
    make_generator,
)

IMAGES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


def test_toy_nets_follow_gan_toy_py():
    g, c = make_generator("8gaussians"), make_critic("8gaussians")
    assert g.z_dim == 2
    z = g.sample_z(5, generator=torch.Generator().manual_seed(0))
    assert z.shape == (5, 2)
    x = g(z)
    assert x.shape == (5, 2) and x.dtype == torch.float32
    assert c(x).shape == (5,)
    assert len(critic_layers(c)) == 3
    linears = [m for m in c.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [512, 512, 512, 1]


@pytest.mark.parametrize("data", list(IMAGES))
def test_image_nets_shapes_and_range(data):
    torch.manual_seed(0)
    g, c = make_generator(data, width=8), make_critic(data, width=8)
    assert g.z_dim == (64 if data == "digits" else 128)
    with torch.no_grad():
        x = g.generate(3)
        assert x.shape == (3,) + IMAGES[data]
        assert float(x.abs().max()) <= 1.0
        assert c(x).shape == (3,)
    depth = 2 if data == "digits" else 3
    assert len(critic_layers(c)) == depth


def test_sample_z_is_reproducible_and_standard_normal():
    g = make_generator("digits")
    a = g.sample_z(4000, generator=torch.Generator().manual_seed(1))
    b = g.sample_z(4000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert abs(float(a.mean())) < 0.01 and abs(float(a.std()) - 1) < 0.01
    with torch.no_grad():
        x1 = g.generate(2, generator=torch.Generator().manual_seed(3))
        x2 = g.generate(2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x1, x2)


def test_mlp_depth_and_width():
    m = MLP(3, 4, width=7, depth=12)
    assert len(m.activations) == 12
    assert m(torch.randn(2, 3)).shape == (2, 4)
    assert sum(isinstance(x, nn.Linear) for x in m.modules()) == 13


def test_critic_layers_are_the_hidden_activations_in_order():
    c = make_critic("swissroll", width=8, depth=12)
    layers = critic_layers(c)
    assert len(layers) == 12 and all(isinstance(m, nn.ReLU) for m in layers)
    seen = []
    hooks = [m.register_forward_hook(lambda mod, i, o, k=k: seen.append(k)) for k, m in enumerate(layers)]
    c(torch.randn(2, 2))
    for h in hooks:
        h.remove()
    assert seen == list(range(12))
    conv = make_critic("digits", width=4, depth=2)
    assert [type(m) for m in critic_layers(conv)] == [nn.LeakyReLU, nn.LeakyReLU]
    # a generic module falls back to its nonlinearity modules
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    assert critic_layers(seq) == [seq[1]]


def test_he_initialisation_keeps_activations_of_a_deep_relu_mlp():
    torch.manual_seed(0)
    m = MLP(64, 1, width=256, depth=12)
    x = torch.randn(512, 64)
    with torch.no_grad():
        ratio = float(m.net[:-1](x).pow(2).mean() / x.pow(2).mean())
    assert 0.2 < ratio < 5  # He init: the second moment neither explodes nor vanishes over 12 layers


def test_norm_options():
    assert not has_batchnorm(make_critic("digits", norm="none"))
    assert has_batchnorm(make_critic("digits", norm="batch"))
    ln = make_critic("mnist", width=4, norm="layer")
    assert not has_batchnorm(ln)
    assert any(isinstance(m, nn.GroupNorm) and m.num_groups == 1 for m in ln.modules())
    assert any(isinstance(m, nn.LayerNorm) for m in make_critic("8gaussians", width=4, norm="layer").modules())
    assert has_batchnorm(make_critic("8gaussians", width=4, norm="batch"))


def test_layer_norm_critic_is_per_sample():
    torch.manual_seed(0)
    c = make_critic("digits", width=4, norm="layer")
    x = torch.randn(6, 1, 8, 8)
    full = c(x)
    single = torch.cat([c(x[i : i + 1]) for i in range(6)])
    assert torch.allclose(full, single, atol=1e-6)


def test_spectral_flag_parametrizes_every_weight_layer():
    c = make_critic("cifar10", width=4, spectral=True)
    layers = [m for m in c.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(hasattr(m, "parametrizations") and "weight" in m.parametrizations for m in layers)
    assert c(torch.randn(2, 3, 32, 32)).shape == (2,)


def test_generator_depths_fit_sizes():
    assert make_generator("cifar10", width=4, depth=5).generate(2).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="depth must be one of"):
        make_generator("mnist", depth=3)
    with pytest.raises(ValueError, match="depth must be <="):
        make_critic("digits", depth=5)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: make_critic("celeba"), "data must be one of"),
        (lambda: make_generator("imagenet"), "data must be one of"),
        (lambda: make_critic("digits", norm="instance"), "norm must be one of"),
        (lambda: make_critic("digits", activation="sigmoid"), "activation must be one of"),
        (lambda: make_critic("digits", width=0), "width"),
        (lambda: make_generator("8gaussians", depth=-1), "depth"),
        (lambda: make_generator("8gaussians", z_dim=0), "z_dim"),
        (lambda: MLP(2, 1, width=0), "width"),
        (lambda: MLPCritic(2, norm="group"), "norm must be one of"),
        (lambda: ConvCritic((1, 8, 8), depth=0), "depth"),
        (lambda: ConvGenerator((1, 8, 8), width=0), "width"),
    ],
)
def test_invalid_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match="width"):
        make_critic("digits", width=2.5)
    with pytest.raises(TypeError, match="spectral"):
        make_critic("digits", spectral="yes")

"""Tests of wganbook.dirac: the Dirac-GAN's vector fields, Jacobians, eigenvalues and flows."""

import math

import numpy as np
import pytest

from wganbook import dirac

SMOOTH = [
    ("wgan", {}),
    ("gan", {}),
    ("gan-r1", {"gamma": 0.7}),
    ("wgan-div", {"k": 0.3, "p": 2.0}),
    ("wgan-div", {"k": 2.0, "p": 6.0}),
    ("wgan-div", {"k": 1.0, "p": 3.0}),
]


@pytest.mark.parametrize("method,hp", SMOOTH)
def test_jacobian_is_the_derivative_of_the_field(method, hp):
    h = 1e-6
    num = np.zeros((2, 2))
    for j, (dt, dp) in enumerate([(h, 0.0), (0.0, h)]):
        plus = dirac.vector_field(method, dt, dp, **hp)
        minus = dirac.vector_field(method, -dt, -dp, **hp)
        num[:, j] = [(float(a) - float(b)) / (2 * h) for a, b in zip(plus, minus)]
    assert np.allclose(num, dirac.jacobian(method, **hp), atol=1e-5)


def test_equilibrium_is_stationary():
    for method in dirac.METHODS:
        u, v = dirac.vector_field(method, 0.0, 0.0)
        assert float(u) == 0.0 and float(v) == 0.0


def test_eigenvalues_closed_forms():
    assert np.allclose(dirac.eigenvalues("wgan"), [-1j, 1j])  # pure rotation
    assert np.allclose(dirac.eigenvalues("gan"), [-0.5j, 0.5j])  # f'(0) = 1/2
    g = 0.6
    root = np.sqrt(complex(g * g / 4 - 0.25))
    assert np.allclose(
        dirac.eigenvalues("gan-r1", gamma=g), sorted([-g / 2 - root, -g / 2 + root], key=lambda z: z.imag)
    )
    assert np.allclose(dirac.eigenvalues("gan-r1", gamma=1.0), [-0.5, -0.5])  # critical gamma = 2|f'(0)|
    k = 0.25
    assert np.allclose(
        dirac.eigenvalues("wgan-div", k=k, p=2.0), [-k - 1j * math.sqrt(1 - k * k), -k + 1j * math.sqrt(1 - k * k)]
    )
    assert np.allclose(dirac.eigenvalues("wgan-div", k=2.0, p=6.0), [-1j, 1j])  # p > 2: rotation
    for method, hp in SMOOTH:
        assert np.allclose(
            np.sort_complex(dirac.eigenvalues(method, **hp)),
            np.sort_complex(np.linalg.eigvals(dirac.jacobian(method, **hp))),
        )
    # every eigenvalue of a regularised game has negative real part; the unregularised ones none
    assert all(z.real < 0 for z in dirac.eigenvalues("gan-r1", gamma=0.1))
    assert all(z.real == 0 for z in dirac.eigenvalues("wgan"))


def test_jacobian_refused_where_not_differentiable():
    with pytest.raises(ValueError, match="not differentiable"):
        dirac.jacobian("wgan-gp")
    with pytest.raises(ValueError, match="p < 2"):
        dirac.jacobian("wgan-div", p=1.5)


def test_energy_rates():
    th, ps = np.meshgrid(np.linspace(-2, 2, 9), np.linspace(-2, 2, 9))
    assert np.allclose(dirac.energy_rate("wgan", th, ps), 0.0)
    assert np.allclose(dirac.energy_rate("gan", th, ps), 0.0)  # the GAN's flow also circles
    assert np.allclose(dirac.energy_rate("wgan-div", th, ps, k=2.0, p=6.0), -24.0 * np.abs(ps) ** 6)
    lam, n = 3.0, 1.0
    assert np.allclose(dirac.energy_rate("wgan-gp", th, ps, lam=lam, n=n), 4 * lam * np.abs(ps) * (n - np.abs(ps)))
    assert np.all(dirac.energy_rate("wgan-gp", 0.3, np.array([0.1, 0.5, 0.9])) > 0)


def test_wgan_flow_conserves_the_distance_and_simgd_spirals_out():
    run = dirac.simulate("wgan", 1.0, 0.0, t_max=2 * math.pi, dt=2 * math.pi / 1000)
    assert np.max(np.abs(run["distance"] - 1.0)) < 1e-8
    assert run["theta"][-1] == pytest.approx(1.0, abs=1e-6)  # one full turn (period 2 pi)
    gd = dirac.simulate("wgan", 1.0, 0.0, t_max=10.0, dt=0.1, scheme="simgd")
    # explicit Euler multiplies the distance by sqrt(1 + h^2) per step
    assert gd["distance"][-1] == pytest.approx((1 + 0.01) ** (100 / 2), rel=1e-9)


def test_zero_centred_converges_one_centred_does_not():
    r1 = dirac.simulate("gan-r1", 1.0, 0.0, t_max=60.0, dt=0.01, gamma=1.0)
    assert r1["distance"][-1] < 1e-6
    div2 = dirac.simulate("wgan-div", 1.0, 0.0, t_max=60.0, dt=0.01, k=0.5, p=2.0)
    assert div2["distance"][-1] < 1e-6
    div6 = dirac.simulate("wgan-div", 1.0, 0.0, t_max=60.0, dt=0.01)
    assert np.all(np.diff(div6["distance"]) <= 1e-12) and div6["distance"][-1] < 0.25
    gp = dirac.simulate("wgan-gp", 0.05, 0.0, t_max=60.0, dt=0.01, lam=1.0, n=1.0)
    assert np.min(gp["distance"][len(gp["distance"]) // 2 :]) > 1.0  # pushed away, never back


def test_div_radius_matches_the_flow():
    run = dirac.simulate("wgan-div", 1.5, 0.0, t_max=100.0, dt=0.01, k=2.0, p=6.0)
    for t in (20.0, 50.0, 100.0):
        i = int(round(t / 0.01))
        assert run["distance"][i] == pytest.approx(float(dirac.div_radius(t, 1.5)), rel=0.01)
    assert float(dirac.div_radius(1e6, 1.0)) == pytest.approx((15e6) ** -0.25, rel=1e-3)
    assert float(dirac.div_radius(3.0, 2.0, k=0.1, p=2.0)) == pytest.approx(2.0 * math.exp(-0.3))


def test_bad_input():
    with pytest.raises(ValueError, match="method must be one of"):
        dirac.vector_field("lsgan", 0.0, 0.0)
    with pytest.raises(ValueError, match="allowed: lam, n"):
        dirac.vector_field("wgan-gp", 0.0, 0.0, k=1.0)
    with pytest.raises(ValueError, match="p must be > 1"):
        dirac.vector_field("wgan-div", 0.0, 0.0, p=1.0)
    with pytest.raises(ValueError, match="gamma must be > 0"):
        dirac.simulate("gan-r1", 1.0, 0.0, gamma=0.0)
    with pytest.raises(ValueError, match="scheme must be one of"):
        dirac.simulate("wgan", 1.0, 0.0, scheme="euler")
    with pytest.raises(ValueError, match="dt and t_max"):
        dirac.simulate("wgan", 1.0, 0.0, dt=0.0)
    with pytest.raises(ValueError, match="p >= 2"):
        dirac.div_radius(1.0, 1.0, p=1.5)

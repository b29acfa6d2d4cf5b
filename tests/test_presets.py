"""Tests of wganbook.bookkit.presets: every preset validates; every bad parameter is named in the error."""
import pytest

from wganbook.bookkit import presets
from wganbook.bookkit.presets import PRESETS, get_preset, validate

CHAPTERS = ["ch01", "ch02", "ch03", "ch04", "ch05", "ch06"]


def test_every_chapter_has_quick_and_full_with_the_same_keys():
    for ch in CHAPTERS + ["train"]:
        assert set(PRESETS[ch]) == {"quick", "full"}, ch
        assert set(PRESETS[ch]["quick"]) == set(PRESETS[ch]["full"]), ch


@pytest.mark.parametrize("chapter", CHAPTERS + ["train"])
@pytest.mark.parametrize("preset", ["quick", "full"])
def test_every_preset_validates_and_fills_none(chapter, preset):
    p = validate(chapter, {"preset": preset, "seed": None, "device": None})
    expected = get_preset(chapter, preset)
    assert set(p) == set(expected)
    assert p.preset == preset and p["seed"] == 0 and p.device == "auto"
    for name, value in expected.items():
        if isinstance(value, list) and presets.spec_for(chapter, name).length is None:
            assert p[name] == value
    assert validate(chapter, {"preset": preset}) == p  # names left out come from the preset too


def test_values_override_the_preset_and_are_normalised():
    p = validate("train", {"steps": 7, "lr": 1, "lam": 0, "method": "wgan-clip", "betas": [0.5, 0.9]})
    assert p.steps == 7 and p.lr == 1.0 and isinstance(p.lr, float) and p.lam == 0.0
    assert p.betas == (0.5, 0.9) and p.method == "wgan-clip"
    assert validate("ch03", {"clips": (0.1, 1)})["clips"] == [0.1, 1.0]
    assert validate("train", {"device": "cuda:1"}).device == "cuda:1"


def test_get_preset_returns_a_copy():
    a = get_preset("ch03", "quick")
    a["clips"].append(99.0)
    assert 99.0 not in get_preset("ch03", "quick")["clips"]


@pytest.mark.parametrize("params, name, allowed", [
    ({"preset": "medium"}, "preset", "quick, full"),
    ({"method": "wgan-x"}, "method", "wgan-gp"),
    ({"dataset": "imagenet"}, "dataset", "8gaussians"),
    ({"steps": 0}, "steps", ">= 1"),
    ({"n_critic": 0}, "n_critic", ">= 1"),
    ({"lr": -1e-4}, "lr", "> 0"),
    ({"lr": 0}, "lr", "> 0"),
    ({"lam": -0.1}, "lam", ">= 0"),
    ({"lr": float("nan")}, "lr", "finite"),
    ({"device": "tpu"}, "device", "auto, cpu"),
    ({"betas": [0.5]}, "betas", "length 2"),
    ({"betas": [0.5, 1.0]}, "betas[1]", "[0.0, 1.0)"),
    ({"bogus": 1}, "bogus", "steps"),
])
def test_bad_values_raise_value_error_naming_parameter_and_allowed(params, name, allowed):
    with pytest.raises(ValueError) as info:
        validate("train", params)
    msg = str(info.value)
    assert name in msg and allowed in msg


@pytest.mark.parametrize("chapter, params, name", [
    ("ch05", {"strategies": ["real-fake", "everywhere"]}, "strategies[1]"),
    ("ch03", {"toy_dataset": "digits"}, "toy_dataset"),
    ("ch03", {"image_dataset": "8gaussians"}, "image_dataset"),
    ("ch03", {"clips": []}, "clips"),
    ("ch03", {"clips": [0.0]}, "clips[0]"),
    ("ch01", {"n_samples": 1}, "n_samples"),
])
def test_chapter_specific_bad_values(chapter, params, name):
    with pytest.raises(ValueError, match=name.replace("[", r"\[").replace("]", r"\]")):
        validate(chapter, params)


@pytest.mark.parametrize("params, name", [
    ({"steps": "100"}, "steps"),
    ({"steps": 10.0}, "steps"),
    ({"steps": True}, "steps"),
    ({"seed": False}, "seed"),
    ({"lr": "1e-4"}, "lr"),
    ({"lr": True}, "lr"),
    ({"method": 3}, "method"),
    ({"betas": "0.5,0.9"}, "betas"),
])
def test_wrong_types_raise_type_error(params, name):
    with pytest.raises(TypeError, match=name):
        validate("train", params)


def test_inferred_types_for_chapter_parameters(monkeypatch):
    monkeypatch.setitem(PRESETS, "chXX", {"quick": {"n_modes": 8, "ratio": 0.5, "flag": True, "names": ["a"]},
                                          "full": {"n_modes": 25, "ratio": 0.5, "flag": False, "names": ["b"]}})
    assert validate("chXX", {"n_modes": None}).n_modes == 8
    assert validate("chXX", {"ratio": 1}).ratio == 1.0
    with pytest.raises(TypeError, match="n_modes"):
        validate("chXX", {"n_modes": 2.5})
    with pytest.raises(TypeError, match="flag"):
        validate("chXX", {"flag": 1})
    with pytest.raises(TypeError, match=r"names\[0\]"):
        validate("chXX", {"names": [1]})


def test_unknown_chapter_and_bad_params_type():
    with pytest.raises(ValueError, match="chapter must be one of: ch01"):
        validate("ch99", {})
    with pytest.raises(ValueError, match="chapter"):
        get_preset("ch99", "quick")
    with pytest.raises(TypeError, match="params"):
        validate("ch01", [("seed", 1)])
    with pytest.raises(ValueError, match="preset"):
        get_preset("ch01", "huge")


def test_params_attribute_access():
    p = validate("ch04", {})
    assert p.method == p["method"] == "wgan-gp"
    with pytest.raises(AttributeError, match="parameters"):
        p.nope


# ---------------------------------------------------------------------------------------------
# step_scale: a factor on every step count (steps and *_steps), at least MIN_STEPS
# ---------------------------------------------------------------------------------------------
def test_step_scale_multiplies_every_step_count_and_nothing_else():
    full = get_preset("ch04", "full")
    p = validate("ch04", {"preset": "full", "step_scale": 0.01})
    steps = [k for k in full if presets.is_step_count(k)]
    assert sorted(steps) == ["critic_steps", "deep_steps", "escape_steps", "image_steps",
                            "overfit_steps", "toy_steps"]
    for name in steps:
        assert p[name] == round(full[name] * 0.01), name      # 20000 -> 200, 100000 -> 1000, ...
    assert (p.toy_steps, p.image_steps, p.critic_steps, p.deep_steps) == (200, 1000, 100, 20)
    for name, value in full.items():                           # widths, batch sizes, seeds: unchanged
        if not presets.is_step_count(name) and name != "step_scale":
            assert p[name] == value or list(p[name]) == list(value), name
    assert p.step_scale == 0.01
    # the train preset's `steps` too; a scale above 1 lengthens runs
    assert validate("train", {"preset": "quick", "step_scale": 2.5}).steps == 5000


def test_step_scale_has_a_floor_and_one_is_the_identity():
    p = validate("ch03", {"preset": "full", "step_scale": 1e-9})
    assert all(p[k] == presets.MIN_STEPS == 2 for k in p if presets.is_step_count(k))
    assert validate("ch03", {"step_scale": 1}) == validate("ch03", {}) == validate("ch03", {"step_scale": None})
    assert validate("ch03", {}).step_scale == 1.0
    # an explicit step count is scaled as well (the scale applies to the resolved value)
    assert validate("ch05", {"steps": 300, "step_scale": 0.5}).steps == 150


@pytest.mark.parametrize("name, expected", [("steps", True), ("toy_steps", True), ("w1gen_steps", True),
                                            ("step_scale", False), ("n_steps_x", False), ("seeds", False)])
def test_is_step_count(name, expected):
    assert presets.is_step_count(name) is expected


@pytest.mark.parametrize("value, error", [(0, ValueError), (-1, ValueError), (0.0, ValueError),
                                          (float("inf"), ValueError), (float("nan"), ValueError),
                                          ("abc", TypeError), ("0.01", TypeError), (True, TypeError)])
def test_bad_step_scale_names_the_parameter(value, error):
    with pytest.raises(error, match=r"step_scale must be a float > 0"):
        validate("ch03", {"preset": "full", "step_scale": value})

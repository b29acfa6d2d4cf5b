"""Tests of wganbook.bookkit.presets: every preset validates; every bad parameter is named in the error."""

import json
import math
import subprocess
import sys

import nbformat
import numpy as np
import pytest

from wganbook.bookkit import presets
from wganbook.bookkit.presets import PRESETS, ParameterError, ParameterTypeError, get_preset, validate

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


@pytest.mark.parametrize(
    "params, name, allowed",
    [
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
    ],
)
def test_bad_values_raise_value_error_naming_parameter_and_allowed(params, name, allowed):
    with pytest.raises(ValueError) as info:
        validate("train", params)
    msg = str(info.value)
    assert name in msg and allowed in msg


@pytest.mark.parametrize(
    "chapter, params, name",
    [
        ("ch05", {"strategies": ["real-fake", "everywhere"]}, "strategies[1]"),
        ("ch03", {"toy_dataset": "digits"}, "toy_dataset"),
        ("ch03", {"image_dataset": "8gaussians"}, "image_dataset"),
        ("ch03", {"clips": []}, "clips"),
        ("ch03", {"clips": [0.0]}, "clips[0]"),
        ("ch01", {"n_samples": 1}, "n_samples"),
    ],
)
def test_chapter_specific_bad_values(chapter, params, name):
    with pytest.raises(ValueError, match=name.replace("[", r"\[").replace("]", r"\]")):
        validate(chapter, params)


@pytest.mark.parametrize(
    "params, name",
    [
        ({"steps": "100"}, "steps"),
        ({"steps": 10.0}, "steps"),
        ({"steps": True}, "steps"),
        ({"seed": False}, "seed"),
        ({"lr": "1e-4"}, "lr"),
        ({"lr": True}, "lr"),
        ({"method": 3}, "method"),
        ({"betas": "0.5,0.9"}, "betas"),
    ],
)
def test_wrong_types_raise_type_error(params, name):
    with pytest.raises(TypeError, match=name):
        validate("train", params)


def test_inferred_types_for_chapter_parameters(monkeypatch):
    monkeypatch.setitem(
        PRESETS,
        "chXX",
        {
            "quick": {"n_modes": 8, "ratio": 0.5, "flag": True, "names": ["a"]},
            "full": {"n_modes": 25, "ratio": 0.5, "flag": False, "names": ["b"]},
        },
    )
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
        _ = p.nope


# ---------------------------------------------------------------------------------------------
# step_scale: a factor on every step count (steps and *_steps), at least MIN_STEPS
# ---------------------------------------------------------------------------------------------
def test_step_scale_multiplies_every_step_count_and_nothing_else():
    full = get_preset("ch04", "full")
    p = validate("ch04", {"preset": "full", "step_scale": 0.01})
    steps = [k for k in full if presets.is_step_count(k)]
    assert sorted(steps) == ["critic_steps", "deep_steps", "escape_steps", "image_steps", "overfit_steps", "toy_steps"]
    for name in steps:
        assert p[name] == round(full[name] * 0.01), name  # 20000 -> 200, 100000 -> 1000, ...
    assert (p.toy_steps, p.image_steps, p.critic_steps, p.deep_steps) == (200, 1000, 100, 20)
    for name, value in full.items():  # widths, batch sizes, seeds: unchanged
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


@pytest.mark.parametrize(
    "name, expected",
    [
        ("steps", True),
        ("toy_steps", True),
        ("w1gen_steps", True),
        ("step_scale", False),
        ("n_steps_x", False),
        ("seeds", False),
    ],
)
def test_is_step_count(name, expected):
    assert presets.is_step_count(name) is expected


@pytest.mark.parametrize(
    "value, error",
    [
        (0, ValueError),
        (-1, ValueError),
        (0.0, ValueError),
        (float("inf"), ValueError),
        (float("nan"), ValueError),
        ("abc", TypeError),
        ("0.01", TypeError),
        (True, TypeError),
    ],
)
def test_bad_step_scale_names_the_parameter(value, error):
    with pytest.raises(error, match=r"step_scale must be a float > 0"):
        validate("ch03", {"preset": "full", "step_scale": value})


# ---------------------------------------------------------------------------------------------
# validate(chapter, globals()): the parameters cell is the one list of a chapter's parameters
# ---------------------------------------------------------------------------------------------
def _namespace(**params):
    """What a notebook's globals() hold at the validate call: IPython's names, imports, the parameters."""
    ns = {
        "__name__": "__main__",
        "__builtins__": {},
        "_ih": [""],
        "_": None,
        "In": [""],
        "Out": {},
        "get_ipython": lambda: None,
        "exit": object(),
        "quit": object(),
        "sys": sys,
        "np": np,
        "math": math,
        "Markdown": str,
        "display": print,
        "claim": lambda *a: None,
    }
    ns.update(params)
    return ns


def test_validate_reads_the_parameters_from_the_namespace():
    ns = _namespace(preset="quick", seed=3, device="cpu", step_scale=None, lam=0.5, methods=None)
    p = validate("ch04", ns)
    assert p == validate("ch04", {"seed": 3, "device": "cpu", "lam": 0.5})
    assert p.seed == 3 and p.lam == 0.5 and p.methods == get_preset("ch04", "quick")["methods"]
    assert p.checkpoint_root is None  # every chapter has it (BASE)
    assert validate("ch04", _namespace(checkpoint_root="runs/x/ch04")).checkpoint_root == "runs/x/ch04"


@pytest.mark.parametrize(
    "injected", [{"bogus": 1}, {"bogus": "x"}, {"bogus": [1, 2]}, {"bogus": None}, {"lamda": 10.0, "bogus": True}]
)
def test_an_injected_unknown_parameter_is_refused_in_one_line(injected):
    with pytest.raises(ParameterError) as info:
        validate("ch04", _namespace(preset="quick", seed=0, **injected))
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("unknown parameter(s) ")
    assert all(repr(k) in msg for k in injected)
    assert "parameters must be among: " in msg and "toy_steps" in msg and "checkpoint_root" in msg


def test_variables_defined_after_an_earlier_validate_are_not_parameters():
    """A reader reruns the setup cell after the notebook ran: its own variables (defined after ``params``) pass."""
    ns = _namespace(preset="quick", seed=1)
    ns["params"] = validate("ch04", ns)
    ns.update(records=[1, 2], m=64, fits={"a": 1})
    assert validate("ch04", ns) == ns["params"]
    ns2 = _namespace(preset="quick", records=[1, 2])  # before any params: refused
    with pytest.raises(ParameterError, match="'records'"):
        validate("ch04", ns2)


def test_validate_keeps_accepting_a_plain_dict():
    assert validate("ch01", {"preset": "full", "seed": 2}).n_samples == get_preset("ch01", "full")["n_samples"]
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) 'bogus' for ch01"):
        validate("ch01", {"bogus": 1})


@pytest.mark.parametrize("chapter", ["ch01", "ch03", "ch05", "train"])
def test_seeds_stop_at_two_to_the_32(chapter):
    assert validate(chapter, {"seed": 2**32 - 1}).seed == 2**32 - 1
    with pytest.raises(ParameterError, match=r"seed must be an int in \[0, 4294967295\], got 1099511627776"):
        validate(chapter, {"seed": 2**40})


@pytest.mark.parametrize(
    "chapter, params, message",
    [
        ("ch03", {"dataset": "8gaussians"}, "unknown dataset '8gaussians'; dataset must be one of: digits, mnist"),
        ("ch03", {"toy_dataset": "swissroll"}, "toy_dataset must be one of: 8gaussians, 25gaussians"),
        ("ch04", {"dataset": "25gaussians"}, "dataset must be one of: digits, mnist"),
        ("ch04", {"method": "wgan-clip"}, "unknown method 'wgan-clip'; method must be one of: wgan-gp, wgan-lp"),
        (
            "ch04",
            {"toy_datasets": ["8gaussians", "swissroll"]},
            "toy_datasets[1] must be one of: 8gaussians, 25gaussians",
        ),
    ],
)
def test_chapter_constraints_are_in_the_validator(chapter, params, message):
    with pytest.raises(ParameterError) as info:
        validate(chapter, params)
    assert message in str(info.value)
    # the shared schema still allows these values where a chapter takes any dataset
    assert validate("train", {"dataset": "8gaussians"}).dataset == "8gaussians"


def test_parameter_errors_are_value_and_type_errors():
    assert issubclass(ParameterError, ValueError) and issubclass(ParameterTypeError, TypeError)
    with pytest.raises(ParameterTypeError, match="seed"):
        validate("ch01", {"seed": "zero"})
    with pytest.raises(ParameterTypeError, match="checkpoint_root"):
        validate("ch01", {"checkpoint_root": 3})


def _validating_notebook(path, chapter="ch04"):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('preset = "quick"\nseed = 0\nlam = None\ncheckpoint_root = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_code_cell("import sys\nimport numpy as np"),
        params,
        nbformat.v4.new_code_cell(
            "from wganbook.bookkit import presets\n"
            f"params = presets.validate({chapter!r}, globals())\n"
            "print('validated', params.seed, params.lam)"
        ),
        nbformat.v4.new_code_cell("raise RuntimeError('the work started')"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize(
    "argv, words",
    [
        (["-p", "bogus", "1"], ["ParameterError", "unknown parameter(s) 'bogus' for ch04", "parameters must be among"]),
        (["-p", "seed", str(2**40)], ["ParameterError", "seed must be an int in [0, 4294967295]"]),
        (["-p", "dataset", "8gaussians"], ["ParameterError", "dataset must be one of: digits"]),
    ],
)
def test_papermill_with_a_bad_parameter_fails_in_the_validate_cell(tmp_path, argv, words):
    """``papermill chapter.ipynb out.ipynb -p bogus 1``: refused by validate(globals()), before any work."""
    path = _validating_notebook(tmp_path / "04_tiny.ipynb")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(path),
            str(tmp_path / "out.ipynb"),
            *argv,
            "-k",
            "python3",
            "--no-progress-bar",
            "--cwd",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode != 0
    for word in words:
        assert word in out.stderr, out.stderr[-2000:]
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert executed.cells[-1].get("execution_count") is None  # the work never started
    # good parameters (and the runner's checkpoint_root) pass, and the work starts
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(path),
            str(tmp_path / "ok.ipynb"),
            "-p",
            "seed",
            "7",
            "-p",
            "checkpoint_root",
            "runs/c",
            "-k",
            "python3",
            "--no-progress-bar",
            "--cwd",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "the work started" in ok.stderr
    cell = next(c for c in nbformat.read(tmp_path / "ok.ipynb", as_version=4).cells if "presets.validate" in c.source)
    assert "validated 7 None" in json.dumps(cell.outputs)

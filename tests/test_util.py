"""Tests of wganbook._util: the one atomic write, the one JSON conversion, the one set of argument checks."""

import io
import json
import math
import os

import numpy as np
import pytest
import torch

from wganbook import _util
from wganbook._util import Bool, Choice, Device, Float, Int, Seq, Str, atomic_write, check_value, jsonable, temp_path
from wganbook.schema import SCHEMA
from wganbook.train import CHECKPOINT_NAME, TrainConfig, remove_stale_temp_files
from wganbook.train.config import FIELD_SPECS


# ------------------------------------------------------------------ atomic_write
def test_atomic_write_takes_text_bytes_and_a_writer(tmp_path):
    atomic_write(tmp_path / "a.txt", "héllo\n")
    assert (tmp_path / "a.txt").read_bytes() == "héllo\n".encode("utf-8")
    atomic_write(tmp_path / "b.bin", bytes(range(256)))
    assert (tmp_path / "b.bin").read_bytes() == bytes(range(256))
    t = torch.arange(6.0).reshape(2, 3)
    atomic_write(str(tmp_path / "new" / "deeper" / "t.pt"), lambda f: torch.save({"t": t}, f))
    assert torch.equal(torch.load(tmp_path / "new" / "deeper" / "t.pt", weights_only=True)["t"], t)
    atomic_write(tmp_path / "a.txt", b"replaced")  # an existing file is replaced
    assert (tmp_path / "a.txt").read_bytes() == b"replaced"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin", "new"]
    with pytest.raises(TypeError, match="content must be a str, bytes or a callable"):
        atomic_write(tmp_path / "c.txt", 3)
    assert not (tmp_path / "c.txt").exists()


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    path.write_text("old")

    def half_then_fail(f):
        f.write(b"new, but only half of it")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]

    def no_rename(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="cross-device"):
        atomic_write(path, "new")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_atomic_write_fsyncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace, real_open = os.fsync, os.replace, os.open

    def fsync(fd):
        events.append(("fsync", "folder" if fd in folders else "file"))
        real_fsync(fd)

    folders = set()

    def os_open(path, flags, *a, **k):
        fd = real_open(path, flags, *a, **k)
        if os.path.isdir(path):
            folders.add(fd)
        return fd

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace",)), real_replace(a, b))[1])
    atomic_write(tmp_path / "x.txt", "x")
    assert events == [("fsync", "file"), ("replace",), ("fsync", "folder")]


def test_the_temporary_file_is_the_one_stale_files_are_recognised_by(tmp_path):
    path = tmp_path / CHECKPOINT_NAME
    assert temp_path(path) == tmp_path / f".{CHECKPOINT_NAME}.{os.getpid()}.tmp"
    assert remove_stale_temp_files(tmp_path, CHECKPOINT_NAME) == []
    seen = []
    atomic_write(path, lambda f: seen.append(sorted(p.name for p in tmp_path.iterdir())))
    assert seen == [[temp_path(path).name]]  # written next to its target, under that name


def test_atomic_write_stays_the_only_writer():
    """The checkpoint writer, the command line and the classifier cache use it (no private copies)."""
    from wganbook import __main__ as cli
    from wganbook import metrics
    from wganbook.train import checkpoint

    assert cli.atomic_write is atomic_write and metrics.atomic_write is atomic_write
    assert checkpoint.atomic_write is atomic_write
    for module in (cli, metrics, checkpoint):
        assert not hasattr(module, "_atomic_write") and not hasattr(module, "_fsync_dir")


# ------------------------------------------------------------------ jsonable
def test_jsonable_gives_plain_json_types():
    value = {
        "int": np.int64(3),
        "float": np.float32(0.5),
        "bool": True,
        "none": None,
        "text": "a",
        "tuple": (1, 2.5),
        "array": np.arange(3),
        "tensor": torch.tensor([1.0, 2.0]),
        "inf": float("inf"),
        "-inf": -math.inf,
        "nan": float("nan"),
        7: {"nested": (np.float64(1.25),)},
        "object": io.StringIO,
    }
    out = jsonable(value)
    assert out == {
        "int": 3,
        "float": 0.5,
        "bool": True,
        "none": None,
        "text": "a",
        "tuple": [1, 2.5],
        "array": [0, 1, 2],
        "tensor": [1.0, 2.0],
        "inf": "inf",
        "-inf": "-inf",
        "nan": "nan",
        "7": {"nested": [1.25]},
        "object": str(io.StringIO),
    }
    assert type(out["int"]) is int and type(out["bool"]) is bool and type(out["float"]) is float
    json.dumps(out, allow_nan=False)  # strict JSON


def test_jsonable_keeps_resolved_hyperparameters_as_they_were_stored():
    """What the checkpoint's ``hparams`` held before (the old history._jsonable): tuples as lists."""
    hp = TrainConfig(method="wgan-gp").hparams()
    out = jsonable(hp)
    assert out == {k: list(v) if isinstance(v, tuple) else v for k, v in hp.items()}
    assert out["betas"] == [0.5, 0.9] and out["lr_g"] is None


# ------------------------------------------------------------------ check_value
@pytest.mark.parametrize(
    "spec, value, exc, words",
    [
        (Int(lo=1), 0, ValueError, ["n must be an int >= 1", "got 0"]),
        (Int(lo=1), 2.0, TypeError, ["n must be an int >= 1", "float"]),
        (Int(lo=1), True, TypeError, ["n must be an int"]),
        (Int(lo=0, hi=2**32 - 1), 2**32, ValueError, ["n must be an int in [0, 4294967295]"]),
        (Float(lo=0.0, lo_open=True), 0.0, ValueError, ["n must be a float > 0.0"]),
        (Float(lo=0.0), float("nan"), ValueError, ["n must be a float >= 0.0", "finite"]),
        (Float(lo=0.0), "1", TypeError, ["n must be a float >= 0.0", "str"]),
        (Bool(), 1, TypeError, ["n must be a bool (True or False)"]),
        (Str(), 3, TypeError, ["n must be a str"]),
        (Choice(("a", "b")), "c", ValueError, ["unknown n 'c'", "n must be one of: a, b"]),
        (Choice(lambda: ("x",)), "y", ValueError, ["n must be one of: x"]),
        (Device(), "tpu", ValueError, ["n must be one of: auto, cpu, cuda, cuda:N, mps"]),
        (Seq(Int(lo=1), length=2), [1], ValueError, ["n must be a list of length 2"]),
        (Seq(Int(lo=1)), [1, 0], ValueError, ["n[1] must be an int >= 1"]),
        (Seq(Int(lo=1)), [], ValueError, ["n must be a non-empty list"]),
        (Int(lo=1), None, TypeError, ["n must be an int >= 1, got None"]),
    ],
)
def test_check_value_names_the_parameter_and_the_allowed_values(spec, value, exc, words):
    with pytest.raises(exc) as info:
        check_value("n", value, spec)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_check_value_normalises_good_values():
    assert check_value("n", np.int64(3), Int(lo=1)) == 3 and type(check_value("n", np.int64(3), Int())) is int
    assert type(check_value("x", 2, Float())) is float and check_value("x", 2, Float()) == 2.0
    assert check_value("b", [0.5, 0.9], Seq(Float(), length=2)) == (0.5, 0.9)
    assert check_value("s", (1, 2), Seq(Int())) == [1, 2]
    assert check_value("n", None, Int(none_ok=True)) is None
    assert check_value("d", "cuda:1", Device()) == "cuda:1"


def test_the_package_has_no_private_count_checkers_left():
    from wganbook import batchw1, lipschitz

    assert not hasattr(batchw1, "_pos_int") and not hasattr(lipschitz, "_check_nonneg")
    with pytest.raises(ValueError, match=r"n_projections must be an int >= 1, got 0"):
        batchw1.sliced_w1(torch.zeros(4, 2), torch.zeros(4, 2), n_projections=0)
    assert _util.check_value is check_value


# ------------------------------------------------------------------ the schema drives TrainConfig's checks
def test_seed_spec_is_numpys_range_in_the_schema_and_the_config():
    assert SCHEMA["seed"] == Int(lo=0, hi=2**32 - 1) and FIELD_SPECS["seed"] is SCHEMA["seed"]
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 4294967295\], got 4294967296"):
        TrainConfig(seed=2**32)


@pytest.mark.parametrize("name", sorted(FIELD_SPECS))
def test_every_config_field_is_checked_by_its_spec(name):
    spec = FIELD_SPECS[name]
    with pytest.raises(TypeError) as info:
        TrainConfig(**{name: 1j})  # no spec takes a complex number
    assert str(info.value).startswith(f"{name} must be ")
    assert spec.describe() in str(info.value) or spec.kind in ("bool", "str", "choice", "device")


def test_shared_names_take_the_schema_entry():
    shared = {
        "method": "method",
        "data": "dataset",
        "steps": "steps",
        "batch_size": "batch_size",
        "lr": "lr",
        "lr_g": "lr",
        "betas": "betas",
        "lam": "lam",
        "clip": "clip",
        "k": "k",
        "p": "p",
        "seed": "seed",
        "strategy": "strategy",
        "device": "device",
        "width": "width",
        "depth": "depth",
        "z_dim": "z_dim",
        "warmup": "warmup",
        "w1_every": "w1_every",
        "eval_every": "eval_every",
        "log_every": "log_every",
        "checkpoint_every": "checkpoint_every",
        "n_critic": "n_critic",
    }
    for field, key in shared.items():
        assert FIELD_SPECS[field] is SCHEMA[key], field

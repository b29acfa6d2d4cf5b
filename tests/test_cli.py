"""Tests of the command line ``python -m wganbook``."""

import json
import subprocess
import sys

import pytest

from wganbook.__main__ import build_parser, main

TINY = ["--width", "8", "--depth", "1", "--batch-size", "16", "--device", "cpu", "--no-progress", "--eval-n", "64"]
KEYS = {
    "config",
    "hparams",
    "metrics",
    "steps",
    "wall_time_s",
    "device",
    "generator_sha256",
    "critic_sha256",
    "versions",
}


def test_help_documents_every_flag():
    out = subprocess.run(
        [sys.executable, "-m", "wganbook", "train", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0
    for flag in (
        "--method",
        "--dataset",
        "--steps",
        "--seed",
        "--device",
        "--batch-size",
        "--checkpoint-dir",
        "--resume",
        "--out",
        "--w1-every",
        "--lr",
        "--lam",
        "--n-critic",
    ):
        assert flag in out.stdout
    assert "wgan-gp" in out.stdout and "8gaussians" in out.stdout


def test_parser_has_subcommands_hook():
    parser = build_parser()
    args = parser.parse_args(["train", "--steps", "3"])
    assert args.command == "train" and args.steps == 3 and callable(args.func)


def test_tiny_run_writes_the_json_summary(tmp_path, capsys):
    out = tmp_path / "res" / "results.json"
    rc = main(
        [
            "train",
            "--method",
            "wgan-gp",
            "--dataset",
            "8gaussians",
            "--steps",
            "3",
            "--seed",
            "1",
            "--out",
            str(out),
            "--w1-every",
            "1",
        ]
        + TINY
    )
    assert rc == 0
    summary = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == summary
    assert KEYS <= set(summary)
    assert summary["config"]["method"] == "wgan-gp" and summary["config"]["seed"] == 1
    assert summary["steps"] == 3 and summary["device"] == "cpu"
    for key in ("generator_sha256", "critic_sha256"):
        assert len(summary[key]) == 64 and int(summary[key], 16) >= 0
    m = summary["metrics"]
    assert {"modes", "high_quality", "w1_target", "w1_estimate", "w1_exact"} <= set(m)
    assert 0 <= m["modes"] <= 8 and m["total_modes"] == 8
    assert summary["hparams"]["lam"] == 0.1  # toy override of the WGAN-GP toy script
    assert not list(out.parent.glob("*.tmp"))


def test_cli_resume_equals_a_straight_run(tmp_path, capsys):
    straight = tmp_path / "a.json"
    main(["train", "--steps", "4", "--out", str(straight)] + TINY)
    ck = tmp_path / "ck"
    main(["train", "--steps", "2", "--checkpoint-dir", str(ck)] + TINY)
    resumed = tmp_path / "b.json"
    main(["train", "--steps", "4", "--checkpoint-dir", str(ck), "--resume", "--out", str(resumed)] + TINY)
    capsys.readouterr()
    a, b = json.loads(straight.read_text()), json.loads(resumed.read_text())
    assert a["generator_sha256"] == b["generator_sha256"] and a["critic_sha256"] == b["critic_sha256"]
    assert sorted(p.name for p in ck.iterdir()) == ["checkpoint.pt"]


@pytest.mark.parametrize(
    "argv, flag, allowed",
    [
        (["--method", "wgan-x"], "--method", "wgan-gp"),
        (["--dataset", "imagenet"], "--dataset", "8gaussians"),
        (["--steps", "0"], "--steps", ">= 1"),
        (["--steps", "ten"], "--steps", "int"),
        (["--lr", "-1"], "--lr", "> 0"),
        (["--lam", "-1"], "--lam", ">= 0"),
        (["--device", "tpu"], "--device", "auto, cpu"),
    ],
)
def test_invalid_flags_exit_nonzero_naming_the_flag(argv, flag, allowed, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train"] + argv)
    assert info.value.code != 0
    err = capsys.readouterr().err
    assert flag in err and allowed in err


def test_invalid_method_via_subprocess_lists_allowed_names():
    out = subprocess.run(
        [sys.executable, "-m", "wganbook", "train", "--method", "wgan-x"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2
    assert "--method" in out.stderr and "wgan-clip" in out.stderr and "wgan-gp" in out.stderr


def test_resume_without_checkpoint_dir_and_unused_hyperparameter(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["train", "--resume"] + TINY)
    assert "--checkpoint-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--method", "wgan-clip", "--lam", "1"] + TINY)
    assert "lam" in capsys.readouterr().err
    rc = main(["train", "--steps", "2", "--checkpoint-dir", str(tmp_path / "none"), "--resume"] + TINY)
    assert rc == 2 and "checkpoint" in capsys.readouterr().err


def test_every_subcommand_is_registered():
    parser = build_parser()
    for argv in (["train"], ["book", "--dry-run"], ["claims"], ["stale"]):
        args = parser.parse_args(argv)
        assert args.command == argv[0] and callable(args.func)

"""Fail before work, lose nothing: bad paths, bad checkpoints, overwrites, interrupts, divergence
and bad API arguments each get one clear message that names the parameter or the file -- and
path/argument errors come before any training (``train`` is replaced by a tripwire to prove it)."""

import errno
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from wganbook import __main__ as cli
from wganbook import _util, models
from wganbook import train as T
from wganbook.__main__ import main
from wganbook.lipschitz import div_penalty, gradient_penalty
from wganbook.objectives import critic_loss, generator_loss
from wganbook.train import (
    CHECKPOINT_NAME,
    DIVERGENCE_THRESHOLD,
    CheckpointError,
    TrainConfig,
    TrainingDiverged,
    TrainingInterrupted,
    checkpoint,
    load_checkpoint,
    params_sha256,
    train,
)
from wganbook.train.checkpoint import CHECKPOINT_FORMAT, _DeferSignals

TINY = ["--width", "8", "--depth", "1", "--batch-size", "16", "--device", "cpu", "--no-progress", "--eval-n", "64"]
TINY_CFG = dict(method="wgan-gp", data="8gaussians", width=8, depth=1, batch_size=16, device="cpu", progress=False)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def cfg(**kw):
    args = dict(TINY_CFG, steps=2)
    args.update(kw)
    return TrainConfig(**args)


@pytest.fixture
def no_training(monkeypatch):
    """Replace ``train`` (the package's and the command line's): a call means the error came after
    work had started."""

    def tripwire(*a, **k):
        raise AssertionError("training started although the arguments were invalid")

    monkeypatch.setattr(T, "train", tripwire)
    monkeypatch.setattr(cli, "train", tripwire)


def run_cli(argv, capsys, fast=True):
    """``main(["train", ...])`` -> (exit code, stderr); argparse errors give their SystemExit code.
    ``fast``: the call must return within 5 s (errors before any training)."""
    t0 = time.perf_counter()
    try:
        rc = main(["train"] + argv + TINY)
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err
    assert not fast or time.perf_counter() - t0 < 5.0
    return rc, err


def last_line(err):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    return lines[-1]


def one_line_error(err):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("wganbook train: error: "), err
    assert "Traceback" not in err
    return lines[0]


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory):
    """A real 4-step checkpoint (shared, read-only)."""
    d = tmp_path_factory.mktemp("ck4")
    train(cfg(steps=4, checkpoint_dir=str(d)))
    return d


def copy_ckpt(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    (dst / CHECKPOINT_NAME).write_bytes((src / CHECKPOINT_NAME).read_bytes())
    return dst


def read_only_fs(monkeypatch):
    """Make every file creation of the package's writers fail as on a read-only file system (the
    folder probe of wganbook.train.checkpoint and the one atomic write of wganbook._util)."""
    real_open = open

    def ro_open(path, mode="r", *a, **k):
        if any(c in mode for c in "wax+"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr(checkpoint, "open", ro_open, raising=False)
    monkeypatch.setattr(_util, "open", ro_open, raising=False)


# ============================================================ 1. paths, checked before any step
@pytest.mark.parametrize(
    "case", ["out-below-file", "out-is-dir", "ckdir-is-file", "ckdir-below-file", "ckpt-is-dir", "ckpt-is-dir-resume"]
)
def test_bad_paths_fail_before_training_naming_the_flag(case, tmp_path, capsys, no_training):
    afile = tmp_path / "afile"
    afile.write_text("x")
    argv, flag, path = {
        "out-below-file": (["--out", str(afile / "sub" / "r.json")], "--out", afile / "sub" / "r.json"),
        "out-is-dir": (["--out", str(tmp_path)], "--out", tmp_path),
        "ckdir-is-file": (["--checkpoint-dir", str(afile)], "--checkpoint-dir", afile),
        "ckdir-below-file": (["--checkpoint-dir", str(afile / "ck")], "--checkpoint-dir", afile / "ck"),
        "ckpt-is-dir": (["--checkpoint-dir", str(tmp_path / "ck")], "--checkpoint-dir", tmp_path / "ck"),
        "ckpt-is-dir-resume": (
            ["--checkpoint-dir", str(tmp_path / "ck"), "--resume"],
            CHECKPOINT_NAME,
            tmp_path / "ck",
        ),
    }[case]
    if case.startswith("ckpt-is-dir"):
        (tmp_path / "ck" / CHECKPOINT_NAME).mkdir(parents=True)
    rc, err = run_cli(argv, capsys)
    line = one_line_error(err)
    assert rc == 2 and flag in line and str(path) in line


def test_read_only_file_system_names_the_path_given_not_a_temp_file(tmp_path, capsys, monkeypatch, no_training):
    read_only_fs(monkeypatch)
    out = tmp_path / "res.json"
    rc, err = run_cli(["--out", str(out)], capsys)
    line = one_line_error(err)
    assert rc == 2 and "--out" in line and str(out) in line and "not writable" in line
    assert ".tmp" not in line
    rc, err = run_cli(["--checkpoint-dir", str(tmp_path / "ck")], capsys)
    line = one_line_error(err)
    assert rc == 2 and "--checkpoint-dir" in line and "not writable" in line


def test_unwritable_folders_are_refused(tmp_path, capsys, monkeypatch, no_training):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if IS_ROOT:  # root ignores file permissions: the probe write is refused as it would be for a user
        real_probe = checkpoint._probe_write

        def refused(folder):
            if Path(folder) == locked or locked in Path(folder).parents:
                raise PermissionError(errno.EACCES, "Permission denied", str(folder))
            real_probe(folder)

        monkeypatch.setattr(checkpoint, "_probe_write", refused)
    try:
        for argv, flag in (
            (["--out", str(locked / "r.json")], "--out"),
            (["--out", str(locked / "new" / "r.json")], "--out"),
            (["--checkpoint-dir", str(locked)], "--checkpoint-dir"),
        ):
            rc, err = run_cli(argv, capsys)
            assert rc == 2 and flag in one_line_error(err)
    finally:
        locked.chmod(0o700)


def test_api_checks_checkpoint_dir_before_the_first_step(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    calls = []

    def fn(generator, step):
        calls.append(step)
        return {}

    for bad in (afile, afile / "sub"):
        with pytest.raises(CheckpointError, match="checkpoint_dir"):
            train(cfg(checkpoint_dir=str(bad), eval_every=1, eval_fn=fn))
    (tmp_path / "ck" / CHECKPOINT_NAME).mkdir(parents=True)
    with pytest.raises(CheckpointError, match="is a folder"):
        train(cfg(checkpoint_dir=str(tmp_path / "ck"), eval_every=1, eval_fn=fn))
    assert calls == []


def test_missing_out_folder_is_created_and_write_failure_keeps_the_summary(tmp_path, capsys, monkeypatch):
    out = tmp_path / "new" / "deeper" / "r.json"
    rc, _ = run_cli(["--out", str(out), "--steps", "1"], capsys, fast=False)
    assert rc == 0 and json.loads(out.read_text())["steps"] == 1

    # a write that fails only at the end (disk full): the summary still reaches stdout
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cli, "atomic_write", full)
    rc = main(["train", "--steps", "1", "--force", "--out", str(out)] + TINY)
    cap = capsys.readouterr()
    assert rc == 1 and json.loads(cap.out)["steps"] == 1
    line = one_line_error(cap.err)
    assert "--out" in line and str(out) in line


# ============================================================ 2. checkpoints that cannot be used
def _garbage_checkpoints(src, root):
    good = (src / CHECKPOINT_NAME).read_bytes()
    cases = {
        "truncated": good[: len(good) // 2],
        "zero-byte": b"",
        "garbage": bytes(range(256)) * 10,
        "text": b"hello, this is not a checkpoint\n",
    }
    dirs = {}
    for name, blob in cases.items():
        d = root / name
        d.mkdir()
        (d / CHECKPOINT_NAME).write_bytes(blob)
        dirs[name] = d
    for name, obj in {
        "foreign": {"model": torch.zeros(2)},
        "not-a-dict": [1, 2, 3],
        "future-version": {"format": CHECKPOINT_FORMAT, "version": 99, "step": 1},
        "incomplete": {"format": CHECKPOINT_FORMAT, "version": checkpoint._CKPT_VERSION, "step": 1},
        # wganbook <= 0.1 format 1 stored NumPy's RNG state, which weights_only=True refuses
        "format-1": {"version": 1, "config": {}, "rng": {"numpy": np.random.get_state()}},
    }.items():
        d = root / name
        d.mkdir()
        torch.save(obj, d / CHECKPOINT_NAME)
        dirs[name] = d
    return dirs


def test_every_unusable_checkpoint_gives_one_error_naming_the_file(ckpt_dir, tmp_path):
    for name, d in _garbage_checkpoints(ckpt_dir, tmp_path).items():
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(d)
        msg = str(info.value)
        assert str(d / CHECKPOINT_NAME) in msg and "\n" not in msg, name
        assert "delete it" in msg, name
        if name in ("format-1", "future-version"):
            assert "older wganbook" in msg or "version 99" in msg, name


def test_cli_resume_from_a_truncated_checkpoint(ckpt_dir, tmp_path, capsys, no_training):
    d = copy_ckpt(ckpt_dir, tmp_path / "ck")
    p = d / CHECKPOINT_NAME
    p.write_bytes(p.read_bytes()[:1000])
    rc, err = run_cli(["--steps", "6", "--checkpoint-dir", str(d), "--resume"], capsys)
    line = one_line_error(err)
    assert rc == 2 and str(p) in line and "truncated" in line


def test_a_checkpoint_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    d = tmp_path / "ck"
    d.mkdir()
    torch.save({"format": CHECKPOINT_FORMAT, "payload": Evil()}, d / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError, match="not a wganbook checkpoint"):
        load_checkpoint(d)
    assert not marker.exists()


def test_checkpoint_is_plain_data_and_records_torch_and_threads(ckpt_dir):
    ck = torch.load(ckpt_dir / CHECKPOINT_NAME, weights_only=True)  # raises if anything is not plain
    assert ck["format"] == CHECKPOINT_FORMAT and ck["version"] == checkpoint._CKPT_VERSION and ck["step"] == 4
    assert ck["env"]["torch"] == str(torch.__version__)
    assert ck["env"]["num_threads"] == torch.get_num_threads()


# ============================================================ 3. overwrite and litter
def test_new_run_refuses_an_existing_checkpoint_and_out_file(ckpt_dir, tmp_path, capsys, no_training):
    d = copy_ckpt(ckpt_dir, tmp_path / "ck")
    before = sha(d / CHECKPOINT_NAME)
    rc, err = run_cli(["--checkpoint-dir", str(d)], capsys)
    line = one_line_error(err)
    assert rc == 2 and "--resume" in line and "--force" in line and str(d) in line
    out = tmp_path / "r.json"
    out.write_text("keep me")
    rc, err = run_cli(["--out", str(out)], capsys)
    line = one_line_error(err)
    assert rc == 2 and "--out" in line and "--force" in line
    assert sha(d / CHECKPOINT_NAME) == before and out.read_text() == "keep me"


def test_force_starts_over_and_replaces(ckpt_dir, tmp_path, capsys):
    d = copy_ckpt(ckpt_dir, tmp_path / "ck")
    out = tmp_path / "r.json"
    out.write_text("old")
    rc, _ = run_cli(["--steps", "1", "--checkpoint-dir", str(d), "--out", str(out), "--force"], capsys, fast=False)
    assert rc == 0 and load_checkpoint(d)["step"] == 1 and json.loads(out.read_text())["steps"] == 1


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    d = tmp_path / "ck"
    d.mkdir()
    stale = d / f".{CHECKPOINT_NAME}.{dead.pid}.tmp"
    alive = d / f".{CHECKPOINT_NAME}.{os.getppid()}.tmp"  # our parent: alive
    other = d / ".unrelated.tmp"
    for p in (stale, alive, other):
        p.write_bytes(b"partial")
    train(cfg(steps=1, checkpoint_dir=str(d)))
    assert not stale.exists() and alive.exists() and other.exists()
    assert (d / CHECKPOINT_NAME).is_file()


def test_checkpoint_write_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    train(cfg(steps=1, checkpoint_dir=str(tmp_path)))
    assert "replace" in events and events.index("fsync") < events.index("replace")
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]


# ============================================================ 4. resume
def test_resume_below_the_checkpoint_step_is_an_error(ckpt_dir, tmp_path, capsys, no_training):
    d = copy_ckpt(ckpt_dir, tmp_path / "ck")
    rc, err = run_cli(["--steps", "2", "--checkpoint-dir", str(d), "--resume"], capsys)
    line = one_line_error(err)
    assert rc == 2 and "--steps 2" in line and "(4)" in line


def test_api_resume_below_the_checkpoint_step_is_an_error(ckpt_dir, tmp_path):
    d = copy_ckpt(ckpt_dir, tmp_path / "ck")
    with pytest.raises(ValueError, match=r"steps=2 is below .*\(4\)"):
        train(cfg(steps=2, checkpoint_dir=str(d)), resume=True)
    assert train(cfg(steps=4, checkpoint_dir=str(d)), resume=True).step == 4  # equal: restored


def test_resume_with_another_thread_count_warns(ckpt_dir, tmp_path):
    d = copy_ckpt(ckpt_dir, tmp_path / "ck")
    ck = torch.load(d / CHECKPOINT_NAME, weights_only=True)
    ck["env"]["num_threads"] = torch.get_num_threads() + 3
    torch.save(ck, d / CHECKPOINT_NAME)
    with pytest.warns(RuntimeWarning, match="num_threads"):
        train(cfg(steps=5, checkpoint_dir=str(d)), resume=True)


def test_cli_resume_warning_is_one_line(ckpt_dir, tmp_path, capsys):
    d = copy_ckpt(ckpt_dir, tmp_path / "ck")
    ck = torch.load(d / CHECKPOINT_NAME, weights_only=True)
    ck["env"]["torch"] = "0.0.1"
    torch.save(ck, d / CHECKPOINT_NAME)
    rc, err = run_cli(["--steps", "4", "--checkpoint-dir", str(d), "--resume"], capsys, fast=False)
    lines = err.strip().splitlines()
    assert rc == 0 and len(lines) == 1 and lines[0].startswith("wganbook train: warning: ")
    assert "0.0.1" in lines[0] and str(torch.__version__) in lines[0]


# ============================================================ 5. interrupts
def test_ctrl_c_in_the_api_reports_the_step_and_resume_is_bit_identical(tmp_path):
    straight = train(cfg(steps=6))

    def stop(generator, step):
        if step == 4:
            raise KeyboardInterrupt
        return {}

    d = str(tmp_path / "ck")
    with pytest.raises(TrainingInterrupted) as info:
        train(cfg(steps=6, checkpoint_dir=d, checkpoint_every=1, eval_every=1, eval_fn=stop))
    assert isinstance(info.value, KeyboardInterrupt)
    assert info.value.step == 3 and info.value.checkpoint_step == 3
    assert load_checkpoint(d)["step"] == 3
    resumed = train(cfg(steps=6, checkpoint_dir=d), resume=True)
    assert params_sha256(resumed.generator) == params_sha256(straight.generator)
    assert params_sha256(resumed.critic) == params_sha256(straight.critic)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_training_ends_with_one_line_and_a_valid_checkpoint(sig, code, tmp_path):
    d = tmp_path / "ck"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wganbook",
            "train",
            "--steps",
            "100000",
            "--checkpoint-dir",
            str(d),
            "--checkpoint-every",
            "1",
        ]
        + TINY,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.time() + 120
        while not (d / CHECKPOINT_NAME).exists():
            assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() else ""
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    line = last_line(err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "interrupted by" in line and "--resume" in line and "step" in line, err
    ck = load_checkpoint(d)
    assert f"(step {ck['step']})" in line, (ck["step"], err)
    assert sorted(p.name for p in d.iterdir()) == [CHECKPOINT_NAME], err


def _kill_from_another_thread(sig, times=1):
    """Send ``sig`` to this process from another thread (the kernel may hand it to any thread)."""
    import threading

    for _ in range(times):
        t = threading.Thread(target=os.kill, args=(os.getpid(), sig))
        t.start()
        t.join()
    time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_checkpoint_write_arrives_after_its_last_statement_once(sig):
    """The checkpoint writer's block swaps the handlers for a recorder: a signal sent from another
    thread in the middle of it runs the handler only after the block's last statement, and once
    even if sent twice; the handlers are put back; an ignored signal stays ignored."""
    got = []

    def handler(signum, frame):
        got.append(signum)

    old = signal.signal(sig, handler)
    try:
        during = []
        with _DeferSignals():
            _kill_from_another_thread(sig, times=2)
            during.append(list(got))  # the block's last statement: nothing delivered yet
        assert during == [[]] and got == [sig]
        assert signal.getsignal(sig) is handler
        # Python's own SIGINT handler: the KeyboardInterrupt comes after the write, not inside it
        signal.signal(sig, signal.default_int_handler)
        reached = []
        with pytest.raises(KeyboardInterrupt):
            with _DeferSignals():
                _kill_from_another_thread(sig)
                reached.append("last statement")
        assert reached == ["last statement"] and signal.getsignal(sig) is signal.default_int_handler
        signal.signal(sig, signal.SIG_IGN)
        with _DeferSignals():
            _kill_from_another_thread(sig)
        time.sleep(0.05)
        assert signal.getsignal(sig) == signal.SIG_IGN
    finally:
        signal.signal(sig, old)


def test_a_deferred_signal_with_the_default_action_still_ends_the_process(tmp_path):
    """SIG_DFL: the signal is re-raised after the block (the process ends by it, after the write)."""
    marker = tmp_path / "written"
    code = (
        "import os, signal, threading, time, pathlib\n"
        "from wganbook.train.checkpoint import _DeferSignals\n"
        "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
        "with _DeferSignals():\n"
        "    threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGTERM)).start()\n"
        "    time.sleep(0.05)\n"
        f"    pathlib.Path({str(marker)!r}).write_text('done')\n"
        "print('not reached')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGTERM and marker.read_text() == "done" and "not reached" not in proc.stdout


def test_deferring_signals_is_a_no_op_outside_the_main_thread():
    import threading

    got, seen = [], {}
    old = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    try:
        before = {s: signal.getsignal(s) for s in _DeferSignals.SIGNALS}

        def work():
            with _DeferSignals() as block:
                seen["swapped"] = dict(block.old)
                seen["handlers"] = {s: signal.getsignal(s) for s in _DeferSignals.SIGNALS}
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.2)
                seen["delivered"] = list(got)  # the main thread ran the handler meanwhile

        t = threading.Thread(target=work)
        t.start()
        while t.is_alive():
            time.sleep(0.01)
        assert seen == {"swapped": {}, "handlers": before, "delivered": [signal.SIGTERM]}
        assert got == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, old)


def test_training_exceptions_survive_a_process_pool():
    import pickle

    for e in (
        TrainingDiverged(3, "critic_loss", "wgan-gp", 1e13),
        TrainingDiverged(7, "the critic loss"),
        TrainingInterrupted(3, 2, "ck"),
        CheckpointError("cannot resume from x"),
    ):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e)


# ============================================================ 6. divergence guard
class _HugeCritic(models.Critic):
    """Finite but exploded scores (1e16 x a linear map; clipped weights still give > 1e12)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.activations = []

    def forward(self, x):
        return self.lin(x).squeeze(-1) * 1e16


def test_divergence_guard_stops_an_exploded_run_and_does_not_save_it(tmp_path):
    d = tmp_path / "ck"
    with pytest.raises(TrainingDiverged, match=r"beyond the divergence threshold 1e\+12.*heuristic.*lr") as info:
        train(
            cfg(steps=3, method="wgan-clip", warmup=False, checkpoint_dir=str(d), checkpoint_every=1, log_every=1),
            critic=_HugeCritic(),
        )
    assert info.value.step == 1 and abs(info.value.value) > DIVERGENCE_THRESHOLD
    assert not (d / CHECKPOINT_NAME).exists()


def test_cli_huge_learning_rate_is_stopped_with_rc_3(tmp_path, capsys):
    d = tmp_path / "ck"
    rc, err = run_cli(["--lr", "1e6", "--steps", "60", "--checkpoint-dir", str(d)], capsys, fast=False)
    line = one_line_error(err)
    assert rc == 3 and "diverged" in line and "lr" in line
    assert not (d / CHECKPOINT_NAME).exists()


def test_normal_runs_stay_far_below_the_threshold():
    """Clipped and penalised tiny runs: loss and estimate many orders below the guard."""
    for kw in (dict(method="wgan-clip", warmup=False, clip=0.1), dict(method="wgan-gp")):
        h = train(cfg(steps=10, **kw)).history
        biggest = max(abs(v) for k in ("critic_loss", "generator_loss", "w1_estimate") for v in h[k])
        assert biggest < DIVERGENCE_THRESHOLD * 1e-8


# ============================================================ 7. value ranges
@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--eval-n", "1"], "--eval-n"),
        (["--eval-n", "10000000"], "--eval-n"),
        (["--seed", str(2**32)], "--seed"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_out_of_range_values_are_refused(argv, flag, capsys, no_training):
    rc, err = run_cli(argv, capsys)
    assert rc == 2 and flag in last_line(err)


def test_summary_reports_the_eval_n_used(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["train", "--steps", "1", "--out", str(out)] + TINY[:-2] + ["--eval-n", "5000"])
    capsys.readouterr()
    s = json.loads(out.read_text())
    assert rc == 0 and s["config"]["eval_n"] == 5000
    assert s["eval_n"] == {"w1_target": 2048, "modes": 5000}


def test_config_rejects_seeds_numpy_cannot_take():
    with pytest.raises(ValueError, match=r"seed must be .*4294967295"):
        TrainConfig(seed=2**32)
    TrainConfig(seed=2**32 - 1)


# ============================================================ 8. API arguments checked at the door
@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    return models.MLPCritic(2, width=4, depth=1), torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g)


@pytest.mark.parametrize(
    "kw, exc, name",
    [
        (dict(center=float("nan")), ValueError, "center"),
        (dict(center=float("inf")), ValueError, "center"),
        (dict(center="1"), TypeError, "center"),
    ],
)
def test_gradient_penalty_rejects_bad_center(pair, kw, exc, name):
    f, x, y = pair
    with pytest.raises(exc, match=name):
        gradient_penalty(f, x, y, **kw)


def test_div_penalty_rejects_nan_k_and_p(pair):
    f, x, y = pair
    with pytest.raises(ValueError, match="k must be"):
        div_penalty(f, x, y, k=float("nan"))
    with pytest.raises(ValueError, match="p must be"):
        div_penalty(f, x, y, p=float("inf"))


@pytest.mark.parametrize("fn", ["gradient_penalty", "div_penalty", "critic_loss"])
def test_penalties_and_losses_name_the_argument_for_integer_and_misshaped_input(pair, fn):
    f, x, y = pair
    call = {
        "gradient_penalty": lambda r, g: gradient_penalty(f, r, g),
        "div_penalty": lambda r, g: div_penalty(f, r, g),
        "critic_loss": lambda r, g: critic_loss("wgan-gp", f, r, g),
    }[fn]
    with pytest.raises(TypeError, match=r"real must be a floating-point tensor .*int64"):
        call(x.long(), y)
    with pytest.raises(TypeError, match=r"fake must be a floating-point tensor"):
        call(x, y.to(torch.int32))
    with pytest.raises(ValueError, match=r"critic cannot score .*real.*shape \(\d+, 3\)"):
        call(torch.randn(4, 3), torch.randn(4, 3))
    with pytest.raises(TypeError, match="critic must be"):
        {"gradient_penalty": gradient_penalty, "div_penalty": div_penalty}.get(
            fn, lambda c, r, g: critic_loss("wgan-gp", c, r, g)
        )("not a critic", x, y)


def test_generator_loss_checks_fake(pair):
    f, x, _ = pair
    with pytest.raises(TypeError, match="fake must be a floating-point tensor"):
        generator_loss("wgan-gp", f, None, x.long())
    with pytest.raises(ValueError, match=r"critic cannot score fake of shape \(4, 5\)"):
        generator_loss("wgan-gp", f, None, torch.randn(4, 5))


def test_train_checks_the_data_width_before_training():
    calls = []

    def fn(generator, step):
        calls.append(step)
        return {}

    with pytest.raises(ValueError, match=r"data must have shape \(N, 2\).*\(64, 3\)"):
        train(cfg(eval_every=1, eval_fn=fn), data=torch.randn(64, 3))
    with pytest.raises(ValueError, match=r"data must have shape \(N, 1, 8, 8\)"):
        train(cfg(data="digits", width=2), data=torch.rand(20, 1, 16, 16))
    with pytest.raises(TypeError, match="data must be a real-valued tensor"):
        train(cfg(), data=torch.ones(64, 2, dtype=torch.bool))
    assert calls == []
    # integer data of the right shape is converted (as before)
    assert math.isfinite(train(cfg(steps=1), data=torch.randint(-2, 3, (64, 2))).history["w1_estimate"][0])

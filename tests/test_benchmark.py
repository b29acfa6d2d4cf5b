"""The benchmark script (`benchmarks/run.py`, = `make bench`): its statistics, its report and its errors.

The timings themselves are never asserted here (machines are noisy); the script's smoke mode runs
one tiny section end to end.
"""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from wganbook.lab import critics

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("wganbook_bench", ROOT / "benchmarks" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ratio_stats_are_per_round_ratios(bench):
    st = bench.ratio_stats([2.0, 3.0, 9.0], [1.0, 2.0, 3.0])
    assert st["all"] == [2.0, 1.5, 3.0]
    assert st["median"] == 2.0 and st["min"] == 1.5 and st["max"] == 3.0
    assert bench.fmt_range(st, 1) == "2.0 (1.5-3.0)"


def test_interleaved_rotates_the_order_each_round(bench):
    order = []
    contenders = {k: (lambda k=k: order.append(k)) for k in "abc"}
    wall, cpu = bench.interleaved(contenders, repeats=3, device=torch.device("cpu"))
    assert order == list("abcbcacab")
    assert all(len(wall[k]) == 3 and len(cpu[k]) == 3 for k in "abc")
    assert all(t >= 0 for k in "abc" for t in wall[k])


def test_bare_loop_trains_like_wgan_gp(bench):
    """The bare loop is a real WGAN-GP: a few steps on the toy raise the critic's real-fake gap."""
    from wganbook import models
    from wganbook.data import sample_toy, seed_everything

    seed_everything(0)
    G = models.make_generator("8gaussians", width=32)
    D = models.make_critic("8gaussians", width=32)
    g = torch.Generator().manual_seed(3)
    real, z = sample_toy("8gaussians", 512, generator=g), torch.randn(512, G.z_dim, generator=g)

    def gap():
        with torch.no_grad():
            return float(D(real).mean() - D(G(z)).mean())

    before = gap()
    bench.bare_wgan_gp(
        G,
        D,
        lambda n, rng: sample_toy("8gaussians", n, generator=rng),
        steps=20,
        batch_size=128,
        n_critic=5,
        lam=10.0,
        lr=1e-3,
        betas=(0.5, 0.9),
        device=torch.device("cpu"),
    )
    assert gap() > before + 0.1
    assert all(p.requires_grad for p in D.parameters())  # restored after the generator steps


def _result(ratio, overhead, seconds, limit):
    rs = {"median": ratio, "min": ratio, "max": ratio, "all": [ratio]}
    return {
        "machine": {
            "date": "2026-01-01 00:00",
            "cpu": "test cpu",
            "cores": 2,
            "torch": "x",
            "torch_threads": 1,
            "device": "cpu",
        },
        "command": "python benchmarks/run.py",
        "repeats": 1,
        "trainer": [
            dict(
                case="toy",
                label="toy",
                data_source="8gaussians",
                bare_steps_per_s=1.0,
                trainer_steps_per_s=ratio,
                ratio=rs,
                ratio_cpu=rs,
                w1_each_step=100 * overhead,
                w1_each_step_cpu=100 * overhead,
                w1_every=100,
                w1_overhead=overhead,
                w1_overhead_est=overhead,
                w1_call_ms=1.0,
            )
        ],
        "book": {
            "chapters": [
                dict(chapter="01_x", seconds=seconds, kernel_cpu_s=seconds, limit_s=limit, ok=True, error=None)
            ],
            "nbval": None,
        },
    }


@pytest.mark.parametrize(
    "ratio,overhead,seconds,marks",
    [
        (0.97, 0.02, 100, ["ok", "ok", "ok"]),
        (0.90, 0.02, 100, ["MISS", "ok", "ok"]),
        (0.97, 0.20, 100, ["ok", "MISS", "ok"]),
        (0.97, 0.02, 200, ["ok", "ok", "MISS"]),
    ],
)
def test_report_marks_targets(bench, ratio, overhead, seconds, marks):
    text = bench.report(_result(ratio, overhead, seconds, 180))
    trainer_row = next(ln for ln in text.splitlines() if ln.startswith("| toy |"))
    book_row = next(ln for ln in text.splitlines() if ln.startswith("| 01_x |"))
    found = [w for w in trainer_row.replace("|", " ").split() if w in ("ok", "MISS")]
    found += [w for w in book_row.replace("|", " ").split() if w in ("ok", "MISS")]
    assert found == marks


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--only", "trainer,gpu"], "--only must be among: trainer, critic, w1, threads, workers, book"),
        (["--grid-scale", "0"], "--grid-scale must be >= 1e-06"),
        (["--worker-repeats", "0"], "--worker-repeats must be >= 1"),
        (["--cases", "imagenet"], "--cases must be among toy, digits"),
        (["--chapters", "99", "--book"], "--chapters must be among 01"),
        (["--load", "-1"], "--load must be >= 0"),
        (["--repeats", "0"], "--repeats must be >= 1"),
        (["--w1-every", "0"], "--w1-every must be >= 1"),
        (["--preset", "huge"], "invalid choice: 'huge'"),
    ],
)
def test_bad_arguments_fail_at_once_with_the_allowed_values(bench, argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(argv)
    assert e.value.code == 2
    assert needle in capsys.readouterr().err


def test_smoke_run_prints_the_w1_table(bench, capsys):
    assert bench.main(["--quick", "--only", "w1"]) == 0
    out = capsys.readouterr().out
    assert "**4. Exact W1" in out and "| batch n | d = 784 | d = 3072 |" in out
    rows = [ln for ln in out.splitlines() if ln.startswith("| 64 |") or ln.startswith("| 128 |")]
    assert len(rows) == 2
    # every cell is "wall [cpu] (emd)" with finite, positive numbers
    for ln in rows:
        for cell in ln.strip("|").split("|")[1:]:
            wall = float(cell.split("[")[0])
            assert math.isfinite(wall) and wall > 0


# ---------------------------------------------------------------------------------------------
# the workers section: independent runs in worker processes
# ---------------------------------------------------------------------------------------------
def test_ideal_speedup_counts_rounds_of_equal_runs(bench):
    assert bench.ideal_speedup(12, 2) == 2.0
    assert bench.ideal_speedup(3, 2) == 1.5  # two rounds: 2 runs, then 1
    assert bench.ideal_speedup(1, 2) == 1.0
    assert bench.ideal_speedup(7, 1) == 1.0
    # two calls one after the other: 3 runs (2 rounds) then 3 runs (2 rounds), not 6 runs in 3 rounds
    assert bench.ideal_speedup((3, 3), 2) == 1.5
    assert bench.ideal_speedup((4, 3), 2) == 1.75
    assert bench.ideal_speedup([12], 2) == 2.0
    with pytest.raises(ValueError):
        bench.ideal_speedup(0, 2)


def test_records_digest_sees_the_last_bit_and_ignores_wall_time(bench):
    import numpy as np

    rec = {
        "combo": {"m": "a"},
        "seed": 0,
        "config": {"lr": 1e-4},
        "metrics": {"fd": 1.25},
        "history": {"step": [1, 2], "w1_exact": [0.5, 0.25]},
        "diverged": None,
        "wall_time": 3.0,
    }
    same = dict(rec, wall_time=9.0)
    bit = dict(rec, metrics={"fd": float(np.nextafter(1.25, 2.0))})
    hist = dict(rec, history={"step": [1, 2], "w1_exact": [0.5, float(np.nextafter(0.25, 1.0))]})
    d = bench.records_digest([rec])
    assert d == bench.records_digest([same]) and len(d) == 12
    assert d != bench.records_digest([bit]) and d != bench.records_digest([hist])
    assert bench.records_digest([rec, rec]) != d  # order and count matter


def test_records_digest_of_static_fits_sees_the_weights(bench):

    fits = critics.fit_static_critics(
        {"gp": {"method": "wgan-gp"}}, ["8gaussians"], steps=2, batch_size=16, width=8, n_points=16, workers=1
    )
    fit = fits[("gp", "8gaussians")]
    d = bench.records_digest([fit])
    with torch.no_grad():
        next(fit.critic.parameters()).view(-1)[0] += 1e-6
    assert bench.records_digest([fit]) != d


def test_worker_grids_follow_the_presets(bench):
    from wganbook.bookkit import presets

    grids = bench.worker_grids(0.5, ["03", "04"])
    assert [g["chapter"] for g in grids] == ["03", "04"]
    p3, p4 = presets.get_preset("ch03"), presets.get_preset("ch04")
    assert grids[0]["n_runs"] == 4 + len(p3["clips"]) and grids[0]["calls"] == (4, len(p3["clips"]))
    assert grids[1]["n_runs"] == len(p4["toy_datasets"]) * len(p4["methods"]) * len(p4["seeds"])
    assert all(callable(g["run"]) for g in grids)
    assert bench._scaled(300, 0.5) == 150 and bench._scaled(300, 0.001) == 2
    with pytest.raises(ValueError, match="scale must be > 0"):
        bench.worker_grids(0.0, ["03"])


@pytest.mark.parametrize(
    "speedup,identical,marks",
    [(1.9, True, ["ok", "identical"]), (1.2, True, ["MISS", "identical"]), (1.9, False, ["ok", "DIFFER"])],
)
def test_workers_report_marks_goal_and_identity(bench, speedup, identical, marks):
    st = {"median": speedup, "min": speedup, "max": speedup, "all": [speedup]}
    w = {
        "scale": 1.0,
        "repeats": 3,
        "warmup_s": 2.5,
        "loadavg_start": [0.3],
        "loadavg_end": [1.1],
        "rows": [
            dict(
                chapter="04",
                label="toy GANs",
                n_runs=12,
                serial_s=40.0,
                workers2_s=40.0 / speedup,
                speedup=st,
                ideal=2.0,
                identical=identical,
            )
        ],
    }
    text = "\n".join(bench.workers_report(w))
    row = next(ln for ln in text.splitlines() if ln.startswith("| 04 |"))
    assert [w_ for w_ in row.replace("|", " ").split() if w_ in ("ok", "MISS", "identical", "DIFFER")] == marks
    assert "load average 0.3 at the start" in text


def test_throughput_record_gives_each_chapter_its_largest_datasets_rate(bench, tmp_path):
    """The GPU throughput file chapter 8 plans with: a chapter's rate is the trainer's on its largest image
    dataset (the toy without one); chapters without runs or without a measured case are left out; an
    earlier measurement is not replaced without force."""
    rows = [
        {"case": "toy", "trainer_steps_per_s": 50.0},
        {"case": "mnist", "trainer_steps_per_s": 20.0},
        {"case": "cifar10", "trainer_steps_per_s": 10.0},
    ]
    plan = [
        {"key": "ch01", "runs": 0, "datasets": {}},
        {"key": "ch02", "runs": 3, "datasets": {}},
        {"key": "ch03", "runs": 5, "datasets": {"dataset": "mnist"}},
        {"key": "ch06", "runs": 4, "datasets": {"image_dataset": "mnist", "image_datasets": ["mnist", "cifar10"]}},
        {"key": "ch09", "runs": 2, "datasets": {"dataset": "digits"}},  # no digits case measured
    ]
    rec = bench.throughput_record(rows, plan, "NVIDIA H100", "2026-12-06")
    assert rec["gpu"] == "NVIDIA H100" and rec["measured"] == "2026-12-06"
    assert rec["chapters"] == {
        "ch02": {"generator_steps_per_s": 50.0, "case": "toy"},
        "ch03": {"generator_steps_per_s": 20.0, "case": "mnist"},
        "ch06": {"generator_steps_per_s": 10.0, "case": "cifar10"},
    }
    # the format runner.gpu_rates reads
    from wganbook.bookkit import runner

    rates = runner.gpu_rates([{"key": k} for k in ("ch03", "ch06")], throughput=rec)
    assert rates == {"ch03": (20.0, "measured on NVIDIA H100"), "ch06": (10.0, "measured on NVIDIA H100")}
    path = tmp_path / "gpu_throughput.json"
    path.write_text("{}")
    with pytest.raises(FileExistsError, match="--force"):
        bench.write_throughput({"machine": {"gpu": "x"}, "trainer": rows}, path)
    assert path.read_text() == "{}"

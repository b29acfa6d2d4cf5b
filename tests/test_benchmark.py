"""The benchmark script (`benchmarks/run.py`, = `make bench`): its statistics, its report and its errors.

The timings themselves are never asserted here (machines are noisy); the script's smoke mode runs
one tiny section end to end.
"""
import importlib.util
import math
from pathlib import Path

import pytest
import torch

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
    assert order == list("abc" "bca" "cab")
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
    bench.bare_wgan_gp(G, D, lambda n, rng: sample_toy("8gaussians", n, generator=rng), steps=20,
                       batch_size=128, n_critic=5, lam=10.0, lr=1e-3, betas=(0.5, 0.9),
                       device=torch.device("cpu"))
    assert gap() > before + 0.1
    assert all(p.requires_grad for p in D.parameters())  # restored after the generator steps


def _result(ratio, overhead, seconds, limit):
    rs = {"median": ratio, "min": ratio, "max": ratio, "all": [ratio]}
    return {
        "machine": {"date": "2026-01-01 00:00", "cpu": "test cpu", "cores": 2, "torch": "x",
                    "torch_threads": 1, "device": "cpu"},
        "command": "python benchmarks/run.py", "repeats": 1,
        "trainer": [dict(case="toy", label="toy", data_source="8gaussians", bare_steps_per_s=1.0,
                         trainer_steps_per_s=ratio, ratio=rs, ratio_cpu=rs, w1_each_step=100 * overhead,
                         w1_each_step_cpu=100 * overhead, w1_every=100, w1_overhead=overhead,
                         w1_overhead_est=overhead, w1_call_ms=1.0)],
        "book": {"chapters": [dict(chapter="01_x", seconds=seconds, kernel_cpu_s=seconds, limit_s=limit,
                                   ok=True, error=None)], "nbval": None},
    }


@pytest.mark.parametrize("ratio,overhead,seconds,marks", [
    (0.97, 0.02, 100, ["ok", "ok", "ok"]),
    (0.90, 0.02, 100, ["MISS", "ok", "ok"]),
    (0.97, 0.20, 100, ["ok", "MISS", "ok"]),
    (0.97, 0.02, 200, ["ok", "ok", "MISS"]),
])
def test_report_marks_targets(bench, ratio, overhead, seconds, marks):
    text = bench.report(_result(ratio, overhead, seconds, 180))
    trainer_row = next(ln for ln in text.splitlines() if ln.startswith("| toy |"))
    book_row = next(ln for ln in text.splitlines() if ln.startswith("| 01_x |"))
    found = [w for w in trainer_row.replace("|", " ").split() if w in ("ok", "MISS")]
    found += [w for w in book_row.replace("|", " ").split() if w in ("ok", "MISS")]
    assert found == marks


@pytest.mark.parametrize("argv,needle", [
    (["--only", "trainer,gpu"], "--only must be among: trainer, critic, w1, threads, book"),
    (["--cases", "imagenet"], "--cases must be among toy, digits"),
    (["--chapters", "99", "--book"], "--chapters must be among 01"),
    (["--load", "-1"], "--load must be >= 0"),
    (["--repeats", "0"], "--repeats must be >= 1"),
    (["--w1-every", "0"], "--w1-every must be >= 1"),
    (["--preset", "huge"], "invalid choice: 'huge'"),
])
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

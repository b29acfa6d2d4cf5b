"""Tests of wganbook.lab.sweeps: grid expansion, run bookkeeping, statistics and tables."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from wganbook.lab import critics, sweeps
from wganbook.train import history


def fake_train(calls):
    """A fake train function: the 'metric' is a known function of the config."""

    def train_fn(cfg, data=None):
        calls.append(dict(cfg))
        value = cfg.get("lr", 1.0) * 10 + cfg["seed"]
        hist = {"step": [1, 2], "w1_estimate": [0.5, value], "w1_exact": [1.0, float("nan")]}
        return SimpleNamespace(
            generator=None,
            critic=None,
            history=hist,
            config=SimpleNamespace(data=cfg.get("data")),
            wall_time=0.25,
            value=value,
        )

    return train_fn


def value_metric(result):
    return {"value": result.value, "w1_estimate": result.history["w1_estimate"][-1]}


def test_expand_grid_is_cartesian_product_in_order():
    combos = sweeps.expand_grid({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(combos) == 2 * 3
    assert combos[0] == {"a": 1, "b": "x"} and combos[1] == {"a": 1, "b": "y"}
    assert combos[-1] == {"a": 2, "b": "z"}
    assert sweeps.expand_grid({}) == [{}]


def test_expand_grid_dict_values_are_labelled():
    combos = sweeps.expand_grid({"variant": [{"name": "gp", "method": "wgan-gp", "lam": 0.1}, {"method": "wgan-clip"}]})
    assert combos == [{"variant": "gp"}, {"variant": "method=wgan-clip"}]


@pytest.mark.parametrize(
    "grid,exc",
    [
        ({"a": []}, ValueError),
        ({"a": 3}, TypeError),
        ({"a": "abc"}, TypeError),
        ({"seed": [1, 2]}, ValueError),
        ([("a", [1])], TypeError),
    ],
)
def test_bad_grids_raise(grid, exc):
    with pytest.raises(exc):
        sweeps.expand_grid(grid)


def test_run_grid_one_run_per_combo_and_seed():
    calls = []
    recs = sweeps.run_grid(
        {"data": "8gaussians", "steps": 3, "lr": 1.0},
        {"lr": [0.1, 0.2], "n_critic": [1, 5]},
        seeds=[0, 1, 2],
        metric=value_metric,
        train_fn=fake_train(calls),
        workers=1,
    )
    assert len(recs) == len(calls) == 2 * 2 * 3
    # grid values override base; seed is set per run; order is combo-major, seed-minor
    assert calls[0] == {"data": "8gaussians", "steps": 3, "lr": 0.1, "n_critic": 1, "seed": 0}
    assert [r["seed"] for r in recs[:3]] == [0, 1, 2]
    assert recs[3]["combo"] == {"lr": 0.1, "n_critic": 5}
    for r in recs:
        assert r["metrics"]["value"] == pytest.approx(r["combo"]["lr"] * 10 + r["seed"])
        assert r["result"] is None and r["wall_time"] == 0.25
        assert r["history"]["step"] == [1, 2]


def test_run_grid_dict_entries_merge_settings_and_keep_results():
    calls = []
    recs = sweeps.run_grid(
        {"data": "8gaussians"},
        {"variant": [{"name": "a", "lr": 0.3, "lam": 0.1}, {"name": "b", "lr": 0.5}]},
        seeds=[4],
        metric=value_metric,
        train_fn=fake_train(calls),
        keep_results=True,
        workers=1,
    )
    assert calls[0] == {"data": "8gaussians", "lr": 0.3, "lam": 0.1, "seed": 4}
    assert recs[1]["combo"] == {"variant": "b"}
    assert recs[1]["result"].value == pytest.approx(0.5 * 10 + 4)


@pytest.mark.parametrize(
    "kwargs,exc",
    [
        (dict(base={"seed": 1}, grid={}, seeds=[0]), ValueError),
        (dict(base={}, grid={}, seeds=[]), ValueError),
        (dict(base={}, grid={}, seeds=[0.5]), TypeError),
        (dict(base={}, grid={}, seeds=[0], metric="accuracy"), ValueError),
        (dict(base=[1], grid={}, seeds=[0]), TypeError),
    ],
)
def test_run_grid_validates_before_training(kwargs, exc):
    calls = []
    with pytest.raises(exc):
        sweeps.run_grid(train_fn=fake_train(calls), **kwargs)
    assert calls == []


def test_summarize_statistics_match_hand_computation():
    recs = [{"combo": {"m": "a"}, "seed": s, "metrics": {"x": v}} for s, v in enumerate([1.0, 2.0, 6.0])]
    recs += [
        {"combo": {"m": "b"}, "seed": 0, "metrics": {"x": 5.0}},
        {"combo": {"m": "b"}, "seed": 1, "metrics": {"x": float("nan")}},
        {"combo": {"m": "b"}, "seed": 2, "metrics": {}},
    ]
    rows = sweeps.summarize(recs, "m", "x")
    assert [r["m"] for r in rows] == ["a", "b"]
    a, b = rows
    assert a["mean"] == pytest.approx(3.0)
    # sample std: sqrt(((1-3)^2 + (2-3)^2 + (6-3)^2) / 2) = sqrt(7)
    assert a["std"] == pytest.approx(math.sqrt(7.0))
    assert (a["min"], a["max"], a["n"], a["missing"]) == (1.0, 6.0, 3, 0)
    assert (b["mean"], b["std"], b["n"], b["missing"]) == (5.0, 0.0, 1, 2)
    # grouping by the seed (a record field) and by nothing
    assert len(sweeps.summarize(recs, "seed", "x")) == 3
    (allrow,) = sweeps.summarize(recs, [], "x")
    assert allrow["n"] == 4 and allrow["mean"] == pytest.approx(14.0 / 4)


def test_summarize_group_without_values_is_nan_and_empty_raises():
    (row,) = sweeps.summarize([{"combo": {"m": "a"}, "metrics": {}}], "m", "x")
    assert row["n"] == 0 and math.isnan(row["mean"]) and row["missing"] == 1
    with pytest.raises(ValueError):
        sweeps.summarize([], "m", "x")
    with pytest.raises(KeyError):
        sweeps.summarize([{"combo": {}, "metrics": {"x": 1}}], "m", "x")


def test_markdown_table_layout():
    t = sweeps.markdown_table(
        [{"a": "x|y", "b": 1.23456, "c": 3}, {"a": "z", "b": float("nan")}], headers={"b": "B", "c": "|c|"}
    )
    lines = t.split("\n")
    assert lines[0] == "| a | B | \\|c\\| |"
    assert lines[1] == "| --- | --- | --- |"
    assert lines[2] == "| x\\|y | 1.23 | 3 |"
    assert lines[3] == "| z | nan |  |"


def test_summary_table_mean_pm_std():
    recs = [{"combo": {"m": "a"}, "metrics": {"x": v, "y": 2 * v}} for v in (1.0, 3.0)]
    t = sweeps.summary_table(recs, "m", ["x", "y"], floatfmt=".2f")
    assert t.split("\n")[2] == f"| a | 2.00 ± {math.sqrt(2):.2f} | 4.00 ± {2 * math.sqrt(2):.2f} | 2 |"
    t = sweeps.summary_table(recs, "m", ["x"], floatfmt=".1f", spread="range")
    assert t.split("\n")[2] == "| a | 2.0 [1.0, 3.0] | 2 |"
    with pytest.raises(ValueError):
        sweeps.summary_table(recs, "m", ["x"], spread="iqr")


def test_final_metrics_history_part_uses_last_finite_value():
    assert sweeps._last_finite([1.0, 2.0, float("nan"), None]) == 2.0
    assert sweeps._last_finite([]) is None
    assert sweeps._last_finite(None) is None


# ---------------------------------------------------------------------------------------------
# with the real training loop (tiny runs)
# ---------------------------------------------------------------------------------------------
def test_run_grid_with_train_integration():
    base = {"data": "8gaussians", "steps": 3, "width": 16, "batch_size": 32, "device": "cpu", "w1_every": 1}
    recs = sweeps.run_grid(base, {"method": ["wgan-clip", "wgan-gp"]}, seeds=[0, 1], n_eval=128, keep_results=True)
    assert [(r["combo"]["method"], r["seed"]) for r in recs] == [
        ("wgan-clip", 0),
        ("wgan-clip", 1),
        ("wgan-gp", 0),
        ("wgan-gp", 1),
    ]
    for r in recs:
        m = r["metrics"]
        assert set(m) >= {"modes", "high_quality", "w1_target", "w1_exact", "w1_estimate"}
        assert 0 <= m["modes"] <= 8 and 0.0 <= m["high_quality"] <= 1.0 and m["w1_target"] > 0
        assert r["history"]["step"] == [1, 2, 3]
        assert r["result"].config.seed == r["seed"] and r["diverged"] is None
        # the exact batch W1 recorded last is the one reported
        assert m["w1_exact"] == pytest.approx(r["history"]["w1_exact"][-1])
    # same seed, same run: deterministic on CPU
    again = sweeps.run_grid(base, {"method": ["wgan-gp"]}, seeds=[1], n_eval=128)
    assert again[0]["metrics"] == pytest.approx(recs[3]["metrics"])
    rows = sweeps.summarize(recs, "method", "w1_target")
    assert [r["n"] for r in rows] == [2, 2]


def test_run_grid_records_diverged_runs():
    from wganbook.train import TrainingDiverged

    def boom(cfg, data=None):
        raise TrainingDiverged(7, "the critic loss")

    recs = sweeps.run_grid({"data": "8gaussians"}, {}, seeds=[0], train_fn=boom, on_diverge="record")
    assert recs[0]["diverged"] == 7 and recs[0]["metrics"] == {}
    with pytest.raises(TrainingDiverged):
        sweeps.run_grid({"data": "8gaussians"}, {}, seeds=[0], train_fn=boom)
    with pytest.raises(ValueError):
        sweeps.run_grid({"data": "8gaussians"}, {}, seeds=[0], train_fn=boom, on_diverge="skip")


def test_fixed_generator_adds_unit_noise_and_is_reproducible():
    real, fake = critics.fixed_generator("8gaussians", noise=0.5, seed=3)
    real2, fake2 = critics.fixed_generator("8gaussians", noise=0.5, seed=3)
    x, y = real(20000), fake(20000)
    assert torch_equal(x, real2(20000)) and torch_equal(y, fake2(20000))
    # Var(y) = Var(x') + sigma^2 per coordinate (x' independent of the noise)
    assert (y.var(0) - x.var(0)).numpy() == pytest.approx([0.25, 0.25], abs=0.03)
    with pytest.raises(ValueError):
        critics.fixed_generator("digits")
    with pytest.raises(ValueError):
        critics.fixed_generator("8gaussians", noise=-1.0)


def torch_equal(a, b):
    import torch

    return bool(torch.equal(a, b))


def test_fit_static_critics_clip_stays_in_box_and_inside_box_init():
    import torch

    fits = critics.fit_static_critics(
        {"clip": {"method": "wgan-clip", "clip": 0.01, "inside_box": True}, "gp": {"method": "wgan-gp", "lam": 10.0}},
        ["8gaussians"],
        steps=4,
        batch_size=32,
        width=16,
        n_points=64,
    )
    assert list(fits) == [("clip", "8gaussians"), ("gp", "8gaussians")]
    clip = fits[("clip", "8gaussians")]
    assert all(float(p.detach().abs().max()) <= 0.01 + 1e-9 for p in clip.critic.parameters())
    assert not clip.critic.training and clip.real.shape == (64, 2) and clip.fake.shape == (64, 2)
    assert clip.history["step"][-1] == 4 and clip.hparams["inside_box"] is True
    # the shrink keeps each tensor's shape and puts its largest entry at 0.999 c
    c = torch.nn.Linear(3, 4)
    critics.shrink_into_box_(c, 0.01)
    assert float(c.weight.detach().abs().max()) == pytest.approx(0.00999)
    with pytest.raises(ValueError):
        critics.shrink_into_box_(c, None)
    with pytest.raises(ValueError):
        critics.fit_static_critics({"gp": {"method": "wgan-gp", "inside_box": True}}, ["8gaussians"], steps=1)
    with pytest.raises(ValueError):
        critics.fit_static_critics({"x": {"lam": 1.0}}, ["8gaussians"], steps=1)


def test_sample_snapshots_as_eval_fn():
    from wganbook.train import TrainConfig, train

    snaps = critics.SampleSnapshots(at=[2, 4], n=16, metric=lambda x: {"mean_norm": float(x.norm(dim=1).mean())})
    assert snaps.eval_every == 2
    cfg = TrainConfig(
        method="wgan-gp",
        data="8gaussians",
        steps=4,
        width=16,
        batch_size=16,
        device="cpu",
        eval_every=snaps.eval_every,
        eval_fn=snaps,
    )
    res = train(cfg)
    assert snaps.steps == [2, 4] and [tuple(s.shape) for s in snaps.samples] == [(16, 2), (16, 2)]
    assert res.history["mean_norm"] == pytest.approx([float(s.norm(dim=1).mean()) for s in snaps.samples])
    assert critics.SampleSnapshots(at=[3]).eval_every == 3
    with pytest.raises(ValueError):
        critics.SampleSnapshots(at=[0, 5])


def test_estimate_vs_exact_pairs_the_same_steps():
    hist = {"step": [1, 2, 3, 4], "w1_estimate": [0.1, 0.2, 0.3, 0.4], "w1_step": [2, 4], "w1_exact": [1.0, 2.0]}
    steps, est, ex = history.estimate_vs_exact(hist)
    assert steps.tolist() == [2, 4] and est.tolist() == [0.2, 0.4] and ex.tolist() == [1.0, 2.0]
    # a resumed history whose steps do not start at 1
    hist = {"step": [5, 6], "w1_estimate": [0.5, 0.6], "w1_step": [6], "w1_exact": [3.0]}
    assert history.estimate_vs_exact(hist)[1].tolist() == [0.6]
    with pytest.raises(ValueError):
        history.estimate_vs_exact({"step": [1], "w1_estimate": [0.1]})
    with pytest.raises(ValueError):
        history.estimate_vs_exact({"step": [1], "w1_estimate": [0.1], "w1_step": [3], "w1_exact": [1.0]})


# ---------------------------------------------------------------------------------------------
# independent runs in worker processes
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def one_thread():
    """The serial path runs in this process: one torch thread, like the notebooks and the workers."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _same_history(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k], dtype=float), np.asarray(b[k], dtype=float))


def test_run_grid_workers_give_bit_identical_records(one_thread):
    import torch

    base = {"data": "8gaussians", "steps": 3, "width": 16, "depth": 2, "batch_size": 32, "device": "cpu", "w1_every": 1}
    grid = {"method": ["wgan-gp", "wgan-sn"]}  # spectral norm: parametrized modules travel back
    serial = sweeps.run_grid(base, grid, seeds=[0, 1], n_eval=128, keep_results=True, workers=1)
    pooled = sweeps.run_grid(base, grid, seeds=[0, 1], n_eval=128, keep_results=True, workers=2)
    assert [(r["combo"], r["seed"]) for r in pooled] == [(r["combo"], r["seed"]) for r in serial]
    for a, b in zip(serial, pooled):
        assert a["metrics"] == b["metrics"]  # exact equality, not approx
        assert a["config"] == b["config"]
        _same_history(a["history"], b["history"])
        for net in ("generator", "critic"):
            sa = getattr(a["result"], net).state_dict()
            sb = getattr(b["result"], net).state_dict()
            assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    # the spectrally normalised critic came back with its parametrization and the same outputs
    sn_a, sn_b = serial[2]["result"].critic, pooled[2]["result"].critic
    assert type(sn_b).__name__ == type(sn_a).__name__
    assert any("parametrizations" in k for k in sn_b.state_dict())
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    sn_a.eval(), sn_b.eval()
    assert torch.equal(sn_a(x), sn_b(x))


def test_fit_static_critics_workers_give_identical_critics(one_thread):
    import torch

    variants = {"gp": {"method": "wgan-gp", "lam": 10.0}, "sn": {"method": "wgan-sn"}}
    kw = dict(steps=3, batch_size=32, width=16, n_points=64)
    a = critics.fit_static_critics(variants, ["8gaussians", "swissroll"], workers=1, **kw)
    b = critics.fit_static_critics(variants, ["8gaussians", "swissroll"], workers=2, **kw)
    assert list(a) == list(b)
    for key in a:
        _same_history(a[key].history, b[key].history)
        sa, sb = a[key].critic.state_dict(), b[key].critic.state_dict()
        assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
        assert torch.equal(a[key].real, b[key].real) and torch.equal(a[key].fake, b[key].fake)


def failing_train(cfg, data=None):
    """A module-level train_fn that fails for one configuration."""
    if cfg.get("lr") == 0.5:
        raise KeyError(f"no optimiser for lr {cfg['lr']}")
    return SimpleNamespace(history={}, value=cfg["lr"], wall_time=0.1, config=None)


@pytest.mark.parametrize("workers", [1, 2])
def test_failing_run_surfaces_its_error_and_configuration(workers):
    with pytest.raises(KeyError, match="no optimiser for lr 0.5") as info:
        sweeps.run_grid(
            {"data": "8gaussians"},
            {"lr": [0.1, 0.5]},
            seeds=[3],
            metric=lambda r: {},
            train_fn=failing_train,
            workers=workers,
        )
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "'lr': 0.5" in notes and "'seed': 3" in notes and "run 1 of 2" in notes
    if workers > 1:
        assert "worker" in notes and "failing_train" in notes  # the worker's traceback


def test_map_runs_keeps_order_and_runs_notebook_style_closures():
    offset = 100

    def square_plus(x):  # a closure, as a notebook cell would define it
        return x * x + offset

    assert sweeps.map_runs(square_plus, range(7), workers=2) == [x * x + offset for x in range(7)]
    assert sweeps.map_runs(square_plus, [], workers=2) == []
    assert sweeps.map_runs(square_plus, [3], workers=1) == [109]


@pytest.mark.parametrize(
    "bad,exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError), ("2", TypeError)]
)
def test_bad_workers_are_refused_before_any_run(bad, exc):
    calls = []
    with pytest.raises(exc, match="workers must be None or an int >= 1"):
        sweeps.run_grid(
            {"data": "8gaussians"}, {}, seeds=[0], metric=value_metric, train_fn=fake_train(calls), workers=bad
        )
    assert calls == []
    with pytest.raises(exc, match="workers"):
        sweeps.map_runs(abs, [1, 2], workers=bad)
    with pytest.raises(exc, match="workers"):
        critics.fit_static_critics({"gp": {"method": "wgan-gp"}}, ["8gaussians"], steps=1, workers=bad)


def test_workers_default_and_environment_override(monkeypatch):
    import os

    monkeypatch.delenv("WGANBOOK_WORKERS", raising=False)
    assert sweeps.resolve_workers() == len(os.sched_getaffinity(0))
    assert sweeps.resolve_workers(3) == 3
    monkeypatch.setenv("WGANBOOK_WORKERS", "1")
    assert sweeps.resolve_workers() == 1 and sweeps.resolve_workers(2) == 2  # an argument wins
    calls = []  # WGANBOOK_WORKERS=1: serial, in this process (the calls list sees every run)
    sweeps.run_grid(
        {"data": "8gaussians"}, {"lr": [0.1, 0.2]}, seeds=[0, 1], metric=value_metric, train_fn=fake_train(calls)
    )
    assert len(calls) == 4
    for bad in ("0", "two", "-1", "1.5"):
        monkeypatch.setenv("WGANBOOK_WORKERS", bad)
        with pytest.raises(ValueError, match="WGANBOOK_WORKERS must be an int >= 1"):
            sweeps.resolve_workers()


def unseeded_train(cfg, data=None):
    """A train_fn that draws from the global random state before any seeding of its own."""
    import torch

    return SimpleNamespace(history={}, value=float(torch.rand(())), wall_time=0.1, config=None)


@pytest.mark.parametrize("workers", [1, 2])
def test_each_run_starts_from_its_own_seed(workers):
    import torch

    recs = sweeps.run_grid(
        {}, {"lr": [0.1, 0.2]}, seeds=[5, 6], metric=lambda r: {"v": r.value}, train_fn=unseeded_train, workers=workers
    )
    expected = []
    for s in (5, 6):
        torch.manual_seed(s)
        expected.append(float(torch.rand(())))
    assert [r["metrics"]["v"] for r in recs] == expected * 2


def test_late_mean_averages_the_evaluations_of_late_training():
    from wganbook.train.history import late_mean

    h = {"eval_step": [300, 600, 900, 1200, 1500, 1800], "high_quality": [0.1, 0.2, 0.3, 0.5, 0.7, 0.6]}
    # T = 1800: the last half is t >= 900 -> (0.3 + 0.5 + 0.7 + 0.6) / 4
    assert late_mean(h, "high_quality") == pytest.approx(0.525)
    # the last third: t >= 1200 -> (0.5 + 0.7 + 0.6) / 3; everything: the plain mean
    assert late_mean(h, "high_quality", fraction=1 / 3) == pytest.approx(0.6)
    assert late_mean(h, "high_quality", fraction=1.0) == pytest.approx(2.4 / 6)
    # a tiny fraction keeps the last evaluation only
    assert late_mean(h, "high_quality", fraction=1e-9) == pytest.approx(0.6)
    for bad in (0, -0.5, 1.5, True, "half"):
        with pytest.raises(ValueError, match="fraction"):
            late_mean(h, "high_quality", fraction=bad)
    with pytest.raises(ValueError, match="no evaluations of 'modes'"):
        late_mean(h, "modes")
    with pytest.raises(ValueError, match="eval_step"):
        late_mean({"eval_step": [1, 2], "modes": [8]}, "modes")
    from wganbook.train.history import late_values

    assert late_values(h, "high_quality").tolist() == [0.3, 0.5, 0.7, 0.6]


def test_plateau_change_is_the_relative_change_between_the_last_two_parts():
    from wganbook.train.history import plateau_change

    # ten records, fifths of 2: last part mean 11, the one before 10 -> 1/11
    v = [0, 0, 0, 0, 0, 0, 10, 10, 11, 11]
    assert plateau_change(v) == pytest.approx(1 / 11)
    assert plateau_change([5.0] * 7) == 0.0
    # quarters of 8: last (7 + 8) / 2 = 7.5, before (5 + 6) / 2 = 5.5
    assert plateau_change(list(range(1, 9)), parts=4) == pytest.approx(2 / 7.5)
    # fewer records than parts: one record per part
    assert plateau_change([1.0, 2.0]) == pytest.approx(0.5)
    for bad in (dict(values=[1.0]), dict(values=[1.0, 0.0]), dict(values=[1.0, 2.0], parts=1)):
        with pytest.raises(ValueError):
            plateau_change(**bad)

"""Tests of wganbook.train: the loop, checkpoints/resume, the NaN guard, fit_critic."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from wganbook import models, objectives
from wganbook.train import (
    CHECKPOINT_NAME,
    TOY_OVERRIDES,
    Callback,
    TrainConfig,
    TrainingDiverged,
    fit_critic,
    history,
    params_sha256,
    resolve_device,
    train,
)

TINY = dict(width=16, depth=2, batch_size=32, device="cpu", progress=False)


def tiny(**kw):
    args = dict(method="wgan-gp", data="8gaussians", steps=10, **TINY)
    args.update(kw)
    return TrainConfig(**args)


# ------------------------------------------------------------------ configuration
def test_hparams_toy_overrides_and_explicit_values():
    hp = TrainConfig(method="wgan-gp", data="8gaussians").hparams()
    assert hp["lam"] == 0.1 and hp["betas"] == (0.5, 0.9) and hp["batch_size"] == 256
    assert hp["lr"] == objectives.METHODS["wgan-gp"].defaults["lr"]
    img = TrainConfig(method="wgan-gp", data="digits").hparams()
    assert img["lam"] == 10.0 and img["betas"] == (0.0, 0.9) and img["batch_size"] == 64
    explicit = TrainConfig(method="wgan-gp", data="8gaussians", lam=3, batch_size=8).hparams()
    assert explicit["lam"] == 3.0 and explicit["batch_size"] == 8
    off = TrainConfig(method="wgan-gp", data="8gaussians", toy_defaults=False).hparams()
    assert off["lam"] == 10.0 and off["batch_size"] == 64
    assert set(TOY_OVERRIDES) >= {"*", "wgan-gp"}
    assert TrainConfig(method="wgan-clip").hparams()["warmup"] is True
    assert TrainConfig(method="wgan-gp").hparams()["warmup"] is False


@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(method="wgan-x"), "method"),
        (dict(data="imagenet"), "data"),
        (dict(steps=0), "steps"),
        (dict(steps=True), "steps"),
        (dict(steps="10"), "steps"),
        (dict(batch_size=0), "batch_size"),
        (dict(n_critic=0), "n_critic"),
        (dict(lr=-1e-4), "lr"),
        (dict(lr=0.0), "lr"),
        (dict(lam=-1.0), "lam"),
        (dict(clip=0.0), "clip"),
        (dict(strategy="nowhere"), "strategy"),
        (dict(device="gpu"), "device"),
        (dict(norm="group"), "norm"),
        (dict(w1_every=-1), "w1_every"),
        (dict(metric="fid"), "metric"),
        (dict(fixed_generator=1), "fixed_generator"),
        (dict(seed=-3), "seed"),
    ],
)
def test_config_rejects_bad_values_naming_the_parameter(kw, name):
    with pytest.raises((ValueError, TypeError), match=name):
        TrainConfig(**kw)


def test_config_rejects_unused_hyperparameter_and_batchnorm_with_penalty():
    with pytest.raises(ValueError, match="lam"):
        TrainConfig(method="wgan-clip", lam=1.0)
    with pytest.raises(ValueError, match="norm"):
        TrainConfig(method="wgan-gp", norm="batch")
    TrainConfig(method="wgan-clip", norm="batch")  # allowed without a penalty


def test_resolve_device_and_sha():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    assert params_sha256(a) == params_sha256(b) and len(params_sha256(a)) == 64
    with torch.no_grad():
        b.bias[0] += 1e-7
    assert params_sha256(a) != params_sha256(b)


# ------------------------------------------------------------------ the loop
def test_history_columns_and_w1_cadence():
    r = train(tiny(steps=7, w1_every=3, log_every=4))
    h = r.history
    assert h["step"] == list(range(1, 8))
    for k in ("critic_loss", "generator_loss", "w1_estimate", "penalty", "grad_norm"):
        assert len(h[k]) == 7 and all(math.isfinite(v) for v in h[k])
    assert h["w1_step"] == [3, 6]
    assert len(h["w1_exact"]) == 2 and all(v > 0 for v in h["w1_exact"])
    # critic loss = -W_hat + penalty (the sign convention)
    for loss, w, pen in zip(h["critic_loss"], h["w1_estimate"], h["penalty"]):
        assert loss == pytest.approx(-w + pen, abs=1e-5)
    assert r.step == 7 and r.device == "cpu" and r.wall_time > 0


def test_deterministic_on_cpu():
    a = train(tiny(steps=5))
    b = train(tiny(steps=5))
    assert params_sha256(a.generator) == params_sha256(b.generator)
    _same_history(a.history, b.history)


def test_fixed_generator_leaves_generator_unchanged():
    cfg = tiny(steps=5, fixed_generator=True)
    torch.manual_seed(0)
    g = models.make_generator("8gaussians", width=16, depth=2)
    before = params_sha256(g)
    r = train(cfg, generator=g)
    assert params_sha256(r.generator) == before
    assert any(v != 0 for v in r.history["w1_estimate"])


def test_training_moves_fakes_toward_the_data():
    torch.manual_seed(0)
    target = torch.tensor([2.0, -1.0])
    data = target + 0.05 * torch.randn(512, 2)
    g = models.MLPGenerator(z_dim=2, out_dim=2, width=32, depth=1)
    c = models.MLPCritic(2, width=32, depth=2)

    def dist(gen):
        with torch.no_grad():
            return (gen(torch.randn(512, 2)) - target).norm(dim=1).mean().item()

    d0 = dist(g)
    cfg = tiny(steps=100, lr=3e-3, n_critic=3, batch_size=64)
    r = train(cfg, data=data, generator=g, critic=c)
    assert dist(r.generator) < 0.6 * d0


def test_wgan_warmup_schedule_counts_critic_steps():
    calls = []

    def count(critic):
        critic.register_forward_hook(lambda *a: calls.append(1))
        return critic

    for warmup, expected in ((True, 100 + 100 + 2), (False, 5 + 5 + 2)):
        calls.clear()
        torch.manual_seed(0)
        c = count(models.make_critic("8gaussians", width=8, depth=1))
        train(tiny(method="wgan-clip", steps=2, warmup=warmup, batch_size=8), critic=c)
        assert len(calls) == expected


def test_clipping_is_applied_after_each_critic_step():
    r = train(tiny(method="wgan-clip", steps=3, warmup=False, clip=0.02))
    assert max(p.abs().max().item() for p in r.critic.parameters()) <= 0.02 + 1e-7


def test_image_tensor_data_and_builtin_metric():
    x = torch.rand(40, 1, 8, 8) * 2 - 1
    r = train(
        TrainConfig(method="wgan-gp", data="digits", steps=4, width=4, batch_size=16, device="cpu", progress=False),
        data=x,
    )
    assert r.generator(torch.randn(2, r.generator.z_dim)).shape == (2, 1, 8, 8)
    r = train(tiny(steps=4, eval_every=2, eval_n=64))
    assert r.history["eval_step"] == [2, 4]
    assert len(r.history["modes"]) == 2 and len(r.history["high_quality"]) == 2


def test_eval_fn_is_called_at_its_cadence():
    seen = []

    def fn(generator, step):
        seen.append(step)
        return {"answer": 42.0}

    r = train(tiny(steps=6, eval_every=3, eval_fn=fn))
    assert seen == [3, 6] and r.history["answer"] == [42.0, 42.0]


# ------------------------------------------------------------------ NaN guard
class _InfCritic(models.Critic):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.activations = []

    def forward(self, x):
        return self.lin(x).squeeze(-1) * float("inf")


def test_nan_guard_names_the_step_and_gives_a_hint():
    with pytest.raises(TrainingDiverged, match=r"step 1\b.*lr") as info:
        train(tiny(steps=3), critic=_InfCritic())
    assert isinstance(info.value, RuntimeError) and info.value.step == 1


def test_nan_guard_with_a_huge_learning_rate():
    with pytest.raises(TrainingDiverged):
        train(tiny(method="wgan-gp", steps=20, lr=1e10, log_every=5))


# ------------------------------------------------------------------ checkpoints
def _same_history(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert len(a[k]) == len(b[k]), k
        for x, y in zip(a[k], b[k]):
            assert x == y or (math.isnan(x) and math.isnan(y)), k


def _sha_pair(r):
    return params_sha256(r.generator), params_sha256(r.critic)


@pytest.mark.parametrize("method", ["wgan-gp", "wgan-clip"])
def test_resume_is_bit_identical(tmp_path, method):
    kw = dict(method=method, warmup=False) if method == "wgan-clip" else dict(method=method)
    straight = train(tiny(steps=20, checkpoint_dir=str(tmp_path / "a"), checkpoint_every=10, w1_every=5, **kw))
    first = train(tiny(steps=10, checkpoint_dir=str(tmp_path / "b"), w1_every=5, **kw))
    assert _sha_pair(first) != _sha_pair(straight)
    resumed = train(tiny(steps=20, checkpoint_dir=str(tmp_path / "b"), w1_every=5, **kw), resume=True)
    assert _sha_pair(resumed) == _sha_pair(straight)
    _same_history(resumed.history, straight.history)
    for d in ("a", "b"):
        files = sorted(p.name for p in (tmp_path / d).iterdir())
        assert files == [CHECKPOINT_NAME]  # no temporary files left behind


def test_resume_bit_identical_with_image_permutations_and_warmup(tmp_path):
    x = torch.rand(20, 1, 8, 8) * 2 - 1
    base = dict(method="wgan-clip", data="digits", width=2, batch_size=8, device="cpu", progress=False)
    straight = train(TrainConfig(steps=3, **base), data=x)
    train(TrainConfig(steps=1, checkpoint_dir=str(tmp_path), **base), data=x)
    resumed = train(TrainConfig(steps=3, checkpoint_dir=str(tmp_path), **base), data=x, resume=True)
    assert _sha_pair(resumed) == _sha_pair(straight)


def test_resume_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        train(tiny(steps=2, checkpoint_dir=str(tmp_path / "none")), resume=True)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        train(tiny(steps=2), resume=True)
    train(tiny(steps=2, checkpoint_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="seed"):
        train(tiny(steps=4, seed=1, checkpoint_dir=str(tmp_path)), resume=True)


# ------------------------------------------------------------------ fit_critic
def test_fit_critic_estimates_w1_between_separated_clouds():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(256, 2, generator=g) * 0.1 + torch.tensor([2.0, 0.0])
    fake = torch.randn(256, 2, generator=g) * 0.1 - torch.tensor([2.0, 0.0])
    torch.manual_seed(0)
    critic = models.MLPCritic(2, width=32, depth=2)
    h = fit_critic("wgan-gp", critic, real, fake, steps=300, lr=1e-3, lam=10.0, record_every=100, exact_w1=True)
    assert h["step"] == [100, 200, 300]
    assert len(h["w1_exact"]) == 3
    exact = h["w1_exact"][-1]
    assert exact == pytest.approx(4.0, rel=0.05)
    # The penalty is soft: along the transport direction the optimal critic has slope s maximising
    # W s - lam (s - 1)^2, i.e. s = 1 + W / (2 lam), so the estimate is W (1 + W / (2 lam)) = 4.8.
    assert h["w1_estimate"][-1] == pytest.approx(exact * (1 + exact / 20.0), rel=0.05)


def test_fit_critic_with_callables_and_clipping():
    critic = models.MLPCritic(2, width=8, depth=1)
    h = fit_critic(
        "wgan-clip",
        critic,
        lambda n: torch.randn(n, 2) + 1,
        lambda n: torch.randn(n, 2),
        steps=5,
        batch_size=16,
        clip=0.05,
    )
    assert len(h["step"]) == 5 and "w1_exact" not in h
    assert max(p.abs().max().item() for p in critic.parameters()) <= 0.05 + 1e-7
    assert all(math.isfinite(v) for v in h["grad_norm"])


def test_fit_critic_validates_and_guards():
    critic = models.MLPCritic(2, width=8, depth=1)
    x = torch.randn(8, 2)
    with pytest.raises(ValueError, match="steps"):
        fit_critic("wgan-gp", critic, x, x, steps=0)
    with pytest.raises(ValueError, match="method"):
        fit_critic("wgan-x", critic, x, x, steps=1)
    with pytest.raises(TrainingDiverged):
        fit_critic("wgan-gp", _InfCritic(), x, x, steps=2)


class _HugeCritic(models.Critic):
    """Finite but exploded scores: 1e16 times a linear map."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.activations = []

    def forward(self, x):
        return self.lin(x).squeeze(-1) * 1e16


def test_fit_critic_and_train_share_one_divergence_guard():
    """The same recorder stops both: the first exploded record, named by its column, with the
    threshold's message; fit_critic keeps the records up to the flush, as the loop does."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 2), torch.randn(16, 2) + 3
    with pytest.raises(
        TrainingDiverged, match=r"step 1: critic_loss reached .* beyond the divergence threshold"
    ) as fitted:
        fit_critic("wgan-clip", _HugeCritic(), x, y, steps=5, batch_size=16)
    with pytest.raises(
        TrainingDiverged, match=r"step 1: critic_loss reached .* beyond the divergence threshold"
    ) as trained:
        train(tiny(method="wgan-clip", warmup=False, steps=3, log_every=1), critic=_HugeCritic())
    assert fitted.value.step == trained.value.step == 1
    h = {"step": [], "critic_loss": [], "penalty": []}
    rec = history._Recorder(h, "wgan-gp", ("critic_loss", "penalty"))
    rec.add(1, critic_loss=torch.tensor(0.5), penalty=torch.tensor(0.1))
    rec.add(2, critic_loss=torch.tensor(0.25))  # a missing column is recorded as NaN ...
    with pytest.raises(TrainingDiverged, match="step 2: penalty is not finite"):  # ... and guarded
        rec.flush()
    assert h["step"] == [1, 2] and h["critic_loss"] == [0.5, 0.25] and math.isnan(h["penalty"][1])


# ------------------------------------------------------------------ automatic checkpoints (book reruns)
class _Interrupted(Exception):
    pass


class _StopAt(Callback):
    """A caller's callback that stops the run at a step (as a killed kernel would)."""

    def __init__(self, step):
        self.step = step

    def on_step(self, state):
        if state.step >= self.step:
            raise _Interrupted


def test_checkpoint_root_resumes_an_interrupted_run(tmp_path):
    """With checkpoint_root, rerunning the same train() call resumes an interrupted run from its
    last checkpoint (in the folder named by the run's digest) and ends bit-identical to an
    uninterrupted run; a finished run is restored, not retrained."""
    from wganbook.train import load_checkpoint, run_folder_name

    straight = train(tiny(steps=6, w1_every=3))
    config = tiny(steps=6, w1_every=3, checkpoint_every=2)
    with pytest.raises(_Interrupted):
        train(config, checkpoint_root=tmp_path, callbacks=[_StopAt(4)])
    folder = tmp_path / run_folder_name(config)
    assert [p for p in tmp_path.iterdir()] == [folder]
    # the caller's callbacks run before the checkpoint of a step: step 4 was never saved
    assert load_checkpoint(folder)["step"] == 2

    resumed = train(config, checkpoint_root=tmp_path)  # e.g. a new process runs the notebook again
    assert resumed.checkpoint_dir == str(folder) and resumed.config is config
    assert _sha_pair(resumed) == _sha_pair(straight)
    _same_history(resumed.history, straight.history)
    again = train(config, checkpoint_root=str(tmp_path))
    assert _sha_pair(again) == _sha_pair(straight) and again.step == 6
    _same_history(again.history, straight.history)
    assert load_checkpoint(folder)["step"] == 6 and sorted(p.name for p in folder.iterdir()) == [CHECKPOINT_NAME]


def test_checkpoint_root_is_off_when_none_and_an_explicit_folder_wins(tmp_path):
    result = train(tiny(steps=2))
    assert result.config.checkpoint_dir is None and result.checkpoint_dir is None
    own = tmp_path / "own"
    result = train(tiny(steps=2, checkpoint_dir=str(own)), checkpoint_root=tmp_path / "root")
    assert result.checkpoint_dir == str(own) and (own / CHECKPOINT_NAME).is_file()
    assert not (tmp_path / "root").exists()
    with pytest.raises(TypeError, match="checkpoint_root"):
        train(tiny(steps=2), checkpoint_root=3)


def test_a_run_derived_from_an_auto_checkpointed_result_gets_its_own_folder(tmp_path):
    """``dataclasses.replace(result.config, ...)`` (chapter 3's best-response fits) must start a new
    run in a new folder: the automatic folder is not carried in ``result.config``, and the folder's
    name is a digest of the run, so the derived run neither resumes the original's finished
    checkpoint (training nothing) nor overwrites it."""
    import dataclasses

    first = train(tiny(steps=4), checkpoint_root=tmp_path)
    assert first.config.checkpoint_dir is None and first.config.checkpoint_every == 0
    assert Path(first.checkpoint_dir).parent == tmp_path
    before = (Path(first.checkpoint_dir) / CHECKPOINT_NAME).read_bytes()
    for change in (dict(steps=6), dict(steps=6, seed=first.config.seed + 1000)):
        derived = train(dataclasses.replace(first.config, **change), checkpoint_root=tmp_path)
        assert derived.checkpoint_dir != first.checkpoint_dir
        assert derived.history["step"] == list(range(1, 7))  # trained all 6 steps, resumed nothing
        assert (Path(first.checkpoint_dir) / CHECKPOINT_NAME).read_bytes() == before
        # and it is the run it would be without any checkpointing
        plain = train(dataclasses.replace(first.config, **change))
        assert _sha_pair(plain) == _sha_pair(derived)
    assert len(list(tmp_path.iterdir())) == 3


def test_run_folder_name_is_a_stable_digest_of_what_decides_the_run():
    import subprocess
    import sys

    from wganbook.train import run_folder_name

    config = tiny(steps=5)
    name = run_folder_name(config)
    assert name.startswith("wgan-gp-8gaussians-") and len(name.rsplit("-", 1)[1]) == 16
    # the same in another process (no per-process hash randomisation)
    code = (
        "from wganbook.train import TrainConfig, run_folder_name; print(run_folder_name(TrainConfig("
        "method='wgan-gp', data='8gaussians', steps=5, width=16, depth=2, batch_size=32, device='cpu', "
        "progress=False)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == name
    # how the run is watched or saved does not change it ...
    for same in (dict(progress=True), dict(log_every=7), dict(checkpoint_every=3), dict(checkpoint_dir="x")):
        assert run_folder_name(tiny(steps=5, **same)) == name, same
    # ... every setting that changes the run does, and so do the data and models given to train()
    for other in (
        dict(steps=6),
        dict(seed=1),
        dict(lr=1e-3),
        dict(width=8),
        dict(w1_every=2),
        dict(eval_every=2),
        dict(eval_every=2, eval_fn=lambda g, s: 0.0),
    ):
        assert run_folder_name(tiny(**{"steps": 5, **other})) != name, other
    x = torch.zeros(8, 2)
    assert run_folder_name(config, data=x) != name
    assert run_folder_name(config, data=x) == run_folder_name(config, data=x.clone())
    assert run_folder_name(config, data=x) != run_folder_name(config, data=x + 1)
    torch.manual_seed(0)
    c1 = models.MLPCritic(2, width=8, depth=1)
    torch.manual_seed(1)
    c2 = models.MLPCritic(2, width=8, depth=1)
    assert len({name, run_folder_name(config, critic=c1), run_folder_name(config, critic=c2)}) == 3


def test_run_grid_passes_checkpoint_root_to_every_run_also_in_workers(tmp_path):
    """Each run of a grid checkpoints in the folder named by its own digest, from worker processes
    too; the same grid called again restores every finished run (nothing retrained or rewritten)."""
    from wganbook.lab import sweeps
    from wganbook.train import run_folder_name

    base = dict(data="8gaussians", steps=3, width=16, depth=2, batch_size=32, device="cpu", progress=False)
    grid = {"method": ["wgan-gp", "wgan-lp"]}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers
    try:
        first = sweeps.run_grid(base, grid, seeds=[0, 1], n_eval=128, workers=2, checkpoint_root=tmp_path)
        names = sorted(run_folder_name(TrainConfig(**r["config"])) for r in first)
        assert sorted(p.name for p in tmp_path.iterdir()) == names and len(set(names)) == 4
        written = {n: (tmp_path / n / CHECKPOINT_NAME).read_bytes() for n in names}
        again = sweeps.run_grid(base, grid, seeds=[0, 1], n_eval=128, workers=1, checkpoint_root=str(tmp_path))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(first, again):
        assert a["metrics"] == b["metrics"]
        _same_history(a["history"], b["history"])
    assert {n: (tmp_path / n / CHECKPOINT_NAME).read_bytes() for n in names} == written
    with pytest.raises(TypeError, match="checkpoint_root"):
        sweeps.run_grid(base, grid, seeds=[0], checkpoint_root=3)


def test_critic_overfitting_passes_checkpoint_root(tmp_path):
    from wganbook.lab import critics

    x = torch.rand(40, 1, 8, 8) * 2 - 1
    config = dict(method="wgan-gp", data="digits", steps=2, width=2, batch_size=8, device="cpu", progress=False)
    first = critics.critic_overfitting(config, x[:20], x[20:], eval_every=1, n_fake=8, checkpoint_root=tmp_path)
    assert Path(first.checkpoint_dir).parent == tmp_path and (Path(first.checkpoint_dir) / CHECKPOINT_NAME).is_file()
    again = critics.critic_overfitting(config, x[:20], x[20:], eval_every=1, n_fake=8, checkpoint_root=tmp_path)
    assert again.checkpoint_dir == first.checkpoint_dir and _sha_pair(again) == _sha_pair(first)
    _same_history(again.history, first.history)
    other = critics.critic_overfitting(config, x[:20], x[21:], eval_every=1, n_fake=8, checkpoint_root=tmp_path)
    assert other.checkpoint_dir != first.checkpoint_dir  # another held-out set: another run


# ------------------------------------------------------------------ callbacks
def test_callbacks_see_every_step_in_order_before_the_checkpoint(tmp_path):
    from wganbook.train import load_checkpoint

    calls = []

    class Watch(Callback):
        def on_step(self, state):
            state.history.setdefault("watched", []).append(state.step)
            calls.append(("step", state.step, state.checkpoint_step))

        def on_end(self, state):
            calls.append(("end", state.step, state.checkpoint_step))

        def close(self):
            calls.append(("close",))

    r = train(tiny(steps=4, checkpoint_dir=str(tmp_path), checkpoint_every=2), callbacks=[Watch()])
    # the checkpoint of step 2 is written after the callback ran at step 2, and holds its record
    assert calls == [("step", 1, None), ("step", 2, None), ("step", 3, 2), ("step", 4, 2), ("end", 4, 4), ("close",)]
    assert r.history["watched"] == [1, 2, 3, 4] and load_checkpoint(tmp_path)["history"]["watched"] == [1, 2, 3, 4]
    with pytest.raises(TypeError, match=r"callbacks\[0\] must have on_step"):
        train(tiny(steps=1), callbacks=[object()])
    closed = []

    class Boom(Callback):
        def on_step(self, state):
            raise _Interrupted

        def close(self):
            closed.append(True)

    with pytest.raises(_Interrupted):
        train(tiny(steps=3), callbacks=[Boom()])
    assert closed == [True]

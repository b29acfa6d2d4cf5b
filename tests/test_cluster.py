"""Tests of wganbook.lab.cluster: runs on a Dask cluster give the serial run's records.

A LocalCluster of two worker processes with one thread each stands for a cluster (CPU only); the
address checks need no Dask at all.
"""

import json
import os
import signal
import socket
import sys
import time

import numpy as np
import pytest
import torch

from wganbook.lab import cluster, sweeps
from wganbook.train import TrainConfig, train
from wganbook.train.callbacks import Callback

# the smallest training configuration of tests/test_sweeps.py
BASE = {"data": "8gaussians", "steps": 3, "width": 16, "depth": 2, "batch_size": 32, "device": "cpu", "w1_every": 1}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def local_cluster():
    distributed = pytest.importorskip(
        "distributed", reason=f"dask/distributed are not installed ({cluster.INSTALL_HINT}; make test installs them)"
    )
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as lc:
        yield lc.scheduler_address
        # the clients get_client cached for this cluster: closed with it, or their background thread
        # keeps reconnecting to the closed scheduler, drawing from Python's global `random` (retry
        # jitter) while later tests of this process seed and draw from it
        for address, client in list(cluster._clients.items()):
            client.close()
            del cluster._clients[address]


def _same_records(a, b):
    assert [(r["combo"], r["seed"]) for r in a] == [(r["combo"], r["seed"]) for r in b]
    for x, y in zip(a, b):
        assert x["metrics"] == y["metrics"]  # exact equality, not approx
        assert x["config"] == y["config"] and x["diverged"] == y["diverged"]
        assert list(x["history"]) == list(y["history"])
        for k in x["history"]:
            np.testing.assert_array_equal(np.asarray(x["history"][k], float), np.asarray(y["history"][k], float))


# ---------------------------------------------------------------------------------------------
# the address, before any work
# ---------------------------------------------------------------------------------------------
def test_no_scheduler_means_local_workers(monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    assert cluster.resolve_scheduler() is None
    monkeypatch.setenv(cluster.SCHEDULER_ENV, "  ")
    assert cluster.resolve_scheduler() is None
    assert cluster.resolve_scheduler("tcp://10.0.0.5:8786/") == "tcp://10.0.0.5:8786"


@pytest.mark.parametrize("bad", ["8786", "localhost:8786", "tcp://host", "http://host:8786", "tcp://h:0", "tcp://h:x"])
def test_scheduler_variable_of_another_form_is_refused_naming_it(monkeypatch, bad):
    calls = []
    monkeypatch.setenv(cluster.SCHEDULER_ENV, bad)
    with pytest.raises(ValueError, match=f"{cluster.SCHEDULER_ENV} must be an address tcp://host:port") as info:
        sweeps.run_grid(BASE, {}, seeds=[0], metric=lambda r: {}, train_fn=lambda c, data=None: calls.append(c))
    assert repr(bad) in str(info.value) and calls == []
    with pytest.raises(ValueError, match="scheduler must be"):
        sweeps.map_runs(abs, [1, 2], scheduler="tcp://nowhere")


def test_scheduler_file_gives_its_address(tmp_path):
    f = tmp_path / "scheduler.json"
    f.write_text(json.dumps({"type": "Scheduler", "address": "tcp://127.0.0.1:8786"}))
    assert cluster.resolve_scheduler(str(f)) == str(f.resolve())
    assert cluster.scheduler_address(str(f)) == "tcp://127.0.0.1:8786"
    f.write_text("{}")
    with pytest.raises(ValueError, match="has no 'address'"):
        cluster.scheduler_address(str(f))


def test_unreachable_scheduler_fails_fast_naming_it(monkeypatch):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    calls = []
    monkeypatch.setenv(cluster.SCHEDULER_ENV, address)
    t0 = time.perf_counter()
    with pytest.raises(ConnectionError, match=f"cannot reach the Dask scheduler at {address}"):
        sweeps.run_grid(
            BASE, {"lr": [0.1, 0.2]}, seeds=[0], metric=lambda r: {}, train_fn=lambda c, **k: calls.append(c)
        )
    assert time.perf_counter() - t0 < cluster.CONNECT_TIMEOUT and calls == []
    with pytest.raises(ConnectionError, match=address):
        cluster.check_scheduler(address, timeout=1.0)


# ---------------------------------------------------------------------------------------------
# runs on a LocalCluster of two one-thread worker processes
# ---------------------------------------------------------------------------------------------
def test_cluster_records_equal_the_serial_records(local_cluster, one_thread):
    grid = {"method": ["wgan-gp", "wgan-sn"]}  # spectral norm: parametrized modules travel back
    serial = sweeps.run_grid(BASE, grid, seeds=[0, 1], n_eval=128, keep_results=True, workers=1)
    remote = sweeps.run_grid(BASE, grid, seeds=[0, 1], n_eval=128, keep_results=True, scheduler=local_cluster)
    _same_records(serial, remote)
    for a, b in zip(serial, remote):
        for net in ("generator", "critic"):
            sa, sb = getattr(a["result"], net).state_dict(), getattr(b["result"], net).state_dict()
            assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_map_runs_on_the_cluster_keeps_order_with_the_variable(local_cluster, monkeypatch):
    offset = 100

    def square_plus(x):  # a closure, as a notebook cell would define it
        return x * x + offset

    monkeypatch.setenv(cluster.SCHEDULER_ENV, local_cluster)
    assert sweeps.map_runs(square_plus, range(7), workers=1) == [x * x + offset for x in range(7)]
    assert sweeps.map_runs(square_plus, []) == []


def test_failing_run_on_the_cluster_names_its_configuration(local_cluster):
    def failing_train(cfg, data=None):
        if cfg.get("lr") == 0.5:
            raise KeyError(f"no optimiser for lr {cfg['lr']}")
        return None

    with pytest.raises(KeyError, match="no optimiser for lr 0.5") as info:
        sweeps.run_grid(
            BASE, {"lr": [0.1, 0.5]}, seeds=[3], metric=lambda r: {}, train_fn=failing_train, scheduler=local_cluster
        )
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "run 1 of 2 failed" in notes and "'lr': 0.5" in notes and "'seed': 3" in notes
    assert local_cluster in notes and "failing_train" in notes  # the cluster and the worker's traceback


class _KillAt(Callback):
    """Kill this worker process right after the checkpoint of step ``step`` was written."""

    def __init__(self, step, marker):
        self.step, self.marker = step, marker

    def on_step(self, state):
        if state.step == self.step:
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)


def test_a_run_whose_worker_died_resumes_from_its_checkpoint(local_cluster, one_thread, tmp_path):
    marker, resumed = tmp_path / "killed", tmp_path / "resumed"
    base = dict(BASE, steps=6, checkpoint_every=1)

    def train_fn(cfg, data=None, checkpoint_root=None):
        callbacks = []
        if cfg["seed"] == 1 and cfg["method"] == "wgan-gp":
            if marker.exists():  # the second attempt, on a fresh worker: its checkpoint is there
                resumed.write_text(str(sorted(p.name for p in tmp_path.joinpath("ckpt").rglob("*.pt"))))
            else:
                callbacks = [_KillAt(3, marker)]
        return train(TrainConfig(**cfg), data=data, checkpoint_root=checkpoint_root, callbacks=callbacks)

    grid = {"method": ["wgan-gp", "wgan-clip"]}
    serial = sweeps.run_grid(base, grid, seeds=[0, 1], n_eval=128, workers=1)
    remote = sweeps.run_grid(
        base,
        grid,
        seeds=[0, 1],
        n_eval=128,
        train_fn=train_fn,
        checkpoint_root=tmp_path / "ckpt",
        scheduler=local_cluster,
    )
    assert marker.exists(), "the run did not kill its worker"
    assert "checkpoint.pt" in resumed.read_text()  # the rerun found the killed run's checkpoint
    _same_records(serial, remote)


def test_without_dask_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if distributed were not installed
    with pytest.raises(ImportError, match=r"pip install 'wganbook\[cluster\]'"):
        sweeps.map_runs(abs, [1, 2], scheduler="tcp://127.0.0.1:8786")

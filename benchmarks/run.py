"""Benchmark of the wganbook core: trainer overhead, exact-W1 tracking, critic steps, ``w1``, the book.

One command prints a markdown table (and writes JSON with ``--json``)::

    make bench                                    # = benchmarks/run.py --book --load 2 (about 25 min)
    .venv/bin/python benchmarks/run.py            # items 1-4 and the thread settings (about 7 min)
    .venv/bin/python benchmarks/run.py --quick    # smoke mode (< 1 min): checks that the script works
    .venv/bin/python benchmarks/run.py --book     # also time every chapter and `pytest --nbval book/`
    .venv/bin/python benchmarks/run.py --only threads --load 2   # thread settings, quiet and loaded
    .venv/bin/python benchmarks/run.py --only workers   # sweep grids of chapters 3-6: 1 vs 2 workers
    .venv/bin/python benchmarks/run.py --device cuda --book   # on a GPU: full-preset sizes, chapters at full
    .venv/bin/python benchmarks/run.py --threads 1  # one torch/BLAS thread (steadier on a busy shared CPU)

Machines are noisy, so every comparison is a *ratio measured within one run*: the contenders run
interleaved (A B C, then B C A, ...), after a warm-up, several times; the tables give medians
(and the min-max range of the per-repeat ratios). Each run is timed by the wall clock and by the
process CPU time; on a CPU shared with other busy processes the CPU-time ratio is the steadier one.

Sections (``--only`` picks some):

``trainer``   1. ``wganbook.train.train`` against a minimal hand-written WGAN-GP loop (same nets,
              batch, n_critic, optimiser, data sampler; no logging), generator steps per second,
              on the 2-D toy (3x512 MLPs, batch 256) and on 8x8 digits (``--preset full``: also
              28x28 and 32x32 images of the full presets). Target ratio >= 0.95.
              2. The same runs with exact-W1 tracking on (``w1_every``): extra wall time, target <= 10 %.
``critic``    3. Cost of one critic step (loss, backward, optimiser step, clip) of wgan-clip, wgan-gp,
              wgan-div, wgan-sn and wgan-ct at the same size (``fit_critic``).
``w1``        4. ``wganbook.transport.w1`` for batch sizes 64..1024 at 784 and 3072 dimensions.
``threads``   The same ``train()`` runs in fresh processes with torch's default threads, with
              ``OMP_WAIT_POLICY=PASSIVE``, with a short ``GOMP_SPINCOUNT`` and with one thread (CPU
              only; skipped by ``--quick``); with ``--load N`` again while N busy-loop processes
              compete for the cores: on a shared, busy CPU libgomp's spinning threads cost a factor
              of several.
``workers``   Each sweep chapter's main grid (chapters 3-6, the quick presets' settings, steps
              times ``--grid-scale``) run serially and with 2 worker processes
              (``wganbook.lab.sweeps.map_runs``), interleaved: wall-time speed-up (goal >= 1.7) and whether
              the records are identical (CPU only; ``--chapters`` picks grids).
``book``      5. Wall time of each chapter's default run (executed into a temporary copy of the
              book, never touching ``book/*.ipynb``) and of ``pytest --nbval book/`` (``--book``).
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wganbook import models, objectives
from wganbook import train as T
from wganbook.data import load_images, sample_toy, seed_everything
from wganbook.lab import critics, wgandiv
from wganbook.transport import w1

SECTIONS = ("trainer", "critic", "w1", "threads", "workers", "book")
CRITIC_METHODS = ("wgan-clip", "wgan-gp", "wgan-div", "wgan-sn", "wgan-ct")


# ---------------------------------------------------------------------------------------------
# timing helpers
# ---------------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall time of ``fn()`` in seconds, with the device's queue drained before and after."""
    return timed2(fn, device)[0]


def timed2(fn: Callable[[], object], device: torch.device):
    """``(wall seconds, process CPU seconds)`` of ``fn()``, the device's queue drained around it.

    On a shared CPU machine the process CPU time is far less noisy than the wall time (it does
    not count the time spent waiting for a core); both are reported.
    """
    _sync(device)
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def interleaved(contenders: Dict[str, Callable[[], object]], repeats: int, device):
    """Run every contender ``repeats`` times, rotating the order each round.

    Returns ``(wall, cpu)``: dicts name -> list of seconds per run (index = round).
    """
    names = list(contenders)
    wall: Dict[str, List[float]] = {k: [] for k in names}
    cpu: Dict[str, List[float]] = {k: [] for k in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            w, c = timed2(contenders[name], device)
            wall[name].append(w)
            cpu[name].append(c)
    return wall, cpu


def med(xs) -> float:
    return float(statistics.median(xs))


def ratio_stats(num: List[float], den: List[float]) -> Dict[str, float]:
    """Median and range of the per-repeat ratios num[i] / den[i] (same round, adjacent in time)."""
    rs = [a / b for a, b in zip(num, den)]
    return {"median": med(rs), "min": min(rs), "max": max(rs), "all": rs}


def fmt_range(st: Dict[str, float], digits: int = 3) -> str:
    return f"{st['median']:.{digits}f} ({st['min']:.{digits}f}-{st['max']:.{digits}f})"


# ---------------------------------------------------------------------------------------------
# 1-2. trainer vs a bare loop
# ---------------------------------------------------------------------------------------------
def bare_wgan_gp(
    G, D, data, steps: int, batch_size: int, n_critic: int, lam: float, lr: float, betas, device, seed: int = 0
):
    """The minimal WGAN-GP loop users copy (gan_toy.py / PyTorch-GAN style): no logging at all.

    ``data`` is a tensor (minibatches by a random permutation per epoch) or a callable
    ``(n, rng) -> tensor`` (fresh samples, e.g. a toy sampler).
    """
    rng = torch.Generator().manual_seed(seed)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    if isinstance(data, torch.Tensor):
        data = data.to(device)
        n_data = data.shape[0]
        perm, pos = None, n_data

        def next_real():
            nonlocal perm, pos
            if pos + batch_size > n_data:
                perm, pos = torch.randperm(n_data, generator=rng).to(device), 0
            idx = perm[pos : pos + batch_size]
            pos += batch_size
            return data[idx]
    else:

        def next_real():
            return data(batch_size, rng).to(device)

    z_dim = G.z_dim
    for _ in range(steps):
        for p in D.parameters():
            p.requires_grad_(True)
        for _ in range(n_critic):
            real = next_real()
            with torch.no_grad():
                fake = G(torch.randn(batch_size, z_dim, device=device))
            d_real = D(real).mean()
            d_fake = D(fake).mean()
            alpha = torch.rand(batch_size, *([1] * (real.dim() - 1)), device=device)
            x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
            gp = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
            loss_d = d_fake - d_real + lam * gp
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
        for p in D.parameters():
            p.requires_grad_(False)
        loss_g = -D(G(torch.randn(batch_size, z_dim, device=device))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    for p in D.parameters():
        p.requires_grad_(True)
    return G, D


def _case_data(case: dict, device):
    """Real data of a trainer case: a toy sampler, an image tensor (random when not on disk)."""
    if case["toy"]:
        name = case["data"]
        return None, (lambda n, rng: sample_toy(name, n, generator=rng))
    try:
        x = load_images(case["data"])[0]
        source = case["data"]
    except Exception:  # noqa: BLE001 - full-size datasets may be absent offline: timing needs shapes only
        g = torch.Generator().manual_seed(0)
        x = torch.rand((case["n_fake_data"],) + tuple(case["shape"]), generator=g) * 2 - 1
        source = "random tensors"
    case["source"] = source
    return x, x


def trainer_cases(preset: str, quick: bool = False) -> List[dict]:
    """The training set-ups measured; ``quick`` (smoke test only) shrinks the toy nets to 3x64."""
    toy_label = "2-D toy (8gaussians), " + ("3x64 MLPs (smoke test)" if quick else "3x512 MLPs") + ", batch 256"
    cases = [
        dict(key="toy", label=toy_label, data="8gaussians", toy=True, width=64 if quick else None),
        dict(
            key="digits",
            label="digits 8x8, DCGAN-style, batch 64",
            data="digits",
            toy=False,
            shape=(1, 8, 8),
            n_fake_data=1797,
        ),
    ]
    if preset == "full":
        cases += [
            dict(
                key="mnist",
                label="MNIST 28x28, DCGAN-style, batch 64",
                data="mnist",
                toy=False,
                shape=(1, 28, 28),
                n_fake_data=60000,
            ),
            dict(
                key="cifar10",
                label="CIFAR-10 32x32, DCGAN-style, batch 64",
                data="cifar10",
                toy=False,
                shape=(3, 32, 32),
                n_fake_data=50000,
            ),
        ]
    return cases


#: Pixels per image of the datasets of the trainer cases: a chapter's rate is that of its largest dataset.
_CASE_PIXELS = {"digits": 64, "mnist": 784, "cifar10": 3072}


def throughput_record(trainer_rows: List[dict], plan: List[dict], gpu: str, when: str) -> dict:
    """The content of ``results/gpu_throughput.json`` (``wganbook.bookkit.runner.THROUGHPUT_FILE``).

    A chapter's generator steps per second are those measured for ``train()`` (WGAN-GP, the chapters'
    architectures) on the largest image dataset of the chapter's full preset (the 2-D toy when it has
    none); chapters without training runs, or whose case was not measured, are left out. The plan of
    chapter 8 (``runner.plan_on_gpus``) turns these rates into wall hours on 1, 4 and 16 GPUs.
    """
    rates = {r["case"]: r["trainer_steps_per_s"] for r in trainer_rows}
    chapters = {}
    for row in plan:
        if not row.get("runs"):
            continue
        names: List[str] = []
        for value in (row.get("datasets") or {}).values():
            names += list(value) if isinstance(value, (list, tuple)) else [value]
        images = [n for n in names if n in _CASE_PIXELS]
        case = max(images, key=_CASE_PIXELS.get) if images else "toy"
        if case in rates:
            chapters[row["key"]] = {"generator_steps_per_s": rates[case], "case": case}
    return {
        "gpu": gpu,
        "measured": when,
        "source": "benchmarks/run.py, trainer section: train() with WGAN-GP on each chapter's largest dataset",
        "chapters": chapters,
    }


def write_throughput(res: dict, path: Path, force: bool = False) -> Path:
    """Write :func:`throughput_record` of a CUDA benchmark's results to ``path``; an existing file (an earlier
    measurement) is kept unless ``force``."""
    from wganbook.bookkit import runner

    if path.exists() and not force:
        raise FileExistsError(f"{path} exists (an earlier measurement); pass --force to replace it")
    plan = runner.plan_book("full", book_dir=ROOT / "book")
    gpu = res["machine"].get("gpu") or res["machine"].get("device") or "a GPU"
    record = throughput_record(res.get("trainer", []), plan, str(gpu), _dt.date.today().isoformat())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def bench_trainer(args, device, out: dict) -> None:
    """Items 1 and 2: steps/s of train() vs the bare loop; extra time of exact-W1 tracking.

    Three contenders per round: the bare loop, ``train()`` with exact-W1 tracking off, and
    ``train()`` with ``w1_every=1`` (one exact W1 per generator step, the most frequent cadence).
    The extra time at cadence K is the measured per-call cost divided by K steps' time; the cost
    of one ``w1`` call on the same batch is also timed on its own.
    """
    rows = []
    for case in trainer_cases(args.preset, args.quick):
        if args.cases and case["key"] not in args.cases:
            continue
        tensor, bare_data = _case_data(case, device)
        cfg_kw = dict(
            method="wgan-gp", data=case["data"], seed=0, device=str(device), progress=False, width=case.get("width")
        )
        hp = T.TrainConfig(steps=1, **cfg_kw).hparams()
        seed_everything(0)
        G0 = models.make_generator(case["data"], width=case.get("width"))
        D0 = models.make_critic(case["data"], width=case.get("width"))

        def run_trainer(steps, w1_every=0):
            cfg = T.TrainConfig(steps=steps, w1_every=w1_every, **cfg_kw)
            return T.train(cfg, data=tensor, generator=copy.deepcopy(G0), critic=copy.deepcopy(D0))

        def run_bare(steps):
            return bare_wgan_gp(
                copy.deepcopy(G0).to(device),
                copy.deepcopy(D0).to(device),
                bare_data,
                steps,
                hp["batch_size"],
                hp["n_critic"],
                hp["lam"],
                hp["lr"],
                hp["betas"],
                device,
            )

        # warm-up, and the number of steps so that one run lasts about args.run_seconds
        run_bare(1 if args.quick else 2)
        run_trainer(1 if args.quick else 2, w1_every=1)
        if args.quick:
            steps = 1 if case["toy"] else 3
        else:
            per_step = timed(lambda: run_bare(3), device) / 3
            steps = max(3, int(round(args.run_seconds / per_step)))
        wall, cpu = interleaved(
            {
                "bare": lambda: run_bare(steps),
                "trainer": lambda: run_trainer(steps),
                "trainer+w1": lambda: run_trainer(steps, w1_every=1),
            },
            args.repeats,
            device,
        )
        speed = ratio_stats(wall["bare"], wall["trainer"])  # = trainer steps/s over bare steps/s
        speed_cpu = ratio_stats(cpu["bare"], cpu["trainer"])
        w1_each = ratio_stats(wall["trainer+w1"], wall["trainer"])
        w1_each_cpu = ratio_stats(cpu["trainer+w1"], cpu["trainer"])
        # one W1 call on a batch of this size, timed on its own
        res = run_trainer(1)
        bs = hp["batch_size"]
        x = tensor[:bs] if tensor is not None else bare_data(bs, torch.Generator().manual_seed(1))
        with torch.no_grad():
            y = res.generator(res.generator.sample_z(bs))
        xn = x.flatten(1).double().cpu().numpy()
        yn = y.flatten(1).double().cpu().numpy()
        w1(xn, yn)
        w1_call = med([timed(lambda: w1(xn, yn), device) for _ in range(max(3, args.repeats))])
        sec_step = med(wall["trainer"]) / steps
        K = args.w1_every
        row = dict(
            case=case["key"],
            label=case["label"],
            data_source=case.get("source", case["data"]),
            steps=steps,
            repeats=args.repeats,
            batch_size=bs,
            n_critic=hp["n_critic"],
            bare_steps_per_s=steps / med(wall["bare"]),
            trainer_steps_per_s=steps / med(wall["trainer"]),
            ratio=speed,
            ratio_cpu=speed_cpu,
            w1_each_step=w1_each["median"] - 1.0,
            w1_each_step_cpu=w1_each_cpu["median"] - 1.0,
            w1_every=K,
            w1_call_ms=1e3 * w1_call,
            w1_overhead=max(w1_each["median"] - 1.0, 0.0) / K,
            w1_overhead_est=w1_call / (K * sec_step),
            wall=wall,
            cpu=cpu,
        )
        rows.append(row)
        print(
            f"  [trainer] {case['key']}: {steps} steps x {args.repeats}: trainer/bare speed = {fmt_range(speed)} "
            f"(CPU time: {fmt_range(speed_cpu)}); W1 every step {100 * row['w1_each_step']:+.1f} %, "
            f"every {K}: {100 * row['w1_overhead']:+.2f} % (one call {row['w1_call_ms']:.1f} ms "
            f"-> {100 * row['w1_overhead_est']:.2f} %)",
            flush=True,
        )
    out["trainer"] = rows


# ---------------------------------------------------------------------------------------------
# 3. critic step cost per method
# ---------------------------------------------------------------------------------------------
def bench_critic(args, device, out: dict) -> None:
    rows = []
    for case in trainer_cases(args.preset, args.quick):
        if args.cases and case["key"] not in args.cases:
            continue
        tensor, sampler = _case_data(case, device)
        g = torch.Generator().manual_seed(0)
        if case["toy"]:
            real = sampler(4096, g)
            bs = 256
        else:
            real = tensor[:4096]
            bs = 64
        fake = (torch.randn(real.shape, generator=g) * 0.5).clamp(-1, 1)
        critics = {}
        for m in CRITIC_METHODS:
            seed_everything(0)
            spectral = bool(objectives.METHODS[m].defaults["spectral"])
            critics[m] = models.make_critic(case["data"], width=case.get("width"), spectral=spectral).to(device)

        def run(m, steps):
            return T.fit_critic(
                m,
                copy.deepcopy(critics[m]),
                real,
                fake,
                steps=steps,
                batch_size=bs,
                seed=0,
                device=str(device),
                track_grad_norm=False,
            )

        per = {}
        for m in CRITIC_METHODS:  # warm-up and calibration
            run(m, 1 if args.quick else 2)
            if not args.quick:
                per[m] = timed(lambda m=m: run(m, 5), device) / 5
        steps = 2 if args.quick else max(5, int(round(args.run_seconds / 2 / max(per.values()))))
        wall, cpu = interleaved({m: (lambda m=m: run(m, steps)) for m in CRITIC_METHODS}, args.repeats, device)
        for m in CRITIC_METHODS:
            rows.append(
                dict(
                    case=case["key"],
                    label=case["label"],
                    method=m,
                    batch_size=bs,
                    steps=steps,
                    ms_per_step=1e3 * med(wall[m]) / steps,
                    cpu_ms_per_step=1e3 * med(cpu[m]) / steps,
                    vs_clip=ratio_stats(wall[m], wall["wgan-clip"]),
                    vs_clip_cpu=ratio_stats(cpu[m], cpu["wgan-clip"]),
                )
            )
        print(
            "  [critic] "
            + case["key"]
            + ": "
            + ", ".join(
                f"{r['method']} {r['ms_per_step']:.1f} ms (x{r['vs_clip_cpu']['median']:.2f} CPU)"
                for r in rows
                if r["case"] == case["key"]
            ),
            flush=True,
        )
    out["critic"] = rows


# ---------------------------------------------------------------------------------------------
# 4. w1 scaling
# ---------------------------------------------------------------------------------------------
def bench_w1(args, device, out: dict) -> None:
    import ot

    from wganbook.transport import cost_matrix

    sizes = (64, 128) if args.quick else (64, 128, 256, 512, 1024)
    rows = []
    for d in (784, 3072):
        for n in sizes:
            rng = np.random.default_rng(n + d)
            x = rng.standard_normal((n, d))
            y = rng.standard_normal((n, d)) + 0.1
            reps = max(2, args.repeats if n <= 256 else args.repeats // 2 + 1)
            w1(x, y)  # warm-up
            t_all, c_all = zip(*[timed2(lambda: w1(x, y), device) for _ in range(reps)])
            C = np.asarray(cost_matrix(x, y))
            a = np.full(n, 1.0 / n)
            t_emd = [timed(lambda: ot.emd2(a, a, C, numItermax=1_000_000), device) for _ in range(reps)]
            t_tor = []
            if device.type == "cuda":  # torch inputs on the device: includes the copy back to the host
                xt, yt = torch.from_numpy(x).float().to(device), torch.from_numpy(y).float().to(device)
                w1(xt, yt)
                t_tor = [timed(lambda: w1(xt, yt), device) for _ in range(reps)]
            rows.append(
                dict(
                    d=d,
                    n=n,
                    repeats=reps,
                    ms=1e3 * med(t_all),
                    cpu_ms=1e3 * med(c_all),
                    emd_ms=1e3 * med(t_emd),
                    torch_device_ms=1e3 * med(t_tor) if t_tor else None,
                )
            )
            print(
                f"  [w1] n={n} d={d}: {rows[-1]['ms']:.1f} ms, CPU {rows[-1]['cpu_ms']:.1f} ms "
                f"(emd {rows[-1]['emd_ms']:.1f} ms)",
                flush=True,
            )
    out["w1"] = rows


# ---------------------------------------------------------------------------------------------
# threads: the OpenMP wait policy on a shared CPU
# ---------------------------------------------------------------------------------------------
THREAD_CONFIGS = (
    ("torch default (OpenMP threads spin)", {}),
    ("OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}),
    ("GOMP_SPINCOUNT=10000 (short spin)", {"GOMP_SPINCOUNT": "10000"}),
    ("1 thread", {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}),
)
PROBE_STEPS = {"8gaussians": 3, "digits": 10}


def thread_probe() -> dict:
    """Subprocess side of ``bench_threads``: ms per generator step of ``train()``, and a digest."""
    out = {"threads": torch.get_num_threads()}
    for data, steps in PROBE_STEPS.items():
        kw = dict(method="wgan-gp", data=data, device="cpu", progress=False)
        T.train(T.TrainConfig(steps=1, **kw))
        w, c = timed2(lambda: out.__setitem__("_r", T.train(T.TrainConfig(steps=steps, **kw))), torch.device("cpu"))
        r = out.pop("_r")
        out[data] = dict(ms=1e3 * w / steps, cpu_ms=1e3 * c / steps, digest=T.params_sha256(r.critic)[:12])
    return out


def _burners(n: int) -> list:
    """``n`` processes that each keep one core busy (a stand-in for other users of a shared machine)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def bench_threads(args, device, out: dict) -> None:
    """Context for items 1 and 5: the same ``train()`` runs in fresh processes under four thread settings.

    libgomp's default wait policy spins; when the cores are shared with other busy processes the
    spinning threads steal each other's time slices. Measured on the machine as it is and, with
    ``--load N``, again while ``N`` busy-loop processes compete for the cores.
    """
    loads = [0] + ([args.load] if args.load else [])
    blocks = []
    for load in loads:
        burners = _burners(load)
        try:
            rows = {name: [] for name, _ in THREAD_CONFIGS}
            rounds = max(2, args.repeats // 3)
            for r in range(rounds):
                k = r % len(THREAD_CONFIGS)
                for name, extra in THREAD_CONFIGS[k:] + THREAD_CONFIGS[:k]:
                    env = {
                        kk: v
                        for kk, v in os.environ.items()
                        if kk
                        not in (
                            "OMP_WAIT_POLICY",
                            "OMP_NUM_THREADS",
                            "OPENBLAS_NUM_THREADS",
                            "MKL_NUM_THREADS",
                            "GOMP_SPINCOUNT",
                        )
                    }
                    env.update(extra)
                    proc = subprocess.run(
                        [sys.executable, str(Path(__file__).resolve()), "--probe"],
                        env=env,
                        capture_output=True,
                        text=True,
                        cwd=ROOT,
                    )
                    if proc.returncode != 0:
                        raise RuntimeError(f"thread probe failed ({name}): {proc.stderr[-500:]}")
                    rows[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            loadavg = [round(x, 2) for x in os.getloadavg()]
        finally:
            for b in burners:
                b.kill()
                b.wait()
        res = []
        for name, _ in THREAD_CONFIGS:
            runs = rows[name]
            row = dict(config=name, threads=runs[0]["threads"])
            for data in PROBE_STEPS:
                row[data] = med([x[data]["ms"] for x in runs])
                row[data + "_cpu"] = med([x[data]["cpu_ms"] for x in runs])
                row[data + "_digest"] = sorted({x[data]["digest"] for x in runs})
            res.append(row)
            print(
                f"  [threads] {load} busy processes, {name} ({row['threads']} threads): toy "
                f"{row['8gaussians']:.0f} ms/step, digits {row['digits']:.0f} ms/step",
                flush=True,
            )
        blocks.append(dict(busy_processes=load, rounds=rounds, rows=res, loadavg=loadavg))
    out["threads"] = blocks


# ---------------------------------------------------------------------------------------------
# 5. the book
# ---------------------------------------------------------------------------------------------
def bench_book(args, device, out: dict) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "scripts" / "execute_notebooks.py")
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    chapters = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="wganbook-bench-"))
    try:
        book = tmp / "book"
        shutil.copytree(ROOT / "book", book)  # the stored notebooks are never touched
        for nb in chapters:
            if args.chapters and nb.name[:2] not in args.chapters:
                continue
            copy_path = book / nb.name
            err = None
            if args.preset == "full":
                t, err = _run_full_chapter(copy_path, tmp, device)
            else:
                t0, c0 = time.perf_counter(), _children_cpu()
                try:
                    ex.execute(copy_path)
                except (SystemExit, Exception) as e:  # noqa: BLE001 - report, keep timing the others
                    err = str(e)[:200]
                t = time.perf_counter() - t0
            cpu = _children_cpu() - c0 if args.preset != "full" else None
            limit = 240 if nb.name[:2] in ("05", "06") else 180
            rows.append(
                dict(
                    chapter=nb.stem,
                    seconds=t,
                    kernel_cpu_s=cpu,
                    limit_s=limit if args.preset == "quick" else None,
                    ok=err is None,
                    error=err,
                )
            )
            print(
                f"  [book] {nb.stem}: {t:.0f} s (kernel CPU {cpu or 0:.0f} s){' ERROR ' + err if err else ''}",
                flush=True,
            )
        nbval = None
        if args.preset == "quick" and not args.chapters:
            cmd = [
                sys.executable,
                "-m",
                "pytest",
                "--nbval",
                "book/",
                "--nbval-current-env",
                "--nbval-sanitize-with",
                "tests/nbval_sanitize.cfg",
                "-p",
                "no:cacheprovider",
                "-q",
            ]
            env = dict(os.environ, TQDM_DISABLE="1", PYTHONHASHSEED="0", MPLBACKEND="Agg")
            env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `make nbval`
            t0, c0 = time.perf_counter(), _children_cpu()
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            t = time.perf_counter() - t0
            cpu = _children_cpu() - c0
            lines_out = proc.stdout.strip().splitlines()
            tail = (lines_out or [""])[-1]
            failed = [ln[:300] for ln in lines_out if ln.startswith(("FAILED", "ERROR"))]
            nbval = dict(
                seconds=t,
                cpu_s=cpu,
                returncode=proc.returncode,
                summary=tail,
                limit_s=900,
                failed=failed,
                command="pytest --nbval book/ (make nbval)",
            )
            for ln in failed:
                print(f"    {ln}", flush=True)
            print(
                f"  [book] pytest --nbval book/: {t:.0f} s (CPU {cpu:.0f} s), rc={proc.returncode}: {tail}", flush=True
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["book"] = dict(chapters=rows, nbval=nbval, n_chapters_found=len(chapters))


def _children_cpu() -> float:
    """User + system CPU seconds of finished child processes (kernels, pytest and their children)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run_full_chapter(path: Path, tmp: Path, device):
    """One chapter at the full preset through papermill (``python -m wganbook book``), in ``tmp``."""
    cmd = [
        sys.executable,
        "-m",
        "wganbook",
        "book",
        "--preset",
        "full",
        "--out",
        str(tmp / "runs"),
        "--book-dir",
        str(path.parent),
        "--chapters",
        path.name[:2],
        "-p",
        "device",
        str(device),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    err = None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]
    return time.perf_counter() - t0, err


# ---------------------------------------------------------------------------------------------
# independent runs in worker processes (wganbook.lab.sweeps.map_runs)
# ---------------------------------------------------------------------------------------------
WORKER_CHAPTERS = ("03", "04", "05", "06")


def _scaled(n: int, scale: float) -> int:
    """A step count times ``scale``, at least 2."""
    return max(2, int(round(n * scale)))


def sn_train_fn(cfg, data=None):
    """Chapter 6's sweep ``train_fn``: a variant with ``spectral=True`` gets a spectrally normalised critic."""
    cfg = dict(cfg)
    spectral = cfg.pop("spectral", False)
    config = T.TrainConfig(**cfg)
    critic = models.make_critic(config.data, spectral=True) if spectral else None
    return T.train(config, data=data, critic=critic)


def worker_grids(scale: float = 1.0, chapters=None) -> List[dict]:
    """The main independent-run grids of chapters 3-6, at their quick presets' sizes times ``scale`` (steps).

    Each grid is ``dict(chapter, label, n_runs, run=callable(workers) -> records)`` (and ``calls``, the
    runs of each call, where the grid makes several calls one after the other); the settings are
    read from ``wganbook.bookkit.presets`` when this is called, so they follow the chapters.
    """
    from wganbook.bookkit import presets
    from wganbook.lab import sweeps

    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    out = []
    want = set(chapters or WORKER_CHAPTERS)
    if "03" in want:
        p = presets.get_preset("ch03")
        clips = {f"c = {c:g}": {"method": "wgan-clip", "clip": c, "track_grad_norm": False} for c in p["clips"]}
        toys = ["8gaussians", "25gaussians", "swissroll"]

        def run3(workers, p=p, clips=clips, toys=toys):
            # as in the chapter: the three toys and the critic started inside the box in one call
            clip = {"method": "wgan-clip", "clip": 0.01, "track_grad_norm": False}
            steps = _scaled(p["critic_steps"], scale)
            a = critics.fit_static_critics(
                {"clipping": clip, "inside": dict(clip, inside_box=True, datasets=["8gaussians"])},
                toys,
                steps=steps,
                batch_size=256,
                width=p["toy_width"],
                exact_w1=True,
                record_every=max(1, steps // 30),
                workers=workers,
            )
            b = critics.fit_static_critics(
                clips,
                ["swissroll"],
                steps=_scaled(p["deep_steps"], scale),
                batch_size=64,
                width=p["deep_width"],
                depth=12,
                workers=workers,
            )
            return list(a.values()) + list(b.values())

        out.append(
            dict(
                chapter="03",
                label=f"static clipped critics: 3 toys + inside the box, {len(clips)} clips x 12 layers",
                n_runs=4 + len(clips),
                calls=(4, len(clips)),
                run=run3,
            )
        )
    if "04" in want:
        p = presets.get_preset("ch04")
        lr = {m: objectives.get_method(m).defaults["lr"] for m in p["methods"]}
        variants = [
            dict(
                name=m,
                method=m,
                lr=lr[m] * p["toy_lr_scale"],
                **({"lam": p["toy_lam"]} if m in ("wgan-gp", "wgan-lp") else {}),
            )
            for m in p["methods"]
        ]
        base4 = {
            "steps": _scaled(p["toy_steps"], scale),
            "width": p["toy_width"],
            "batch_size": p["toy_batch_size"],
            "warmup": False,
            "device": "cpu",
        }
        grid4 = {"data": p["toy_datasets"], "variant": variants}

        def run4(workers, base=base4, grid=grid4, seeds=p["seeds"]):
            return sweeps.run_grid(base, grid, seeds=seeds, n_eval=1024, workers=workers)

        out.append(
            dict(
                chapter="04",
                label=f"toy GANs: {len(p['toy_datasets'])} datasets x {len(variants)} methods "
                f"x {len(p['seeds'])} seeds",
                n_runs=len(p["toy_datasets"]) * len(variants) * len(p["seeds"]),
                run=run4,
            )
        )
    if "05" in want or "06" in want:
        from wganbook import metrics

    if "05" in want:
        p = presets.get_preset("ch05")
        images5 = load_images(p["image_dataset"])[0]
        cache = {}  # the chapter's classifier features, built at the first run (the grid list stays cheap)
        base5 = {
            "data": p["image_dataset"],
            "steps": _scaled(p["steps"], scale),
            "lr": p["lr"],
            "betas": tuple(p["betas"]),
            "device": "cpu",
            "progress": False,
        }
        grid5 = {"method": p["methods"], "strategy": p["strategies"]}

        def run5(workers, base=base5, grid=grid5, seeds=p["seeds"], images=images5, cache=cache, p=p):
            if "features" not in cache:
                cache["features"] = metrics.ClassifierFeatures(p["image_dataset"])
            return sweeps.run_grid(
                base,
                grid,
                seeds=seeds,
                metric=["fd"],
                data=images,
                n_eval=p["n_eval"],
                features=cache["features"],
                train_fn=wgandiv.make_train_fn(p["arch"]),
                workers=workers,
            )

        out.append(
            dict(
                chapter="05",
                label=f"sampling strategies: {len(p['methods'])} methods x "
                f"{len(p['strategies'])} strategies x {len(p['seeds'])} seeds",
                n_runs=len(p["methods"]) * len(p["strategies"]) * len(p["seeds"]),
                run=run5,
            )
        )
    if "06" in want:
        p = presets.get_preset("ch06")
        steps = _scaled(p["image_steps"], scale)
        variants6 = [
            {"name": "WGAN-GP", "method": "wgan-gp"},
            {"name": "WGAN-CT", "method": "wgan-ct"},
            {"name": "GAN-NS", "method": "gan-ns", "steps": 5 * steps},
            {"name": "GAN-NS + SN", "method": "gan-ns", "spectral": True, "steps": 5 * steps},
        ]
        images6 = load_images(p["image_dataset"])[0]
        base6 = {
            "data": p["image_dataset"],
            "steps": steps,
            "batch_size": p["batch_size"],
            "w1_every": max(1, steps // 20),
            "device": "cpu",
        }

        def run6(workers, base=base6, variants=variants6, seeds=p["seeds"], images=images6, p=p):
            return sweeps.run_grid(
                base,
                {"variant": variants},
                seeds=seeds,
                data=images,
                n_eval=p["n_eval"],
                train_fn=sn_train_fn,
                workers=workers,
            )

        out.append(
            dict(
                chapter="06",
                label=f"image GANs: {len(variants6)} variants x {len(p['seeds'])} seeds",
                n_runs=len(variants6) * len(p["seeds"]),
                run=run6,
            )
        )
    return out


def records_digest(records) -> str:
    """SHA-256 (12 hex digits) of what a grid's runs produced, wall times excluded.

    Records of ``run_grid``: combination, seed, configuration, metrics and history; fits of
    ``fit_static_critics``: label, dataset, history, critic weights and evaluation samples. Floats
    enter through ``repr`` (exact), tensors through their bytes.
    """
    import hashlib

    h = hashlib.sha256()

    def feed(x):
        if isinstance(x, torch.Tensor):
            h.update(str((x.dtype, tuple(x.shape))).encode())
            h.update(x.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(x, np.ndarray):
            h.update(str((x.dtype, x.shape)).encode())
            h.update(np.ascontiguousarray(x).tobytes())
        elif isinstance(x, dict):
            for k in x:
                h.update(repr(k).encode())
                feed(x[k])
        elif isinstance(x, (list, tuple)):
            h.update(f"[{len(x)}".encode())
            for v in x:
                feed(v)
        else:
            h.update(repr(x).encode())

    for r in records:
        if isinstance(r, dict):
            feed({k: r[k] for k in ("combo", "seed", "config", "metrics", "history", "diverged") if k in r})
        else:  # a StaticFit
            feed([r.label, r.dataset, r.method, r.history, r.real, r.fake, r.critic.state_dict()])
    return h.hexdigest()[:12]


def _warm_pool(_):
    import wganbook.metrics  # noqa: F401
    import wganbook.train  # noqa: F401 - what a run imports first

    return os.getpid()


def bench_workers(args, device, out: dict) -> None:
    """Each sweep chapter's main grid with 1 and with 2 worker processes, interleaved.

    Both run with one torch thread per process (as the notebooks); the pool of 2 is started by an
    untimed warm-up call (a notebook pays that start-up, ~2-3 s, once). Reports the wall-time
    speed-up per round and whether the two give identical records (digest).
    """
    from wganbook.lab import sweeps

    if device.type != "cpu":
        print("  [workers] skipped: on a GPU the runs stay in one process", flush=True)
        out["workers"] = None
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        load0 = [round(x, 2) for x in os.getloadavg()]
        t0 = time.perf_counter()
        pids = set(sweeps.map_runs(_warm_pool, range(4), workers=2))
        warm_s = time.perf_counter() - t0
        rows = []
        chapters = [c for c in (args.chapters or WORKER_CHAPTERS) if c in WORKER_CHAPTERS]
        for g in worker_grids(args.grid_scale, chapters):
            digests = {1: set(), 2: set()}

            def contender(w, g=g, digests=digests):
                return lambda: digests[w].add(records_digest(g["run"](w)))

            wall, _ = interleaved({"serial": contender(1), "2 workers": contender(2)}, args.worker_repeats, device)
            st = ratio_stats(wall["serial"], wall["2 workers"])
            identical = len(digests[1]) == 1 and digests[1] == digests[2]
            rows.append(
                dict(
                    chapter=g["chapter"],
                    label=g["label"],
                    n_runs=g["n_runs"],
                    serial_s=med(wall["serial"]),
                    workers2_s=med(wall["2 workers"]),
                    speedup=st,
                    ideal=ideal_speedup(g.get("calls", g["n_runs"]), 2),
                    identical=identical,
                    digests={str(k): sorted(v) for k, v in digests.items()},
                )
            )
            print(
                f"  [workers] ch{g['chapter']} {g['label']}: serial {rows[-1]['serial_s']:.1f} s, "
                f"2 workers {rows[-1]['workers2_s']:.1f} s (x{st['median']:.2f}), "
                f"records {'identical' if identical else 'DIFFER'}",
                flush=True,
            )
        out["workers"] = dict(
            rows=rows,
            warmup_s=warm_s,
            pool_pids=len(pids),
            scale=args.grid_scale,
            repeats=args.worker_repeats,
            loadavg_start=load0,
            loadavg_end=[round(x, 2) for x in os.getloadavg()],
        )
    finally:
        torch.set_num_threads(before)


def ideal_speedup(n_runs, workers: int) -> float:
    """Best possible wall-time speed-up of equally long runs on ``workers`` processes.

    ``n_runs`` is the number of runs of one call, or a sequence of them for a grid made of
    several calls one after the other (each call waits for its last run).
    """
    calls = [n_runs] if isinstance(n_runs, int) else list(n_runs)
    if not calls or any(n < 1 for n in calls) or workers < 1:
        raise ValueError("n_runs (each call's) and workers must be >= 1")
    return sum(calls) / sum(math.ceil(n / min(workers, n)) for n in calls)


def workers_report(w: dict) -> List[str]:
    """The markdown lines of the workers section."""
    lines = [
        f"**Independent runs in worker processes** (`wganbook.lab.sweeps.map_runs`: each chapter's main grid "
        f"at {w['scale']:g} x its quick preset's steps, serial vs 2 worker processes, one torch thread each; "
        f"median of {w['repeats']} interleaved rounds; pool start-up, paid once per session: "
        f"{w['warmup_s']:.1f} s; load average {w['loadavg_start'][0]:.1f} at the start, "
        f"{w['loadavg_end'][0]:.1f} at the end)",
        "",
        "| chapter | grid | runs | serial | 2 workers | speed-up, wall (goal >= 1.7) | ideal | records |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in w["rows"]:
        ok = "ok" if r["speedup"]["median"] >= 1.7 else "MISS"
        same = "identical" if r["identical"] else "DIFFER"
        lines.append(
            f"| {r['chapter']} | {r['label']} | {r['n_runs']} | {r['serial_s']:.1f} s "
            f"| {r['workers2_s']:.1f} s | {fmt_range(r['speedup'], 2)} {ok} | {r['ideal']:.2f} | {same} |"
        )
    lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
def machine_info(device: torch.device) -> dict:
    info = dict(
        date=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        python=platform.python_version(),
        torch=torch.__version__,
        cpu=platform.processor() or platform.machine(),
        cores=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        device=str(device),
    )
    try:
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        info["loadavg"] = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def report(res: dict) -> str:
    m = res["machine"]
    lines = [
        f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores, torch {m['torch']}, "
        f"{m['torch_threads']} threads), device {m['device']}"
        + (f" ({m['gpu']})" if m.get("gpu") else "")
        + (
            f", load average at start {m['loadavg'][0]:.2f} / end {res.get('loadavg_end', ['?'])[0]}"
            if m.get("loadavg")
            else ""
        )
        + ".",
        f"Command: `{res['command']}`; medians of {res['repeats']} interleaved repeats after warm-up "
        "(ratios: median and range of the per-repeat ratios).",
        "",
    ]
    if "trainer" in res and res["trainer"]:
        K = res["trainer"][0]["w1_every"]
        lines += [
            "**1-2. `wganbook.train.train` vs a bare WGAN-GP loop, and exact-W1 tracking** "
            "(generator steps/s; n_critic 5; same nets, batch, optimiser and data sampler)",
            "",
            "| case | bare loop steps/s | `train()` steps/s | speed ratio, wall (target >= 0.95) "
            "| speed ratio, CPU time | W1 every step: extra time "
            f"| W1 every {K} steps: extra (target <= 10 %) | one `w1` call |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in res["trainer"]:
            ok = "ok" if r["ratio"]["median"] >= 0.95 else "MISS"
            ok2 = "ok" if r["w1_overhead"] <= 0.10 else "MISS"
            src = " (random tensors)" if r["data_source"] == "random tensors" else ""
            lines.append(
                f"| {r['label']}{src} | {r['bare_steps_per_s']:.2f} | {r['trainer_steps_per_s']:.2f} "
                f"| {fmt_range(r['ratio'], 2)} {ok} | {fmt_range(r['ratio_cpu'], 2)} "
                f"| {100 * r['w1_each_step']:+.1f} % (CPU {100 * r['w1_each_step_cpu']:+.1f} %) "
                f"| {100 * r['w1_overhead']:.2f} % (from one call: {100 * r['w1_overhead_est']:.2f} %) {ok2} "
                f"| {r['w1_call_ms']:.1f} ms |"
            )
        lines.append("")
    if "critic" in res and res["critic"]:
        lines += [
            "**3. One critic step** (loss + backward + optimiser step + post-step; `fit_critic`, "
            "grad-norm tracking off; default hyper-parameters of each method)",
            "",
            "| case | method | ms / critic step | vs wgan-clip, wall | vs wgan-clip, CPU time |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for r in res["critic"]:
            lines.append(
                f"| {r['label']} | {r['method']} | {r['ms_per_step']:.1f} | {fmt_range(r['vs_clip'], 2)} "
                f"| {fmt_range(r['vs_clip_cpu'], 2)} |"
            )
        lines.append("")
    if "w1" in res:
        ds = sorted({r["d"] for r in res["w1"]})
        ns = sorted({r["n"] for r in res["w1"]})
        lines += [
            "**4. Exact W1 (`wganbook.transport.w1`, float64, POT network simplex)**: wall ms per call "
            "[process CPU ms] (of which `ot.emd2` on the given cost matrix, wall ms)",
            "",
            "| batch n | " + " | ".join(f"d = {d}" for d in ds) + " |",
            "| ---: | " + " | ".join("---:" for _ in ds) + " |",
        ]
        for n in ns:
            cells = []
            for d in ds:
                r = next(x for x in res["w1"] if x["n"] == n and x["d"] == d)
                c = f"{r['ms']:.1f} [{r['cpu_ms']:.1f}] ({r['emd_ms']:.1f})"
                if r.get("torch_device_ms") is not None:
                    c += f"; device tensors {r['torch_device_ms']:.1f}"
                cells.append(c)
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        lines.append("")
    if "threads" in res:
        for th in res["threads"]:
            extra = (
                f" while {th['busy_processes']} busy-loop processes share the cores"
                if th["busy_processes"]
                else " on the machine as it is"
            )
            lines += [
                f"**Thread settings{extra}** (`train()`, WGAN-GP, ms per generator step and speed relative "
                f"to torch's default; fresh process per setting, median of {th['rounds']} interleaved rounds; "
                f"load average {th['loadavg'][0]:.1f})",
                "",
                "| setting | threads | 2-D toy 3x512 | digits 8x8 | critic digest toy / digits |",
                "| --- | ---: | ---: | ---: | --- |",
            ]
            base = th["rows"][0]
            for r in th["rows"]:
                lines.append(
                    f"| {r['config']} | {r['threads']} "
                    f"| {r['8gaussians']:.0f} ms (x{base['8gaussians'] / r['8gaussians']:.2f}) "
                    f"| {r['digits']:.0f} ms (x{base['digits'] / r['digits']:.2f}) "
                    f"| {','.join(r['8gaussians_digest'])} / {','.join(r['digits_digest'])} |"
                )
            lines.append("")
    if "book" in res:
        b = res["book"]
        lines += [
            f"**5. The book** ({len(b['chapters'])} chapter notebooks executed, fresh kernel each; "
            "kernel CPU time = user + system seconds of the kernel process)",
            "",
            "| notebook | wall time | kernel CPU time | limit (wall, machine to itself) |",
            "| --- | ---: | ---: | ---: |",
        ]
        for r in b["chapters"]:
            lim = f"{r['limit_s'] / 60:.0f} min" if r["limit_s"] else "-"
            ok = "" if not r["limit_s"] else (" ok" if r["seconds"] <= r["limit_s"] and r["ok"] else " MISS")
            cpu = f"{r['kernel_cpu_s']:.0f} s" if r.get("kernel_cpu_s") is not None else "-"
            lines.append(
                f"| {r['chapter']} | {r['seconds']:.0f} s{'' if r['ok'] else ' (error)'} | {cpu} | {lim}{ok} |"
            )
        if b.get("nbval"):
            nv = b["nbval"]
            ok = "ok" if nv["seconds"] <= nv["limit_s"] and nv["returncode"] == 0 else "MISS"
            lines.append(
                f"| `pytest --nbval book/` ({nv['summary']}) | {nv['seconds']:.0f} s "
                f"| {nv.get('cpu_s', 0):.0f} s | 15 min {ok} |"
            )
        lines.append("")
    if res.get("workers"):
        lines += workers_report(res["workers"])
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke mode (< 1 min): tiny runs, 2 repeats")
    p.add_argument("--book", action="store_true", help="also time every chapter and pytest --nbval book/ (slow)")
    p.add_argument("--only", default=None, help=f"comma-separated sections among {', '.join(SECTIONS)}")
    p.add_argument("--cases", default=None, help="comma-separated trainer/critic cases (toy, digits, mnist, cifar10)")
    p.add_argument("--chapters", default=None, help="comma-separated chapter numbers for --book, e.g. 03,04")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument(
        "--preset",
        default=None,
        choices=("quick", "full"),
        help="sizes: quick (CPU book) or full (paper scale; default on CUDA)",
    )
    p.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 10; --quick 2)")
    p.add_argument("--run-seconds", type=float, default=None, help="target length of one timed run (default 3 s)")
    p.add_argument("--w1-every", type=int, default=100, help="exact-W1 cadence for item 2 (default 100)")
    p.add_argument("--json", default=None, help="also write all measurements to this JSON file")
    p.add_argument(
        "--force",
        action="store_true",
        help="on CUDA: replace an existing results/gpu_throughput.json (the rates chapter 8 plans with)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch and BLAS threads (default: the libraries' own, i.e. all cores; --quick: 1)",
    )
    p.add_argument(
        "--load",
        type=int,
        default=0,
        help="threads section: measure again while this many busy-loop processes run (default 0: no)",
    )
    p.add_argument(
        "--grid-scale",
        type=float,
        default=None,
        help="workers section: factor on the chapters' quick step counts (default 1; --quick 0.02)",
    )
    p.add_argument(
        "--worker-repeats", type=int, default=None, help="workers section: interleaved rounds (default 3; --quick 1)"
    )
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name, value, lo in (
        ("--load", args.load, 0),
        ("--repeats", args.repeats, 1),
        ("--run-seconds", args.run_seconds, 1e-3),
        ("--w1-every", args.w1_every, 1),
        ("--threads", args.threads, 1),
        ("--grid-scale", args.grid_scale, 1e-6),
        ("--worker-repeats", args.worker_repeats, 1),
    ):
        if value is not None and value < lo:
            p.error(f"{name} must be >= {lo:g}; got {value}")
    if args.probe:
        print(json.dumps(thread_probe()))
        return 0

    device = T.resolve_device(args.device)
    if args.preset is None:
        args.preset = "full" if device.type == "cuda" else "quick"
    if args.threads is None and args.quick:
        args.threads = 1  # the smoke test stays under a minute on a busy shared machine
    if args.threads:
        torch.set_num_threads(args.threads)
        try:  # NumPy's BLAS (the cost matrices of `w1`) too
            from threadpoolctl import threadpool_limits

            args._tp_limits = threadpool_limits(limits=args.threads)
        except ImportError:
            pass
    args.repeats = args.repeats or (2 if args.quick else 10)
    args.grid_scale = args.grid_scale or (0.02 if args.quick else 1.0)
    args.worker_repeats = args.worker_repeats or (1 if args.quick else 3)
    args.run_seconds = args.run_seconds or (0.3 if args.quick else 3.0)
    if args.quick:
        args.w1_every = min(args.w1_every, 10)
    args.cases = args.cases.split(",") if args.cases else None
    args.chapters = args.chapters.split(",") if args.chapters else None
    known_cases = [c["key"] for c in trainer_cases(args.preset)]
    if args.cases and set(args.cases) - set(known_cases):
        p.error(
            f"unknown case(s) {sorted(set(args.cases) - set(known_cases))}; --cases must be among "
            f"{', '.join(known_cases)} (mnist and cifar10 with --preset full)"
        )
    known_chapters = sorted(nb.name[:2] for nb in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    if args.chapters and set(args.chapters) - set(known_chapters):
        p.error(
            f"unknown chapter(s) {sorted(set(args.chapters) - set(known_chapters))}; --chapters must be "
            f"among {', '.join(known_chapters)}"
        )
    default = [
        s
        for s in SECTIONS
        if (s != "book" or args.book) and not (s in ("threads", "workers") and (args.quick or device.type != "cpu"))
    ]
    sections = args.only.split(",") if args.only else default
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        p.error(f"unknown section(s) {bad}; --only must be among: {', '.join(SECTIONS)}")
    os.environ.setdefault("TQDM_DISABLE", "1")
    throughput_path = ROOT / "results" / "gpu_throughput.json"
    writes_throughput = device.type == "cuda" and "trainer" in sections and args.preset == "full" and not args.quick
    if writes_throughput and throughput_path.exists() and not args.force:
        p.error(f"{throughput_path} exists (an earlier measurement); pass --force to replace it")

    command = "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    res: dict = {
        "machine": machine_info(device),
        "command": command.strip(),
        "repeats": args.repeats,
        "preset": args.preset,
        "quick": args.quick,
    }
    print(
        f"# wganbook benchmark ({'quick smoke' if args.quick else 'full measurement'}; sizes: {args.preset}; "
        f"device: {device})",
        flush=True,
    )
    t0 = time.perf_counter()
    for s in sections:
        ts = time.perf_counter()
        {
            "trainer": bench_trainer,
            "critic": bench_critic,
            "w1": bench_w1,
            "threads": bench_threads,
            "workers": bench_workers,
            "book": bench_book,
        }[s](args, device, res)
        res.setdefault("section_seconds", {})[s] = round(time.perf_counter() - ts, 1)
        print(f"  ({s}: {time.perf_counter() - ts:.0f} s)", flush=True)
    res["total_seconds"] = time.perf_counter() - t0
    try:
        res["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    text = report(res)
    print("\n" + text)
    print(f"(benchmark took {res['total_seconds']:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    if writes_throughput:
        print(f"GPU throughput for chapter 8's plan written to {write_throughput(res, throughput_path, args.force)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The full-scale book runner (``python -m wganbook book``), on tiny stand-in books."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from wganbook.bookkit import chapters, presets, runner
from wganbook.data import DatasetMissingError


def _tiny_book(folder, name="08_tiny.ipynb", params_source=None, body=None):
    """A stand-in chapter: a parameters cell, a validate call, glued values (and an optional body)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = "ch" + name[:2]
    if params_source is None:
        params_source = 'preset = "quick"\nseed = 0\ndevice = "auto"\nresults_dir = "../results"'
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(params_source)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            f"from wganbook.bookkit import presets\nparams = presets.validate({key!r}, globals())"
        ),
        nbformat.v4.new_code_cell(
            "from wganbook.bookkit.notebook import glue\nglue('answer', 0.125)\nglue('preset_used', preset)"
        ),
    ]
    if body:
        nb.cells.append(nbformat.v4.new_code_cell(body))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / name)
    return folder / name


CH03 = 'preset = "quick"\nseed = 0\ndevice = "auto"\ndataset = None\nimage_steps = None\nstep_scale = None'
CH04 = (
    'preset = "quick"\nseed = 0\ndevice = "auto"\ndataset = None\nlam = None\ncritic_steps = None\n'
    "methods = None\ntoy_datasets = None\nstep_scale = None"
)
CH05 = 'preset = "quick"\nseed = 0\ndevice = "auto"\nimage_dataset = None\nsteps = None\nstep_scale = None'
CH06 = 'preset = "quick"\nseed = 0\ndevice = "auto"\nimage_dataset = None\nimage_datasets = None\nstep_scale = None'


def _image_book(folder):
    """Stand-ins of chapters 3-6 with their dataset parameters (none of them trains)."""
    for name, src in (("03_a.ipynb", CH03), ("04_b.ipynb", CH04), ("05_c.ipynb", CH05), ("06_d.ipynb", CH06)):
        _tiny_book(folder, name, src)
    return folder


def _cli(*argv):
    from wganbook.__main__ import main

    return main(["book", *map(str, argv)])


def test_chapter_helpers(tmp_path):
    _tiny_book(tmp_path / "book")
    _tiny_book(tmp_path / "book", "03_other.ipynb", CH03)
    paths = chapters.chapter_notebooks(tmp_path / "book")
    assert [p.name for p in paths] == ["03_other.ipynb", "08_tiny.ipynb"]
    assert [p.name for p in chapters.chapter_notebooks(tmp_path / "book", ["ch08"])] == ["08_tiny.ipynb"]
    assert chapters.chapter_key(paths[0]) == "ch03"
    assert chapters.chapter_parameters(paths[1]) == {
        "preset": "quick",
        "seed": 0,
        "device": "auto",
        "results_dir": "../results",
    }
    with pytest.raises(ValueError, match="chapters must be among"):
        chapters.chapter_notebooks(tmp_path / "book", ["09"])


def test_chapter_parameters_reads_any_comment(tmp_path):
    nb = _tiny_book(
        tmp_path / "book",
        "01_x.ipynb",
        'preset = "quick"\nseed = 0\ndevice = "auto"\n'
        "clip = None  # the bound (WGAN's c = 0.01)\nlr = 1e-3   # 'quoted' = x",
    )
    assert chapters.chapter_parameters(nb) == {"preset": "quick", "seed": 0, "device": "auto", "clip": None, "lr": 1e-3}


def test_run_book_writes_results_atomically_and_skips_completed(tmp_path):
    _tiny_book(
        tmp_path / "book",
        body=(
            "import os\n"
            "from wganbook.bookkit.claims import claim\n"
            "claim('ch8.tiny-fails', 'a claim that does not hold', value=1.0, holds=False, kind='finding')\n"
            "glue('checkpoint_root', params.checkpoint_root)\n"
            "glue('checkpoint_env', str(os.environ.get('WGANBOOK_CHECKPOINT_DIR')))"
        ),
    )
    out = tmp_path / "runs"
    logs = []
    records = runner.run_book(preset="full", out=out, book_dir=tmp_path / "book", log=logs.append)
    rec = json.loads((out / "08_tiny" / runner.RESULTS_FILE).read_text())
    assert rec == records[0]
    assert rec["status"] == "completed" and rec["parameters"] == {"preset": "full"}
    # the chapter's checkpoint folder arrives as the parameter checkpoint_root (no environment variable),
    # and it is not part of the recorded parameters (they decide whether a rerun skips the chapter)
    assert rec["metrics"] == {
        "answer": 0.125,
        "preset_used": "full",
        "checkpoint_env": "None",
        "checkpoint_root": str((out / "08_tiny" / "checkpoints").resolve()),
    }
    # claims run in record mode: the failing claim is recorded, not raised
    assert rec["claims"] == [{"id": "ch8.tiny-fails", "held": False, "value": 1.0}]
    assert rec["machine"]["device"] in ("cpu", "cuda", "mps") and rec["wall_time_s"] >= 0
    assert sorted(p.name for p in (out / "08_tiny").iterdir()) == [
        "08_tiny.ipynb",
        "checkpoints",
        "results.json",
    ] or sorted(p.name for p in (out / "08_tiny").iterdir()) == ["08_tiny.ipynb", "results.json"]
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temporary files
    executed = nbformat.read(out / "08_tiny" / "08_tiny.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    # the stored notebook is untouched
    stored = nbformat.read(tmp_path / "book" / "08_tiny.ipynb", as_version=4)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in stored.cells)
    # a second run skips the completed chapter
    logs.clear()
    runner.run_book(preset="full", out=out, book_dir=tmp_path / "book", log=logs.append)
    assert any("already completed" in line for line in logs)
    assert runner.load_results(out)[0]["chapter"] == "08_tiny"
    table = runner.results_table(runner.load_results(out))
    assert "08_tiny" in table and "completed" in table
    # a truncated results.json: a clear error naming the file and what to do, before any run
    path = out / "08_tiny" / runner.RESULTS_FILE
    path.write_text(path.read_text()[:40])
    with pytest.raises(ValueError, match=r"results\.json is not valid JSON .*Delete it"):
        runner.run_book(preset="full", out=out, book_dir=tmp_path / "book", log=logs.append)
    with pytest.raises(ValueError, match=r"08_tiny.results\.json is not valid JSON"):
        runner.load_results(out)
    # --force reruns it and replaces the damaged record
    runner.run_book(preset="full", out=out, book_dir=tmp_path / "book", log=logs.append, force=True)
    assert json.loads(path.read_text())["status"] == "completed"


def test_run_book_rejects_bad_input_before_running(tmp_path):
    _tiny_book(tmp_path / "book")
    with pytest.raises(ValueError, match="outside the book folder"):
        runner.run_book(out=tmp_path / "book" / "runs", book_dir=tmp_path / "book")
    with pytest.raises(ValueError, match="unknown parameter.*results_dir"):
        runner.run_book(out=tmp_path / "runs", book_dir=tmp_path / "book", overrides={"lamda": 1.0})
    with pytest.raises(ValueError, match="preset must be one of: quick, full"):
        runner.run_book(preset="huge", out=tmp_path / "runs", book_dir=tmp_path / "book")
    with pytest.raises(TypeError, match="08_tiny: seed"):
        runner.run_book(out=tmp_path / "runs", book_dir=tmp_path / "book", overrides={"seed": "zero"})
    with pytest.raises(ValueError, match="--offline-data must be one of: digits"):
        runner.run_book(out=tmp_path / "runs", book_dir=tmp_path / "book", offline_data="mnist")
    # step_scale must reach every chapter: one without it in its parameters cell is named
    with pytest.raises(ValueError, match="step_scale: chapter.s. 08_tiny do not take step_scale"):
        runner.run_book(out=tmp_path / "runs", book_dir=tmp_path / "book", overrides={"step_scale": 0.5})
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("lam", "abc", "lam must be a float"),
        ("seed", "1.5", "seed must be an? int"),
        ("critic_steps", "abc", "critic_steps must be an? int"),
        ("methods", "wgan-gp", "methods must be a list.*-p methods '\\[wgan-gp\\]'"),
        ("step_scale", "0", "step_scale must be a float > 0"),
        ("step_scale", "-1", "step_scale must be a float > 0"),
        ("step_scale", "abc", "step_scale must be a float > 0"),
        ("seed", str(2**40), r"seed must be an int in \[0, 4294967295\], got 1099511627776"),
        ("dataset", "8gaussians", "unknown dataset '8gaussians'; dataset must be one of: digits, mnist"),
        ("toy_datasets", "[swissroll]", r"unknown toy_datasets\[0\] 'swissroll'; .* one of: 8gaussians, 25gaussians"),
    ],
)
def test_cli_bad_values_give_one_line_naming_the_parameter(tmp_path, capsys, name, value, expected):
    _tiny_book(tmp_path / "book", "04_x.ipynb", CH04)
    code = _cli("--book-dir", tmp_path / "book", "--out", tmp_path / "o", "-p", name, value)
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("wganbook book: error: 04_x: ")
    assert re.search(expected, err), err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["-p", "dataset", "8gaussians"], "03_a: unknown dataset '8gaussians'; dataset must be one of: digits, mnist"),
        (["-p", "seed", str(2**40)], r"03_a: seed must be an int in \[0, 4294967295\]"),
        (["-p", "checkpoint_root", "/elsewhere"], "checkpoint_root is set by the book runner"),
    ],
)
@pytest.mark.parametrize("dry_run", [False, True])
def test_chapter_constraints_are_checked_up_front_and_by_the_dry_run(tmp_path, capsys, argv, expected, dry_run):
    """Chapter 3 wants an image dataset, seeds stop at 2**32 - 1: one line before anything runs, also in a dry run."""
    _tiny_book(tmp_path / "book", "03_a.ipynb", CH03)
    code = _cli(
        "--book-dir",
        tmp_path / "book",
        "--out",
        tmp_path / "o",
        "--chapters",
        "03",
        *argv,
        *(["--dry-run"] if dry_run else []),
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert re.search(expected, err), err
    assert not (tmp_path / "o").exists()


def test_a_chapter_that_refuses_a_parameter_is_not_called_resumable(tmp_path):
    """A chapter failing on a bad parameter of its own: one line, no "rerun to resume"; a cell error: fix, rerun."""
    _tiny_book(tmp_path / "book", body="presets.validate('ch08', {'seed': -1})")
    with pytest.raises(ValueError) as info:
        runner.run_book(preset="quick", out=tmp_path / "runs", book_dir=tmp_path / "book", log=lambda s: None)
    msg = str(info.value)
    assert msg.startswith("08_tiny: seed must be an int") and "would fail the same way" in msg, msg
    assert "resume" not in msg and "\n" not in msg
    rec = json.loads((tmp_path / "runs" / "08_tiny" / runner.RESULTS_FILE).read_text())
    assert rec["status"] == "failed" and "ParameterError" in rec["error"]
    _tiny_book(tmp_path / "book2", body="raise RuntimeError('boom')")
    with pytest.raises(RuntimeError, match=r"(?s)chapter 08_tiny failed: .*boom.*After fixing the cause, rerun"):
        runner.run_book(preset="quick", out=tmp_path / "runs2", book_dir=tmp_path / "book2", log=lambda s: None)


def test_step_scale_override_scales_every_step_count(tmp_path):
    _image_book(tmp_path / "book")
    plans = runner.resolve_chapters(chapters.chapter_notebooks(tmp_path / "book"), "full", {"step_scale": 0.01})
    by = {p["key"]: p for p in plans}
    full3 = presets.get_preset("ch03", "full")
    assert by["ch03"]["parameters"] == {"preset": "full", "step_scale": 0.01}
    assert by["ch03"]["resolved"]["image_steps"] == round(full3["image_steps"] * 0.01) == 200
    assert by["ch03"]["resolved"]["toy_width"] == full3["toy_width"]  # not a step count
    assert by["ch04"]["resolved"]["critic_steps"] == 100
    assert by["ch05"]["resolved"]["steps"] == 1000


def test_cli_out_onto_an_existing_file_is_refused(tmp_path, capsys):
    _tiny_book(tmp_path / "book")
    (tmp_path / "afile").write_text("x")
    assert _cli("--book-dir", tmp_path / "book", "--out", tmp_path / "afile") == 2
    assert "is an existing file, not a folder" in capsys.readouterr().err
    assert _cli("--book-dir", tmp_path / "book", "--out", tmp_path / "afile" / "below") == 2
    assert "lies below the file" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "x"


def test_dataset_parameters_and_offline_overrides():
    values = {
        "dataset": "mnist",
        "toy_dataset": "8gaussians",
        "toy_datasets": ["8gaussians"],
        "image_datasets": ["mnist", "cifar10"],
        "mixed_datasets": ["8gaussians", "cifar10"],
        "image_dataset": "digits",
        "steps": 3,
    }
    assert runner.dataset_parameters(values) == {
        "dataset": "mnist",
        "image_datasets": ["mnist", "cifar10"],
        "mixed_datasets": ["8gaussians", "cifar10"],
        "image_dataset": "digits",
    }
    assert runner.offline_overrides(values, "digits") == {
        "dataset": "digits",
        "image_datasets": ["digits"],
        "mixed_datasets": ["8gaussians", "digits"],
    }


def test_missing_datasets_are_listed_at_once_with_the_one_switch(tmp_path, monkeypatch):
    monkeypatch.setenv("WGANBOOK_DATA", str(tmp_path / "empty"))
    folder = _image_book(tmp_path / "book")
    notebooks = chapters.chapter_notebooks(folder)
    with pytest.raises(DatasetMissingError) as info:
        runner.check_datasets(notebooks, "full", {})
    text = str(info.value)
    assert text.startswith("2 image dataset(s) needed at preset 'full' are missing")
    assert "'mnist', needed by 03_a: dataset; 06_d: image_dataset, image_datasets" in text
    assert "'cifar10', needed by 04_b: dataset; 05_c: image_dataset; 06_d: image_datasets" in text
    assert "--offline-data digits" in text
    for fix in ("-p dataset digits", "-p image_dataset digits", "-p image_datasets '[digits]'"):
        assert fix in text
    # the switch replaces every one of them; nothing is missing any more
    runner.check_datasets(notebooks, "full", {}, offline_data="digits")
    plans = runner.resolve_chapters(notebooks, "full", {}, offline_data="digits")
    assert [p["parameters"] for p in plans] == [
        {"preset": "full", "dataset": "digits"},
        {"preset": "full", "dataset": "digits"},
        {"preset": "full", "image_dataset": "digits"},
        {"preset": "full", "image_dataset": "digits", "image_datasets": ["digits"]},
    ]
    # an explicit override wins over the switch
    plans = runner.resolve_chapters(notebooks, "full", {"image_datasets": ["cifar10"]}, offline_data="digits")
    assert plans[3]["parameters"]["image_datasets"] == ["cifar10"]
    # the quick preset needs no files
    runner.check_datasets(notebooks, "quick", {})


def test_dry_run_validates_and_prints_the_plan_without_running(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WGANBOOK_DATA", str(tmp_path / "empty"))
    folder = _image_book(tmp_path / "book")
    code = _cli(
        "--book-dir",
        folder,
        "--out",
        tmp_path / "o",
        "--dry-run",
        "--offline-data",
        "digits",
        "-p",
        "step_scale",
        "0.01",
    )
    out = capsys.readouterr().out
    assert code == 0 and not (tmp_path / "o").exists()
    assert out.startswith("Plan of the full preset (nothing was run):")
    assert "image_steps 200" in out and "datasets: image_dataset digits, image_datasets digits" in out
    assert "GPU minutes: n/a -- no GPU throughput has been measured" in out
    # without the switch the dry run stops on the missing data, rc 2
    assert _cli("--book-dir", folder, "--out", tmp_path / "o", "--dry-run") == 2
    assert "--offline-data digits" in capsys.readouterr().err
    # an unknown chapter
    assert _cli("--book-dir", folder, "--dry-run", "--chapters", "09") == 2
    assert "chapters must be among" in capsys.readouterr().err


def test_plan_counts_runs_and_uses_a_measured_throughput(tmp_path):
    folder = _image_book(tmp_path / "book")
    throughput = {"gpu": "test", "chapters": {"ch04": {"generator_steps_per_s": 50.0}}}
    rows = {
        r["key"]: r
        for r in runner.plan_book(
            "full", {"step_scale": 0.5}, book_dir=folder, offline_data="digits", throughput=throughput
        )
    }
    for key, row in rows.items():
        if key in chapters.RUN_PLAN:
            assert row["runs"] == sum(e.runs for e in row["entries"])
            assert row["generator_steps"] == sum(e.runs * e.steps for e in row["entries"])
        else:
            assert row["runs"] is None and row["generator_steps"] is None
    if "ch04" in chapters.RUN_PLAN:
        assert rows["ch04"]["gpu_minutes"] == pytest.approx(rows["ch04"]["generator_steps"] / 50 / 60)
    assert rows["ch03"]["gpu_minutes"] is None
    table = runner.plan_table(rows.values())
    assert table.splitlines()[0].startswith("| chapter | training runs | generator steps |")
    bad = tmp_path / "t.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="t.json is not valid JSON"):
        runner.load_throughput(bad)
    assert runner.load_throughput(tmp_path / "absent.json") is None


def test_run_plan_names_only_preset_parameters():
    """RUN_PLAN's formulas read only parameters the chapters' presets define (both presets)."""
    for key, plan in chapters.RUN_PLAN.items():
        for preset in ("quick", "full"):
            entries = plan(presets.validate(key, {"preset": preset}))
            for e in entries:
                assert isinstance(e.what, str) and e.runs >= 0 and e.steps >= 1, (key, e)


def test_preset_table_lists_both_presets():
    table = runner.preset_table(["ch08"])
    assert table.splitlines()[0] == "| chapter | parameter | quick | full |"
    assert "| ch08 | `results_dir` | ../results | ../results |" in table


def test_cli_book_subcommand_reports_bad_input(tmp_path, capsys):
    _tiny_book(tmp_path / "book")
    assert _cli("--book-dir", tmp_path / "book", "--out", tmp_path / "o", "-p", "nonsense", "1") == 2
    assert "unknown parameter" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _cli("--preset", "huge")


def test_papermill_parses_every_real_parameters_cell(caplog):
    """papermill's own line parser (``papermill --help-notebook``, and its log during every run of the
    book runner) reads every parameter of every real chapter, with no "Unable to parse" warning
    (it gives up on a comment holding an apostrophe and an ``=``)."""
    import logging
    from pathlib import Path

    import papermill

    paths = chapters.chapter_notebooks(Path(__file__).resolve().parents[1] / "book")
    assert len(paths) >= 7
    for path in paths:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            found = papermill.inspect_notebook(str(path))
        assert not [r for r in caplog.records if "Unable to parse" in r.getMessage()], path.name
        assert list(found) == list(chapters.chapter_parameters(path)), path.name


def test_every_grid_of_a_chapter_is_run_from_its_declaration():
    """Each chapter's grids are declared once (wganbook.bookkit.grids.chNN): every run_grid call of a real chapter
    reads its own chapter's declaration (``**chNN.grid(name, params)``) and every declaration is run."""
    from pathlib import Path

    problems = []
    for path in chapters.chapter_notebooks(Path(__file__).resolve().parents[1] / "book"):
        key = chapters.chapter_key(path)
        nb = nbformat.read(path, as_version=4)
        source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        calls = re.findall(r"run_grid\((.*?)\)", source, re.S)
        problems += [
            f"{path.stem}: run_grid({c.strip()[:40]}...) does not read {key}.grid(...)"
            for c in calls
            if f"{key}.grid(" not in c
        ]
        if calls and f"from wganbook.bookkit.grids import {key}" not in source:
            problems.append(f"{path.stem}: does not import its declaration wganbook.bookkit.grids.{key}")
        for name in chapters.grid_names(key, presets.validate(key, {})):
            if not re.search(rf"{key}\.grid\(\s*{name!r}", source.replace('"', "'")):
                problems.append(f"{path.stem}: the declared grid {name!r} is not run")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_declared_grids_resolve_the_settings_as_the_chapters_do(preset):
    """The declarations resolve chapter 3's clipping settings and chapter 4's lambda as the chapters' own helpers do
    (both through objectives.resolve_hparams)."""
    from wganbook.lab import clipping, penalty

    p3 = presets.validate("ch03", {"preset": preset})
    toy = chapters.grid("ch03", "toy", p3)
    s = clipping.clip_settings(p3)
    clipped, gan = toy["grid"]["variant"]
    assert toy["base"]["n_critic"] == s["n_critic"] and clipped["clip"] == s["clip"]
    assert clipped["lr"] == s["lr"] * p3.toy_lr_scale and (clipped["name"], gan["name"]) == ("clipped WGAN", "GAN")
    for method in ("wgan-gp", "wgan-lp"):
        methods = ["wgan-gp", "wgan-lp", "wgan-clip"]
        p4 = presets.validate("ch04", {"preset": preset, "method": method, "methods": methods})
        lam = penalty.penalty_settings(p4)[0]
        assert [v.get("lam") for v in chapters.grid("ch04", "image", p4)["grid"]["variant"]] == [lam, lam, None]


def test_the_plan_counts_the_declared_grids():
    """Chapter 5's quick preset, by hand: 2 methods x 6 strategies x 2 seeds, 2 official-code runs, and the (k, p)
    cross through (2, 6) without its centre (k in {1, 4} at p = 6, p in {4, 8} at k = 2) x 1 seed, 120 steps each."""
    p = presets.validate("ch05", {})
    entries = chapters.RUN_PLAN["ch05"](p)
    assert [(e.runs, e.steps) for e in entries] == [(24, 120), (2, 120), (4, 120)]
    toy = chapters.grid("ch04", "toy", presets.validate("ch04", {}))
    assert toy == {
        "base": {
            "steps": 6000,
            "width": 128,
            "batch_size": 256,
            "n_critic": None,
            "warmup": False,
            "device": "auto",
            "eval_every": 300,
            "metric": "modes",
        },
        "grid": {"data": ["8gaussians"], "variant": [{"name": "GP", "method": "wgan-gp", "lr": 1e-4, "lam": 0.1}]},
        "seeds": [0],
    }
    toy["seeds"].append(1)  # a fresh copy each time
    assert chapters.grid("ch04", "toy", presets.validate("ch04", {}))["seeds"] == [0]
    with pytest.raises(ValueError, match="unknown grid 'nope' of ch04; name must be one of: toy, image"):
        chapters.grid("ch04", "nope", presets.validate("ch04", {}))
    # chapter 6: the n_critic sweep runs each value other than 5 on the first seed
    p6 = presets.validate("ch06", {"n_critics": [1, 5, 10], "seeds": [3, 4]})
    sweep = chapters.grid("ch06", "n_critics", p6)
    assert [v["n_critic"] for v in sweep["grid"]["variant"]] == [1, 10] and sweep["seeds"] == [3]


def test_chapters_side_by_side_get_the_scheduler_in_their_kernel(tmp_path, monkeypatch):
    import socket

    monkeypatch.delenv("WGANBOOK_SCHEDULER", raising=False)
    body = "import os\nglue('scheduler_env', str(os.environ.get('WGANBOOK_SCHEDULER')))"
    _tiny_book(tmp_path / "book", "03_a.ipynb", CH03, body=body)
    _tiny_book(tmp_path / "book", "08_b.ipynb", body=body)
    with socket.socket() as listener:  # something that accepts connections stands for the scheduler
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        logs = []
        records = runner.run_book(
            preset="quick",
            out=tmp_path / "runs",
            book_dir=tmp_path / "book",
            log=logs.append,
            scheduler=address,
            jobs=2,
        )
    assert [r["chapter"] for r in records] == ["03_a", "08_b"] and {r["status"] for r in records} == {"completed"}
    assert [r["metrics"]["scheduler_env"] for r in records] == [address, address]
    assert [r["scheduler"] for r in records] == [address, address]  # recorded in results.json
    assert "WGANBOOK_SCHEDULER" not in __import__("os").environ  # restored afterwards
    assert sum("running" in line for line in logs) == 2


def test_bad_or_unreachable_scheduler_stops_the_book_before_any_chapter(tmp_path, capsys, monkeypatch):
    import socket

    monkeypatch.delenv("WGANBOOK_SCHEDULER", raising=False)
    _tiny_book(tmp_path / "book")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    for argv, expected in [
        (["--scheduler", closed], f"cannot reach the Dask scheduler at {closed}"),
        (["--scheduler", "localhost:8786"], "scheduler must be an address tcp://host:port"),
        (["--jobs", "2"], "jobs=2 needs a scheduler"),
        (["--jobs", "0"], "jobs must be an int >= 1"),
    ]:
        assert _cli("--preset", "quick", "--out", tmp_path / "runs", "--book-dir", tmp_path / "book", *argv) == 2
        err = capsys.readouterr().err
        assert expected in err, err
    monkeypatch.setenv("WGANBOOK_SCHEDULER", "nowhere")
    assert _cli("--preset", "quick", "--out", tmp_path / "runs", "--book-dir", tmp_path / "book") == 2
    assert "WGANBOOK_SCHEDULER must be" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_plan_on_gpus_runs_a_grid_in_parallel_and_the_rest_in_order():
    from wganbook.bookkit.grids import Runs

    plan = [
        {  # 10 s alone, then a grid of 3 x 20 s and 1 x 10 s runs (rate 10 steps/s, from the CPU)
            "chapter": "03_a",
            "key": "ch03",
            "runs": 5,
            "stages": [(False, [Runs("alone", 1, 100)]), (True, [Runs("g", 3, 200), Runs("g", 1, 100)])],
        },
        {"chapter": "05_b", "key": "ch05", "runs": 8, "stages": [(True, [Runs("x", 8, 1000)])]},  # 8 x 10 s
        {"chapter": "06_c", "key": "ch06", "runs": 2, "stages": [(True, [Runs("y", 2, 10)])]},  # no rate
        {"chapter": "01_d", "key": "ch01", "runs": 0, "stages": []},  # no training runs
    ]
    throughput = {"gpu": "H100", "chapters": {"ch05": {"generator_steps_per_s": 100.0}}}
    rows = runner.plan_on_gpus(plan, gpus=(1, 4, 16), throughput=throughput, cpu_rates={"ch03": 10.0})
    seconds = {r["chapter"]: {g: round(h * 3600, 9) for g, h in r["wall"].items()} for r in rows}
    assert seconds["03_a"] == {1: 80.0, 4: 30.0, 16: 30.0}  # 10 + 70; 10 + the longest run (20)
    assert seconds["05_b"] == {1: 80.0, 4: 20.0, 16: 10.0}  # 8 x 10 s over 1, 4, 8 busy GPUs
    assert seconds["book, chapters one after another"] == {1: 160.0, 4: 50.0, 16: 40.0}
    # side by side: at least the longest chapter on G GPUs (30 s), at least 160 GPU-seconds / G
    assert seconds["book, chapters side by side"] == {1: 160.0, 4: 40.0, 16: 30.0}
    assert [r["source"] for r in rows[:2]] == ["estimated from the CPU", "measured on H100"]
    assert {r["unit"] for r in rows} == {"hours"}
    assert rows[-1]["missing"] == ["06_c"] and "01_d" not in seconds
    assert rows[-1]["one_gpu"] * 3600 == pytest.approx(160.0)
    assert rows[-1]["speedup"] == pytest.approx({1: 1.0, 4: 4.0, 16: 160 / 30})
    table = runner.gpus_table(rows)
    assert "| chapter | source of the rates | 1 GPU (hours) | 4 GPUs (hours) | 16 GPUs (hours) |" in table
    assert "| 03_a | estimated from the CPU | 0.02 | 0.01 (2.7×) | 0.01 (2.7×) |" in table
    assert "| book, chapters side by side |" in table
    with pytest.raises(ValueError, match="gpus must be ints >= 1"):
        runner.plan_on_gpus(plan, gpus=(0,))
    with pytest.raises(ValueError, match="steps per second of ch03 must be a positive number"):
        runner.plan_on_gpus(plan, cpu_rates={"ch03": -1.0})


def test_plan_on_gpus_in_generator_steps_needs_no_rate():
    from wganbook.bookkit.grids import Runs

    plan = [
        # a grid of 5 runs of 10 steps: on 2 GPUs 3 rounds = 30 steps; then 2 runs of 7 steps one after the other
        {
            "chapter": "03_a",
            "key": "ch03",
            "runs": 7,
            "stages": [(True, [Runs("g", 5, 10)]), (False, [Runs("s", 2, 7)])],
        },
        # two grids, one after the other: 4 x 25 steps, then 1 x 40 steps
        {
            "chapter": "04_b",
            "key": "ch04",
            "runs": 5,
            "stages": [(True, [Runs("g", 4, 25)]), (True, [Runs("h", 1, 40)])],
        },
        {"chapter": "05_c", "key": "ch05", "runs": 3, "stages": None},  # runs without a declaration
        {"chapter": "01_d", "key": "ch01", "runs": 0, "stages": []},  # no training runs
    ]
    rows = runner.plan_on_gpus(plan, gpus=(1, 2, 16), unit="steps")
    by = {r["chapter"]: r for r in rows}
    assert {r["unit"] for r in rows} == {"steps"} and by["03_a"]["source"] == "grid structure"
    assert by["03_a"]["wall"] == {1: 64.0, 2: 44.0, 16: 24.0}  # 50 + 14; 30 + 14 (sequential stages add); 10 + 14
    assert by["04_b"]["wall"] == {1: 140.0, 2: 90.0, 16: 65.0}  # 100 + 40; 50 + 40; 25 + 40
    assert by["03_a"]["critical"] == 24.0 and by["04_b"]["one_gpu"] == 140.0
    assert by["book, chapters one after another"]["wall"] == {1: 204.0, 2: 134.0, 16: 89.0}
    # side by side = max(longest chapter on G GPUs, total / G): max(140, 204), max(90, 102), max(65, 12.75)
    assert by["book, chapters side by side"]["wall"] == {1: 204.0, 2: 102.0, 16: 65.0}
    assert by["book, chapters side by side"]["speedup"] == {1: 1.0, 2: 2.0, 16: 204 / 65}
    assert rows[-1]["missing"] == ["05_c"] and "01_d" not in by
    table = runner.gpus_table(rows)
    assert table.splitlines()[:2] == [
        "| chapter | 1 GPU (generator steps) | 2 GPUs (generator steps) | 16 GPUs (generator steps) |",
        "| --- | ---: | ---: | ---: |",
    ]
    assert "| 04_b | 140 | 90 (1.6×) | 65 (2.2×) |" in table
    assert "| book, chapters side by side | 204 | 102 (2×) | 65 (3.1×) |" in table
    assert runner.gpus_table([]) == ""
    # the same scheduling as hours: steps over a rate of 1 step/s, in seconds
    hours = runner.plan_on_gpus(plan, gpus=(1, 2, 16), cpu_rates={"ch03": 1.0, "ch04": 1.0, "ch05": 1.0})
    for h, s in zip(hours, rows):
        assert {g: w * 3600 for g, w in h["wall"].items()} == pytest.approx(s["wall"])
    with pytest.raises(ValueError, match="takes no rates"):
        runner.plan_on_gpus(plan, unit="steps", cpu_rates={"ch03": 1.0})
    with pytest.raises(ValueError, match="unit must be one of hours, steps"):
        runner.plan_on_gpus(plan, unit="minutes")


def test_plan_on_gpus_of_the_full_preset_has_one_row_per_training_chapter():
    plan = runner.plan_book("full", book_dir=Path(__file__).resolve().parents[1] / "book")
    rates = {r["key"]: 50.0 for r in plan}
    rows = runner.plan_on_gpus(plan, cpu_rates=rates)
    by = {r["chapter"]: r for r in rows}
    total_steps = sum(r["generator_steps"] for r in plan if r["runs"])
    # one GPU, one run after the other: all generator steps at 50 steps/s
    assert by["book, chapters one after another"]["wall"][1] == pytest.approx(total_steps / 50.0 / 3600)
    for r in rows:
        assert r["wall"][1] >= r["wall"][4] >= r["wall"][16] > 0
    steps = runner.plan_on_gpus(plan, unit="steps")
    assert [r["chapter"] for r in steps] == [r["chapter"] for r in rows] and not steps[-1]["missing"]
    assert steps[-2]["wall"][1] == total_steps  # every generator step, one after the other
    for s, h in zip(steps, rows):
        assert s["wall"][16] / 50.0 / 3600 == pytest.approx(h["wall"][16])

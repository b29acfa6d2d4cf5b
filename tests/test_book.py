"""The full-scale book runner (``python -m wganbook book``), on a tiny stand-in book."""
import json

import nbformat
import pytest

from wganbook import book
from wganbook.data import DatasetMissingError


def _tiny_book(folder, name="07_tiny.ipynb"):
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'preset = "quick"\nseed = 0\ndevice = "auto"\nresults_dir = "../results"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "from wganbook import presets\n"
            "params = presets.validate('ch07', {'preset': preset, 'seed': seed, 'device': device,"
            " 'results_dir': results_dir})"),
        nbformat.v4.new_code_cell(
            "from wganbook.notebook import glue\nglue('answer', 0.125)\nglue('preset_used', preset)"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / name)
    return folder / name


def test_chapter_helpers(tmp_path):
    _tiny_book(tmp_path / "book")
    _tiny_book(tmp_path / "book", "03_other.ipynb")
    paths = book.chapter_notebooks(tmp_path / "book")
    assert [p.name for p in paths] == ["03_other.ipynb", "07_tiny.ipynb"]
    assert [p.name for p in book.chapter_notebooks(tmp_path / "book", ["ch07"])] == ["07_tiny.ipynb"]
    assert book.chapter_key(paths[0]) == "ch03"
    assert book.chapter_parameters(paths[1]) == {"preset": "quick", "seed": 0, "device": "auto",
                                                 "results_dir": "../results"}
    with pytest.raises(ValueError, match="chapters must be among"):
        book.chapter_notebooks(tmp_path / "book", ["09"])


def test_run_book_writes_results_and_skips_completed(tmp_path):
    _tiny_book(tmp_path / "book")
    out = tmp_path / "runs"
    logs = []
    records = book.run_book(preset="full", out=out, book_dir=tmp_path / "book", log=logs.append)
    rec = json.loads((out / "07_tiny" / book.RESULTS_FILE).read_text())
    assert rec == records[0]
    assert rec["status"] == "completed" and rec["parameters"] == {"preset": "full"}
    assert rec["metrics"] == {"answer": 0.125, "preset_used": "full"}
    assert rec["machine"]["device"] in ("cpu", "cuda", "mps") and rec["wall_time_s"] >= 0
    executed = nbformat.read(out / "07_tiny" / "07_tiny.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    # the stored notebook is untouched
    stored = nbformat.read(tmp_path / "book" / "07_tiny.ipynb", as_version=4)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in stored.cells)
    # a second run skips the completed chapter
    logs.clear()
    book.run_book(preset="full", out=out, book_dir=tmp_path / "book", log=logs.append)
    assert any("already completed" in line for line in logs)
    assert book.load_results(out)[0]["chapter"] == "07_tiny"
    table = book.results_table(book.load_results(out))
    assert "07_tiny" in table and "completed" in table


def test_run_book_rejects_bad_input_before_running(tmp_path):
    _tiny_book(tmp_path / "book")
    with pytest.raises(ValueError, match="outside the book folder"):
        book.run_book(out=tmp_path / "book" / "runs", book_dir=tmp_path / "book")
    with pytest.raises(ValueError, match="unknown parameter.*results_dir"):
        book.run_book(out=tmp_path / "runs", book_dir=tmp_path / "book", overrides={"lamda": 1.0})
    with pytest.raises(ValueError, match="preset must be one of: quick, full"):
        book.run_book(preset="huge", out=tmp_path / "runs", book_dir=tmp_path / "book")
    with pytest.raises(TypeError, match="seed"):
        book.run_book(out=tmp_path / "runs", book_dir=tmp_path / "book", overrides={"seed": "zero"})
    assert not (tmp_path / "runs").exists()


def test_missing_dataset_names_the_offline_override(tmp_path, monkeypatch):
    monkeypatch.setenv("WGANBOOK_DATA", str(tmp_path / "empty"))
    nb = _tiny_book(tmp_path / "book", "05_fake.ipynb")
    with pytest.raises(DatasetMissingError) as info:
        book.check_datasets([nb], "full", {})
    text = str(info.value)
    assert "-p image_dataset digits" in text and "cifar10" in text
    # with the override, nothing is missing
    book.check_datasets([nb], "full", {"image_dataset": "digits"})


def test_preset_table_lists_both_presets():
    table = book.preset_table(["ch07"])
    assert table.splitlines()[0] == "| chapter | parameter | quick | full |"
    assert "| ch07 | `results_dir` | ../results | ../results |" in table


def test_cli_book_subcommand_reports_bad_input(tmp_path, capsys):
    from wganbook.__main__ import main

    _tiny_book(tmp_path / "book")
    code = main(["book", "--book-dir", str(tmp_path / "book"), "--out", str(tmp_path / "o"),
                 "-p", "nonsense", "1"])
    assert code == 2
    assert "unknown parameter" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["book", "--preset", "huge"])

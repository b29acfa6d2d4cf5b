"""The scoped, semantic digest of a chapter (wganbook.bookkit.digest) and ``python -m wganbook stale``.

A tiny stand-in package ``wganbook`` in a temporary folder and notebooks importing parts of it:
a docstring, comment or formatting edit stales nothing; a code edit stales exactly the chapters
importing the module, directly or through other modules.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from wganbook.__main__ import main
from wganbook.bookkit import digest

ROOT = Path(__file__).resolve().parents[1]

MODULES = {
    "__init__.py": '"""The stand-in package."""\n\n__version__ = "0.0"\n',
    "a.py": '"""Module a."""\n\n\ndef f(x):\n    """Twice x."""\n    return 2 * x  # doubled\n',
    "b.py": '"""Module b: uses a."""\n\nfrom wganbook import a\n\n\ndef g(x):\n    return a.f(x) + 1\n',
    "e.py": "import math\n\n\nclass E:\n    '''An unrelated module.'''\n\n    r = math.pi\n",
    "sub/__init__.py": '"""A subpackage."""\n',
    "sub/c.py": "from . import d\n\n\ndef h():\n    return d.K\n",
    "sub/d.py": "K = 3\n",
    "sub/unused.py": "Z = 0\n",
}

#: chapter -> its code cells
CHAPTERS = {
    "01_b": ["x = 1", "from wganbook import b\nb.g(x)"],
    "02_c": ["from wganbook.sub import c\nc.h()"],
    "03_e": ["import wganbook.e as e\ne.E.r"],
    "04_a": [
        'import sys\nif "google.colab" in sys.modules:\n    %pip install -q "wganbook @ git+https://x"',
        "from wganbook.a import f\nf(2)",
    ],
}


def _write_package(folder: Path) -> Path:
    pkg = folder / "wganbook"
    for name, text in MODULES.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return pkg


def _notebook(cells):
    return {
        "cells": [
            {"cell_type": "code", "source": src, "metadata": {}, "outputs": [], "execution_count": None}
            for src in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@pytest.fixture
def book(tmp_path):
    """The stand-in package and four stamped chapters: ``(package folder, book folder)``."""
    pkg = _write_package(tmp_path)
    folder = tmp_path / "book"
    folder.mkdir()
    for stem, cells in CHAPTERS.items():
        nb = _notebook(cells)
        digest.stamp_digest(nb, pkg)
        (folder / f"{stem}.ipynb").write_text(json.dumps(nb))
    return pkg, folder


def _stale(pkg, folder):
    return digest.stale_notebooks(folder, pkg)


def _edit(pkg, name, old, new):
    path = pkg / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


# ---------------------------------------------------------------------------------------------
# what a chapter depends on
# ---------------------------------------------------------------------------------------------
def test_imported_modules_are_the_transitive_closure_with_packages_on_the_way(book):
    pkg, folder = book
    mods = {stem: set(digest.imported_modules(folder / f"{stem}.ipynb", pkg)) for stem in CHAPTERS}
    assert mods["01_b"] == {"wganbook", "wganbook.b", "wganbook.a"}  # b imports a
    assert mods["02_c"] == {"wganbook", "wganbook.sub", "wganbook.sub.c", "wganbook.sub.d"}  # relative import
    assert mods["03_e"] == {"wganbook", "wganbook.e"}
    assert mods["04_a"] == {"wganbook", "wganbook.a"}  # the %pip cell parses
    record = json.loads((folder / "01_b.ipynb").read_text())["metadata"][digest.DIGEST_KEY]
    assert set(record) == {"scheme", "digest", "code", "modules"} and set(record["modules"]) == mods["01_b"]


def test_from_package_import_submodule_counts_the_submodule(tmp_path):
    pkg = _write_package(tmp_path)
    nb = _notebook(["from wganbook.sub import c, d as dd\nfrom wganbook import __version__"])
    assert set(digest.imported_modules(nb, pkg)) == {"wganbook", "wganbook.sub", "wganbook.sub.c", "wganbook.sub.d"}


def test_the_real_chapters_depend_on_what_they_import():
    nb = _notebook(["from wganbook.lab import sweeps"])
    mods = digest.imported_modules(nb)
    assert {"wganbook", "wganbook.lab", "wganbook.lab.sweeps", "wganbook.train", "wganbook.train.loop"} <= set(mods)
    assert "wganbook.bookkit.runner" not in mods and all(len(v) == 16 for v in mods.values())
    assert set(digest.imported_modules(_notebook(["from wganbook import dirac"]))) == {"wganbook", "wganbook.dirac"}


# ---------------------------------------------------------------------------------------------
# what stales a chapter
# ---------------------------------------------------------------------------------------------
def test_a_fresh_book_has_no_stale_chapter(book):
    assert _stale(*book) == {}


def test_docstrings_comments_and_formatting_stale_nothing(book):
    pkg, folder = book
    _edit(pkg, "__init__.py", '"""The stand-in package."""', '"""The stand-in package.\n\nMore words.\n"""')
    _edit(pkg, "a.py", '"""Twice x."""', '"""Twice x, documented at length."""')
    _edit(pkg, "a.py", "return 2 * x  # doubled", "return (2 *\n            x)  # doubled, and a comment")
    _edit(pkg, "b.py", "\n\ndef g(x):\n", "\n\n# a comment\n\n\ndef g(x)  :\n")
    _edit(pkg, "e.py", "'''An unrelated module.'''", "'''A docstring edit.'''")
    _edit(pkg, "sub/d.py", "K = 3\n", '"""A new module docstring."""\nK = 3\n')
    (pkg / "sub" / "c.py").write_bytes((pkg / "sub" / "c.py").read_bytes().replace(b"\n", b"\r\n"))
    assert _stale(pkg, folder) == {}
    # nor does a comment, a blank line or a docstring in a notebook's code cell
    path = folder / "01_b.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"][1]["source"] = "# now with a comment\nfrom wganbook import b\n\nb.g( x )\n"
    nb["cells"].append({"cell_type": "markdown", "source": "prose", "metadata": {}})
    nb["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "out"}]
    path.write_text(json.dumps(nb))
    assert _stale(pkg, folder) == {}


def test_a_code_edit_stales_exactly_the_chapters_importing_the_module(book):
    pkg, folder = book
    _edit(pkg, "a.py", "return 2 * x", "return 3 * x")
    stale = _stale(pkg, folder)
    assert sorted(stale) == ["01_b", "04_a"]  # 01_b through b, 04_a directly
    assert stale["01_b"] == (
        "01_b.ipynb is stale: wganbook.a changed since it was executed; re-execute it (make execute)"
    )
    _edit(pkg, "a.py", "return 3 * x", "return 2 * x")
    assert _stale(pkg, folder) == {}  # undone: fresh again
    _edit(pkg, "sub/d.py", "K = 3", "K = 4")
    assert list(_stale(pkg, folder)) == ["02_c"] and "wganbook.sub.d changed" in _stale(pkg, folder)["02_c"]
    _edit(pkg, "sub/d.py", "K = 4", "K = 3")
    _edit(pkg, "sub/unused.py", "Z = 0", "Z = 1")  # imported by no chapter
    (pkg / "new.py").write_text("N = 1\n")
    assert _stale(pkg, folder) == {}
    _edit(pkg, "__init__.py", '__version__ = "0.0"', '__version__ = "0.1"')
    assert sorted(_stale(pkg, folder)) == sorted(CHAPTERS)  # every import runs the package's __init__


def test_a_changed_code_cell_and_a_new_import_are_named(book):
    pkg, folder = book
    path = folder / "03_e.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"][0]["source"] = "import wganbook.e as e\nfrom wganbook import a\ne.E.r"
    path.write_text(json.dumps(nb))
    assert _stale(pkg, folder)["03_e"] == (
        "03_e.ipynb is stale: its code cells and wganbook.a (newly imported) "
        "changed since it was executed; re-execute it (make execute)"
    )
    _edit(pkg, "b.py", "a.f(x) + 1", "a.f(x) + 2")
    assert "01_b.ipynb is stale: wganbook.b changed" in _stale(pkg, folder)["01_b"]


def test_magics_and_a_trailing_semicolon_count_in_the_code_digest():
    base = digest.code_digest(_notebook(CHAPTERS["04_a"]))
    other_magic = [CHAPTERS["04_a"][0].replace("git+https://x", "git+https://y"), CHAPTERS["04_a"][1]]
    assert digest.code_digest(_notebook(other_magic)) != base
    assert digest.code_digest(_notebook(["x = 1\nx"])) != digest.code_digest(_notebook(["x = 1\nx;"]))
    assert digest.code_digest(_notebook(["x = 1\nx  # shown"])) == digest.code_digest(_notebook(["x = 1\nx"]))
    # a cell that is not Python (a cell magic) is hashed as its text
    assert digest.code_digest(_notebook(["%%bash\necho 1"])) != digest.code_digest(_notebook(["%%bash\necho 2"]))


def test_source_digest_ignores_docstrings_but_not_code():
    plain = "def f(x):\n    return x + 1\n"
    documented = '"""Module."""\n# comment\n\n\ndef f(x):\n    """Add one."""\n\n    return (x +\n            1)\n'
    assert digest.source_digest(plain) == digest.source_digest(documented)
    assert digest.source_digest(plain) != digest.source_digest(plain.replace("+ 1", "+ 2"))
    assert digest.source_digest("def f():\n    'only a docstring'\n") == digest.source_digest("def f():\n    pass\n")
    assert digest.source_digest("x = 'a string'\n") != digest.source_digest("x = 'another string'\n")


def test_missing_and_old_records_are_stale(book, tmp_path):
    pkg, folder = book
    path = folder / "01_b.ipynb"
    nb = json.loads(path.read_text())
    nb["metadata"][digest.DIGEST_KEY] = {"code_sha256": "0" * 64, "package_sha256": "1" * 64, "digest": "2" * 16}
    path.write_text(json.dumps(nb))
    assert _stale(pkg, folder)["01_b"] == (
        "01_b.ipynb is stale: its digest was made by an older scheme; re-execute it (make execute)"
    )
    del nb["metadata"][digest.DIGEST_KEY]
    path.write_text(json.dumps(nb))
    assert digest.stale_reason(path, pkg) == ("01_b.ipynb has no digest: its outputs were not stored by `make execute`")


# ---------------------------------------------------------------------------------------------
# python -m wganbook stale
# ---------------------------------------------------------------------------------------------
def test_stale_command_exit_codes_and_messages(book, capsys):
    pkg, folder = book
    args = ["stale", "--book-dir", str(folder), "--package-dir", str(pkg)]
    assert main(args) == 0
    assert capsys.readouterr().out == "all 4 chapter(s) fresh\n"
    _edit(pkg, "sub/d.py", "K = 3", "K = 5")
    assert main(args) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "02_c.ipynb is stale: wganbook.sub.d changed since it was executed; re-execute it (make execute)",
        "1 of 4 chapter(s) stale: re-execute them (make execute) and refresh the ledger (make claims)",
    ]
    assert main(args + ["--chapters", "01", "03"]) == 0  # only these chapters
    capsys.readouterr()
    assert main(["stale", "--book-dir", str(folder / "nowhere"), "--package-dir", str(pkg)]) == 2
    assert "no chapter notebooks" in capsys.readouterr().err
    _edit(pkg, "b.py", "def g(x):", "def g(x) broken:")
    assert main(args) == 2
    assert "wganbook stale: error:" in capsys.readouterr().err


def test_stale_command_through_the_console(book):
    pkg, folder = book
    _edit(pkg, "e.py", "math.pi", "math.e")
    out = subprocess.run(
        [sys.executable, "-m", "wganbook", "stale", "--book-dir", str(folder), "--package-dir", str(pkg)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 1, out.stderr
    assert out.stdout.startswith("03_e.ipynb is stale: wganbook.e changed since it was executed")

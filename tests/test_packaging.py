"""Checks of the project's packaging and book configuration (no network)."""

import re
import sys
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_requirements():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = list(data["project"]["dependencies"])
    for extra in data["project"]["optional-dependencies"].values():
        reqs += extra
    return {_name(r): r.replace(" ", "") for r in reqs}


def _environment_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_name(r): r.replace(" ", "") for r in pip if not r.startswith("-e")}


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    assert _environment_requirements() == _pyproject_requirements()


def test_required_dependencies_are_declared():
    names = set(_pyproject_requirements())
    for needed in [
        "torch",
        "torchvision",
        "matplotlib",
        "pot",
        "papermill",
        "nbval",
        "jupyter-book",
        "pytorch-fid",
        "scikit-learn",
        "tqdm",
        "ipykernel",
    ]:
        assert needed in names, needed


def test_cluster_extra_brings_dask_and_the_dev_extra_too():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in ("cluster", "dev"):  # dev: the cluster tests run in make test on a fresh clone
        names = {_name(r) for r in extras[extra]}
        assert {"dask", "distributed"} <= names, extra


def test_jupyter_book_is_pinned_below_2():
    spec = _pyproject_requirements()["jupyter-book"]
    assert "<2" in spec


def test_torch_is_not_pinned_exactly():
    """Colab must keep its preinstalled torch: no '==' pins on torch or torchvision."""
    reqs = _pyproject_requirements()
    assert "==" not in reqs["torch"] and "==" not in reqs["torchvision"]


def test_book_config_renders_stored_outputs_and_math():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["execute"]["execute_notebooks"] == "off"
    exts = cfg["parse"]["myst_enable_extensions"]
    assert "dollarmath" in exts and "amsmath" in exts
    assert cfg["repository"]["url"].startswith("https://github.com/")
    assert cfg["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert (ROOT / cfg["bibtex_bibfiles"][0]).exists()


def test_toc_lists_existing_files_and_every_chapter():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [c["file"] for c in part["chapters"]]
    for f in files:
        assert any((ROOT / (f + ext)).exists() for ext in (".md", ".ipynb")), f
    chapters = sorted(p.stem for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    for ch in chapters:
        assert f"book/{ch}" in files, f"{ch} is missing from _toc.yml"


def test_ci_calls_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme
    assert re.search(r"^make test$", ci, re.M)

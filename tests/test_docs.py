"""Checks of the package's docstrings as the API page renders them."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted((ROOT / "wganbook").glob("*.py"))


def docstring_nodes(tree):
    """The docstring constants of a module and of all its classes and functions."""
    for node in [tree] + [
        n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    ]:
        body = getattr(node, "body", [])
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            yield getattr(node, "name", "<module>"), body[0].value


def non_raw_with_backslash(source: str):
    """(name, line) of every docstring with a backslash escape that is not a raw string.

    In a plain string ``\\bar`` is a backspace and ``\\frac`` a form feed: the API page shows
    "Math input error" where a raw string would show the formula. A plain docstring may only
    spell a backslash as ``\\\\`` (which is what the reader then sees as one).
    """
    bad = []
    for name, const in docstring_nodes(ast.parse(source)):
        text = ast.get_source_segment(source, const) or ""
        if text.lstrip()[:1] in ("r", "R"):
            continue
        if "\\" in text.replace("\\\\", ""):
            bad.append((name, const.lineno))
    return bad


def test_the_check_finds_a_plain_docstring_with_a_backslash():
    src = 'def f():\n    """Mean :math:`\\bar f`."""\n\n\ndef g():\n    r"""Mean :math:`\\bar f`."""\n'
    assert non_raw_with_backslash(src) == [("f", 2)]
    assert non_raw_with_backslash('"""No backslash."""\n') == []
    assert non_raw_with_backslash('"""Doubled: :math:`\\\\nabla f`."""\n') == []  # reads as \\nabla


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_docstrings_with_backslashes_are_raw_strings(path):
    bad = non_raw_with_backslash(path.read_text(encoding="utf-8"))
    assert not bad, f'{path.name}: make these docstrings raw (r"""): {bad}'


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_docstrings_hold_no_control_characters(path):
    """A backspace or form feed in a docstring is what an unraw ``\\bar`` or ``\\frac`` left behind."""
    bad = [
        (name, const.lineno)
        for name, const in docstring_nodes(ast.parse(path.read_text(encoding="utf-8")))
        if any(ord(ch) < 32 and ch not in "\n\t" for ch in const.value)
    ]
    assert not bad, f"{path.name}: control characters in the docstrings of {bad}"


def _package_modules():
    root = Path(__file__).resolve().parents[1] / "wganbook"
    mods = set()
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] != "__init__" and "__pycache__" not in parts:
            mods.add(".".join(parts))
    return sorted(mods)


@pytest.mark.parametrize("where", ["wganbook/__init__.py", "README.md", "book/api.md"])
def test_the_map_names_every_module_of_the_package(where):
    text = (Path(__file__).resolve().parents[1] / where).read_text(encoding="utf-8")
    skip = {"wganbook.__main__"} if where == "book/api.md" else set()
    missing = [m for m in _package_modules() if m not in skip and f"{m}`" not in text]
    assert not missing, f"{where} does not list: {', '.join(missing)}"

"""Freshness of the stored notebooks: which code produced a chapter's outputs, scoped and semantic.

A chapter's **digest** covers its own code cells and only the ``wganbook`` modules it imports,
directly or through other modules (``import wganbook.x``, ``from wganbook.lab import sweeps``,
``from wganbook.train import train``; the ``__init__.py`` of every package on the way counts too,
since importing a submodule runs it). Each module is hashed from its syntax tree with its module,
class and function docstrings removed, so comments, docstrings and formatting change no digest;
the code cells likewise (IPython magics such as ``%pip install ...`` are hashed as text). A code
edit of a module stales exactly the chapters that import it.

``make execute`` (``scripts/execute_notebooks.py``) stores the record in the notebook's metadata
(``metadata["wganbook"]``, see :func:`stamp_digest`): the chapter digest, the digest of its code
cells and one digest per module, so :func:`stale_reason` (and ``python -m wganbook stale``) can name
the module(s) that staled a chapter. The freshness test and the claims ledger use the same digest.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import re
import sys
import tokenize
import warnings
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple, Union

from wganbook.bookkit.toc import chapter_notebooks

__all__ = [
    "DIGEST_KEY",
    "SCHEME",
    "PackageIndex",
    "source_digest",
    "code_digest",
    "imported_modules",
    "chapter_record",
    "notebook_digest",
    "stamp_digest",
    "stale_causes",
    "stale_reason",
    "stale_notebooks",
    "add_stale_subcommand",
]

#: Key of the digest record in a notebook's metadata.
DIGEST_KEY = "wganbook"
#: The digest scheme recorded with each digest (a record of another scheme is stale).
SCHEME = "ast-1"
#: Stand-in call for an IPython magic line, so that a cell holding one still parses.
_MAGIC_CALL = "__ipython_magic__"
_MAGIC_LINE = re.compile(r"^([ \t]*)([%!].*)$")
#: The cause :func:`stale_causes` gives for a record of another digest scheme.
_OLD_SCHEME = "its digest scheme"

PathLike = Union[str, "os.PathLike[str]"]


# ---------------------------------------------------------------------------------------------
# syntax trees without docstrings
# ---------------------------------------------------------------------------------------------
def _strip_docstrings(tree: ast.AST, module: bool = True) -> ast.AST:
    """Remove the docstrings of classes and functions (and of the module itself when ``module``)."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef) + ((ast.Module,) if module else ())
    for node in ast.walk(tree):
        if not isinstance(node, kinds):
            continue
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _parse(source: str) -> ast.Module:
    """``ast.parse`` without the warnings of the code parsed (e.g. an invalid escape sequence)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source)


def _canon(node) -> str:
    """A text form of a syntax tree that the same code gives on every Python version >= 3.9.

    Like ``ast.dump(tree, annotate_fields=True, include_attributes=False)``, but fields that are
    empty (``None`` or ``[]``) are left out, since new Python versions add such fields
    (``type_params`` in 3.12) and ``ast.dump`` changed how it shows them (3.13).
    """
    if isinstance(node, ast.AST):
        parts = []
        for name in node._fields:
            value = getattr(node, name, None)
            if value is None or (isinstance(value, list) and not value):
                continue
            if isinstance(node, ast.Constant) and name == "kind":  # the u"" prefix
                continue
            parts.append(f"{name}={_canon(value)}")
        return f"{type(node).__name__}({', '.join(parts)})"
    if isinstance(node, list):
        return "[" + ", ".join(_canon(v) for v in node) + "]"
    return repr(node)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def source_digest(source: str) -> str:
    """Digest of a module's source: its syntax tree without docstrings (16 hex characters).

    Comments, docstrings, blank lines, line endings and formatting do not change it.

    Parameters
    ----------
    source : str
        Python source.

    Returns
    -------
    str

    Raises
    ------
    SyntaxError
        When the source does not parse.
    """
    return _sha(_canon(_strip_docstrings(_parse(source))))


def _mask_magics(source: str) -> str:
    """The cell with each IPython magic line (``%pip ...``, ``!ls``) replaced by a call holding its text."""
    lines = []
    for line in source.splitlines():
        m = _MAGIC_LINE.match(line)
        lines.append(f"{m.group(1)}{_MAGIC_CALL}({m.group(2)!r})" if m else line)
    return "\n".join(lines)


def _ends_with_semicolon(source: str) -> bool:
    """Whether the cell's last statement ends with ``;`` (IPython then shows no value)."""
    last = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type not in (
                tokenize.COMMENT,
                tokenize.NL,
                tokenize.NEWLINE,
                tokenize.INDENT,
                tokenize.DEDENT,
                tokenize.ENDMARKER,
            ):
                last = tok
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return False
    return last is not None and last.type == tokenize.OP and last.string == ";"


def _cell_form(source: str) -> str:
    """The normalised form of one code cell (its syntax tree; its stripped lines if it does not parse)."""
    if source.lstrip().startswith("%%"):  # a cell magic: not Python
        return "cell-magic:" + "\n".join(line.rstrip() for line in source.strip().splitlines())
    masked = _mask_magics(source)
    try:
        tree = _parse(masked)
    except SyntaxError:
        return "text:" + "\n".join(line.rstrip() for line in source.strip().splitlines())
    quiet = ";" if _ends_with_semicolon(masked) else ""
    return _canon(_strip_docstrings(tree, module=False)) + quiet


# ---------------------------------------------------------------------------------------------
# notebooks
# ---------------------------------------------------------------------------------------------
def _as_notebook(nb) -> dict:
    if isinstance(nb, (str, os.PathLike)):
        return json.loads(Path(nb).read_text(encoding="utf-8"))
    return nb


def _code_sources(nb) -> List[str]:
    sources = []
    for cell in _as_notebook(nb).get("cells", []):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            sources.append("".join(src) if isinstance(src, list) else src)
    return sources


def code_digest(nb) -> str:
    """Digest of a notebook's code cells, in order (16 hex characters).

    Each cell is hashed from its syntax tree (class and function docstrings removed; IPython magic
    lines kept as text), so comments and formatting do not change it; outputs, tags and markdown
    cells do not count. A trailing ``;`` counts (it hides the cell's value).

    Parameters
    ----------
    nb : dict, nbformat.NotebookNode or path

    Returns
    -------
    str
    """
    return _sha(json.dumps([_cell_form(s) for s in _code_sources(nb)], ensure_ascii=False))


# ---------------------------------------------------------------------------------------------
# the package's modules and what imports what
# ---------------------------------------------------------------------------------------------
def _prefixes(module: str) -> List[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


class PackageIndex:
    """The modules of one package folder: their digests and the package modules each imports.

    Parameters
    ----------
    root : path, optional
        The package folder (default: the imported ``wganbook``); its name is the package name.
    """

    def __init__(self, root: Optional[PathLike] = None):
        self.root = Path(root).resolve() if root is not None else Path(__file__).resolve().parents[1]
        self.name = self.root.name
        self._cache: Dict[str, Tuple[str, Set[str]]] = {}

    def path(self, module: str) -> Optional[Path]:
        """The file of ``module`` (``pkg/__init__.py`` for a package), or ``None`` when there is none."""
        parts = module.split(".")
        if parts[0] != self.name:
            return None
        base = self.root.joinpath(*parts[1:])
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
        if len(parts) > 1 and base.with_name(base.name + ".py").is_file():
            return base.with_name(base.name + ".py")
        return None

    def is_package(self, module: str) -> bool:
        path = self.path(module)
        return path is not None and path.name == "__init__.py"

    def owns(self, module: str) -> bool:
        return module == self.name or module.startswith(self.name + ".")

    def imports_of(self, tree: ast.AST, current: Optional[str] = None) -> Set[str]:
        """The package modules that the code of ``tree`` imports (anywhere in it).

        ``import a.b.c`` imports ``a``, ``a.b`` and ``a.b.c``; ``from a.b import c`` imports
        ``a``, ``a.b`` and, when ``c`` is a submodule, ``a.b.c``. Relative imports are resolved
        against ``current`` (the importing module).
        """
        found: Set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if self.owns(alias.name):
                        found.update(_prefixes(alias.name))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    if current is None:
                        continue
                    anchor = current.split(".")
                    if not self.is_package(current):
                        anchor = anchor[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                    base = ".".join(anchor + ([base] if base else []))
                if not self.owns(base):
                    continue
                found.update(_prefixes(base))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if alias.name != "*" and self.path(sub) is not None:
                        found.add(sub)
        return found

    def module(self, name: str) -> Tuple[str, Set[str]]:
        """``(digest, imported package modules)`` of one module; digest ``"missing"`` when it has no file."""
        if name not in self._cache:
            path = self.path(name)
            if path is None:
                self._cache[name] = ("missing", set())
            else:
                tree = _parse(path.read_text(encoding="utf-8"))
                imports = self.imports_of(tree, name)
                imports.discard(name)
                self._cache[name] = (_sha(_canon(_strip_docstrings(tree))), imports)
        return self._cache[name]

    def closure(self, modules: Iterable[str]) -> Dict[str, str]:
        """Every module reachable from ``modules`` through imports, with its digest (sorted by name)."""
        seen: Dict[str, str] = {}
        todo = sorted(set(modules))
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            digest, imports = self.module(name)
            seen[name] = digest
            todo.extend(sorted(imports - set(seen)))
        return dict(sorted(seen.items()))


def _index(package) -> PackageIndex:
    return package if isinstance(package, PackageIndex) else PackageIndex(package)


def imported_modules(nb, package=None) -> Dict[str, str]:
    """The package modules a notebook's code cells import, directly or transitively, with their digests.

    Parameters
    ----------
    nb : dict or path
        The notebook.
    package : path or PackageIndex, optional
        The package folder (default: the imported ``wganbook``).

    Returns
    -------
    dict
        Module name -> digest (``"missing"`` for a module with no file), sorted by name.
    """
    index = _index(package)
    direct: Set[str] = set()
    for source in _code_sources(nb):
        try:
            tree = _parse(_mask_magics(source))
        except SyntaxError:
            continue
        direct |= index.imports_of(tree)
    return index.closure(direct)


def chapter_record(nb, package=None) -> Dict[str, object]:
    """The digest record of a chapter as its code and the package are now.

    Returns
    -------
    dict
        ``{"scheme", "digest", "code", "modules"}``: the chapter digest (16 hex characters), the
        digest of its code cells and ``{module: digest}`` of every package module it imports.
    """
    code = code_digest(nb)
    modules = imported_modules(nb, package)
    digest = _sha(json.dumps({"scheme": SCHEME, "code": code, "modules": modules}, sort_keys=True))
    return {"scheme": SCHEME, "digest": digest, "code": code, "modules": modules}


def notebook_digest(nb, package=None) -> str:
    """The digest of a chapter: its code cells and the package modules it imports (16 hex characters)."""
    return chapter_record(nb, package)["digest"]


def stamp_digest(nb, package=None) -> Dict[str, object]:
    """Store the digest record in ``nb["metadata"]["wganbook"]`` (``make execute``, after a run).

    Parameters
    ----------
    nb : dict or nbformat.NotebookNode
        The executed notebook (changed in place).
    package : path or PackageIndex, optional
        The package folder the notebook ran with (default: the imported ``wganbook``).

    Returns
    -------
    dict
        The record stored.
    """
    record = chapter_record(nb, package)
    nb.setdefault("metadata", {})[DIGEST_KEY] = record
    return record


# ---------------------------------------------------------------------------------------------
# staleness
# ---------------------------------------------------------------------------------------------
def stale_causes(nb, package=None) -> Optional[List[str]]:
    """What changed since a stored notebook was executed: ``[]`` when it is fresh.

    Parameters
    ----------
    nb : dict or path
        The stored notebook.
    package : path or PackageIndex, optional
        The package folder (default: the imported ``wganbook``).

    Returns
    -------
    list of str or None
        ``None`` when the notebook has no digest record; otherwise the causes, e.g.
        ``["its code cells", "wganbook.lab.sweeps"]``, or a note that the record was made by an
        older digest scheme; ``[]`` when fresh.
    """
    nb = _as_notebook(nb)
    record = (nb.get("metadata") or {}).get(DIGEST_KEY) or {}
    if not record:
        return None
    if record.get("scheme") != SCHEME or not isinstance(record.get("modules"), dict):
        return [_OLD_SCHEME]
    now = chapter_record(nb, package)
    causes = []
    if record.get("code") != now["code"]:
        causes.append("its code cells")
    old, new = record["modules"], now["modules"]
    for name in sorted(set(old) | set(new)):
        if name not in old:
            causes.append(f"{name} (newly imported)")
        elif name not in new:
            causes.append(f"{name} (no longer imported)")
        elif old[name] != new[name]:
            causes.append(name)
    if not causes and record.get("digest") != now["digest"]:  # pragma: no cover - a damaged record
        causes.append("its digest record")
    return causes


def _join(items: List[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def stale_reason(path: PathLike, package=None) -> Optional[str]:
    """Why a stored notebook's outputs are stale, or ``None`` when its digest matches the code.

    Parameters
    ----------
    path : path
        The stored notebook.
    package : path or PackageIndex, optional
        The package folder (default: the imported ``wganbook``).

    Returns
    -------
    str or None
        One line naming the notebook and what changed since it was executed (its code cells,
        the modules), e.g. ``"04_gradient_penalty.ipynb is stale: wganbook.lab.sweeps changed
        since it was executed; re-execute it (make execute)"``.
    """
    path = Path(path)
    causes = stale_causes(path, package)
    if causes is None:
        return f"{path.name} has no digest: its outputs were not stored by `make execute`"
    if not causes:
        return None
    if causes == [_OLD_SCHEME]:
        return f"{path.name} is stale: its digest was made by an older scheme; re-execute it (make execute)"
    return f"{path.name} is stale: {_join(causes)} changed since it was executed; re-execute it (make execute)"


def stale_notebooks(
    book_dir: PathLike = "book", package=None, chapters: Optional[Iterable[str]] = None
) -> Dict[str, str]:
    """The stale chapters of a book folder: notebook stem -> :func:`stale_reason` (fresh ones left out)."""
    index = _index(package)
    out = {}
    for path in chapter_notebooks(book_dir, chapters):
        reason = stale_reason(path, index)
        if reason is not None:
            out[path.stem] = reason
    return out


# ---------------------------------------------------------------------------------------------
# python -m wganbook stale
# ---------------------------------------------------------------------------------------------
def add_stale_subcommand(subparsers):
    """Register ``stale``: print each stale chapter and what staled it; exit 1 when any is stale."""
    p = subparsers.add_parser(
        "stale",
        help="list the stored chapters whose code cells or imported modules changed (exit 1 if any)",
        description="Compare every stored chapter's digest (its code cells and the wganbook modules it "
        "imports, docstrings, comments and formatting ignored) with the code as it is now; "
        "print each stale chapter with the module(s) that staled it. Exit status 1 when "
        "any chapter is stale, 0 when all are fresh.",
    )
    p.add_argument("--book-dir", default="book", help="folder of the chapter notebooks (default: book)")
    p.add_argument("--chapters", nargs="+", default=None, metavar="NN", help="only these chapters, e.g. 03 ch05")
    p.add_argument(
        "--package-dir",
        default=None,
        help="the package folder whose modules are hashed (default: the imported wganbook)",
    )
    p.set_defaults(func=_run_stale_command, _parser=p)
    return p


def _run_stale_command(args) -> int:
    try:
        notebooks = chapter_notebooks(args.book_dir, args.chapters)
        index = PackageIndex(args.package_dir)
        reasons = {p.stem: stale_reason(p, index) for p in notebooks}
    except (ValueError, FileNotFoundError, SyntaxError) as exc:
        print(f"wganbook stale: error: {exc}", file=sys.stderr)
        return 2
    stale = {k: v for k, v in reasons.items() if v is not None}
    for reason in stale.values():
        print(reason)
    if stale:
        print(
            f"{len(stale)} of {len(reasons)} chapter(s) stale: re-execute them (make execute) and refresh the "
            f"ledger (make claims)"
        )
        return 1
    print(f"all {len(reasons)} chapter(s) fresh")
    return 0

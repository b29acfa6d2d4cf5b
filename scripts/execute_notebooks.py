"""Execute the book's notebooks in place, the way they are stored.

Each notebook runs top to bottom in a fresh kernel, with its default parameters (no papermill
injection), from the ``book/`` folder, with tqdm silenced. Afterwards the notebook is cleaned:
execution counts 1..N, no papermill/timing metadata, the digest of its code cells and of the
package modules it imports (``metadata.wganbook``, see ``wganbook.bookkit.digest``), and a check
that no output shows an error, a machine path or a widget.

Usage::

    python scripts/execute_notebooks.py                  # every book/*.ipynb
    python scripts/execute_notebooks.py book/01_distances.ipynb [...]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from wganbook.bookkit.digest import stamp_digest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
MACHINE_PATH = re.compile(r"((?<![\w:/.~])/[A-Za-z_][\w.-]*/[\w.-]+|site-packages)")


def clean(nb: nbformat.NotebookNode) -> list[str]:
    """Strip volatile metadata and return a list of problems found in the outputs."""
    problems = []
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        for out in cell.get("outputs", []):
            if "execution_count" in out:
                out["execution_count"] = count
            if out.get("output_type") == "error":
                problems.append(f"cell {count}: error {out.get('ename')}: {out.get('evalue')}")
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                problems.append(f"cell {count}: stderr output: {out.get('text', '')[:200]!r}")
            data = out.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                problems.append(f"cell {count}: widget output")
            text = str(out.get("text", "")) + str(data.get("text/plain", ""))
            m = MACHINE_PATH.search(text)
            if m:
                problems.append(f"cell {count}: machine path in output ({m.group(0)})")
    return problems


def execute(path: Path, timeout: int = 1200) -> float:
    nb = nbformat.read(path, as_version=4)
    env_backup = dict(os.environ)
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("PYTHONHASHSEED", "0")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        start = time.perf_counter()
        # coalesce_streams: consecutive prints are stored as one output, whatever the kernel's flush timing
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            coalesce_streams=True,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
        elapsed = time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    problems = clean(nb)
    stamp_digest(nb, ROOT / "wganbook")  # which code produced these outputs
    nbformat.write(nb, path)
    if problems:
        raise SystemExit(f"{path.name}: " + "; ".join(problems))
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
    for p in paths:
        p = p.resolve()
        print(f"executing {p.relative_to(ROOT)} ...", flush=True)
        seconds = execute(p)
        print(f"  done in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

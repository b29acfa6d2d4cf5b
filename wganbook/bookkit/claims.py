r"""Named claims: every finding the book asserts is one checked, recorded object; and their ledger.

In a chapter notebook::

    from wganbook.bookkit.claims import claim, report

    claim("ch4.gp-8gaussians-quality",
          "WGAN-GP puts at least half of its samples within 3 std of a mode of the 8 Gaussians",
          value=min(shares), holds=min(shares) >= 0.5, details={"seeds": seeds})
    report("ch5.strategy-spread", "FD spread over the six sampling strategies", value=spread,
           paper=3.4, source="WGAN-div (Wu et al. 2018)")

:func:`claim` raises :class:`AssertionError` with the statement and the measured value when the
condition does not hold (so ``pytest --nbval book/`` fails on a broken claim), and records the
claim in the cell's output: the ``text/plain`` part is the statement only (identical on every
machine, so nbval compares it), the value goes into the ``text/html`` part and the output's
metadata (neither is compared). :func:`report` records a number the book shows but does not
assert (with the paper's value where there is one).

The **ledger** (``python -m wganbook claims``, ``make claims``) executes every chapter with its
quick preset for seeds 0-4 (seed 0 is the stored notebook; the others run through papermill with
``seed`` set and every list of seeds shifted to unused seeds), with claims in *record* mode
(``WGANBOOK_CLAIMS=record``: a failing claim is recorded, not raised), and writes
``book/claims.json`` and the appendix page ``book/claims.md``. A claim's entry gives its value in
the stored run, its minimum, median and maximum over the runs and for how many runs it held. It is
incremental: only chapters whose digest (:func:`wganbook.bookkit.digest.notebook_digest`: the chapter's code
cells and the package modules it imports) changed since the ledger was written run again.

A claim that something fails carries a **positive control** (``control=``: the same measurement
where the mechanism is absent, which must pass), and a comparison records **both arms**
(``arms=``); the ledger spreads each over the seeds. ``python -m wganbook claims --holdout``
(``make claims-holdout``) runs every chapter again for the held-out seeds 5-9, which played no part
in choosing a threshold, into the ledger's ``"holdout"`` part; ``book/threshold_changes.json`` lists
the thresholds that changed after their results were seen. The appendix shows all of it.
"""

from __future__ import annotations

import html
import json
import math
import numbers
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from wganbook._util import atomic_write, jsonable
from wganbook.bookkit.digest import PackageIndex, notebook_digest, stale_reason
from wganbook.bookkit.presets import get_preset
from wganbook.bookkit.toc import chapter_key, chapter_notebooks

__all__ = [
    "CLAIM_ID",
    "MODE_ENV",
    "METADATA_KEY",
    "LEDGER_SEEDS",
    "HOLDOUT_SEEDS",
    "claim",
    "report",
    "collect",
    "seed_parameters",
    "summarise",
    "summarise_holdout",
    "build_ledger",
    "render_page",
    "claim_sections",
    "write_page",
    "load_threshold_changes",
    "anchor",
    "stale_chapters",
    "run_ledger",
]

#: The form of every claim id, ``ch<N>.<name>`` with a lower-case, dash-separated name.
CLAIM_ID = re.compile(r"^ch\d+\.[a-z0-9]+(?:-[a-z0-9]+)*$")
#: The environment variable that sets the mode; ``assert`` (default) raises on a failed claim,
#: ``record`` only records it.
MODE_ENV = "WGANBOOK_CLAIMS"
_MODES = ("assert", "record")
#: Key of the record in an output's metadata.
METADATA_KEY = "wganbook"
#: The seeds of the ledger.
LEDGER_SEEDS = (0, 1, 2, 3, 4)
#: The held-out seeds (``make claims-holdout``): run after the thresholds were certified on the
#: ledger's seeds; every asserted finding must hold on them too.
HOLDOUT_SEEDS = (5, 6, 7, 8, 9)
#: Where the ledger and its page live, relative to the repository root.
LEDGER_FILE = Path("book") / "claims.json"
PAGE_FILE = Path("book") / "claims.md"
_BOOK_SOURCE = "this book"


# ---------------------------------------------------------------------------------------------
# claim / report (used inside the notebooks)
# ---------------------------------------------------------------------------------------------
def _number(name: str, value: Any) -> float:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a real number (the quantity the claim is about), got {type(value).__name__}: {value!r}"
        )
    return float(value)


def _from_json(value: Any) -> float:
    return float(value) if isinstance(value, str) else value


def _check_text(name: str, text: Any) -> str:
    if not isinstance(text, str) or not text.strip() or "\n" in text:
        raise ValueError(f"{name} must be a non-empty one-line string, got {text!r}")
    return text.strip()


def _check_id(claim_id: Any) -> str:
    if not isinstance(claim_id, str) or not CLAIM_ID.match(claim_id):
        raise ValueError(
            f"claim id must look like 'ch4.gp-8gaussians-quality' (ch<N>.<lower-case-dashed-name>), got {claim_id!r}"
        )
    return claim_id


def _mode() -> str:
    mode = os.environ.get(MODE_ENV, "assert") or "assert"
    if mode not in _MODES:
        raise ValueError(f"{MODE_ENV} must be one of: {', '.join(_MODES)}; got {mode!r}")
    return mode


def fmt(value: Any) -> str:
    """A number as the ledger and the claim lines print it: 3 significant digits."""
    value = _from_json(value)
    if value is None:
        return "–"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        v = float(value)
        if not math.isfinite(v):
            return "∞" if v > 0 else ("−∞" if v < 0 else "nan")
        if v == 0:
            return "0"
        if abs(v) >= 1e5 or abs(v) < 1e-3:
            return f"{v:.3g}"
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(value)


class _Record:
    """The display object of a claim or report: stable text/plain, value in text/html + metadata."""

    def __init__(self, kind: str, record: dict, plain: str, rich: str):
        self.kind, self.record, self.plain, self.rich = kind, record, plain, rich

    def __repr__(self) -> str:
        return self.plain

    def _repr_mimebundle_(self, include=None, exclude=None):
        return ({"text/plain": self.plain, "text/html": self.rich}, {METADATA_KEY: {self.kind: self.record}})


class _Recorded(dict):
    """The record :func:`claim` / :func:`report` return: a plain dict that, as the last expression of a
    cell, shows nothing (the claim line is already displayed; its value must not reach text/plain)."""

    def _ipython_display_(self) -> None:
        pass


#: The kinds of claim, each with what it means (the Claims appendix groups by kind, in this order).
KINDS = {
    "finding": "an empirical result that could have come out otherwise",
    "sanity": "true by construction or straight from initialisation: it guards the code, it is not evidence",
    "identity": "a deterministic check of the mathematics or the code: no seed can change it",
}


def _check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}; got {kind!r}")
    return kind


_CONTROL_KEYS = ("statement", "value", "holds")


def _as_bool(name: str, value: Any) -> bool:
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def _check_control(control: Any) -> Optional[dict]:
    """The positive control of a claim as recorded: ``statement``, ``value``, ``held``."""
    if control is None:
        return None
    if not isinstance(control, Mapping) or set(control) != set(_CONTROL_KEYS):
        got = sorted(control) if isinstance(control, Mapping) else type(control).__name__
        raise ValueError(f"control must be a mapping with exactly the keys {', '.join(_CONTROL_KEYS)}; got {got}")
    return {
        "statement": _check_text("control statement", control["statement"]),
        "value": jsonable(_number("control value", control["value"])),
        "held": _as_bool("control holds", control["holds"]),
    }


def _check_arms(arms: Any) -> Optional[dict]:
    """The arms of a comparison as recorded: ``{name: number}``, at least two."""
    if arms is None:
        return None
    if not isinstance(arms, Mapping) or len(arms) < 2:
        raise ValueError(
            f"arms must be a mapping of at least two names to numbers (both arms of a comparison); got {arms!r}"
        )
    out = {}
    for name, value in arms.items():
        out[_check_text("arm name", name)] = jsonable(_number(f"arm {name!r}", value))
    return out


def anchor(claim_id: str, kind: str = "claim") -> str:
    """The HTML id of a claim's row in the Claims appendix (``kind="claim"``), of its check mark in
    the chapter (``"check"``) or of a reported number's place in the chapter (``"report"``)."""
    return f"{kind}-{claim_id.replace('.', '-')}"


def _mark(claim_id: str, statement: str, holds: bool) -> str:
    """The only thing a claim shows in the chapter page: a small check mark that links to its row in
    the Claims appendix (the row links back here)."""
    sign, label = ("✓", "checked claim") if holds else ("✘", "claim that does NOT hold")
    return (
        f'<a class="wganbook-check{"" if holds else " wganbook-failed"}" id="{anchor(claim_id, "check")}" '
        f'href="claims.html#{anchor(claim_id)}" title="{html.escape(label)}: {html.escape(statement)}" '
        f'aria-label="{html.escape(label)} {claim_id}, see the Claims appendix">{sign}</a>'
    )


def _emit(obj: _Record) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - no IPython
        print(obj.plain)
        return
    if get_ipython() is None:
        print(obj.plain)
    else:
        display(obj)


def claim(
    claim_id: str,
    statement: str,
    value: Any,
    holds: Union[bool, Callable[[float], bool]],
    *,
    kind: str,
    control: Optional[Mapping[str, Any]] = None,
    arms: Optional[Mapping[str, Any]] = None,
    details: Optional[Mapping[str, Any]] = None,
    source: str = _BOOK_SOURCE,
    quiet: bool = False,
) -> dict:
    """Check a named claim of the text: record it, and raise if it does not hold.

    Parameters
    ----------
    claim_id : str
        Stable id ``ch<N>.<name>``, e.g. ``"ch4.gp-8gaussians-quality"``.
    statement : str
        The claim in one line, as the text makes it (include the threshold).
    value : float
        The measured number the condition is about (e.g. the smallest share over the seeds).
    holds : bool or callable
        Whether the claim holds; a callable is called with ``value``.
    kind : {"finding", "sanity", "identity"}
        What kind of evidence the claim is (``KINDS``): ``"finding"``, an empirical result that
        could have come out otherwise; ``"sanity"``, true by construction or straight from
        initialisation (an untrained or broken run would pass too); ``"identity"``, a deterministic
        check of the mathematics or the code. Required: every claim declares it.
    control : mapping, optional
        A **positive control** of a claim that something fails or is uninformative: the same
        measurement where the mechanism is absent, which must pass, as
        ``{"statement": str, "value": number, "holds": bool}`` (e.g. for "the clipped critic's
        gradients are not along the transport rays", the gradient-penalty critic's cosine, which is).
        The claim holds only when its own condition and the control's both hold.
    arms : mapping, optional
        Both (or all) arms of a comparison, ``{name: number}`` with at least two entries (e.g.
        ``{"WGAN-GP": fd_gp, "WGAN-CT": fd_ct}``): the ledger records each arm's spread over the seeds.
    details : mapping, optional
        More measured values (per seed, per method, ...), recorded but not summarised.
    source : str, optional
        Where the claim comes from: ``"this book"`` or the paper, e.g.
        ``"WGAN-GP (Gulrajani et al. 2017)"``.
    quiet : bool, optional
        Record without displaying (the record still goes to the ledger through the return value
        only; use it for claims checked in helper code, not in a notebook).

    Returns
    -------
    dict
        The record: ``id``, ``kind``, ``statement``, ``value``, ``held``, ``details``, ``source``,
        and ``control`` (its ``statement``, ``value``, ``held``) and ``arms`` where given.

    Raises
    ------
    AssertionError
        When the claim does not hold (unless ``WGANBOOK_CLAIMS=record``), with the id, the
        statement and the value.
    ValueError, TypeError
        For a malformed id, kind, statement, value or condition, before anything is recorded.
    """
    claim_id = _check_id(claim_id)
    kind = _check_kind(kind)
    statement = _check_text("statement", statement)
    source = _check_text("source", source)
    v = _number("value", value)
    if callable(holds):
        holds = holds(v)
    if hasattr(holds, "item") and callable(holds.item):
        holds = holds.item()
    if not isinstance(holds, bool):
        raise TypeError(f"holds must be a bool or a callable returning one, got {type(holds).__name__}")
    control = _check_control(control)
    arms = _check_arms(arms)
    mode = _mode()
    record = {
        "id": claim_id,
        "kind": kind,
        "statement": statement,
        "value": jsonable(v),
        "held": holds and (control is None or control["held"]),
        "details": jsonable(dict(details or {})),
        "source": source,
    }
    if control is not None:
        record["control"] = control
    if arms is not None:
        record["arms"] = arms
    holds = record["held"]
    mark = "✔" if holds else "✘ does NOT hold:"
    plain = f"{mark} claim {claim_id}: {statement}"
    rich = _mark(claim_id, statement, holds)
    if not quiet:
        _emit(_Record("claim", record, plain, rich))
    if not holds and mode == "assert":
        extra = f"; details: {json.dumps(record['details'])}" if record["details"] else ""
        if control is not None:
            extra += (
                f"; positive control {'held' if control['held'] else 'FAILED'}: {control['statement']} "
                f"(measured value {fmt(control['value'])})"
            )
        if arms is not None:
            extra += "; arms: " + ", ".join(f"{k} {fmt(a)}" for k, a in arms.items())
        raise AssertionError(f"claim {claim_id} does not hold: {statement} (measured value {fmt(v)}{extra})")
    return _Recorded(record)


def report(
    claim_id: str,
    statement: str,
    value: Any,
    *,
    paper: Any = None,
    source: str = _BOOK_SOURCE,
    details: Optional[Mapping[str, Any]] = None,
    quiet: bool = False,
) -> dict:
    """Record a number the book reports but does not assert (it goes to the ledger with its spread).

    Parameters
    ----------
    claim_id : str
        Stable id ``ch<N>.<name>``.
    statement : str
        What the number is, in one line.
    value : float
        The measured number.
    paper : float or str, optional
        The paper's value, where the paper gives one.
    source : str, optional
        ``"this book"`` or the paper the number is compared with.
    details : mapping, optional
        More values, recorded but not summarised.
    quiet : bool, optional
        Do not display.

    Returns
    -------
    dict
        The record.
    """
    claim_id = _check_id(claim_id)
    statement = _check_text("statement", statement)
    source = _check_text("source", source)
    v = _number("value", value)
    record = {
        "id": claim_id,
        "statement": statement,
        "value": jsonable(v),
        "paper": jsonable(paper),
        "details": jsonable(dict(details or {})),
        "source": source,
    }
    plain = f"reported {claim_id}: {statement}"
    rich = f'<span class="wganbook-report" id="{anchor(claim_id, "report")}"></span>'

    if not quiet:
        _emit(_Record("reported", record, plain, rich))
    return _Recorded(record)


# ---------------------------------------------------------------------------------------------
# collecting and summarising
# ---------------------------------------------------------------------------------------------
def collect(nb) -> Dict[str, List[dict]]:
    """The claim and report records stored in an executed notebook's outputs, in cell order.

    Parameters
    ----------
    nb : nbformat.NotebookNode or dict or path
        An executed notebook.

    Returns
    -------
    dict
        ``{"claims": [...], "reported": [...]}``.

    Raises
    ------
    ValueError
        When one id is recorded twice in the notebook.
    """
    if isinstance(nb, (str, os.PathLike)):
        nb = json.loads(Path(nb).read_text())
    found: Dict[str, List[dict]] = {"claims": [], "reported": []}
    seen = set()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []):
            meta = (out.get("metadata") or {}).get(METADATA_KEY) or {}
            for kind, bucket in (("claim", "claims"), ("reported", "reported")):
                if kind in meta:
                    rec = dict(meta[kind])
                    if rec["id"] in seen:
                        raise ValueError(f"claim id {rec['id']!r} is recorded twice in one notebook")
                    seen.add(rec["id"])
                    found[bucket].append(rec)
    return found


def seed_parameters(chapter: str, seed: int) -> Dict[str, Any]:
    """Papermill parameters of the ledger run with ``seed``: ``seed`` and every seed list shifted.

    A list parameter named ``seeds`` or ``*_seeds`` with quick value ``[s_1..s_k]`` becomes
    ``[s_i + seed * k]``, so the five runs use disjoint seeds.

    Parameters
    ----------
    chapter : str
        Chapter key, e.g. ``"ch04"``.
    seed : int
        The run's seed (0-4).

    Returns
    -------
    dict
    """

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    out: Dict[str, Any] = {"seed": int(seed)}
    for name, value in get_preset(chapter, "quick").items():
        if (name == "seeds" or name.endswith("_seeds")) and isinstance(value, (list, tuple)) and value:
            out[name] = [int(s) + int(seed) * len(value) for s in value]
    return out


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def _spread(values: Sequence[float]) -> Dict[str, Any]:
    return {"min": jsonable(min(values)), "median": jsonable(_median(values)), "max": jsonable(max(values))}


def _entries(chapter: str, runs: Mapping[int, Mapping[str, List[dict]]], digest: str, first: int) -> Dict[str, list]:
    """Ledger entries from ``runs`` (seed -> collected records); ``first`` is the seed whose records
    give the list of ids and the ``stored`` values."""
    out: Dict[str, list] = {"claims": [], "reported": []}
    for bucket in ("claims", "reported"):
        for rec in runs[first][bucket]:
            per = []
            for seed in sorted(runs):
                match = [r for r in runs[seed][bucket] if r["id"] == rec["id"]]
                if match:
                    per.append((seed, match[0]))
            entry = {
                "id": rec["id"],
                "chapter": chapter,
                "statement": rec["statement"],
                "source": rec.get("source", _BOOK_SOURCE),
                "stored": rec["value"],
                **_spread([_from_json(r["value"]) for _, r in per]),
                "values": {str(s): r["value"] for s, r in per},
            }
            if bucket == "claims":
                entry["kind"] = rec.get("kind")
                entry["held"] = sum(1 for _, r in per if r["held"])
                controls = [(s, r["control"]) for s, r in per if r.get("control")]
                if controls:
                    entry["control"] = {
                        "statement": rec.get("control", controls[0][1])["statement"],
                        "stored": controls[0][1]["value"],
                        **_spread([_from_json(c["value"]) for _, c in controls]),
                        "held": sum(1 for _, c in controls if c["held"]),
                        "values": {str(s): c["value"] for s, c in controls},
                    }
                arm_runs = [(s, r["arms"]) for s, r in per if r.get("arms")]
                if arm_runs:
                    names = list(arm_runs[0][1])
                    entry["arms"] = {
                        name: {
                            "stored": arm_runs[0][1][name],
                            **_spread([_from_json(a[name]) for _, a in arm_runs if name in a]),
                            "values": {str(s): a[name] for s, a in arm_runs if name in a},
                        }
                        for name in names
                    }
            else:
                entry["paper"] = rec.get("paper")
            entry["runs"] = len(per)
            entry["digest"] = digest
            out[bucket].append(entry)
    return out


def summarise(chapter: str, runs: Mapping[int, Mapping[str, List[dict]]], digest: str) -> Dict[str, list]:
    """Ledger entries of one chapter from its runs (seed -> collected records).

    Parameters
    ----------
    chapter : str
        Notebook name, e.g. ``"04_gradient_penalty"``.
    runs : mapping
        Seed -> :func:`collect` result; seed 0 is the stored run.
    digest : str
        The chapter's digest.

    Returns
    -------
    dict
        ``{"claims": [...], "reported": [...]}`` entries: each with its stored value, the minimum,
        median and maximum over the runs and the value of each run; a claim also with its kind, the
        number of runs in which it held, and the spread of its positive control and of its arms
        where it has them.
    """
    if 0 not in runs:
        raise ValueError("runs must include seed 0 (the stored run)")
    return _entries(chapter, runs, digest, 0)


def summarise_holdout(chapter: str, runs: Mapping[int, Mapping[str, List[dict]]], digest: str) -> Dict[str, list]:
    """Held-out entries of one chapter from its runs for the held-out seeds (no stored run among them):
    as :func:`summarise`, with ``stored`` the value of the first held-out seed."""
    if not runs:
        raise ValueError("runs must hold at least one held-out seed")
    return _entries(chapter, runs, digest, min(runs))


def build_ledger(chapters: Mapping[str, Mapping[str, list]], seeds: Sequence[int] = LEDGER_SEEDS) -> dict:
    """Assemble the ledger from per-chapter summaries (chapter order kept)."""
    ledger = {"seeds": list(seeds), "claims": [], "reported": []}
    for name in sorted(chapters):
        ledger["claims"].extend(chapters[name]["claims"])
        ledger["reported"].extend(chapters[name]["reported"])
    return ledger


def _title(chapter: str) -> str:
    num, _, rest = chapter.partition("_")
    return f"Chapter {int(num)}: {rest.replace('_', ' ')}" if num.isdigit() else chapter


_HEADING = re.compile(r"^(#{2,6})\s+(.+?)\s*$", re.M)


def claim_sections(notebooks: Iterable[Union[str, os.PathLike]]) -> Dict[str, Dict[str, str]]:
    """Where each claim and reported number is made: ``{id: {"page", "section"}}``.

    ``page`` is the chapter's HTML page (``04_gradient_penalty.html``), ``section`` the text of the last
    heading (level 2 or deeper) above the cell that records it (the chapter's title before the first one).

    Parameters
    ----------
    notebooks : iterable of path
        The stored chapter notebooks.
    """
    where: Dict[str, Dict[str, str]] = {}
    for path in notebooks:
        path = Path(path)
        nb = json.loads(path.read_text())
        section = _title(path.stem)
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "markdown":
                source = "".join(cell.get("source", []))
                headings = _HEADING.findall(source)
                if headings:
                    section = headings[-1][1]
                continue
            records = collect({"cells": [cell]})
            for rec in records["claims"] + records["reported"]:
                where[rec["id"]] = {"page": f"{path.stem}.html", "section": section}
    return where


def _esc(text: Any) -> str:
    """Text for the appendix's HTML: escaped (statements may hold ``<``, ``&``, ``|``) and on one line."""
    return html.escape(" ".join(str(text).split()), quote=True)


def _back_link(entry: Mapping[str, Any], kind: str, where: Mapping[str, Mapping[str, str]]) -> str:
    place = where.get(entry["id"])
    if not place:
        return '<span class="wganbook-claim-where">–</span>'
    href = f"{place['page']}#{anchor(entry['id'], kind)}"
    return (
        f'<a class="wganbook-claim-where" href="{_esc(href)}" title="where the book makes it">'
        f"{_with_math(place['section'])}</a>"
    )


_DOLLAR_MATH = re.compile(r"\$([^$]+)\$")


def _with_math(text: str) -> str:
    """A heading's text for the appendix's HTML: escaped, its ``$...$`` formulas typeset by MathJax as in
    the chapters (Sphinx's inline-math markup: MathJax only typesets elements of class ``math``)."""
    parts = _DOLLAR_MATH.split(" ".join(str(text).split()))
    return "".join(
        html.escape(part, quote=True)
        if i % 2 == 0
        else f'<span class="math notranslate nohighlight">\\({html.escape(part, quote=True)}\\)</span>'
        for i, part in enumerate(parts)
    )


def _num(value: Any) -> str:
    """A number of the appendix (:func:`fmt`) that a line never breaks inside (``-0.49``, ``2.97e-09``)."""
    return f'<span class="wganbook-num">{_esc(fmt(value))}</span>'


_SEP = '<span class="wganbook-sep" aria-hidden="true"> · </span>'
_KIND_TITLES = {"finding": "Findings", "sanity": "Sanity checks", "identity": "Identities", None: "Not yet classified"}


def _spread_html(entry: Mapping[str, Any]) -> str:
    return " – ".join(_num(entry[k]) for k in ("min", "median", "max"))


def _extra_lines(entry: Mapping[str, Any], seeds: str, held_out: Optional[Mapping[str, Any]]) -> List[str]:
    """A claim card's lines for its positive control, its arms and its held-out seeds."""
    lines = []
    control = entry.get("control")
    if control:
        lines.append(
            '<div class="wganbook-claim-control"><span class="wganbook-claim-label">positive control</span> '
            f"{_esc(control['statement'])}{_SEP}"
            f'<span title="minimum – median – maximum over seeds {_esc(seeds)}">seeds {_spread_html(control)}</span>'
            f"{_SEP}{control['held']}/{entry['runs']} held</div>"
        )
    arms = entry.get("arms")
    if arms:
        parts = [
            f'<span class="wganbook-claim-arm">{_esc(name)} <strong>{_num(arm["stored"])}</strong> '
            f'<span title="minimum – median – maximum over seeds {_esc(seeds)}">({_spread_html(arm)})</span></span>'
            for name, arm in arms.items()
        ]
        lines.append(
            '<div class="wganbook-claim-arms"><span class="wganbook-claim-label">both arms</span> '
            + _SEP.join(parts)
            + "</div>"
        )
    if held_out is not None:
        hseeds = held_out["seeds"]
        label = f"held-out seeds {hseeds[0]}–{hseeds[-1]}" if len(hseeds) > 1 else f"held-out seed {hseeds[0]}"
        entry_h = held_out["entry"]
        if entry_h is None:
            text = "not yet run for this version of the chapter"
            cls = " wganbook-claim-heldout-missing"
        else:
            text = f"{_spread_html(entry_h)}"
            if "held" in entry_h:
                text += f"{_SEP}{entry_h['held']}/{entry_h['runs']} held"
            cls = "" if entry_h.get("held", entry_h["runs"]) == entry_h["runs"] else " wganbook-claim-weak"
        lines.append(
            f'<div class="wganbook-claim-heldout{cls}"><span class="wganbook-claim-label">{_esc(label)}</span> '
            f"{text}</div>"
        )
    return lines


def _more(lines: List[str]) -> List[str]:
    """The control, arms and held-out lines of a card in one block (one grid area when wide)."""
    return ['<div class="wganbook-claim-more">', *lines, "</div>"] if lines else []


def _entry_block(
    entry: Mapping[str, Any],
    kind: str,
    seeds: str,
    where: Mapping[str, Mapping[str, str]],
    held_out: Optional[Mapping[str, Any]] = None,
) -> str:
    """One claim (``kind="claim"``) or reported number (``"report"``) of the appendix as an HTML block
    (a card: the statement, a line of numbers, lines for the positive control, the arms and the
    held-out seeds where there are any, a line with the id, the back-link and the source)."""
    spread = _spread_html(entry)
    numbers = [
        f'<span class="wganbook-claim-value" title="the value in the stored run (seed 0)">'
        f"stored <strong>{_num(entry['stored'])}</strong></span>",
        f'<span class="wganbook-claim-spread" title="minimum – median – maximum over seeds {_esc(seeds)}">'
        f"seeds {spread}</span>",
    ]
    if kind == "claim":
        # a claim that did not hold in every run is marked (the book asserts only those that do)
        classes = "wganbook-claim" + (" wganbook-claim-weak" if entry["held"] != entry["runs"] else "")
        classes += f" wganbook-kind-{entry.get('kind') or 'unclassified'}"
        numbers.append(
            f'<span class="wganbook-claim-held" title="runs in which the claim held">'
            f"{entry['held']}/{entry['runs']} held</span>"
        )
        block_id, extra_anchor = anchor(entry["id"]), ""
    else:
        classes = "wganbook-report"
        if entry.get("paper") is not None:
            numbers.append(
                f'<span class="wganbook-report-paper" title="the value the paper gives">'
                f"paper <strong>{_num(entry['paper'])}</strong></span>"
            )
        # the report's own anchor, and the one the appendix gave reported numbers before
        block_id = anchor(entry["id"], "report")
        extra_anchor = f'<span class="wganbook-anchor" id="{anchor(entry["id"])}"></span>'
    meta = [
        f'<code class="wganbook-claim-id">{_esc(entry["id"])}</code>',
        *([f'<span class="wganbook-claim-kind">{_esc(entry["kind"])}</span>'] if entry.get("kind") else []),
        _back_link(entry, "check" if kind == "claim" else "report", where),
        f'<span class="wganbook-claim-source">{_esc(entry["source"])}</span>',
    ]
    return "\n".join(
        [
            f'<div class="{classes}" id="{block_id}">{extra_anchor}',
            f'<div class="wganbook-claim-statement">{_esc(entry["statement"])}</div>',
            f'<div class="wganbook-claim-numbers">{_SEP.join(numbers)}</div>',
            *_more(_extra_lines(entry, seeds, held_out)),
            f'<div class="wganbook-claim-meta">{_SEP.join(meta)}</div>',
            "</div>",
        ]
    )


def _held_out(ledger: Mapping[str, Any], bucket: str) -> Callable[[Mapping[str, Any]], Optional[dict]]:
    """For an entry of the certified ledger, its held-out summary (``None`` when there is no held-out
    run at all; ``entry`` ``None`` when the held-out run is for another version of the chapter)."""
    part = ledger.get("holdout") or {}
    if not part.get("seeds"):
        return lambda entry: None
    by_id = {e["id"]: e for e in part.get(bucket, [])}
    digests = part.get("digests", {})

    def lookup(entry: Mapping[str, Any]) -> Optional[dict]:
        match = by_id.get(entry["id"])
        fresh = match is not None and digests.get(entry["chapter"]) == entry.get("digest")
        return {"seeds": part["seeds"], "entry": match if fresh else None}

    return lookup


def _entry_list(entries: Sequence[Mapping[str, Any]], kind: str, seeds: str, where, held_out=None) -> List[str]:
    """A chapter's claims (or reported numbers) as one raw HTML block of Markdown: no blank line inside."""
    container = "wganbook-claims" if kind == "claim" else "wganbook-reports"
    held_out = held_out or (lambda entry: None)
    return [
        f'<div class="{container}">',
        *(_entry_block(e, kind, seeds, where, held_out(e)) for e in entries),
        "</div>",
        "",
    ]


#: The hand-kept list of thresholds that changed after their results were seen (issue "Claims you
#: can trust"), next to ``claims.json``; the appendix lists it.
CHANGES_FILE = "threshold_changes.json"
_CHANGE_KEYS = ("id", "old", "new", "commit", "date", "why")


def load_threshold_changes(book_dir: Union[str, os.PathLike] = "book") -> List[dict]:
    """The thresholds that changed after their results were seen (``book/threshold_changes.json``):
    a list of ``{"id", "old", "new", "commit", "date", "why"}``, oldest first; none when the file is
    missing."""
    path = Path(book_dir) / CHANGES_FILE
    if not path.exists():
        return []
    try:
        changes = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(changes, list):
        raise ValueError(f"{path} must hold a list of changes, got {type(changes).__name__}")
    for i, change in enumerate(changes):
        if not isinstance(change, dict) or set(change) != set(_CHANGE_KEYS):
            got = sorted(change) if isinstance(change, dict) else type(change).__name__
            raise ValueError(f"{path} entry {i} must have exactly the keys {', '.join(_CHANGE_KEYS)}; got {got}")
    return changes


def _changes_section(changes: Sequence[Mapping[str, Any]]) -> List[str]:
    if not changes:
        return []
    rows = [
        "<tr>"
        f'<td><code class="wganbook-claim-id">{_esc(c["id"])}</code></td>'
        f"<td>{_esc(c['old'])}</td><td>{_esc(c['new'])}</td>"
        f"<td>{_esc(c['date'])} <code>{_esc(c['commit'])}</code></td><td>{_esc(c['why'])}</td>"
        "</tr>"
        for c in changes
    ]
    return [
        "(claims-threshold-changes)=",
        "## Thresholds changed after their results were seen",
        "",
        "A threshold is fixed before the runs that certify it. These are the claims whose condition was",
        f"changed, or that were restated or no longer asserted, after a value had been seen ({len(changes)}),",
        "oldest first, with the condition before and after.",
        "",
        '<div class="wganbook-changes"><table class="wganbook-changes-table">',
        "<thead><tr><th>claim</th><th>before</th><th>after</th><th>when</th><th>why</th></tr></thead>",
        "<tbody>",
        *rows,
        "</tbody></table></div>",
        "",
    ]


def render_page(
    ledger: Mapping[str, Any],
    where: Optional[Mapping[str, Mapping[str, str]]] = None,
    changes: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The Markdown of the appendix page "Claims" (``book/claims.md``) for a ledger.

    Each claim is a card (``div.wganbook-claim`` with the id :func:`anchor` gives, which the
    chapter's check mark links to): its statement, a line with the stored value, the minimum –
    median – maximum over the seeds and for how many runs it held, its positive control and its arms
    where it has them, its held-out seeds where the ledger has them (``"holdout"``, for the same
    digest), and a line with its id, the link back to the section that makes it (``where``,
    :func:`claim_sections`) and its source. A chapter's claims are grouped by kind (``KINDS``:
    findings, sanity checks, identities), each group in one ``div.wganbook-claims``; the page's
    introduction counts each kind; its reported numbers are ``div.wganbook-report`` cards (with the
    paper's value where there is one) in a ``div.wganbook-reports``. ``changes``
    (:func:`load_threshold_changes`) become the closing section. The page's style is
    ``book/_ext/static/claims.css``.
    """
    where = where or {}
    seeds = ", ".join(str(s) for s in ledger["seeds"])
    n_seeds = len(ledger["seeds"])
    claims_all = list(ledger["claims"])
    n_claims = len(claims_all)
    n_robust = sum(1 for c in claims_all if c["held"] == c["runs"] == n_seeds)
    counts = {k: sum(1 for c in claims_all if c.get("kind") == k) for k in (*KINDS, None)}
    findings = [c for c in claims_all if c.get("kind") == "finding"]
    n_findings_robust = sum(1 for c in findings if c["held"] == c["runs"] == n_seeds)
    n_controls = sum(1 for c in claims_all if c.get("control"))
    n_arms = sum(1 for c in claims_all if c.get("arms"))
    held_claims = _held_out(ledger, "claims")
    held_reports = _held_out(ledger, "reported")
    holdout = ledger.get("holdout") or {}
    if holdout.get("seeds"):
        hseeds = ", ".join(str(s) for s in holdout["seeds"])
        looked = [held_claims(c)["entry"] for c in findings]
        ran = [e for e in looked if e is not None]
        n_held_all = sum(1 for e in ran if e["held"] == e["runs"] == len(holdout["seeds"]))
        holdout_lines = [
            f"Then `make claims-holdout` ran every chapter again for the held-out seeds {hseeds}, which played",
            "no part in choosing any threshold: "
            + (
                f"{n_held_all} of the {len(findings)} findings hold on all of them"
                + (
                    f" ({len(findings) - len(ran)} not yet run for the current version of their chapter)"
                    if len(ran) < len(findings)
                    else ""
                )
                + "."
            ),
            "",
        ]
    else:
        holdout_lines = [
            "The held-out seeds 5–9 (`make claims-holdout`) have not been run for this ledger yet.",
            "",
        ]
    lines = [
        "(claims)=",
        "# Claims",
        "",
        "This appendix is how the book checks itself. Every result a chapter **asserts** is a named claim:",
        "one call in the chapter's notebook gives it an id, a kind, a one-line statement and its measured value,",
        "and fails the notebook when it does not hold. In the chapter, a claim shows only as a small check mark",
        "(✓) that links to its entry here; each entry links back to the section that makes the claim.",
        "",
        "Claims are of three kinds, and only the first is evidence:",
        "",
        *(f"- **{_KIND_TITLES[k]}** ({counts[k]}): {KINDS[k]}." for k in KINDS),
        *([f"- **Not yet classified** ({counts[None]})."] if counts[None] else []),
        "",
        "Sanity checks and identities keep guarding the code each time a chapter is replayed; the findings are",
        "what the book has measured. A finding that something fails or tells nothing carries a **positive",
        "control**: the same measurement where the mechanism is absent, which must pass "
        f"({n_controls} claims have one). A comparison records **both arms** ({n_arms} claims).",
        "",
        f"The ledger below was made by `make claims`: each chapter ran with its quick preset for seeds {seeds}",
        "(seed 0 is the stored notebook; the other runs set `seed` and shift every list of seeds to unused",
        "seeds), and each claim's value was recorded in every run. Only claims that hold for all five runs",
        "are asserted in the book; the numbers it shows without asserting them are listed after the claims,",
        "beside the papers' values where the papers give one.",
        "",
        f"{n_robust} of {n_claims} asserted claims hold for all {n_seeds} seeds "
        f"({n_findings_robust} of the {counts['finding']} findings).",
        *holdout_lines,
        "The values come out of training on a CPU and change from machine to machine: another CPU or torch",
        "build rounds differently, which can move a stored value by as much as the spread between seeds.",
        "The book's tests therefore replay every chapter twice, as stored and with torch's unvectorised",
        "kernels (`ATEN_CPU_CAPABILITY=default`), and every asserted claim must hold in both replays.",
        *(
            [
                "Thresholds are fixed before the runs that certify them; the few that changed after a value had",
                "been seen are listed at the end, in {ref}`claims-threshold-changes`.",
            ]
            if changes
            else []
        ),
        "",
        "Each entry gives the claim in words; beneath it, its value in the stored run (seed 0), the smallest,",
        "median and largest value over the seeds and for how many runs it held, its positive control and",
        "both arms where it has them, and the held-out seeds; then its id, the section that makes it and",
        "its source.",
        "",
    ]
    chapters: List[str] = []
    for entry in list(ledger["claims"]) + list(ledger["reported"]):
        if entry["chapter"] not in chapters:
            chapters.append(entry["chapter"])
    for chapter in sorted(chapters):
        lines += [f"## {_title(chapter)}", ""]
        claims = [c for c in ledger["claims"] if c["chapter"] == chapter]
        for k in (*KINDS, None):
            group = [c for c in claims if c.get("kind") == k]
            if group:
                lines += [f"{_KIND_TITLES[k]}:", ""]
                lines += _entry_list(group, "claim", seeds, where, held_claims)
        reported = [r for r in ledger["reported"] if r["chapter"] == chapter]
        if reported:
            lines += ["Reported, not asserted:", ""]
            lines += _entry_list(reported, "report", seeds, where, held_reports)
    lines += _changes_section(changes)
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
# running the ledger
# ---------------------------------------------------------------------------------------------
def _chapters(book_dir: Path, only: Optional[Iterable[str]]) -> List[Path]:

    return chapter_notebooks(book_dir, only)


def load_ledger(path: Union[str, os.PathLike]) -> dict:
    """Read ``claims.json``; a missing file is an empty ledger."""
    path = Path(path)
    if not path.exists():
        return {"seeds": list(LEDGER_SEEDS), "claims": [], "reported": []}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a valid ledger ({exc}); delete it and run `make claims ARGS=--all`") from None


def stale_chapters(ledger: Mapping[str, Any], notebooks: Iterable[Path], package=None) -> List[str]:
    """Chapters (notebook stems) whose current digest differs from the ledger's (or are missing).

    ``package``: the package folder or a :class:`wganbook.bookkit.digest.PackageIndex` (default: the
    imported ``wganbook``).
    """
    index = package if isinstance(package, PackageIndex) else PackageIndex(package)
    recorded: Dict[str, set] = {}
    for entry in list(ledger.get("claims", [])) + list(ledger.get("reported", [])):
        recorded.setdefault(entry["chapter"], set()).add(entry["digest"])
    stale = []
    for path in notebooks:
        nb = json.loads(Path(path).read_text())
        has_records = any(collect(nb).values())
        current = notebook_digest(nb, index)
        if has_records and recorded.get(path.stem) != {current}:
            stale.append(path.stem)
        elif not has_records and path.stem in recorded:
            stale.append(path.stem)
    return stale


def _run_seed(path: Path, seed: int, out_dir: Path, log: Callable[[str], None]) -> Dict[str, List[dict]]:

    params = seed_parameters(chapter_key(path), seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{path.stem}.seed{seed}.ipynb"
    env = dict(
        os.environ,
        **{
            MODE_ENV: "record",
            "WGANBOOK_WORKERS": os.environ.get("WGANBOOK_WORKERS", "1"),
            "TQDM_DISABLE": "1",
            "PYTHONHASHSEED": "0",
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        },
    )
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        json.dump(params, fh)  # JSON is YAML
        param_file = fh.name
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "papermill",
                str(path),
                str(out),
                "-f",
                param_file,
                "--cwd",
                str(path.parent),
                "-k",
                "python3",
                "--no-progress-bar",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(param_file)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"{path.stem} with {params} failed (executed copy: {out}):\n{tail}")
    log(f"  {path.stem} seed {seed}: {time.perf_counter() - start:.0f} s")
    return collect(out)


def _summary_path(out_dir: Path, stem: str) -> Path:
    return Path(out_dir) / f"{stem}.summary.json"


def run_ledger(
    book_dir: Union[str, os.PathLike] = "book",
    *,
    chapters: Optional[Iterable[str]] = None,
    everything: bool = False,
    jobs: int = 2,
    out_dir: Union[str, os.PathLike, None] = None,
    seeds: Optional[Sequence[int]] = None,
    holdout: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Run the stale chapters for the ledger's seeds and write ``claims.json`` and ``claims.md``.

    A chapter is run when its digest differs from the one in ``claims.json`` and no summary with
    the current digest is cached in ``out_dir`` (``<chapter>.summary.json``, written after each
    chapter's runs, so that an interrupted ledger, or chapters run one at a time, are not redone).
    The ledger file is rewritten under a lock, so several ``claims --chapters`` may run at once.

    With ``holdout=True`` the chapters run for the held-out seeds (:data:`HOLDOUT_SEEDS`, none of
    them the stored run) instead, and the results go into the ledger's ``"holdout"`` part (with
    the digest each chapter ran with), the certified part untouched; a chapter runs when its
    held-out results are missing or were made with another digest.

    Parameters
    ----------
    book_dir : path
        The book folder (holds the stored notebooks, ``claims.json`` and ``claims.md``).
    chapters : iterable of str, optional
        Chapter keys or numbers to (re)run (default: every stale chapter).
    everything : bool
        Re-run every chapter with records, stale or not, cached or not.
    jobs : int
        Notebooks executed at a time (each kernel on one torch thread, ``WGANBOOK_WORKERS=1``).
    out_dir : path, optional
        Where the executed copies and the per-chapter summaries go (default ``runs/claims``, or
        ``runs/claims-holdout`` for the held-out seeds).
    seeds : sequence of int, optional
        Seeds of the ledger (default :data:`LEDGER_SEEDS`; must start with 0, the stored run), or of
        the held-out run (default :data:`HOLDOUT_SEEDS`; must not include 0).
    holdout : bool
        Run the held-out seeds.

    Returns
    -------
    dict
        The ledger written.
    """

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if not isinstance(holdout, bool):
        raise TypeError(f"holdout must be a bool, got {holdout!r}")
    seeds = list(seeds if seeds is not None else (HOLDOUT_SEEDS if holdout else LEDGER_SEEDS))
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative integers, got {seeds}")
    if holdout:
        if not seeds or 0 in seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"held-out seeds must be distinct and must not include 0 (the stored run), got {seeds}")
        clash = sorted(set(seeds) & set(LEDGER_SEEDS))
        if clash:
            raise ValueError(f"held-out seeds must not be ledger seeds {list(LEDGER_SEEDS)}; got {clash}")
    elif not seeds or seeds[0] != 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must start with 0 (the stored run) and be distinct, got {seeds}")
    book_dir = Path(book_dir)
    out_dir = Path(out_dir if out_dir is not None else ("runs/claims-holdout" if holdout else "runs/claims"))
    notebooks = _chapters(book_dir, None)
    selected = {p.stem for p in _chapters(book_dir, chapters)} if chapters else None
    index = PackageIndex()
    for path in notebooks:
        reason = stale_reason(path, index)
        if reason and (selected is None or path.stem in selected):
            raise ValueError(f"{reason}; run `make execute` first (the ledger's seed 0 is the stored run)")
    by_stem = {p.stem: p for p in notebooks}
    digests = {stem: notebook_digest(json.loads(p.read_text()), index) for stem, p in by_stem.items()}
    ledger = load_ledger(book_dir / "claims.json")
    if holdout:
        done = (ledger.get("holdout") or {}).get("digests", {})
        if (ledger.get("holdout") or {}).get("seeds") != seeds:
            done = {}
    if everything:
        todo = [p.stem for p in notebooks]
    elif selected is not None:
        todo = sorted(selected)
    elif holdout:
        todo = [p.stem for p in notebooks if done.get(p.stem) != digests[p.stem]]
    else:
        todo = stale_chapters(ledger, notebooks, index)
    stored = {stem: collect(by_stem[stem]) for stem in todo}
    todo = [stem for stem in todo if any(stored[stem].values())]
    fresh: Dict[str, Dict[str, list]] = {}
    for stem in list(todo):
        cache = _summary_path(out_dir, stem)
        if not everything and cache.exists():
            cached = json.loads(cache.read_text())
            if cached.get("digest") == digests[stem] and cached.get("seeds") == seeds:
                fresh[stem] = cached["summary"]
                todo.remove(stem)
    run_seeds = seeds if holdout else seeds[1:]
    log(
        f"ledger{' (held-out seeds)' if holdout else ''}: {len(todo)} chapter(s) to run for seeds {run_seeds}: "
        + (", ".join(todo) or "none")
        + (f" ({', '.join(sorted(fresh))} from the cache)" if fresh else "")
    )
    tasks = [(stem, s) for stem in todo for s in run_seeds]
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {task: pool.submit(_run_seed, by_stem[task[0]], task[1], out_dir, log) for task in tasks}
        for stem in todo:
            runs = {} if holdout else {0: stored[stem]}
            runs.update({s: futures[stem, s].result() for s in run_seeds})
            fresh[stem] = (summarise_holdout if holdout else summarise)(stem, runs, digests[stem])
            atomic_write(
                _summary_path(out_dir, stem),
                json.dumps({"digest": digests[stem], "seeds": seeds, "summary": fresh[stem]}, ensure_ascii=False),
            )
    wall = round(time.perf_counter() - start, 1)
    with _locked(book_dir / ".claims.lock"):
        ledger = load_ledger(book_dir / "claims.json")  # re-read: another run may have written it
        part = (ledger.get("holdout") or {}) if holdout else ledger
        if holdout and part.get("seeds") != seeds:
            part = {}
        part_digests = dict(part.get("digests", {})) if holdout else {}
        per_chapter: Dict[str, Dict[str, list]] = {}
        for kind in ("claims", "reported"):
            for entry in part.get(kind, []):
                if entry["chapter"] in by_stem and entry["chapter"] not in fresh:
                    per_chapter.setdefault(entry["chapter"], {"claims": [], "reported": []})[kind].append(entry)
        per_chapter.update(fresh)
        built = build_ledger(per_chapter, seeds)
        times = dict(part.get("wall_time_s", {})) if isinstance(part.get("wall_time_s"), dict) else {}
        times.update({stem: wall for stem in todo})
        built["wall_time_s"] = {k: times[k] for k in sorted(times) if k in by_stem}
        if holdout:
            part_digests.update({stem: digests[stem] for stem in fresh})
            built["digests"] = {k: part_digests[k] for k in sorted(part_digests) if k in by_stem}
            new = dict(ledger)
            new["holdout"] = built
        else:
            new = built
            if ledger.get("holdout"):
                new["holdout"] = ledger["holdout"]
        atomic_write(book_dir / "claims.json", json.dumps(new, indent=1, ensure_ascii=False) + "\n")
        atomic_write(
            book_dir / "claims.md",
            render_page(new, claim_sections(notebooks), load_threshold_changes(book_dir)),
        )
    log(
        f"ledger{' (held-out seeds)' if holdout else ''} written: {len(built['claims'])} claims, "
        f"{len(built['reported'])} reported numbers ({wall:.0f} s for this run)"
    )
    return new


class _locked:
    """An exclusive ``fcntl`` lock on a file for the duration of a ``with`` block."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        import fcntl

        self.fh = open(self.path, "a")
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
        return False


def add_claims_subcommand(subparsers) -> None:
    """Register ``claims``: build the ledger of the book's claims (see :func:`run_ledger`)."""
    p = subparsers.add_parser(
        "claims",
        help="run the chapters for seeds 0-4 and write book/claims.json and book/claims.md",
        description="Build the ledger of the book's claims: every chapter whose digest changed runs "
        "with its quick preset for seeds 1-4 (seed 0 is the stored notebook).",
    )
    p.add_argument("--all", action="store_true", help="re-run every chapter, stale or not")
    p.add_argument(
        "--page",
        action="store_true",
        help="only write book/claims.md again from book/claims.json (after the chapters' headings changed)",
    )
    p.add_argument(
        "--holdout",
        action="store_true",
        help="run the held-out seeds 5-9 instead and record them in claims.json's holdout part "
        "(chapters whose held-out runs are missing or were made with another digest)",
    )
    p.add_argument("--chapters", nargs="+", metavar="N", help="only these chapters (e.g. 04 ch06)")
    p.add_argument("--jobs", type=int, default=2, help="notebooks executed at a time (default 2)")
    p.add_argument("--book-dir", default="book", help="the book folder (default: book)")
    p.add_argument(
        "--out",
        default=None,
        help="where the executed copies go (default: runs/claims, or runs/claims-holdout with --holdout)",
    )
    p.set_defaults(func=_run_claims_command)


def write_page(book_dir: Union[str, os.PathLike] = "book") -> str:
    """Write the appendix page ``claims.md`` again from ``claims.json`` and the stored chapters (no run).

    Returns
    -------
    str
        The page written.
    """
    book_dir = Path(book_dir)
    if not (book_dir / "claims.json").exists():
        raise ValueError(f"{book_dir / 'claims.json'} does not exist; run `make claims` first")
    page = render_page(
        load_ledger(book_dir / "claims.json"),
        claim_sections(_chapters(book_dir, None)),
        load_threshold_changes(book_dir),
    )
    atomic_write(book_dir / "claims.md", page)
    return page


def _run_claims_command(args) -> int:
    try:
        if args.page:
            write_page(args.book_dir)
            return 0
        run_ledger(
            args.book_dir,
            chapters=args.chapters,
            everything=args.all,
            jobs=args.jobs,
            out_dir=args.out,
            holdout=args.holdout,
        )
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0

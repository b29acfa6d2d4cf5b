"""Named claims, their ledger, and the freshness of the stored notebooks (digests)."""

import json
from pathlib import Path

import nbformat
import pytest

from wganbook.bookkit import claims, digest
from wganbook.bookkit.claims import claim, report

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))


# ---------------------------------------------------------------------------------------------
# claim / report
# ---------------------------------------------------------------------------------------------
def test_claim_that_holds_returns_its_record(monkeypatch):
    monkeypatch.delenv(claims.MODE_ENV, raising=False)
    rec = claim(
        "ch4.gp-8gaussians-quality",
        "GP's share >= 0.5",
        value=0.83,
        holds=True,
        kind="finding",
        details={"per seed": [0.83, 0.9]},
        source="WGAN-GP (Gulrajani et al. 2017)",
    )
    assert rec == {
        "id": "ch4.gp-8gaussians-quality",
        "kind": "finding",
        "statement": "GP's share >= 0.5",
        "value": 0.83,
        "held": True,
        "details": {"per seed": [0.83, 0.9]},
        "source": "WGAN-GP (Gulrajani et al. 2017)",
    }


def test_failing_claim_raises_with_statement_and_value(monkeypatch):
    monkeypatch.delenv(claims.MODE_ENV, raising=False)
    with pytest.raises(
        AssertionError,
        match=r"ch4\.gp-8gaussians-quality does not hold: "
        r"GP's share >= 0\.5 \(measured value 0\.42",
    ):
        claim("ch4.gp-8gaussians-quality", "GP's share >= 0.5", value=0.42, holds=lambda v: v >= 0.5, kind="finding")


def test_record_mode_records_a_failure_without_raising(monkeypatch):
    monkeypatch.setenv(claims.MODE_ENV, "record")
    rec = claim("ch1.x", "x > 1", value=0.5, holds=lambda v: v > 1, kind="finding")
    assert rec["held"] is False and rec["value"] == 0.5
    monkeypatch.setenv(claims.MODE_ENV, "loud")
    with pytest.raises(ValueError, match="WGANBOOK_CLAIMS must be one of: assert, record"):
        claim("ch1.x", "x > 1", value=2.0, holds=True, kind="finding")


@pytest.mark.parametrize("bad_id", ["ch4", "4.gp", "ch4.GP", "ch4.gp_share", "ch4.-gp", "chX.gp", 7])
def test_malformed_ids_are_refused(bad_id):
    with pytest.raises(ValueError, match="claim id must look like"):
        claim(bad_id, "s", value=1.0, holds=True, kind="finding")


def test_values_and_conditions_are_checked():
    with pytest.raises(TypeError, match="value must be a real number"):
        claim("ch1.x", "s", value=[1.0], holds=True, kind="finding")
    with pytest.raises(TypeError, match="value must be a real number"):
        claim("ch1.x", "s", value=True, holds=True, kind="finding")
    with pytest.raises(TypeError, match="holds must be a bool"):
        claim("ch1.x", "s", value=1.0, holds="yes", kind="finding")
    with pytest.raises(ValueError, match="statement must be a non-empty one-line string"):
        claim("ch1.x", "two\nlines", value=1.0, holds=True, kind="finding")
    rec = claim("ch1.x", "s", value=float("inf"), holds=True, kind="finding")
    assert rec["value"] == "inf"  # JSON has no infinity


def test_display_keeps_the_value_out_of_the_compared_text():
    rec = claims._Record("claim", {"id": "ch1.x", "value": 0.123456}, "✔ claim ch1.x: s", "<p>0.123</p>")
    data, meta = rec._repr_mimebundle_()
    assert data["text/plain"] == "✔ claim ch1.x: s" and "0.123" not in data["text/plain"]
    assert meta == {"wganbook": {"claim": {"id": "ch1.x", "value": 0.123456}}}


def test_report_records_the_papers_value():
    rec = report("ch5.fid-cifar10", "FID on CIFAR-10", value=40.5, paper=18.1, source="WGAN-div")
    assert rec["paper"] == 18.1 and rec["value"] == 40.5 and "held" not in rec


def test_fmt_three_significant_digits():
    assert [claims.fmt(v) for v in (0.83312, 4.8049, 1234.4, 0, 1e-5, float("inf"), None, "inf")] == [
        "0.833",
        "4.8",
        "1234",
        "0",
        "1e-05",
        "∞",
        "–",
        "∞",
    ]


# ---------------------------------------------------------------------------------------------
# collecting and summarising
# ---------------------------------------------------------------------------------------------
def _output(kind, rec):
    return {"output_type": "display_data", "data": {"text/plain": "x"}, "metadata": {"wganbook": {kind: rec}}}


def _nb_with(records):
    return {
        "cells": [
            {
                "cell_type": "code",
                "source": "",
                "metadata": {},
                "outputs": [_output(kind, rec) for kind, rec in records],
            }
        ]
    }


def test_collect_finds_claims_and_reports_and_refuses_duplicates():
    c = {"id": "ch1.a", "statement": "a", "value": 1.0, "held": True}
    r = {"id": "ch1.b", "statement": "b", "value": 2.0, "paper": None}
    assert claims.collect(_nb_with([("claim", c), ("reported", r)])) == {"claims": [c], "reported": [r]}
    with pytest.raises(ValueError, match="recorded twice"):
        claims.collect(_nb_with([("claim", c), ("claim", c)]))


def test_seed_parameters_shift_every_seed_list_to_unused_seeds():
    base = claims.seed_parameters("ch04", 0)
    k = len(base["seeds"])
    runs = [claims.seed_parameters("ch04", s)["seeds"] for s in range(5)]
    assert all(len(r) == k for r in runs)
    assert len({s for r in runs for s in r}) == 5 * k  # disjoint
    assert claims.seed_parameters("ch04", 3)["seed"] == 3
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        claims.seed_parameters("ch04", -1)


def test_summarise_min_median_max_and_held():
    def run(v, held):
        return {
            "claims": [
                {"id": "ch1.a", "kind": "finding", "statement": "a", "value": v, "held": held, "source": "this book"}
            ],
            "reported": [{"id": "ch1.r", "statement": "r", "value": 10 * v, "paper": 3.0}],
        }

    runs = {0: run(0.6, True), 1: run(0.4, False), 2: run(0.9, True), 3: run(0.7, True), 4: run(0.5, True)}
    out = claims.summarise("01_distances", runs, "abc")
    (c,), (r,) = out["claims"], out["reported"]
    assert (c["stored"], c["min"], c["median"], c["max"], c["held"], c["runs"]) == (0.6, 0.4, 0.6, 0.9, 4, 5)
    assert c["values"] == {"0": 0.6, "1": 0.4, "2": 0.9, "3": 0.7, "4": 0.5} and c["digest"] == "abc"
    assert (r["min"], r["median"], r["max"], r["paper"]) == (4.0, 6.0, 9.0, 3.0)
    page = claims.render_page(claims.build_ledger({"01_distances": out}))
    assert c["kind"] == "finding"
    assert '<div class="wganbook-claim wganbook-claim-weak wganbook-kind-finding" id="claim-ch1-a">' in page
    assert '<div class="wganbook-claim-statement">a</div>' in page and ">4/5 held</span>" in page
    assert 'seeds <span class="wganbook-num">0.4</span> – <span class="wganbook-num">0.6</span> – ' in page
    assert "0 of 1 asserted claims hold for all 5 seeds" in page
    assert "## Chapter 1: distances" in page and '<code class="wganbook-claim-id">ch1.r</code>' in page


def _tiny_chapter(folder: Path) -> Path:
    """A chapter with one claim that holds for seeds 0-1 and fails for seed 2, and one report."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('preset = "quick"\nseed = 0\ndevice = "auto"\nresults_dir = "../results"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "from wganbook.bookkit.claims import claim, report\n"
            "claim('ch8.small-seed', 'the seed is below 2', value=seed, holds=seed < 2, kind='finding')\n"
            "report('ch8.twice', 'twice the seed', value=2 * seed, paper=1.0)"
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "08_tiny.ipynb"
    nbformat.write(nb, path)
    return path


def test_ledger_end_to_end_on_a_tiny_chapter(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    path = _tiny_chapter(tmp_path / "book")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    digest.stamp_digest(nb)
    nbformat.write(nb, path)
    assert digest.stale_reason(path) is None
    logs = []
    ledger = claims.run_ledger(tmp_path / "book", seeds=(0, 1, 2), jobs=2, out_dir=tmp_path / "runs", log=logs.append)
    (c,), (r,) = ledger["claims"], ledger["reported"]
    assert c["held"] == 2 and c["runs"] == 3 and c["values"] == {"0": 0, "1": 1, "2": 2}
    assert (r["min"], r["max"], r["paper"]) == (0, 4, 1.0)
    assert c["digest"] == r["digest"] == digest.notebook_digest(path)  # the one digest of the chapter
    written = json.loads((tmp_path / "book" / "claims.json").read_text())
    assert written["claims"] == ledger["claims"]
    page = (tmp_path / "book" / "claims.md").read_text()
    assert page == claims.render_page(written, claims.claim_sections([path]))
    # each row has the anchor the chapter's check mark links to, and links back to the claim's place
    assert (
        f'<div class="wganbook-claim wganbook-claim-weak wganbook-kind-finding" id="{claims.anchor(c["id"])}">' in page
    )
    assert f'href="{path.stem}.html#{claims.anchor(c["id"], "check")}"' in page
    assert f'href="{path.stem}.html#{claims.anchor(r["id"], "report")}"' in page
    # incremental: nothing changed, nothing runs
    logs.clear()
    claims.run_ledger(tmp_path / "book", seeds=(0, 1, 2), out_dir=tmp_path / "runs", log=logs.append)
    assert any("0 chapter(s) to run" in line for line in logs)
    assert claims.stale_chapters(written, [path]) == []


def test_ledger_refuses_a_stale_notebook(tmp_path):
    _tiny_chapter(tmp_path / "book")
    with pytest.raises(ValueError, match="08_tiny.ipynb has no digest.*make execute"):
        claims.run_ledger(tmp_path / "book", out_dir=tmp_path / "runs", log=lambda s: None)
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        claims.run_ledger(tmp_path / "book", jobs=0)
    with pytest.raises(ValueError, match="seeds must start with 0"):
        claims.run_ledger(tmp_path / "book", seeds=(1, 2))


# ---------------------------------------------------------------------------------------------
# the ledger follows the chapter's scoped digest (tests/test_digest.py tests the digest itself)
# ---------------------------------------------------------------------------------------------
def test_stale_chapters_follow_the_code_cells_and_only_the_imported_modules(tmp_path):
    path = _tiny_chapter(tmp_path / "book")
    nb = json.loads(path.read_text())
    entry = {"id": "ch8.small-seed", "chapter": path.stem, "digest": digest.notebook_digest(nb)}
    nb["cells"][1]["outputs"] = [
        {
            "output_type": "display_data",
            "data": {"text/plain": "x"},
            "metadata": {"wganbook": {"claim": {"id": "ch8.small-seed"}}},
        }
    ]
    path.write_text(json.dumps(nb))
    ledger = {"claims": [entry], "reported": []}
    assert claims.stale_chapters(ledger, [path]) == []
    nb["cells"][1]["source"] = "".join(nb["cells"][1]["source"]).replace("below 2", "below 3")
    path.write_text(json.dumps(nb))
    assert claims.stale_chapters(ledger, [path]) == [path.stem]
    # the chapter imports the claims module: its modules are in the digest, an unrelated one is not
    modules = digest.imported_modules(nb)
    assert "wganbook.bookkit.claims" in modules and "wganbook.dirac" not in modules


# ---------------------------------------------------------------------------------------------
# the book itself
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_stored_notebook_is_fresh(path):
    reason = digest.stale_reason(path)
    assert reason is None, reason


def test_ledger_covers_every_claim_of_the_book_and_is_current():
    ledger = claims.load_ledger(BOOK / "claims.json")
    assert ledger["seeds"] == list(claims.LEDGER_SEEDS)
    in_ledger = {(e["chapter"], e["id"]) for e in ledger["claims"] + ledger["reported"]}
    problems = []
    for path in CHAPTERS:
        found = claims.collect(path)
        for rec in found["claims"] + found["reported"]:
            if (path.stem, rec["id"]) not in in_ledger:
                problems.append(f"{rec['id']} of {path.name} is missing from book/claims.json")
    problems += [
        f"book/claims.json is stale for {stem}: run `make claims`" for stem in claims.stale_chapters(ledger, CHAPTERS)
    ]
    assert not problems, "; ".join(problems)


def test_every_asserted_claim_holds_for_all_ledger_seeds():
    ledger = claims.load_ledger(BOOK / "claims.json")
    weak = [
        f"{c['id']} held {c['held']}/{c['runs']}"
        for c in ledger["claims"]
        if not c["held"] == c["runs"] == len(ledger["seeds"])
    ]
    assert not weak, "asserted claims must hold for 5/5 seeds (restate, strengthen or report them): " + ", ".join(weak)


def test_claims_page_renders_the_ledger():
    ledger = claims.load_ledger(BOOK / "claims.json")
    where = claims.claim_sections(sorted(BOOK.glob("0*.ipynb")))
    page = claims.render_page(ledger, where, claims.load_threshold_changes(BOOK))
    assert (BOOK / "claims.md").read_text() == page, "run `make claims` (or `python -m wganbook claims --page`)"
    # every claim and reported number of the ledger is reachable from its chapter and back
    missing = [e["id"] for e in ledger["claims"] + ledger["reported"] if e["id"] not in where]
    assert not missing, f"ledger entries no chapter records: {missing}"


def test_a_claim_shows_only_a_check_mark_that_links_to_its_row():
    rich = claims._mark("ch4.gp-quality", "WGAN-GP < 3 std", True)
    assert 'href="claims.html#claim-ch4-gp-quality"' in rich and 'id="check-ch4-gp-quality"' in rich
    assert rich.endswith(">✓</a>") and "&lt; 3 std" in rich  # the statement only in the tooltip, escaped
    assert claims._mark("ch4.x", "s", False).endswith(">✘</a>")


def test_claim_sections_finds_the_heading_above_each_record(tmp_path):
    rec = {"id": "ch1.a", "statement": "s", "value": 1.0, "held": True, "details": {}, "source": "this book"}
    out = {
        "output_type": "display_data",
        "data": {"text/plain": "x"},
        "metadata": {claims.METADATA_KEY: {"claim": rec}},
    }
    rep = dict(rec, id="ch1.b")
    out2 = {
        "output_type": "display_data",
        "data": {"text/plain": "y"},
        "metadata": {claims.METADATA_KEY: {"reported": rep}},
    }
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": "# Title\n\ntext"},
            {"cell_type": "code", "source": "", "outputs": [out]},
            {"cell_type": "markdown", "source": ["## First\n", "### The slope law\n"]},
            {"cell_type": "code", "source": "", "outputs": [out2]},
        ]
    }
    path = tmp_path / "01_distances.ipynb"
    path.write_text(json.dumps(nb))
    where = claims.claim_sections([path])
    assert where == {
        "ch1.a": {"page": "01_distances.html", "section": "Chapter 1: distances"},
        "ch1.b": {"page": "01_distances.html", "section": "The slope law"},
    }


def test_the_returned_record_displays_nothing_as_a_cells_last_value():
    rec = claim("ch1.x", "s", value=1.5, holds=True, kind="sanity", quiet=True)
    assert rec == {
        "id": "ch1.x",
        "kind": "sanity",
        "statement": "s",
        "value": 1.5,
        "held": True,
        "details": {},
        "source": "this book",
    }
    assert rec._ipython_display_() is None  # IPython calls this instead of printing the dict


def test_every_claim_declares_its_kind():
    """A claim without a kind, or with another kind, is refused before anything is recorded; the record keeps it."""
    with pytest.raises(TypeError, match="kind"):
        claim("ch1.x", "s", value=1.0, holds=True)  # the missing keyword is the point
    with pytest.raises(ValueError, match="kind must be one of 'finding', 'sanity', 'identity'"):
        claim("ch1.x", "s", value=1.0, holds=True, kind="result")
    for kind in ("finding", "sanity", "identity"):
        assert claim("ch1.x", "s", value=1.0, holds=True, kind=kind, quiet=True)["kind"] == kind


def test_the_ledger_classifies_every_claim():
    """Every claim of the committed ledger has a kind, and the appendix groups and counts them."""
    from wganbook.bookkit.claims import KINDS, load_ledger, render_page

    ledger = load_ledger(Path(__file__).resolve().parents[1] / "book" / "claims.json")
    kinds = [c.get("kind") for c in ledger["claims"]]
    assert kinds and all(k in KINDS for k in kinds), sorted({str(k) for k in kinds})
    page = render_page(ledger)
    for k, title in (("finding", "Findings"), ("sanity", "Sanity checks"), ("identity", "Identities")):
        assert f"**{title}** ({kinds.count(k)})" in page


# ---------------------------------------------------------------------------------------------
# positive controls, both arms, held-out seeds, changed thresholds
# ---------------------------------------------------------------------------------------------
def test_a_claim_with_a_positive_control_holds_only_when_the_control_does(monkeypatch):
    monkeypatch.delenv(claims.MODE_ENV, raising=False)
    ctrl = {"statement": "the penalised critic is along the rays", "value": 0.98, "holds": True}
    rec = claim(
        "ch3.x", "clipping is not along the rays", value=0.6, holds=True, kind="finding", control=ctrl, quiet=True
    )
    assert rec["held"] and rec["control"] == {"statement": ctrl["statement"], "value": 0.98, "held": True}
    bad = dict(ctrl, value=0.3, holds=False)
    with pytest.raises(AssertionError, match="positive control FAILED: the penalised critic.*0.3"):
        claim("ch3.x", "clipping is not along the rays", value=0.6, holds=True, kind="finding", control=bad, quiet=True)
    monkeypatch.setenv(claims.MODE_ENV, "record")
    rec = claim(
        "ch3.x", "clipping is not along the rays", value=0.6, holds=True, kind="finding", control=bad, quiet=True
    )
    assert rec["held"] is False and rec["control"]["held"] is False


@pytest.mark.parametrize(
    "control, match",
    [
        ({"statement": "s", "value": 1.0}, "exactly the keys statement, value, holds"),
        ({"statement": "s", "value": 1.0, "holds": True, "extra": 1}, "exactly the keys"),
        ([1, 2, 3], "exactly the keys"),
        ({"statement": "", "value": 1.0, "holds": True}, "control statement must be a non-empty"),
        ({"statement": "s", "value": "1", "holds": True}, "control value must be a real number"),
        ({"statement": "s", "value": 1.0, "holds": 1}, "control holds must be a bool"),
    ],
)
def test_malformed_controls_are_refused(control, match):
    with pytest.raises((ValueError, TypeError), match=match):
        claim("ch3.x", "s", value=1.0, holds=True, kind="finding", control=control, quiet=True)


def test_both_arms_are_recorded_and_checked():
    rec = claim(
        "ch6.x", "CT beats GP", value=-0.3, holds=True, kind="finding", arms={"GP": 40.0, "CT": 28.0}, quiet=True
    )
    assert rec["arms"] == {"GP": 40.0, "CT": 28.0}
    for arms in ({"GP": 1.0}, {}, [("GP", 1.0), ("CT", 2.0)]):
        with pytest.raises(ValueError, match="arms must be a mapping of at least two"):
            claim("ch6.x", "s", value=1.0, holds=True, kind="finding", arms=arms, quiet=True)
    with pytest.raises(TypeError, match="arm 'CT' must be a real number"):
        claim("ch6.x", "s", value=1.0, holds=True, kind="finding", arms={"GP": 1.0, "CT": None}, quiet=True)


def test_summarise_spreads_the_control_and_each_arm():
    def run(v, c, a, b):
        return {
            "claims": [
                {
                    "id": "ch3.a",
                    "kind": "finding",
                    "statement": "a",
                    "value": v,
                    "held": c > 0.9,
                    "control": {"statement": "ctrl", "value": c, "held": c > 0.9},
                    "arms": {"A": a, "B": b},
                }
            ],
            "reported": [],
        }

    runs = {0: run(0.5, 0.95, 1.0, 2.0), 1: run(0.6, 0.85, 3.0, 4.0), 2: run(0.4, 0.99, 2.0, 9.0)}
    (c,) = claims.summarise("03_weight_clipping", runs, "d")["claims"]
    assert c["held"] == 2
    assert c["control"] == {
        "statement": "ctrl",
        "stored": 0.95,
        "min": 0.85,
        "median": 0.95,
        "max": 0.99,
        "held": 2,
        "values": {"0": 0.95, "1": 0.85, "2": 0.99},
    }
    assert (c["arms"]["A"]["min"], c["arms"]["A"]["median"], c["arms"]["A"]["max"]) == (1.0, 2.0, 3.0)
    assert (c["arms"]["B"]["stored"], c["arms"]["B"]["median"]) == (2.0, 4.0)
    page = claims.render_page(claims.build_ledger({"03_weight_clipping": {"claims": [c], "reported": []}}, (0, 1, 2)))
    assert '<span class="wganbook-claim-label">positive control</span> ctrl' in page and "2/3 held</div>" in page
    assert '<span class="wganbook-claim-label">both arms</span>' in page and "A <strong>" in page
    assert "1 claims have one" in page and "both arms** (1 claims)" in page
    assert "have not been run for this ledger yet" in page


def test_held_out_seeds_run_into_their_own_part_of_the_ledger(tmp_path):
    from nbclient import NotebookClient

    path = _tiny_chapter(tmp_path / "book")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    digest.stamp_digest(nb)
    nbformat.write(nb, path)
    book, quiet = tmp_path / "book", (lambda s: None)
    certified = claims.run_ledger(book, seeds=(0, 1), jobs=2, out_dir=tmp_path / "runs", log=quiet)
    ledger = claims.run_ledger(book, holdout=True, seeds=(5, 6), jobs=2, out_dir=tmp_path / "held", log=quiet)
    assert ledger["claims"] == certified["claims"]  # the certified part untouched
    part = ledger["holdout"]
    (c,), (r,) = part["claims"], part["reported"]
    assert part["seeds"] == [5, 6] and part["digests"] == {path.stem: digest.notebook_digest(path)}
    assert (c["held"], c["runs"], c["values"], c["stored"]) == (0, 2, {"5": 5, "6": 6}, 5)  # seed < 2 fails
    assert (r["min"], r["max"]) == (10, 12)
    page = (book / "claims.md").read_text()
    assert (
        '<div class="wganbook-claim-heldout wganbook-claim-weak"><span class="wganbook-claim-label">held-out seeds 5–6'
        in page
    )
    assert "0 of the 1 findings hold on all of them" in page
    # incremental, and a certified run keeps the held-out part
    logs = []
    claims.run_ledger(book, holdout=True, seeds=(5, 6), out_dir=tmp_path / "held", log=logs.append)
    assert any("0 chapter(s) to run" in line for line in logs)
    again = claims.run_ledger(book, seeds=(0, 1), everything=True, out_dir=tmp_path / "runs2", log=quiet)
    assert again["holdout"] == part
    with pytest.raises(ValueError, match="must not include 0"):
        claims.run_ledger(book, holdout=True, seeds=(0, 5))
    with pytest.raises(ValueError, match="must not be ledger seeds"):
        claims.run_ledger(book, holdout=True, seeds=(4, 5))


def test_a_held_out_run_of_another_version_does_not_count():
    entry = {"id": "ch1.a", "chapter": "01_distances", "digest": "new", "held": 5, "runs": 5}
    ledger = {"holdout": {"seeds": [5, 6], "digests": {"01_distances": "old"}, "claims": [dict(entry, held=2, runs=2)]}}
    assert claims._held_out(ledger, "claims")(entry) == {"seeds": [5, 6], "entry": None}
    ledger["holdout"]["digests"]["01_distances"] = "new"
    assert claims._held_out(ledger, "claims")(entry)["entry"]["held"] == 2


def test_threshold_changes_are_checked_and_listed(tmp_path):
    assert claims.load_threshold_changes(tmp_path) == []
    change = {"id": "ch4.q", "old": ">= 0.5", "new": ">= 0.4", "commit": "abc1234", "date": "2026-11-01", "why": "w"}
    (tmp_path / claims.CHANGES_FILE).write_text(json.dumps([change]))
    assert claims.load_threshold_changes(tmp_path) == [change]
    page = claims.render_page({"seeds": [0], "claims": [], "reported": []}, {}, [change])
    assert "## Thresholds changed after their results were seen" in page and "<td>&gt;= 0.5</td>" in page
    (tmp_path / claims.CHANGES_FILE).write_text(json.dumps([{"id": "ch4.q", "old": "x"}]))
    with pytest.raises(ValueError, match="entry 0 must have exactly the keys id, old, new, commit, date, why"):
        claims.load_threshold_changes(tmp_path)


def test_every_asserted_finding_holds_on_the_held_out_seeds():
    ledger = claims.load_ledger(BOOK / "claims.json")
    part = ledger.get("holdout") or {}
    assert part.get("seeds") == list(claims.HOLDOUT_SEEDS), "run `make claims-holdout`"
    lookup = claims._held_out(ledger, "claims")
    weak = []
    for c in ledger["claims"]:
        held = lookup(c)["entry"]
        if c.get("kind") == "finding" and held is not None and not held["held"] == held["runs"] == len(part["seeds"]):
            weak.append(f"{c['id']} held {held['held']}/{held['runs']}")
    assert not weak, "asserted findings must hold on the held-out seeds too: " + ", ".join(weak)

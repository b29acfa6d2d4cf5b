"""The shape of the reading path, checked on the stored chapters (the real-browser test measures the
rendered pages): a Key idea box at the top and Takeaways at the end of chapters 1-6, no audit or history
language in their prose, the intuition figures drawn by the package and the sliders in place."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
STORY = sorted(BOOK.glob("0[1-6]_*.ipynb"))
AUDIT = re.compile(
    r"(?i)(?:previous|earlier|older) version|this version of the|claims? ledger|the ledger|another CPU's rounding|"
    r"asserted, not|reported, not asserted|WGANBOOK_CLAIMS|\bclaim `?ch\d"
)


def _markdown(path: Path) -> str:
    nb = json.loads(path.read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def _code(path: Path) -> str:
    nb = json.loads(path.read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def _measured_numbers(text: str) -> list:
    """Numbers in prose outside math: decimals, numbers of two or more digits, glued values."""
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", " ", text, flags=re.S)
    return re.findall(r"\{glue:[a-z]+\}`[^`]+`|\d+\.\d+|\b\d{2,}\b", text)


def test_six_chapters_on_the_reading_path():
    assert [p.name[:2] for p in STORY] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", STORY, ids=lambda p: p.stem)
def test_key_idea_first_takeaways_last(path):
    md = _markdown(path)
    key = re.search(r":::\{admonition\} Key idea\n(?::class:[^\n]*\n)?(.*?)\n:::", md, flags=re.S)
    assert key and key.start() < 3000, f"{path.stem}: no Key idea box near the top"
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", key.group(1).strip()) if s]
    assert 2 <= len(sentences) <= 4, f"{path.stem}: the Key idea has {len(sentences)} sentences (2-4)"
    assert not _measured_numbers(key.group(1)), f"{path.stem}: numbers in the Key idea"
    take = re.search(r"^## Takeaways\n(.*?)(?=^## |\Z)", md, flags=re.S | re.M)
    assert take, f"{path.stem}: no Takeaways section"
    bullets = re.findall(r"^[-*] ", take.group(1).split(":::{dropdown}")[0], flags=re.M)
    assert 3 <= len(bullets) <= 5, f"{path.stem}: {len(bullets)} takeaways (3-5)"
    assert not _measured_numbers(take.group(1).split(":::{dropdown}")[0]), f"{path.stem}: numbers in the Takeaways"
    exercises = re.search(r"^## Exercises", md, flags=re.M)
    if exercises:
        assert take.start() < exercises.start(), f"{path.stem}: the Takeaways come before the exercises"


@pytest.mark.parametrize("path", STORY, ids=lambda p: p.stem)
def test_no_audit_or_history_language_in_the_chapters(path):
    found = sorted(set(AUDIT.findall(_markdown(path))))
    assert not found, f"{path.stem}: audit/history words belong in the Claims appendix: {found}"


def test_the_intuition_is_drawn_and_two_figures_move():
    code = "\n".join(_code(p) for p in STORY)
    drawn = set(re.findall(r"schematics\.([a-z_]+)\(", code))
    moving = set(re.findall(r"interactive\.([a-z_]+)\(", code))
    assert len(drawn) >= 3, f"at least three schematics drawn by the package in chapters 1-6, found {drawn}"
    assert len(moving) >= 2, f"at least two interactive figures in chapters 1-6, found {moving}"


def test_intro_gives_the_answer_and_the_reading_path():
    intro = (BOOK / "intro.md").read_text()
    assert "## The answer in one paragraph" in intro and "## Reading path" in intro
    path = intro.split("## Reading path", 1)[1].split("\n## ", 1)[0]
    assert "1 → 2 → 4 → 6" in path and "03_weight_clipping" in path and "05_wgan_div" in path
    assert "08_at_scale" in path and "claims" in path

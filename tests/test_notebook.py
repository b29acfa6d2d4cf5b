"""Tests of the notebook helpers (wganbook.bookkit.notebook): formatting glued values, glue, the notebook setup."""

import builtins
import os
import re

import matplotlib

matplotlib.use("Agg")

import myst_nb  # noqa: E402  (a hard dependency of the book: jupyter-book)
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from wganbook.bookkit import notebook  # noqa: E402


@pytest.mark.parametrize(
    "value, fmt, text",
    [
        (0.123456, None, "0.123"),  # floats: 3 significant digits
        (123456.0, None, "123,000"),  # from 1 000 up: rounded to 3 digits, written out
        (3e6, None, "3,000,000"),  # not "3e+06" (nor "3000000.0")
        (52000.0, None, "52,000"),
        (999.4, None, "999"),
        (-2.5e4, None, "-25,000"),
        (1.2e-05, None, "1.2 \u00d7 10\u207b\u2075"),  # small: a power of ten
        (1e-05, None, "10\u207b\u2075"),
        (np.float32(2.0), None, "2"),  # numpy and torch scalars are unwrapped
        (torch.tensor(1.5), None, "1.5"),
        (np.int64(7), None, "7"),  # integers exactly, with separators
        (7, None, "7"),
        (100000, None, "100,000"),
        (7780000, None, "7,780,000"),
        (True, None, "True"),
        (0.25, ".1%", "25%"),  # a format spec, no stray ".0"
        (0.255, ".1%", "25.5%"),
        (1.0, ".2f", "1"),
        (0.5, ".2f", "0.50"),  # significant zeros after other digits stay
        (1.05, ".2f", "1.05"),
        (3e-5, ".0e", "3 \u00d7 10\u207b\u2075"),
        (100000, "{:,}", "100,000"),
        (0.25, "{:.2f}", "0.25"),  # or a format string
        (float("inf"), None, "\u221e"),
        ("text", None, "text"),
    ],
)
def test_format_value(value, fmt, text):
    assert notebook.format_value(value, fmt) == text


def test_glue_without_myst_nb_prints_the_text(capsys, monkeypatch):
    real_import = builtins.__import__

    def no_myst(name, *args, **kwargs):
        if name.startswith("myst_nb"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_myst)
    assert notebook.glue("w1", 1.23456) == "1.23"
    assert capsys.readouterr().out == "w1 = 1.23\n"


def test_glue_with_myst_nb_stores_text_plain_only(monkeypatch):
    seen = {}

    def fake_glue(name, variable, display=True):
        from IPython.core.formatters import format_display_data

        seen[name] = format_display_data(variable)[0]

    monkeypatch.setattr(myst_nb, "glue", fake_glue)
    assert notebook.glue("acc", 0.98765, fmt=".2f") == "0.99"
    assert seen["acc"] == {"text/plain": "'0.99'"}  # a string literal: MyST-NB literal_evals it


@pytest.mark.parametrize("value, fmt", [(100000, None), (3e6, None), (7780000, "{:,}"), (0.99, ".1%"), (1e-5, None)])
def test_glued_text_shows_as_it_is_in_the_book(monkeypatch, value, fmt):
    """What MyST-NB's {glue:text} role shows is the formatted text itself, never a tuple or a float."""
    from myst_nb.core.variables import format_plain_text

    seen = {}

    def fake_glue(name, variable, display=True):
        from IPython.core.formatters import format_display_data

        seen[name] = format_display_data(variable)[0]["text/plain"]

    monkeypatch.setattr(myst_nb, "glue", fake_glue)
    text = notebook.glue("x", value, fmt=fmt)
    assert format_plain_text(seen["x"], "") == text
    assert not re.fullmatch(r"\(.*\)|-?\d+\.0+|.*e[+-]\d+", text)


def test_glued_values_read_back_numbers_and_texts():
    from wganbook.bookkit.runner import glued_values

    def out(name, text):
        return {"output_type": "display_data", "metadata": {"scrapbook": {"name": name}}, "data": {"text/plain": text}}

    nb = {
        "cells": [
            {
                "cell_type": "code",
                "outputs": [out("a", "'0.25'"), out("b", "'100,000'"), out("c", "'12'"), out("d", "0.5")],
            }
        ]
    }
    assert glued_values(nb) == {"a": 0.25, "b": "100,000", "c": 12, "d": 0.5}


def test_setup_notebook(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    with matplotlib.rc_context():
        assert notebook.setup_notebook(seed=3) is None
        assert os.environ["TQDM_DISABLE"] == "1"
        assert matplotlib.rcParams["figure.dpi"] == notebook.DPI
        assert tuple(matplotlib.rcParams["figure.figsize"]) == notebook.FIGSIZE
    assert torch.initial_seed() == 3


def test_settings_box_lists_the_run_without_none_and_collapsed():
    from wganbook.bookkit import notebook, presets

    params = presets.validate("ch03", {"preset": "quick"})
    box = notebook.settings_box(params, clip=0.01)
    text, page = repr(box), box._repr_html_()
    assert text.startswith("Settings of this run (preset quick): seed = 0")
    assert "None" not in text and "checkpoint_root" not in text and "clip = 0.01" in text
    assert page.startswith('<details class="wganbook-settings"><summary>Settings of this run</summary>')
    assert "<details open" not in page  # closed: one click away
    big = notebook.settings_box({"preset": "full", "steps": 100000, "lr": 5e-5, "seeds": [0, 1], "x": None})
    assert repr(big) == "Settings of this run (preset full): steps = 100\u2009000, lr = 5e-05, seeds = 0, 1"
    with pytest.raises(TypeError, match="params must be a mapping"):
        notebook.settings_box([("seed", 0)])

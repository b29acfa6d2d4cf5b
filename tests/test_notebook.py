"""Tests of the notebook helpers (wganbook.bookkit.notebook): formatting glued values, glue, the notebook setup."""

import builtins
import os

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
        (123456.0, None, "1.23e+05"),
        (np.float32(2.0), None, "2"),  # numpy and torch scalars are unwrapped
        (torch.tensor(1.5), None, "1.5"),
        (np.int64(7), None, "7"),  # integers exactly
        (7, None, "7"),
        (True, None, "True"),
        (0.25, ".1%", "25.0%"),  # a format spec
        (0.25, "{:.2f}", "0.25"),  # or a format string
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
    assert seen["acc"] == {"text/plain": "0.99"}


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

"""Notebook conveniences: quiet, reproducible defaults and ``glue`` for numbers quoted in the prose.

Outputs stored in the book are compared by ``pytest --nbval``; these helpers keep them stable:
PNG figures of a fixed size and resolution, no progress bars, no warnings, and glued values
stored as ``text/plain`` strings (rounded) only.
"""

from __future__ import annotations

import html
import math
import numbers
import os
import re
import warnings
from typing import Any, Mapping, Optional

from wganbook.data import seed_everything
from wganbook.lab import plotting as _plotting

__all__ = [
    "FIGSIZE",
    "DPI",
    "setup_notebook",
    "format_value",
    "glue",
    "settings_box",
]

#: Default figure size (inches) and resolution of the book's figures.
#: Default figure size and resolution of the chapters (the book's style, :data:`wganbook.lab.plotting.STYLE`).
FIGSIZE = _plotting.STYLE["figure.figsize"]
DPI = _plotting.FIG_DPI


def setup_notebook(seed: Optional[int] = None) -> None:
    """Configure a chapter notebook: quiet warnings, PNG figures, no progress bars.

    * ``TQDM_DISABLE=1`` (progress bars stay out of stored outputs),
    * warnings filtered (``DeprecationWarning``, ``UserWarning``, ``FutureWarning``, ``RuntimeWarning``),
    * matplotlib: inline PNG (no SVG) in the book's figure style (:data:`wganbook.lab.plotting.STYLE`:
      160 dpi, 5.0 in wide, fonts of at least 10 points), ``savefig.bbox = "tight"``,
    * if ``seed`` is given, ``wganbook.data.seed_everything(seed)``.

    * without a GPU, torch uses one CPU thread: the stored outputs then do not depend on the
      machine's core count (floating-point reductions are split by thread), and notebooks that
      run side by side do not slow each other down.

    Parameters
    ----------
    seed : int, optional
        Seed every random number generator.

    Returns
    -------
    None
    """
    os.environ["TQDM_DISABLE"] = "1"
    import torch

    if not torch.cuda.is_available():
        torch.set_num_threads(1)
    for cat in (DeprecationWarning, UserWarning, FutureWarning, RuntimeWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=cat)
    import matplotlib

    _plotting.use_book_style()
    matplotlib.rcParams["savefig.bbox"] = "tight"
    try:  # inline backend, PNG only (IPython only; silently skipped elsewhere)
        from IPython import get_ipython

        ip = get_ipython()
        if ip is not None:
            try:
                from matplotlib_inline.backend_inline import set_matplotlib_formats
            except ImportError:  # pragma: no cover - old IPython
                from IPython.display import set_matplotlib_formats  # type: ignore
            set_matplotlib_formats("png")
            try:
                ip.run_line_magic("matplotlib", "inline")
            except Exception:  # pragma: no cover
                pass
            _plotting.use_book_style()  # the inline backend sets its own figure size and resolution
            matplotlib.rcParams["savefig.bbox"] = "tight"
    except ImportError:  # pragma: no cover - no IPython
        pass
    if seed is not None:
        seed_everything(seed)


_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")
_E_NOTATION = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)e([+-])0*(\d+)\b")
_STRAY_ZEROS = re.compile(r"(?<![\w.])(-?[\d,]+)\.0+(?![\d])")


def _power_of_ten(match: "re.Match") -> str:
    mantissa, sign, exponent = match.groups()
    power = ("-" if sign == "-" else "") + exponent
    if mantissa in ("1", "-1"):
        return ("\u2212" if mantissa == "-1" else "") + "10" + power.translate(_SUPERSCRIPT)
    return f"{mantissa} \u00d7 10{power.translate(_SUPERSCRIPT)}"


def _tidy(text: str) -> str:
    """No stray ``.0`` (``"99.0%"`` -> ``"99%"``) and powers of ten instead of ``e`` notation."""
    text = _STRAY_ZEROS.sub(r"\1", text)
    return _E_NOTATION.sub(_power_of_ten, text)


def format_value(value: Any, fmt: Optional[str] = None) -> str:
    """Format a number for the prose, as a reader expects to see it.

    * integers exactly, with thousands separators (``100000`` -> ``"100,000"``);
    * other numbers with 3 significant digits (``0.123456`` -> ``"0.123"``); from 1 000 up rounded to
      3 significant digits and written out with separators (``3e6`` -> ``"3,000,000"``); below 0.001 as
      a power of ten (``1.2e-05`` -> ``"1.2 × 10⁻⁵"``);
    * ``fmt`` (a format spec such as ``".2f"`` or a format string such as ``"{:.1%}"``) when given;
    * in every case without a stray ``.0`` (``"1.0"`` -> ``"1"``, ``"99.0%"`` -> ``"99%"``) and without
      ``e`` notation.

    The text never looks like a tuple or a float literal, so MyST-NB (which ``literal_eval``-s the
    stored text) shows it as it is (see :func:`glue`).

    Parameters
    ----------
    value : object
        A number, string, or anything with ``str``.
    fmt : str, optional
        A format spec such as ``".2f"`` or ``"{:.1%}"``.

    Returns
    -------
    str
        The text stored in the notebook.
    """
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy / torch scalars
    if fmt is not None:
        return _tidy(fmt.format(value) if "{" in fmt else format(value, fmt))
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            return {math.inf: "\u221e", -math.inf: "\u2212\u221e"}.get(x, "nan")
        rounded = float(format(x, ".3g"))
        if abs(rounded) >= 1000:
            return f"{int(round(rounded)):,}"
        return _tidy(format(x, ".3g"))
    return str(value)


class _Text:
    """A value whose only rich representation is ``text/plain``."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        # A Python string literal: MyST-NB ``literal_eval``s the stored text, and "100,000" would
        # become the tuple (100, 0) and "3e+06" the float 3000000.0; a quoted string stays as it is.
        return repr(self.text)


def glue(name: str, value: Any, fmt: Optional[str] = None, display: bool = False) -> str:
    """Store a value under ``name`` for ``{glue:text}`` roles in the prose (MyST-NB).

    The value is formatted to a string first (:func:`format_value`), so the stored output is
    ``text/plain`` only and stable under ``nbval``; it is stored as a Python string literal
    (``'100,000'``), which MyST-NB's ``literal_eval`` turns back into the same text (unquoted, the text
    ``100,000`` would show as ``(100, 0)``). Without ``myst_nb`` the text is printed.

    Parameters
    ----------
    name : str
        Glue key (referenced as ``{glue:text}`name``` in markdown cells).
    value : object
        The value.
    fmt : str, optional
        Format spec (default: 3 significant digits for floats).
    display : bool, optional
        Also show the value in the cell output.

    Returns
    -------
    str
        The formatted text.
    """
    text = format_value(value, fmt)
    try:
        from myst_nb import glue as _glue
    except ImportError:
        print(f"{name} = {text}")
        return text
    _glue(name, _Text(text), display=display)
    return text


#: Parameters the settings box never lists (where the runner puts checkpoints is not a setting).
_NOT_SETTINGS = ("checkpoint_root",)


class _Settings:
    """The "Settings of this run" box: collapsed HTML in the book, a one-line list as plain text."""

    def __init__(self, preset: str, rows: list):
        self.preset, self.rows = preset, rows

    def __repr__(self) -> str:
        shown = ", ".join(f"{k} = {v}" for k, v in self.rows)
        return f"Settings of this run (preset {self.preset}): {shown}"

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(v)}</td></tr>" for k, v in self.rows
        )
        return (
            '<details class="wganbook-settings"><summary>Settings of this run</summary>'
            f"<p>Preset <code>{html.escape(self.preset)}</code>. Any of these can be changed when the chapter "
            "is run again, e.g. <code>papermill -p preset full</code>.</p>"
            f'<table class="wganbook-settings-table"><tbody>{body}</tbody></table></details>'
        )


def settings_box(params: Mapping[str, Any], **effective: Any) -> _Settings:
    """The settings a chapter ran with, for one collapsed box near its top.

    Every resolved parameter (``presets.validate``) is listed in the preset's order, except
    ``checkpoint_root`` and the values that are ``None`` (a ``None`` means "the method's default",
    which the chapter resolves itself: pass the resolved value as a keyword, e.g.
    ``settings_box(params, clip=0.01)``, and it is listed in place of the ``None``).

    Parameters
    ----------
    params : mapping
        The chapter's resolved parameters; ``params["preset"]`` names the preset.
    **effective
        Values that replace parameters the chapter resolves itself (a name that is not a parameter
        is added at the end).

    Returns
    -------
    object
        A display object: a closed ``<details>`` box in HTML, a one-line list as plain text (the
        last expression of a cell shows it).

    Raises
    ------
    TypeError
        When ``params`` is not a mapping.
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping (the result of presets.validate), got {type(params).__name__}")
    values = {k: v for k, v in params.items() if k != "preset" and k not in _NOT_SETTINGS}
    for k, v in effective.items():
        values[k] = v
    rows = [(k, _setting_text(v)) for k, v in values.items() if v is not None]
    return _Settings(str(params.get("preset", "quick")), rows)


def _setting_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_setting_text(v) for v in value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}".replace(",", "\u2009")
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return f"{int(value):,}".replace(",", "\u2009")
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return format(float(value), "g")
    return str(value)

"""Notebook conveniences: quiet, reproducible defaults and ``glue`` for numbers quoted in the prose.

Outputs stored in the book are compared by ``pytest --nbval``; these helpers keep them stable:
PNG figures of a fixed size and resolution, no progress bars, no warnings, and glued values
stored as ``text/plain`` strings (rounded) only.
"""

from __future__ import annotations

import html
import numbers
import os
import warnings
from typing import Any, Mapping, Optional

from wganbook.data import seed_everything

__all__ = [
    "FIGSIZE",
    "DPI",
    "setup_notebook",
    "format_value",
    "glue",
    "settings_box",
]

#: Default figure size (inches) and resolution of the book's figures.
FIGSIZE = (6.4, 4.0)
DPI = 80


def setup_notebook(seed: Optional[int] = None) -> None:
    """Configure a chapter notebook: quiet warnings, PNG figures, no progress bars.

    * ``TQDM_DISABLE=1`` (progress bars stay out of stored outputs),
    * warnings filtered (``DeprecationWarning``, ``UserWarning``, ``FutureWarning``, ``RuntimeWarning``),
    * matplotlib: inline PNG (no SVG), ``figure.dpi`` = 80, figure size 6.4 x 4.0 in,
      ``savefig.bbox = "tight"``,
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

    matplotlib.rcParams.update(
        {
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "figure.figsize": FIGSIZE,
            "savefig.bbox": "tight",
            "svg.fonttype": "none",
            "axes.grid": False,
            "image.interpolation": "nearest",
        }
    )
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
            matplotlib.rcParams.update({"figure.dpi": DPI, "figure.figsize": FIGSIZE})
    except ImportError:  # pragma: no cover - no IPython
        pass
    if seed is not None:
        seed_everything(seed)


def format_value(value: Any, fmt: Optional[str] = None) -> str:
    """Format a value for the prose: ``fmt`` if given, else floats with 3 significant digits.

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
        return fmt.format(value) if "{" in fmt else format(value, fmt)
    if isinstance(value, bool) or isinstance(value, numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):
        return format(float(value), ".3g")
    return str(value)


class _Text:
    """A value whose only rich representation is ``text/plain``."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def glue(name: str, value: Any, fmt: Optional[str] = None, display: bool = False) -> str:
    """Store a value under ``name`` for ``{glue:text}`` roles in the prose (MyST-NB).

    The value is formatted to a string first (:func:`format_value`), so the stored output is
    ``text/plain`` only and stable under ``nbval``. Without ``myst_nb`` the text is printed.

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

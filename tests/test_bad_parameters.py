"""Every chapter rejects bad papermill parameters at once, before any training.

Two levels, to keep the time small:

* one real ``papermill.execute_notebook`` run per chapter with an unknown preset: it must fail
  within seconds with a message naming ``preset`` and the allowed values;
* for the other invalid values, papermill injects them (``parameterize_notebook``) and the cells up
  to and including the chapter's ``presets.validate`` call run in one kernel per chapter: values
  no chapter allows, values the shared schema allows but the chapter does not (a toy as chapter 3's
  image ``dataset``, a seed above 2**32 - 1), and last an unknown parameter (``-p bogus 1``), which
  the chapter's ``presets.validate(chapter, globals())`` refuses.
"""

from __future__ import annotations

import copy
import queue
import re
import time
from pathlib import Path

import papermill
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))

# name -> (bad value, words the error message must contain)
BAD_VALUES = {
    "preset": ("huge", ["preset", "quick", "full"]),
    "seed": ("zero", ["seed"]),
    "device": ("tpu", ["device", "auto"]),
    "method": ("wgan-x", ["method", "wgan-gp"]),
    "methods": (["wgan-x"], ["method", "wgan-gp"]),
    "dataset": ("imagenet", ["dataset", "digits"]),
    "image_dataset": ("imagenet", ["dataset", "digits"]),
    "toy_dataset": ("moons", ["dataset", "8gaussians"]),
    "strategy": ("everywhere", ["strategy", "real-fake"]),
    "strategies": (["everywhere"], ["strateg", "real-fake"]),
    "lr": (-1e-4, ["lr"]),
    "lam": (-10.0, ["lam"]),
    "n_critic": (0, ["n_critic"]),
    "steps": (2.5, ["steps"]),
    "batch_size": ("64", ["batch_size"]),
}

#: Values the shared schema allows but the chapters do not: (name, bad value, words of the message).
CHAPTER_BAD_VALUES = [
    ("seed", 2**40, ["seed", "4294967295"]),
    ("dataset", "8gaussians", ["dataset", "digits", "mnist"]),  # chapters 3 and 4: an image dataset
    ("toy_dataset", "swissroll", ["toy_dataset", "8gaussians", "25gaussians"]),  # chapter 3 counts modes
    ("toy_datasets", ["swissroll"], ["toy_datasets", "8gaussians"]),
]

#: Chapters whose allowed values of a shared name differ from the schema's: (chapter, name) -> the words
#: the message must contain instead (chapter 7's methods are the robustness grid's, not wganbook.objectives').
CHAPTER_WORDS = {("07_robustness", "methods"): ["methods", "WGAN-GP", "GAN-NS + SN"]}

#: Names only one chapter has: (name, bad value, words of the message).
ONLY_IN_ONE_CHAPTER = [
    ("settings", ["Z"], ["settings", "A", "F"]),  # chapter 7: SNGAN's optimiser settings
    ("lr_scale", -1.0, ["lr_scale"]),
]

#: The error classes of ``presets.validate`` (and their bases).
ERRORS = ("ParameterError", "ParameterTypeError", "ValueError", "TypeError")


def _validate_index(nb) -> int:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "presets.validate(" in cell.source:
            return i
    raise AssertionError("no cell calls presets.validate(")


def _parameter_names(nb) -> set:
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return set(re.findall(r"^([A-Za-z_]\w*)\s*(?::[^=]+)?=", cell.source, re.M))


def _run_source(kc, source: str) -> str:
    """Run one cell's source in the kernel; return the error text ('' if none)."""
    msg_id = kc.execute(source, store_history=False, stop_on_error=False)
    error = ""
    while True:  # read this request's messages until the kernel is idle again
        try:
            msg = kc.get_iopub_msg(timeout=120)
        except queue.Empty:
            return "timeout"
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            error = f"{msg['content']['ename']}: {msg['content']['evalue']}"
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return error


def _run_until_validate(kc, nb) -> str:
    """Run the code cells up to the validate cell; return the error text ('' if none)."""
    stop = _validate_index(nb)
    for cell in nb.cells[: stop + 1]:
        if cell.cell_type != "code" or "google.colab" in cell.source:
            continue
        error = _run_source(kc, cell.source)
        if error:
            return error
    return ""


@pytest.mark.skipif(not NOTEBOOKS, reason="no chapter notebooks")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_unknown_preset_fails_fast_through_papermill(path, tmp_path):
    start = time.perf_counter()
    with pytest.raises(papermill.PapermillExecutionError) as info:
        papermill.execute_notebook(
            str(path),
            str(tmp_path / path.name),
            parameters={"preset": "huge"},
            cwd=str(BOOK),
            kernel_name="python3",
            progress_bar=False,
        )
    elapsed = time.perf_counter() - start
    text = str(info.value)
    assert "preset" in text and "quick" in text and "full" in text, text[-500:]
    assert elapsed < 60, f"{path.stem} took {elapsed:.0f} s to reject a bad preset"


@pytest.mark.skipif(not NOTEBOOKS, reason="no chapter notebooks")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_invalid_parameter_is_rejected_with_its_name(path):
    from jupyter_client.manager import start_new_kernel

    nb = load_notebook_node(str(path))  # papermill's reader (adds its metadata fields)
    names = _parameter_names(nb)
    cases = [
        (k, v, CHAPTER_WORDS.get((path.stem, k), words))
        for k, (v, words) in BAD_VALUES.items()
        if k in names and k != "preset"
    ]
    assert {"seed", "device"} <= {c[0] for c in cases}, f"{path.stem}: parameters cell lacks seed/device"
    cases += [c for c in CHAPTER_BAD_VALUES + ONLY_IN_ONE_CHAPTER if c[0] in names]
    # last (it stays in the kernel's namespace): a parameter no chapter has
    cases.append(("bogus", 1, ["unknown parameter(s) 'bogus'", "parameters must be among"]))
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(BOOK))
    try:
        # The defaults pass.
        assert _run_until_validate(kc, nb) == "", f"{path.stem}: default parameters rejected"
        for name, value, words in cases:
            if name == "bogus":
                # papermill injects into a fresh kernel: no earlier `params` (validate ignores the names
                # defined after an earlier result, a reader's own variables when the setup cell is rerun)
                _run_source(kc, "%reset -f")
            injected = parameterize_notebook(copy.deepcopy(nb), {name: value})
            start = time.perf_counter()
            error = _run_until_validate(kc, injected)
            assert error, f"{path.stem}: {name}={value!r} was accepted (does it call presets.validate(..., globals())?)"
            assert error.split(":")[0] in ERRORS, f"{path.stem}: {error}"
            for word in words:
                assert word in error, f"{path.stem}: {name}={value!r}: message lacks {word!r}: {error}"
            assert time.perf_counter() - start < 10
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

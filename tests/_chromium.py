"""Headless Chromium for the real-browser tests (Debian's ``chromium`` driven by playwright).

Locally a test that needs it is skipped with a message when chromium or playwright is missing; in CI
(``CI`` set) it fails instead. ``bash scripts/install_browser_deps.sh`` installs what is needed.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from typing import Optional

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def missing() -> Optional[str]:
    """Why no browser can be launched here, or ``None``."""
    if CHROMIUM is None:
        return "no chromium on PATH (run `bash scripts/install_browser_deps.sh`)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip the test locally, fail it in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"browser test cannot run in CI: {reason}")
    pytest.skip(f"browser test skipped: {reason}")


@contextmanager
def launched():
    """A headless Chromium for the duration of a ``with`` block (skipped or failed when missing)."""
    reason = missing()
    if reason:
        skip_or_fail(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()

"""The built HTML book, opened page by page in a real (headless) Chromium.

Needs the built book (``make book``), Debian's ``chromium`` and a local copy of MathJax 3
(``bash scripts/install_browser_deps.sh``). The machines are offline, so the MathJax CDN requests
are answered from the local copy and every other off-site request gets an empty reply.
Locally the test is skipped with a message when something is missing; in CI (``CI`` set) it fails.

Screenshots of every page are written to ``artifacts/screenshots/`` (git-ignored) for review.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
MATHJAX = ROOT / ".cache" / "mathjax" / "node_modules" / "mathjax" / "es5"
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _missing():
    if not (HTML / "book" / "intro.html").exists():
        return "the book is not built (run `make book`)"
    if CHROMIUM is None:
        return "no chromium on PATH (run `bash scripts/install_browser_deps.sh`)"
    if not (MATHJAX / "tex-mml-chtml.js").exists():
        return "no local MathJax copy (run `bash scripts/install_browser_deps.sh`)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    return None


def _toc_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        files += [c["file"] for c in part["chapters"]]
    return files


def _config():
    return yaml.safe_load((ROOT / "_config.yml").read_text())


@pytest.fixture(scope="module")
def server():
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {reason}")
        pytest.skip(f"browser test skipped: {reason}")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield b
        b.close()


def _route(route):
    url = route.request.url
    host = urlparse(url).hostname
    if host in ("127.0.0.1", "localhost"):
        return route.continue_()
    if "mathjax" in url and "/es5/" in url:
        local = MATHJAX / unquote(urlparse(url).path.split("/es5/", 1)[1])
        if local.is_file():
            return route.fulfill(path=str(local), content_type="application/javascript")
        return route.fulfill(status=404, body="")
    # Off-site requests (fonts, thebe, GitHub) cannot be reached offline: answer them empty.
    return route.fulfill(status=200, body="", content_type="text/plain")


def _visit(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", _route)
    response = page.goto(url, wait_until="load")
    return page, response, errors


@pytest.mark.parametrize("docname", _toc_pages())
def test_page_renders(browser, server, docname):
    url = urljoin(server, docname + ".html")
    page, response, errors = _visit(browser, url)
    try:
        assert response is not None and response.ok, f"{docname}: HTTP {response and response.status}"

        # Math: wait for MathJax, then every math element must hold a typeset container.
        n_math = page.locator(".math").count()
        if n_math:
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                   timeout=30000)
            page.evaluate("() => MathJax.startup.promise")
            untypeset = page.evaluate(
                "() => Array.from(document.querySelectorAll('.math'))"
                ".filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60))")
            assert not untypeset, f"{docname}: math not typeset: {untypeset[:3]}"
        body = page.inner_text("article") if page.locator("article").count() else page.inner_text("body")
        assert "$$" not in body, f"{docname}: raw $$ left in the page"
        assert "\\[" not in body and "\\(" not in body, f"{docname}: raw math delimiters left"

        # Images: every image is loaded with a non-zero natural size.
        broken = page.evaluate(
            "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.getAttribute('src').slice(0, 80))")
        assert not broken, f"{docname}: broken images {broken}"

        # Internal links resolve to files of the build.
        hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        for href in hrefs:
            parsed = urlparse(href)
            if parsed.hostname not in ("127.0.0.1", "localhost") or parsed.scheme not in ("http", "https"):
                continue
            target = HTML / unquote(parsed.path).lstrip("/")
            if target.is_dir():
                target = target / "index.html"
            assert target.exists(), f"{docname}: broken internal link {href}"

        # Notebook pages carry a Colab link to this notebook on the configured branch.
        if (ROOT / (docname + ".ipynb")).exists():
            cfg = _config()
            repo = urlparse(cfg["repository"]["url"]).path.strip("/")
            branch = cfg["repository"].get("branch", "main")
            want = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{docname}.ipynb"
            assert want in hrefs, f"{docname}: no Colab link {want}"

        assert not errors, f"{docname}: console errors: {errors[:5]}"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / (docname.replace("/", "_") + ".png")), full_page=True)
    finally:
        page.close()

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
import threading
import warnings
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import _chromium
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
MATHJAX = ROOT / ".cache" / "mathjax" / "node_modules" / "mathjax" / "es5"
SHOTS = ROOT / "artifacts" / "screenshots"


def _missing():
    if not (HTML / "book" / "intro.html").exists():
        return "the book is not built (run `make book`)"
    if not (MATHJAX / "tex-mml-chtml.js").exists():
        return "no local MathJax copy (run `bash scripts/install_browser_deps.sh`)"
    return _chromium.missing()


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
        _chromium.skip_or_fail(reason)

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
    with _chromium.launched() as b:
        yield b


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


def _visit(browser, url, width=1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(120000)  # the API page is large (its full-page screenshot too); CI is busy
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", _route)
    response = page.goto(url, wait_until="load")
    return page, response, errors


# Every MathJax error box, with the TeX it came from.
_MATH_ERRORS_JS = """() => Array.from(document.querySelectorAll('mjx-merror'))
  .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 80))"""

# Text outside math, code and scripts that still holds a "$": a formula MyST did not parse.
_STRAY_DOLLARS_JS = """() => {
  const root = document.querySelector('article') || document.body, out = [];
  const skip = 'pre, code, script, style, mjx-container, .math, .highlight, .cell_input, .output, .sig, .pre';
  const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    if (n.textContent.includes('$') && !n.parentElement.closest(skip)) out.push(n.textContent.trim().slice(0, 80));
  }
  return out; }"""

# Display equations, tables and code blocks wider than the article column that no scrollable box holds.
_CLIPPED_JS = """() => {
  const art = document.querySelector('article.bd-article') || document.querySelector('article');
  if (!art) return [];
  const limit = art.getBoundingClientRect().right + 1, out = [];
  const scrolls = e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
  const sel = 'mjx-container[display="true"], table, div.highlight pre, .cell_output pre, .output pre';
  for (const el of art.querySelectorAll(sel)) {
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;                       // folded (e.g. hidden code)
    let box = el, held = false;
    for (; box && box !== art; box = box.parentElement) { if (scrolls(box)) { held = true; break; } }
    const over = el.scrollWidth > el.clientWidth + 1 || r.right > limit;
    if (over && !held) out.push(el.tagName.toLowerCase() + ': ' + (el.textContent || '').trim().slice(0, 60));
  }
  return out; }"""

# Output images (figures) that are not inside a <figure> with a caption.
_UNCAPTIONED_JS = """() => Array.from(document.querySelectorAll('article .cell_output img, article img.figure, article figure img'))
  .filter(i => { const f = i.closest('figure'); return !(f && f.querySelector('figcaption')
                 && f.querySelector('figcaption').textContent.trim()); })
  .map(i => (i.getAttribute('alt') || i.getAttribute('src') || '').slice(0, 60))"""

#: Every figure of the book has a caption: a figure without one fails the test (they are also
#: listed in ``artifacts/uncaptioned_figures.txt``). ``WGANBOOK_STRICT_CAPTIONS=0`` only warns,
#: for drafting a chapter.
STRICT_CAPTIONS = os.environ.get("WGANBOOK_STRICT_CAPTIONS", "1") == "1"
_UNCAPTIONED = {}


def _record_uncaptioned(docname, found):
    _UNCAPTIONED[docname] = found
    report = ROOT / "artifacts" / "uncaptioned_figures.txt"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("".join(f"{d}: {len(v)} figure(s) without a caption\n" for d, v in _UNCAPTIONED.items() if v))
    if found:
        msg = f"{docname}: {len(found)} figure(s) without a caption"
        if STRICT_CAPTIONS:
            pytest.fail(msg)
        warnings.warn(msg, stacklevel=2)


@functools.lru_cache(maxsize=None)
def _ids(path: Path) -> frozenset:
    """The element ids of a built page (anchor targets)."""
    import re

    return frozenset(re.findall(r'\sid="([^"]+)"', path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("docname", _toc_pages())
def test_page_renders(browser, server, docname):
    url = urljoin(server, docname + ".html")
    page, response, errors = _visit(browser, url)
    try:
        assert response is not None and response.ok, f"{docname}: HTTP {response and response.status}"

        # Math: wait for MathJax, then every math element must hold a typeset container.
        n_math = page.locator(".math").count()
        if n_math:
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30000)
            page.evaluate("() => MathJax.startup.promise")
            untypeset = page.evaluate(
                "() => Array.from(document.querySelectorAll('.math'))"
                ".filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60))"
            )
            assert not untypeset, f"{docname}: math not typeset: {untypeset[:3]}"
        body = page.inner_text("article") if page.locator("article").count() else page.inner_text("body")
        assert "$$" not in body, f"{docname}: raw $$ left in the page"
        merrors = page.evaluate(_MATH_ERRORS_JS)
        assert not merrors, f"{docname}: MathJax 'Math input error' in {merrors[:3]}"
        dollars = page.evaluate(_STRAY_DOLLARS_JS)
        assert not dollars, f"{docname}: unmatched $ in the rendered text: {dollars[:3]}"
        clipped = page.evaluate(_CLIPPED_JS)
        assert not clipped, f"{docname}: wider than the column without a scrollbar: {clipped[:5]}"
        _record_uncaptioned(docname, page.evaluate(_UNCAPTIONED_JS))
        assert "\\[" not in body and "\\(" not in body, f"{docname}: raw math delimiters left"

        # Images: every image is loaded with a non-zero natural size.
        broken = page.evaluate(
            "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.getAttribute('src').slice(0, 80))"
        )
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
            if parsed.fragment and target.suffix == ".html":
                assert unquote(parsed.fragment) in _ids(target), f"{docname}: broken anchor {href}"

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


def _chapter_hrefs():
    """The built pages of the TOC, as the sidebar links them."""
    return [d + ".html" for d in _toc_pages()]


_SIDEBAR_JS = """() => {
  const vis = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const dialog = document.querySelector('#pst-primary-sidebar-modal');
  const box = dialog && dialog.open ? dialog : document.querySelector('#pst-primary-sidebar');
  const links = box ? Array.from(box.querySelectorAll('nav a[href]')).filter(vis).map(a => a.href) : [];
  return {open: !!(dialog && dialog.open), links: links,
          hidden: document.querySelector('#pst-primary-sidebar').classList.contains('pst-sidebar-hidden')}; }"""


@pytest.mark.parametrize("docname", _toc_pages())
def test_phone_sidebar_button_opens_the_chapter_list(browser, server, docname):
    """At 390 px the page is no wider than the phone (long signatures and inline code wrap, equations and
    tables scroll in their own box), and the visible sidebar button opens the chapter list with every chapter."""
    page, response, errors = _visit(browser, urljoin(server, docname + ".html"), width=390)
    try:
        if page.locator(".math").count():
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30000)
            page.evaluate("() => MathJax.startup.promise")
        wide = page.evaluate("() => document.documentElement.scrollWidth")
        assert wide <= 390, f"{docname}: the page is {wide} px wide on a 390 px phone"
        buttons = [b for b in page.query_selector_all(".primary-toggle") if b.is_visible()]
        assert buttons, f"{docname}: no visible sidebar button at 390 px"
        buttons[0].click()
        page.wait_for_timeout(200)
        state = page.evaluate(_SIDEBAR_JS)
        assert state["open"], f"{docname}: the sidebar button does not open the chapter list at 390 px"
        linked = {urlparse(h).path.lstrip("/") for h in state["links"]}
        missing = [h for h in _chapter_hrefs() if h not in linked and h != docname + ".html"]
        assert not missing, f"{docname}: chapters not reachable from the phone sidebar: {missing}"
        page.keyboard.press("Escape")
        page.wait_for_timeout(100)
        assert not page.evaluate(_SIDEBAR_JS)["open"], f"{docname}: the chapter list does not close"
        if docname.endswith("01_distances"):
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.wait_for_timeout(800)  # let the drawer's closing animation end (a busy CI is slow)
            page.screenshot(path=str(SHOTS / "phone_01_distances.png"))
    finally:
        page.close()


@pytest.mark.parametrize("width", [900, 1280])
def test_sidebar_and_contents_buttons_work_on_tablets_and_desktops(browser, server, width):
    """900 px: the sidebar button opens the chapter list, "Contents" the page's sections;
    1280 px: the sidebar button collapses the sidebar and brings it back."""
    page, response, errors = _visit(browser, urljoin(server, "book/01_distances.html"), width=width)
    try:
        primary = [b for b in page.query_selector_all(".primary-toggle") if b.is_visible()]
        assert primary, f"no visible sidebar button at {width} px"
        primary[0].click()
        page.wait_for_timeout(200)
        state = page.evaluate(_SIDEBAR_JS)
        if width < 992:
            assert state["open"], f"the sidebar button does not open the chapter list at {width} px"
            page.keyboard.press("Escape")
            secondary = [b for b in page.query_selector_all(".secondary-toggle") if b.is_visible()]
            assert secondary, f"no visible Contents button at {width} px"
            secondary[0].click()
            page.wait_for_timeout(200)
            assert page.evaluate("() => document.querySelector('#pst-secondary-sidebar-modal').open"), (
                f"the Contents button does not open the page's sections at {width} px"
            )
        else:
            assert state["hidden"], f"the sidebar button does not collapse the sidebar at {width} px"
            primary[0].click()
            page.wait_for_timeout(200)
            assert not page.evaluate(_SIDEBAR_JS)["hidden"], "the sidebar does not come back"
        searches = page.evaluate(
            "() => Array.from(document.querySelectorAll('.search-button-field, .search-button'))"
            ".filter(e => { const r = e.getBoundingClientRect(); "
            "return r.width > 0 && r.height > 0; }).length"
        )
        assert searches <= 1, f"{searches} search bars visible at {width} px"
        assert not errors, f"console errors: {errors[:5]}"
    finally:
        page.close()


_SYNTHETIC = """<html><body style="margin:0"><article class="bd-article" style="width:400px">
<p>fine text, a price of 5 euros</p>
<p id="stray">a formula that MyST did not parse: $x^2</p>
<table id="wide"><tr><td style="min-width:900px">a 900 px cell</td></tr></table>
<div style="overflow-x:auto"><table><tr><td style="min-width:900px">scrolls</td></tr></table></div>
<div class="cell_output"><img alt="bare" src="data:image/png;base64,iVBORw0KGgo="></div>
<figure><div class="cell_output"><img alt="captioned" src="data:image/png;base64,iVBORw0KGgo="></div>
<figcaption>What to see</figcaption></figure>
<pre><code>print("$ in code is fine")</code></pre>
</article></body></html>"""


def test_the_checks_find_what_they_look_for(browser):
    """The page checks on a synthetic page: one stray $, one wide table without a scrollbar, one
    figure without a caption -- and nothing else."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.set_content(_SYNTHETIC)
        assert page.evaluate(_STRAY_DOLLARS_JS) == ["a formula that MyST did not parse: $x^2"]
        clipped = page.evaluate(_CLIPPED_JS)
        assert len(clipped) == 1 and clipped[0].startswith("table: a 900 px cell")
        assert page.evaluate(_UNCAPTIONED_JS) == ["bare"]
        assert page.evaluate(_MATH_ERRORS_JS) == []
    finally:
        page.close()


# ---------------------------------------------------------------------------------------------
# The story in front, the audit behind (chapters 1-6 as a reader sees them)
# ---------------------------------------------------------------------------------------------
STORY_CHAPTERS = [d for d in _toc_pages() if Path(d).name[:2] in {"01", "02", "03", "04", "05", "06"}]
#: The reading path's limits: visible words and visible lines of code over chapters 1-6.
MAX_WORDS, MAX_CODE_LINES = 24000, 300
#: Claim lines and audit/history phrases that must not be visible in a chapter.
_AUDIT = (
    r"✔ claim|✘ claim|reported ch\d|\(measured:|(?:previous|earlier|older) version|this version of the|"
    r"claims? ledger|the ledger|another CPU's rounding|asserted, not|reported, not asserted|WGANBOOK_CLAIMS"
)

# What a reader sees of an article: its rendered text (closed drop-downs and folded code are not rendered),
# the lines of code cells that are visible, the Key idea box, the Takeaways heading, the check marks.
_STORY_JS = """() => {
  const art = document.querySelector('article.bd-article') || document.querySelector('article');
  const shown = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const code = Array.from(art.querySelectorAll('.cell_input pre')).filter(shown)
    .map(p => p.innerText.split('\\n').filter(l => l.trim()).length).reduce((a, b) => a + b, 0);
  const titles = Array.from(art.querySelectorAll('.admonition > .admonition-title')).map(t => t.textContent.trim());
  const heads = Array.from(art.querySelectorAll('h2, h3')).map(h => h.textContent.replace(/[#¶]/g, '').trim());
  // a typeset formula counts as one word, however many symbols MathJax renders for it
  const words = e => e.innerText.split(/\\s+/).filter(Boolean).length;
  const formulas = Array.from(art.querySelectorAll('mjx-container')).filter(shown);
  const nwords = words(art) - formulas.reduce((a, m) => a + words(m), 0) + formulas.length;
  return {text: art.innerText, words: nwords, code: code, titles: titles, heads: heads,
          checks: art.querySelectorAll('a.wganbook-check').length}; }"""

# Move every precomputed-frame slider (matplotlib's to_jshtml) of a page: the picture must change.
_SLIDERS_JS = """async () => {
  const out = [];
  for (const input of document.querySelectorAll('article input[type=range]')) {
    const box = input.closest('.animation') || input.parentElement.parentElement;
    const img = box.querySelector('img') || document.querySelector('article .animation img');
    const before = img ? img.src : null;
    const target = Math.max(Number(input.min || 0), Math.floor(Number(input.max) * 0.7));
    input.value = String(target);
    input.dispatchEvent(new Event('input', {bubbles: true}));
    input.dispatchEvent(new Event('change', {bubbles: true}));
    await new Promise(r => setTimeout(r, 150));
    out.push({max: Number(input.max), changed: !!img && img.src !== before,
              width: img ? img.getBoundingClientRect().width : 0});
  }
  return out; }"""


def test_chapters_tell_the_story_and_keep_the_audit_behind(browser, server):
    """Chapters 1-6 as a reader sees them: a Key idea box and a Takeaways section each, no claim line or
    audit/history phrase, at most 24 000 visible words and 300 visible lines of code in all, and at least
    two sliders that change their picture when moved (at 1280 and at 390 px). The numbers are written to
    ``artifacts/story_metrics.json`` (the README quotes them).

    Visible words: the whitespace-separated words of the rendered article at 1280 px (figure captions,
    tables, outputs and the code toggles' labels included; closed drop-downs and folded code are not
    rendered, so not counted), each typeset formula counted as one word."""
    import json
    import re

    metrics, sliders = {}, []
    for docname in STORY_CHAPTERS:
        for width in (1280, 390):
            page, response, errors = _visit(browser, urljoin(server, docname + ".html"), width=width)
            try:
                if width == 1280:
                    if page.locator(".math").count():
                        page.wait_for_function(
                            "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30000
                        )
                        page.evaluate("() => MathJax.startup.promise")
                    got = page.evaluate(_STORY_JS)
                    words = got["words"]
                    bad = sorted(set(re.findall(_AUDIT, got["text"])))
                    assert not bad, f"{docname}: claim lines or audit words visible: {bad}"
                    assert "Key idea" in got["titles"][:2], (
                        f"{docname}: no Key idea box at the top ({got['titles'][:3]})"
                    )
                    assert any(h.endswith("Takeaways") for h in got["heads"]), f"{docname}: no Takeaways section"
                    metrics[Path(docname).name] = {"words": words, "code_lines": got["code"], "checks": got["checks"]}
                moved = page.evaluate(_SLIDERS_JS)
                for m in moved:
                    assert m["changed"], f"{docname} at {width} px: moving the slider does not change the picture"
                    assert m["width"] <= width, f"{docname}: a slider's picture is wider than {width} px"
                sliders += [(docname, width)] * len(moved)
            finally:
                page.close()
    total_words = sum(m["words"] for m in metrics.values())
    total_code = sum(m["code_lines"] for m in metrics.values())
    out = ROOT / "artifacts" / "story_metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"chapters": metrics, "words": total_words, "code_lines": total_code, "sliders": len(sliders) // 2}
    out.write_text(json.dumps(summary, indent=1) + "\n")
    assert total_words <= MAX_WORDS, f"{total_words} visible words in chapters 1-6 (at most {MAX_WORDS}): {metrics}"
    assert total_code <= MAX_CODE_LINES, f"{total_code} visible code lines (at most {MAX_CODE_LINES}): {metrics}"
    assert len(sliders) // 2 >= 2, f"fewer than two working sliders in chapters 1-6: {sliders}"

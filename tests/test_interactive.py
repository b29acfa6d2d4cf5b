"""The two offline sliders of ``wganbook.lab.interactive``: their numbers, their HTML, and a real browser moving them.

The browser test opens the sliders from a ``file://`` page in Debian's Chromium (through playwright) with every
network request refused, moves each slider and checks that the picture changes, also at a phone's width (390 px).
Locally it is skipped with a message when Chromium or playwright is missing; in CI (``CI`` set) it fails.
"""

from __future__ import annotations

import math
import re

import _chromium
import numpy as np
import pytest
from IPython.display import HTML
from scipy import integrate, stats

from wganbook import divergence
from wganbook.lab import gaussians1d, interactive


# ---------------------------------------------------------------------------------------------
# The frames' numbers
# ---------------------------------------------------------------------------------------------
def test_parallel_lines_frames_are_the_closed_forms():
    frames = interactive.parallel_lines_frames()
    thetas = [f["theta"] for f in frames]
    assert len(frames) == 21 and thetas[0] == -1.0 and thetas[-1] == 1.0 and 0.0 in thetas
    for f in frames:
        assert f["w1"] == abs(f["theta"])
        if f["theta"] == 0:
            assert (f["tv"], f["kl"], f["js"], f["w1"]) == (0.0, 0.0, 0.0, 0.0)
            assert f["title"] == "TV 0   KL 0   JS 0   W\u2081 0.00"
        else:
            assert f["tv"] == 1.0 and f["kl"] == math.inf and f["js"] == pytest.approx(math.log(2), abs=1e-15)
            assert f["title"] == f"TV 1   KL \u221e   JS 0.69   W\u2081 {abs(f['theta']):.2f}"
    # W1 is continuous in theta (steps of 0.1 change it by 0.1), the three others jump at 0.
    w1 = np.array([f["w1"] for f in frames])
    assert np.allclose(np.abs(np.diff(w1)), 0.1)
    custom = interactive.parallel_lines_frames([-0.25, 0.5])
    assert [(f["theta"], f["w1"], f["tv"]) for f in custom] == [(-0.25, 0.25, 1.0), (0.5, 0.5, 1.0)]


def test_penalty_slope_frames_follow_the_slope_law():
    frames = interactive.penalty_slope_frames()
    lams = np.array([f["lam"] for f in frames])
    assert len(frames) == 17 and lams[0] == pytest.approx(0.01) and lams[-1] == pytest.approx(100)
    for v in (0.1, 1.0, 10.0):
        assert np.isclose(lams, v).any()
    d = interactive.PENALTY_EXAMPLE["mu_g"] - interactive.PENALTY_EXAMPLE["mu_r"]
    assert d == 4.0
    for f in frames:
        assert f["slope"] == gaussians1d.gp_slope(d, f["lam"]) == pytest.approx(1 + d / (2 * f["lam"]), rel=1e-15)
    slopes = np.array([f["slope"] for f in frames])
    assert np.all(np.diff(slopes) < 0) and slopes[0] > 100 and slopes[-1] < 1.03
    # Hand-derived: 1 + 4 / (2 * 2) = 2 at lambda = 2, 1 + 4 / 0.2 = 21 at lambda = 0.1.
    tenth, two = interactive.penalty_slope_frames([0.1, 2.0])
    assert tenth["slope"] == pytest.approx(21.0) and two["slope"] == pytest.approx(2.0)
    assert two["title"] == "\u03bb = 2:  slope \u2248 1 + d/2\u03bb = 2"
    # It tends to 1, the Kantorovich potential's slope, as lambda grows.
    (big,) = interactive.penalty_slope_frames([1e6, 1e7])[:1]
    assert abs(big["slope"] - 1) < 1e-5 and abs(big["slope_mid"] - 1) < 1e-5


def test_penalty_midpoint_slope_is_the_exact_optimum():
    """slope_mid = 1 + |D(0)| / (2 lambda r(0)) (divergence.gp_slope_1d), r(0) checked by independent quadrature."""
    mu_r, mu_g, s = (interactive.PENALTY_EXAMPLE[k] for k in ("mu_r", "mu_g", "sigma"))
    # Interpolates e x + (1 - e) y are N(e mu_r + (1 - e) mu_g, s^2 (e^2 + (1 - e)^2)) given e ~ U[0, 1].
    r0, _ = integrate.quad(
        lambda e: stats.norm.pdf(0.0, e * mu_r + (1 - e) * mu_g, s * math.hypot(e, 1 - e)), 0, 1, epsabs=1e-13
    )
    d0 = stats.norm.cdf(0.0, mu_g, s) - stats.norm.cdf(0.0, mu_r, s)  # F_fake(0) - F_real(0)
    assert 0.25 < r0 < 0.27  # 1/d = 0.25 for pairs exactly d apart; closer pairs crowd the middle
    frames = interactive.penalty_slope_frames([0.1, 1.0, 10.0])
    for f in frames:
        expected = 1 + abs(d0) / (2 * f["lam"] * r0)
        assert f["slope_mid"] == pytest.approx(expected, rel=1e-7)
        D = np.array([d0, d0, d0])
        assert f["slope_mid"] == pytest.approx(divergence.gp_slope_1d(D, np.full(3, r0), f["lam"])[1], rel=1e-7)
        # A little below the law, by the constant factor |D(0)| / (d r(0)) on the excess over 1.
        assert (f["slope_mid"] - 1) / (f["slope"] - 1) == pytest.approx(abs(d0) / (4 * r0), rel=1e-7)
        assert 0.95 < (f["slope_mid"] - 1) / (f["slope"] - 1) < 1


# ---------------------------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fn, name, value, err, match",
    [
        ("parallel_lines_frames", "thetas", [], ValueError, "thetas must be a non-empty"),
        ("parallel_lines_frames", "thetas", [0.5], ValueError, "thetas must hold 2 to 60"),
        ("parallel_lines_frames", "thetas", [0.0, float("nan")], ValueError, r"thetas\[1\]"),
        ("parallel_lines_frames", "thetas", [0.0, float("inf")], ValueError, r"thetas\[1\]"),
        ("parallel_lines_frames", "thetas", [0.5, 0.0], ValueError, "thetas must be strictly increasing"),
        ("parallel_lines_frames", "thetas", [0.0, 0.0, 1.0], ValueError, "thetas must be strictly increasing"),
        ("parallel_lines_frames", "thetas", "0 1", TypeError, "thetas must be a list"),
        ("parallel_lines_frames", "thetas", [0.0, "1"], TypeError, r"thetas\[1\]"),
        ("parallel_lines_frames", "thetas", np.zeros((2, 2)), ValueError, "thetas must be a 1-D"),
        ("parallel_lines_frames", "thetas", list(range(61)), ValueError, "thetas must hold 2 to 60"),
        ("penalty_slope_frames", "lams", [0.0, 1.0], ValueError, r"lams\[0\] must be a float > 0"),
        ("penalty_slope_frames", "lams", [-1.0, 1.0], ValueError, r"lams\[0\]"),
        ("penalty_slope_frames", "lams", [1.0, math.inf], ValueError, r"lams\[1\]"),
        ("penalty_slope_frames", "lams", [10.0, 1.0], ValueError, "lams must be strictly increasing"),
        ("penalty_slope_frames", "lams", 5.0, TypeError, "lams must be a list"),
        ("parallel_lines_slider", "thetas", [1.0], ValueError, "thetas must hold 2 to 60"),
        ("penalty_slope_slider", "lams", [0.0, 1.0], ValueError, r"lams\[0\]"),
    ],
)
def test_bad_arguments_name_the_parameter(fn, name, value, err, match):
    with pytest.raises(err, match=match):
        getattr(interactive, fn)(**{name: value})


# ---------------------------------------------------------------------------------------------
# The HTML
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sliders():
    """The two sliders at their default grids (rendered once for the module)."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    out = {
        "lines": (interactive.parallel_lines_slider(), len(interactive.parallel_lines_frames())),
        "slope": (interactive.penalty_slope_slider(), len(interactive.penalty_slope_frames())),
    }
    assert plt.get_fignums() == before  # no figure left for the inline backend to print again
    return out


def _frames(html: str):
    return re.findall(r'frames\[(\d+)\] = "data:image/png;base64,', html)


@pytest.mark.parametrize("key", ["lines", "slope"])
def test_html_is_one_offline_slider_with_one_position_per_frame(sliders, key):
    obj, n = sliders[key]
    assert isinstance(obj, HTML)
    html = obj.data
    assert len(html.encode()) < 900_000, f"{key}: {len(html.encode())} bytes"
    ranges = re.findall(r'<input id="(_anim_slider\w+)" type="range"[^>]*min="0"[^>]*step="1"', html, flags=re.S)
    assert len(ranges) == 1
    assert _frames(html) == [str(i) for i in range(n)] and f"new Array({n})" in html  # the JS sets max = n - 1
    assert len(re.findall(r"<img ", html)) == 1 and 'alt="' in html and "<figcaption>" in html
    # Offline: no script, stylesheet or font from elsewhere, no CDN, no icon font.
    assert not re.search(r"https?:|//cdn|cdn\.|<script[^>]*\bsrc=|<link\b|@import|url\(", html, flags=re.I)
    assert "fa fa-" not in html and 'oninput="anim' in html
    assert 'value="once" id="_anim_radio1_' in html and re.search(r'value="once"[^>]*\n\s*checked', html)


def test_html_is_deterministic_and_ids_differ_per_figure():
    a = interactive.parallel_lines_slider([-0.5, 0.0, 0.5]).data
    b = interactive.parallel_lines_slider([-0.5, 0.0, 0.5]).data
    c = interactive.parallel_lines_slider([-0.5, 0.5]).data
    assert a == b
    ida = set(re.findall(r'id="_anim_img(\w+)"', a))
    idc = set(re.findall(r'id="_anim_img(\w+)"', c))
    assert len(ida) == len(idc) == 1 and ida != idc
    assert len(_frames(a)) == 3 and len(_frames(c)) == 2


# ---------------------------------------------------------------------------------------------
# A real browser, offline
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium():
    with _chromium.launched() as b:
        yield b


# Move the slider the way a reader does (value + 'input' event, which to_jshtml's oninput handler listens to)
# and return the picture's src; the same snippet works on the built book's pages.
_MOVE_JS = """([sliderId, imgId, k]) => {
  const s = document.getElementById(sliderId);
  s.value = String(k);
  s.dispatchEvent(new Event('input', {bubbles: true}));
  return document.getElementById(imgId).getAttribute('src');
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_sliders_move_offline_in_a_real_browser(sliders, chromium, tmp_path, width):
    body = "\n".join(sliders[k][0].data for k in ("lines", "slope"))  # both on one page, as in a book chapter
    page_file = tmp_path / "sliders.html"
    page_file.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        f'<body style="margin: 8px">{body}</body></html>',
        encoding="utf-8",
    )
    page = chromium.new_page(viewport={"width": width, "height": 900})
    requested, errors = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith("file://"):
            return r.continue_()
        requested.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    try:
        page.goto(page_file.as_uri(), wait_until="load")
        for key in ("lines", "slope"):
            html, n = sliders[key][0].data, sliders[key][1]
            (uid,) = set(re.findall(r'id="_anim_img(\w+)"', html))
            img_id, slider_id = f"_anim_img{uid}", f"_anim_slider{uid}"
            page.wait_for_function(
                "id => (document.getElementById(id).getAttribute('src') || '').startsWith('data:image/png')", arg=img_id
            )
            assert page.evaluate("id => document.getElementById(id).max", slider_id) == str(n - 1)
            first = page.evaluate("id => document.getElementById(id).getAttribute('src')", img_id)
            for k in (n // 2, n - 1):
                src = page.evaluate(_MOVE_JS, [slider_id, img_id, k])
                assert src.startswith("data:image/png") and src != first, f"{key}: frame {k} did not change"
                assert page.evaluate(f"() => anim{uid}.current_frame") == k
            # Playwright's own fill() of the range input (sets the value and fires 'input') moves it back.
            page.locator(f"#{slider_id}").fill("0")
            assert page.evaluate("id => document.getElementById(id).getAttribute('src')", img_id) == first
            # The picture is decoded and fits the viewport (a phone's 390 px too), and so does the slider.
            img = page.evaluate(
                """id => { const i = document.getElementById(id), r = i.getBoundingClientRect();
                           return {w: r.width, right: r.right, natural: i.naturalWidth}; }""",
                img_id,
            )
            assert img["natural"] > 0 and 0 < img["w"] <= width and img["right"] <= width
            slider = page.evaluate("id => document.getElementById(id).getBoundingClientRect().right", slider_id)
            assert slider <= width
            if width == 390:
                assert img["w"] < img["natural"]  # scaled down to fit, not cropped
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        assert requested == [], f"the page asked the network for {requested}"
        assert errors == [], errors
    finally:
        page.close()

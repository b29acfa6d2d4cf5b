"""Tests of wganbook.lab.plotting (Agg backend)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from wganbook.lab import plotting


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def _labelled(ax):
    return ax.get_xlabel() != "" and ax.get_ylabel() != ""


class _Linear(nn.Module):
    def forward(self, x):
        return x[:, 0] - 2 * x[:, 1]


def test_value_surface(ax):
    real, fake = torch.randn(50, 2), torch.randn(60, 2) + 1
    out = plotting.value_surface(ax, _Linear(), real, fake, lim=2.0, n=16, colorbar=True)
    assert out is ax and _labelled(ax)
    assert ax.get_xlim() == (-2.0, 2.0)
    offsets = [
        c.get_offsets().shape[0]
        for c in ax.collections
        if hasattr(c, "get_offsets") and c.get_offsets().shape[0] in (50, 60)
    ]
    assert sorted(offsets) == [50, 60]


def test_toy_samples_and_histograms(ax):
    assert plotting.toy_samples(ax, torch.randn(30, 2), np.random.randn(20, 2), lim=3) is ax
    assert _labelled(ax) and ax.get_legend() is not None
    fig, axes = plt.subplots(1, 2)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
    assert _labelled(plotting.weight_histogram(axes[0], net, bins=10, range=(-1, 1), label="w"))
    n_weights = sum(p.numel() for p in net.parameters() if p.ndim >= 2)
    assert sum(patch.get_height() for patch in axes[0].patches) == n_weights
    assert _labelled(plotting.gradient_norm_histogram(axes[1], torch.rand(100), bins=5))
    plt.close(fig)


def test_sample_grid(ax):
    imgs = torch.rand(10, 1, 8, 8) * 2 - 1
    assert plotting.sample_grid(ax, imgs, nrow=5, title="digits") is ax
    assert _labelled(ax) and ax.get_title() == "digits"
    shown = ax.images[0].get_array()
    assert shown.min() >= 0 and shown.max() <= 1
    fig, ax2 = plt.subplots()
    plotting.sample_grid(ax2, torch.rand(4, 3, 4, 4) * 2 - 1, nrow=2)
    plt.close(fig)
    with pytest.raises(ValueError, match="images"):
        plotting.sample_grid(ax, torch.rand(4, 8, 8))


def test_training_curves(ax):
    history = {
        "step": [1, 2, 3, 4],
        "w1_estimate": [1.0, 0.8, 0.5, 0.4],
        "w1_step": [2, 4],
        "w1_exact": [0.9, 0.5],
        "eval_step": [4],
        "modes": [8.0],
        "grad_norm": [],
    }
    out = plotting.training_curves(
        ax, history, keys=("w1_estimate", "w1_exact", "modes", "grad_norm", "nope"), smooth=3
    )
    assert out is ax and _labelled(ax)
    lines = ax.get_lines()
    assert len(lines) == 3
    assert list(lines[1].get_xdata()) == [2, 4] and list(lines[2].get_xdata()) == [4]


def test_layer_grad_norms(ax):
    out = plotting.layer_grad_norms(ax, {"c = 0.1": [1e3, 1e1, 1e-1], "GP": [1.0, 1.1, 0.9]})
    assert out is ax and _labelled(ax) and ax.get_yscale() == "log"


def test_estimate_vs_exact_plots_values_and_ratio():
    import matplotlib.pyplot as plt

    hist = {"step": [1, 2, 3, 4], "w1_estimate": [-0.1, 0.2, 0.3, 0.4], "w1_step": [2, 4], "w1_exact": [1.0, 2.0]}
    fig, axes = plt.subplots(1, 2)
    plotting.estimate_vs_exact(axes, {"gp": hist})
    exact, est = axes[0].get_lines()[:2]
    assert list(exact.get_xdata()) == [2, 4] and list(exact.get_ydata()) == [1.0, 2.0]
    assert list(est.get_ydata()) == [0.2, 0.4]
    assert list(axes[1].get_lines()[0].get_ydata()) == pytest.approx([0.2, 0.2])
    assert axes[1].get_yscale() == "log" and axes[0].get_xlabel() == "generator step"
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# the book's figure style
# ---------------------------------------------------------------------------------------------
def test_style_fonts_are_legible_and_figures_fit_a_phone():
    """Every font of the style is at least MIN_FONT_PT; a figure FIG_WIDTH wide shows 10-point text at >= 9 points
    in the ~342 px column of a 390 px phone (the browser test measures the built pages)."""
    from wganbook.lab import plotting as P

    sizes = {k: v for k, v in P.STYLE.items() if k.endswith(("size", "fontsize")) and k != "figure.figsize"}
    assert sizes and all(v >= P.MIN_FONT_PT for v in sizes.values()), sizes
    assert P.STYLE["figure.dpi"] == P.STYLE["savefig.dpi"] == P.FIG_DPI >= 150
    assert 10 * 342 / (72 * P.FIG_WIDTH) >= 9  # 10-pt text at >= 9 pt on the phone


def test_figsize_two_panels_at_most_side_by_side():
    from wganbook.lab import plotting as P

    assert P.figsize(1, 2) == (P.FIG_WIDTH, round(P.FIG_WIDTH / 2 + 0.3, 3))
    assert P.figsize(3, 1, panel_height=2.0) == (P.FIG_WIDTH, 6.0)
    for bad in ({"cols": 3}, {"cols": 0}, {"rows": 0}, {"rows": 1.5}, {"panel_height": 0.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            P.figsize(**bad)


def test_no_small_fonts_hard_coded_in_the_package():
    """No plotting code of the package sets a font below the style's minimum (e.g. ``fontsize="small"``)."""
    import re
    from pathlib import Path

    import wganbook
    from wganbook.lab import plotting as P

    root = Path(wganbook.__file__).parent
    small = re.compile(r"(?:fontsize|labelsize|size)\s*=\s*(?:\"(?:x{0,2}-?small|smaller)\"|(\d+(?:\.\d+)?))")
    found = []
    for path in root.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for m in small.finditer(line):
                if m.group(1) is None or float(m.group(1)) < P.MIN_FONT_PT:
                    if "fontsize" in m.group(0) or "labelsize" in m.group(0) or '"' in m.group(0):
                        found.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)

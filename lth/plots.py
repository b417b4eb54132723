"""Seaborn figures from the tidy DataFrames of :mod:`lth.experiments` (PAPER.md section 10).

Every figure of the paper's kind plots test accuracy at early stopping against the percent of
weights remaining, on a log axis running from the dense network (left) to the sparsest (right),
with the mean over seeds as a line and the min/max over seeds as a band.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FixedLocator, NullLocator


def accuracy_vs_remaining(
    frame: pd.DataFrame,
    hue: str = "criterion",
    *,
    y: str = "test_accuracy",
    title: str = "",
    dashed: tuple[str, ...] = (),
    reference: float | None = None,
    reference_label: str = "",
    ax: plt.Axes | None = None,
) -> plt.Figure:
    """Mean line and min/max band over seeds of ``y`` vs percent remaining, one line per ``hue``.

    ``dashed`` names hue levels drawn dotted (e.g. the sign-losing variants of Figure 4);
    ``reference`` draws a horizontal line (e.g. chance or the dense baseline).
    """
    if frame.empty:
        raise ValueError("nothing to plot: the DataFrame is empty")
    if y == "test_accuracy":  # plotted in percent, as the paper does
        frame = frame.assign(test_accuracy=100 * frame["test_accuracy"])
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 5))
    levels = list(dict.fromkeys(frame[hue]))
    colours = sns.color_palette("tab10" if len(levels) <= 10 else "tab20", len(levels))
    palette = dict(zip(levels, colours, strict=True))
    for level in levels:
        part = frame[frame[hue] == level]
        sns.lineplot(
            data=part,
            x="percent_remaining",
            y=y,
            estimator="mean",
            errorbar=("pi", 100),  # the 0-100 percentile interval: min to max over seeds
            color=palette[level],
            linestyle=":" if level in dashed else "-",
            marker="o",
            markersize=3,
            label=level,
            ax=ax,
        )
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1, label=reference_label)
    ax.set_xscale("log")
    levels_x = sorted(frame["percent_remaining"].round(6).unique(), reverse=True)
    ax.set_xlim(levels_x[0] * 1.15, levels_x[-1] / 1.15)  # dense left, sparsest right
    step = max(1, round(len(levels_x) / 9))
    ax.xaxis.set_major_locator(FixedLocator(levels_x[::step]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.3g}")
    ax.set_xlabel("percent of weights remaining")
    ax.set_ylabel("test accuracy at early stopping (%)" if y == "test_accuracy" else y)
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize="small", ncol=2)
    return ax.figure


def save_png(figure: plt.Figure, path: str | Path, dpi: int = 150) -> Path:
    """Save ``figure`` as PNG, creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight", format="png")
    return path

"""Seaborn figures from the tidy DataFrames of :mod:`lth.experiments` (book/spec.md section 10).

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
from torch import Tensor

#: One colour per mask criterion and per action, the same in every figure of the book (issue
#: "The companion": figures a reader can read). Families share a hue: a sign-gated criterion is a
#: shade of its criterion's colour, and a sign-keeping mask-1 action takes its sign-losing
#: partner's colour (drawn solid against the partner's dotted line, see :data:`DOTTED`).
COLOURS: dict[str, str] = {
    # mask criteria (book/spec.md section 5)
    "large_final": "#1f4e9c",
    "large_final_same_sign": "#4f8fe0",
    "large_final_diff_sign": "#9cc3f5",
    "magnitude_increase": "#1b7a3a",
    "magnitude_increase_same_sign": "#4cbf6b",
    "magnitude_increase_diff_sign": "#a8e0b5",
    "small_final": "#d62728",
    "large_init": "#9467bd",
    "small_init": "#e377c2",
    "large_init_large_final": "#17becf",
    "small_init_small_final": "#ff7f0e",
    "movement": "#8c564b",
    "random": "#7f7f7f",
    # mask-1 actions (section 6): each sign-keeping variant in its sign-losing partner's colour
    "rewind": "#1f4e9c",
    "reinit": "#d62728",
    "reinit_same_sign": "#d62728",
    "reshuffle": "#ff7f0e",
    "reshuffle_same_sign": "#ff7f0e",
    "constant": "#9467bd",
    "constant_same_sign": "#9467bd",
    "reinit_fresh": "#8c564b",
    # mask-0 actions (section 7)
    "zero": "#1f4e9c",
    "freeze_init": "#d62728",
    "variant_1": "#1b7a3a",
    "variant_2": "#ff7f0e",
    "random_zero_control": "#7f7f7f",
}

#: Curves drawn dotted wherever they appear: the sign-losing mask-1 actions and reinit_fresh,
#: the sign-flipping criteria, and the random control of the mask-0 actions.
DOTTED: frozenset[str] = frozenset(
    {
        "reinit",
        "reshuffle",
        "constant",
        "reinit_fresh",
        "large_final_diff_sign",
        "magnitude_increase_diff_sign",
        "random_zero_control",
    }
)


def colours_for(levels: list[str]) -> dict[str, object]:
    """Each level's colour: its own from :data:`COLOURS`, else (a criterion or action added
    later) one of a fixed palette in order of appearance."""
    extra = iter(sns.color_palette("tab10", 10) * 3)
    return {level: COLOURS.get(level) or next(extra) for level in levels}


def accuracy_vs_remaining(
    frame: pd.DataFrame,
    hue: str = "criterion",
    *,
    y: str = "test_accuracy",
    title: str = "",
    dashed: tuple[str, ...] | None = None,
    emphasis: tuple[str, ...] = (),
    reference: float | None = None,
    reference_label: str = "",
    ax: plt.Axes | None = None,
) -> plt.Figure:
    """Mean line and min/max band over seeds of ``y`` vs percent remaining, one line per ``hue``.

    Colours come from :data:`COLOURS` (the same curve has the same colour on every page);
    ``dashed`` names hue levels drawn dotted (default: :data:`DOTTED`); with ``emphasis``, those
    levels are drawn strong and the others light, without bands. ``reference`` draws a
    horizontal line (e.g. chance or the dense baseline). The legend sits outside the axes.
    """
    if frame.empty:
        raise ValueError("nothing to plot: the DataFrame is empty")
    if y == "test_accuracy":  # plotted in percent, as the paper does
        frame = frame.assign(test_accuracy=100 * frame["test_accuracy"])
    labels = {
        "test_accuracy": "test accuracy at early stopping (%)",
        "gap_points": "gap in test accuracy (points), paired by seed",
    }
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    levels = list(dict.fromkeys(frame[hue]))
    palette = colours_for(levels)
    dotted = DOTTED if dashed is None else set(dashed)
    for level in levels:
        part = frame[frame[hue] == level]
        light = bool(emphasis) and level not in emphasis
        sns.lineplot(
            data=part,
            x="percent_remaining",
            y=y,
            estimator="mean",
            # the 0-100 percentile interval: min to max over seeds (none for light curves)
            errorbar=None if light else ("pi", 100),
            color=palette[level],
            linestyle=":" if level in dotted else "-",
            linewidth=1.0 if light else (2.4 if emphasis else 1.6),
            alpha=0.45 if light else 1.0,
            marker="o",
            markersize=2 if light else 3,
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
    ax.set_ylabel(labels.get(y, y))
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax.figure


def validation_curves(
    curves: pd.DataFrame, runs: pd.DataFrame, length: int | None = None, title: str = ""
) -> plt.Figure:
    """The validation loss of dense runs against the iteration (``curves``: precision, seed,
    iteration, val_loss), each run's early-stopping point (``runs``' "early stop (iteration)",
    book/spec.md section 3) marked on its curve, and a chosen training ``length`` as a vertical
    line (issue "The paper at full scale": the conv nets' Figure 3 length is read from here)."""
    if curves.empty:
        raise ValueError("nothing to plot: no validation curves")
    figure, ax = plt.subplots(figsize=(9, 4.5))
    palette = dict(zip(("fp32", "bf16"), sns.color_palette("tab10", 2), strict=True))
    for (precision, seed), part in curves.groupby(["precision", "seed"], sort=False):
        colour = palette.get(precision, "grey")
        style = "-" if seed == curves["seed"].min() else "--"
        ax.plot(
            part["iteration"],
            part["val_loss"],
            color=colour,
            linestyle=style,
            linewidth=1.2,
            label=f"{precision}, seed {seed}",
        )
        row = runs[(runs["precision"] == precision) & (runs["seed"] == seed)]
        if not row.empty:
            stop = int(row["early stop (iteration)"].iloc[0])
            loss = part.set_index("iteration")["val_loss"].get(stop)
            if loss is not None:
                ax.plot([stop], [loss], marker="v", color=colour, markersize=8)
    if length is not None:
        ax.axvline(length, color="black", linewidth=1.2, label=f"chosen length ({length:,})")
    ax.set_xlabel("training iteration")
    ax.set_ylabel("validation loss")
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return figure


#: Figure 7's headline curves (book/spec.md section 8): the sign-keeping criteria, drawn strong.
FIGURE7_HEADLINE = ("large_final_same_sign", "magnitude_increase_same_sign")


def figure7(
    untrained: pd.DataFrame, dense_accuracy: float, learned_dwr: pd.Series, title: str
) -> plt.Figure:
    """Figure 7 (book/spec.md section 8): the untrained supermasks' test accuracy against the
    percent of weights remaining, one panel per treatment (init weights, signed constants),
    the :data:`FIGURE7_HEADLINE` criteria strong; chance, the trained dense networks' mean
    ``dense_accuracy`` (a fraction) and the learned supermasks with DWR (``learned_dwr``: mean
    test accuracy by weights, possibly empty) as horizontal lines."""
    figure, axes = plt.subplots(1, 2, figsize=(15, 5.5), sharey=True)
    panels = (("init", "init weights"), ("signed_constant", "signed constant"))
    for ax, (treatment, label) in zip(axes, panels, strict=True):
        part = untrained[untrained["treatment"] == treatment]
        if part.empty:  # what exists of a campaign target may lack a treatment yet
            ax.text(0.5, 0.5, "no records yet", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(label)
            continue
        accuracy_vs_remaining(
            part,
            hue="criterion",
            emphasis=FIGURE7_HEADLINE,
            ax=ax,
            reference=10.0,
            reference_label="chance (10%)",
        )
        ax.axhline(100 * dense_accuracy, color="black", linewidth=1, label="trained dense network")
        if treatment in learned_dwr:
            ax.axhline(
                100 * learned_dwr[treatment],
                color="black",
                linestyle="--",
                linewidth=1.5,
                label=f"learned supermask + DWR ({label})",
            )
        ax.set_ylabel("test accuracy without training (%)")
        kept = "w_i" if treatment == "init" else "sigma_L x sign(w_i)"
        ax.set_title(f"{label}: the kept weights are {kept}")
    for ax in axes:  # one legend, outside the right-hand axes
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    handles, labels = next(
        (ax.get_legend_handles_labels() for ax in axes[::-1] if ax.lines), ([], [])
    )
    axes[1].legend(
        handles,
        labels,
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )
    figure.suptitle(title)
    return figure


def gap_to(frame: pd.DataFrame, reference: str, hue: str = "criterion") -> pd.DataFrame:
    """``frame`` with ``gap_points``: each run's test accuracy minus that of the ``reference``
    curve's run of the same seed and round, in points. Runs of one seed share their initial
    weights, so the paired gap shows an ordering that seed-to-seed spread hides in the
    paper-style panel."""
    keys = ["seed", "round"]
    ref = frame[frame[hue] == reference].set_index(keys)["test_accuracy"]
    if ref.empty:
        raise ValueError(f"no {hue} {reference!r} in the frame to measure gaps against")
    joined = frame.join(ref.rename("reference_accuracy"), on=keys)
    return joined.assign(gap_points=100 * (joined["test_accuracy"] - joined["reference_accuracy"]))


#: The lottery ticket's value of each column a pruning figure's curves differ by (book/spec.md
#: sections 5-7: criterion large_final, mask-1 action rewind, mask-0 action zero): the curve a
#: figure's gap panel measures every other against (:func:`with_gap_panel`).
LOTTERY_TICKET: dict[str, str] = {"criterion": "large_final", "mask1": "rewind", "mask0": "zero"}

#: The gap panel's lowest point (points): curves further below leave it, so that the gaps the
#: claims speak about (a point or two) stay readable beside a curve that collapses.
GAP_ZOOM = -5.0


def gap_reference(frame: pd.DataFrame, hue: str, reference: str | None = None) -> str | None:
    """The curve :func:`with_gap_panel` measures ``frame``'s others against: ``reference``
    (default: :data:`LOTTERY_TICKET`'s ``hue`` value), or None where ``frame`` lacks it, has
    only one curve or no pruned network."""
    reference = reference or LOTTERY_TICKET.get(hue)
    levels = set(frame[hue])
    pruned = bool((frame["percent_remaining"] < 100).any())
    return reference if reference in levels and len(levels) > 1 and pruned else None


def with_gap_panel(
    frame: pd.DataFrame,
    hue: str = "criterion",
    *,
    title: str = "",
    dashed: tuple[str, ...] | None = None,
    reference: str | None = None,
) -> plt.Figure:
    """A pruning figure: the paper-style panel (:func:`accuracy_vs_remaining`) above the same
    runs as their gap to ``reference`` (default: :data:`LOTTERY_TICKET`'s ``hue`` value) of the
    same seed and round (:func:`gap_to`), zoomed to :data:`GAP_ZOOM` points and above. Runs of one
    seed share their initial weights, so the paired gaps show the ordering the paper's claims
    speak about, which seed-to-seed spread hides in the top panel. Without a reference
    (:func:`gap_reference`), the top panel alone."""
    reference = gap_reference(frame, hue, reference)
    if reference is None:
        return accuracy_vs_remaining(frame, hue=hue, dashed=dashed, title=title)
    figure, (top, gaps) = plt.subplots(2, 1, figsize=(9, 10))
    accuracy_vs_remaining(frame, hue=hue, dashed=dashed, ax=top, title=title)
    paired = gap_to(frame, reference, hue)
    accuracy_vs_remaining(
        paired,
        hue=hue,
        y="gap_points",
        dashed=dashed,
        ax=gaps,
        reference=0.0,
        title=f"The same runs, each minus {reference} of the same seed and round",
    )
    if gaps.get_ylim()[0] < GAP_ZOOM:
        gaps.set_ylim(GAP_ZOOM, max(1.0, paired["gap_points"].max() + 0.5))  # the bands' top
        gaps.set_title(f"{gaps.get_title()} (zoom: curves below {GAP_ZOOM:g} points leave it)")
    return figure


def save_png(figure: plt.Figure, path: str | Path, dpi: int = 150) -> Path:
    """Save ``figure`` as PNG, creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight", format="png")
    return path


def criteria_plane(
    w_i: Tensor, w_f: Tensor, masks: dict[str, Tensor], title: str = "", columns: int = 3
) -> plt.Figure:
    """Each criterion's kept weights in the plane of start value ``w_i`` (x) and final value
    ``w_f`` (y) of one trained layer: one panel per criterion, the kept weights in its colour
    over the pruned ones in grey (the regions the paper's criteria describe, book/spec.md
    section 5, drawn from real weights)."""
    x, y = w_i.reshape(-1).numpy(), w_f.reshape(-1).numpy()
    rows = -(-len(masks) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(3.6 * columns, 3.4 * rows), sharex=True, sharey=True
    )
    colours = colours_for(list(masks))
    x_limit, y_limit = 1.05 * abs(x).max(), 1.05 * abs(y).max()  # each axis its own scale
    for ax, (name, mask) in zip(axes.reshape(-1), masks.items(), strict=False):
        kept = mask.reshape(-1).bool().numpy()
        ax.scatter(x[~kept], y[~kept], s=0.3, color="0.88", rasterized=True)
        ax.scatter(x[kept], y[kept], s=0.3, color=colours[name], rasterized=True)
        ax.axhline(0, color="0.5", linewidth=0.5)
        ax.axvline(0, color="0.5", linewidth=0.5)
        ax.set_xlim(-x_limit, x_limit)
        ax.set_ylim(-y_limit, y_limit)
        ax.set_title(f"{name}: {100 * kept.mean():.0f}% kept", fontsize="medium")
    for ax in axes.reshape(-1)[len(masks) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("w_i (start)")
    for ax in axes[:, 0]:
        ax.set_ylabel("w_f (end of training)")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure

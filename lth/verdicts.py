"""Verdicts on the paper's claims that respect seed noise (DESIGN.md, "The book"; issue "The
companion").

A claim is one or more :class:`Comparison` parts: curve(s) said to be above others (``"above"``),
or to do as well as others (``"as_well"``, within a tolerance), over a range of levels of weights
remaining. Each part is judged by one test, fixed once for all claims:

- **Paired by seed.** Runs of one seed share their initial weights, so a part's evidence is, per
  seed, the gap between the two curves averaged over the part's levels (accuracy points; with
  several curves on a side, the lowest "better" against the highest "worse" at each level).
- **Noise.** A gap counts only beyond ``margin`` points: twice the standard error of the
  difference of two accuracies measured on the test set (``100 * sqrt(2 p (1 - p) / n_test)``,
  with ``p`` the mean accuracy of the runs compared).
- **Three values.** For ``"above"``: *reproduced* if every seed's gap is above the margin
  (plus ``at_least`` points for a claim of "much" better); *not reproduced* if every seed's gap
  is below minus the margin (the opposite holds beyond noise). For ``"as_well"``: *reproduced*
  if no seed's gap is below minus (tolerance + margin); *not reproduced* if every seed's is.
  *Inconclusive* otherwise (seeds disagree, or gaps within noise), with fewer than
  :data:`MIN_SEEDS` seeds, or with no level in the part's range.

A claim is reproduced if all its parts are, not reproduced if any part is, else inconclusive.

A number the paper reports (an accuracy) is judged by :func:`judge_value` with the same margin:
*reproduced* if every seed's value lies within ``tolerance`` + margin of the paper's, *not
reproduced* if every seed's lies beyond it on the same side, *inconclusive* otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

#: Fewer seeds than this make every verdict inconclusive: one seed cannot show seed noise.
MIN_SEEDS = 2

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


@dataclass(frozen=True)
class Comparison:
    """One testable part of a claim: ``better`` curves lie above ``worse`` ones (``"above"``),
    by at least ``at_least`` points beyond noise; or do as well as them, no more than
    ``tolerance`` points below beyond noise (``"as_well"``), at the levels whose percent of
    weights remaining lies in ``remaining`` (round 0 excluded)."""

    better: tuple[str, ...]
    worse: tuple[str, ...]
    relation: str = "above"
    remaining: tuple[float, float] = (0.0, 100.0)
    tolerance: float = 0.0
    at_least: float = 0.0  # "above": by at least this many points beyond noise ("much")

    def __post_init__(self) -> None:
        if self.relation not in ("above", "as_well"):
            raise ValueError(f"unknown relation {self.relation!r}; accepted: above, as_well")


@dataclass(frozen=True)
class Verdict:
    """A part's (or a claim's) verdict, with the evidence: per-seed gaps in points, the
    margin, and how many levels were compared."""

    verdict: str
    gaps: tuple[float, ...] = ()
    margin: float = float("nan")
    levels: int = 0
    reason: str = ""


def seed_gaps(frame: pd.DataFrame, part: Comparison, hue: str) -> tuple[pd.Series, int, float]:
    """Per seed, the gap (points) between the part's lowest ``better`` and highest ``worse``
    curve, averaged over the levels in range that every curve of the part reached for that
    seed; the number of levels; the mean accuracy of the runs compared."""
    low, high = part.remaining
    rows = frame[(frame["round"] > 0) & frame["percent_remaining"].between(low, high)]
    rows = rows[rows[hue].isin(part.better + part.worse)]
    table = rows.pivot_table(index=["seed", "round"], columns=hue, values="test_accuracy")
    table = table.dropna()  # a (seed, level) counts only where every curve of the part has a run
    if table.empty or not set(part.better + part.worse) <= set(table.columns):
        return pd.Series(dtype=float), 0, float("nan")
    gap = 100 * (table[list(part.better)].min(axis=1) - table[list(part.worse)].max(axis=1))
    levels = table.index.get_level_values("round").nunique()
    return gap.groupby(level="seed").mean(), levels, float(table.to_numpy().mean())


def judge(frame: pd.DataFrame, part: Comparison, hue: str = "criterion") -> Verdict:
    """The :class:`Verdict` of one part on ``frame`` (one row per run: ``hue``, ``seed``,
    ``round``, ``percent_remaining``, ``test_accuracy`` in [0, 1], ``n_test``)."""
    gaps, levels, accuracy = seed_gaps(frame, part, hue)
    if levels == 0:
        return Verdict(INCONCLUSIVE, reason="no level of the claim's range in these runs")
    margin = noise_margin(accuracy, int(frame["n_test"].min()))
    values = tuple(float(g) for g in gaps)
    if len(values) < MIN_SEEDS:
        return Verdict(INCONCLUSIVE, values, margin, levels, f"fewer than {MIN_SEEDS} seeds")
    if part.relation == "above":  # above beyond noise in every seed, or below it in every seed
        holds = all(g > margin + part.at_least for g in values)
        opposite = all(g < -margin for g in values)
    else:  # as well: no seed worse beyond tolerance and noise, or every seed worse beyond them
        holds = all(g > -part.tolerance - margin for g in values)
        opposite = all(g < -part.tolerance - margin for g in values)
    if holds:
        return Verdict(REPRODUCED, values, margin, levels)
    if opposite:
        return Verdict(NOT_REPRODUCED, values, margin, levels)
    return Verdict(INCONCLUSIVE, values, margin, levels, "within seed or test-set noise")


def combine(verdicts: Sequence[Verdict]) -> str:
    """A claim's verdict from its parts' verdicts."""
    values = [v.verdict for v in verdicts]
    if values and all(v == REPRODUCED for v in values):
        return REPRODUCED
    if NOT_REPRODUCED in values:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def noise_margin(accuracy: float, n_test: int) -> float:
    """Twice the standard error, in points, of the difference of two accuracies near
    ``accuracy`` (in [0, 1]) each measured on ``n_test`` test images."""
    return 2 * 100 * math.sqrt(2 * accuracy * (1 - accuracy) / n_test)


def judge_value(values: Sequence[float], reported: float, n_test: int, tolerance: float) -> Verdict:
    """The verdict on a number the paper reports (``reported``, in percent) from our values
    per seed (in percent): see the module docstring. The gaps are ours minus the paper's."""
    gaps = tuple(float(v) - reported for v in values)
    if not gaps:
        return Verdict(INCONCLUSIVE, reason="no runs")
    margin = noise_margin(sum(values) / len(values) / 100, n_test)
    if len(gaps) < MIN_SEEDS:
        return Verdict(INCONCLUSIVE, gaps, margin, 1, f"fewer than {MIN_SEEDS} seeds")
    band = tolerance + margin
    if all(abs(g) <= band for g in gaps):
        return Verdict(REPRODUCED, gaps, margin, 1)
    if all(g > band for g in gaps) or all(g < -band for g in gaps):
        return Verdict(NOT_REPRODUCED, gaps, margin, 1)
    return Verdict(INCONCLUSIVE, gaps, margin, 1, "seeds on both sides of the band")

"""The paper's claims as testable orderings of curves (lth.paper)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lth.actions import MASK0_ACTIONS, MASK1_ACTIONS
from lth.criteria import CRITERIA
from lth.paper import (
    FIGURE3_CLAIMS,
    FIGURE3_CRITERIA,
    FIGURE4_CLAIMS,
    FIGURE4_MASK1,
    FIGURE5_CLAIMS,
    FIGURE5_MASK0,
    FIGURE_S5_CLAIMS,
    FIGURE_S5_CRITERIA,
    TABLE1,
    Claim,
    check_claim,
    claims_markdown,
)


def frame(curves: dict[str, list[float]], remaining=(100.0, 80.0, 64.0, 8.0)) -> pd.DataFrame:
    """Two seeds per point, 0.2 points apart, around the given mean accuracies (percent)."""
    rows = []
    for name, accuracies in curves.items():
        for r, (acc, rem) in enumerate(zip(accuracies, remaining, strict=True)):
            for seed, offset in ((0, -0.1), (1, 0.1)):
                rows.append(
                    {
                        "criterion": name,
                        "seed": seed,
                        "round": r,
                        "percent_remaining": rem,
                        "test_accuracy": (acc + offset) / 100,
                    }
                )
    return pd.DataFrame(rows)


RUNS = frame(
    {
        "a": [97.0, 98.0, 98.0, 97.0],
        "b": [97.0, 97.5, 98.5, 96.0],
        "c": [97.0, 96.0, 95.0, 90.0],
    }
)


def test_check_claim_counts_levels_and_gaps_by_hand():
    # a vs c at rounds 1-3: gaps 2.0, 3.0, 7.0 points (the dense round is left out)
    result = check_claim(RUNS, Claim("a beats c", ("a",), ("c",)))
    assert result["levels"] == 3 and result["agree"] == 3
    assert result["mean_gap"] == pytest.approx(4.0)
    assert result["min_gap"] == pytest.approx(2.0)


def test_check_claim_uses_the_worst_better_and_the_best_worse_curve():
    # min(a, b) - c: 1.5, 3.0, 6.0
    result = check_claim(RUNS, Claim("a and b beat c", ("a", "b"), ("c",)))
    assert result["min_gap"] == pytest.approx(1.5)
    # b vs a: -0.5, +0.5, -1.0 -> holds at one level, at two with a 0.5-point tolerance
    assert check_claim(RUNS, Claim("b beats a", ("b",), ("a",)))["agree"] == 1
    assert check_claim(RUNS, Claim("b ~ a", ("b",), ("a",), tolerance=0.5))["agree"] == 2


def test_check_claim_restricts_to_a_range_of_remaining_weights():
    low = check_claim(RUNS, Claim("", ("b",), ("a",), remaining=(0.0, 10.0)))
    assert low["levels"] == 1 and low["mean_gap"] == pytest.approx(-1.0)
    none = check_claim(RUNS, Claim("", ("b",), ("a",), remaining=(1.0, 5.0)))
    assert none["levels"] == 0 and math.isnan(none["mean_gap"])


def test_check_claim_names_missing_curves():
    with pytest.raises(ValueError, match="no criterion"):
        check_claim(RUNS, Claim("", ("a",), ("zz",)))


def test_claims_markdown_gives_a_verdict_per_claim():
    text = claims_markdown(
        RUNS,
        (
            Claim("a beats c", ("a",), ("c",)),
            Claim("b beats a", ("b",), ("a",)),
            Claim("a beats zz", ("a",), ("zz",)),
        ),
    )
    lines = text.splitlines()
    assert "**supported**" in lines[0] and "3 of 3 levels" in lines[0]
    assert "**not supported**" in lines[1] and "1 of 3 levels" in lines[1]
    assert "Not tested" in lines[2] and "zz" in lines[2]


def test_claims_name_only_known_curves():
    assert {n for c in FIGURE3_CLAIMS for n in c.better + c.worse} <= set(FIGURE3_CRITERIA)
    assert {n for c in FIGURE4_CLAIMS for n in c.better + c.worse} <= set(FIGURE4_MASK1)
    assert {n for c in FIGURE5_CLAIMS for n in c.better + c.worse} <= set(FIGURE5_MASK0)
    assert {n for c in FIGURE_S5_CLAIMS for n in c.better + c.worse} <= set(FIGURE_S5_CRITERIA)
    assert set(FIGURE4_MASK1) <= set(MASK1_ACTIONS)
    assert set(FIGURE5_MASK0) <= set(MASK0_ACTIONS)
    assert set(FIGURE_S5_CRITERIA) <= set(CRITERIA)


def test_table1_marks_unconfirmed_values():
    assert str(TABLE1["learned supermask"]["fc"]) == "95.3"
    assert str(TABLE1["trained dense baseline"]["fc"]) == "97.7 (unconfirmed)"


def test_table1_rows_are_the_labels_our_table_uses():
    from lth.paper import TABLE1_DENSE_ROW, TABLE1_LEARNED_ROWS, TABLE1_UNTRAINED_ROWS

    labels = {*TABLE1_UNTRAINED_ROWS.values(), *TABLE1_LEARNED_ROWS.values(), TABLE1_DENSE_ROW}
    assert set(TABLE1) <= labels

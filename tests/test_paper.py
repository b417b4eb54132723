"""The paper's claims as testable orderings of curves (lth.paper)."""

from __future__ import annotations

import pandas as pd

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
    claims_markdown,
)
from lth.verdicts import Comparison


def frame(curves: dict[str, list[float]], remaining=(100.0, 80.0, 64.0, 8.0)) -> pd.DataFrame:
    """Two seeds per point, 0.1 points either side of the given mean accuracies (percent),
    the same side for every curve of a seed (so paired gaps are exactly the mean gaps)."""
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
                        "n_test": 10_000,
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


def test_claims_markdown_gives_a_three_valued_verdict_per_claim():
    text = claims_markdown(
        RUNS,
        (
            Claim("a beats c", "test", (Comparison(("a",), ("c",)),)),
            Claim("c beats a", "test", (Comparison(("c",), ("a",)),)),
            Claim(
                "b as well as a, and b above a at 50-100%",
                "test",
                (
                    Comparison(("b",), ("a",), relation="as_well", tolerance=0.5),
                    Comparison(("b",), ("a",), remaining=(50.0, 100.0)),
                ),
            ),
            Claim("a beats zz", "test", (Comparison(("a",), ("zz",)),)),
        ),
    )
    claims = [line for line in text.splitlines() if line.startswith("- ")]
    assert "**reproduced**" in claims[0]
    assert "**not reproduced**" in claims[1]
    # b - a: -0.5, +0.5, -1.0 (mean -0.33): as well, within 0.5 + noise; at 50-100%
    # remaining -0.5 and +0.5 average to 0: inconclusive; so the claim is inconclusive
    assert "**inconclusive**" in claims[2]
    assert "Not tested" in claims[3] and "`zz`" in claims[3]
    assert "gap per seed +4.00, +4.00 points over 3 level(s)" in text  # (2 + 3 + 7) / 3


def test_claims_name_only_known_curves():
    assert set().union(*(c.curves for c in FIGURE3_CLAIMS)) <= set(FIGURE3_CRITERIA)
    assert set().union(*(c.curves for c in FIGURE4_CLAIMS)) <= set(FIGURE4_MASK1)
    assert set().union(*(c.curves for c in FIGURE5_CLAIMS)) <= set(FIGURE5_MASK0)
    assert set().union(*(c.curves for c in FIGURE_S5_CLAIMS)) <= set(FIGURE_S5_CRITERIA)
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

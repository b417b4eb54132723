"""Three-valued verdicts on synthetic curves (issue "The companion"): every verdict is
reachable, and gaps the size of seed or test-set noise are inconclusive."""

from __future__ import annotations

import pandas as pd
import pytest

from lth.verdicts import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    Comparison,
    Verdict,
    combine,
    judge,
    judge_value,
    noise_margin,
)

LEVELS = {1: 80.0, 2: 64.0, 3: 51.2, 4: 41.0}  # round -> percent remaining


def curves(gaps_by_seed: dict[int, float], base: float = 0.97, n_test: int = 10_000):
    """Two curves, "a" and "b", per seed: b at ``base``, a at ``base + gap`` (points / 100)
    at every level; plus the dense round 0."""
    rows = []
    for seed, gap in gaps_by_seed.items():
        for name, acc in (("a", base + gap / 100), ("b", base)):
            rows.append((name, seed, 0, 100.0, 0.98, n_test))
            for r, remaining in LEVELS.items():
                rows.append((name, seed, r, remaining, acc, n_test))
    columns = ["criterion", "seed", "round", "percent_remaining", "test_accuracy", "n_test"]
    return pd.DataFrame(rows, columns=columns)


ABOVE = Comparison(("a",), ("b",))


def test_a_gap_beyond_noise_in_every_seed_is_reproduced():
    verdict = judge(curves({0: 1.0, 1: 0.8, 2: 1.2}), ABOVE)
    assert verdict.verdict == REPRODUCED and verdict.levels == 4
    p = 0.975  # the mean accuracy of the runs compared: a at 97.8-98.2%, b at 97%
    assert verdict.margin == pytest.approx(2 * 100 * (2 * p * (1 - p) / 10_000) ** 0.5)


def test_the_opposite_beyond_noise_in_every_seed_is_not_reproduced():
    assert judge(curves({0: -1.0, 1: -0.7}), ABOVE).verdict == NOT_REPRODUCED


def test_noise_sized_gaps_and_disagreeing_seeds_are_inconclusive():
    margin = judge(curves({0: 1.0, 1: 1.0}), ABOVE).margin  # about 0.48 points
    assert judge(curves({0: margin / 2, 1: margin / 3}), ABOVE).verdict == INCONCLUSIVE
    assert judge(curves({0: 2.0, 1: -2.0}), ABOVE).verdict == INCONCLUSIVE
    # a smaller test set is noisier: the same gap is no longer beyond it
    assert judge(curves({0: 0.6, 1: 0.6}, n_test=1_000), ABOVE).verdict == INCONCLUSIVE


def test_one_seed_or_no_level_in_range_is_inconclusive():
    one = judge(curves({0: 5.0}), ABOVE)
    assert one.verdict == INCONCLUSIVE and "seeds" in one.reason
    sparse_only = Comparison(("a",), ("b",), remaining=(0.0, 10.0))
    assert judge(curves({0: 5.0, 1: 5.0}), sparse_only).verdict == INCONCLUSIVE


def test_as_well_within_tolerance_and_clearly_worse():
    as_well = Comparison(("a",), ("b",), relation="as_well", tolerance=0.5)
    assert judge(curves({0: -0.3, 1: 0.2}), as_well).verdict == REPRODUCED
    assert judge(curves({0: -2.0, 1: -1.5}), as_well).verdict == NOT_REPRODUCED
    assert judge(curves({0: -1.2, 1: 0.1}), as_well).verdict == INCONCLUSIVE  # seeds disagree


def test_much_better_needs_its_extra_points():
    much = Comparison(("a",), ("b",), at_least=1.0)
    assert judge(curves({0: 0.9, 1: 0.9}), much).verdict == INCONCLUSIVE  # better, not much
    assert judge(curves({0: 1.8, 1: 2.0}), much).verdict == REPRODUCED


def test_levels_in_range_only_and_several_curves_per_side():
    frame = curves({0: 1.0, 1: 1.0})
    only_sparse = Comparison(("a",), ("b",), remaining=(0.0, 60.0))
    assert judge(frame, only_sparse).levels == 2
    third = frame[frame["criterion"] == "b"].assign(criterion="c")
    third.loc[third["round"] > 0, "test_accuracy"] += 0.02  # c lies 2 points above b and a
    both = pd.concat([frame, third])
    assert judge(both, Comparison(("a",), ("b", "c"))).verdict == NOT_REPRODUCED


def test_a_claim_combines_its_parts():
    r, n, i = (Verdict(v) for v in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE))
    assert combine([r, r]) == REPRODUCED
    assert combine([r, n, i]) == NOT_REPRODUCED
    assert combine([r, i]) == INCONCLUSIVE
    assert combine([]) == INCONCLUSIVE
    with pytest.raises(ValueError, match="unknown relation"):
        Comparison(("a",), ("b",), relation="better")


def test_a_reported_number_is_judged_by_every_seed_against_a_band():
    # 86% on 10,000 test images: a margin of about 0.98 point, a band of 1.98 around 86
    margin = noise_margin(0.86, 10_000)
    assert margin == pytest.approx(0.98, abs=0.01)
    assert judge_value([85.0, 86.5, 87.5], 86.0, 10_000, 1.0).verdict == REPRODUCED
    assert judge_value([83.5, 83.0, 82.0], 86.0, 10_000, 1.0).verdict == NOT_REPRODUCED
    assert judge_value([88.5, 89.0], 86.0, 10_000, 1.0).verdict == NOT_REPRODUCED
    inconclusive = judge_value([83.0, 86.0, 89.0], 86.0, 10_000, 1.0)  # both sides
    assert inconclusive.verdict == INCONCLUSIVE and inconclusive.gaps == (-3.0, 0.0, 3.0)
    assert judge_value([86.0], 86.0, 10_000, 1.0).verdict == INCONCLUSIVE  # one seed
    assert judge_value([], 86.0, 10_000, 1.0).verdict == INCONCLUSIVE

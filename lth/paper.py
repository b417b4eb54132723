"""What the paper reports, for comparison with our runs (PAPER.md sections 5, 8, 9 and 10).

Every value carries its source; values from secondary sources are flagged ``confirmed=False``
and must be labelled "(unconfirmed)" wherever the book quotes them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reported:
    """One number the paper reports (accuracy in percent)."""

    value: float
    confirmed: bool = True

    def __str__(self) -> str:
        return f"{self.value:.1f}" + ("" if self.confirmed else " (unconfirmed)")


#: Figure 3's qualitative claims (paraphrased from the paper's section 2 and Figure 3), each
#: with the criteria it compares, so a notebook can test it against our runs.
FIGURE3_CLAIMS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "Criteria that keep large final weights (large_final, magnitude_increase, "
        "large_init_large_final) do best, well above random pruning.",
        ("large_final", "magnitude_increase", "large_init_large_final"),
        ("random",),
    ),
    (
        "magnitude_increase does as well as large_final (the lottery ticket's criterion).",
        ("magnitude_increase",),
        ("large_final",),
    ),
    (
        "movement also beats random pruning.",
        ("movement",),
        ("random",),
    ),
    (
        "Criteria that keep small final weights (small_final, small_init_small_final) do worse "
        "than random pruning.",
        ("random",),
        ("small_final", "small_init_small_final"),
    ),
)

#: Table 1 (PAPER.md section 9): best accuracy over prune levels, mean of four or more runs.
TABLE1: dict[str, dict[str, Reported]] = {
    "large_final_same_sign, init weights": {
        "fc": Reported(79.3, False),
        "conv2": Reported(22.3, False),
        "conv4": Reported(23.7, False),
        "conv6": Reported(24.0, False),
    },
    "large_final_same_sign, signed constant": {
        "fc": Reported(86.3),
        "conv2": Reported(37.4, False),
        "conv4": Reported(39.7, False),
        "conv6": Reported(41.0),
    },
    "learned supermask": {
        "fc": Reported(95.3),
        "conv2": Reported(64.4, False),
        "conv4": Reported(65.4),
        "conv6": Reported(65.3, False),
    },
    "learned supermask + DWR": {
        "fc": Reported(97.8, False),
        "conv2": Reported(66.3, False),
        "conv4": Reported(72.5),
        "conv6": Reported(76.5),
    },
    "trained dense baseline": {
        "fc": Reported(97.7, False),
        "conv2": Reported(69.2),
        "conv4": Reported(75.4),
        "conv6": Reported(78.3),
    },
}


def check_claim(
    frame, better: tuple[str, ...], worse: tuple[str, ...], hue: str = "criterion"
) -> dict:
    """Test "every ``better`` curve lies at or above every ``worse`` curve" on our runs.

    At every pruning level after the dense one, compare the lowest seed-mean accuracy of the
    ``better`` group with the highest of the ``worse`` group. Returns the number of levels, how
    many of them agree with the claim, and the mean and smallest gap in accuracy points.
    """
    sparse = frame[frame["round"] > 0]
    means = sparse.groupby([hue, "round"])["test_accuracy"].mean().unstack(hue)
    missing = [c for c in better + worse if c not in means.columns]
    if missing:
        raise ValueError(f"the runs have no {hue} {missing}")
    gap = 100 * (means[list(better)].min(axis=1) - means[list(worse)].max(axis=1))
    return {
        "levels": len(gap),
        "agree": int((gap >= 0).sum()),
        "mean_gap": float(gap.mean()),
        "min_gap": float(gap.min()),
    }


#: What Figures 4, 5 and S5 compare (PAPER.md sections 6, 7 and 10), in legend order.
FIGURE4_MASK1: tuple[str, ...] = (
    "rewind",
    "reinit",
    "reshuffle",
    "constant",
    "reinit_same_sign",
    "reshuffle_same_sign",
    "constant_same_sign",
)
FIGURE5_MASK0: tuple[str, ...] = (
    "zero",
    "freeze_init",
    "variant_1",
    "variant_2",
    "random_zero_control",
)
FIGURE_S5_CRITERIA: tuple[str, ...] = (
    "large_final",
    "large_final_same_sign",
    "large_final_diff_sign",
    "magnitude_increase",
    "magnitude_increase_same_sign",
    "magnitude_increase_diff_sign",
)

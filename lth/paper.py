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


@dataclass(frozen=True)
class Claim:
    """A qualitative claim of the paper as an ordering of curves that our runs can test:
    every ``better`` curve lies at or above every ``worse`` curve (less ``tolerance`` accuracy
    points), at the pruning levels whose percent remaining lies in ``remaining``."""

    text: str
    better: tuple[str, ...]
    worse: tuple[str, ...]
    tolerance: float = 0.0
    remaining: tuple[float, float] = (0.0, 100.0)


#: Figure 3 (our paraphrase of the paper's section 2), tested over the criteria.
FIGURE3_CLAIMS: tuple[Claim, ...] = (
    Claim(
        "Criteria that keep large final weights (large_final, magnitude_increase, "
        "large_init_large_final) do best, above random pruning.",
        ("large_final", "magnitude_increase", "large_init_large_final"),
        ("random",),
    ),
    Claim(
        "magnitude_increase does as well as large_final, the lottery ticket's criterion "
        "(within 0.5 points).",
        ("magnitude_increase",),
        ("large_final",),
        tolerance=0.5,
    ),
    Claim("movement also beats random pruning.", ("movement",), ("random",)),
    Claim(
        "Criteria that keep small final weights (small_final, small_init_small_final) do worse "
        "than random pruning.",
        ("random",),
        ("small_final", "small_init_small_final"),
    ),
)

#: Figure 4 (our paraphrase of the paper's section 3), tested over the mask-1 actions.
FIGURE4_CLAIMS: tuple[Claim, ...] = (
    Claim(
        "The three sign-losing variants (reinit, reshuffle, constant) do worse than rewinding.",
        ("rewind",),
        ("reinit", "reshuffle", "constant"),
    ),
    Claim(
        "Each sign-keeping variant does better than every sign-losing one.",
        ("reinit_same_sign", "reshuffle_same_sign", "constant_same_sign"),
        ("reinit", "reshuffle", "constant"),
    ),
    Claim(
        "The sign-keeping variants recover most or all of the lottery ticket's accuracy "
        "(within 1 point of rewind).",
        ("reinit_same_sign", "reshuffle_same_sign", "constant_same_sign"),
        ("rewind",),
        tolerance=1.0,
    ),
)

#: Figure 5 (our paraphrase of the paper's section 4), tested over the mask-0 actions.
FIGURE5_CLAIMS: tuple[Claim, ...] = (
    Claim(
        "Freezing pruned weights at their initial values is worse than setting them to zero, "
        "except at high sparsity (tested where more than 10% of weights remain).",
        ("zero",),
        ("freeze_init",),
        remaining=(10.0, 100.0),
    ),
    Claim(
        "Variant 1 matches the lottery ticket at low pruning (within 0.5 points, where more than "
        "10% remain) ...",
        ("variant_1",),
        ("zero",),
        tolerance=0.5,
        remaining=(10.0, 100.0),
    ),
    Claim(
        "... and beats it at high pruning (10% or fewer remain).",
        ("variant_1",),
        ("zero",),
        remaining=(0.0, 10.0),
    ),
    Claim("Variant 2 does better still.", ("variant_2",), ("variant_1",)),
    Claim(
        "Zeroing a random set of pruned weights of the same size (the official code's control) "
        "does worse than variant 1: which weights are zeroed matters.",
        ("variant_1",),
        ("random_zero_control",),
    ),
)

#: Figure S5 (our paraphrase of the supplementary material), tested over the criteria.
FIGURE_S5_CLAIMS: tuple[Claim, ...] = (
    Claim(
        "Keeping only large final weights whose sign did not flip does as well as large_final "
        "(within 0.5 points).",
        ("large_final_same_sign",),
        ("large_final",),
        tolerance=0.5,
    ),
    Claim(
        "Keeping only weights whose sign flipped does worse than either.",
        ("large_final", "large_final_same_sign"),
        ("large_final_diff_sign",),
    ),
    Claim(
        "The same holds for magnitude_increase: same sign at least as good (within 0.5 points) ...",
        ("magnitude_increase_same_sign",),
        ("magnitude_increase",),
        tolerance=0.5,
    ),
    Claim(
        "... and flipped signs worse.",
        ("magnitude_increase", "magnitude_increase_same_sign"),
        ("magnitude_increase_diff_sign",),
    ),
)

#: Table 1's rows, named once, by what computes them: the best untrained supermask of a
#: (criterion, weight treatment), the learned supermasks of a (weights, dynamic weight rescaling),
#: and the trained dense network (PAPER.md sections 8 and 9). :data:`TABLE1` and
#: :func:`lth.report.table1_ours` both use these labels.
TABLE1_UNTRAINED_ROWS: dict[tuple[str, str], str] = {
    ("large_final_same_sign", "init"): "large_final_same_sign, init weights",
    ("large_final_same_sign", "signed_constant"): "large_final_same_sign, signed constant",
}
TABLE1_LEARNED_ROWS: dict[tuple[str, bool], str] = {
    ("init", False): "learned supermask",
    ("init", True): "learned supermask + DWR",
    ("signed_constant", False): "learned supermask, signed constant weights",
    ("signed_constant", True): "learned supermask + DWR, signed constant weights",
}
TABLE1_DENSE_ROW = "trained dense baseline"

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


def check_claim(frame, claim: Claim, hue: str = "criterion") -> dict:
    """Test ``claim`` on our runs: at every pruning level after the dense one within
    ``claim.remaining``, compare the lowest seed-mean accuracy of the ``better`` curves with the
    highest of the ``worse`` ones. Returns the number of levels, how many agree with the claim
    (gap >= -tolerance), and the mean and smallest gap in accuracy points."""
    low, high = claim.remaining
    sparse = frame[(frame["round"] > 0) & frame["percent_remaining"].between(low, high)]
    if sparse.empty:
        return {"levels": 0, "agree": 0, "mean_gap": float("nan"), "min_gap": float("nan")}
    means = sparse.groupby([hue, "round"])["test_accuracy"].mean().unstack(hue)
    missing = [c for c in claim.better + claim.worse if c not in means.columns]
    if missing:
        raise ValueError(f"the runs have no {hue} {', '.join(missing)}")
    gap = 100 * (means[list(claim.better)].min(axis=1) - means[list(claim.worse)].max(axis=1))
    return {
        "levels": len(gap),
        "agree": int((gap >= -claim.tolerance).sum()),
        "mean_gap": float(gap.mean()),
        "min_gap": float(gap.min()),
    }


def claims_markdown(frame, claims: tuple[Claim, ...], hue: str = "criterion") -> str:
    """A Markdown list: each claim, our verdict, and the numbers behind it."""
    lines = []
    present = set(frame[hue])
    for claim in claims:
        absent = sorted(set(claim.better + claim.worse) - present)
        if absent:
            names = ", ".join(f"`{name}`" for name in absent)
            lines.append(f"- *{claim.text}* Not tested: these runs have no {names}.")
            continue
        result = check_claim(frame, claim, hue)
        if result["levels"] == 0:
            lines.append(f"- *{claim.text}* Not tested: no pruning level in that range.")
            continue
        share = result["agree"] / result["levels"]
        verdict = (
            "supported" if share == 1 else "mostly supported" if share >= 0.75 else "not supported"
        )
        lines.append(
            f"- *{claim.text}* **{verdict}**: the claimed order holds at {result['agree']} of "
            f"{result['levels']} levels; mean gap {result['mean_gap']:+.2f} points, smallest "
            f"{result['min_gap']:+.2f}."
        )
    return "\n".join(lines)


#: What Figures 3, 4, 5 and S5 compare (PAPER.md sections 5, 6, 7 and 10), in legend order.
FIGURE3_CRITERIA: tuple[str, ...] = (
    "large_final",
    "small_final",
    "large_init",
    "small_init",
    "large_init_large_final",
    "small_init_small_final",
    "magnitude_increase",
    "movement",
    "random",
)
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

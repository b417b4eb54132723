"""What the paper reports, for comparison with our runs (book/spec.md sections 5, 8, 9 and 10).

Every value carries its source; values from secondary sources are flagged ``confirmed=False``
and must be labelled "(unconfirmed)" wherever the book quotes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .verdicts import Comparison, Verdict, combine, judge


@dataclass(frozen=True)
class Reported:
    """One number the paper reports (accuracy in percent)."""

    value: float
    confirmed: bool = True

    def __str__(self) -> str:
        return f"{self.value:.1f}" + ("" if self.confirmed else " (unconfirmed)")


#: The paper's own words for how far pruning goes (its introduction, on Frankle & Carbin's
#: results): "aggressively pruned networks (with 95 percent to 99.5 percent of weights pruned)",
#: "networks only moderately pruned (with 50 percent to 90 percent of weights pruned)". The
#: claims below use them for "high" and "low" pruning, in percent of weights remaining.
HIGH_PRUNING = (0.0, 5.0)
LOW_PRUNING = (10.0, 100.0)

#: "Much" worse: the claimed gap must exceed the noise margin by this many points.
MUCH = 1.0

#: A number the paper reports is reproduced when every seed's value lies within this many
#: points of it beyond the noise margin (:func:`lth.verdicts.judge_value`).
VALUE_TOLERANCE = 1.0


@dataclass(frozen=True)
class Claim:
    """A claim of the paper and how it is tested: ``text`` (in double quotes where it is the
    paper's own sentence), ``source`` (where it comes from), and every part it asserts as a
    :class:`lth.verdicts.Comparison` of curves; :func:`lth.verdicts.judge` gives each part's
    verdict and :func:`lth.verdicts.combine` the claim's."""

    text: str
    source: str
    parts: tuple[Comparison, ...]

    @property
    def curves(self) -> set[str]:
        return {name for part in self.parts for name in part.better + part.worse}


_SPEC = "book/spec.md (the reproduction spec's paraphrase; the paper's sentence is not confirmed)"
_OURS = "our paraphrase (the paper's wording was not reachable; see notes/)"

#: Figure 3 (mask criteria, the paper's section 2), over the criteria.
FIGURE3_CLAIMS: tuple[Claim, ...] = (
    Claim(
        "Criteria that keep large final weights (large_final, magnitude_increase, "
        "large_init_large_final) do best: above every criterion that does not.",
        _OURS,
        (
            Comparison(
                ("large_final", "magnitude_increase", "large_init_large_final"),
                ("small_final", "large_init", "small_init", "small_init_small_final", "random"),
            ),
        ),
    ),
    Claim(
        "magnitude_increase does as well as large_final, the lottery ticket's criterion.",
        _OURS,
        (Comparison(("magnitude_increase",), ("large_final",), relation="as_well"),),
    ),
    Claim("movement also beats random pruning.", _OURS, (Comparison(("movement",), ("random",)),)),
    Claim(
        "Criteria that keep small final weights (small_final, small_init_small_final) do worse "
        "than random pruning.",
        _OURS,
        (Comparison(("random",), ("small_final", "small_init_small_final")),),
    ),
)

_SIGN_PAIRS = (
    ("reinit_same_sign", "reinit"),
    ("reshuffle_same_sign", "reshuffle"),
    ("constant_same_sign", "constant"),
)

#: Figure 4 (mask-1 actions, the paper's section 3), over the mask-1 actions.
FIGURE4_CLAIMS: tuple[Claim, ...] = (
    Claim(
        "The three sign-losing variants (reinit, reshuffle, constant) do much worse than "
        f"rewinding (by more than {MUCH:g} point beyond noise).",
        _SPEC + ", section 6",
        tuple(
            Comparison(("rewind",), (v,), at_least=MUCH)
            for v in ("reinit", "reshuffle", "constant")
        ),
    ),
    Claim(
        '"Signs are all you need to make the re-initialized network train": each sign-keeping '
        "variant does better than its sign-losing partner.",
        "the paper's abstract (verbatim), tested as the orderings of Figure 4",
        tuple(Comparison((keep,), (lose,)) for keep, lose in _SIGN_PAIRS),
    ),
    Claim(
        "The three sign-keeping variants recover most or all of the lottery ticket's accuracy "
        "(no more than 1 point below rewinding, beyond noise).",
        _SPEC + ", section 6",
        tuple(
            Comparison((keep,), ("rewind",), relation="as_well", tolerance=1.0)
            for keep, _ in _SIGN_PAIRS
        ),
    ),
)

#: Figure 5 (mask-0 actions, the paper's section 4), over the mask-0 actions.
FIGURE5_CLAIMS: tuple[Claim, ...] = (
    Claim(
        "Freezing pruned weights at their initial values is worse than setting them to zero, "
        "except at high sparsity (tested: zero above freeze_init where more than 5% of weights "
        "remain; freeze_init as well as zero where 5% or fewer do).",
        _SPEC + ", section 7",
        (
            Comparison(("zero",), ("freeze_init",), remaining=(HIGH_PRUNING[1], 100.0)),
            Comparison(("freeze_init",), ("zero",), relation="as_well", remaining=HIGH_PRUNING),
        ),
    ),
    Claim(
        "Variant 1 matches the lottery ticket at low pruning (10% or more remaining) and beats "
        "it at high pruning (5% or fewer).",
        _SPEC + ", section 7",
        (
            Comparison(("variant_1",), ("zero",), relation="as_well", remaining=LOW_PRUNING),
            Comparison(("variant_1",), ("zero",), remaining=HIGH_PRUNING),
        ),
    ),
    Claim(
        "Variant 2 is better still.",
        _SPEC + ", section 7",
        (Comparison(("variant_2",), ("variant_1",)),),
    ),
    Claim(
        "Zeroing a random set of pruned weights of the same size (the official code's control) "
        "does worse than variant 1: which weights are zeroed matters.",
        "ours (the official code's control; the paper's text on it was not reachable)",
        (Comparison(("variant_1",), ("random_zero_control",)),),
    ),
)

#: Figure S5 (sign-gated criteria trained iteratively, the supplementary material).
FIGURE_S5_CLAIMS: tuple[Claim, ...] = (
    Claim(
        "Keeping only large final weights whose sign did not flip does as well as large_final.",
        _OURS,
        (Comparison(("large_final_same_sign",), ("large_final",), relation="as_well"),),
    ),
    Claim(
        "Keeping only weights whose sign flipped does worse than either.",
        _OURS,
        (Comparison(("large_final", "large_final_same_sign"), ("large_final_diff_sign",)),),
    ),
    Claim(
        "The same holds for magnitude_increase: same sign as well, flipped signs worse.",
        _OURS,
        (
            Comparison(
                ("magnitude_increase_same_sign",), ("magnitude_increase",), relation="as_well"
            ),
            Comparison(
                ("magnitude_increase", "magnitude_increase_same_sign"),
                ("magnitude_increase_diff_sign",),
            ),
        ),
    ),
)

#: Table 1's rows, named once, by what computes them: the best untrained supermask of a
#: (criterion, weight treatment), the learned supermasks of a (weights, dynamic weight rescaling),
#: and the trained dense network (book/spec.md sections 8 and 9). :data:`TABLE1` and
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

#: Table 1 (book/spec.md section 9): best accuracy over prune levels, mean of four or more runs.
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


def _part_line(part: Comparison, verdict: Verdict) -> str:
    relation = "as well as" if part.relation == "as_well" else "above"
    low, high = part.remaining
    where = "" if part.remaining == (0.0, 100.0) else f", where {low:g}-{high:g}% remain"
    what = f"{', '.join(part.better)} {relation} {', '.join(part.worse)}{where}"
    if not verdict.gaps:
        return f"  - {what}: *{verdict.verdict}* ({verdict.reason})."
    gaps = ", ".join(f"{g:+.2f}" for g in verdict.gaps)
    reason = f"; {verdict.reason}" if verdict.reason else ""
    return (
        f"  - {what}: *{verdict.verdict}*; gap per seed {gaps} points over {verdict.levels} "
        f"level(s), noise margin {verdict.margin:.2f}{reason}."
    )


def claims_markdown(frame, claims: tuple[Claim, ...], hue: str = "criterion") -> str:
    """A Markdown list: each claim, its source, its verdict (:mod:`lth.verdicts`) and, per part,
    the per-seed gaps behind it."""
    lines = []
    present = set(frame[hue])
    for claim in claims:
        absent = sorted(claim.curves - present)
        if absent:
            names = ", ".join(f"`{name}`" for name in absent)
            lines.append(
                f"- *{claim.text}* ({claim.source}) Not tested: these runs have no {names}."
            )
            continue
        verdicts = [judge(frame, part, hue) for part in claim.parts]
        lines.append(f"- *{claim.text}* ({claim.source}) **{combine(verdicts)}**")
        lines += [_part_line(p, v) for p, v in zip(claim.parts, verdicts, strict=True)]
    return "\n".join(lines)


#: What Figures 3, 4, 5 and S5 compare (book/spec.md sections 5, 6, 7 and 10), in legend order.
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

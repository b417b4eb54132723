"""The scorecard (issue "The companion", item 2): every figure, table and number of the paper
that the book tests, with the paper's value, ours, the profile and how much of it exists, and a
three-valued verdict (:mod:`lth.verdicts`), all computed from the run records; and the
supermask claims of Figure 7 and Table 1, judged the same way (the supermask page shows them).

A number the paper reports is judged by :func:`lth.verdicts.judge_value` with a tolerance of
:data:`lth.paper.VALUE_TOLERANCE` points beyond test-set noise; orderings by
:func:`lth.verdicts.judge`, paired by seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pandas as pd

from . import paper
from .campaign import target_status
from .conv_profile import CONV_NETS, figure3_target
from .criteria import CRITERIA
from .pages import PAGES, get_page
from .report import (
    coverage,
    judged_part,
    rounds_complete,
    seed_list,
    sweep_frame,
    table1_ours,
    target_settings,
)
from .specs import Settings, resolve_settings
from .store import RunStore
from .supermask import TREATMENTS
from .supermask_sweeps import table1_frames
from .targets import Target
from .verdicts import (
    INCONCLUSIVE,
    Comparison,
    Verdict,
    combine,
    judge,
    judge_value,
)


@dataclass(frozen=True)
class Line:
    """One line of the scorecard."""

    item: str  # e.g. "Figure 3" or "Table 1, FC"
    claim: str
    paper: str  # the paper's value, or what its figure shows
    ours: str
    profile: str
    exists: str  # how much of the profile's runs exist
    verdict: str
    page: str  # the book page that shows it


#: The pruning pages, the paper's figure each rebuilds, its claims and the column they compare.
PRUNING_PAGES: tuple[tuple[str, str, tuple[paper.Claim, ...], str], ...] = (
    ("criteria", "Figure 3", paper.FIGURE3_CLAIMS, "criterion"),
    ("criteria_conv2", "Figure 3, Conv2", paper.FIGURE3_CLAIMS, "criterion"),
    ("signs", "Figure 4", paper.FIGURE4_CLAIMS, "mask1"),
    ("zeros", "Figure 5", paper.FIGURE5_CLAIMS, "mask0"),
    ("sign_criteria", "Figure S5", paper.FIGURE_S5_CLAIMS, "criterion"),
)


def page_settings(page: str, profile: str | None = None) -> Settings:
    """The settings a pruning page runs with its default parameters, at ``profile`` (None: the
    page's committed profile)."""
    p = get_page(page)
    profile = profile or p.target_profile
    net = p.parameters.get("net", "fc")
    criteria = p.parameters.get("criteria")
    if p.notebook == "signs":
        return resolve_settings(profile, net, ["large_final"], mask1=paper.FIGURE4_MASK1)
    if p.notebook == "zeros":
        return resolve_settings(profile, net, ["large_final"], mask0=paper.FIGURE5_MASK0)
    if p.notebook == "sign_criteria":
        return resolve_settings(profile, net, criteria or paper.FIGURE_S5_CRITERIA)
    return resolve_settings(profile, net, criteria)


def page_target(page: str) -> str:
    """The profile a pruning page wants in the end (its notebook's ``target_profile``)."""
    return get_page(page).parameters.get("target_profile", "paper")


def _evidence(verdicts: Sequence[Verdict]) -> str:
    """Our side of a claim in a few words: the mean gap over seeds (with its min-max) of the
    part whose mean gap is smallest, and how many parts there are."""
    tested = [v for v in verdicts if v.gaps]
    if not tested:
        return verdicts[0].reason if verdicts else "no runs"
    worst = min(tested, key=lambda v: sum(v.gaps) / len(v.gaps))
    mean = sum(worst.gaps) / len(worst.gaps)
    text = (
        f"gap {mean:+.2f} points ({min(worst.gaps):+.2f} to {max(worst.gaps):+.2f} over "
        f"{len(worst.gaps)} seeds), margin {worst.margin:.2f}"
    )
    if len(verdicts) > 1:
        counts = pd.Series([v.verdict for v in verdicts]).value_counts()
        parts = ", ".join(f"{n} {name}" for name, n in counts.items())
        text = f"{len(verdicts)} parts ({parts}); smallest: {text}"
    return text


def pruning_lines(store: RunStore, profile: str | None = None) -> list[Line]:
    """The claims of each pruning page at its committed profile (or ``profile``) and, where it
    has begun, at its target profile (:func:`page_target`: the paper's, or the conv nets'
    chosen one); and those of the pages of a chosen profile only (:data:`CHOSEN_PAGES`) once
    it has begun."""
    lines = []
    for page, item, claims, hue in PRUNING_PAGES:
        base = page_settings(page, profile)
        target = page_target(page)
        chosen = None if base.profile == target else target_settings(base, target, store)
        lines += _claim_lines(base, store, item, claims, hue, page)
        if isinstance(chosen, Settings):
            lines += _claim_lines(chosen, store, item, claims, hue, page, begun_only=True)
    for page, item in CHOSEN_PAGES:
        chosen = figure3_target(get_page(page).parameters["net"], store)
        if isinstance(chosen, Target):
            claims = paper.FIGURE3_CLAIMS
            lines += _claim_lines(chosen.settings[0], store, item, claims, "criterion", page, True)
    return lines


#: The pages of a conv net's Figure 3 at its chosen profile only (notebook ``criteria_conv``).
CHOSEN_PAGES: tuple[tuple[str, str], ...] = tuple(
    (page.name, f"Figure 3, {page.parameters['net'].capitalize()}")
    for page in PAGES
    if page.notebook == "criteria_conv"
)


def _claim_lines(
    settings: Settings,
    store: RunStore,
    item: str,
    claims: tuple[paper.Claim, ...],
    hue: str,
    page: str,
    begun_only: bool = False,
) -> list[Line]:
    """One line per claim, judged on what exists of ``settings``' runs; with ``begun_only`` (a
    profile the campaign is still building), none until a pruned round is complete for every
    chain of at least two seeds, then on :func:`judged_part` (a chain a sitting ahead of the
    others would compare its curve at levels the others have not reached)."""
    cov = coverage(settings, store)
    exists = cov.status().split(": ", 1)[1]
    if begun_only:
        seeds, complete = judged_part(cov)
        if complete < 2:
            return []
        if len(seeds) < len(settings.seeds):
            exists += f"; judged on {seed_list(seeds)}, {rounds_complete(complete)}"
        settings = replace(settings, seeds=seeds)
    frame = sweep_frame(settings.chains(), settings.rounds, store, partial=True)
    if begun_only:
        frame = frame[frame["round"] < complete]
    lines = []
    for claim in claims:
        present = set(frame[hue]) if not frame.empty else set()
        if frame.empty or claim.curves - present:
            absent = ", ".join(sorted(claim.curves - present))
            why = "no runs yet" if frame.empty else f"not run at this profile: {absent}"
            verdicts = [Verdict(INCONCLUSIVE, reason=why)]
            verdict = INCONCLUSIVE
        else:
            verdicts = [judge(frame, part, hue) for part in claim.parts]
            verdict = combine(verdicts)
        lines.append(
            Line(
                item,
                claim.text,
                "the ordering of its figure",
                _evidence(verdicts),
                settings.profile,
                exists,
                verdict,
                page,
            )
        )
    return lines


# ----------------------------------------------------------------------------- supermasks


def best_level_values(untrained: pd.DataFrame, criterion: str, treatment: str) -> pd.Series:
    """Per seed, the accuracy (percent) of the untrained supermask of ``criterion`` and
    ``treatment`` at the one-shot level whose mean over seeds is highest (as Table 1 takes
    the best level)."""
    part = untrained[(untrained["criterion"] == criterion) & (untrained["treatment"] == treatment)]
    best_k = part.groupby("k")["test_accuracy"].mean().idxmax()
    return 100 * part[part["k"] == best_k].set_index("seed")["test_accuracy"]


def table1_values(untrained: pd.DataFrame, learned: pd.DataFrame) -> dict[str, pd.Series]:
    """Our per-seed values (percent) of each Table 1 row for one network (the rows of
    :func:`lth.report.table1_ours`)."""
    values = {
        label: best_level_values(untrained, criterion, treatment)
        for (criterion, treatment), label in paper.TABLE1_UNTRAINED_ROWS.items()
    }
    for (weights, dwr), label in paper.TABLE1_LEARNED_ROWS.items():
        part = learned[
            (learned["weights"] == weights) & (learned["dynamic_weight_rescaling"] == dwr)
        ]
        if not part.empty:
            values[label] = 100 * part.set_index("seed")["test_accuracy"]
    dense = untrained.groupby("seed")["dense_test_accuracy"].first()
    values[paper.TABLE1_DENSE_ROW] = 100 * dense
    return values


def _paired(name_values: dict[str, pd.Series], part: Comparison, n_test: int) -> Verdict:
    """``part`` judged on one value (percent) per seed and curve, paired by seed, as at a
    single level."""
    rows = [
        {"curve": name, "seed": seed, "round": 1, "percent_remaining": 50.0, "test_accuracy": v}
        for name, series in name_values.items()
        for seed, v in (series / 100).items()
    ]
    return judge(pd.DataFrame(rows).assign(n_test=n_test), part, "curve")


def _value_text(values: pd.Series) -> str:
    return f"{values.mean():.1f} ({values.min():.1f}-{values.max():.1f})"


def supermask_verdicts(
    untrained: pd.DataFrame, learned: pd.DataFrame, net: str = "fc"
) -> list[tuple[str, str, str, Verdict]]:
    """The supermask claims (Figure 7, Table 1, the abstract) on one network's runs: (claim,
    the paper's value, ours, verdict) each."""
    n_test = int(untrained["n_test"].min())
    values = table1_values(untrained, learned)
    out = []
    for label, reported in paper.TABLE1.items():
        ours = values.get(label)
        if ours is None:
            continue
        verdict = judge_value(list(ours), reported[net].value, n_test, paper.VALUE_TOLERANCE)
        out.append((f"Table 1: {label}", str(reported[net]), _value_text(ours), verdict))
    gate = {t: best_level_values(untrained, "large_final_same_sign", t) for t in TREATMENTS}
    plain = {t: best_level_values(untrained, "large_final", t) for t in TREATMENTS}
    for text, reported, ours in (
        (ABSTRACT_SUPERMASK, paper.Reported(86.0), gate["signed_constant"]),
        (
            "large_final with the initial weights reaches only about 40% (book/spec.md, Figure 7; "
            "the paper's sentence is not confirmed)",
            paper.Reported(40.0, confirmed=False),
            plain["init"],
        ),
    ):
        if net == "fc":  # both numbers are MNIST's
            verdict = judge_value(list(ours), reported.value, n_test, paper.VALUE_TOLERANCE)
            out.append((text, str(reported), _value_text(ours), verdict))
    curves = {f"same_sign/{t}": v for t, v in gate.items()}
    curves.update({f"plain/{t}": v for t, v in plain.items()})
    for text, part in (
        (
            "With the sign gate, signed constants beat the initial weights (Table 1: 86.3 "
            "against 79.3, FC)",
            Comparison(("same_sign/signed_constant",), ("same_sign/init",)),
        ),
        (
            "large_final_same_sign beats large_final with the initial weights (Figure 7)",
            Comparison(("same_sign/init",), ("plain/init",)),
        ),
        (
            "large_final_same_sign beats large_final with signed constants (Figure 7)",
            Comparison(("same_sign/signed_constant",), ("plain/signed_constant",)),
        ),
    ):
        verdict = _paired(curves, part, n_test)
        ours = " against ".join(_value_text(curves[name]) for name in part.better + part.worse)
        out.append((text, "an ordering", ours, verdict))
    for weights in TREATMENTS:
        with_dwr = values.get(paper.TABLE1_LEARNED_ROWS[(weights, True)])
        without = values.get(paper.TABLE1_LEARNED_ROWS[(weights, False)])
        if with_dwr is None or without is None:
            continue
        part = Comparison(("dwr",), ("plain",))
        verdict = _paired({"dwr": with_dwr, "plain": without}, part, n_test)
        ours = f"{_value_text(with_dwr)} against {_value_text(without)}"
        out.append(
            (f"DWR helps learned supermasks ({weights} weights)", "an ordering", ours, verdict)
        )
    return out


#: The abstract, verbatim; tested on FC as large_final_same_sign with signed constants, best
#: level (book/spec.md's reading; the abstract names neither the criterion nor the treatment).
ABSTRACT_SUPERMASK = (
    '"Supermasks, masks that can be applied to an untrained, randomly initialized network to '
    'produce a model with performance far better than chance (86% on MNIST, 41% on CIFAR-10)": '
    "the MNIST part"
)


def verdicts_markdown(verdicts: list[tuple[str, str, str, Verdict]]) -> str:
    """The supermask verdicts (:func:`supermask_verdicts`) as a Markdown list."""
    lines = []
    for claim, reported, ours, verdict in verdicts:
        gaps = ", ".join(f"{g:+.2f}" for g in verdict.gaps)
        why = f"; {verdict.reason}" if verdict.reason else ""
        lines.append(
            f"- *{claim}* (paper: {reported}). Ours: {ours}: **{verdict.verdict}** (gap per "
            f"seed {gaps} points, noise margin {verdict.margin:.2f}{why})."
        )
    return "\n".join(lines)


def supermask_lines(
    store: RunStore,
    sweeps: Callable[[Settings], tuple[pd.DataFrame, pd.DataFrame]],
    profile: str | None = None,
) -> list[Line]:
    """The supermask claims on FC at the supermask page's profile (or ``profile``);
    ``sweeps(settings)`` gives its (untrained, learned) frames."""
    profile = profile or get_page("supermask").target_profile
    settings = resolve_settings(profile, "fc", list(CRITERIA), None, 0)
    untrained, learned = sweeps(settings)
    exists = f"{untrained['seed'].nunique()} dense runs, {len(learned)} learned supermasks"
    lines = []
    for claim, reported, ours, verdict in supermask_verdicts(untrained, learned):
        table = claim.startswith("Table 1: ")
        item = "Abstract" if claim == ABSTRACT_SUPERMASK else "Figure 7"
        lines.append(
            Line(
                "Table 1, FC" if table else item,
                claim.removeprefix("Table 1: "),
                reported,
                ours,
                settings.profile,
                exists,
                verdict.verdict,
                "table1" if table else "supermask",
            )
        )
    return lines


def table1_column(untrained: pd.DataFrame, learned: pd.DataFrame, net: str) -> pd.DataFrame:
    """One network's Table 1 column as the Table 1 page shows it: each row's value (mean and
    min-max over seeds), the paper's, the gap and the verdict (:func:`supermask_verdicts`)."""
    ours = table1_ours(untrained, learned)
    reported = {row: values[net] for row, values in paper.TABLE1.items()}
    judged = {
        claim.removeprefix("Table 1: "): verdict.verdict
        for claim, _, _, verdict in supermask_verdicts(untrained, learned, net)
        if claim.startswith("Table 1: ")
    }

    def gap(row) -> str:
        return (
            f"{row['mean'] - reported[row['row']].value:+.1f}" if row["row"] in reported else "n/a"
        )

    return pd.DataFrame(
        {
            "Table 1 row": ours["row"],
            "ours (mean, min-max over seeds)": ours.apply(
                lambda r: f"{r['mean']:.1f} ({r['min']:.1f}-{r['max']:.1f})", axis=1
            ),
            "seeds": ours["seeds"],
            "paper": ours["row"].map(
                lambda r: str(reported[r]) if r in reported else "(not in the paper)"
            ),
            "gap to the paper (points)": ours.apply(gap, axis=1),
            "verdict": ours["row"].map(lambda r: judged.get(r, "n/a")),
            "setting": ours["setting"],
        }
    )


def conv_supermask_lines(store: RunStore) -> list[Line]:
    """The Table 1 and Figure 7 claims on each conv net whose supermask records all exist
    (:func:`lth.supermask_sweeps.table1_frames`; the campaign makes them)."""
    lines = []
    for net in CONV_NETS:
        frames = table1_frames(net, store)
        if frames is None:
            continue
        untrained, learned = frames
        exists = f"{untrained['seed'].nunique()} dense runs, {len(learned)} learned supermasks"
        for claim, reported, ours, verdict in supermask_verdicts(untrained, learned, net):
            table = claim.startswith("Table 1: ")
            lines.append(
                Line(
                    f"Table 1, {net.capitalize()}" if table else f"Figure 7, {net.capitalize()}",
                    claim.removeprefix("Table 1: "),
                    reported,
                    ours,
                    "paper",
                    exists,
                    verdict.verdict,
                    "table1" if table else "supermask",
                )
            )
    return lines


def not_yet_run(store: RunStore) -> list[str]:
    """What of the paper the book does not test yet, and why, as Markdown bullets: computed
    from the store (coverage of the paper's protocol), not written by hand."""
    lines = []
    targets = [
        (item, page, target_settings(page_settings(page), page_target(page), store))
        for page, item, _, _ in PRUNING_PAGES
    ]
    for page, item in CHOSEN_PAGES:
        chosen = figure3_target(get_page(page).parameters["net"], store)
        targets.append((item, page, chosen.settings[0] if isinstance(chosen, Target) else chosen))
    for item, page, target in targets:
        if isinstance(target, str):
            continue  # a chosen profile not begun: the conv nets' lines below say what it waits for
        cov = coverage(target, store)
        if not cov.done:
            protocol = "the paper's protocol" if target.profile == "paper" else "its target profile"
            lines.append(
                f"- **[{item}]({page}.html) at {protocol}**: {cov.status()}. The campaign "
                "(`python -m lth campaign`) trains the rest; until then the verdicts above "
                "come from the shorter committed profile, where the page has one (and from what "
                "exists of this one)."
            )
    status = target_status(store).__getitem__
    for net in CONV_NETS:
        name = net.capitalize()
        if table1_frames(net, store) is None:
            lines.append(
                f"- **Table 1, {name} column** (paper: "
                + ", ".join(f"{row} {values[net]}" for row, values in paper.TABLE1.items())
                + f"): the campaign's dense runs at the paper's length {status(f'{net}-dense')}; "
                f"untrained supermasks {status(f'{net}-supermask-untrained')}; learned "
                f"supermasks {status(f'{net}-supermask-learned')}."
            )
        if isinstance(figure3_target(net, store), str):  # once chosen, its coverage is above
            lines.append(
                f"- **[Figure 3 on {name}](criteria_{net}.html)**: at the profile "
                f"`lth.conv_profile` chooses from its dense runs; {status(f'{net}-fig3')}."
            )
    if table1_frames("conv6", store) is None:
        lines.append(
            "- **The abstract's 41% on CIFAR-10** (large_final_same_sign with signed constants; "
            "Table 1 gives 41.0 for Conv6): judged with Conv6's column once it exists (above)."
        )
    epochs = resolve_settings(get_page("supermask").target_profile, "fc").supermask_epochs
    lines.append(
        f"- **Learned supermasks at the official 2,000 epochs**: the committed ones train "
        f"{epochs:,} epochs (the supermask page shows how much they still gained at the end)."
    )
    return lines

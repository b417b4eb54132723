"""The report: what the pages show, from the records (tables, run descriptions, protocol
differences; the paper's claims and numbers are in :mod:`lth.paper`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import pandas as pd

from . import paper
from .data import SPLITS
from .nets import get_architecture
from .plots import gap_reference, save_png, with_gap_panel
from .specs import PROFILES, Chain, Settings, resolve_settings
from .store import RunStore, is_legacy
from .train import (
    PROTOCOLS,
)
from .verdicts import MIN_SEEDS


def sweep_frame(
    chains: Sequence[Chain], rounds: int, store: RunStore, *, partial: bool = False
) -> pd.DataFrame:
    """One row per (chain, round) with its record's results; round 0 (the dense network) is
    repeated for every chain so that each curve starts at 100% of weights remaining. A missing
    record is an error, unless ``partial``: then each chain's rows stop at its first missing
    round (what exists of a profile still in training)."""
    rows = []
    for chain in chains:
        for r in range(rounds + 1):
            record = store.get(chain.run_key(r))
            if record is None and partial:
                break
            if record is None:
                raise KeyError(f"run {chain.run_key(r)} ({chain}, round {r}) is not in the store")
            res = record["result"]
            rows.append(
                {
                    **{k: v for k, v in asdict(chain).items() if k != "iterations"},
                    "iterations": chain.protocol.iterations,
                    "round": r,
                    "percent_remaining": res["percent_remaining"],
                    "test_accuracy": res["test_accuracy"],
                    "early_stop_iteration": res["early_stop_iteration"],
                    "final_test_accuracy": res["final_test_accuracy"],
                    "best_val_loss": res["best_val_loss"],
                    "n_test": res["n_test"],
                    "key": record["key"],
                }
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Coverage:
    """How much of a profile's runs exist (issue "The paper at full scale"): ``runs`` distinct
    runs wanted by ``chains`` chains of ``rounds`` pruning rounds, ``present`` of them recorded,
    and rounds 0 to ``complete`` - 1 recorded for every chain; ``by_seed`` gives, per seed, how
    many rounds (from round 0) are recorded for every chain of that seed (the campaign trains
    a profile's seeds in groups: Figures 4, 5 and S5 seeds 0-1 first, then 2-4)."""

    profile: str
    chains: int
    rounds: int
    runs: int
    present: int
    complete: int
    by_seed: tuple[tuple[int, int], ...] = ()

    @property
    def done(self) -> bool:
        return self.present == self.runs

    def status(self) -> str:
        """One line, e.g. ``paper profile: rounds 0-11 of 24 for all 45 chains, 585 of 1,085
        runs``; where seeds differ, per group of seeds: ``paper profile: rounds 0-3 of 24 for
        seeds 0-1, round 0 for seeds 2-4 (35 chains), 161 of 845 runs``."""
        runs = f"{self.present:,} of {self.runs:,} runs"
        groups: dict[int, list[int]] = {}
        for seed, complete in self.by_seed:
            groups.setdefault(complete, []).append(seed)
        if len(groups) > 1:
            parts = [
                f"{rounds_complete(c)}{f' of {self.rounds}' if i == 0 else ''} for "
                f"{seed_list(seeds)}"
                for i, (c, seeds) in enumerate(sorted(groups.items(), reverse=True))
            ]
            return f"{self.profile} profile: {', '.join(parts)} ({self.chains} chains), {runs}"
        if self.complete == 0:
            return (
                f"{self.profile} profile: no round complete yet ({self.rounds} rounds, "
                f"{self.chains} chains), {runs}"
            )
        return (
            f"{self.profile} profile: {rounds_complete(self.complete)} of {self.rounds} for all "
            f"{self.chains} chains, {runs}"
        )


def rounds_complete(complete: int) -> str:
    """``complete`` rounds from round 0, in words: "no round", "round 0", "rounds 0-3"."""
    return {0: "no round", 1: "round 0"}.get(complete, f"rounds 0-{complete - 1}")


def seed_list(seeds: Sequence[int]) -> str:
    """Seeds in words: "seed 0", "seeds 0-1" (consecutive) or "seeds 0, 2"."""
    seeds = sorted(seeds)
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


def coverage(settings: Settings, store: RunStore) -> Coverage:
    """The :class:`Coverage` of ``settings``' chains in ``store`` (keys of the official data)."""
    chains = settings.chains()
    rounds = range(settings.rounds + 1)
    chain_keys = [[c.run_key(r) for r in rounds] for c in chains]
    recorded = {k for keys in chain_keys for k in keys if k in store}

    def complete(of: list[list[str]]) -> int:
        """Rounds from round 0 recorded for every chain of ``of`` (their keys by round)."""
        return next((r for r in rounds if any(keys[r] not in recorded for keys in of)), len(rounds))

    by_round = [{keys[r] for keys in chain_keys} for r in rounds]  # round 0 is shared by a seed
    seeds = [c.seed for c in chains]
    return Coverage(
        settings.profile,
        len(chains),
        settings.rounds,
        sum(map(len, by_round)),
        sum(len(ks & recorded) for ks in by_round),
        complete(chain_keys),
        tuple(
            (seed, complete([k for k, s in zip(chain_keys, seeds, strict=True) if s == seed]))
            for seed in settings.seeds
        ),
    )


def judged_part(cov: Coverage) -> tuple[tuple[int, ...], int]:
    """The seeds, and the rounds from round 0, on which a profile still being built is judged
    (the scorecard's lines) and drawn (a page's target section, :func:`progress_section`): the
    deepest rounds recorded for every chain of at least :data:`lth.verdicts.MIN_SEEDS` seeds,
    on every seed that has them (``((), 0)`` if the profile has fewer seeds). Depth comes first
    because the paper's claims are about the curves down to 0.5% of weights remaining (their
    "high pruning" parts need FC's rounds 14 and beyond): so Figures 4, 5 and S5, whose seeds
    0-1 the campaign trains through all 24 rounds before seeds 2-4 begin, are judged on seeds
    0-1 at every round they have, not on five seeds at round 0. Every curve then averages the
    same seeds; the scorecard's line and the page say which."""
    depths = sorted((c for _, c in cov.by_seed), reverse=True)
    if len(depths) < MIN_SEEDS:
        return (), 0
    deepest = depths[MIN_SEEDS - 1]
    return tuple(s for s, c in cov.by_seed if c >= deepest), deepest


def target_settings(
    settings: Settings, profile: str, store: RunStore | None = None
) -> Settings | str:
    """``settings``' experiment (network, criteria, actions, precision) at ``profile``'s seeds,
    rounds and training length: what a page wants in the end (its target profile). A profile
    chosen from records (``conv-fig3``: :func:`lth.conv_profile.figure3_target`, from
    ``store``) gives the chosen settings, or what the choice waits for (a string)."""
    if PROFILES.lookup(profile).chosen:
        from .conv_profile import figure3_target  # the profile rule needs the campaign's targets

        chosen = figure3_target(settings.net, store or RunStore())
        return chosen if isinstance(chosen, str) else chosen.settings[0]
    return resolve_settings(
        profile,
        settings.net,
        list(settings.criteria),
        mask1=list(settings.mask1),
        mask0=list(settings.mask0),
        precision=settings.precision,
    )


class TargetSection(NamedTuple):
    """What a page shows of its target profile (:func:`target_profile_section`): Markdown
    saying how much exists, a figure of it (None if nothing exists), and the accuracy at a few
    rounds (:func:`round_table`; empty before the first pruned round)."""

    text: str
    figure: plt.Figure | None
    table: pd.DataFrame


def target_profile_section(
    settings: Settings, target_profile: str, store: RunStore, **section
) -> TargetSection:
    """The part of a pruning page that shows its target profile (issue "The paper at full
    scale"): :func:`progress_section` (``section``: its keyword arguments ``hue``, ``figures``,
    ``name``, ``dashed``) of ``settings``' experiment at ``target_profile``
    (:func:`target_settings`). A page already at its target profile gets an empty section."""
    if settings.profile == target_profile:
        (section["figures"] / f"{section['name']}.status").unlink(missing_ok=True)
        return TargetSection("", None, pd.DataFrame())
    target = target_settings(settings, target_profile, store)
    return progress_section(target, target_profile, store, **section)


def progress_section(
    target: Settings | str,
    target_profile: str,
    store: RunStore,
    *,
    hue: str,
    figures: Path,
    name: str,
    dashed: tuple[str, ...] = (),
) -> TargetSection:
    """How much of ``target`` (the settings of ``target_profile``, or what a chosen profile
    waits for) exists, with a figure of what exists (saved as
    ``<figures>/<name>_<target_profile>.png``, its data beside it as ``.csv``) and its
    :func:`round_table`. While the target is incomplete, ``<figures>/<name>.status`` holds a
    line that the book's build adds to the page's title. A chosen profile's text says what the
    rule chose and why (:func:`lth.conv_profile.figure3_target`)."""
    status_file = figures / f"{name}.status"
    figures.mkdir(parents=True, exist_ok=True)
    empty = pd.DataFrame()
    if isinstance(target, str):  # a chosen profile whose records are not there yet
        status_file.write_text(f"{target_profile} profile not begun")
        return TargetSection(
            f"**{target_profile} profile: not begun; it waits for {target}.**", None, empty
        )
    cov = coverage(target, store)
    if cov.done:
        status_file.unlink(missing_ok=True)
    else:
        status_file.write_text(
            f"{target_profile} profile in progress: {cov.present:,} of {cov.runs:,} runs"
        )
    seeds, complete = judged_part(cov)
    drawn = target  # like with like: every curve over the same seeds (judged_part)
    if not cov.done and complete >= 2 and len(seeds) < len(target.seeds):
        drawn = replace(target, seeds=seeds)
    frame = sweep_frame(drawn.chains(), drawn.rounds, store, partial=True)
    status = cov.status()
    head = f"**{status[0].upper()}{status[1:]}.**"
    if PROFILES.lookup(target_profile).chosen:
        from .conv_profile import figure3_target  # the profile rule needs the campaign's targets

        chosen = figure3_target(target.net, store).description
        head += f" The rule of `lth.conv_profile` chose {chosen}."
    if frame.empty:
        return TargetSection(f"{head} None of its runs exist yet.", None, empty)
    pruned = frame[frame["round"] > 0]
    deepest = int(frame["round"].max())
    iterations = target.chains()[0].protocol.iterations
    table, later = round_table(pruned, target.rounds, hue, len(drawn.seeds))
    of_seeds = ""  # which seeds, where judged_part leaves some out
    if drawn is not target:
        others = seed_list(sorted(set(target.seeds) - set(drawn.seeds)))
        of_seeds = (
            f" of {seed_list(drawn.seeds)}, the seeds with the deepest rounds ({others} left "
            "out so that every curve averages the same seeds)"
        )
    text = (
        f"{head} The figure draws what exists{of_seeds}: {frame['key'].nunique():,} distinct "
        "runs, "
        f"{len(pruned):,} pruned rows over round{f's 1-{deepest}' if deepest > 1 else ' 1'} "
        f"(down to {frame['percent_remaining'].min():.3g}% of weights remaining), "
        f"{len(drawn.seeds)} seeds, {iterations:,} iterations per run"
        + ("." if cov.done else "; a curve stops where its chain's next round is not trained yet.")
        + " "
        + late_stops(pruned, iterations, hue)
        + (
            f" Below it, the same runs as their gap to {reference} of the same seed and round "
            "(paired by seed: the ordering the paper's claims speak about)."
            if (reference := gap_reference(frame, hue))
            else ""
        )
        + ("" if cov.done else " The campaign (`python -m lth campaign`) trains the rest.")
        + (
            "\n\nThe table under the figure: test accuracy at early stopping (%), mean and "
            "min-max over seeds, by round (percent of weights remaining in the headers), best "
            "first at the deepest round every curve has reached with all its seeds. "
            if not table.empty
            else "\n\n"
        )
        + later
        if deepest
        else f"{head} Only the dense networks exist so far; the figure shows them."
    )
    figure = with_gap_panel(
        frame,
        hue=hue,
        dashed=dashed,
        title=f"{target.net.upper()}, {target_profile} profile"
        + (" (" if cov.done else " so far (")
        + (f"{seed_list(drawn.seeds)}; " if of_seeds else "")
        + f"{cov.present:,} of {cov.runs:,} runs)",
    )
    save_png(figure, figures / f"{name}_{target_profile}.png")
    frame.to_csv(figures / f"{name}_{target_profile}.csv", index=False)  # the figure's data
    return TargetSection(text, figure, table)


#: The rounds a target profile's table shows (the rounds the issue "The paper at full scale"
#: asks the closing note for), where the profile has that many; a shorter one shows every round.
TABLE_ROUNDS = (6, 8, 12, 16, 20, 24)


def round_table(frame: pd.DataFrame, rounds: int, hue: str, seeds: int) -> tuple[pd.DataFrame, str]:
    """Test accuracy (percent) of each ``hue`` level at a few pruning rounds of a profile of
    ``rounds`` rounds and ``seeds`` seeds (:data:`TABLE_ROUNDS` and the profile's last round;
    every round of a profile shorter than the first of them): mean and min-max over the seeds
    of ``frame``'s runs (:func:`sweep_frame`, possibly partial), best first at the deepest round
    shown where every level has all its seeds; and a sentence naming the rounds not trained
    yet. A cell over fewer seeds says how many."""
    if rounds >= TABLE_ROUNDS[0]:
        wanted = sorted({r for r in TABLE_ROUNDS if r <= rounds} | {rounds})
    else:
        wanted = list(range(1, rounds + 1))
    present = [r for r in wanted if r in set(frame["round"])]
    missing = [r for r in wanted if r not in present]
    later = (
        f"Round{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))}: not trained yet."
        if missing
        else ""
    )
    if not present:
        return pd.DataFrame(), later
    part = frame[frame["round"].isin(present)]
    stats = (
        part.groupby([hue, "round"])
        .agg(
            mean=("test_accuracy", "mean"),
            low=("test_accuracy", "min"),
            high=("test_accuracy", "max"),
            n=("seed", "nunique"),
            remaining=("percent_remaining", "mean"),
        )
        .reset_index()
    )
    stats["cell"] = [
        f"{100 * m:.2f} ({100 * lo:.2f}-{100 * hi:.2f})"
        + (f", {n} seed{'s' if n > 1 else ''}" if n < seeds else "")
        for m, lo, hi, n in zip(stats["mean"], stats["low"], stats["high"], stats["n"], strict=True)
    ]
    remaining = stats.groupby("round")["remaining"].mean()
    table = stats.pivot(index=hue, columns="round", values="cell")
    levels = stats[hue].nunique()
    full = [r for r in present if ((stats["round"] == r) & (stats["n"] == seeds)).sum() == levels]
    by = full[-1] if full else present[-1]  # compare like with like: every level, every seed
    order = stats[stats["round"] == by].set_index(hue)["mean"].sort_values(ascending=False)
    table = table.loc[order.index.union(table.index, sort=False)]
    table.columns = [f"round {r} ({remaining[r]:.3g}%)" for r in table.columns]
    return table.fillna("not yet").rename_axis(hue), later


def late_stops(frame: pd.DataFrame, iterations: int, hue: str) -> str:
    """How many of ``frame``'s runs reach their early-stopping point (minimum validation loss,
    book/spec.md section 3) in the last tenth of their ``iterations``, in all and for the
    ``hue`` values with the most: runs still learning when training stops, whose comparisons
    the training length may bias (issue "The paper at full scale")."""
    runs = frame.drop_duplicates("key").assign(
        late=lambda f: f["early_stop_iteration"] >= 0.9 * iterations
    )
    by_hue = runs.groupby(hue)["late"].mean().sort_values(ascending=False)
    most = ", ".join(
        f"{name} {100 * share:.0f}%" for name, share in by_hue.head(3).items() if share > 0
    )
    return (
        f"Of these {len(runs):,} pruned runs, {int(runs['late'].sum()):,} "
        f"({100 * runs['late'].mean():.0f}%) reach their early-stopping point in the last tenth "
        f"of training{f' (most: {most})' if most else ''}."
    )


def describe_runs(frame: pd.DataFrame, store: RunStore) -> str:
    """Provenance of the runs behind ``frame``: how many, where, with what, how long."""
    records = [store.get(key) for key in frame["key"].unique()]
    wall = sum(
        r["provenance"]["population_wall_time_s"] / r["provenance"]["population_size"]
        for r in records
    )
    devices = ", ".join(sorted({r["provenance"]["device"] for r in records}))
    versions = ", ".join(sorted({r["provenance"]["torch"] for r in records}))
    commits = ", ".join(sorted({(r["provenance"]["git_commit"] or "?")[:7] for r in records}))
    tests = ", ".join(f"{int(n):,}" for n in sorted(frame["n_test"].unique()))
    legacy = sum(is_legacy(r) for r in records)
    remakeable = (
        f"{legacy} of them made before members trained independently of their population "
        "(their numbers depend on their companions, so `python -m lth verify` cannot re-make "
        "them bit for bit; the others it can)"
        if legacy
        else "every one re-makeable bit for bit (`python -m lth verify`)"
    )
    machines = Counter(r["provenance"].get("machine") for r in records)
    unrecorded = machines.pop(None, 0)
    types = [f"{name} ({n:,})" for name, n in sorted(machines.items())]
    if unrecorded:
        types.append(f"not recorded ({unrecorded:,}: made before provenance named it)")
    return (
        f"{len(records)} distinct runs ({len(frame)} rows: the dense runs are shared by every "
        f"chain of a seed)\ntrained on {devices} with torch {versions}, code {commits}: "
        f"{wall / 3600:.2f} h of training wall time in all\ntest images per run: {tests}\n"
        f"{remakeable}, on the machine type that made it\nmachine types: {', '.join(types)}"
    )


def best_untrained(untrained: pd.DataFrame) -> pd.DataFrame:
    """Per criterion and treatment, the one-shot level whose seed-mean accuracy is highest:
    the mean, min and max over seeds there and its percent of weights remaining."""
    by_level = (
        untrained.groupby(["criterion", "treatment", "k"])
        .agg(
            mean=("test_accuracy", "mean"),
            min=("test_accuracy", "min"),
            max=("test_accuracy", "max"),
            percent_remaining=("percent_remaining", "first"),
            seeds=("seed", "nunique"),
        )
        .reset_index()
    )
    best = by_level.loc[by_level.groupby(["criterion", "treatment"])["mean"].idxmax()]
    return best.reset_index(drop=True)


def table1_ours(untrained: pd.DataFrame, learned: pd.DataFrame) -> pd.DataFrame:
    """Our numbers for one network's Table 1 column (book/spec.md section 9), in percent: the best
    untrained large_final_same_sign supermask per treatment, the learned supermasks (init
    weights, as the official command trains them, then signed constants) without and with
    DWR, and the trained dense baseline; mean, min and max over seeds."""
    best = best_untrained(untrained).set_index(["criterion", "treatment"])
    rows = []
    for (criterion, treatment), label in paper.TABLE1_UNTRAINED_ROWS.items():
        b = best.loc[(criterion, treatment)]
        rows.append(
            (
                label,
                b["mean"],
                b["min"],
                b["max"],
                int(b["seeds"]),
                f"best of 25 one-shot levels: {b['percent_remaining']:.3g}% remaining",
            )
        )
    for (weights, dwr), label in paper.TABLE1_LEARNED_ROWS.items():
        part = learned[
            (learned["weights"] == weights) & (learned["dynamic_weight_rescaling"] == dwr)
        ]
        if part.empty:
            continue
        acc = part["test_accuracy"]
        rows.append(
            (
                label,
                acc.mean(),
                acc.min(),
                acc.max(),
                len(part),
                f"{int(part['epochs'].iloc[0]):,} epochs, "
                f"{part['percent_kept'].mean():.1f}% of weights kept",
            )
        )
    dense = untrained.groupby("seed")["dense_test_accuracy"].first()
    iterations = int(untrained["dense_iterations"].iloc[0])
    rows.append(
        (
            paper.TABLE1_DENSE_ROW,
            dense.mean(),
            dense.min(),
            dense.max(),
            len(dense),
            f"{iterations:,} iterations, test accuracy at early stopping",
        )
    )
    frame = pd.DataFrame(rows, columns=["row", "mean", "min", "max", "seeds", "setting"])
    frame[["mean", "min", "max"]] *= 100
    return frame


def differences_markdown(settings: Settings, frame: pd.DataFrame) -> str:
    """What a page's runs did differently from the paper's protocol, as Markdown bullets:
    profile, seeds, rounds, training length, precision and the test-set size."""
    arch = get_architecture(settings.net)
    paper = PROTOCOLS[settings.net]
    iterations = settings.iterations or paper.iterations
    n_train, _, n_official_test = SPLITS[arch.dataset]
    epochs = iterations * paper.batch_size / n_train
    sparsest = frame["percent_remaining"].min()
    tests = sorted(int(n) for n in frame["n_test"].unique())
    lines = [
        f"- Profile `{settings.profile}`: {arch.description}, {len(settings.seeds)} seed(s) "
        f"instead of 5, {settings.rounds} pruning rounds instead of 24 (down to "
        f"{sparsest:.3g}% of weights remaining), {iterations:,} training iterations per run "
        f"(about {epochs:.1f} epochs) against the paper's {paper.iterations:,}, precision "
        f"{settings.precision}. Shorter training lowers every curve and moves the "
        "early-stopping point; what this page tests is the ordering of the curves.",
        f"- Test images per run: {', '.join(f'{n:,}' for n in tests)}"
        + (
            f". **This is a partial test set**: only the first {max(tests):,} of the "
            f"{n_official_test:,} official test images were available (opt-in "
            "`LTH_PARTIAL_TEST=1`), so each accuracy has a standard error of up to about "
            f"{100 * (0.25 / max(tests)) ** 0.5:.1f} points."
            if max(tests) < n_official_test
            else " (the official test set)."
        ),
        f"- Everything else follows the paper's protocol (see the introduction): truncated "
        f"Glorot-normal init, Adam at {paper.lr:g}, batch {paper.batch_size}, validation every "
        f"{paper.eval_every} iterations, masks from the final weights, per-layer pruning rates "
        + ", ".join(f"{layer.name} {layer.rate:.0%}" for layer in arch.layers)
        + ".",
        "- The full protocol (5 seeds, 24 rounds, the paper's iterations) runs through the same "
        "notebook: `-p profile paper`.",
    ]
    return "\n".join(lines)


def accuracy_table(frame: pd.DataFrame, hue: str) -> pd.DataFrame:
    """A pruning page's table: mean test accuracy (percent) of each ``hue`` level at each
    percent of weights remaining (densest first), best first by its mean over the pruned
    levels."""
    table = (
        frame.groupby([hue, "round"])
        .agg(remaining=("percent_remaining", "first"), accuracy=("test_accuracy", "mean"))
        .reset_index()
    )
    pivot = table.pivot(index=hue, columns="remaining", values="accuracy").mul(100).round(2)
    pivot = pivot[sorted(pivot.columns, reverse=True)]
    pivot.columns = [f"{c:.3g}%" for c in pivot.columns]
    order = pivot.iloc[:, 1:].mean(axis=1).sort_values(ascending=False).index
    return pivot.loc[order]


def ranking_and_claims(frame: pd.DataFrame, claims: tuple[paper.Claim, ...], hue: str) -> str:
    """Markdown: our ranking of a pruning page's curves, then its claims and their verdicts
    (:func:`lth.paper.claims_markdown`)."""
    ranking = ", ".join(accuracy_table(frame, hue).index)
    return f"**Our ranking** (mean over all pruned levels): {ranking}.\n\n" + paper.claims_markdown(
        frame, claims, hue=hue
    )

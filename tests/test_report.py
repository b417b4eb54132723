"""What the pages show of a profile still in training (issue "The paper at full scale"): its
coverage, a figure of what exists, and a status line for the page's title."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from conftest import TINY  # noqa: E402

from lth.experiments import (  # noqa: E402
    coverage,
    resolve_settings,
    run_sweep,
    sweep_frame,
    target_profile_section,
)
from lth.report import progress_section  # noqa: E402
from lth.store import RunStore, StateCache  # noqa: E402


def test_coverage_and_the_target_section_show_what_exists(tmp_path):
    store, cache = RunStore(tmp_path / "runs"), StateCache(tmp_path / "cache")
    # the target: the smoke profile (1 seed, 2 rounds) of 2 criteria; rounds 0-1 are trained,
    # and one chain's round 2
    target = resolve_settings("smoke", "fc", ["large_final", "random"])
    quiet = dict(store=store, cache=cache, progress=False, log=lambda message: None, data=TINY)
    run_sweep(target.chains(), 1, **quiet)
    run_sweep(target.chains()[:1], 2, **quiet)
    cov = coverage(target, store)
    assert (cov.chains, cov.runs, cov.present, cov.complete) == (2, 1 + 2 * 2, 1 + 2 + 1, 2)
    assert not cov.done
    assert cov.status() == "smoke profile: rounds 0-1 of 2 for all 2 chains, 4 of 5 runs"
    frame = sweep_frame(target.chains(), target.rounds, store, partial=True)
    assert len(frame) == 2 * 2 + 1  # each chain stops at its first missing round

    # a page at a shorter profile: the target's coverage, a figure, a status for the title
    page = resolve_settings("mid", "fc", ["large_final", "random"])
    figures = tmp_path / "figures"
    text, figure, table = target_profile_section(
        page, "smoke", store, hue="criterion", figures=figures, name="criteria"
    )
    assert text.startswith("**Smoke profile: rounds 0-1 of 2 for all 2 chains, 4 of 5 runs.**")
    assert "next round is not trained yet" in text and "trains the rest" in text
    assert figure is not None and (figures / "criteria_smoke.png").exists()
    # the paper-style panel above the gap to the lottery ticket's criterion, paired by seed
    top, gaps = figure.axes
    assert "so far" in top.get_title() and "minus large_final" in gaps.get_title()
    assert "Below it, the same runs as their gap to large_final" in text
    # a profile of 2 rounds tabulates both; round 2 exists for the first chain only
    first, second = (c.criterion for c in target.chains())
    assert [c.split(" (")[0] for c in table.columns] == ["round 1", "round 2"]
    assert table.index[0] == first  # best first at the deepest round, where only it exists
    assert table.loc[second, table.columns[1]] == "not yet"
    assert table.loc[first, table.columns[1]] != "not yet"
    assert (figures / "criteria.status").read_text() == "smoke profile in progress: 4 of 5 runs"
    # once the target is complete, the status goes, and the text speaks of nothing to come
    run_sweep(target.chains(), 2, **quiet)
    text, figure, _ = target_profile_section(
        page, "smoke", store, hue="criterion", figures=figures, name="criteria"
    )
    assert "so far" not in figure.axes[0].get_title()
    assert not (figures / "criteria.status").exists()
    assert text.startswith("**Smoke profile: rounds 0-2 of 2 for all 2 chains, 5 of 5 runs.**")
    assert "not trained yet" not in text and "trains the rest" not in text
    # and a page at its target profile shows nothing more
    assert target_profile_section(
        page, "mid", store, hue="criterion", figures=figures, name="criteria"
    )[:2] == ("", None)


def test_a_target_built_a_seed_group_at_a_time_is_drawn_on_the_deepest_seeds(tmp_path):
    # as Figures 4, 5 and S5 at the paper's protocol: seeds 0-1 ahead, seed 2 at round 0, but
    # one chain (the lottery ticket, shared with Figure 3) complete for every seed
    store, cache = RunStore(tmp_path / "runs"), StateCache(tmp_path / "cache")
    quiet = dict(store=store, cache=cache, progress=False, log=lambda message: None, data=TINY)
    target = resolve_settings("smoke", "fc", ["large_final", "random"], [0, 1, 2], rounds=1)
    ahead = [c for c in target.chains() if c.seed < 2 or c.criterion == "large_final"]
    run_sweep(ahead, 1, **quiet)
    run_sweep(target.chains(), 0, **quiet)
    figures = tmp_path / "figures"
    section = dict(hue="criterion", figures=figures, name="signs")
    text, figure, table = progress_section(target, "smoke", store, **section)
    head = "Smoke profile: rounds 0-1 of 1 for seeds 0-1, round 0 for seed 2 (6 chains), 8 of 9"
    assert text.startswith(f"**{head} runs.**")
    assert "draws what exists of seeds 0-1, the seeds with the deepest rounds (seed 2 left" in text
    drawn = pd.read_csv(figures / "signs_smoke.csv")
    assert set(drawn["seed"]) == {0, 1}  # like with like: not seed 2's lottery ticket
    assert not table.map(lambda cell: "seed" in cell).any().any()  # every cell has both seeds
    # once every seed has its rounds, every seed is drawn
    run_sweep(target.chains(), 1, **quiet)
    text = progress_section(target, "smoke", store, **section)[0]
    assert "what exists:" in text and "3 seeds" in text
    assert set(pd.read_csv(figures / "signs_smoke.csv")["seed"]) == {0, 1, 2}


def test_round_table_shows_the_issue_rounds_that_exist_with_their_seed_spread():
    import pandas as pd

    from lth.report import round_table

    rows = [
        {
            "criterion": c,
            "seed": seed,
            "round": r,
            "percent_remaining": 100 * 0.8**r,
            "test_accuracy": base - 0.001 * r + 0.002 * seed,
        }
        for c, base in (("large_final", 0.98), ("random", 0.97))
        for seed in (0, 1)
        for r in range(1, 9)
    ]
    # one chain a sitting ahead: random, seed 0, rounds 9-12 (12: 6.87% remaining)
    rows += [
        {
            "criterion": "random",
            "seed": 0,
            "round": r,
            "percent_remaining": 100 * 0.8**r if r < 12 else 6.87,
            "test_accuracy": 0.99,
        }
        for r in range(9, 13)
    ]
    table, later = round_table(pd.DataFrame(rows), 24, "criterion", 2)
    assert [c.split(" (")[0] for c in table.columns] == ["round 6", "round 8", "round 12"]
    assert table.columns[0] == "round 6 (26.2%)"
    # best first at round 8, the deepest every curve reached with both seeds: the chain ahead
    # (better at round 12, one seed) does not move random above large_final
    assert list(table.index) == ["large_final", "random"]
    assert table.loc["random", "round 12 (6.87%)"] == "99.00 (99.00-99.00), 1 seed"
    assert table.loc["large_final", "round 12 (6.87%)"] == "not yet"
    assert table.loc["large_final", "round 6 (26.2%)"] == "97.50 (97.40-97.60)"
    assert later == "Rounds 16, 20, 24: not trained yet."
    # a profile of 7 or 10 rounds also shows its last round
    assert [c.split(" (")[0] for c in round_table(pd.DataFrame(rows), 7, "criterion", 2)[0]] == [
        "round 6",
        "round 7",
    ]
    ten, later = round_table(pd.DataFrame(rows), 10, "criterion", 2)
    assert [c.split(" (")[0] for c in ten.columns] == ["round 6", "round 8", "round 10"]
    assert later == ""
    assert round_table(pd.DataFrame(rows), 13, "criterion", 2)[1] == "Round 13: not trained yet."
    # a short profile shows every round; nothing trained shows nothing
    assert list(round_table(pd.DataFrame(rows), 3, "criterion", 2)[0].columns) == [
        "round 1 (80%)",
        "round 2 (64%)",
        "round 3 (51.2%)",
    ]
    empty, later = round_table(pd.DataFrame(rows)[lambda f: f["round"] < 6], 24, "criterion", 2)
    assert empty.empty and later.startswith("Rounds 6, 8, 12")


def test_late_stops_count_the_runs_still_learning_in_the_last_tenth():
    import pandas as pd

    from lth.report import late_stops

    frame = pd.DataFrame(
        {
            "key": ["a", "b", "c", "d", "d"],  # a run shared by two chains counts once
            "criterion": ["random", "random", "large_final", "large_final", "large_final"],
            "early_stop_iteration": [900, 100, 200, 999, 999],
        }
    )
    text = late_stops(frame, 1000, "criterion")
    assert "Of these 4 pruned runs, 2 (50%)" in text
    assert (
        "(most: random 50%, large_final 50%)" in text
        or "(most: large_final 50%, random 50%)" in text
    )
    early = frame.assign(early_stop_iteration=100)
    assert late_stops(early, 1000, "criterion").endswith(
        "0 (0%) reach their early-stopping point in the last tenth of training."
    )


def test_the_gap_panel_needs_the_lottery_ticket_another_curve_and_a_pruned_round():
    from lth.plots import gap_reference, with_gap_panel

    rows = [
        {
            "criterion": c,
            "mask1": "rewind",
            "seed": 0,
            "round": r,
            "percent_remaining": p,
            "test_accuracy": 0.97 if r == 0 else a,  # round 0: the dense run both share
        }
        for c, a in (("large_final", 0.98), ("random", 0.96))
        for r, p in ((0, 100.0), (1, 80.0))
    ]
    frame = pd.DataFrame(rows)
    assert gap_reference(frame, "criterion") == "large_final"
    assert gap_reference(frame, "mask1") is None  # one curve: nothing to measure against
    assert gap_reference(frame[frame["criterion"] == "random"], "criterion") is None
    assert gap_reference(frame[frame["round"] == 0], "criterion") is None  # dense only
    assert gap_reference(frame, "criterion", "random") == "random"
    gaps = with_gap_panel(frame, "criterion").axes[1]
    random_line = next(line for line in gaps.lines if line.get_label() == "random")
    by_level = dict(zip(random_line.get_xdata(), random_line.get_ydata(), strict=True))
    assert by_level == pytest.approx({100.0: 0.0, 80.0: -2.0})  # points, paired by round
    assert len(with_gap_panel(frame, "mask1").axes) == 1

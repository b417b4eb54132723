"""What the pages show of a profile still in training (issue "The paper at full scale"): its
coverage, a figure of what exists, and a status line for the page's title."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from conftest import TINY  # noqa: E402

from lth.experiments import (  # noqa: E402
    coverage,
    resolve_settings,
    run_sweep,
    sweep_frame,
    target_profile_section,
)
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
    text, figure = target_profile_section(
        page, "smoke", store, hue="criterion", figures=figures, name="criteria"
    )
    assert text.startswith("**Smoke profile: rounds 0-1 of 2 for all 2 chains, 4 of 5 runs.**")
    assert figure is not None and (figures / "criteria_smoke.png").exists()
    assert (figures / "criteria.status").read_text() == "smoke profile in progress: 4 of 5 runs"
    # once the target is complete, the status goes
    run_sweep(target.chains(), 2, **quiet)
    target_profile_section(page, "smoke", store, hue="criterion", figures=figures, name="criteria")
    assert not (figures / "criteria.status").exists()
    # and a page at its target profile shows nothing more
    assert target_profile_section(
        page, "mid", store, hue="criterion", figures=figures, name="criteria"
    ) == ("", None)


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

"""The experiments layer in one import, for notebooks and scripts: what to run
(:mod:`lth.specs`), the pruning sweep (:mod:`lth.pruning`), the supermask sweeps
(:mod:`lth.supermask_sweeps`) and the report the pages show (:mod:`lth.report`).

Each name lives in one of those modules; this module only gathers them, so that
``from lth.experiments import resolve_settings, run_sweep`` keeps working.
"""

from __future__ import annotations

from .pruning import (
    CHECKPOINT_EVERY_S,
    SweepPlan,
    chain_steps,
    clean_checkpoints,
    page_sweep,
    round_step,
    run_sweep,
    state_digest,
    sweep_plan,
)
from .report import (
    Coverage,
    accuracy_table,
    best_untrained,
    coverage,
    describe_runs,
    differences_markdown,
    progress_section,
    ranking_and_claims,
    sweep_frame,
    table1_ours,
    target_profile_section,
    target_settings,
)
from .specs import (
    LEARNED_EPOCH_HINT_S,
    PROFILES,
    RATE_HINT,
    Chain,
    Profile,
    Settings,
    as_list,
    for_data,
    resolve_settings,
)
from .supermask_sweeps import (
    learned_supermask_runs,
    learned_supermask_sweep,
    untrained_supermask_sweep,
)

__all__ = [
    "Coverage",
    "coverage",
    "progress_section",
    "target_profile_section",
    "target_settings",
    "CHECKPOINT_EVERY_S",
    "LEARNED_EPOCH_HINT_S",
    "PROFILES",
    "RATE_HINT",
    "Chain",
    "Profile",
    "Settings",
    "SweepPlan",
    "as_list",
    "accuracy_table",
    "best_untrained",
    "chain_steps",
    "clean_checkpoints",
    "page_sweep",
    "describe_runs",
    "differences_markdown",
    "ranking_and_claims",
    "for_data",
    "learned_supermask_runs",
    "learned_supermask_sweep",
    "resolve_settings",
    "round_step",
    "run_sweep",
    "state_digest",
    "sweep_frame",
    "sweep_plan",
    "table1_ours",
    "untrained_supermask_sweep",
]

"""The results campaign (issue "The paper at full scale"; DESIGN.md, "Runs, results and
caching"): every run the book's pages want at the paper's protocol, in priority order, trained a
sitting at a time.

:data:`TARGETS` lists what the campaign builds, most important first. :func:`campaign_plan`
says, without training, how much of each target exists and what the rest costs at the rate
measured from the store's own records; :func:`run_campaign` trains what is missing, target by
target, one population per round across the target's chains (split into populations of at most
``max_population``, one sparse plan each: :func:`lth.pruning.populations`), and stops at its
deadline at a clean point: the population in training is checkpointed at its next evaluation
point (:class:`lth.train.Checkpoint`), so the next sitting resumes it mid-round and loses
nothing finished.

    python -m lth campaign --dry-run            # the plan and its cost
    python -m lth campaign --hours 2.5          # train for 2.5 hours, then stop cleanly
    python -m lth campaign --until 10:45 --only fc-fig3
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

from . import conv_profile, paper
from .costs import (  # noqa: F401 (measured_rate, speedups_of: re-exported for the pages)
    dense_equivalent_samples,
    measured_rate,
    rate_of,
    speedups_of,
)
from .criteria import CRITERIA
from .data import Dataset
from .executors import DaskExecutor, InProcess, distribute
from .pages import get_page
from .provenance import check_clean_tree, machine_type, native_bf16
from .pruning import sweep_plan
from .specs import Settings, resolve_settings
from .store import RunStore, StateCache
from .supermask import CONV_LEARNED_EPOCHS, CONV_LEARNED_LR, TREATMENTS
from .supermask_sweeps import table1_runs
from .targets import (  # noqa: F401 (Target, TargetPlan, ...: re-exported)
    ChosenTarget,
    LearnedSupermaskTarget,
    Target,
    TargetPlan,
    UntrainedSupermaskTarget,
)
from .train import CHECKPOINT_EVERY_S, DeadlineReached

#: Populations of at most this many members: a round of 45 chains trains as 6 populations, so
#: a deadline costs at most one population's progress since its last checkpoint, and FC's
#: engine runs near its best rate (benchmarks/throughput.py: K=4 to 16).
MAX_POPULATION = 8


def _paper(net: str, criteria, seeds, rounds: int | None = None, **actions) -> Settings:
    return resolve_settings("paper", net, list(criteria), list(seeds), rounds, **actions)


def _figures_4_5_s5(seeds: Sequence[int]) -> tuple[Settings, ...]:
    return (
        _paper("fc", ["large_final"], seeds, mask1=paper.FIGURE4_MASK1),
        _paper("fc", ["large_final"], seeds, mask0=paper.FIGURE5_MASK0),
        _paper("fc", paper.FIGURE_S5_CRITERIA, seeds),
    )


def _conv_dense_and_untrained(net: str) -> tuple:
    """A conv net's dense runs at the paper's length in fp32 and bf16, and Figure 7's untrained
    supermasks of the fp32 ones."""
    seeds, name = conv_profile.SEEDS, net.capitalize()
    return (
        Target(
            f"{net}-dense",
            f"{name} dense runs, seeds 0 and 1, the paper's training length, fp32 (Figure 7, "
            "Table 1 and the choice of its Figure 3 profile)",
            (_paper(net, ["large_final"], seeds, rounds=0),),
        ),
        Target(
            f"{net}-dense-bf16",
            f"{name} dense runs as {net}-dense in bf16 (the precision page's check, which "
            "decides its Figure 3 precision)",
            (_paper(net, ["large_final"], seeds, rounds=0, precision="bf16"),),
        ),
        UntrainedSupermaskTarget(
            f"{net}-supermask-untrained",
            f"Figure 7 and Table 1's untrained rows, {name}: {len(CRITERIA)} criteria x "
            f"{len(TREATMENTS)} treatments of {net}-dense's runs",
            table1_runs(net)[0],
            f"{net}-dense",
        ),
    )


def _conv_learned(net: str) -> LearnedSupermaskTarget:
    runs = tuple(table1_runs(net)[1])
    return LearnedSupermaskTarget(
        f"{net}-supermask-learned",
        f"Table 1's learned rows, {net.capitalize()}: init weights, without and with DWR, seeds "
        f"0 and 1, learning rate {CONV_LEARNED_LR:,.0f}, {CONV_LEARNED_EPOCHS} epochs "
        "(lth.supermask.CONV_LEARNED_LR and CONV_LEARNED_EPOCHS)",
        runs,
    )


def _conv_figure3(net: str) -> ChosenTarget:
    return ChosenTarget(
        f"{net}-fig3",
        f"Figure 3, {net.capitalize()}, at the profile lth.conv_profile chooses",
        net,
        partial(conv_profile.figure3_target, net),
    )


#: The campaign's targets, most important first (issue "The paper at full scale", section 4).
TARGETS: tuple = (
    Target(
        "fc-fig3",
        "Figure 3, FC: 9 criteria x 5 seeds x 24 rounds at the paper's protocol",
        (_paper("fc", paper.FIGURE3_CRITERIA, range(5)),),
    ),
    Target(
        "fc-fig4-5-s5-seeds-0-1",
        "Figures 4, 5 and S5, FC, seeds 0 and 1: the other mask-1 and mask-0 actions and the "
        "sign-gated criteria, 24 rounds at the paper's protocol",
        _figures_4_5_s5((0, 1)),
    ),
    *(t for net in conv_profile.CONV_NETS for t in _conv_dense_and_untrained(net)),
    *(_conv_learned(net) for net in conv_profile.CONV_NETS),
    *(_conv_figure3(net) for net in conv_profile.CONV_NETS),
    Target(
        "fc-fig4-5-s5-seeds-2-4",
        "Figures 4, 5 and S5, FC, seeds 2 to 4 (after the milestone)",
        _figures_4_5_s5((2, 3, 4)),
    ),
)


def get_targets(names: Sequence[str] | None) -> list[Target]:
    """The targets named (in campaign order), or all; an unknown name lists the accepted."""
    known = {t.name: t for t in TARGETS}
    for name in names or ():
        if name not in known:
            raise ValueError(f"unknown campaign target {name!r}; accepted: {', '.join(known)}")
    return [t for t in TARGETS if not names or t.name in names]


#: The pruning figures whose cost :func:`profile_costs` shows, at the profiles they are run at.
COSTED = (
    ("Figure 3", "fc", ("smoke", "mid", "paper"), {}),
    (
        "Figure 4",
        "fc",
        ("mid-short", "paper"),
        {"criteria": ["large_final"], "mask1": paper.FIGURE4_MASK1},
    ),
    (
        "Figure 5",
        "fc",
        ("mid-short", "paper"),
        {"criteria": ["large_final"], "mask0": paper.FIGURE5_MASK0},
    ),
    ("Figure S5", "fc", ("mid-short", "paper"), {"criteria": paper.FIGURE_S5_CRITERIA}),
    (
        "Figure 3",
        "conv2",
        ("conv-short",),
        {"criteria": get_page("criteria_conv2").parameters["criteria"]},
    ),
    ("Figure 3", "conv2", ("paper",), {}),
    ("Figure 3", "conv4", ("paper",), {}),
    ("Figure 3", "conv6", ("paper",), {}),
)


def profile_costs(store: RunStore, cache: StateCache) -> list[dict]:
    """What each pruning figure costs at each profile it runs at: its runs, how many the store
    holds, and the hours of the whole and of what remains on one 2-core CPU like ours at the
    dense rate measured from the store's records (:func:`measured_rate`), sparse rounds at
    the speed-up their records measured (:func:`speedups_of`)."""
    rows: list[dict] = []
    rates: dict = {}  # one look at every record per network, not per row
    for figure, net, profiles, options in COSTED:
        rate, source = rate_of(store, net, "fp32", rates)
        speedups = speedups_of(store, net, rates)
        for profile in profiles:
            settings = resolve_settings(profile, net, **options)
            chains, rounds = settings.chains(), settings.rounds
            plan = sweep_plan(chains, rounds, store, cache)
            every = dense_equivalent_samples(chains, plan.runs, speedups) / rate / 3600
            rest = dense_equivalent_samples(chains, plan.missing, speedups) / rate / 3600
            rows.append(
                {
                    "figure": figure,
                    "net": net,
                    "profile": profile,
                    "runs": plan.count("runs"),
                    "recorded": plan.count("runs") - plan.count("missing"),
                    "CPU-hours, all": every,
                    "CPU-hours, remaining": rest,
                    "dense rate (model-samples/s)": rate,
                    "rate from": source,
                }
            )
    return rows


def campaign_plan(targets: Sequence, store: RunStore, cache: StateCache) -> list[TargetPlan]:
    """How much of each target exists, and what the rest costs (the rates measured once)."""
    rates: dict = {}
    return [target.plan(store, cache, rates) for target in targets]


def target_status(store: RunStore, cache: StateCache | None = None) -> dict[str, str]:
    """Each target's progress in a few words, by name, for the pages: ``waits for ...`` or
    ``p of n runs`` (or ``records``)."""
    plans = campaign_plan(TARGETS, store, cache or StateCache())
    return {
        plan.target.name: (
            f"waits for {plan.waiting}"
            if plan.waiting is not None
            else f"{plan.present:,} of {plan.runs:,} {plan.unit}"
        )
        for plan in plans
    }


def run_campaign(
    targets: Sequence,
    deadline: float,
    *,
    store: RunStore | None = None,
    cache: StateCache | None = None,
    data_root: str | None = None,
    max_population: int = MAX_POPULATION,
    progress: bool = True,
    allow_dirty: bool | None = None,
    log: Callable[[str], None] = print,
    data: Dataset | None = None,
    executor: InProcess | DaskExecutor | None = None,
    device: str = "cpu",
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
) -> bool:
    """Train the targets' missing runs in order until ``deadline`` (a ``time.time()`` value);
    True if every target is complete, False if the deadline stopped it (cleanly: see the module
    docstring). Prints what this sitting finished and what remains.

    With a distributed ``executor`` (:mod:`lth.executors`) every target's tasks are handed to
    its workers at once, the earlier targets' first, so that no worker waits for a target to
    finish before starting the next."""
    store = store or RunStore()
    cache = cache or StateCache()
    check_clean_tree(store.root, allow_dirty)
    before = set(store.keys())
    t0 = time.time()
    finished = True
    common = dict(data_root=data_root, data=data, allow_dirty=allow_dirty, device=device)
    common.update(checkpoint_every_s=checkpoint_every_s, max_population=max_population)
    targets_in_process: Sequence = targets
    if executor is not None and executor.distributed:
        # the pruning targets on the cluster; the supermask targets, and any target still
        # waiting for records, in process afterwards
        resolved = [_resolved(t, store) for t in targets]
        pruning = [t for t in resolved if isinstance(t, Target)]
        sweeps = [(t.chains(), t.rounds, -i) for i, t in enumerate(pruning)]
        log(f"== {len(pruning)} pruning target(s) on {executor.describe()}")
        results = distribute(executor, sweeps, store, cache, deadline=deadline, **common)
        stopped = sum(r.stopped for r in results)
        log(f"{len(results)} task(s), {stopped} stopped by the deadline, checkpointed")
        finished = not stopped
        targets_in_process = [t for t, r in zip(targets, resolved, strict=True) if r not in pruning]
    for target in targets_in_process:
        if time.time() >= deadline:
            finished = False
            break
        waiting = target.waiting(store)
        if waiting is not None:
            log(f"== {target.name}: waits for {waiting}")
            finished = False
            continue
        if device == "cpu" and trains_bf16(target, store) and not native_bf16():
            log(f"== {target.name}: left out here: {NO_NATIVE_BF16.format(machine_type())}")
            finished = False
            continue
        log(f"== {target.name}: {target.description}")
        try:
            target.run(deadline, store, cache, progress=progress, log=log, **common)
        except DeadlineReached as stop:
            log(f"deadline reached, checkpointed: {stop}")
            finished = False
            break
    new = sorted(set(store.keys()) - before)
    log(f"this sitting: {len(new)} new record(s) in {(time.time() - t0) / 3600:.2f} h")
    for plan in campaign_plan(targets, store, cache):
        log(plan.line())
    return finished


#: Why a bf16 target is left out on a CPU without native bf16.
NO_NATIVE_BF16 = (
    "this CPU ({}) has no native bf16 (AVX-512 BF16 or AMX), so torch emulates bf16 products "
    "at about 1% of the fp32 rate (2.1 against 96 GFLOP/s measured on such a machine); a "
    "sitting on a machine with native bf16 trains it"
)


def trains_bf16(target, store: RunStore) -> bool:
    """Whether ``target`` trains in bf16 (a :class:`ChosenTarget` as it has chosen)."""
    resolved = _resolved(target, store)
    return isinstance(resolved, Target) and any(s.precision == "bf16" for s in resolved.settings)


def _resolved(target, store: RunStore):
    """A :class:`ChosenTarget` as the :class:`Target` it has chosen (itself while it waits);
    any other target as it is."""
    if isinstance(target, ChosenTarget):
        chosen = target.resolved(store)
        return chosen if isinstance(chosen, Target) else target
    return target


def parse_deadline(until: str | None, hours: float | None, now: float | None = None) -> float:
    """``--until HH:MM`` (local time, today; past times are an error) or ``--hours H`` as a
    ``time.time()`` value."""
    now = time.time() if now is None else now
    if (until is None) == (hours is None):
        raise ValueError("give exactly one of --until HH:MM and --hours H")
    if hours is not None:
        if not hours > 0:
            raise ValueError(f"--hours: expected a number of hours > 0, got {hours!r}")
        return now + 3600 * hours
    try:
        hh, mm = (int(part) for part in until.split(":"))
        if not (0 <= hh < 24 and 0 <= mm < 60):
            raise ValueError
    except ValueError:
        raise ValueError(f"--until: expected a time HH:MM such as 10:45, got {until!r}") from None
    today = time.localtime(now)
    deadline = time.mktime((*today[:3], hh, mm, 0, 0, 0, -1))
    if deadline <= now:
        raise ValueError(
            f"--until {until}: that time has passed today (for a deadline after midnight, "
            "give --hours H)"
        )
    return deadline

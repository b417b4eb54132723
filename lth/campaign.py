"""The results campaign (issue "The paper at full scale"; DESIGN.md, "Runs, results and
caching"): every run the book's pages want at the paper's protocol, in priority order, trained a
sitting at a time.

:data:`TARGETS` lists what the campaign builds, most important first. :func:`campaign_plan`
says, without training, how much of each target exists and what the rest costs at the rate
measured from the store's own records; :func:`run_campaign` trains what is missing, target by
target, one population per round across the target's chains (split into populations of at most
``max_population``), and stops at its deadline at a clean point: the population in training is
checkpointed at its next evaluation point (:class:`lth.train.Checkpoint`), so the next sitting
resumes it mid-round and loses nothing finished.

    python -m lth campaign --dry-run            # the plan and its cost
    python -m lth campaign --hours 2.5          # train for 2.5 hours, then stop cleanly
    python -m lth campaign --until 10:45 --only fc-fig3
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import paper
from .data import Dataset
from .executors import DaskExecutor, InProcess, distribute
from .nets import get_architecture
from .pages import get_page
from .provenance import check_clean_tree
from .pruning import run_sweep, sweep_plan
from .sparse import estimated_speedup
from .specs import RATE_HINT, Chain, Settings, resolve_settings
from .store import RunStore, StateCache
from .train import CHECKPOINT_EVERY_S, DeadlineReached

#: Populations of at most this many members: a round of 45 chains trains as 6 populations, so
#: a deadline costs at most one population's progress since its last checkpoint, and FC's
#: engine runs near its best rate (benchmarks/throughput.py: K=4 to 16).
MAX_POPULATION = 8


@dataclass(frozen=True)
class Target:
    """One part of the campaign: the chains of one or more settings (one network, protocol and
    precision), trained to their rounds in lockstep."""

    name: str
    description: str
    settings: tuple[Settings, ...] = field(compare=False)

    def chains(self) -> list[Chain]:
        return list(dict.fromkeys(c for s in self.settings for c in s.chains()))

    @property
    def rounds(self) -> int:
        return max(s.rounds for s in self.settings)

    @property
    def net(self) -> str:
        return self.settings[0].net


def _paper(net: str, criteria, seeds, rounds: int | None = None, **actions) -> Settings:
    return resolve_settings("paper", net, list(criteria), list(seeds), rounds, **actions)


def _figures_4_5_s5(seeds: Sequence[int]) -> tuple[Settings, ...]:
    return (
        _paper("fc", ["large_final"], seeds, mask1=paper.FIGURE4_MASK1),
        _paper("fc", ["large_final"], seeds, mask0=paper.FIGURE5_MASK0),
        _paper("fc", paper.FIGURE_S5_CRITERIA, seeds),
    )


#: The campaign's targets, most important first (issue "The paper at full scale", section 4).
TARGETS: tuple[Target, ...] = (
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
    *(
        Target(
            f"{net}-dense",
            f"{net.capitalize()} dense runs, seeds 0 and 1, the paper's training length (for "
            "Figure 7 and Table 1 on CIFAR-10, and to choose a Figure 3 profile)",
            (_paper(net, ["large_final"], (0, 1), rounds=0),),
        )
        for net in ("conv2", "conv4", "conv6")
    ),
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


def measured_rate(store: RunStore, net: str) -> tuple[float, str]:
    """Model-samples/s of dense training (evaluations included) for ``net``: the median over the
    store's dense-path records made by the member-independent engine, else the development CPU's
    hint. Sparse rounds are estimated from this and :func:`lth.sparse.estimated_speedup`."""
    rates = []
    for key in store.keys():
        record = store.get(key)
        spec, made = (record or {}).get("spec", {}), (record or {}).get("provenance", {})
        if spec.get("net") != net or "population" not in made or spec.get("kind"):
            continue
        if "sparse" in spec:
            continue
        wall = made.get("population_wall_time_s") or 0
        if wall > 0:
            rates.append(made["population_size"] * spec["iterations"] * spec["batch_size"] / wall)
    if rates:
        return statistics.median(rates), f"measured, median of {len(rates)} records"
    return RATE_HINT.get(net, RATE_HINT["fc"]) / 1.3, "development CPU's hint"


@dataclass(frozen=True)
class TargetPlan:
    target: Target
    runs: int
    present: int
    to_train: int
    hours: float
    rate: float
    rate_source: str
    rounds_complete: int  # rounds 0..n-1 of every chain are recorded

    def line(self) -> str:
        n = self.rounds_complete
        done = {0: "", 1: "round 0 complete"}.get(n, f"rounds 0-{n - 1} complete")
        return (
            f"{self.target.name:24s} {self.present:5,} of {self.runs:5,} runs"
            f"{', ' + done if done else ''}; to train {self.to_train:,} "
            f"(about {self.hours:,.1f} h at {self.rate:,.0f} model-samples/s dense, "
            f"{self.rate_source}; sparse rounds at their measured speed-up)"
        )


def dense_equivalent_samples(chains: Sequence[Chain], to_train: Sequence[set[str]]) -> float:
    """The model-samples of the runs ``to_train`` (round r's keys at index r) of ``chains``,
    each sparse round's divided by its measured speed-up (:func:`lth.sparse.estimated_speedup`):
    divided by the dense rate, the hours they take."""
    arch = get_architecture(chains[0].net)
    protocol = chains[0].protocol
    samples = 0.0
    for r, keys in enumerate(to_train):
        by_key = {c.run_key(r): c for c in chains}
        for key in keys:
            speedup = estimated_speedup(arch, r, by_key[key].sparse_layers(r))
            samples += protocol.iterations * protocol.batch_size / speedup
    return samples


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
    their measured speed-up."""
    rows = []
    rates = {net: measured_rate(store, net) for net in dict.fromkeys(c[1] for c in COSTED)}
    for figure, net, profiles, options in COSTED:
        rate, source = rates[net]  # one look at every record per network, not per row
        for profile in profiles:
            settings = resolve_settings(profile, net, **options)
            chains, rounds = settings.chains(), settings.rounds
            plan = sweep_plan(chains, rounds, store, cache)
            every = dense_equivalent_samples(chains, plan.runs) / rate / 3600
            rest = dense_equivalent_samples(chains, plan.missing) / rate / 3600
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


def campaign_plan(
    targets: Sequence[Target], store: RunStore, cache: StateCache
) -> list[TargetPlan]:
    """How much of each target exists, and what the rest costs."""
    plans = []
    for target in targets:
        chains = target.chains()
        plan = sweep_plan(chains, target.rounds, store, cache)
        rate, source = measured_rate(store, target.net)
        dense_samples = dense_equivalent_samples(chains, plan.to_train)
        complete = next((r for r, m in enumerate(plan.missing) if m), len(plan.missing))
        plans.append(
            TargetPlan(
                target,
                plan.count("runs"),
                plan.count("runs") - plan.count("missing"),
                plan.count("to_train"),
                dense_samples / rate / 3600,
                rate,
                source,
                complete,
            )
        )
    return plans


def run_campaign(
    targets: Sequence[Target],
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
    if executor is not None and executor.distributed:
        sweeps = [(t.chains(), t.rounds, -i) for i, t in enumerate(targets)]
        common = dict(data_root=data_root, data=data, max_population=max_population)
        common.update(allow_dirty=allow_dirty, deadline=deadline, device=device)
        common.update(checkpoint_every_s=checkpoint_every_s)
        log(f"== {len(targets)} target(s) on {executor.describe()}")
        results = distribute(executor, sweeps, store, cache, **common)
        stopped = sum(r.stopped for r in results)
        log(f"{len(results)} task(s), {stopped} stopped by the deadline, checkpointed")
        finished = not stopped
        targets_in_process: Sequence[Target] = ()
    else:
        targets_in_process = targets
    for target in targets_in_process:
        if time.time() >= deadline:
            finished = False
            break
        log(f"== {target.name}: {target.description}")
        try:
            run_sweep(
                target.chains(),
                target.rounds,
                store=store,
                cache=cache,
                data_root=data_root,
                data=data,
                progress=progress,
                log=log,
                allow_dirty=allow_dirty,
                max_population=max_population,
                deadline=deadline,
                device=device,
                checkpoint_every_s=checkpoint_every_s,
            )
        except DeadlineReached as stop:
            log(f"deadline reached, checkpointed: {stop}")
            finished = False
            break
    new = sorted(set(store.keys()) - before)
    log(f"this sitting: {len(new)} new record(s) in {(time.time() - t0) / 3600:.2f} h")
    for plan in campaign_plan(targets, store, cache):
        log(plan.line())
    return finished


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
        raise ValueError(f"--until {until}: that time has passed today")
    return deadline

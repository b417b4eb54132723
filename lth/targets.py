"""The campaign's targets (issue "The paper at full scale"; DESIGN.md, "Runs, results and
caching"): what one part of the campaign makes, how much of it the store holds, what the rest
costs, and how it is made.

Every target has a ``name``, a ``description`` and a ``net``; :meth:`plan` says, without
training, how much of it exists and what the rest costs (a :class:`TargetPlan`); :meth:`run`
makes what is missing until a deadline, where it stops at a clean point with
:class:`lth.train.DeadlineReached`. The kinds:

- :class:`Target`: pruning chains of one or more settings, round by round (book/spec.md
  section 1);
- :class:`UntrainedSupermaskTarget`: Figure 7's untrained supermasks of dense runs (section 8);
- :class:`LearnedSupermaskTarget`: Table 1's learned supermasks (section 9);
- :class:`ChosenTarget`: pruning chains whose settings are chosen from the records of earlier
  targets (the conv nets' Figure 3 profile, :mod:`lth.conv_profile`); until those records exist
  it waits.

Costs are in hours on one 2-core CPU like the project's, at the dense training rate measured
from the store's records (:func:`measured_rate`). An evaluation-only network (an untrained
supermask) is counted as a third of a training step per test image, and a learned-supermask
epoch as one training step per training image.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .data import SPLITS
from .nets import get_architecture
from .pruning import run_sweep, sweep_plan
from .sparse import estimated_speedup
from .specs import RATE_HINT, Chain, Settings
from .store import RunStore, StateCache, spec_key
from .supermask import LearnedSupermask
from .supermask_sweeps import (
    dense_chains,
    learned_supermask_sweep,
    untrained_specs,
    untrained_supermask_sweep,
)
from .train import Protocol

#: bf16 training against fp32 on the project's CPU, for estimates before any bf16 record of a
#: network exists (benchmarks/throughput.py, conv nets, K=2 and 8: 1.9-2.3x; FC is not faster).
BF16_SPEEDUP_HINT = {"fc": 1.0, "conv2": 2.0, "conv4": 2.0, "conv6": 2.0}


def run_samples(net: str, protocol: Protocol) -> float:
    """The work of one run in training model-samples: its training samples, and its
    evaluations (validation at every evaluation point, the test set twice at the end) at a
    third of a training step per image. Counting the evaluations makes the rate of short runs,
    where they weigh more, a fair estimate for long ones."""
    _, n_val, n_test = SPLITS[get_architecture(net).dataset]
    evaluations = len(protocol.evaluation_points()) * n_val + 2 * n_test
    return protocol.iterations * protocol.batch_size + evaluations / 3


def measured_rate(store: RunStore, net: str, precision: str = "fp32") -> tuple[float, str]:
    """Model-samples/s of dense training (:func:`run_samples`: evaluations included) for ``net``
    in ``precision``: the median over the store's dense-path records made by the
    member-independent engine, else the development CPU's hint (bf16: times
    :data:`BF16_SPEEDUP_HINT`). Sparse rounds are estimated from this and
    :func:`lth.sparse.estimated_speedup`."""
    rates = []
    for key in store.keys():
        record = store.get(key)
        spec, made = (record or {}).get("spec", {}), (record or {}).get("provenance", {})
        if spec.get("net") != net or "population" not in made or spec.get("kind"):
            continue
        if "sparse" in spec or spec.get("precision", "fp32") != precision:
            continue
        wall = made.get("population_wall_time_s") or 0
        if wall > 0:
            every = spec["eval_every"]
            protocol = Protocol(spec["iterations"], spec["batch_size"], eval_every=every)
            rates.append(made["population_size"] * run_samples(net, protocol) / wall)
    if rates:
        return statistics.median(rates), f"measured, median of {len(rates)} records"
    speedup = BF16_SPEEDUP_HINT.get(net, 1.0) if precision == "bf16" else 1.0
    return RATE_HINT.get(net, RATE_HINT["fc"]) / 1.3 * speedup, "development CPU's hint"


def rate_of(store: RunStore, net: str, precision: str, rates: dict | None) -> tuple[float, str]:
    """:func:`measured_rate`, looked up once per network and precision in ``rates`` (a memo
    that :func:`lth.campaign.campaign_plan` shares between its targets: each measurement reads
    every record of the store)."""
    if rates is None:
        return measured_rate(store, net, precision)
    if (net, precision) not in rates:
        rates[net, precision] = measured_rate(store, net, precision)
    return rates[net, precision]


def dense_equivalent_samples(chains: Sequence[Chain], to_train: Sequence[set[str]]) -> float:
    """The model-samples of the runs ``to_train`` (round r's keys at index r) of ``chains``,
    each sparse round's divided by its measured speed-up (:func:`lth.sparse.estimated_speedup`):
    divided by the dense rate, the hours they take."""
    arch = get_architecture(chains[0].net)
    per_run = run_samples(arch.name, chains[0].protocol)
    samples = 0.0
    for r, keys in enumerate(to_train):
        by_key = {c.run_key(r): c for c in chains}
        for key in keys:
            samples += per_run / estimated_speedup(arch, r, by_key[key].sparse_layers(r))
    return samples


@dataclass(frozen=True)
class TargetPlan:
    """How much of a target exists and what the rest costs; ``waiting`` names what it waits
    for (then nothing of it can be planned yet)."""

    target: object
    runs: int
    present: int
    to_train: int
    hours: float
    rate: float
    rate_source: str
    rounds_complete: int = 0  # rounds 0..n-1 of every chain are recorded (pruning targets)
    unit: str = "runs"
    waiting: str | None = None

    def line(self) -> str:
        name = f"{self.target.name:24s}"
        if self.waiting is not None:
            then = f"; then {self.to_train:,} {self.unit}, about {self.hours:,.1f} h"
            return f"{name} waits for {self.waiting}{then if self.to_train else ''}"
        n = self.rounds_complete
        sparse = "; sparse rounds at their measured speed-up" if self.target.net == "fc" else ""
        done = {0: "", 1: "round 0 complete"}.get(n, f"rounds 0-{n - 1} complete")
        return (
            f"{name} {self.present:5,} of {self.runs:5,} {self.unit}"
            f"{', ' + done if done else ''}; to make {self.to_train:,} "
            f"(about {self.hours:,.1f} h at {self.rate:,.0f} model-samples/s dense, "
            f"{self.rate_source}{sparse})"
        )


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

    def plan(self, store: RunStore, cache: StateCache, rates: dict | None = None) -> TargetPlan:
        chains = self.chains()
        plan = sweep_plan(chains, self.rounds, store, cache)
        rate, source = rate_of(store, self.net, chains[0].precision, rates)
        samples = dense_equivalent_samples(chains, plan.to_train)
        complete = next((r for r, m in enumerate(plan.missing) if m), len(plan.missing))
        present = plan.count("runs") - plan.count("missing")
        return TargetPlan(
            self,
            plan.count("runs"),
            present,
            plan.count("to_train"),
            samples / rate / 3600,
            rate,
            source,
            complete,
        )

    def waiting(self, store: RunStore) -> str | None:
        return None

    def run(self, deadline: float, store: RunStore, cache: StateCache, **common) -> None:
        """Train what is missing (``common``: :func:`lth.pruning.run_sweep`'s options)."""
        run_sweep(self.chains(), self.rounds, store=store, cache=cache, deadline=deadline, **common)


@dataclass(frozen=True)
class UntrainedSupermaskTarget:
    """Figure 7's untrained supermasks (book/spec.md section 8) of the dense runs of
    ``settings`` (its criteria, every treatment, :func:`lth.supermask.figure7_levels`); the
    dense runs are ``dense_target``'s."""

    name: str
    description: str
    settings: Settings = field(compare=False)
    dense_target: str

    @property
    def net(self) -> str:
        return self.settings.net

    def plan(self, store: RunStore, cache: StateCache, rates: dict | None = None) -> TargetPlan:
        rate, source = rate_of(store, self.net, "fp32", rates)
        dense = dense_chains(self.settings)
        specs = {c: list(untrained_specs(self.settings, c).values()) for c in dense}
        runs = sum(len(s) for s in specs.values())
        present = sum(spec_key(s) in store for v in specs.values() for s in v)
        waiting = self.waiting(store)
        n_test, samples = SPLITS[get_architecture(self.net).dataset][2], 0.0
        for chain, chain_specs in specs.items():
            missing = [s for s in chain_specs if spec_key(s) not in store]
            samples += sum(len(s["levels"]) for s in missing) * n_test / 3
            if waiting is None and missing and chain.run_key(0) not in cache:  # w_f retrained
                samples += run_samples(self.net, chain.protocol)
        hours = samples / rate / 3600
        to_make = runs - present
        return TargetPlan(self, runs, present, to_make, hours, rate, source, 0, "records", waiting)

    def waiting(self, store: RunStore) -> str | None:
        """What it waits for: its dense runs, while any is missing."""
        if any(c.run_key(0) not in store for c in dense_chains(self.settings)):
            return f"{self.dense_target} (its dense runs)"
        return None

    def run(self, deadline: float, store: RunStore, cache: StateCache, **common) -> None:
        if self.waiting(store) is None:
            untrained_supermask_sweep(
                self.settings, store=store, cache=cache, deadline=deadline, **_only(common)
            )


@dataclass(frozen=True)
class LearnedSupermaskTarget:
    """Table 1's learned supermasks (book/spec.md section 9): ``runs``, one population."""

    name: str
    description: str
    runs: tuple[LearnedSupermask, ...] = field(compare=False)

    @property
    def net(self) -> str:
        return self.runs[0].net

    def plan(self, store: RunStore, cache: StateCache, rates: dict | None = None) -> TargetPlan:
        rate, source = rate_of(store, self.net, "fp32", rates)
        missing = [r for r in self.runs if spec_key(r.spec()) not in store]
        n_train = SPLITS[get_architecture(self.net).dataset][0]
        hours = sum(r.epochs for r in missing) * n_train / rate / 3600
        present = len(self.runs) - len(missing)
        return TargetPlan(self, len(self.runs), present, len(missing), hours, rate, source)

    def waiting(self, store: RunStore) -> str | None:
        return None

    def run(self, deadline: float, store: RunStore, cache: StateCache, **common) -> None:
        learned_supermask_sweep(
            self.runs, store=store, cache=cache, deadline=deadline, **_only(common, learned=True)
        )


@dataclass(frozen=True)
class ChosenTarget:
    """Pruning chains whose settings ``choose(store)`` picks from the records of earlier
    targets: a :class:`Target` once it can, else the reason it cannot yet (a string)."""

    name: str
    description: str
    net: str
    choose: Callable[[RunStore], Target | str] = field(compare=False)

    def resolved(self, store: RunStore) -> Target | str:
        chosen = self.choose(store)
        if isinstance(chosen, Target):
            return Target(self.name, f"{self.description}: {chosen.description}", chosen.settings)
        return chosen

    def plan(self, store: RunStore, cache: StateCache, rates: dict | None = None) -> TargetPlan:
        chosen = self.resolved(store)
        if isinstance(chosen, Target):
            return chosen.plan(store, cache, rates)
        rate, source = rate_of(store, self.net, "fp32", rates)
        return TargetPlan(self, 0, 0, 0, 0.0, rate, source, waiting=chosen)

    def waiting(self, store: RunStore) -> str | None:
        chosen = self.resolved(store)
        return chosen if isinstance(chosen, str) else None

    def run(self, deadline: float, store: RunStore, cache: StateCache, **common) -> None:
        chosen = self.resolved(store)
        if isinstance(chosen, Target):
            chosen.run(deadline, store, cache, **common)


def _only(common: dict, learned: bool = False) -> dict:
    """The options of :func:`lth.pruning.run_sweep` that the supermask sweeps take too."""
    names = ["data_root", "data", "progress", "log", "allow_dirty"]
    names += ["device", "checkpoint_every_s"] if learned else []
    return {k: v for k, v in common.items() if k in names}

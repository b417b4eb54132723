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
from the store's records, sparse rounds at the speed-up their records measured
(:mod:`lth.costs`). An evaluation-only network (an untrained supermask) is counted as a third
of a training step per test image, and a learned-supermask epoch as one training step per
training image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .costs import dense_equivalent_samples, rate_of, run_samples, speedups_of
from .data import SPLITS
from .nets import get_architecture
from .pruning import run_sweep, sweep_plan
from .specs import Chain, Settings
from .store import RunStore, StateCache, spec_key
from .supermask import LearnedSupermask
from .supermask_sweeps import (
    dense_chains,
    learned_supermask_sweep,
    untrained_specs,
    untrained_supermask_sweep,
)


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
    sparse_source: str = ""  # how the sparse rounds' speed-up was found, where it was used

    def line(self) -> str:
        name = f"{self.target.name:24s}"
        if self.waiting is not None:
            then = f"; then {self.to_train:,} {self.unit}, about {self.hours:,.1f} h"
            return f"{name} waits for {self.waiting}{then if self.to_train else ''}"
        n = self.rounds_complete
        sparse = f"; {self.sparse_source}" if self.sparse_source else ""
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
        speedups = speedups_of(store, self.net, rates)
        samples = dense_equivalent_samples(chains, plan.to_train, speedups)
        sparse = any(c.sparse_layers(r) for c in chains for r in range(self.rounds + 1))
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
            sparse_source=speedups.describe() if sparse else "",
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

"""Pruning chains and sweeps: specs -> populations -> run records -> tidy DataFrames.

A :class:`Chain` is one iterative pruning experiment (PAPER.md section 1): a network, a seed, a
mask criterion, a mask-1 action and a mask-0 action. Its round r is one trained network, a *run*,
fully described by :meth:`Chain.run_spec` and stored under that spec's hash. Round 0 is the dense
network, the same for every criterion and action, so its spec names none of them and all chains
of one seed share it.

:func:`run_sweep` advances many chains in lockstep, round by round; every round trains all the
runs still missing as one population. Finished runs are read back, never retrained; a chain's
per-round tensors go to the state cache, so an interrupted sweep resumes at the round it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import pandas as pd
import torch

from .actions import get_mask0_action, get_mask1_action, next_round_start
from .chains import ChainSteps, apply_step, make_step, start_digest
from .criteria import FIGURE3_CRITERIA, get_criterion, prune_layerwise
from .data import Dataset, load_dataset, test_set_tag
from .nets import Population, get_architecture, initial_weights, percent_remaining
from .nets import seeded_generator as _generator
from .provenance import check_clean_tree, code_identity, provenance
from .sparse import sparse_layers
from .store import Heartbeat, RunStore, StateCache, is_legacy, spec_key
from .supermask import (
    SUPERMASK_LEVELS,
    TREATMENTS,
    LearnedSupermask,
    get_treatment,
    one_shot_masks,
    train_learned_supermasks,
    treated_weights,
    untrained_supermask_accuracy,
)
from .train import (
    PROTOCOLS,
    Checkpoint,
    Protocol,
    check_precision,
    dataset_on,
    train_population,
)

#: Seconds between a training population's checkpoints (see lth.train.Checkpoint).
CHECKPOINT_EVERY_S = 300.0

#: Training model-samples/s measured on the 2-core development CPU (fp32), for estimates.
RATE_HINT = {"fc": 50_000, "conv2": 450, "conv4": 250, "conv6": 160}
LEARNED_EPOCH_HINT_S = 1.0  # s per member-epoch of a learned FC supermask on that CPU


@dataclass(frozen=True)
class Chain:
    """One iterative pruning experiment; ``iterations`` etc. default to the paper's protocol."""

    net: str
    seed: int
    criterion: str = "large_final"
    mask1: str = "rewind"
    mask0: str = "zero"
    iterations: int | None = None
    precision: str = "fp32"
    test_set: str | None = None  # None: the official complete test set (see test_set_tag)
    sparse: bool = False  # compute pruned linear layers on their kept weights (lth.sparse)

    def __post_init__(self) -> None:
        get_architecture(self.net)
        get_criterion(self.criterion)
        get_mask1_action(self.mask1)
        get_mask0_action(self.mask0)
        check_precision(self.precision)
        if self.net not in PROTOCOLS:
            raise ValueError(f"no training protocol for {self.net!r}")

    @property
    def protocol(self) -> Protocol:
        base = PROTOCOLS[self.net]
        return base if self.iterations is None else replace(base, iterations=self.iterations)

    def run_spec(self, round_: int) -> dict:
        """Everything that determines round ``round_`` of this chain (its store key's source)."""
        protocol = self.protocol
        dense = round_ == 0
        return {
            "net": self.net,
            "seed": self.seed,
            "round": round_,
            "criterion": None if dense else self.criterion,
            "mask1": None if dense else self.mask1,
            "mask0": None if dense else self.mask0,
            "iterations": protocol.iterations,
            "batch_size": protocol.batch_size,
            "lr": protocol.lr,
            "eval_every": protocol.eval_every,
            "precision": self.precision,
            # hashed only when not the official complete set, so existing keys stay found
            **({"test_set": self.test_set} if self.test_set is not None else {}),
            # hashed only in rounds that run sparse: the sparse path rounds otherwise
            **({"sparse": list(layers)} if (layers := self.sparse_layers(round_)) else {}),
        }

    def sparse_layers(self, round_: int) -> tuple[str, ...]:
        """The linear layers round ``round_`` computes on their kept weights only
        (:func:`lth.sparse.sparse_layers`; none unless the chain is ``sparse``)."""
        if not self.sparse:
            return ()
        return sparse_layers(get_architecture(self.net), round_, self.mask0, self.precision)

    def sparse_plan(self, round_: int) -> tuple[int, ...]:
        """:meth:`sparse_layers` as layer indices (the ``sparse`` plan of train_population)."""
        names = self.sparse_layers(round_)
        arch = get_architecture(self.net)
        return tuple(i for i, layer in enumerate(arch.layers) if layer.name in names)

    def run_key(self, round_: int) -> str:
        return spec_key(self.run_spec(round_))


# ----------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    """A named scale for every notebook: seeds, rounds and training length."""

    seeds: tuple[int, ...]
    rounds: int
    iterations: int | None  # None: the paper's per-network protocol
    description: str = field(default="", compare=False)
    supermask_epochs: int | None = None  # learned supermasks; None: the official 2,000
    sparse: bool = False  # sparse rounds (lth.sparse): only profiles begun after they existed


PROFILES: dict[str, Profile] = {
    "smoke": Profile((0,), 2, 200, "CI: 1 seed, 2 rounds, 200 iterations", supermask_epochs=1),
    "mid": Profile((0, 1), 16, 10_000, "committed (Fig. 3): 2 seeds, 16 rounds, 10,000 iterations"),
    "mid-short": Profile(
        (0, 1), 16, 5_000, "committed (Figs. 4, 5, S5): 2 seeds, 16 rounds, 5,000 iterations"
    ),
    "paper": Profile(
        (0, 1, 2, 3, 4),
        24,
        None,
        "the paper: 5 seeds, 24 rounds, full protocol (sparse rounds where they pay)",
        sparse=True,
    ),
    "conv-short": Profile(
        (0, 1),
        6,
        300,
        "committed (Conv2, Fig. 3): 2 seeds, 6 rounds, 300 iterations (about 0.4 epoch)",
    ),
    "supermask": Profile(
        (0, 1, 2, 3, 4),
        0,
        None,
        "committed (Fig. 7, Table 1): 5 dense runs at the paper's full protocol, "
        "learned supermasks for 60 epochs",
        supermask_epochs=60,
    ),
}


@dataclass(frozen=True)
class Settings:
    """A notebook's resolved parameters: the chains are every combination of criterion, mask-1
    action, mask-0 action and seed."""

    net: str
    criteria: tuple[str, ...]
    seeds: tuple[int, ...]
    rounds: int
    iterations: int | None
    profile: str
    mask1: tuple[str, ...] = ("rewind",)
    mask0: tuple[str, ...] = ("zero",)
    precision: str = "fp32"
    sparse: bool = False

    def chains(self) -> list[Chain]:
        return [
            Chain(
                self.net,
                seed,
                criterion,
                mask1,
                mask0,
                self.iterations,
                self.precision,
                sparse=self.sparse,
            )
            for criterion in self.criteria
            for mask1 in self.mask1
            for mask0 in self.mask0
            for seed in self.seeds
        ]

    def describe(self) -> str:
        iterations = self.iterations or PROTOCOLS[self.net].iterations
        return (
            f"{self.net}, profile {self.profile!r}: {len(self.seeds)} seed(s) {list(self.seeds)}, "
            f"{self.rounds} pruning rounds, {iterations:,} iterations per run, {self.precision}"
        )


def as_list(value: str | Sequence | None, cast=str) -> list | None:
    """A list parameter given as a sequence or as text (``"[0, 1]"``, ``"0,1"``, ``"a b"``), as
    papermill's ``-p`` passes lists; a single number is a list of one; None stays None."""
    if value is None or not isinstance(value, str):
        if value is not None and not isinstance(value, Sequence):
            value = [value]  # seeds=0 is [0]
        return None if value is None else [cast(v) for v in value]
    items = value.strip().strip("[]()").replace(",", " ").split()
    return [cast(item.strip("'\"")) for item in items]


def resolve_settings(
    profile: str = "mid",
    net: str = "fc",
    criteria: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    rounds: int | None = None,
    iterations: int | None = None,
    mask1: str | Sequence[str] = "rewind",
    mask0: str | Sequence[str] = "zero",
    precision: str = "fp32",
) -> Settings:
    """Fill the parameters left as None from ``profile``; reject unknown values at once.

    ``criteria`` defaults to Figure 3's nine; ``mask1`` and ``mask0`` take one name or a list.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; accepted: {', '.join(PROFILES)}")
    get_architecture(net)
    base = PROFILES[profile]
    criteria, seeds = as_list(criteria), as_list(seeds, int)
    criteria = tuple(FIGURE3_CRITERIA if criteria is None else criteria)
    mask1, mask0 = tuple(as_list(mask1)), tuple(as_list(mask0))
    for name in criteria:
        get_criterion(name)
    for name in mask1:
        get_mask1_action(name)
    for name in mask0:
        get_mask0_action(name)
    seeds = tuple(base.seeds if seeds is None else seeds)
    rounds = base.rounds if rounds is None else rounds
    iterations = base.iterations if iterations is None else iterations
    if not (seeds and criteria and mask1 and mask0):
        raise ValueError("need at least one seed, criterion, mask-1 action and mask-0 action")

    def whole(value) -> bool:  # booleans and 1.5 are not whole numbers (lth.parameters)
        return hasattr(value, "__index__") and not isinstance(value, bool)

    if not whole(rounds) or rounds < 0:
        raise ValueError(f"rounds must be a whole number >= 0, got {rounds!r}")
    if iterations is not None and (not whole(iterations) or iterations < 1):
        raise ValueError(f"iterations must be a whole number >= 1 or None, got {iterations!r}")
    if any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be whole numbers >= 0, got {list(seeds)!r}")
    seeds = tuple(int(s) for s in seeds)
    check_precision(precision)
    return Settings(
        net, criteria, seeds, rounds, iterations, profile, mask1, mask0, precision, base.sparse
    )


# ----------------------------------------------------------------------------- sweeps


def for_data(chains: Sequence[Chain], data: Dataset) -> list[Chain]:
    """``chains`` with the identity of the test set they are trained and tested on: unchanged
    for the official complete set, tagged for any other (a partial test set gets other keys)."""
    tag = test_set_tag(data)
    return [c if c.test_set == tag else replace(c, test_set=tag) for c in chains]


def _plan(
    chains: Sequence[Chain], rounds: int, store: RunStore, cache: StateCache, keep_state: bool
):
    """For every chain, which rounds must be trained: missing records, plus earlier rounds whose
    state a later missing round needs when neither the cache nor the committed chain steps can
    give it (and the last round, if ``keep_state`` asks for its tensors and the cache lacks
    them: the supermasks need final weights, which steps do not hold)."""
    steps = chain_steps(store)
    plan = {}
    for chain in chains:
        need = [False] * (rounds + 1)
        for r in range(rounds, -1, -1):
            key = chain.run_key(r)
            if r < rounds:
                lacks = need[r + 1] and not steps.available(chain, r + 1)
            else:
                lacks = keep_state
            need[r] = key not in store or (lacks and key not in cache)
        plan[chain] = need
    return plan


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep would do now: per round, the distinct runs it covers, those without a
    record, and those it would train (missing ones, plus finished ones whose state a later
    round needs and the cache lacks)."""

    runs: list[set[str]]
    missing: list[set[str]]
    to_train: list[set[str]]

    def count(self, part: str) -> int:
        return sum(len(keys) for keys in getattr(self, part))


def sweep_plan(
    chains: Sequence[Chain], rounds: int, store: RunStore, cache: StateCache
) -> SweepPlan:
    """The :class:`SweepPlan` of ``run_sweep(chains, rounds)`` on the official data."""
    plan = _plan(chains, rounds, store, cache, False)
    per_round = [[(c, c.run_key(r)) for c in chains] for r in range(rounds + 1)]
    return SweepPlan(
        runs=[{key for _, key in pairs} for pairs in per_round],
        missing=[{key for _, key in pairs if key not in store} for pairs in per_round],
        to_train=[{key for c, key in pairs if plan[c][r]} for r, pairs in enumerate(per_round)],
    )


def round_step(chain: Chain, round_: int, previous: dict | None, steps: ChainSteps):
    """The round step of PAPER.md section 1: ``chain``'s starting values, the tensor to train
    and the mask at ``round_``, from its previous round's state (the mask criterion on its
    start, final weights and mask, then the mask-1 and mask-0 actions).

    The step between the rounds is committed (:mod:`lth.chains`): made and saved the first
    time, applied (and checked against its digest) afterwards, and without ``previous``
    tensors the start is rebuilt from the seed's initial weights and the committed steps."""
    arch = get_architecture(chain.net)
    if round_ == 0:
        weights = initial_weights(arch, chain.seed)
        return weights, weights, [torch.ones(layer.shape) for layer in arch.layers]
    key = chain.run_key(round_)
    if previous is None:
        rebuilt = steps.rebuild(chain, round_, initial_weights(arch, chain.seed))
        if rebuilt is None:
            raise RuntimeError(f"{chain}, round {round_}: no cached state and no committed steps")
        return rebuilt
    w_start, w_final, mask = previous["w_start"], previous["w_final"], previous["mask"]
    step = steps.load(key)
    if step is not None:
        start = apply_step(chain, round_, w_start, mask, step)
        if start_digest(*start) != step.start_sha256:
            raise ValueError(f"{steps.path(key)} does not give this chain's start ({chain})")
        return start
    rates = [layer.rate for layer in arch.layers]
    criterion = get_criterion(chain.criterion)
    new_mask = prune_layerwise(mask, w_start, w_final, criterion, rates, _generator(key, "prune"))
    mask1, mask0 = get_mask1_action(chain.mask1), get_mask0_action(chain.mask0)
    generator = _generator(key, "mask-1")
    starts, trained = zip(
        *(
            next_round_start(ws, wf, m, mask1, mask0, generator)
            for ws, wf, m in zip(w_start, w_final, new_mask, strict=True)
        ),
        strict=True,
    )
    start = list(starts), list(trained), new_mask
    steps.save(key, make_step(chain, w_start, w_final, mask, new_mask, start))
    return start


def chain_steps(store: RunStore) -> ChainSteps:
    """The committed chain steps that go with ``store``'s records: ``<store>/chains/``."""
    return ChainSteps(store.root / "chains")


def _record(chain, round_, member, result, pop, wall, device, population, data) -> dict:
    arch = pop.arch
    masks = [m[member] for m in pop.masks]
    return {
        "key": chain.run_key(round_),
        "spec": chain.run_spec(round_),
        "result": {
            "test_accuracy": float(result.test_accuracy[member]),
            "early_stop_iteration": int(result.early_stop_iteration[member]),
            "best_val_loss": float(result.best_val_loss[member]),
            "final_test_accuracy": float(result.final_test_accuracy[member]),
            "percent_remaining": percent_remaining(arch, masks),
            "weights_remaining": {
                layer.name: int(m.count_nonzero())
                for layer, m in zip(arch.layers, masks, strict=True)
            },
            "val_loss": [round(float(v), 5) for v in result.val_loss[member]],
            "n_test": result.n_test,
        },
        "provenance": provenance(device, population, wall, data.identity()),
    }


def run_sweep(
    chains: Sequence[Chain],
    rounds: int,
    *,
    store: RunStore | None = None,
    cache: StateCache | None = None,
    data_root: str | None = None,
    device: str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
    keep_state: bool = False,
    allow_dirty: bool | None = None,
    max_population: int | None = None,
    deadline: float | None = None,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
) -> pd.DataFrame:
    """Make sure rounds 0..``rounds`` of every chain are in the store, training what is missing
    one population per round (of at most ``max_population`` members), and return them as a
    tidy DataFrame (see :func:`sweep_frame`).

    A population saves a checkpoint in the cache every ``checkpoint_every_s`` seconds, so an
    interrupted sweep resumes mid-round; with a ``deadline`` (a ``time.time()`` value) training
    stops at the first evaluation point after it, checkpointed, with
    :class:`lth.train.DeadlineReached`.

    ``keep_state`` also retrains a last round whose record exists but whose tensors the state
    cache lost (the untrained supermasks need the dense runs' final weights). Keys first assume
    the official data, so a store that has every run needs no data; when something must be
    trained the data is loaded, and a test set other than the official complete one gives
    other keys (:func:`for_data`). Records for the committed store are refused from a dirty
    tree unless ``allow_dirty`` (see :func:`lth.provenance.check_clean_tree`)."""
    store = store or RunStore()
    cache = cache or StateCache()
    chains = list(dict.fromkeys(chains))
    for what in ("net", "protocol", "precision"):
        values = {getattr(c, what) for c in chains}
        if len(values) > 1:  # one population trains every run of a round
            raise ValueError(f"one {what} per sweep, got {sorted(map(str, values))}")

    def count(chains):
        plan = _plan(chains, rounds, store, cache, keep_state)
        todo = [{c.run_key(r) for c in chains if plan[c][r]} for r in range(rounds + 1)]
        total = sum(len(set(c.run_key(r) for c in chains)) for r in range(rounds + 1))
        return plan, sum(len(keys) for keys in todo), total

    plan, n_runs, total = count(chains)
    if n_runs == 0:
        log(f"all {total} runs found in the store {store.root}; nothing to train")
        return sweep_frame(chains, rounds, store)
    check_clean_tree(store.root, allow_dirty)
    code_identity()  # provenance: the code as loaded, before any training
    data = load_dataset(get_architecture(chains[0].net).dataset, data_root)
    tagged = for_data(chains, data)
    if tagged != chains:
        chains = tagged
        plan, n_runs, total = count(chains)
    protocol = chains[0].protocol
    samples = n_runs * protocol.iterations * protocol.batch_size
    hours = samples / RATE_HINT.get(chains[0].net, RATE_HINT["fc"]) / 3600
    log(
        f"{total - n_runs} of {total} runs found in {store.root}; training {n_runs} "
        f"({samples / 1e6:,.1f} M model-samples: about {hours:.1f} h on a 2-core CPU)"
    )
    data = dataset_on(data, torch.device(device))

    store.clean()
    cache.clean()
    context = _Round(
        store, cache, data, protocol, device, progress, rounds, deadline, checkpoint_every_s
    )
    try:
        _sweep_rounds(context, chains, plan, keep_state, max_population, log)
    finally:
        clean_checkpoints(cache, store)
    return sweep_frame(chains, rounds, store)


@dataclass(frozen=True)
class _Round:
    """What training any population of a sweep needs besides its members."""

    store: RunStore
    cache: StateCache
    data: Dataset
    protocol: Protocol
    device: str
    progress: bool
    rounds: int
    deadline: float | None
    checkpoint_every_s: float


def _sweep_rounds(context: _Round, chains, plan, keep_state, max_population, log) -> None:
    """The round loop of :func:`run_sweep`: each round's missing runs, claimed and trained in
    populations of at most ``max_population``, or waited for if another process has them."""
    store, cache, rounds = context.store, context.cache, context.rounds
    states: dict[str, dict] = {}
    for r in range(rounds + 1):
        members: dict[str, Chain] = {}
        for chain in chains:
            if plan[chain][r]:
                members.setdefault(chain.run_key(r), chain)
        wants_state = {
            chain.run_key(r)
            for chain in chains
            if (plan[chain][r + 1] if r < rounds else keep_state)
        }
        new_states: dict[str, dict] = {}
        while members:  # other processes may hold some of this round's runs: wait for them
            mine, locks, others = _claim(members, store, cache, wants_state)
            if mine:
                size = max_population or len(mine)
                groups = [list(mine.items())[i : i + size] for i in range(0, len(mine), size)]
                try:
                    with Heartbeat(locks):
                        for group in groups:
                            new_states.update(_train_round(context, dict(group), r, states))
                finally:
                    for lock in locks:
                        lock.release()
            members = others
            if members:
                log(f"round {r}: waiting for {len(members)} run(s) another process is training")
                time.sleep(LOCK_POLL_S)
        _commit_steps(chains, r, new_states, store)
        states = new_states


def _commit_steps(chains: Sequence[Chain], r: int, states: dict, store: RunStore) -> None:
    """Save, for every chain whose round ``r`` this process trained, the step to its round
    r+1 (:mod:`lth.chains`), so that the chain can go on from committed files even if the
    sweep stops here and the cache is lost."""
    steps = chain_steps(store)
    for chain in chains:
        state = states.get(chain.run_key(r))
        if state is not None and chain.run_key(r + 1) not in steps:
            round_step(chain, r + 1, state, steps)


#: Seconds between looks at runs another process is training.
LOCK_POLL_S = 2.0


def _claim(members: dict[str, Chain], store: RunStore, cache: StateCache, wants_state: set):
    """Split a round's runs into those this process trains now (with the locks it took) and
    those another live process is training. A run whose record appeared meanwhile is dropped,
    unless its state is needed and the cache lacks it: then it is retrained for its state only
    (its record is never written twice)."""
    mine, locks, others = {}, [], {}
    for key, chain in members.items():
        if key in store:
            if key in wants_state and key not in cache:
                mine[key] = chain
            continue
        lock = store.lock(key)
        if not lock.acquire():
            others[key] = chain
        elif key in store:  # finished by another process between the look and the lock
            lock.release()
            if key in wants_state and key not in cache:
                mine[key] = chain
        else:
            mine[key], locks = chain, [*locks, lock]
    return mine, locks, others


def _train_round(context: _Round, members: dict[str, Chain], r: int, states: dict) -> dict:
    """Train ``members`` (run key -> chain) at round ``r`` as one population, checkpointed in
    the cache; write their states to the cache and their records to the store; return their
    states."""
    store, cache, data, device = context.store, context.cache, context.data, context.device
    starts = []
    for chain in members.values():
        previous = None
        if r > 0:
            prev_key = chain.run_key(r - 1)
            previous = states.get(prev_key) or cache.load(prev_key)
        starts.append(round_step(chain, r, previous, chain_steps(store)))
    first = next(iter(members.values()))
    arch = get_architecture(first.net)
    pop = Population.from_members(arch, [s[1] for s in starts], [s[2] for s in starts])
    pop = pop.to(device)
    order_seeds = [chain.seed for chain in members.values()]
    fingerprint = hashlib.sha256(",".join(members).encode()).hexdigest()[:16]
    folder = cache.root / "checkpoints"
    checkpoint = Checkpoint(
        folder / f"{fingerprint}.pt", fingerprint, context.checkpoint_every_s, context.deadline
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{fingerprint}.json").write_text(json.dumps(list(members)))  # see clean_checkpoints
    t0 = time.perf_counter()
    result = train_population(
        pop,
        data,
        context.protocol,
        order_seeds,
        precision=first.precision,
        progress=context.progress,
        desc=f"round {r}/{context.rounds}: {len(members)} run(s)",
        checkpoint=checkpoint,
        sparse=[chain.sparse_plan(r) for chain in members.values()],
    )
    wall = time.perf_counter() - t0
    (folder / f"{fingerprint}.json").unlink(missing_ok=True)
    new_states = {}
    for i, (key, chain) in enumerate(members.items()):
        state = {
            "w_start": [w.cpu() for w in starts[i][0]],
            "w_final": [w[i].cpu() for w in result.final_weights],
            "mask": [m[i].cpu() for m in pop.masks],
        }
        cache.save(key, state)
        new_states[key] = state
        if key not in store:
            record = _record(chain, r, i, result, pop, wall, device, list(members), data)
            record["result"]["state_sha256"] = state_digest(state)
            store.put(key, record)
    return new_states


def clean_checkpoints(cache: StateCache, store: RunStore) -> None:
    """Remove checkpoints of populations whose every member is recorded: left when a resumed
    sweep grouped its runs otherwise (member independence makes any grouping give the same
    records)."""
    for members_file in (cache.root / "checkpoints").glob("*.json"):
        try:
            members = json.loads(members_file.read_text())
        except ValueError:
            members = []
        if all(key in store for key in members):
            members_file.with_suffix(".pt").unlink(missing_ok=True)
            members_file.unlink(missing_ok=True)


def state_digest(state: dict[str, list[torch.Tensor]]) -> str:
    """SHA-256 of a run's start values, final weights and mask, in that order: a record's
    fingerprint of the tensors its chain goes on from (``verify`` checks a cache against it)."""
    digest = hashlib.sha256()
    for name in ("w_start", "w_final", "mask"):
        for tensor in state[name]:
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def sweep_frame(chains: Sequence[Chain], rounds: int, store: RunStore) -> pd.DataFrame:
    """One row per (chain, round) with its record's results; round 0 (the dense network) is
    repeated for every chain so that each curve starts at 100% of weights remaining."""
    rows = []
    for chain in chains:
        for r in range(rounds + 1):
            record = store.get(chain.run_key(r))
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
    return (
        f"{len(records)} distinct runs ({len(frame)} rows: the dense runs are shared by every "
        f"chain of a seed)\ntrained on {devices} with torch {versions}, code {commits}: "
        f"{wall / 3600:.2f} h of training wall time in all\ntest images per run: {tests}\n"
        f"{remakeable}"
    )


# ----------------------------------------------------------------------------- supermasks


def untrained_supermask_sweep(
    settings: Settings,
    treatments: Sequence[str] = tuple(TREATMENTS),
    levels: Sequence[int] = SUPERMASK_LEVELS,
    *,
    store: RunStore | None = None,
    cache: StateCache | None = None,
    data_root: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    allow_dirty: bool | None = None,
) -> pd.DataFrame:
    """Untrained supermasks (PAPER.md section 8, Figure 7) of the dense run of every seed in
    ``settings``, for each of its criteria and ``treatments`` at every one-shot level.

    The dense runs come from the store and the state cache (trained if missing). One record per
    (dense run, criterion, treatment) holds the accuracy at every level; missing ones are
    computed one dense run at a time, all their masked networks as one population.
    """
    store = store or RunStore()
    cache = cache or StateCache()
    for name in treatments:
        get_treatment(name)
    levels = [int(k) for k in levels]
    dense = [
        Chain(settings.net, seed, iterations=settings.iterations, precision=settings.precision)
        for seed in settings.seeds
    ]

    def specs_of(chain: Chain) -> dict[tuple[str, str], dict]:
        return {
            (c, t): {
                "kind": "untrained_supermask",
                "dense": chain.run_key(0),
                "criterion": c,
                "treatment": t,
                "levels": levels,
            }
            for c in settings.criteria
            for t in treatments
        }

    def incomplete() -> list[Chain]:
        return [c for c in dense if any(spec_key(s) not in store for s in specs_of(c).values())]

    arch = get_architecture(settings.net)
    data, rows = None, []
    if incomplete() or any(c.run_key(0) not in store for c in dense):
        check_clean_tree(store.root, allow_dirty)
        data = load_dataset(arch.dataset, data_root)
        dense = for_data(dense, data)  # a partial test set: other dense runs, other records
    # the dense records must exist; their tensors only where a supermask record is missing
    for chains, keep_state in ((dense, False), (incomplete(), True)):
        if chains:
            run_sweep(
                chains,
                0,
                store=store,
                cache=cache,
                data_root=data_root,
                progress=progress,
                log=log,
                keep_state=keep_state,
                allow_dirty=allow_dirty,
            )
    for chain in dense:
        dense_key = chain.run_key(0)
        specs = specs_of(chain)
        missing = [ct for ct, spec in specs.items() if spec_key(spec) not in store]
        if missing:
            t0 = time.perf_counter()
            state = cache.load(dense_key)
            w_i, w_f = state["w_start"], state["w_final"]
            masks = {
                c: one_shot_masks(
                    arch, w_i, w_f, get_criterion(c), levels, _generator(dense_key, c, "supermask")
                )
                for c in dict.fromkeys(c for c, _ in missing)
            }
            weights = {t: treated_weights(w_i, t) for t in dict.fromkeys(t for _, t in missing)}
            members = [(c, t, j) for c, t in missing for j in range(len(levels))]
            acc = untrained_supermask_accuracy(
                arch,
                [weights[t] for _, t, _ in members],
                [masks[c][j] for c, _, j in members],
                data.test,
            )
            wall = time.perf_counter() - t0
            for i, (c, t) in enumerate(missing):
                spec = specs[(c, t)]
                result = [
                    {
                        "k": k,
                        "percent_remaining": percent_remaining(arch, masks[c][j]),
                        "test_accuracy": float(acc[i * len(levels) + j]),
                    }
                    for j, k in enumerate(levels)
                ]
                record = {
                    "key": spec_key(spec),
                    "spec": spec,
                    "result": {"levels": result, "n_test": len(data.test)},
                    "provenance": provenance(
                        "cpu", [spec_key(specs[m]) for m in missing], wall, data.identity()
                    ),
                }
                store.put(spec_key(spec), record)
        dense_result = store.get(dense_key)["result"]
        for (c, t), spec in specs.items():
            record = store.get(spec_key(spec))
            for level in record["result"]["levels"]:
                rows.append(
                    {
                        "net": settings.net,
                        "seed": chain.seed,
                        "criterion": c,
                        "treatment": t,
                        **level,
                        "n_test": record["result"]["n_test"],
                        "dense_test_accuracy": dense_result["test_accuracy"],
                        "dense_iterations": chain.protocol.iterations,
                    }
                )
    return pd.DataFrame(rows)


def learned_supermask_sweep(
    runs: Sequence[LearnedSupermask],
    *,
    store: RunStore | None = None,
    data_root: str | None = None,
    device: str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
    allow_dirty: bool | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Learned supermasks (PAPER.md section 9): train the runs missing from the store as one
    population and return (one row per run, one row per run and epoch of its validation curve).
    """
    store = store or RunStore()
    runs = list(dict.fromkeys(runs))
    missing = [r for r in runs if spec_key(r.spec()) not in store]
    if missing:
        epochs = missing[0].epochs
        hours = len(missing) * epochs * LEARNED_EPOCH_HINT_S / 3600
        log(
            f"{len(runs) - len(missing)} of {len(runs)} learned supermasks found in "
            f"{store.root}; training {len(missing)} for {epochs:,} epochs "
            f"(about {hours:.1f} h on a 2-core CPU)"
        )
        check_clean_tree(store.root, allow_dirty)
        code_identity()  # provenance: the code as loaded, before any training
        data = load_dataset(get_architecture(missing[0].net).dataset, data_root)
        data = dataset_on(data, torch.device(device))
        t0 = time.perf_counter()
        res = train_learned_supermasks(missing, data, device=device, progress=progress)
        wall = time.perf_counter() - t0
        layers = [layer.name for layer in get_architecture(missing[0].net).layers]
        population = [spec_key(run.spec()) for run in missing]
        for i, run in enumerate(missing):
            result = {
                "test_accuracy": float(res.test_accuracy[i]),
                "test_accuracy_samples": [float(v) for v in res.test_accuracy_samples[i]],
                "percent_kept": float(res.percent_kept[i]),
                "expected_percent_kept": float(res.expected_percent_kept[i]),
                "layer_kept": dict(zip(layers, map(float, res.layer_kept[i]), strict=True)),
                "epochs": res.epochs,
                "val_accuracy": [round(float(v), 5) for v in res.val_accuracy[i]],
                "val_loss": [round(float(v), 5) for v in res.val_loss[i]],
                "n_test": res.n_test,
            }
            key = spec_key(run.spec())
            store.put(
                key,
                {
                    "key": key,
                    "spec": run.spec(),
                    "result": result,
                    "provenance": provenance(device, population, wall, data.identity()),
                },
            )
    rows, curve = [], []
    for run in runs:
        res = store.get(spec_key(run.spec()))["result"]
        described = {**asdict(run), "key": spec_key(run.spec())}
        summary = ("test_accuracy", "percent_kept", "expected_percent_kept", "n_test")
        rows.append({**described, **{k: res[k] for k in summary}})
        points = zip(res["epochs"], res["val_accuracy"], res["val_loss"], strict=True)
        for epoch, acc, loss in points:
            curve.append({**described, "epoch": epoch, "val_accuracy": acc, "val_loss": loss})
    return pd.DataFrame(rows), pd.DataFrame(curve)


def learned_supermask_runs(
    settings: Settings, epochs: int | None, profile: str, seeds: Sequence[int] | None = None
) -> list[LearnedSupermask]:
    """Table 1's learned supermasks: each seed x {init, signed constant} x {without, with DWR};
    ``epochs`` None takes the profile's (the official 2,000 if the profile names none)."""
    if epochs is None:
        epochs = PROFILES[profile].supermask_epochs
    if epochs is None:
        epochs = 2000  # 0 stays 0, and LearnedSupermask rejects it
    return [
        LearnedSupermask(settings.net, seed, weights, dwr, epochs=epochs)
        for seed in (settings.seeds if seeds is None else seeds)
        for weights in TREATMENTS
        for dwr in (False, True)
    ]


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
    """Our numbers for one network's Table 1 column (PAPER.md section 9), in percent: the best
    untrained large_final_same_sign supermask per treatment, the learned supermasks (init
    weights, as the official command trains them, then signed constants) without and with
    DWR, and the trained dense baseline; mean, min and max over seeds."""
    best = best_untrained(untrained).set_index(["criterion", "treatment"])
    rows = []
    for treatment, label in (("init", "init weights"), ("signed_constant", "signed constant")):
        b = best.loc[("large_final_same_sign", treatment)]
        rows.append(
            (
                f"large_final_same_sign, {label}",
                b["mean"],
                b["min"],
                b["max"],
                int(b["seeds"]),
                f"best of 25 one-shot levels: {b['percent_remaining']:.3g}% remaining",
            )
        )
    for weights, label in (("init", ""), ("signed_constant", ", signed constant weights")):
        for dwr in (False, True):
            part = learned[
                (learned["weights"] == weights) & (learned["dynamic_weight_rescaling"] == dwr)
            ]
            if part.empty:
                continue
            acc = part["test_accuracy"]
            rows.append(
                (
                    f"learned supermask{' + DWR' if dwr else ''}{label}",
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
            "trained dense baseline",
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


#: Training-set size and official test-set size per dataset (PAPER.md section 3).
SPLIT_SIZES = {"mnist": (55_000, 10_000), "cifar10": (45_000, 10_000)}


def differences_markdown(settings: Settings, frame: pd.DataFrame) -> str:
    """What a page's runs did differently from the paper's protocol, as Markdown bullets:
    profile, seeds, rounds, training length, precision and the test-set size."""
    arch = get_architecture(settings.net)
    paper = PROTOCOLS[settings.net]
    iterations = settings.iterations or paper.iterations
    n_train, n_official_test = SPLIT_SIZES[arch.dataset]
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

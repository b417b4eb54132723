"""The pruning sweep: chains advanced round by round, one population per round (book/spec.md
sections 1 and 4).

:func:`round_step` is the paper's step between two rounds (the mask criterion on the previous
round's weights, then the mask-1 and mask-0 actions). :func:`run_sweep` advances many chains in
lockstep; every round trains all the runs still missing as one population (or several of at most
``max_population``). Finished runs are read back, never retrained; a chain's per-round tensors go
to the state cache and its steps to the committed chain steps (:mod:`lth.chains`), so an
interrupted sweep resumes at the round it stopped, mid-round from a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from . import data as datasets
from .actions import get_mask0_action, get_mask1_action, next_round_start
from .chains import ChainSteps, apply_step, make_step, start_digest
from .costs import dense_equivalent_samples, rate_of, speedups_of
from .criteria import get_criterion, prune_layerwise
from .data import Dataset
from .executors import DaskExecutor, InProcess, distribute, executor, resolve_device
from .nets import Population, get_architecture, initial_weights, percent_remaining
from .nets import seeded_generator as _generator
from .provenance import check_clean_tree, code_identity, provenance
from .report import describe_runs, sweep_frame
from .specs import Chain, Settings, for_data
from .store import Heartbeat, RunStore, StateCache
from .train import (
    CHECKPOINT_EVERY_S,
    Checkpoint,
    DeadlineReached,
    Protocol,
    dataset_on,
    train_population,
)


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
    chains: Sequence[Chain],
    rounds: int,
    store: RunStore,
    cache: StateCache,
    keep_state: bool = False,
) -> SweepPlan:
    """The :class:`SweepPlan` of ``run_sweep(chains, rounds, keep_state=keep_state)`` on the
    official data."""
    plan = _plan(chains, rounds, store, cache, keep_state)
    per_round = [[(c, c.run_key(r)) for c in chains] for r in range(rounds + 1)]
    return SweepPlan(
        runs=[{key for _, key in pairs} for pairs in per_round],
        missing=[{key for _, key in pairs if key not in store} for pairs in per_round],
        to_train=[{key for c, key in pairs if plan[c][r]} for r, pairs in enumerate(per_round)],
    )


def round_step(chain: Chain, round_: int, previous: dict | None, steps: ChainSteps):
    """The round step of book/spec.md section 1: ``chain``'s starting values, the tensor to train
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
    w_i, w_f, mask = previous["w_i"], previous["w_f"], previous["mask"]
    step = steps.load(key)
    if step is not None:
        start = apply_step(chain, round_, w_i, mask, step)
        if start_digest(*start) != step.start_sha256:
            raise ValueError(f"{steps.path(key)} does not give this chain's start ({chain})")
        return start
    rates = [layer.rate for layer in arch.layers]
    criterion = get_criterion(chain.criterion)
    new_mask = prune_layerwise(mask, w_i, w_f, criterion, rates, _generator(key, "prune"))
    mask1, mask0 = get_mask1_action(chain.mask1), get_mask0_action(chain.mask0)
    generator = _generator(key, "mask-1")
    starts, trained = zip(
        *(
            next_round_start(ws, wf, m, mask1, mask0, generator)
            for ws, wf, m in zip(w_i, w_f, new_mask, strict=True)
        ),
        strict=True,
    )
    start = list(starts), list(trained), new_mask
    steps.save(key, make_step(chain, w_i, w_f, mask, new_mask, start))
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
    data: Dataset | None = None,
    executor: InProcess | DaskExecutor | None = None,
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
    tree unless ``allow_dirty`` (see :func:`lth.provenance.check_clean_tree`). ``data``, if
    given, is trained on instead of the network's dataset from ``data_root``.

    With a distributed ``executor`` (:mod:`lth.executors`) the runs are trained as tasks on its
    workers, against ``store`` and ``cache`` (folders every worker sees), and ``device`` "auto"
    is each worker's own CUDA device or CPU."""
    store = store or RunStore()
    cache = cache or StateCache()
    chains = list(dict.fromkeys(chains))
    for what in ("net", "protocol", "precision"):
        values = {getattr(c, what) for c in chains}
        if len(values) > 1:  # one population trains every run of a round
            raise ValueError(f"one {what} per sweep, got {sorted(map(str, values))}")
    if executor is not None and executor.distributed:
        common = dict(data_root=data_root, device=device, deadline=deadline, data=data)
        common.update(max_population=max_population, allow_dirty=allow_dirty)
        common.update(checkpoint_every_s=checkpoint_every_s)
        results = distribute(executor, [(chains, rounds, 0)], store, cache, keep_state, **common)
        log(f"{len(results)} task(s) on {executor.describe()}")
        stopped = [r for r in results if r.stopped]
        if stopped:
            raise DeadlineReached(f"{len(stopped)} of {len(results)} task(s) stopped")

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
    device = resolve_device(device)
    code_identity()  # provenance: the code as loaded, before any training
    if data is None:
        data = datasets.load_dataset(get_architecture(chains[0].net).dataset, data_root)
    tagged = for_data(chains, data)
    if tagged != chains:
        chains = tagged
        plan, n_runs, total = count(chains)
    protocol = chains[0].protocol
    samples = n_runs * protocol.iterations * protocol.batch_size
    rates: dict = {}  # the store's measured rates (lth.costs), as the campaign's plan has them
    rate, _ = rate_of(store, chains[0].net, chains[0].precision, rates)
    todo = [{c.run_key(r) for c in chains if plan[c][r]} for r in range(rounds + 1)]
    speedups = speedups_of(store, chains[0].net, rates)
    hours = dense_equivalent_samples(chains, todo, speedups) / rate / 3600
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
                groups = populations(mine, r, max_population, cache)
                try:
                    with Heartbeat(locks):
                        for group in groups:  # each population's steps, as soon as it is done
                            trained = _train_round(context, dict(group), r, states)
                            _commit_steps(chains, r, trained, store)
                            new_states.update(trained)
                finally:
                    for lock in locks:
                        lock.release()
            members = others
            if members:
                log(f"round {r}: waiting for {len(members)} run(s) another process is training")
                time.sleep(LOCK_POLL_S)
        if r < rounds:
            _commit_cached_steps([c for c in chains if plan[c][r + 1]], r, store, cache)
        states = new_states


def populations(
    members: dict[str, Chain], r: int, size: int | None, cache: StateCache
) -> list[list[tuple[str, Chain]]]:
    """Round ``r``'s runs ``members`` (run key -> chain) as the populations to train, each of
    at most ``size`` runs (``None``: no limit). First, as it was, every population a stopped
    sitting checkpointed (:func:`checkpointed_populations`) whose runs are all here, so that it
    resumes whatever grouping made it; then the others, one sparse plan
    (:meth:`lth.specs.Chain.sparse_plan`) per population, in the order the plans first come.

    One plan per population is a matter of speed, not of results (member independence: a run's
    record does not depend on its companions). A population that mixes dense and sparse members
    trains slower than dense alone: FC, 4 dense and 4 sparse members, 33k model-samples/s in one
    population against 53-59k for the two halves apart, one after the other, at rounds 10-22
    (``benchmarks/sparse.py --members 8 --rounds 10 16 22 --eval full --mixed``; benchmarks/
    NOTES.md, "Mixed populations")."""
    groups, left = [], dict(members)
    for keys in checkpointed_populations(cache):
        if keys and all(key in left for key in keys):
            groups.append([(key, left.pop(key)) for key in keys])
    by_plan: dict[tuple[int, ...], list[tuple[str, Chain]]] = {}
    for key, chain in left.items():
        by_plan.setdefault(chain.sparse_plan(r), []).append((key, chain))
    for runs in by_plan.values():
        step = size or len(runs)
        groups.extend(runs[i : i + step] for i in range(0, len(runs), step))
    return groups


def _commit_steps(chains: Sequence[Chain], r: int, states: dict, store: RunStore) -> None:
    """Save, for every chain whose round ``r`` is in ``states`` (one population just
    trained), the step to its round r+1 (:mod:`lth.chains`), so that the chain can go on from
    committed files even if the sweep stops here and the cache is lost."""
    steps = chain_steps(store)
    for chain in chains:
        state = states.get(chain.run_key(r))
        if state is not None and chain.run_key(r + 1) not in steps:
            round_step(chain, r + 1, state, steps)


def _commit_cached_steps(chains: Sequence[Chain], r: int, store: RunStore, cache: StateCache):
    """Save the missing steps to round r+1 of ``chains`` whose round ``r`` is recorded and
    cached: runs an earlier sitting finished without committing their step (before steps were
    committed per population) go on from committed files too."""
    steps = chain_steps(store)
    for chain in chains:
        key = chain.run_key(r)
        if chain.run_key(r + 1) not in steps and key in store and key in cache:
            round_step(chain, r + 1, cache.load(key), steps)


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
    checkpoint = population_checkpoint(
        cache, list(members), context.checkpoint_every_s, context.deadline
    )
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
    wall = checkpoint.elapsed_s()  # every sitting's training, if it was resumed
    checkpoint.path.with_suffix(".json").unlink(missing_ok=True)  # its members file
    new_states = {}
    for i, (key, chain) in enumerate(members.items()):
        state = {
            "w_i": [w.cpu() for w in starts[i][0]],
            "w_f": [w[i].cpu() for w in result.final_weights],
            "mask": [m[i].cpu() for m in pop.masks],
        }
        cache.save(key, state)
        new_states[key] = state
        if key not in store:
            record = _record(chain, r, i, result, pop, wall, device, list(members), data)
            record["result"]["state_sha256"] = state_digest(state)
            store.put(key, record)
    return new_states


def population_checkpoint(
    cache: StateCache, members: list[str], every_s: float, deadline: float | None
) -> Checkpoint:
    """The :class:`lth.train.Checkpoint` of a population of the record keys ``members``, in the
    cache's ``checkpoints/`` folder, with the members beside it (for :func:`clean_checkpoints`;
    the caller removes that file, ``path.with_suffix(".json")``, once they are recorded)."""
    fingerprint = hashlib.sha256(",".join(members).encode()).hexdigest()[:16]
    folder = cache.root / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{fingerprint}.json").write_text(json.dumps(members))
    return Checkpoint(folder / f"{fingerprint}.pt", fingerprint, every_s, deadline)


def _members_files(cache: StateCache) -> list[tuple[Path, list[str]]]:
    """Every checkpoint's members file in the cache with the record keys it lists, in the
    order of their fingerprints (no keys where the file is damaged)."""
    found = []
    for members_file in sorted((cache.root / "checkpoints").glob("*.json")):
        try:
            members = json.loads(members_file.read_text())
        except ValueError:
            members = []
        if not (isinstance(members, list) and all(isinstance(key, str) for key in members)):
            members = []
        found.append((members_file, members))
    return found


def checkpointed_populations(cache: StateCache) -> list[list[str]]:
    """The record keys of every population with a checkpoint in the cache to resume from (a
    members file beside a saved ``.pt``), in the order of their fingerprints."""
    return [
        members
        for members_file, members in _members_files(cache)
        if members and members_file.with_suffix(".pt").exists()
    ]


def clean_checkpoints(cache: StateCache, store: RunStore) -> None:
    """Remove checkpoints of populations whose every member is recorded: left when a resumed
    sweep grouped its runs otherwise (member independence makes any grouping give the same
    records)."""
    for members_file, members in _members_files(cache):
        if all(key in store for key in members):
            members_file.with_suffix(".pt").unlink(missing_ok=True)
            members_file.unlink(missing_ok=True)


def state_digest(state: dict[str, list[torch.Tensor]]) -> str:
    """SHA-256 of a run's start values, final weights and mask, in that order: a record's
    fingerprint of the tensors its chain goes on from (``verify`` checks a cache against it)."""
    digest = hashlib.sha256()
    for name in ("w_i", "w_f", "mask"):
        for tensor in state[name]:
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def page_sweep(
    settings: Settings,
    store: RunStore,
    csv: Path,
    *,
    scheduler: str | None = None,
    local_workers: int = 0,
) -> tuple[pd.DataFrame, str]:
    """A pruning page's runs: found in ``store``, or trained where it lacks them (in process,
    or on a Dask cluster: :func:`lth.executors.executor`); their frame, also written to
    ``csv``, and what made them (:func:`lth.report.describe_runs`)."""
    with executor(scheduler, local_workers) as ex:
        frame = run_sweep(settings.chains(), settings.rounds, store=store, executor=ex)
    csv.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(csv, index=False)
    return frame, describe_runs(frame, store)

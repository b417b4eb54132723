"""The supermask sweeps: untrained supermasks of the dense runs (book/spec.md section 8, Figure 7)
and learned supermasks (section 9, Table 1), each result one record in the run store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict

import pandas as pd
import torch

from . import data as datasets
from .criteria import CRITERIA, get_criterion
from .data import Dataset
from .nets import get_architecture, percent_remaining
from .nets import seeded_generator as _generator
from .provenance import check_clean_tree, code_identity, provenance
from .pruning import population_checkpoint, run_sweep
from .specs import (
    CONV_SEEDS,
    LEARNED_EPOCH_HINT_S,
    Chain,
    Settings,
    for_data,
    resolve_settings,
)
from .store import RunStore, StateCache, spec_key
from .supermask import (
    CONV_LEARNED_EPOCHS,
    CONV_LEARNED_LR,
    TREATMENTS,
    LearnedSupermask,
    figure7_levels,
    get_treatment,
    one_shot_masks,
    train_learned_supermasks,
    treated_weights,
    untrained_supermask_accuracy,
)
from .train import CHECKPOINT_EVERY_S, DeadlineReached, dataset_on


def dense_chains(settings: Settings) -> list[Chain]:
    """The dense run of every seed of ``settings`` (round 0 of its chains), as chains."""
    s = settings
    return [Chain(s.net, seed, iterations=s.iterations, precision=s.precision) for seed in s.seeds]


def untrained_specs(
    settings: Settings,
    dense: Chain,
    treatments: Sequence[str] = tuple(TREATMENTS),
    levels: Sequence[int] | None = None,
) -> dict[tuple[str, str], dict]:
    """The spec of the untrained-supermask record of ``dense`` for each (criterion, treatment)
    of ``settings``' criteria and ``treatments``, at ``levels`` (None: each criterion's
    :func:`lth.supermask.figure7_levels`)."""
    return {
        (c, t): {
            "kind": "untrained_supermask",
            "dense": dense.run_key(0),
            "criterion": c,
            "treatment": t,
            "levels": list(figure7_levels(settings.net, c) if levels is None else levels),
        }
        for c in settings.criteria
        for t in treatments
    }


def untrained_supermask_sweep(
    settings: Settings,
    treatments: Sequence[str] = tuple(TREATMENTS),
    levels: Sequence[int] | None = None,
    *,
    store: RunStore | None = None,
    cache: StateCache | None = None,
    data_root: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    allow_dirty: bool | None = None,
    data: Dataset | None = None,
    deadline: float | None = None,
) -> pd.DataFrame:
    """Untrained supermasks (book/spec.md section 8, Figure 7) of the dense run of every seed in
    ``settings``, for each of its criteria and ``treatments`` at every one-shot level
    (``levels``; None: each criterion's :func:`lth.supermask.figure7_levels`).

    The dense runs come from the store and the state cache (trained if missing). One record per
    (dense run, criterion, treatment) holds the accuracy at every level; missing ones are
    computed one dense run and one criterion at a time (its treatments' masked networks as one
    population) and recorded as they come. With a ``deadline`` (a ``time.time()`` value), a
    criterion that the time left would not fit, at the last one's pace, is not begun, and a
    dense run trained again (its tensors lost) stops at it, checkpointed:
    :class:`lth.train.DeadlineReached`. ``data``, if given, is used instead of the network's
    dataset from ``data_root``.
    """
    store = store or RunStore()
    cache = cache or StateCache()
    for name in treatments:
        get_treatment(name)
    given_levels = None if levels is None else [int(k) for k in levels]
    dense = dense_chains(settings)

    def specs_of(chain: Chain) -> dict[tuple[str, str], dict]:
        return untrained_specs(settings, chain, treatments, given_levels)

    def incomplete() -> list[Chain]:
        return [c for c in dense if any(spec_key(s) not in store for s in specs_of(c).values())]

    arch = get_architecture(settings.net)
    given, data, rows, pace = data, None, [], 0.0
    if incomplete() or any(c.run_key(0) not in store for c in dense):
        check_clean_tree(store.root, allow_dirty)
        data = given if given is not None else datasets.load_dataset(arch.dataset, data_root)
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
                data=data,
                deadline=deadline,  # a dense run trained again stops there too, checkpointed
            )
    for chain in dense:
        dense_key = chain.run_key(0)
        specs = specs_of(chain)
        missing = [ct for ct, spec in specs.items() if spec_key(spec) not in store]
        state = cache.load(dense_key) if missing else None
        for criterion in dict.fromkeys(c for c, _ in missing):
            if deadline is not None and time.time() + pace >= deadline:
                raise DeadlineReached(
                    f"untrained supermasks of {dense_key}: stopped before {criterion}"
                )
            group = [(c, t) for c, t in missing if c == criterion]
            t0 = time.perf_counter()
            _evaluate_untrained(arch, state, dense_key, criterion, group, specs, data, store)
            pace = time.perf_counter() - t0
        rows += _untrained_rows(settings.net, chain, specs, store, strict=True)
    return pd.DataFrame(rows)


def _untrained_rows(
    net: str, chain: Chain, specs: dict, store: RunStore, strict: bool = False
) -> list[dict]:
    """One row per level of each untrained-supermask record of ``specs`` (by (criterion,
    treatment)) of the dense run ``chain`` that ``store`` holds; a missing record (or dense
    record) is skipped, or with ``strict`` a KeyError."""
    dense = store.get(chain.run_key(0))
    rows = []
    for (c, t), spec in specs.items():
        record = store.get(spec_key(spec))
        if record is None or dense is None:
            if strict:
                missing = spec_key(spec) if dense is not None else chain.run_key(0)
                raise KeyError(f"record {missing} of {chain} is not in the store")
            continue
        for level in record["result"]["levels"]:
            rows.append(
                {
                    "net": net,
                    "seed": chain.seed,
                    "criterion": c,
                    "treatment": t,
                    **level,
                    "n_test": record["result"]["n_test"],
                    "dense_test_accuracy": dense["result"]["test_accuracy"],
                    "dense_iterations": chain.protocol.iterations,
                }
            )
    return rows


def figure7_so_far(net: str, store: RunStore) -> tuple[pd.DataFrame, int, int]:
    """What exists of ``net``'s Figure 7 at :func:`table1_runs`' settings (the campaign's
    ``<net>-supermask-untrained``), read from ``store`` (nothing is trained or evaluated): the
    rows of :func:`untrained_supermask_sweep` for the records present, with how many records
    there are and how many are wanted."""
    settings, _ = table1_runs(net)
    rows, present, wanted = [], 0, 0
    for chain in dense_chains(settings):
        specs = untrained_specs(settings, chain)
        if chain.run_key(0) in store:  # records drawn: those whose dense record is there too
            present += sum(spec_key(spec) in store for spec in specs.values())
        wanted += len(specs)
        rows += _untrained_rows(net, chain, specs, store)
    return pd.DataFrame(rows), present, wanted


def _evaluate_untrained(arch, state, dense_key, criterion, group, specs, data, store) -> None:
    """Evaluate the records ``group`` ((criterion, treatment) pairs of one criterion) of the dense
    run ``dense_key`` (its cached ``state``) as one population, and put them in ``store``."""
    t0 = time.perf_counter()
    w_i, w_f = state["w_i"], state["w_f"]
    levels = specs[group[0]]["levels"]
    generator = _generator(dense_key, criterion, "supermask")
    masks = one_shot_masks(arch, w_i, w_f, get_criterion(criterion), levels, generator)
    weights = {t: treated_weights(w_i, t) for _, t in group}
    members = [(t, j) for _, t in group for j in range(len(levels))]
    acc = untrained_supermask_accuracy(
        arch, [weights[t] for t, _ in members], [masks[j] for _, j in members], data.test
    )
    wall = time.perf_counter() - t0
    population = [spec_key(specs[ct]) for ct in group]
    for i, ct in enumerate(group):
        spec = specs[ct]
        result = [
            {
                "k": k,
                "percent_remaining": percent_remaining(arch, masks[j]),
                "test_accuracy": float(acc[i * len(levels) + j]),
            }
            for j, k in enumerate(levels)
        ]
        record = {
            "key": spec_key(spec),
            "spec": spec,
            "result": {"levels": result, "n_test": len(data.test)},
            "provenance": provenance("cpu", population, wall, data.identity()),
        }
        store.put(spec_key(spec), record)


def learned_supermask_sweep(
    runs: Sequence[LearnedSupermask],
    *,
    store: RunStore | None = None,
    data_root: str | None = None,
    device: str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
    allow_dirty: bool | None = None,
    data: Dataset | None = None,
    cache: StateCache | None = None,
    deadline: float | None = None,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Learned supermasks (book/spec.md section 9): train the runs missing from the store as one
    population and return (one row per run, one row per run and epoch of its validation curve).
    ``data``, if given, is used instead of the network's dataset from ``data_root``.

    The population is checkpointed in the state cache at the end of an epoch every
    ``checkpoint_every_s`` seconds, and at the first epoch's end after ``deadline`` (a
    ``time.time()`` value), where it stops with :class:`lth.train.DeadlineReached`; the next
    call resumes it.
    """
    store = store or RunStore()
    cache = cache or StateCache()
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
        if data is None:
            data = datasets.load_dataset(get_architecture(missing[0].net).dataset, data_root)
        data = dataset_on(data, torch.device(device))
        population = [spec_key(run.spec()) for run in missing]
        checkpoint = population_checkpoint(cache, population, checkpoint_every_s, deadline)
        res = train_learned_supermasks(
            missing, data, device=device, progress=progress, checkpoint=checkpoint
        )
        wall = checkpoint.elapsed_s()  # every sitting's training, if it was resumed
        checkpoint.path.with_suffix(".json").unlink(missing_ok=True)  # its members file
        layers = [layer.name for layer in get_architecture(missing[0].net).layers]
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
    settings: Settings, epochs: int | None = None, seeds: Sequence[int] | None = None
) -> list[LearnedSupermask]:
    """Table 1's learned supermasks: each seed x {init, signed constant} x {without, with DWR};
    ``epochs`` None takes the settings' (their profile's; 0 stays 0, and LearnedSupermask
    rejects it)."""
    epochs = settings.supermask_epochs if epochs is None else epochs
    return [
        LearnedSupermask(settings.net, seed, weights, dwr, epochs=epochs)
        for seed in (settings.seeds if seeds is None else seeds)
        for weights in TREATMENTS
        for dwr in (False, True)
    ]


def table1_runs(net: str, fc_profile: str = "supermask") -> tuple[Settings, list[LearnedSupermask]]:
    """Table 1's runs on ``net`` (book/spec.md sections 8 and 9): the settings of its untrained
    supermasks (every criterion, for Figure 7 too) and its learned supermasks. FC: the
    supermask page's profile ``fc_profile``, learned on its first three seeds in both
    treatments; the conv nets: the campaign's, dense runs of :data:`lth.specs.CONV_SEEDS` at the
    paper's length and learned supermasks at our setting (:data:`lth.supermask.CONV_LEARNED_LR`,
    :data:`lth.supermask.CONV_LEARNED_EPOCHS`) on the initial weights, as the paper's rows."""
    if net == "fc":
        settings = resolve_settings(fc_profile, net, list(CRITERIA), None, 0)
        return settings, learned_supermask_runs(settings, None, settings.seeds[:3])
    settings = resolve_settings("paper", net, list(CRITERIA), list(CONV_SEEDS), 0)
    runs = [
        LearnedSupermask(net, seed, "init", dwr, lr=CONV_LEARNED_LR, epochs=CONV_LEARNED_EPOCHS)
        for seed in CONV_SEEDS
        for dwr in (False, True)
    ]
    return settings, runs


def table1_frames(
    net: str, store: RunStore, fc_profile: str = "supermask"
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The (untrained, learned) frames of :func:`table1_runs` read from ``store``, or None while
    any of their records is missing: nothing is trained or evaluated here."""
    settings, runs = table1_runs(net, fc_profile)
    dense = dense_chains(settings)
    keys = [c.run_key(0) for c in dense] + [spec_key(r.spec()) for r in runs]
    keys += [spec_key(s) for c in dense for s in untrained_specs(settings, c).values()]
    if any(key not in store for key in keys):
        return None
    quiet = dict(store=store, progress=False, log=lambda message: None)
    untrained = untrained_supermask_sweep(settings, **quiet)
    learned, _ = learned_supermask_sweep(runs, **quiet)
    return untrained, learned

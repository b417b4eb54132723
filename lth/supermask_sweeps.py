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
from .criteria import get_criterion
from .data import Dataset
from .nets import get_architecture, percent_remaining
from .nets import seeded_generator as _generator
from .provenance import check_clean_tree, code_identity, provenance
from .pruning import run_sweep
from .specs import (
    LEARNED_EPOCH_HINT_S,
    Chain,
    Settings,
    for_data,
)
from .store import RunStore, StateCache, spec_key
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
    dataset_on,
)


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
    data: Dataset | None = None,
) -> pd.DataFrame:
    """Untrained supermasks (book/spec.md section 8, Figure 7) of the dense run of every seed in
    ``settings``, for each of its criteria and ``treatments`` at every one-shot level.

    The dense runs come from the store and the state cache (trained if missing). One record per
    (dense run, criterion, treatment) holds the accuracy at every level; missing ones are
    computed one dense run at a time, all their masked networks as one population. ``data``,
    if given, is used instead of the network's dataset from ``data_root``.
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
    given, data, rows = data, None, []
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
            )
    for chain in dense:
        dense_key = chain.run_key(0)
        specs = specs_of(chain)
        missing = [ct for ct, spec in specs.items() if spec_key(spec) not in store]
        if missing:
            t0 = time.perf_counter()
            state = cache.load(dense_key)
            w_i, w_f = state["w_i"], state["w_f"]
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
    data: Dataset | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Learned supermasks (book/spec.md section 9): train the runs missing from the store as one
    population and return (one row per run, one row per run and epoch of its validation curve).
    ``data``, if given, is used instead of the network's dataset from ``data_root``.
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
        if data is None:
            data = datasets.load_dataset(get_architecture(missing[0].net).dataset, data_root)
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

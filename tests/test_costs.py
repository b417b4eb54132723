"""The campaign's costs (lth/costs.py): the dense rate and the sparse rounds' speed-up measured
from the store's records, and the estimate that follows from them."""

from __future__ import annotations

import pytest
import torch

from lth.costs import (
    SparseSpeedups,
    dense_equivalent_samples,
    measured_rate,
    measured_speedups,
    run_samples,
)
from lth.nets import get_architecture
from lth.protocol import Protocol
from lth.sparse import estimated_speedup
from lth.specs import resolve_settings
from lth.store import RunStore

PAPER = Protocol(50_380, 60, eval_every=100)
FC_LINEAR = ["fc1", "fc2", "fc3"]


def record(round_: int, wall_s: float, sparse: bool, seed: int, threads: int | None = None) -> dict:
    """A pruning run's record as the engine writes it, with only what the costs read (made at
    this process's thread count unless ``threads`` says otherwise)."""
    spec = dict(net="fc", round=round_, seed=seed, precision="fp32", iterations=50_380)
    spec.update(batch_size=60, eval_every=100, **({"sparse": ["fc1", "fc2"]} if sparse else {}))
    made = dict(population=["a"] * 8, population_size=8, population_wall_time_s=wall_s)
    made["threads"] = torch.get_num_threads() if threads is None else threads
    return {"spec": spec, "provenance": made}


def test_sparse_rounds_cost_what_their_records_measured(tmp_path):
    store = RunStore(tmp_path)
    per_run = run_samples("fc", PAPER)
    dense_wall = 8 * per_run / 80_000.0  # a population of 8 at 80k model-samples/s
    walls = {(4, False): [dense_wall] * 3, (9, True): [dense_wall / 1.1] * 2}
    walls[13, True] = [dense_wall / 1.5, dense_wall / 1.8, dense_wall / 1.6]  # median 1.6x
    for (round_, sparse), values in walls.items():
        for seed, wall in enumerate(values):
            store.put(f"r{round_}s{seed}", record(round_, wall, sparse, seed))
    speedups = measured_speedups(store, "fc", 80_000.0)
    assert speedups.measured == pytest.approx({9: 1.1, 13: 1.6})
    fc = get_architecture("fc")
    benchmark = {r: estimated_speedup(fc, r, FC_LINEAR) for r in (9, 13, 20)}
    ratios = sorted([1.1 / benchmark[9], 1.6 / benchmark[13]])
    assert speedups.scale == pytest.approx(sum(ratios) / 2)  # the median of two
    assert speedups.of(fc, 13, ["fc1", "fc2"]) == pytest.approx(1.6)
    assert speedups.of(fc, 20, ["fc1", "fc2"]) == pytest.approx(benchmark[20] * speedups.scale)
    assert speedups.of(fc, 20, []) == 1.0  # a dense round (another mask-0 action) is dense
    assert "rounds 9-13 at their records' speed-up (1.10-1.60x)" in speedups.describe()

    # the estimate divides each sparse round's work by its speed-up
    chains = resolve_settings("paper", "fc", ["large_final"], [0], 13).chains()
    keys = [set()] * 13 + [{chains[0].run_key(13)}]
    assert chains[0].sparse_layers(13) == ("fc1", "fc2")
    assert dense_equivalent_samples(chains, keys, speedups) == pytest.approx(per_run / 1.6)
    assert dense_equivalent_samples(chains, keys) == pytest.approx(per_run / benchmark[13])


def test_without_sparse_records_the_benchmark_speed_up_stands(tmp_path):
    store = RunStore(tmp_path)
    store.put("dense", record(4, 300.0, False, 0))
    assert measured_speedups(store, "fc", 80_000.0) == SparseSpeedups()
    assert "benchmark's speed-up" in SparseSpeedups().describe()


def test_the_rate_counts_only_records_made_at_this_thread_count(tmp_path):
    store = RunStore(tmp_path)
    per_run = run_samples("fc", PAPER)
    threads = torch.get_num_threads()
    store.put("here", record(4, 8 * per_run / 80_000.0, False, 0))
    store.put("other", record(4, 8 * per_run / 20_000.0, False, 1, threads=threads + 1))
    rate, source = measured_rate(store, "fc")
    assert rate == pytest.approx(80_000.0)
    assert source == f"measured, median of 1 record at {threads} thread" + "s" * (threads != 1)
    elsewhere = RunStore(tmp_path / "elsewhere")
    elsewhere.put("other", record(4, 8 * per_run / 20_000.0, False, 1, threads=threads + 1))
    assert measured_rate(elsewhere, "fc") == (50_000.0, "development CPU's hint")  # none here
    assert measured_rate(store, "conv2", "bf16")[0] == pytest.approx(740 * 1.56)


def test_a_memo_reads_the_records_once(tmp_path):
    store = RunStore(tmp_path)
    per_run = run_samples("fc", PAPER)
    store.put("dense", record(4, 8 * per_run / 80_000.0, False, 0))
    store.put("sparse", record(13, 8 * per_run / 120_000.0, True, 0))
    memo: dict = {}
    assert measured_rate(store, "fc", memo=memo)[0] == pytest.approx(80_000.0)
    store.put("later", record(4, 8 * per_run / 10_000.0, False, 1))  # not read again
    assert measured_speedups(store, "fc", 80_000.0, memo).measured == pytest.approx({13: 1.5})
    assert measured_rate(store, "fc", memo=memo)[0] == pytest.approx(80_000.0)
    assert measured_rate(store, "fc")[0] == pytest.approx(45_000.0)  # without: read afresh

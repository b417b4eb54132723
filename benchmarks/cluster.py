"""One small sweep in process against the same sweep on a Dask LocalCluster (issue "Beyond one
machine"), side by side, and the overhead of one task on the cluster.

    python benchmarks/cluster.py                      # 2 workers, 4 chains, 2 rounds, 2,000 its
    python benchmarks/cluster.py --workers 2 --iterations 5000 --tasks 20

Both runs train the same chains from an empty store on the dataset under $LTH_DATA (the
in-process run with every core's torch threads, each single-threaded worker with one), and
their records are compared. The overhead per task is the median round trip of a task whose
runs are all recorded already: shipping it, scheduling it, and the worker's look in the store.
Pause other work on the machine first (a campaign: ``kill -STOP``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lth.data import clear_cache, load_dataset
from lth.executors import SweepTask, distribute, executor
from lth.pruning import run_sweep
from lth.specs import Chain
from lth.store import RunStore, StateCache


def results(root: Path) -> dict:
    out = {}
    for path in sorted((root / "runs").glob("*.json")):
        record = json.loads(path.read_text())
        out[path.stem] = {k: record[k] for k in ("key", "spec", "result")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=20, help="no-op tasks timed for overhead")
    args = parser.parse_args()
    chains = [
        Chain("fc", seed, criterion, iterations=args.iterations)
        for seed in (0, 1)
        for criterion in ("large_final", "random")
    ]
    quiet = dict(progress=False, log=lambda message: None)
    t0 = time.perf_counter()
    load_dataset("mnist")
    print(f"loading MNIST (once per process, in both walls): {time.perf_counter() - t0:.1f} s")
    clear_cache()
    with tempfile.TemporaryDirectory() as tmp:
        roots = {name: Path(tmp) / name for name in ("in-process", "cluster")}
        folders = {
            name: dict(store=RunStore(root / "runs"), cache=StateCache(root / "cache"))
            for name, root in roots.items()
        }
        t0 = time.perf_counter()
        run_sweep(chains, args.rounds, **folders["in-process"], **quiet)
        in_process = time.perf_counter() - t0

        t0 = time.perf_counter()
        with executor(local_workers=args.workers) as ex:
            start_up = time.perf_counter() - t0
            store, cache = folders["cluster"]["store"], folders["cluster"]["cache"]
            t0 = time.perf_counter()
            tasks = distribute(ex, [(chains, args.rounds, 0)], store, cache)
            on_cluster = time.perf_counter() - t0
            nothing_to_do = SweepTask((chains[0],), args.rounds, str(store.root), str(cache.root))
            trips = []
            for _ in range(args.tasks):
                t0 = time.perf_counter()
                ex.map([nothing_to_do], [0])
                trips.append(time.perf_counter() - t0)
        n_runs = len(results(roots["in-process"]))
        same = results(roots["in-process"]) == results(roots["cluster"])

    print(
        f"FC sweep: {len(chains)} chains x {args.rounds + 1} rounds ({n_runs} runs), "
        f"{args.iterations:,} iterations; torch threads in process {torch.get_num_threads()}"
    )
    print(f"{'':28s} {'wall s':>8s} {'runs/min':>9s}")
    print(f"{'in process':28s} {in_process:8.1f} {n_runs / in_process * 60:9.2f}")
    label = f"LocalCluster, {args.workers} workers"
    print(f"{label:28s} {on_cluster:8.1f} {n_runs / on_cluster * 60:9.2f}")
    print(f"cluster start-up: {start_up:.1f} s (not in its wall time)")
    for task in tasks:
        print(f"  task of {task.task.describe()} on {task.worker}: {task.seconds:.1f} s")
    print(
        f"overhead per task (median of {args.tasks} no-op round trips): "
        f"{statistics.median(trips) * 1000:.0f} ms (min {min(trips) * 1000:.0f} ms)"
    )
    print(f"records equal bit for bit: {same}")


if __name__ == "__main__":
    main()

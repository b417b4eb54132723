"""Where sweeps and the campaign run: in this process, or as tasks on a Dask cluster (issue
"Beyond one machine"; DESIGN.md, "Runs, results and caching").

A task is a set of chains trained through all their rounds by :func:`lth.pruning.run_sweep` on
the worker, against the same run store and state cache (a folder every worker sees). The
rounds of one chain stay in one task, in order; chains that share a run still to train are
kept in one task, so no two tasks wait on each other's locks. Which chains go together is free
to choose otherwise: member independence makes a record the same whatever population trained
it (tested bit for bit against the in-process run).

A worker that dies loses only its task's progress since its last checkpoint: Dask gives the
task to another worker, which finds the dead worker's locks stale (its process is gone) and
resumes the population from the checkpoint in the shared cache.

The core library imports no Dask: :class:`DaskExecutor` imports it when made, and says how to
install it (``pip install -e ".[cluster]"``) when it is missing.

    with executor(local_workers=2) as ex:            # a LocalCluster of 2 processes
        run_sweep(chains, 16, executor=ex)
    with executor(scheduler="tcp://10.0.0.1:8786") as ex:  # a running scheduler
        run_campaign(TARGETS, deadline, executor=ex)
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from .data import Dataset
from .specs import Chain
from .store import RunStore, StateCache
from .train import CHECKPOINT_EVERY_S, DeadlineReached

#: What to install for the cluster executors.
CLUSTER_EXTRA = 'pip install -e ".[cluster]"'


@dataclass(frozen=True)
class SweepTask:
    """One unit of work: ``run_sweep(chains, rounds)`` on the store and cache at these paths.
    ``device`` "auto" is the worker's CUDA device where it has one, else its CPU; ``threads``,
    if given, is the worker's torch thread count (a Dask nanny starts workers with one)."""

    chains: tuple[Chain, ...]
    rounds: int
    runs: str
    cache: str
    data_root: str | None = None
    device: str = "cpu"
    deadline: float | None = None
    max_population: int | None = None
    allow_dirty: bool | None = None
    threads: int | None = None
    keep_state: bool = False
    checkpoint_every_s: float = CHECKPOINT_EVERY_S
    data: Dataset | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        return f"{len(self.chains)} chain(s), rounds 0-{self.rounds}"


@dataclass(frozen=True)
class TaskResult:
    """What a task did: its runs recorded (by any process), and whether a deadline stopped it."""

    task: SweepTask
    stopped: bool
    seconds: float
    worker: str


def run_task(task: SweepTask) -> TaskResult:
    """Train ``task`` here (on a worker, or in process). A deadline that stops it is a result,
    not an error: the population in training is checkpointed for the next sitting."""
    from .pruning import run_sweep  # run_sweep hands tasks to executors

    t0 = time.time()
    worker = f"{os.uname().nodename}:{os.getpid()}"
    if task.deadline is not None and t0 >= task.deadline:
        return TaskResult(task, True, 0.0, worker)
    if task.threads:
        import torch

        torch.set_num_threads(task.threads)
    try:
        run_sweep(
            list(task.chains),
            task.rounds,
            store=RunStore(task.runs),
            cache=StateCache(task.cache),
            data_root=task.data_root,
            device=task.device,
            progress=False,
            log=lambda message: None,
            allow_dirty=task.allow_dirty,
            max_population=task.max_population,
            deadline=task.deadline,
            keep_state=task.keep_state,
            data=task.data,
            checkpoint_every_s=task.checkpoint_every_s,
        )
    except DeadlineReached:
        return TaskResult(task, True, time.time() - t0, worker)
    return TaskResult(task, False, time.time() - t0, worker)


def resolve_device(device: str) -> str:
    """``device``, with "auto" as this machine's CUDA device where it has one, else "cpu"; an
    error for "cuda" on a machine without one."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda': this machine has no CUDA device; accepted: cpu, auto")
    return device


class InProcess:
    """Every task in this process, one after the other, in priority order (the default)."""

    workers = 1
    distributed = False

    def map(self, tasks: Sequence[SweepTask], priorities: Sequence[int]) -> list[TaskResult]:
        order = sorted(range(len(tasks)), key=lambda i: -priorities[i])
        results = {i: run_task(tasks[i]) for i in order}
        return [results[i] for i in range(len(tasks))]

    def describe(self) -> str:
        return "in process"


class DaskExecutor:
    """Tasks on a Dask cluster through ``client`` (a ``distributed.Client``). Higher priority
    runs first; a task whose worker dies is given to another (Dask's ``allowed-failures``)."""

    distributed = True

    def __init__(self, client):
        self.client = client

    @property
    def workers(self) -> int:
        """Worker threads of the cluster now (at least 1): how many tasks run at once."""
        return max(1, sum(self.client.nthreads().values()))

    def map(self, tasks: Sequence[SweepTask], priorities: Sequence[int]) -> list[TaskResult]:
        futures = [
            self.client.submit(run_task, task, priority=p, pure=False)
            for task, p in zip(tasks, priorities, strict=True)
        ]
        return self.client.gather(futures)

    def describe(self) -> str:
        return f"Dask scheduler {self.client.scheduler.address} ({self.workers} worker threads)"


def _distributed():
    try:
        import distributed
    except ImportError as missing:
        raise ImportError(
            f"the cluster executors need Dask distributed: {CLUSTER_EXTRA}"
        ) from missing
    return distributed


@contextlib.contextmanager
def executor(
    scheduler: str | None = None, local_workers: int = 0
) -> Iterator[InProcess | DaskExecutor]:
    """The executor for ``--scheduler ADDRESS`` (a running Dask scheduler), ``--local-workers
    N`` (a LocalCluster of N single-threaded worker processes on 127.0.0.1, closed at the end),
    or neither (in process). Both at once is an error."""
    if scheduler and local_workers:
        raise ValueError("give a scheduler address or a number of local workers, not both")
    if isinstance(local_workers, bool) or not isinstance(local_workers, int) or local_workers < 0:
        raise ValueError(f"local workers: expected a whole number >= 0, got {local_workers!r}")
    if not scheduler and not local_workers:
        yield InProcess()
        return
    distributed = _distributed()
    if scheduler:
        with distributed.Client(scheduler) as client:
            yield DaskExecutor(client)
        return
    with (
        distributed.LocalCluster(
            n_workers=local_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # its HTTP server: any port
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield DaskExecutor(client)


def split_tasks(
    chains: Sequence[Chain], to_train: Sequence[set[str]], n_tasks: int
) -> list[list[Chain]]:
    """``chains`` in at most ``n_tasks`` groups of about equal work (runs to train), chains
    that share a run to train (``to_train[r]`` holds round r's keys) always in one group, each
    group in the order of ``chains``; chains with nothing to train are left out."""
    parent = list(range(len(chains)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    work = [0] * len(chains)
    for i, chain in enumerate(chains):
        for r, keys in enumerate(to_train):
            key = chain.run_key(r)
            if key in keys:
                work[i] += 1
                if key in owner:
                    parent[root(i)] = root(owner[key])
                else:
                    owner[key] = i
    components: dict[int, list[int]] = {}
    for i in range(len(chains)):
        if work[i]:
            components.setdefault(root(i), []).append(i)
    bins: list[list[int]] = [[] for _ in range(max(1, min(n_tasks, len(components))))]
    load = [0] * len(bins)
    for members in sorted(components.values(), key=lambda m: -sum(work[i] for i in m)):
        smallest = load.index(min(load))  # largest component first into the lightest bin
        bins[smallest] += members
        load[smallest] += sum(work[i] for i in members)
    return [[chains[i] for i in sorted(b)] for b in bins if b]


def distribute(
    executor: InProcess | DaskExecutor,
    sweeps: Sequence[tuple[Sequence[Chain], int, int]],
    store: RunStore,
    cache: StateCache,
    keep_state: bool = False,
    **common,
) -> list[TaskResult]:
    """Train ``sweeps`` (chains, rounds, priority) as tasks on ``executor``, about one per
    worker thread for each sweep; a chain already in an earlier sweep with as many rounds is
    left to that one. ``common`` holds the :class:`SweepTask` fields they share."""
    from .pruning import sweep_plan
    from .specs import for_data

    data = common.get("data")
    seen: dict[Chain, int] = {}
    tasks, priorities = [], []
    for chains, rounds, priority in sweeps:
        chains = [c for c in dict.fromkeys(chains) if seen.get(c, -1) < rounds]
        seen.update((c, rounds) for c in chains)
        if data is not None:  # the keys of the data the tasks train on
            chains = for_data(chains, data)
        plan = sweep_plan(chains, rounds, store, cache, keep_state)
        for group in split_tasks(chains, plan.to_train, executor.workers):
            folders = str(store.root), str(cache.root)
            tasks.append(SweepTask(tuple(group), rounds, *folders, keep_state=keep_state, **common))
            priorities.append(priority)
    return executor.map(tasks, priorities) if tasks else []

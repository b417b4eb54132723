"""Sweeps and the campaign on a Dask cluster (issue "Beyond one machine"): records equal to the
in-process run bit for bit, a killed worker loses nothing finished, two clients share a store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import TINY
from test_campaign import SMALL
from test_many_writers import results

from lth.__main__ import main
from lth.campaign import run_campaign
from lth.executors import InProcess, executor, split_tasks
from lth.pruning import run_sweep
from lth.specs import Chain
from lth.store import RunStore, StateCache

CHAINS = [Chain("fc", s, c, iterations=300) for s in (0, 1) for c in ("large_final", "random")]
ROUNDS = 2
QUIET = dict(progress=False, log=lambda message: None, data=TINY)


def folders(root: Path) -> dict:
    return dict(store=RunStore(root / "runs"), cache=StateCache(root / "cache"))


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of two single-threaded worker processes, for the whole module."""
    with executor(local_workers=2) as ex:
        yield ex


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    """The records of CHAINS and of the SMALL campaign, made in this process."""
    root = tmp_path_factory.mktemp("in-process")
    run_sweep(CHAINS, ROUNDS, **folders(root / "sweep"), **QUIET)
    run_campaign(SMALL, time.time() + 3600, **folders(root / "campaign"), **QUIET)
    return {"sweep": results(root / "sweep"), "campaign": results(root / "campaign")}


def test_a_sweep_on_two_local_workers_writes_the_in_process_records(cluster, in_process, tmp_path):
    lines = []
    run_sweep(
        CHAINS, ROUNDS, **folders(tmp_path), **{**QUIET, "log": lines.append}, executor=cluster
    )
    assert cluster.workers == 2 and any("2 task(s) on Dask scheduler" in line for line in lines)
    assert results(tmp_path) == in_process["sweep"]


def test_a_campaign_whose_worker_is_killed_mid_task_completes_with_every_record_once(
    cluster, in_process, tmp_path
):
    """The worker holding a run's lock is killed once its population has checkpointed; Dask
    gives its task to a worker that takes over the stale lock and resumes the checkpoint."""
    outcome = {}

    def campaign():
        outcome["done"] = run_campaign(
            SMALL,
            time.time() + 600,
            **folders(tmp_path),
            **QUIET,
            executor=cluster,
            checkpoint_every_s=0.0,  # a checkpoint at every evaluation point
        )

    thread = threading.Thread(target=campaign)
    thread.start()
    killed = None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline and thread.is_alive():
        checkpoints = list((tmp_path / "cache" / "checkpoints").glob("*.pt"))
        locks = list((tmp_path / "runs" / ".locks").glob("*.lock"))
        if checkpoints and locks:
            try:
                owner = json.loads(locks[0].read_text())
            except (OSError, ValueError):  # released or being written meanwhile
                continue
            assert owner["pid"] != os.getpid()  # a worker's lock, not this process's
            os.kill(owner["pid"], signal.SIGKILL)
            killed = owner["pid"]
        time.sleep(0.01)
    thread.join(timeout=600)
    assert killed is not None, "no worker was caught in the middle of a task"
    assert outcome == {"done": True}
    assert results(tmp_path) == in_process["campaign"]  # every record, each written once
    assert not list((tmp_path / "runs").glob(".*~*"))  # no temporary file left behind


def test_two_clients_writing_overlapping_sweeps_to_one_store(in_process, tmp_path):
    """Two users, each with their own client of one cluster, sweep overlapping chains into
    one store at the same time: every run is trained once and the records are the in-process
    ones."""
    first, second = CHAINS[:3], CHAINS[1:]  # chains 1 and 2 in both
    errors = []
    with executor(local_workers=2) as ex:
        address = ex.client.scheduler.address

        def user(chains):
            try:
                with executor(scheduler=address) as mine:
                    run_sweep(chains, ROUNDS, **folders(tmp_path), **QUIET, executor=mine)
            except Exception as error:  # reported below: a thread's exception is lost
                errors.append(error)

        users = [threading.Thread(target=user, args=(c,)) for c in (first, second)]
        for thread in users:
            thread.start()
        for thread in users:
            thread.join(timeout=600)
    assert errors == []
    assert results(tmp_path) == in_process["sweep"]


def test_tasks_keep_chains_that_share_a_run_to_train_together():
    shared = [Chain("fc", 0, c, iterations=300) for c in ("large_final", "random")]
    alone = Chain("fc", 1, "large_final", iterations=300)
    chains = [*shared, alone]
    to_train = [{c.run_key(0) for c in chains}, {c.run_key(1) for c in chains}]
    assert split_tasks(chains, to_train, 8) == [shared, [alone]]  # round 0 of seed 0 is shared
    assert split_tasks(chains, to_train, 1) == [chains]
    assert split_tasks(chains, [set(), {alone.run_key(1)}], 8) == [[alone]]


def test_bad_executor_arguments_are_refused_before_any_work():
    with pytest.raises(ValueError, match="not both"), executor("tcp://127.0.0.1:1", 2):
        pass
    with pytest.raises(ValueError, match="whole number >= 0"), executor(local_workers=-1):
        pass
    with executor() as ex:
        assert isinstance(ex, InProcess)


def test_the_core_library_imports_no_dask():
    code = "import sys, lth.pruning, lth.campaign, lth.experiments, lth.executors; " + (
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_command_line_sweeps_on_local_workers_as_in_process(tmp_path):
    """``python -m lth sweep --local-workers 2`` on the real MNIST under $LTH_DATA (each worker
    loads it from that folder) writes the records of the same sweep in process."""
    from test_data import _real_mnist_available

    if not _real_mnist_available():
        pytest.skip("official MNIST not under $LTH_DATA")
    argv = ["sweep", "--profile", "smoke", "--criteria", "large_final", "random", "--quiet"]
    argv += ["--seeds", "0", "--rounds", "1", "--iterations", "100"]
    for name, where in (("in-process", []), ("workers", ["--local-workers", "2"])):
        root = tmp_path / name
        runs, cache = ["--runs", str(root / "runs")], ["--cache", str(root / "cache")]
        assert main([*argv, *runs, *cache, *where]) == 0
    assert results(tmp_path / "workers") == results(tmp_path / "in-process")
    assert len(results(tmp_path / "workers")) == 3  # the dense run and a round of each


@pytest.mark.parametrize("gpu", [False, True])
def test_the_slurm_example_writes_a_batch_script_of_single_threaded_workers(gpu, capsys):
    """scripts/slurm_campaign.py (the README's worked example), without SLURM: the batch
    script it would submit."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "slurm_campaign.py"
    spec = importlib.util.spec_from_file_location("slurm_campaign", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = ["--print-job-script", "--cores", "4", "--account", "proj"]
    assert script.main([*argv, *(["--gpu"] if gpu else [])]) == 0
    job = capsys.readouterr().out
    assert "#SBATCH -A proj" in job and "#SBATCH --cpus-per-task=4" in job
    assert "--nthreads 1" in job
    if gpu:
        assert "#SBATCH --gres=gpu:1" in job and "--resources GPU=1" in job
        assert "--nworkers" not in job
    else:
        assert "--nworkers 4" in job and "gpu" not in job

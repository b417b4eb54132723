"""Many writers, one store (issue "Records you can trust"): a run is trained by one process at
a time, a record is written once, a killed sweep resumes to the same records, and damaged or
leftover files are dealt with."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from conftest import TINY
from test_experiments import sweep

from lth import store as store_module
from lth.experiments import Chain, run_sweep
from lth.store import DamagedFileWarning, RunStore, StateCache
from lth.train import DeadlineReached

TESTS = Path(__file__).resolve().parent
CHAINS = [Chain("fc", s, c, iterations=300) for s in (0, 1) for c in ("large_final", "random")]
ROUNDS = 2

#: A sweep in a fresh process on the tests' tiny dataset; each population it trains is logged.
CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
from conftest import TINY, make_tiny_data
from lth import experiments
from lth.store import RunStore, StateCache
data = make_tiny_data()
from lth import pruning
original = pruning._train_round
def logged(context, members, *args, **kwargs):
    with open({log!r}, "a") as f:
        f.write(json.dumps(sorted(members)) + "\\n")
    return original(context, members, *args, **kwargs)
pruning._train_round = logged
chains = [experiments.Chain("fc", s, c, iterations=300) for s in (0, 1)
          for c in ("large_final", "random")]
experiments.run_sweep(chains, {rounds}, store=RunStore({runs!r}), cache=StateCache({cache!r}),
                      progress=False, log=lambda message: None, data=data)
"""


def start_sweep(root: Path, name: str, rounds: int = ROUNDS) -> tuple[subprocess.Popen, Path]:
    log = root / f"{name}.log"
    code = CHILD.format(
        tests=str(TESTS),
        log=str(log),
        rounds=rounds,
        runs=str(root / "runs"),
        cache=str(root / "cache"),
    )
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    return subprocess.Popen([sys.executable, "-c", code], cwd=TESTS.parent, env=env), log


def results(root: Path) -> dict[str, dict]:
    """Every record's key, spec and result (provenance says how and when, so it differs)."""
    out = {}
    for path in sorted((root / "runs").glob("*.json")):
        record = json.loads(path.read_text())
        out[path.stem] = {k: record[k] for k in ("key", "spec", "result")}
    return out


def sweep_here(root: Path) -> None:
    sweep(CHAINS, ROUNDS, root)


def test_a_killed_sweep_resumed_writes_the_records_of_an_uninterrupted_one(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    sweep_here(whole)
    process, _ = start_sweep(killed, "killed")
    deadline = time.time() + 120
    while not list((killed / "runs").glob("*.json")) and time.time() < deadline:
        time.sleep(0.05)  # kill it once round 0 is recorded: mid-sweep, in a later round
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = results(killed)
    assert 0 < len(partial) < len(results(whole))
    sweep_here(killed)  # takes over the dead process's locks
    assert results(killed) == results(whole)  # every field of every record, bit for bit
    assert not list((killed / "runs").glob(".*.tmp"))


def test_two_processes_on_one_store_train_each_run_once(tmp_path):
    first, first_log = start_sweep(tmp_path, "first")
    second, second_log = start_sweep(tmp_path, "second")
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0
    trained = [
        [key for line in log.read_text().splitlines() for key in json.loads(line)]
        if log.exists()  # a process that found every run taken trained nothing
        else []
        for log in (first_log, second_log)
    ]
    expected = {c.run_key(r) for c in CHAINS for r in range(ROUNDS + 1)}
    assert set(trained[0]) | set(trained[1]) == expected == set(results(tmp_path))
    assert len(trained[0]) + len(trained[1]) == len(expected)  # none trained twice
    assert not list((tmp_path / "runs" / ".locks").glob("*.lock"))


# ----------------------------------------------------------------------------- the store itself


def test_a_record_is_written_once(tmp_path):
    runs = RunStore(tmp_path)
    assert runs.put("k", {"first": True})
    assert not runs.put("k", {"second": True})
    assert runs.get("k") == {"first": True}
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]


def test_a_damaged_record_is_reported_with_its_path_and_set_aside(tmp_path):
    runs = RunStore(tmp_path)
    runs.path("k").write_text('{"result": {"test_accuracy": 0.9')  # cut short by a crash
    with pytest.warns(DamagedFileWarning, match=str(runs.path("k"))):
        assert runs.get("k") is None
    assert "k" not in runs  # so a sweep recomputes it
    (aside,) = (tmp_path / "damaged").iterdir()
    assert aside.name.startswith("k.json.") and aside.read_text().startswith('{"result"')


def test_a_damaged_cache_file_is_reported_with_its_path_and_set_aside(tmp_path):
    cache = StateCache(tmp_path)
    cache.save("k", {"mask": [torch.ones(3)]})
    cache.path("k").write_bytes(cache.path("k").read_bytes()[:40])
    with pytest.warns(DamagedFileWarning, match=str(cache.path("k"))):
        assert cache.load("k") is None
    assert "k" not in cache and len(list((tmp_path / "damaged").iterdir())) == 1


def test_temporary_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = store_module.HOST
    leftover = tmp_path / f".k.json~{host}~{dead.pid}~abc123.tmp"
    live = tmp_path / f".j.json~{host}~{os.getpid()}~def456.tmp"
    old = tmp_path / ".i.json~other-host~1~ghi789.tmp"
    for path in (leftover, live, old):
        path.write_text("{")
    os.utime(old, (0, 0))
    assert sorted(RunStore(tmp_path).clean()) == sorted([leftover, old])
    assert live.exists() and not leftover.exists() and not old.exists()


def test_a_lock_is_exclusive_and_a_stale_one_is_taken_over(tmp_path):
    runs = RunStore(tmp_path)
    lock = runs.lock("k")
    assert lock.acquire() and not runs.lock("k").acquire()  # a live holder: this process
    lock.release()
    assert not lock.path.exists()
    # a dead process of this host left its lock
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.path.write_text(json.dumps({"host": store_module.HOST, "pid": dead.pid}))
    assert runs.lock("k").acquire()
    # another host's lock: live while refreshed, stale once not refreshed for STALE_LOCK_S
    lock.path.write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    assert not runs.lock("k").acquire()
    stale = time.time() - store_module.STALE_LOCK_S - 1
    os.utime(lock.path, (stale, stale))
    assert runs.lock("k").acquire()


def test_a_held_lock_is_refreshed_while_its_population_trains(tmp_path):
    lock = RunStore(tmp_path).lock("k")
    assert lock.acquire()
    os.utime(lock.path, (0, 0))
    with store_module.Heartbeat([lock], every=0.01):
        time.sleep(0.2)
    assert time.time() - lock.path.stat().st_mtime < 60
    lock.release()


def test_warnings_do_not_hide_damaged_files_as_errors(tmp_path):
    """A damaged record is a warning and a recomputation, never a crash of the sweep."""
    runs = RunStore(tmp_path)
    runs.path("k").write_bytes(b"\xff\xfe not json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert runs.get("k") is None
    assert any(issubclass(w.category, DamagedFileWarning) for w in caught)


def test_a_sweep_stopped_at_its_deadline_resumes_mid_round_to_the_same_records(tmp_path):
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    sweep_here(whole)
    kwargs = dict(
        store=RunStore(stopped / "runs"), cache=StateCache(stopped / "cache"), progress=False
    )
    for _ in range(3):  # three sittings stop mid-round, each within 100 iterations
        with pytest.raises(DeadlineReached):
            run_sweep(CHAINS, ROUNDS, deadline=time.time(), log=lambda m: None, **kwargs, data=TINY)
        (saved,) = (stopped / "cache" / "checkpoints").glob("*.pt")
    run_sweep(CHAINS, ROUNDS, max_population=3, log=lambda m: None, **kwargs, data=TINY)
    assert results(stopped) == results(whole)
    assert not list((stopped / "cache" / "checkpoints").glob("*.pt"))
    assert not list((stopped / "runs" / ".locks").glob("*.lock"))  # released at each stop


def test_legacy_records_are_remade_one_by_one_and_replaced(tmp_path):
    """A record made before member independence is trained again and replaced atomically;
    every other record stays byte for byte."""
    sweep_here(tmp_path)
    before = {p.name: p.read_bytes() for p in (tmp_path / "runs").glob("*.json")}
    store = RunStore(tmp_path / "runs")
    key = CHAINS[1].run_key(2)
    legacy = store.get(key)
    made = legacy["result"]
    del legacy["provenance"]["population"]
    legacy["result"] = {**made, "test_accuracy": 0.5}  # as if made with other companions
    store.path(key).write_text(json.dumps(legacy))
    remake = store_module.LegacyRemake(tmp_path / "runs")
    assert key not in remake and CHAINS[0].run_key(2) in remake
    run_sweep(
        CHAINS,
        ROUNDS,
        store=remake,
        cache=StateCache(tmp_path / "cache"),
        progress=False,
        data=TINY,
    )
    assert store.get(key)["result"] == made and "population" in store.get(key)["provenance"]
    after = {p.name: p.read_bytes() for p in (tmp_path / "runs").glob("*.json")}
    assert {n: b for n, b in after.items() if n != f"{key}.json"} == {
        n: b for n, b in before.items() if n != f"{key}.json"
    }

"""``python -m lth verify``: records re-made alone, compared bit for bit (issue "Records you
can trust")."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from conftest import TINY

from lth import experiments
from lth.__main__ import main
from lth.experiments import Chain, learned_supermask_sweep, resolve_settings, run_sweep
from lth.store import RunStore, StateCache
from lth.supermask import LearnedSupermask
from lth.verify import VERIFIED_LOG, candidates, verify

CHAINS = [Chain("fc", 0, "large_final", iterations=150), Chain("fc", 1, "random", iterations=150)]


@pytest.fixture
def swept(tmp_path):
    """A store made as the book's would be: two chains, 2 rounds trained in populations of 2,
    an untrained-supermask sweep and a learned supermask."""
    store, cache = RunStore(tmp_path / "runs"), StateCache(tmp_path / "cache")
    quiet = dict(store=store, progress=False, log=lambda message: None)
    run_sweep(CHAINS, 2, cache=cache, **quiet, data=TINY)
    settings = resolve_settings("smoke", criteria=["large_final_same_sign"], seeds=[0, 1], rounds=0)
    settings = dataclasses.replace(settings, iterations=150)
    experiments.untrained_supermask_sweep(settings, levels=[0, 3], cache=cache, **quiet, data=TINY)
    runs = [LearnedSupermask("fc", s, "init", True, batch_size=100, epochs=2) for s in (0, 1)]
    learned_supermask_sweep(runs, **quiet, data=TINY)
    return store, cache


def kinds(store):
    return {k: store.get(k)["spec"].get("kind", "run") for k in store.keys()}


def test_every_kind_of_record_verifies_bit_for_bit_with_and_without_the_cache(swept, tmp_path):
    store, cache = swept
    keys = list(store.keys())
    assert set(kinds(store).values()) == {"run", "untrained_supermask", "learned_supermask"}
    lines = []
    verdicts = verify(keys, store=store, cache=cache, report=lines.append, data=TINY)
    assert [v.status for v in verdicts] == ["ok"] * len(keys), lines
    # a fresh clone has no cache: pruned rounds and supermasks rebuild their chain's state
    shutil.rmtree(tmp_path / "cache")
    fresh = StateCache(tmp_path / "no-cache")
    verdicts = verify(keys, store=store, cache=fresh, report=lines.append, data=TINY)
    assert [v.status for v in verdicts] == ["ok"] * len(keys), lines


def test_a_hand_edited_record_fails_and_says_what_differs(swept, cli_data, capsys):
    store, cache = swept
    key = CHAINS[1].run_key(2)
    record = store.get(key)
    record["result"]["test_accuracy"] += 0.01
    store.path(key).write_text(json.dumps(record))
    assert main(["verify", key, "--runs", str(store.root), "--cache", str(cache.root)]) == 1
    out = capsys.readouterr().out
    assert f"MISMATCH {key}" in out and "test_accuracy" in out
    assert "0 verified bit for bit, 1 mismatched" in out


def test_a_stale_cache_is_not_trusted(swept):
    """The cache's tensors must carry the previous record's digest, or the round is rebuilt."""
    store, cache = swept
    previous = CHAINS[0].run_key(1)
    state = cache.load(previous)
    state["w_f"][0] = state["w_f"][0] * 1.5  # as if left by other code
    cache.path(previous).unlink()
    cache.save(previous, state)
    (verdict,) = verify(
        [CHAINS[0].run_key(2)], store=store, cache=cache, report=lambda s: None, data=TINY
    )
    assert verdict.status == "ok"


def test_a_sample_leaves_legacy_records_out_and_keeps_to_the_budget(swept, capsys):
    store, cache = swept
    legacy = CHAINS[0].run_key(0)
    record = store.get(legacy)
    del record["provenance"]["population"]  # as made before member independence
    store.path(legacy).write_text(json.dumps(record))
    lines = []
    verdicts = verify([], store=store, cache=cache, sample=50, report=lines.append, data=TINY)
    assert legacy not in {v.key for v in verdicts}
    assert len(verdicts) == len(list(store.keys())) - 1
    args = ["verify", "--sample", "2", "--max-minutes", "0", "--runs", str(store.root)]
    assert main([*args, "--cache", str(cache.root)]) == 3  # everything skipped: nothing verified
    assert "SKIPPED" in capsys.readouterr().out


def test_records_of_another_machine_type_are_skipped_and_here_picks_one_known_here(
    swept, cli_data, capsys
):
    store, cache = swept
    other = CHAINS[1].run_key(1)
    record = store.get(other)
    record["provenance"]["machine"] = "GenuineIntel AVX2"  # as made on another machine type
    store.path(other).write_text(json.dumps(record))
    (verdict,) = verify([other], store=store, cache=cache, report=lambda s: None, data=TINY)
    assert (
        verdict.status == "skipped" and "another machine type (GenuineIntel AVX2" in verdict.detail
    )
    assert other not in set(candidates(store, 50, 0))
    # records from before provenance named the machine type: --here needs one re-made here
    for key in store.keys():
        record = store.get(key)
        record["provenance"].pop("machine", None)
        store.path(key).write_text(json.dumps(record))
    (store.root / VERIFIED_LOG).unlink(missing_ok=True)
    args = ["verify", "--here", "--runs", str(store.root), "--cache", str(cache.root)]
    assert main(args) == 3
    assert "is known to reproduce on this machine type" in capsys.readouterr().out
    dense = CHAINS[0].run_key(0)
    (verdict,) = verify([dense], store=store, cache=cache, report=lambda s: None, data=TINY)
    assert verdict.status == "ok" and dense in (store.root / VERIFIED_LOG).read_text()
    assert main(args) == 0
    assert f"OK       {dense}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sample", "0"], "--sample: expected a whole number >= 1, got '0'"),
        (["--max-minutes", "soon"], "--max-minutes: expected a number >= 0, got 'soon'"),
        (["0123456789abcdef"], "no record '0123456789abcdef'"),
    ],
)
def test_bad_verify_input_is_one_line(args, message, tmp_path, capsys):
    assert main(["verify", *args, "--runs", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err

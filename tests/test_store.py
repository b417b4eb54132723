"""The run store and the chain-state cache."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch

from lth import store as store_module
from lth.experiments import Chain, for_data
from lth.store import RunStore, StateCache, spec_key
from lth.supermask import LearnedSupermask

REPO = Path(__file__).resolve().parent.parent


def test_spec_key_is_sha256_of_canonical_json():
    canonical = '{"net":"fc","round":1,"seed":0}'  # sorted keys, no spaces
    expected = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert spec_key({"seed": 0, "round": 1, "net": "fc"}) == expected == "1619c809d1bb6a72"


def test_spec_key_ignores_order_and_none_entries():
    base = {"net": "fc", "seed": 0, "round": 1}
    assert spec_key(dict(reversed(base.items()))) == spec_key(base)
    assert spec_key({**base, "criterion": None}) == spec_key(base)
    assert spec_key({**base, "criterion": "random"}) != spec_key(base)
    assert spec_key({**base, "seed": 1}) != spec_key(base)


def test_run_store_round_trip(tmp_path):
    runs = RunStore(tmp_path / "runs")
    record = {"key": "abc", "result": {"test_accuracy": 0.975, "val_loss": [1.5, 0.25]}}
    assert runs.get("abc") is None and "abc" not in runs
    runs.put("abc", record)
    assert "abc" in runs
    assert runs.get("abc") == record
    assert list(runs.keys()) == ["abc"]
    assert runs.path("abc").read_text().endswith("\n")


def test_run_store_writes_leave_no_temporary_files(tmp_path):
    runs = RunStore(tmp_path)
    for i in range(3):
        runs.put(f"k{i}", {"i": i})
    assert not runs.put("k0", {"i": 10})  # a record is written once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k0.json", "k1.json", "k2.json"]
    assert runs.get("k0") == {"i": 0}


def test_failed_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path):
    runs = RunStore(tmp_path)
    runs.put("k", {"old": True})

    def broken_write(f):
        f.write(b'{"half')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        store_module.atomic_write(runs.path("k"), broken_write)
    assert runs.get("k") == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]


def test_state_cache_round_trip(tmp_path):
    cache = StateCache(tmp_path / "cache")
    big = torch.randn(4, 3, 2)
    state = {"w_i": [big[1], torch.arange(5)], "mask": [torch.ones(2, 2)]}
    assert cache.load("x") is None and "x" not in cache
    cache.save("x", state)
    assert "x" in cache
    loaded = cache.load("x")
    assert set(loaded) == {"w_i", "mask"}
    assert torch.equal(loaded["w_i"][0], big[1])
    assert torch.equal(loaded["w_i"][1], torch.arange(5))
    assert torch.equal(loaded["mask"][0], torch.ones(2, 2))
    # a view is saved as its own values, not with the whole storage behind it
    assert loaded["w_i"][0].untyped_storage().nbytes() == 3 * 2 * 4
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["x.pt"]


# ----------------------------------------------------------------------------- pinned keys

#: Keys of committed records (data/runs/<key>.json), computed from the specs that made them.
#: A change to how specs hash must keep these (hash only non-default fields), or migrate them.
PINNED_RUN_KEYS = {
    "1a298bd470eaee6d": (Chain("fc", 4), 0),  # dense FC at the paper's protocol
    "69db536693ed2d47": (Chain("fc", 1, iterations=10_000), 0),
    "0004296ca74750bb": (Chain("fc", 1, "large_final", iterations=10_000), 5),
    "00ead02abc5c0ab5": (Chain("fc", 0, "large_final", "reinit", iterations=5_000), 16),
    "01a052770b449707": (Chain("fc", 1, mask0="freeze_init", iterations=5_000), 7),
    "43e9e9db6ef6b93c": (Chain("fc", 0, iterations=10_000, precision="bf16"), 0),
}


@pytest.mark.parametrize("key", list(PINNED_RUN_KEYS))
def test_committed_run_keys_are_pinned(key):
    chain, round_ = PINNED_RUN_KEYS[key]
    assert chain.run_key(round_) == key
    record = RunStore(REPO / "data" / "runs").get(key)
    assert record is not None and record["spec"] == chain.run_spec(round_)


def test_committed_supermask_keys_are_pinned():
    learned = LearnedSupermask("fc", 1, "signed_constant", True, epochs=60)
    assert spec_key(learned.spec()) == "4cd02d9e36bb679d"
    untrained = {
        "criterion": "magnitude_increase",
        "dense": "2f2eee9733d87567",
        "kind": "untrained_supermask",
        "levels": list(range(25)),
        "treatment": "init",
    }
    assert spec_key(untrained) == "02eab0e8f33931e1"


def test_a_partial_test_set_gives_other_keys_and_the_complete_one_the_same(tiny_data):
    chains = [Chain("conv2", 0, iterations=300), Chain("conv2", 1, "random", iterations=300)]
    assert for_data(chains, tiny_data) == chains  # the complete set: same chains, same keys
    assert "test_set" not in chains[0].run_spec(0)
    partial = dataclasses.replace(
        tiny_data, test_complete=False, files=(("test_batch.bin", "0123abcd"),)
    )
    tagged = for_data(chains, partial)
    assert tagged[0].test_set == "partial: 100 images, md5 0123abcd"
    for t, c in zip(tagged, chains, strict=True):
        assert t.run_key(0) != c.run_key(0) and t.run_key(1) != c.run_key(1)

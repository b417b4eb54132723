"""The run store and the chain-state cache."""

from __future__ import annotations

import hashlib

import pytest
import torch

from lth import store as store_module
from lth.store import RunStore, StateCache, spec_key


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
    runs.put("k0", {"i": 10})  # overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k0.json", "k1.json", "k2.json"]
    assert runs.get("k0") == {"i": 10}


def test_failed_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path):
    runs = RunStore(tmp_path)
    runs.put("k", {"old": True})

    def broken_write(f):
        f.write(b'{"half')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        store_module._atomic_write(runs.path("k"), broken_write)
    assert runs.get("k") == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]


def test_state_cache_round_trip(tmp_path):
    cache = StateCache(tmp_path / "cache")
    big = torch.randn(4, 3, 2)
    state = {"w_start": [big[1], torch.arange(5)], "mask": [torch.ones(2, 2)]}
    assert cache.load("x") is None and "x" not in cache
    cache.save("x", state)
    assert "x" in cache
    loaded = cache.load("x")
    assert set(loaded) == {"w_start", "mask"}
    assert torch.equal(loaded["w_start"][0], big[1])
    assert torch.equal(loaded["w_start"][1], torch.arange(5))
    assert torch.equal(loaded["mask"][0], torch.ones(2, 2))
    # a view is saved as its own values, not with the whole storage behind it
    assert loaded["w_start"][0].untyped_storage().nbytes() == 3 * 2 * 4
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["x.pt"]

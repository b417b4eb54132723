"""Sweeps: resuming from the run store and state cache, shared round 0, notebook settings."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
from conftest import TINY

from lth import experiments, pruning, supermask_sweeps
from lth.criteria import CRITERIA
from lth.experiments import Chain, resolve_settings, run_sweep
from lth.nets import get_architecture, percent_remaining
from lth.paper import FIGURE3_CRITERIA
from lth.provenance import machine_type
from lth.store import RunStore, StateCache
from lth.supermask import untrained_supermask_accuracy
from lth.train import train_population

# Total percent remaining of FC after k rounds (book/spec.md section 4), rounded to 0.1.
ROUND_OF_PERCENT = {100.0: 0, 80.0: 1, 64.1: 2, 51.3: 3, 41.1: 4, 32.9: 5}


@pytest.fixture
def counted_training(monkeypatch):
    """Wrap ``train_population`` in run_sweep; records each call's members' rounds."""
    calls: list[list[int]] = []
    original = pruning.train_population
    arch = get_architecture("fc")

    def counting(pop, *args, **kwargs):
        rounds = []
        for i in range(pop.size):
            percent = percent_remaining(arch, [m[i] for m in pop.masks])
            rounds.append(ROUND_OF_PERCENT[round(percent, 1)])
        calls.append(rounds)
        return original(pop, *args, **kwargs)

    monkeypatch.setattr(pruning, "train_population", counting)
    return calls


def sweep(chains, rounds, root):
    return run_sweep(
        chains,
        rounds,
        store=RunStore(root / "runs"),
        cache=StateCache(root / "cache"),
        progress=False,
        log=lambda message: None,
        data=TINY,
    )


def record_bytes(root) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "runs").glob("*.json"))}


def cached_states(chains, rounds, root) -> dict[str, dict]:
    cache = StateCache(root / "cache")
    return {c.run_key(r): cache.load(c.run_key(r)) for c in chains for r in range(rounds + 1)}


def test_sweep_resumes_and_rebuilds_lost_state(counted_training, tmp_path):
    chains = [Chain("fc", 0, "large_final", iterations=20), Chain("fc", 0, "random", iterations=20)]

    # 2 rounds from scratch: the shared dense run alone, then both chains per round
    frame = sweep(chains, 2, tmp_path)
    assert counted_training == [[0], [1, 1], [2, 2]]
    assert len(frame) == 2 * 3
    assert frame.groupby("round")["percent_remaining"].first().round(1).tolist() == [
        100.0,
        80.0,
        64.1,
    ]
    assert len(record_bytes(tmp_path)) == 1 + 2 * 2  # round 0 is shared
    before = record_bytes(tmp_path)

    # one more round: only round 3 trains; every earlier record is untouched
    counted_training.clear()
    sweep(chains, 3, tmp_path)
    assert counted_training == [[3, 3]]
    after = record_bytes(tmp_path)
    assert {name: after[name] for name in before} == before
    assert len(after) == len(before) + 2

    # everything present: nothing trains
    counted_training.clear()
    frame = sweep(chains, 3, tmp_path)
    assert counted_training == []
    assert len(frame) == 2 * 4

    # lose the state cache: round 4 starts from the committed chain steps, nothing else trains
    old_states = cached_states(chains, 3, tmp_path)
    shutil.rmtree(tmp_path / "cache")
    counted_training.clear()
    frame = sweep(chains, 4, tmp_path)
    assert counted_training == [[4, 4]]
    final = record_bytes(tmp_path)
    assert {name: final[name] for name in after} == after
    assert len(final) == 1 + 2 * 4
    assert frame.groupby("round")["percent_remaining"].first().round(1).tolist()[-1] == 41.1

    # lose the cache and the steps too: round 5 needs round 4's start, so rounds 0-4 retrain
    shutil.rmtree(tmp_path / "cache")
    shutil.rmtree(tmp_path / "runs" / "chains")
    counted_training.clear()
    sweep(chains, 5, tmp_path)
    assert counted_training == [[0], [1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]
    # training is deterministic, so the rebuilt state is the state the records came from
    new_states = cached_states(chains, 3, tmp_path)
    for key, old in old_states.items():
        for name in ("w_i", "w_f", "mask"):
            assert all(
                torch.equal(a, b) for a, b in zip(old[name], new_states[key][name], strict=True)
            ), (key, name)


def test_round_zero_is_shared_between_criteria(tmp_path):
    chains = [Chain("fc", 0, "large_final", iterations=20), Chain("fc", 0, "random", iterations=20)]
    assert chains[0].run_key(0) == chains[1].run_key(0)
    assert chains[0].run_key(1) != chains[1].run_key(1)
    frame = sweep(chains, 1, tmp_path)
    runs = RunStore(tmp_path / "runs")
    records = [runs.get(key) for key in runs.keys()]
    dense = [r for r in records if r["spec"]["round"] == 0]
    assert len(records) == 3 and len(dense) == 1
    assert dense[0]["key"] == chains[0].run_key(0)
    assert "criterion" not in dense[0]["spec"] or dense[0]["spec"]["criterion"] is None
    assert dense[0]["result"]["weights_remaining"] == {"fc1": 235_200, "fc2": 30_000, "fc3": 1000}
    pruned = [r for r in records if r["spec"]["round"] == 1]
    for r in pruned:
        assert r["result"]["weights_remaining"] == {"fc1": 188_160, "fc2": 24_000, "fc3": 900}
        assert 0.0 <= r["result"]["test_accuracy"] <= 1.0
    # both chains' curves start from the same dense run
    dense_rows = frame[frame["round"] == 0]
    assert dense_rows["key"].nunique() == 1 and len(dense_rows) == 2


def test_chain_rejects_unknown_names():
    with pytest.raises(ValueError, match="accepted"):
        Chain("fc", 0, criterion="biggest")
    with pytest.raises(ValueError, match="accepted"):
        Chain("vgg", 0)
    with pytest.raises(ValueError, match="accepted"):
        Chain("fc", 0, mask1="reset")


# ----------------------------------------------------------------------------- settings


def test_resolve_settings_fills_from_the_profile():
    s = resolve_settings("smoke")
    assert s.seeds == (0,) and s.rounds == 2 and s.iterations == 200
    assert s.criteria == FIGURE3_CRITERIA
    assert len(s.chains()) == 9


@pytest.mark.parametrize(
    "kwargs, accepted",
    [
        ({"profile": "huge"}, ["smoke", "mid", "paper"]),
        ({"net": "conv9"}, ["fc"]),
        ({"criteria": ["large_final", "biggest"]}, list(CRITERIA)),
    ],
)
def test_resolve_settings_rejects_unknown_values(kwargs, accepted):
    with pytest.raises(ValueError) as info:
        resolve_settings(**kwargs)
    for name in accepted:
        assert name in str(info.value)


@pytest.mark.parametrize(
    "seeds, criteria",
    [
        ("[0, 1]", "[large_final, random]"),
        ("0,1", "['large_final', 'random']"),
        ([0, 1], ("large_final", "random")),
    ],
)
def test_resolve_settings_parses_list_parameters(seeds, criteria):
    s = resolve_settings("smoke", seeds=seeds, criteria=criteria, rounds=3, iterations=50)
    assert s.seeds == (0, 1)
    assert s.criteria == ("large_final", "random")
    assert (s.rounds, s.iterations) == (3, 50)


def test_sweep_rejects_chains_with_different_protocols(tmp_path):
    # One population trains every run of a round, so all its chains must share a protocol.
    chains = [Chain("fc", 0, iterations=20), Chain("fc", 1, iterations=300)]
    with pytest.raises(ValueError, match="one protocol per sweep"):
        sweep(chains, 0, tmp_path)
    assert not list((tmp_path / "runs").glob("*.json"))


def test_sweep_applies_mask1_and_mask0_actions(tmp_path):
    chain = Chain("fc", 0, "large_final", "constant_same_sign", "variant_1", iterations=20)
    sweep([chain], 1, tmp_path)
    cache = StateCache(tmp_path / "cache")
    dense, pruned = cache.load(chain.run_key(0)), cache.load(chain.run_key(1))
    for w_i, w_start, w_final, mask, dense_final in zip(
        dense["w_i"],
        pruned["w_i"],
        pruned["w_f"],
        pruned["mask"],
        dense["w_f"],
        strict=True,
    ):
        sigma = float(w_i.std(correction=0))
        # variant 1 sets the round's starting values: kept at the signed constant
        kept = mask.bool()
        assert torch.allclose(w_start[kept].abs(), torch.full_like(w_start[kept], sigma))
        assert torch.equal(torch.sign(w_start[kept]), torch.sign(w_i[kept]))
        # pruned: 0 where the dense run moved toward zero, else the dense start; never trained
        toward_zero = dense_final.abs() < w_i.abs()
        expected = torch.where(toward_zero, torch.zeros_like(w_i), w_i)
        assert torch.equal(w_final[~kept], expected[~kept])


def test_describe_runs_reports_provenance(tmp_path):
    chains = [Chain("fc", 0, c, iterations=20) for c in ("large_final", "random")]
    frame = sweep(chains, 1, tmp_path)
    text = experiments.describe_runs(frame, RunStore(tmp_path / "runs"))
    assert text.startswith("3 distinct runs (4 rows")
    assert "torch" in text and "test images per run: 100" in text
    assert "every one re-makeable bit for bit" in text
    assert f"machine types: {machine_type()} (3)" in text
    store = RunStore(tmp_path / "runs")
    legacy = store.get(chains[1].run_key(1))
    del legacy["provenance"]["population"]  # as made before member independence
    store.path(chains[1].run_key(1)).write_text(json.dumps(legacy))
    del legacy["provenance"]["machine"]
    store.path(chains[1].run_key(1)).write_text(json.dumps(legacy))
    text = experiments.describe_runs(frame, store)
    assert "1 of them made before members trained independently" in text
    assert f"{machine_type()} (2), not recorded (1: made before provenance" in text


def _fail(*args, **kwargs):
    raise AssertionError("nothing should be computed again")


def test_untrained_supermask_sweep_reuses_dense_runs_and_resumes(monkeypatch, tmp_path):
    settings = resolve_settings(
        "smoke", criteria=["large_final_same_sign", "random"], seeds=[0, 1], rounds=0
    )
    kwargs = dict(
        store=RunStore(tmp_path / "runs"), cache=StateCache(tmp_path / "cache"), progress=False
    )
    frame = experiments.untrained_supermask_sweep(settings, levels=[0, 4, 12], **kwargs, data=TINY)
    assert len(frame) == 2 * 2 * 2 * 3  # seeds x criteria x treatments x levels
    assert sorted(frame["treatment"].unique()) == ["init", "signed_constant"]
    assert frame.groupby("k")["percent_remaining"].nunique().eq(1).all()
    assert frame.loc[frame["k"] == 0, "percent_remaining"].eq(100.0).all()
    assert frame["test_accuracy"].between(0, 1).all() and frame["n_test"].eq(100).all()
    # at k=0 every criterion keeps everything: one accuracy per seed and treatment
    dense = frame[frame["k"] == 0].groupby(["seed", "treatment"])["test_accuracy"].nunique()
    assert dense.eq(1).all()

    # everything is in the store now: nothing is trained or evaluated again
    monkeypatch.setattr(pruning, "train_population", _fail)
    monkeypatch.setattr(supermask_sweeps, "untrained_supermask_accuracy", _fail)
    again = experiments.untrained_supermask_sweep(settings, levels=[0, 4, 12], **kwargs, data=TINY)
    assert again.equals(frame)

    # with the cache lost, complete records still need no tensors: nothing is trained ...
    shutil.rmtree(tmp_path / "cache")
    experiments.untrained_supermask_sweep(settings, levels=[0, 4, 12], **kwargs, data=TINY)
    # ... but a new level needs w_f, so the dense runs train again (their records exist)
    trained = []

    def counting(pop, *args, **kw):
        trained.append(pop.size)
        return train_population(pop, *args, **kw)

    monkeypatch.setattr(pruning, "train_population", counting)
    monkeypatch.setattr(
        supermask_sweeps, "untrained_supermask_accuracy", untrained_supermask_accuracy
    )
    more = experiments.untrained_supermask_sweep(
        settings, levels=[0, 4, 12, 20], **kwargs, data=TINY
    )
    assert len(more) == 2 * 2 * 2 * 4
    assert trained == [2]


def test_learned_supermask_sweep_stores_runs_and_resumes(monkeypatch, tmp_path):
    settings = resolve_settings("smoke", seeds=[0], rounds=0)
    runs = experiments.learned_supermask_runs(settings, epochs=1)
    assert len(runs) == 4  # {init, signed constant} x {without, with DWR}
    runs = [dataclasses.replace(r, batch_size=50) for r in runs]
    store = RunStore(tmp_path / "runs")
    frame, curve = experiments.learned_supermask_sweep(runs, store=store, progress=False, data=TINY)
    assert len(frame) == 4 and frame["test_accuracy"].between(0, 1).all()
    assert frame["percent_kept"].between(40, 60).all()  # p starts at 0.5; 1 short epoch
    assert sorted(curve["epoch"].unique()) == [0, 1]
    monkeypatch.setattr(supermask_sweeps, "train_learned_supermasks", _fail)
    again, _ = experiments.learned_supermask_sweep(runs, store=store, progress=False, data=TINY)
    assert again.equals(frame)


def test_table1_takes_the_best_level_of_the_seed_mean_and_the_learned_means():
    import pandas as pd

    accuracies = {  # treatment -> level -> (seed 0, seed 1)
        "init": {0: (0.1, 0.1), 4: (0.7, 0.5), 8: (0.9, 0.2)},
        "signed_constant": {0: (0.1, 0.1), 4: (0.8, 0.9), 8: (0.3, 0.3)},
    }
    untrained = pd.DataFrame(
        [
            {"criterion": "large_final_same_sign", "treatment": t, "k": k, "seed": s,
             "test_accuracy": acc, "percent_remaining": 100 * 0.8**k,
             "dense_test_accuracy": 0.97 + 0.01 * s, "dense_iterations": 100}
            for t, accs in accuracies.items()
            for k, pair in accs.items()
            for s, acc in enumerate(pair)
        ]
    )  # fmt: skip
    learned = pd.DataFrame(
        [
            {"weights": "init", "dynamic_weight_rescaling": dwr, "test_accuracy": acc,
             "epochs": 3, "percent_kept": 50.0}
            for dwr, acc in ((False, 0.90), (False, 0.92), (True, 0.96))
        ]
    )  # fmt: skip
    table = experiments.table1_ours(untrained, learned).set_index("row")
    # init: level 4 has the best seed mean (0.6 > 0.55), though level 8 has the best seed
    assert table.loc["large_final_same_sign, init weights", "mean"] == pytest.approx(60.0)
    assert table.loc["large_final_same_sign, init weights", "max"] == pytest.approx(70.0)
    assert table.loc["large_final_same_sign, signed constant", "mean"] == pytest.approx(85.0)
    assert table.loc["learned supermask", "mean"] == pytest.approx(91.0)
    assert table.loc["learned supermask + DWR", "seeds"] == 1
    assert table.loc["trained dense baseline", "mean"] == pytest.approx(97.5)
    assert "learned supermask, signed constant weights" not in table.index

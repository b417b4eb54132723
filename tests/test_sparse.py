"""Sparse rounds (issue "Sparse rounds"): the sparse path trains the same network as the dense
one within float tolerance, keeps pruned entries at exactly zero, and keeps members independent
bit for bit like the dense engine."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY

from lth.nets import Population, get_architecture, initial_weights
from lth.sparse import (
    SPARSE_BELOW,
    SparseBlock,
    SparseLayout,
    SparseMembers,
    sparse_layers,
    sparse_linear,
)
from lth.train import Checkpoint, DeadlineReached, Protocol, train_population

FC = get_architecture("fc")
ITERATIONS = 200


def _lottery_members(seeds, densities, device="cpu") -> Population:
    """FC members whose seeded random masks keep ``density`` of fc1 and fc2 (and more of fc3)
    with pruned weights set to zero: the mask-0 action ``zero`` of the lottery ticket."""
    weights, masks = [], []
    for seed, density in zip(seeds, densities, strict=True):
        g = torch.Generator().manual_seed(2000 + seed)
        mask = [
            (torch.rand(layer.shape, generator=g) < max(density, 0.5 if i == 2 else 0)).float()
            for i, layer in enumerate(FC.layers)
        ]
        weights.append([w * m for w, m in zip(initial_weights(FC, seed), mask, strict=True)])
        masks.append(mask)
    return Population.from_members(FC, weights, masks).to(device)


def test_sparse_layers_follow_the_round_the_mask0_action_and_the_precision():
    # fc1, fc2 keep 0.8^r of their weights, fc3 0.9^r (book/spec.md section 4)
    first = next(r for r in range(30) if 0.8**r < SPARSE_BELOW)
    assert sparse_layers(FC, first - 1, "zero", "fp32") == ()
    assert sparse_layers(FC, first, "zero", "fp32") == ("fc1", "fc2")
    assert "fc3" in sparse_layers(FC, 30, "zero", "fp32")
    assert sparse_layers(FC, 30, "freeze_init", "fp32") == ()  # frozen non-zero values
    assert sparse_layers(FC, 30, "zero", "bf16") == ()
    assert sparse_layers(get_architecture("conv2"), 30, "zero", "fp32") == ()  # not measured


def test_layout_round_trips_and_gives_the_matrix_and_its_transpose():
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(7, 5, generator=g) < 0.4).float()
    w = torch.randn(7, 5, generator=g) * mask
    layout = SparseLayout.from_mask(mask)
    values = layout.gather(w)
    assert layout.nnz == int(mask.sum())
    assert torch.equal(layout.matrix(values).to_dense(), w)
    assert torch.equal(layout.transpose_matrix(values).to_dense(), w.t())
    back = torch.zeros_like(w)
    layout.scatter(values, back)
    assert torch.equal(back, w)


@pytest.mark.parametrize("density", [0.3, 0.05, 0.01])
def test_gradients_equal_the_dense_gradients_at_kept_entries(density):
    g = torch.Generator().manual_seed(1)
    mask = (torch.rand(300, 100, generator=g) < density).float()
    w = torch.randn(300, 100, generator=g) * mask
    b = torch.randn(100, generator=g)
    x = torch.randn(60, 300, generator=g)
    upstream = torch.randn(60, 100, generator=g)

    xd, wd, bd = (t.clone().requires_grad_(True) for t in (x, w, b))
    (xd @ wd + bd).mul(upstream).sum().backward()

    layout = SparseLayout.from_mask(mask)
    xs, bs = x.clone().requires_grad_(True), b.clone().requires_grad_(True)
    values = layout.gather(w).requires_grad_(True)
    y = sparse_linear(xs.unsqueeze(0), values, bs.unsqueeze(0), SparseBlock([0], [layout]))[0]
    torch.testing.assert_close(y, (x @ w + b), rtol=1e-5, atol=1e-5)
    y.mul(upstream).sum().backward()
    torch.testing.assert_close(values.grad, layout.gather(wd.grad), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(xs.grad, xd.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bs.grad, bd.grad, rtol=1e-5, atol=1e-5)


def _kept_difference(a, b, masks) -> torch.Tensor:
    return torch.cat([(x - y).abs()[m > 0] for x, y, m in zip(a, b, masks, strict=True)])


@pytest.mark.parametrize("density", [0.2, 0.05, 0.012])
def test_sparse_training_trains_the_dense_network(density, tiny_data, device):
    """Over 200 iterations the sparse path stays as close to the dense path as a dense run
    whose fc1 start values moved by one ulp: the paths differ by rounding only (Adam turns a
    rounding difference at a near-zero gradient into a step of up to lr, either way)."""
    seeds = [0, 1, 2]
    protocol = Protocol(iterations=ITERATIONS, eval_every=50)
    dense = train_population(
        _lottery_members(seeds, [density] * 3, device), tiny_data, protocol, seeds
    )
    pop = _lottery_members(seeds, [density] * 3, device)
    sparse = train_population(pop, tiny_data, protocol, seeds, sparse=[(0, 1)] * 3)
    nudged_pop = _lottery_members(seeds, [density] * 3, device)
    w1 = nudged_pop.weights[0]
    nudged_pop.weights[0] = torch.nextafter(w1, torch.ones_like(w1)) * nudged_pop.masks[0]
    nudged = train_population(nudged_pop, tiny_data, protocol, seeds)

    for ws, m in zip(sparse.final_weights, pop.masks, strict=True):
        assert not ws[m == 0].any()  # pruned entries exactly zero
    apart = _kept_difference(sparse.final_weights, dense.final_weights, pop.masks)
    noise = _kept_difference(nudged.final_weights, dense.final_weights, pop.masks)
    assert apart.max() < 2 * protocol.lr
    assert apart.mean() <= 3 * max(float(noise.mean()), 1e-8)
    val_apart = (sparse.val_loss - dense.val_loss).abs().max()
    assert val_apart <= 3 * max(float((nudged.val_loss - dense.val_loss).abs().max()), 1e-6)
    torch.testing.assert_close(sparse.test_accuracy, dense.test_accuracy, rtol=0, atol=0.011)
    assert sparse.val_loss[0, -1] < sparse.val_loss[0, 0]  # it learned
    assert not torch.equal(sparse.final_weights[0], dense.final_weights[0])  # other arithmetic


def test_a_sparse_member_alone_equals_it_beside_dense_and_sparse_companions(tiny_data, device):
    protocol = Protocol(iterations=ITERATIONS, eval_every=50)
    alone = train_population(
        _lottery_members([0], [0.05], device), tiny_data, protocol, [0], sparse=[(0, 1)]
    )
    seeds, densities = [3, 0, 1, 4], [0.6, 0.05, 0.1, 0.05]
    plans = [(), (0, 1), (0,), (0, 1)]
    mixed = train_population(
        _lottery_members(seeds, densities, device), tiny_data, protocol, seeds, sparse=plans
    )
    for a, b in zip(alone.final_weights, mixed.final_weights, strict=True):
        assert torch.equal(a[0], b[1])
    for field in ("early_stop_iteration", "best_val_loss", "test_accuracy", "final_test_accuracy"):
        assert torch.equal(getattr(alone, field)[0], getattr(mixed, field)[1]), field
    assert torch.equal(alone.val_loss[0], mixed.val_loss[1])
    # the dense companion is computed as it would be in an all-dense population
    dense = train_population(_lottery_members([3], [0.6], device), tiny_data, protocol, [3])
    for a, b in zip(dense.final_weights, mixed.final_weights, strict=True):
        assert torch.equal(a[0], b[0])


def test_a_stopped_sparse_population_resumes_bit_for_bit(tiny_data, device, tmp_path):
    protocol = Protocol(iterations=ITERATIONS, eval_every=50)
    seeds, plans = [0, 1], [(0, 1), ()]
    whole = train_population(
        _lottery_members(seeds, [0.05, 0.5], device), tiny_data, protocol, seeds, sparse=plans
    )
    checkpoint = Checkpoint(tmp_path / "c.pt", "f", every_s=0.0, deadline=0.0)
    with pytest.raises(DeadlineReached):
        train_population(
            _lottery_members(seeds, [0.05, 0.5], device),
            tiny_data,
            protocol,
            seeds,
            sparse=plans,
            checkpoint=checkpoint,
        )
    resumed = train_population(
        _lottery_members(seeds, [0.05, 0.5], device),
        tiny_data,
        protocol,
        seeds,
        sparse=plans,
        checkpoint=Checkpoint(tmp_path / "c.pt", "f"),
    )
    for a, b in zip(whole.final_weights, resumed.final_weights, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(whole.val_loss, resumed.val_loss)
    assert torch.equal(whole.test_accuracy, resumed.test_accuracy)


def test_only_zero_valued_linear_layers_run_sparse():
    pop = _lottery_members([0], [0.1])
    frozen = [w.clone() for w in pop.weights]
    frozen[0][0][pop.masks[0][0] == 0] = 0.5  # a frozen non-zero value (mask-0 "freeze")
    with pytest.raises(ValueError, match="pruned weights are not all zero"):
        SparseMembers(FC, frozen, pop.masks, [(0,)])
    conv = get_architecture("conv2")
    w = [torch.zeros(1, *layer.shape) for layer in conv.layers]
    with pytest.raises(ValueError, match="only linear run sparse"):
        SparseMembers(conv, w, [torch.ones_like(t) for t in w], [(0,)])
    with pytest.raises(ValueError, match="one sparse plan per member"):
        train_population(pop, None, Protocol(iterations=1), [0], sparse=[(), ()])


def test_sparse_chains_keep_the_keys_of_their_dense_rounds_and_name_their_sparse_layers():
    from lth.experiments import Chain, resolve_settings

    dense, sparse = Chain("fc", 0), Chain("fc", 0, sparse=True)
    first = next(r for r in range(30) if 0.8**r < SPARSE_BELOW)
    for r in range(first):  # rounds that run dense keep their keys: records stay found
        assert sparse.run_key(r) == dense.run_key(r)
        assert "sparse" not in sparse.run_spec(r)
    assert sparse.run_spec(first)["sparse"] == ["fc1", "fc2"]
    assert sparse.run_key(first) != dense.run_key(first)
    assert sparse.sparse_plan(first) == (0, 1)
    assert Chain("fc", 0, mask0="freeze_init", sparse=True).sparse_layers(first) == ()
    assert all(c.sparse for c in resolve_settings("paper").chains())
    assert not any(c.sparse for c in resolve_settings("mid").chains())


def test_a_sparse_sweep_records_and_verifies_its_sparse_rounds(tmp_path):
    from lth.experiments import Chain, run_sweep
    from lth.store import RunStore, StateCache
    from lth.verify import verify

    first = next(r for r in range(30) if 0.8**r < SPARSE_BELOW)
    store, cache = RunStore(tmp_path / "runs"), StateCache(tmp_path / "cache")
    chains = [Chain("fc", 0, iterations=40, sparse=True), Chain("fc", 1, iterations=40)]
    run_sweep(
        chains, first, store=store, cache=cache, progress=False, log=lambda m: None, data=TINY
    )
    record = store.get(chains[0].run_key(first))
    assert record["spec"]["sparse"] == ["fc1", "fc2"]
    assert record["result"]["test_accuracy"] > 0.2
    # one population while both run dense, one per sparse plan from the first sparse round
    sizes = [
        [store.get(c.run_key(r))["provenance"]["population_size"] for c in chains]
        for r in (first - 1, first)
    ]
    assert sizes == [[2, 2], [1, 1]]
    keys = [chains[0].run_key(first), chains[1].run_key(first)]
    verdicts = verify(
        keys, store=store, cache=StateCache(tmp_path / "fresh"), report=print, data=TINY
    )
    assert [v.status for v in verdicts] == ["ok", "ok"]


def test_a_round_trains_one_sparse_plan_per_population_after_checkpointed_ones(tmp_path):
    """Dense and sparse members apart (a mixed population trains slower than its two halves
    one after the other), but a population a stopped sitting checkpointed resumes as it was,
    mixed or not."""
    from lth.experiments import Chain
    from lth.pruning import population_checkpoint, populations
    from lth.store import StateCache

    first = next(r for r in range(30) if 0.8**r < SPARSE_BELOW)
    sparse = [Chain("fc", s, sparse=True) for s in range(3)]
    dense = [Chain("fc", s, mask0="freeze_init", sparse=True) for s in range(3)]
    listed = [c for pair in zip(sparse, dense, strict=True) for c in pair]  # as targets list them
    members = {c.run_key(first): c for c in listed}
    cache = StateCache(tmp_path)

    def chains_of(groups):
        return [[chain for _, chain in group] for group in groups]

    expected = [sparse[:2], sparse[2:], dense[:2], dense[2:]]
    assert chains_of(populations(members, first, 2, cache)) == expected
    assert chains_of(populations(members, first, None, cache)) == [sparse, dense]
    stopped = [sparse[2].run_key(first), dense[0].run_key(first)]
    checkpoint = population_checkpoint(cache, stopped, 300.0, None)
    assert chains_of(populations(members, first, 2, cache)) == expected  # nothing saved yet
    checkpoint.path.write_bytes(b"saved")
    groups = populations(members, first, 2, cache)
    assert [key for key, _ in groups[0]] == stopped
    assert chains_of(groups[1:]) == [sparse[:2], dense[1:]]
    # a checkpoint of runs not all in this round's set is left alone
    alone = {stopped[0]: sparse[2]}
    assert populations(alone, first, 2, cache) == [[(stopped[0], sparse[2])]]

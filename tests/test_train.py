"""The training protocol (PAPER.md section 3) and frozen pruned weights (section 7)."""

from __future__ import annotations

import pytest
import torch

from lth.nets import Population, get_architecture, initial_weights
from lth.train import PROTOCOLS, BatchOrder, Protocol, train_population

FC = get_architecture("fc")


def masked_population(seeds, mask_seed: int = 0) -> tuple[Population, list[torch.Tensor]]:
    """Members with random ~50% masks whose pruned entries hold NON-zero values (a frozen
    mask-0 value such as "freeze at init"). Returns the population and its start weights."""
    g = torch.Generator().manual_seed(mask_seed)
    weights = [initial_weights(FC, s) for s in seeds]
    masks = [
        [(torch.rand(layer.shape, generator=g) < 0.5).float() for layer in FC.layers] for _ in seeds
    ]
    pop = Population.from_members(FC, weights, masks)
    assert all(bool((w[m == 0] != 0).all()) for w, m in zip(pop.weights, pop.masks, strict=True))
    return pop, [w.clone() for w in pop.weights]


def test_pruned_weights_never_move(tiny_data):
    pop, start = masked_population([0, 1])
    result = train_population(pop, tiny_data, Protocol(iterations=50, eval_every=25), [0, 1])
    for w0, w1, m in zip(start, result.final_weights, pop.masks, strict=True):
        assert torch.equal(w1[m == 0], w0[m == 0])  # bit for bit
        assert (w1[m == 1] != w0[m == 1]).float().mean() > 0.5  # the kept ones trained


def test_population_weights_are_not_modified_by_training(tiny_data):
    pop, start = masked_population([0])
    train_population(pop, tiny_data, Protocol(iterations=5, eval_every=5), [0])
    assert all(torch.equal(a, b) for a, b in zip(pop.weights, start, strict=True))


def test_training_is_deterministic(tiny_data):
    protocol = Protocol(iterations=20, eval_every=10)
    results = []
    for _ in range(2):
        pop, _ = masked_population([3, 4])
        results.append(train_population(pop, tiny_data, protocol, [3, 4]))
    a, b = results
    assert all(torch.equal(x, y) for x, y in zip(a.final_weights, b.final_weights, strict=True))
    assert torch.equal(a.val_loss, b.val_loss)
    assert torch.equal(a.test_accuracy, b.test_accuracy)
    assert torch.equal(a.early_stop_iteration, b.early_stop_iteration)


def test_training_lowers_the_loss_and_reports_a_valid_early_stop(tiny_data):
    protocol = Protocol(iterations=50, eval_every=20)
    pop, _ = masked_population([0])
    result = train_population(pop, tiny_data, protocol, [0])
    assert result.val_iterations == [0, 20, 40, 50]
    assert result.val_loss.shape == (1, 4)
    assert result.val_loss[0, -1] < 0.5 * result.val_loss[0, 0]
    assert int(result.early_stop_iteration[0]) in protocol.evaluation_points()
    assert result.best_val_loss[0] == result.val_loss[0].min()
    assert 0.0 <= float(result.test_accuracy[0]) <= 1.0
    assert 0.0 <= float(result.final_test_accuracy[0]) <= 1.0
    assert result.n_test == len(tiny_data.test)


def test_order_seeds_must_match_the_members(tiny_data):
    pop, _ = masked_population([0, 1])
    with pytest.raises(ValueError, match="one order seed per member"):
        train_population(pop, tiny_data, Protocol(iterations=1), [0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"iterations": 0},
        {"iterations": 10, "lr": 0.0},
        {"iterations": 10, "lr": -1e-3},
        {"iterations": 10, "batch_size": 0},
        {"iterations": 10, "eval_every": 0},
    ],
)
def test_protocol_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        Protocol(**kwargs)


def test_fc_protocol_is_the_papers():
    fc = PROTOCOLS["fc"]
    assert (fc.iterations, fc.batch_size, fc.lr, fc.eval_every) == (50_380, 60, 1.2e-3, 100)
    assert (fc.betas, fc.eps) == ((0.9, 0.999), 1e-8)


@pytest.mark.parametrize(
    "iterations, expected",
    [(250, [0, 100, 200, 250]), (200, [0, 100, 200]), (50, [0, 50]), (1, [0, 1])],
)
def test_evaluation_points(iterations, expected):
    assert Protocol(iterations=iterations, eval_every=100).evaluation_points() == expected


def test_batch_order_shares_orders_by_seed():
    order = BatchOrder(n=25, batch_size=10, order_seeds=[3, 1, 3], device="cpu")
    for iteration in range(4):
        idx = order.indices(iteration)
        assert idx.shape == (3, 10)
        assert torch.equal(idx[0], idx[2])
        assert not torch.equal(idx[0], idx[1])


def test_batch_order_epochs_are_permutations_with_last_partial_batch_dropped():
    order = BatchOrder(n=25, batch_size=10, order_seeds=[0], device="cpu")
    assert order.per_epoch == 2
    epochs = [torch.cat([order.indices(e * 2 + s)[0] for s in range(2)]) for e in range(3)]
    for epoch in epochs:
        assert len(set(epoch.tolist())) == 20  # no repeats within an epoch
        assert 0 <= int(epoch.min()) and int(epoch.max()) < 25
    assert not torch.equal(epochs[0], epochs[1])  # a fresh permutation every epoch
    # the same seed gives the same sequence of batches
    again = BatchOrder(n=25, batch_size=10, order_seeds=[0], device="cpu")
    assert torch.equal(torch.cat([again.indices(i)[0] for i in range(2)]), epochs[0])


def test_batch_order_covers_every_example_when_batches_divide_n():
    order = BatchOrder(n=30, batch_size=10, order_seeds=[7], device="cpu")
    seen = torch.cat([order.indices(i)[0] for i in range(3)])
    assert sorted(seen.tolist()) == list(range(30))


def test_batch_larger_than_dataset_is_rejected():
    with pytest.raises(ValueError):
        BatchOrder(n=5, batch_size=10, order_seeds=[0], device="cpu")

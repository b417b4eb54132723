"""The training protocol (book/spec.md section 3) and frozen pruned weights (section 7)."""

from __future__ import annotations

import pytest
import torch
from conftest import make_tiny_cifar

from lth.data import Dataset
from lth.nets import Architecture, Layer, Population, get_architecture, initial_weights
from lth.train import PRECISIONS, PROTOCOLS, BatchOrder, Protocol, dataset_on, train_population

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
    "name, iterations, lr",
    [("conv2", 20_250, 2e-4), ("conv4", 25_500, 3e-4), ("conv6", 30_000, 3e-4)],
)
def test_conv_protocols_are_the_papers(name, iterations, lr):
    p = PROTOCOLS[name]
    assert (p.iterations, p.batch_size, p.lr, p.eval_every) == (iterations, 60, lr, 100)
    assert (p.betas, p.eps) == ((0.9, 0.999), 1e-8)


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


# ----------------------------------------------------------------------------- conv nets, precision

#: A narrow Conv-4 (book/spec.md section 2 with 8/16 channels and fc32): the same layer kinds, pools
#: and flatten as the paper's conv nets at a few percent of the cost.
SMALL_CONV = Architecture(
    name="small-conv4",
    dataset="cifar10",
    input_shape=(3, 32, 32),
    layers=(
        Layer("conv1", "conv", (8, 3, 3, 3), 0.1),
        Layer("conv2", "conv", (8, 8, 3, 3), 0.1, pool_after=True),
        Layer("conv3", "conv", (16, 8, 3, 3), 0.1),
        Layer("conv4", "conv", (16, 16, 3, 3), 0.1, pool_after=True),
        Layer("fc1", "linear", (16 * 8 * 8, 32), 0.2),
        Layer("fc2", "linear", (32, 32), 0.2),
        Layer("fc3", "linear", (32, 10), 0.1),
    ),
    protocol=Protocol(iterations=100, lr=3e-4),
)


@pytest.fixture(scope="module")
def tiny_cifar() -> Dataset:
    """300 / 60 / 60 CIFAR-shaped images (see conftest.make_tiny_cifar)."""
    return make_tiny_cifar(300, 60, 60, seed=99)


def conv_population(seeds, arch=SMALL_CONV) -> Population:
    g = torch.Generator().manual_seed(1)
    weights = [initial_weights(arch, s) for s in seeds]
    masks = [
        [(torch.rand(layer.shape, generator=g) < 0.8).float() for layer in arch.layers]
        for _ in seeds
    ]
    return Population.from_members(arch, weights, masks)


def test_conv_pruned_weights_never_move(tiny_cifar):
    pop = conv_population([0, 1])
    result = train_population(pop, tiny_cifar, Protocol(iterations=5, batch_size=20), [0, 1])
    for w0, w1, m in zip(pop.weights, result.final_weights, pop.masks, strict=True):
        assert torch.equal(w1[m == 0], w0[m == 0])  # bit for bit
        # the kept ones trained (fc1 rows whose input is a dead ReLU in 5 steps do not move)
        assert (w1[m == 1] != w0[m == 1]).float().mean() > 0.3


@pytest.mark.parametrize("net", ["conv", "fc"])
def test_bf16_training_lowers_the_loss(net, tiny_cifar, tiny_data):
    if net == "conv":
        pop, data, protocol = conv_population([0]), tiny_cifar, Protocol(40, 20, 3e-3, 20)
    else:
        pop, data, protocol = masked_population([0])[0], tiny_data, Protocol(50, eval_every=25)
    result = train_population(pop, data, protocol, [0], precision="bf16")
    assert result.val_loss[0, -1] < 0.75 * result.val_loss[0, 0], result.val_loss
    assert all(w.dtype == torch.float32 for w in result.final_weights)  # master weights fp32
    fp32 = train_population(pop, data, protocol, [0], precision="fp32")
    assert not torch.equal(result.final_weights[0], fp32.final_weights[0])  # bf16 really used


def test_unknown_precision_lists_accepted_ones(tiny_data):
    assert list(PRECISIONS) == ["fp32", "bf16"]
    pop, _ = masked_population([0])
    with pytest.raises(ValueError, match="accepted: fp32, bf16"):
        train_population(pop, tiny_data, Protocol(iterations=1), [0], precision="fp16")


def test_dataset_already_on_the_device_is_not_copied(tiny_data):
    assert dataset_on(tiny_data, torch.device("cpu")) is tiny_data

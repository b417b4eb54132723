"""Member independence, bit for bit (DESIGN.md, "The population engine"; issue "Records you can
trust"): a member's every result is the same whether it trains alone or beside any companions,
on the same machine type and thread count, in fp32 and bf16."""

from __future__ import annotations

import time

import pytest
import torch
from conftest import make_tiny_cifar

from lth.data import Dataset
from lth.nets import Population, get_architecture, initial_weights
from lth.provenance import native_bf16
from lth.supermask import LearnedSupermask, train_learned_supermasks
from lth.train import Checkpoint, DeadlineReached, Protocol, train_population

#: The member under test (seed 0) and its companions: a population of 3 with it in the middle,
#: and one of 8 with other seeds (two of them sharing the member's batch order) around it.
POPULATIONS = ([0], [5, 0, 7], [3, 1, 4, 1, 5, 9, 0, 6])
ITERATIONS = 300
#: Conv2 on batches of 1 from 40 training images: 60 steps cross an epoch boundary (a new data
#: order) and hold four evaluations; 300 cost 390 s in bf16 on a CPU without AVX-512 bf16.
CONV_ITERATIONS = 60


def _length(iterations: int, precision: str, least: int) -> int:
    """``iterations``, or half of them (at least ``least``) for bf16 on a CPU without native
    bf16, where torch emulates it some 100 times slower than fp32: the property under test is
    the same, and the fp32 cases keep the full length."""
    return iterations if precision == "fp32" or native_bf16() else max(least, iterations // 2)


def _members(net: str, seeds: list[int]) -> Population:
    """Members with seeded ~80% masks whose pruned entries hold their (non-zero) init values,
    like the mask-0 action "freeze at init": the hardest case, every entry matters."""
    arch = get_architecture(net)
    weights, masks = [], []
    for seed in seeds:
        g = torch.Generator().manual_seed(1000 + seed)
        weights.append(initial_weights(arch, seed))
        masks.append(
            [(torch.rand(layer.shape, generator=g) < 0.8).float() for layer in arch.layers]
        )
    return Population.from_members(arch, weights, masks)


@pytest.fixture(scope="module")
def tiny_cifar_conv2() -> Dataset:
    """40 / 20 / 20 CIFAR-shaped images with class templates, for the real Conv2 shapes."""
    return make_tiny_cifar(40, 20, 20, seed=7)


def _assert_member_equal(alone, j: int, other, i: int) -> None:
    """Every field of member ``j`` of ``alone`` equals member ``i`` of ``other``, bit for bit."""
    for a, b in zip(alone.final_weights, other.final_weights, strict=True):
        assert torch.equal(a[j], b[i])
    for field in ("early_stop_iteration", "best_val_loss", "test_accuracy", "final_test_accuracy"):
        assert torch.equal(getattr(alone, field)[j], getattr(other, field)[i]), field
    assert torch.equal(alone.val_loss[j], other.val_loss[i])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("net", ["fc", "conv2"])
def test_member_alone_equals_member_in_populations_of_3_and_8(
    net, precision, tiny_data, tiny_cifar_conv2, device
):
    if net == "fc":
        data = tiny_data
        protocol = Protocol(iterations=_length(ITERATIONS, precision, 150), eval_every=50)
    else:  # the real Conv2 (4.3 M weights) on batches of 1: its shapes at 1/60 of the cost
        iterations = _length(CONV_ITERATIONS, precision, 42)  # past the epoch boundary at 40
        data, protocol = tiny_cifar_conv2, Protocol(iterations, 1, 2e-4, 20)
    results = {
        tuple(seeds): train_population(
            _members(net, seeds).to(device), data, protocol, seeds, precision=precision
        )
        for seeds in POPULATIONS
    }
    alone = results[(0,)]
    for seeds in POPULATIONS[1:]:
        _assert_member_equal(alone, 0, results[tuple(seeds)], seeds.index(0))
    # the member really trained, and its companions are other networks
    assert alone.val_loss[0, -1] < alone.val_loss[0, 0]
    trio = results[tuple(POPULATIONS[1])]
    assert not torch.equal(trio.final_weights[0][0], trio.final_weights[0][1])


def test_member_independence_holds_with_two_threads(tiny_data):
    """The engine's default on these machines is 2 threads: a member's products and optimiser
    steps must split between the threads the same way whatever K is."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        protocol = Protocol(iterations=100, eval_every=50)
        alone = train_population(_members("fc", [0]), tiny_data, protocol, [0])
        eight = POPULATIONS[2]
        crowd = train_population(_members("fc", eight), tiny_data, protocol, eight)
    finally:
        torch.set_num_threads(previous)
    _assert_member_equal(alone, 0, crowd, eight.index(0))


def test_learned_supermask_alone_equals_it_in_a_population(tiny_data):
    """Learned supermasks (book/spec.md section 9) too: every result of a run is the same alone
    and beside runs of other seeds, treatments and DWR settings."""
    run = LearnedSupermask("fc", 0, "init", True, batch_size=60, epochs=3)
    others = [
        LearnedSupermask("fc", 1, "signed_constant", False, batch_size=60, epochs=3),
        LearnedSupermask("fc", 0, "init", False, batch_size=60, epochs=3),
    ]
    alone = train_learned_supermasks([run], tiny_data)
    trio = train_learned_supermasks([others[0], run, others[1]], tiny_data)
    for field in (
        "test_accuracy",
        "test_accuracy_samples",
        "percent_kept",
        "expected_percent_kept",
        "layer_kept",
        "val_accuracy",
        "val_loss",
    ):
        assert torch.equal(getattr(alone, field)[0], getattr(trio, field)[1]), field


# ----------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_stopped_at_deadlines_and_resumed_equals_training_without_stops(
    precision, tiny_data, tmp_path
):
    """A population stopped mid-training at a deadline (twice) and resumed from its
    checkpoint ends, bit for bit, as one trained without a stop (issue "The paper at full
    scale": a session that stops in the middle of a round loses at most a few minutes)."""
    seeds = [5, 0, 7]
    protocol = Protocol(iterations=_length(ITERATIONS, precision, 150), eval_every=50)
    whole = train_population(_members("fc", seeds), tiny_data, protocol, seeds, precision=precision)
    checkpoint = Checkpoint(tmp_path / "ckpt.pt", "population-a", deadline=time.time())
    stops, sittings = [], []
    for attempt in range(3):
        checkpoint.deadline = time.time() if attempt < 2 else None  # two sessions stop early
        began = time.perf_counter()
        try:
            resumed = train_population(
                _members("fc", seeds), tiny_data, protocol, seeds, precision=precision,
                checkpoint=checkpoint,
            )  # fmt: skip
            elapsed = checkpoint.elapsed_s()
            sittings.append(time.perf_counter() - began)
            break
        except DeadlineReached as stop:
            sittings.append(time.perf_counter() - began)
            stops.append(str(stop))
    assert stops == ["training: stopped at iteration 50", "training: stopped at iteration 100"]
    # the training time the records state is every sitting's, not only the last one's
    assert sittings[-1] < elapsed <= sum(sittings)
    assert not checkpoint.path.exists()  # removed once training completed
    for i in range(len(seeds)):
        _assert_member_equal(whole, i, resumed, i)
    # another population's checkpoint is never resumed
    other = Checkpoint(tmp_path / "ckpt.pt", "population-b")
    checkpoint.deadline = time.time()
    with pytest.raises(DeadlineReached):
        train_population(_members("fc", seeds), tiny_data, protocol, seeds, checkpoint=checkpoint)
    assert other.load() is None and checkpoint.load() is not None


def test_member_independence_holds_for_single_row_batches(tiny_data):
    """A batch of one row makes every linear layer a matrix-vector product, whose rounding
    depended on where the member's slice lies in memory (odd members differed); the engine
    pads such a batch to two rows."""
    protocol = Protocol(iterations=100, batch_size=1, eval_every=50)
    alone = train_population(_members("fc", [0]), tiny_data, protocol, [0])
    trio = train_population(_members("fc", POPULATIONS[1]), tiny_data, protocol, POPULATIONS[1])
    _assert_member_equal(alone, 0, trio, 1)

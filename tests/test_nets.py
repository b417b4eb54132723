"""Networks and populations (PAPER.md section 2)."""

from __future__ import annotations

import math

import pytest
import torch

from lth.nets import (
    Population,
    get_architecture,
    glorot_normal_truncated,
    initial_weights,
    percent_remaining,
    seeded_generator,
)
from lth.train import Protocol, train_population

FC = get_architecture("fc")


def test_fc_architecture_matches_the_paper():
    assert FC.num_weights == 266_200
    assert [layer.shape for layer in FC.layers] == [(784, 300), (300, 100), (100, 10)]
    assert [layer.rate for layer in FC.layers] == [0.2, 0.2, 0.1]
    assert FC.input_shape == (1, 28, 28)


def test_unknown_network_lists_accepted_names():
    with pytest.raises(ValueError, match="accepted: fc"):
        get_architecture("lenet")


def test_percent_remaining_of_a_dense_mask_is_100():
    assert percent_remaining(FC, [torch.ones(layer.shape) for layer in FC.layers]) == 100.0


def test_glorot_normal_truncated_std_and_bounds():
    layer = FC.layers[0]
    w = glorot_normal_truncated(layer, torch.Generator().manual_seed(0))
    target = math.sqrt(2.0 / (784 + 300))
    # 235,200 samples: the standard deviation after truncation is the Glorot one
    assert w.std().item() == pytest.approx(target, rel=0.01)
    assert w.mean().item() == pytest.approx(0.0, abs=0.01 * target)
    # TensorFlow's glorot_normal truncates at 2 standard deviations of the *underlying*
    # normal, whose std is target / 0.8796 (the std of N(0, 1) cut at +-2).
    bound = 2.0 * target / 0.87962566103423978
    assert w.abs().max().item() <= bound
    assert w.abs().max().item() > 0.95 * bound  # really reaches out to the cut


def test_initial_weights_depend_only_on_the_seed():
    a, b, c = initial_weights(FC, 0), initial_weights(FC, 0), initial_weights(FC, 1)
    assert [w.shape for w in a] == [torch.Size(layer.shape) for layer in FC.layers]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not any(torch.equal(x, y) for x, y in zip(a, c, strict=True))


def test_seeded_generator_is_stable_and_purpose_specific():
    def draw(*parts):
        return torch.rand(4, generator=seeded_generator(*parts))

    assert torch.equal(draw(0, "init"), draw(0, "init"))
    assert not torch.equal(draw(0, "init"), draw(0, "batch-order"))


def make_population(seeds) -> Population:
    weights = [initial_weights(FC, s) for s in seeds]
    masks = [[torch.ones(layer.shape) for layer in FC.layers] for _ in seeds]
    return Population.from_members(FC, weights, masks)


def test_population_stacks_members_with_zero_biases():
    pop = make_population([0, 1])
    assert pop.size == 2
    assert [tuple(w.shape) for w in pop.weights] == [(2, 784, 300), (2, 300, 100), (2, 100, 10)]
    assert [tuple(b.shape) for b in pop.biases] == [(2, 300), (2, 100), (2, 10)]
    assert all(bool((b == 0).all()) for b in pop.biases)
    assert torch.equal(pop.weights[0][1], initial_weights(FC, 1)[0])


def test_forward_with_shared_batch_equals_repeated_batch():
    pop = make_population([0, 1, 2])
    g = torch.Generator().manual_seed(9)
    pop.biases = [torch.randn(b.shape, generator=g) for b in pop.biases]
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    shared = pop.forward(x)
    repeated = pop.forward(x.expand(3, *x.shape))
    assert shared.shape == (3, 5, 10)
    torch.testing.assert_close(shared, repeated, atol=1e-5, rtol=1e-5)
    # and each member's logits are those of a one-member population
    alone = make_population([2])
    alone.biases = [b[2:3] for b in pop.biases]
    torch.testing.assert_close(shared[2:3], alone.forward(x), atol=1e-5, rtol=1e-5)


def test_members_train_independently(tiny_data):
    protocol = Protocol(iterations=30, eval_every=10)
    trio, solo = make_population([5, 0, 7]), make_population([0])
    r3 = train_population(trio, tiny_data, protocol, [5, 0, 7])
    r1 = train_population(solo, tiny_data, protocol, [0])
    # Member 1 of the trio (seed 0) must match the lone seed-0 network. Not bitwise: batched
    # GEMMs of different K may block their sums differently, so allow float32 rounding.
    for w3, w1 in zip(r3.final_weights, r1.final_weights, strict=True):
        torch.testing.assert_close(w3[1], w1[0], atol=1e-5, rtol=0)
    assert r3.test_accuracy[1] == r1.test_accuracy[0]
    assert r3.early_stop_iteration[1] == r1.early_stop_iteration[0]
    # the other members really are different networks
    assert not torch.allclose(r3.final_weights[0][0], r3.final_weights[0][1])

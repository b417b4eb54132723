"""Networks and populations (book/spec.md section 2)."""

from __future__ import annotations

import math

import pytest
import torch

from lth.actions import MASK0_ACTIONS, MASK1_ACTIONS
from lth.criteria import CRITERIA, number_to_keep, prune_layer
from lth.nets import (
    Architecture,
    Layer,
    Population,
    Protocol,
    get_architecture,
    glorot_normal_truncated,
    initial_weights,
    percent_remaining,
    seeded_generator,
)

FC = get_architecture("fc")


def test_fc_architecture_matches_the_paper():
    assert FC.num_weights == 266_200
    assert [layer.shape for layer in FC.layers] == [(784, 300), (300, 100), (100, 10)]
    assert [layer.rate for layer in FC.layers] == [0.2, 0.2, 0.1]
    assert FC.input_shape == (1, 28, 28)


def test_unknown_network_lists_accepted_names():
    with pytest.raises(ValueError, match="accepted: fc, conv2, conv4, conv6"):
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


# ----------------------------------------------------------------------------- conv nets

CONV_NETS = {  # book/spec.md section 2 (weights) and section 4 (per-layer rates)
    "conv2": (4_300_992, [64, 64], 16 * 16 * 64, 0.1),
    "conv4": (2_425_024, [64, 64, 128, 128], 8 * 8 * 128, 0.1),
    "conv6": (2_261_184, [64, 64, 128, 128, 256, 256], 4 * 4 * 256, 0.15),
}


@pytest.mark.parametrize("name", list(CONV_NETS))
def test_conv_architectures_match_the_paper(name):
    arch = get_architecture(name)
    count, widths, flat, conv_rate = CONV_NETS[name]
    assert arch.num_weights == count
    assert (arch.dataset, arch.input_shape, arch.num_classes) == ("cifar10", (3, 32, 32), 10)
    channels = [3, *widths]
    expected = [(c_out, c_in, 3, 3) for c_in, c_out in zip(channels, widths, strict=False)]
    expected += [(flat, 256), (256, 256), (256, 10)]
    assert [layer.shape for layer in arch.layers] == expected
    assert [layer.kind for layer in arch.layers] == ["conv"] * len(widths) + ["linear"] * 3
    assert [layer.rate for layer in arch.layers] == [conv_rate] * len(widths) + [0.2, 0.2, 0.1]
    # a 2x2 max-pool after every second conv layer, none after the fc layers
    pools = [i % 2 == 1 for i in range(len(widths))] + [False] * 3
    assert [layer.pool_after for layer in arch.layers] == pools
    assert [layer.num_outputs for layer in arch.layers] == [*widths, 256, 256, 10]


def test_conv_fans_include_the_kernel_area():
    conv1, conv2 = get_architecture("conv2").layers[:2]
    assert conv1.fans == (3 * 9, 64 * 9)
    assert conv2.fans == (64 * 9, 64 * 9)
    w = glorot_normal_truncated(conv2, torch.Generator().manual_seed(0))
    assert w.shape == (64, 64, 3, 3)
    assert w.std().item() == pytest.approx(math.sqrt(2.0 / (2 * 64 * 9)), rel=0.02)


def test_forward_macs_give_the_papers_flops_per_sample():
    # book/spec.md section 11: a training step costs about 1.6 MFLOP (FC), 263 MFLOP (Conv2) and
    # 0.9 GFLOP (Conv6) per sample; 3 x 2 x forward multiply-accumulates.
    assert 6 * FC.forward_macs == 6 * 266_200
    assert 6 * get_architecture("conv2").forward_macs == pytest.approx(263e6, rel=0.002)
    assert 6 * get_architecture("conv6").forward_macs == pytest.approx(0.92e9, rel=0.01)


def test_architecture_rejects_layers_that_do_not_fit():
    conv = Layer("conv1", "conv", (8, 3, 3, 3), 0.1, pool_after=True)
    with pytest.raises(ValueError, match="cannot take"):  # 8 x 16 x 16 = 2048 inputs, not 2000
        Architecture(
            "bad",
            "cifar10",
            (3, 32, 32),
            (conv, Layer("fc1", "linear", (2000, 10), 0.1)),
            Protocol(1),
        )
    with pytest.raises(ValueError, match="before linear"):
        Architecture(
            "bad",
            "cifar10",
            (3, 32, 32),
            (Layer("fc1", "linear", (3072, 27), 0.1), Layer("c", "conv", (10, 3, 3, 3), 0.1)),
            Protocol(1),
        )


def conv_population(arch, seeds) -> Population:
    weights = [initial_weights(arch, s) for s in seeds]
    masks = [[torch.ones(layer.shape) for layer in arch.layers] for _ in seeds]
    pop = Population.from_members(arch, weights, masks)
    g = torch.Generator().manual_seed(3)
    pop.biases = [0.1 * torch.randn(b.shape, generator=g) for b in pop.biases]
    return pop


class Permute(torch.nn.Module):
    def __init__(self, *dims: int):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


def reference_network(arch, weights, biases) -> torch.nn.Sequential:
    """One member as a plain torch.nn network: checks pooling, padding and flatten order."""
    modules = []
    for i, (layer, w, b) in enumerate(zip(arch.layers, weights, biases, strict=True)):
        if layer.kind == "conv":
            conv = torch.nn.Conv2d(layer.shape[1], layer.shape[0], 3, padding=1)
            conv.weight.data, conv.bias.data = w.clone(), b.clone()
            modules += [conv, torch.nn.ReLU()]
            if layer.pool_after:
                modules.append(torch.nn.MaxPool2d(2))
        else:
            if i > 0 and arch.layers[i - 1].kind == "conv":  # flatten (H, W, C), as in TF
                modules.append(Permute(0, 2, 3, 1))
            if not any(isinstance(m, torch.nn.Linear) for m in modules):
                modules.append(torch.nn.Flatten())
            linear = torch.nn.Linear(*layer.shape)
            linear.weight.data, linear.bias.data = w.t().clone(), b.clone()
            modules.append(linear)
            if i < len(arch.layers) - 1:
                modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules)


@pytest.mark.parametrize("name", ["conv2", "conv4"])
def test_conv_forward_with_shared_batch_equals_repeated_batch(name):
    arch = get_architecture(name)
    pop = conv_population(arch, [0, 1])
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    shared = pop.forward(x)
    assert shared.shape == (2, 3, 10)
    torch.testing.assert_close(shared, pop.forward(x.expand(2, *x.shape)), atol=1e-5, rtol=1e-5)
    # per-member batches really are per member
    x2 = torch.rand(2, 3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(pop.forward(x2)[1], pop.forward(x2[1])[1], atol=1e-5, rtol=1e-5)
    # each member is the plain torch.nn network with its weights
    for j in range(2):
        net = reference_network(arch, [w[j] for w in pop.weights], [b[j] for b in pop.biases])
        torch.testing.assert_close(shared[j], net(x), atol=1e-5, rtol=1e-4)


def test_conv_population_stacks_members_with_zero_biases():
    arch = get_architecture("conv2")
    pop = Population.from_members(
        arch,
        [initial_weights(arch, s) for s in (0, 1)],
        [[torch.ones(layer.shape) for layer in arch.layers]] * 2,
    )
    assert [tuple(w.shape) for w in pop.weights][:2] == [(2, 64, 3, 3, 3), (2, 64, 64, 3, 3)]
    assert [tuple(b.shape) for b in pop.biases] == [(2, 64), (2, 64), (2, 256), (2, 256), (2, 10)]
    assert all(bool((b == 0).all()) for b in pop.biases)


def test_criteria_and_actions_work_on_conv_layers():
    layer = get_architecture("conv6").layers[2]  # (128, 64, 3, 3)
    g = torch.Generator().manual_seed(0)
    w_i = glorot_normal_truncated(layer, g)
    w_f = w_i + 0.05 * torch.randn(layer.shape, generator=g)
    dense = torch.ones(layer.shape)
    half = prune_layer(dense, w_i, w_f, CRITERIA["random"], layer.size // 2, g)
    for name, criterion in CRITERIA.items():
        keep = number_to_keep(int(half.sum()), layer.rate)
        mask = prune_layer(half, w_i, w_f, criterion, keep, g)
        assert mask.shape == layer.shape, name
        assert int(mask.sum()) == keep and bool((mask <= half).all()), name
    for name, mask1 in MASK1_ACTIONS.items():
        kept = mask1(w_i, half, g)
        assert kept.shape == layer.shape, name
        for name0, mask0 in MASK0_ACTIONS.items():
            assert mask0(kept, w_i, w_f, half, g).shape == layer.shape, (name, name0)

"""Tests for lth.supermask: untrained supermasks, the straight-through mask, dynamic weight
rescaling and learned supermasks (book/spec.md sections 8 and 9)."""

from __future__ import annotations

import math

import pytest
import torch

from lth import supermask as sm
from lth.actions import sigma_l
from lth.criteria import CRITERIA, prune_layerwise
from lth.nets import Population, get_architecture, initial_weights
from lth.train import accuracy

FC = get_architecture("fc")


def dense_pair(seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(w_i, w_f) for FC where w_f is w_i plus noise of 0.7 sigma_L: about a quarter of the
    signs flip, and about half of the weights grow."""
    w_i = initial_weights(FC, seed)
    g = torch.Generator().manual_seed(seed + 100)
    w_f = [w + 0.7 * sigma_l(w) * torch.randn(w.shape, generator=g) for w in w_i]
    return w_i, w_f


@pytest.mark.parametrize("name", ["large_final_same_sign", "magnitude_increase_same_sign"])
def test_same_sign_supermasks_keep_no_weight_whose_sign_flipped(name):
    """While enough weights pass the sign gate with a positive score, a sign-gated supermask
    keeps none whose sign flipped; past that point (the official code's gating gives a flipped
    weight the score 0), flipped weights come only after every passing one with score > 0."""
    w_i, w_f = dense_pair()
    flipped = [torch.sign(a) != torch.sign(b) for a, b in zip(w_i, w_f, strict=True)]
    assert all(0.15 < f.float().mean() < 0.4 for f in flipped)  # the example does flip signs
    positive = [CRITERIA[name](a, b) > 0 for a, b in zip(w_i, w_f, strict=True)]
    levels = list(range(0, 25, 2))
    masks = sm.one_shot_masks(FC, w_i, w_f, CRITERIA[name], levels, torch.Generator())
    strict_levels = 0
    for k, level in zip(levels, masks, strict=True):
        keeps = sm.one_shot_keep(FC, k)
        for m, f, pos, keep in zip(level, flipped, positive, keeps, strict=True):
            kept = m.bool()
            if keep <= int(pos.sum()):
                assert not (kept & f).any()
                strict_levels += 1
            else:
                assert kept[pos].all()
    assert strict_levels >= 10


def test_diff_sign_supermask_keeps_only_flipped_weights_while_there_are_enough():
    w_i, w_f = dense_pair()
    masks = sm.one_shot_masks(
        FC, w_i, w_f, CRITERIA["large_final_diff_sign"], [20], torch.Generator()
    )
    for m, a, b in zip(masks[0], w_i, w_f, strict=True):
        assert (torch.sign(a) != torch.sign(b))[m.bool()].all()


def test_one_shot_keep_equals_iterative_pruning_counts():
    w_i, w_f = dense_pair()
    masks = [torch.ones_like(w) for w in w_i]
    rates = [layer.rate for layer in FC.layers]
    g = torch.Generator().manual_seed(0)
    for k in range(1, 6):
        masks = prune_layerwise(masks, w_i, w_f, CRITERIA["large_final"], rates, g)
        assert sm.one_shot_keep(FC, k) == [int(m.sum()) for m in masks]
    assert sm.one_shot_keep(FC, 0) == [layer.size for layer in FC.layers]
    # 24 rounds leave 0.8^24 of each hidden layer: about 0.47%
    assert sm.one_shot_keep(FC, 24)[0] == pytest.approx(784 * 300 * 0.8**24, rel=0.02)


def test_one_shot_masks_are_nested_and_keep_the_top_scores():
    w_i, w_f = dense_pair()
    masks = sm.one_shot_masks(FC, w_i, w_f, CRITERIA["large_final"], [0, 3, 9], torch.Generator())
    assert all(bool(m.all()) for m in masks[0])
    for dense, sparse in zip(masks[1], masks[2], strict=True):
        assert not (sparse.bool() & ~dense.bool()).any()
    for m, wf in zip(masks[2], w_f, strict=True):
        assert wf.abs()[m.bool()].min() >= wf.abs()[~m.bool()].max()


def test_treatments_are_init_and_the_signed_constant():
    w_i, _ = dense_pair()
    for a, b in zip(sm.treated_weights(w_i, "init"), w_i, strict=True):
        assert torch.equal(a, b)
    for c, w in zip(sm.treated_weights(w_i, "signed_constant"), w_i, strict=True):
        assert torch.equal(c, sigma_l(w) * torch.sign(w))
    with pytest.raises(ValueError, match="accepted: init, signed_constant"):
        sm.get_treatment("constant")


def test_straight_through_gradient_is_dsigmoid_times_upstream():
    # hand-checked: s = [0, ln 3, -ln 3] -> p = [1/2, 3/4, 1/4], p(1 - p) = [1/4, 3/16, 3/16]
    s = torch.tensor([0.0, math.log(3), -math.log(3)], requires_grad=True)
    sample = torch.tensor([1.0, 0.0, 1.0])
    m = sm.straight_through_mask(torch.sigmoid(s), sample)
    assert torch.allclose(m, sample)  # the forward pass sees the sample
    upstream = torch.tensor([2.0, -1.0, 4.0])
    (m * upstream).sum().backward()
    expected = torch.tensor([0.25 * 2.0, 3 / 16 * -1.0, 3 / 16 * 4.0])
    assert torch.allclose(s.grad, expected)


def test_dynamic_weight_rescaling_multiplies_by_weights_over_ones():
    w = torch.randn(2, 4, 5)
    mask = torch.zeros(2, 4, 5)
    mask[0].view(-1)[:5] = 1  # member 0 keeps 5 of 20: factor 4
    mask[1].view(-1)[:16] = 1  # member 1 keeps 16 of 20: factor 1.25
    out = sm.dynamic_weight_rescaling(w * mask, mask)
    assert torch.equal(out[0], w[0] * mask[0] * 4.0)
    assert torch.equal(out[1], w[1] * mask[1] * 1.25)


def test_positive_per_layer_rescale_keeps_an_untrained_relu_nets_predictions(tiny_data):
    """The premise of the DWR argument (book/spec.md section 8): with zero biases a ReLU net is
    positively homogeneous in each layer's weights, so its argmax cannot change."""
    w_i, w_f = dense_pair(3)
    masks = sm.one_shot_masks(FC, w_i, w_f, CRITERIA["large_final"], [10], torch.Generator())[0]
    weights = [w * m for w, m in zip(w_i, masks, strict=True)]
    factors = [3.7, 0.05, 12.0]
    scaled = [w * f for w, f in zip(weights, factors, strict=True)]
    pop = Population.from_members(FC, [weights, scaled], [masks, masks])
    logits = pop.forward(tiny_data.test.x.float() / 255)
    assert torch.equal(logits[0].argmax(-1), logits[1].argmax(-1))
    assert torch.allclose(logits[1], logits[0] * math.prod(factors), rtol=1e-4, atol=1e-6)


def test_untrained_accuracy_of_many_masks_equals_one_at_a_time(tiny_data):
    w_i, w_f = dense_pair()
    masks = sm.one_shot_masks(FC, w_i, w_f, CRITERIA["movement"], [0, 5, 15], torch.Generator())
    weights = [w_i, sm.treated_weights(w_i, "signed_constant"), w_i]
    together = sm.untrained_supermask_accuracy(FC, weights, masks, tiny_data.test, chunk=2)
    for j in range(3):
        masked = [w * m for w, m in zip(weights[j], masks[j], strict=True)]
        alone = accuracy(Population.from_members(FC, [masked], [masks[j]]), tiny_data.test)
        assert together[j] == pytest.approx(float(alone[0]))


def _runs(**overrides):
    base = dict(net="fc", epochs=2, batch_size=50, eval_samples=3)  # the official lr, 100
    base.update(overrides)
    return [
        sm.LearnedSupermask(seed=0, **base),
        sm.LearnedSupermask(seed=0, dynamic_weight_rescaling=True, **base),
        sm.LearnedSupermask(
            seed=1, weights="signed_constant", dynamic_weight_rescaling=True, **base
        ),
    ]


def test_learned_supermasks_learn_and_report_what_they_kept(tiny_data):
    runs = _runs()
    result = sm.train_learned_supermasks(runs, tiny_data)
    assert result.epochs == [0, 1, 2]
    assert result.val_accuracy.shape == (3, 3)
    # masks learned on the tiny task beat the p = 0.5 start
    assert (result.val_accuracy[:, -1] > result.val_accuracy[:, 0] + 0.3).all()
    assert result.test_accuracy_samples.shape == (3, 3)
    assert torch.allclose(result.test_accuracy, result.test_accuracy_samples.mean(1))
    assert ((result.percent_kept > 0) & (result.percent_kept < 100)).all()
    assert result.layer_kept.shape == (3, 3)


def test_a_learned_supermask_does_not_depend_on_its_population(tiny_data):
    runs = _runs(epochs=1)
    together = sm.train_learned_supermasks(runs, tiny_data)
    alone = sm.train_learned_supermasks(runs[1:2], tiny_data)
    assert torch.allclose(together.val_loss[1], alone.val_loss[0], atol=1e-4)
    assert together.test_accuracy_samples[1].tolist() == alone.test_accuracy_samples[0].tolist()


def test_learned_supermask_rejects_bad_settings(tiny_data):
    with pytest.raises(ValueError, match="accepted: init, signed_constant"):
        sm.LearnedSupermask("fc", 0, weights="zeros")
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        sm.LearnedSupermask("fc", 0, epochs=0)
    mixed = [sm.LearnedSupermask("fc", 0, epochs=1), sm.LearnedSupermask("fc", 0, epochs=2)]
    with pytest.raises(ValueError, match="one population"):
        sm.train_learned_supermasks(mixed, tiny_data)


def test_supermasks_work_unchanged_on_a_conv_net():
    """Untrained and learned supermasks on Conv2 (CIFAR-shaped data), a few images only."""
    from lth.data import Dataset, Split

    conv2 = get_architecture("conv2")
    g = torch.Generator().manual_seed(0)

    def split(n):
        x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
        return Split(x, torch.randint(0, 10, (n,), generator=g))

    data = Dataset("tiny-cifar", split(8), split(4), split(4), 10)
    w_i = initial_weights(conv2, 0)
    w_f = [w + 0.5 * sigma_l(w) * torch.randn(w.shape, generator=g) for w in w_i]
    masks = sm.one_shot_masks(conv2, w_i, w_f, CRITERIA["large_final_same_sign"], [0, 6], g)
    assert sm.one_shot_keep(conv2, 6)[0] == int(masks[1][0].sum())
    weights = [sm.treated_weights(w_i, "signed_constant")] * 2
    acc = sm.untrained_supermask_accuracy(conv2, weights, masks, data.test)
    assert acc.shape == (2,) and ((acc >= 0) & (acc <= 1)).all()
    run = sm.LearnedSupermask("conv2", 0, dynamic_weight_rescaling=True, epochs=1, batch_size=4)
    result = sm.train_learned_supermasks([run], data)
    assert result.layer_kept.shape == (1, len(conv2.layers))


def test_a_learned_supermask_stopped_at_its_deadline_resumes_bit_for_bit(tiny_data, tmp_path):
    """A population stopped by its deadline after an epoch and trained again from its
    checkpoint ends as one trained without a stop: scores, momenta, mask generators, batch
    order and curve are all resumed."""
    from lth.train import Checkpoint, DeadlineReached

    runs = _runs(epochs=3)
    whole = sm.train_learned_supermasks(runs, tiny_data)
    path = tmp_path / "checkpoint.pt"
    stopped = 0
    while True:
        checkpoint = Checkpoint(path, "population", every_s=3600.0, deadline=0.0)
        try:
            resumed = sm.train_learned_supermasks(runs, tiny_data, checkpoint=checkpoint)
            break
        except DeadlineReached as stop:
            stopped += 1
            assert f"after epoch {stopped}" in str(stop) and path.exists()
    assert stopped == 2 and not path.exists()  # after epochs 1 and 2; removed when complete
    assert resumed.val_loss.tolist() == whole.val_loss.tolist()
    assert resumed.test_accuracy_samples.tolist() == whole.test_accuracy_samples.tolist()
    assert resumed.expected_percent_kept.tolist() == whole.expected_percent_kept.tolist()


def test_figure7_levels_every_level_on_fc_every_other_off_the_headline_on_conv_nets():
    assert all(sm.figure7_levels("fc", c) == sm.SUPERMASK_LEVELS for c in CRITERIA)
    for net in ("conv2", "conv4", "conv6"):
        for c in CRITERIA:
            headline = c in sm.FIGURE7_HEADLINE
            assert sm.figure7_levels(net, c) == (
                sm.SUPERMASK_LEVELS if headline else tuple(range(0, 25, 2))
            )


def test_figure7_so_far_draws_the_conv_records_that_exist_and_trains_nothing(tmp_path):
    import pandas as pd

    from lth.plots import figure7
    from lth.store import RunStore, spec_key
    from lth.supermask_sweeps import (
        _untrained_rows,
        dense_chains,
        figure7_so_far,
        table1_runs,
        untrained_specs,
    )

    store = RunStore(tmp_path / "runs")
    frame, present, wanted = figure7_so_far("conv2", store)
    assert frame.empty and (present, wanted) == (0, 2 * 13 * 2)  # 2 seeds, 13 criteria x 2
    settings, _ = table1_runs("conv2")
    chain = dense_chains(settings)[0]
    spec = untrained_specs(settings, chain)[("large_final_same_sign", "init")]
    levels = [{"k": k, "percent_remaining": 100 * 0.9**k, "test_accuracy": 0.3} for k in range(25)]
    record = {"levels": levels, "n_test": 10_000}
    store.put(spec_key(spec), {"key": spec_key(spec), "spec": spec, "result": record})
    frame, present, _ = figure7_so_far("conv2", store)
    assert frame.empty and present == 0  # its dense record is not there yet: nothing drawn
    with pytest.raises(KeyError, match=f"record {chain.run_key(0)} of .* is not in the store"):
        _untrained_rows("conv2", chain, untrained_specs(settings, chain), store, strict=True)
    dense = {"test_accuracy": 0.70}
    store.put(chain.run_key(0), {"key": chain.run_key(0), "spec": {}, "result": dense})
    frame, present, wanted = figure7_so_far("conv2", store)
    assert (present, wanted) == (1, 52) and len(frame) == 25
    assert set(frame["criterion"]) == {"large_final_same_sign"} and set(frame["seed"]) == {0}
    assert frame["dense_iterations"].iloc[0] == 20_250  # the paper's length
    # the figure draws one treatment so far; the other panel says so
    figure = figure7(frame, 0.70, pd.Series(dtype=float), "so far")
    assert [t.get_text() for t in figure.axes[1].texts] == ["no records yet"]
    assert figure.axes[1].get_legend() is not None

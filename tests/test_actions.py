"""Mask-1 and mask-0 actions (book/spec.md sections 1, 6 and 7), on small hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch

from lth.actions import (
    MASK0_ACTIONS,
    MASK1_ACTIONS,
    constant,
    constant_same_sign,
    freeze_init,
    get_mask0_action,
    get_mask1_action,
    next_round_start,
    random_zero_control,
    reinit,
    reinit_fresh,
    reinit_same_sign,
    reshuffle,
    reshuffle_same_sign,
    rewind,
    sigma_l,
    variant_1,
    variant_2,
    zero,
)
from lth.paper import FIGURE4_MASK1, FIGURE5_MASK0

W_START = torch.tensor([[0.5, -0.25], [1.5, -2.0]])
W_FINAL = torch.tensor([[0.75, 0.5], [-1.0, -3.0]])  # only [1, 0] moved toward zero
MASK = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
# By hand: mean -0.0625, squared deviations sum to 6.546875, population std over 4 entries.
SIGMA = math.sqrt(6.546875 / 4)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def big(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = gen(seed)
    w_start, w_final = torch.randn(40, 30, generator=g), torch.randn(40, 30, generator=g)
    mask = (torch.rand(40, 30, generator=g) < 0.4).float()
    return w_start, w_final, mask


def test_sigma_l_is_the_population_std_of_the_layer():
    assert sigma_l(W_START) == pytest.approx(SIGMA)


def test_rewind_returns_a_copy_of_the_start_values():
    out = rewind(W_START, MASK, gen())
    assert torch.equal(out, W_START)
    out[0, 0] = 99.0
    assert W_START[0, 0] == 0.5  # the caller's tensor is untouched


def test_reinit_permutes_the_whole_layer():
    w_start, _, mask = big(1)
    out = reinit(w_start, mask, gen())
    assert torch.equal(out.flatten().sort().values, w_start.flatten().sort().values)
    assert not torch.equal(out, w_start)
    assert torch.equal(out, reinit(w_start, mask, gen()))  # a seed fixes it


def test_reinit_fresh_draws_new_values_with_the_layer_sigma():
    w_start = torch.randn(300, 300, generator=gen(2)) * 0.05
    out = reinit_fresh(w_start, torch.ones_like(w_start), gen())
    assert float(out.std()) == pytest.approx(sigma_l(w_start), rel=0.02)
    assert float(out.abs().max()) <= 2 * sigma_l(w_start) / 0.87962566103423978 + 1e-6
    assert not torch.equal(out.flatten().sort().values, w_start.flatten().sort().values)


def test_reshuffle_permutes_kept_values_among_kept_positions():
    w_start, _, mask = big(3)
    out = reshuffle(w_start, mask, gen())
    kept = mask.bool()
    assert torch.equal(out[~kept], w_start[~kept])
    assert torch.equal(out[kept].sort().values, w_start[kept].sort().values)
    assert not torch.equal(out[kept], w_start[kept])


def test_constant_has_magnitude_sigma_and_random_signs_in_the_same_numbers():
    w_start, _, mask = big(4)
    out = constant(w_start, mask, gen())
    assert torch.allclose(out.abs(), torch.full_like(out, sigma_l(w_start)))
    assert int((out > 0).sum()) == int((w_start > 0).sum())
    agree = float((torch.sign(out) == torch.sign(w_start)).float().mean())
    assert 0.3 < agree < 0.7  # signs shuffled, not kept


def test_constant_same_sign_is_sigma_times_sign():
    out = constant_same_sign(W_START, MASK, gen())
    expected = torch.tensor([[SIGMA, -SIGMA], [SIGMA, -SIGMA]])
    assert torch.allclose(out, expected)


@pytest.mark.parametrize(
    "same_sign, base", [(reinit_same_sign, reinit), (reshuffle_same_sign, reshuffle)]
)
def test_same_sign_variants_keep_signs_and_base_magnitudes(same_sign, base):
    w_start, _, mask = big(5)
    out = same_sign(w_start, mask, gen(7))
    assert torch.equal(torch.sign(out), torch.sign(w_start))
    assert torch.equal(out.abs(), base(w_start, mask, gen(7)).abs())


def test_zero_zeroes_exactly_the_pruned_entries():
    kept = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = zero(kept, W_START, W_FINAL, MASK, gen())
    assert torch.equal(out, torch.tensor([[1.0, 0.0], [0.0, 4.0]]))


def test_freeze_init_freezes_pruned_at_their_start_values():
    kept = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = freeze_init(kept, W_START, W_FINAL, MASK, gen())
    assert torch.equal(out, torch.tensor([[1.0, -0.25], [1.5, 4.0]]))


def test_variant_1_zeroes_exactly_the_pruned_weights_that_moved_toward_zero():
    kept = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = variant_1(kept, W_START, W_FINAL, MASK, gen())
    # pruned [0, 1]: abs 0.5 > 0.25, moved away -> w_start; pruned [1, 0]: 1.0 < 1.5 -> 0
    assert torch.equal(out, torch.tensor([[1.0, -0.25], [0.0, 4.0]]))


def test_variant_2_also_starts_kept_weights_that_moved_toward_zero_at_zero():
    w_final = torch.tensor([[0.25, 0.5], [-1.0, -1.0]])  # [0,0], [1,0], [1,1] moved toward 0
    out_2 = variant_2(W_START.clone(), W_START, w_final, MASK, gen())
    assert torch.equal(out_2, torch.tensor([[0.0, -0.25], [0.0, 0.0]]))
    out_1 = variant_1(W_START.clone(), W_START, w_final, MASK, gen())
    assert torch.equal(out_1, torch.tensor([[0.5, -0.25], [0.0, -2.0]]))


def test_random_zero_control_zeroes_as_many_pruned_weights_as_variant_1():
    w_start, w_final, mask = big(6)
    kept = torch.randn(40, 30, generator=gen(8))
    out = random_zero_control(kept, w_start, w_final, mask, gen())
    v1 = variant_1(kept, w_start, w_final, mask, gen())
    pruned = ~mask.bool()
    assert int((out[pruned] == 0).sum()) == int((v1[pruned] == 0).sum()) > 0
    assert not torch.equal(out, v1)  # a random subset, not variant 1's
    assert torch.equal(out[mask.bool()], kept[mask.bool()])
    nonzero = pruned & (out != 0)
    assert torch.equal(out[nonzero], w_start[nonzero])


def test_next_round_start_lottery_ticket():
    w_start, trained = next_round_start(W_START, W_FINAL, MASK, rewind, zero, gen())
    assert torch.equal(trained, torch.tensor([[0.5, 0.0], [0.0, -2.0]]))
    # zero masks rather than overwrites: the next round's starting values keep every entry
    assert torch.equal(w_start, W_START)


def test_next_round_start_frozen_values_are_the_next_start_values():
    w_start, trained = next_round_start(W_START, W_FINAL, MASK, rewind, variant_1, gen())
    assert torch.equal(w_start, trained)
    assert torch.equal(trained, torch.tensor([[0.5, -0.25], [0.0, -2.0]]))


def test_registries_hold_the_papers_actions():
    # the paper's Figure 4 and 5 variants, first and in legend order (reinit_fresh is ours)
    # the paper's actions in its order; others may be registered beside them
    assert [a for a in MASK1_ACTIONS if a in FIGURE4_MASK1] == list(FIGURE4_MASK1)
    assert [a for a in MASK0_ACTIONS if a in FIGURE5_MASK0] == list(FIGURE5_MASK0)
    assert "reinit_fresh" in MASK1_ACTIONS
    assert FIGURE4_MASK1[0] == "rewind" and FIGURE5_MASK0[0] == "zero"
    assert get_mask1_action("rewind") is rewind
    assert get_mask0_action("zero") is zero


@pytest.mark.parametrize(
    "lookup, registry", [(get_mask1_action, MASK1_ACTIONS), (get_mask0_action, MASK0_ACTIONS)]
)
def test_unknown_action_lists_accepted_names(lookup, registry):
    with pytest.raises(ValueError, match="unknown mask-[01] action") as info:
        lookup("no_such_action")
    for name in registry:
        assert name in str(info.value)

"""Mask-1 and mask-0 actions of the lottery ticket (PAPER.md sections 1, 6 and 7)."""

from __future__ import annotations

import pytest
import torch

from lth.actions import (
    MASK0_ACTIONS,
    MASK1_ACTIONS,
    get_mask0_action,
    get_mask1_action,
    next_round_start,
    rewind,
    zero,
)

W_START = torch.tensor([[0.5, -0.25], [1.5, -2.0]])
W_FINAL = torch.tensor([[0.75, 0.5], [-1.0, -3.0]])
MASK = torch.tensor([[1.0, 0.0], [0.0, 1.0]])


def test_rewind_returns_a_copy_of_the_start_values():
    out = rewind(W_START, MASK, torch.Generator())
    assert torch.equal(out, W_START)
    out[0, 0] = 99.0
    assert W_START[0, 0] == 0.5  # the caller's tensor is untouched


def test_zero_zeroes_exactly_the_pruned_entries():
    kept = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = zero(kept, W_START, W_FINAL, MASK)
    assert torch.equal(out, torch.tensor([[1.0, 0.0], [0.0, 4.0]]))


def test_next_round_start_is_rewind_then_zero():
    out = next_round_start(W_START, W_FINAL, MASK, rewind, zero, torch.Generator())
    assert torch.equal(out, torch.tensor([[0.5, 0.0], [0.0, -2.0]]))


def test_lottery_ticket_actions_are_registered():
    assert MASK1_ACTIONS["rewind"] is rewind and MASK0_ACTIONS["zero"] is zero
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

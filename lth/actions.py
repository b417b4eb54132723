"""Mask-1 and mask-0 actions: what kept and pruned weights start the next round from
(PAPER.md sections 1, 6 and 7).

A **mask-1 action** maps a layer's starting values of the round that just ended (``w_start``) and
the new mask to the values the *kept* weights start the next round from. The lottery ticket
rewinds them to their initial values.

A **mask-0 action** maps (kept start values, ``w_start``, ``w_final``, new mask) to the full tensor
the next round starts from: it decides the value of every *pruned* weight, which then stays
frozen through training (see :mod:`lth.train`). The lottery ticket sets them to zero.

Both are pure functions on one layer of one network, in one registry each. This module holds the
lottery ticket's pair (``rewind``, ``zero``); the other variants of Figures 4 and 5 register here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Mask1Action = Callable[[Tensor, Tensor, torch.Generator], Tensor]
Mask0Action = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def rewind(w_start: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Kept weights start again from the values they started this round with (the LT)."""
    return w_start.clone()


def zero(kept: Tensor, w_start: Tensor, w_final: Tensor, mask: Tensor) -> Tensor:
    """Pruned weights are set to zero and frozen there (the LT); kept weights are untouched."""
    return kept * mask


#: Mask-1 actions of PAPER.md section 6 (Figure 4), by name.
MASK1_ACTIONS: dict[str, Mask1Action] = {"rewind": rewind}

#: Mask-0 actions of PAPER.md section 7 (Figure 5), by name.
MASK0_ACTIONS: dict[str, Mask0Action] = {"zero": zero}


def _lookup(registry: dict, kind: str, name: str):
    try:
        return registry[name]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}; accepted: {', '.join(registry)}") from None


def get_mask1_action(name: str) -> Mask1Action:
    """Look up a mask-1 action; an unknown name lists the accepted ones."""
    return _lookup(MASK1_ACTIONS, "mask-1 action", name)


def get_mask0_action(name: str) -> Mask0Action:
    """Look up a mask-0 action; an unknown name lists the accepted ones."""
    return _lookup(MASK0_ACTIONS, "mask-0 action", name)


def next_round_start(
    w_start: Tensor,
    w_final: Tensor,
    mask: Tensor,
    mask1: Mask1Action,
    mask0: Mask0Action,
    generator: torch.Generator,
) -> Tensor:
    """Values one layer starts the next round from: mask-1 action on the kept weights, then
    the mask-0 action on the pruned ones (PAPER.md section 1, steps 3 and 4)."""
    kept = mask1(w_start, mask, generator)
    return mask0(kept, w_start, w_final, mask)

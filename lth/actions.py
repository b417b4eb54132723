"""Mask-1 and mask-0 actions: what kept and pruned weights start the next round from
(PAPER.md sections 1, 6 and 7).

Both act on one layer of one network and on *that round's starting values* ``w_start`` (the
values the round that just ended started from, over the whole layer), as the official code does:
random-sign variants therefore re-randomise every round, and same-sign variants keep the signs
the chain started with.

A **mask-1 action** ``(w_start, mask, generator) -> values`` gives the next round's starting
values over the whole layer; only the kept entries (``mask == 1``) are trained. These values are
also the next round's ``w_start``. sigma_L is the standard deviation of ``w_start`` over the whole
layer (population standard deviation, as ``np.std`` in the official code).

A **mask-0 action** ``(kept, w_start, w_final, mask, generator) -> tensor`` turns the mask-1
values ``kept`` into the tensor the population trains: it sets the value of every pruned entry,
which then stays frozen through training (:mod:`lth.train` masks its gradient), and may also
change the kept entries (variant 2).

Where the paper's wording and the official code differ, we follow the code: *reinit* permutes
the layer's own starting values over the whole layer (a draw from the layer's empirical init
distribution); ``reinit_fresh`` draws new truncated-normal values with the layer's sigma_L
instead. *constant* gives +-sigma_L with the signs of ``w_start`` shuffled over the layer, so
the numbers of positive and negative weights are kept.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Mask1Action = Callable[[Tensor, Tensor, torch.Generator], Tensor]
Mask0Action = Callable[[Tensor, Tensor, Tensor, Tensor, torch.Generator], Tensor]


def sigma_l(w_start: Tensor) -> float:
    """sigma_L: the standard deviation of the layer's starting values (PAPER.md section 6)."""
    return float(w_start.std(correction=0))


def _permuted(values: Tensor, generator: torch.Generator) -> Tensor:
    flat = values.reshape(-1)
    return flat[torch.randperm(flat.numel(), generator=generator)].reshape(values.shape)


def _same_sign(values: Tensor, w_start: Tensor) -> Tensor:
    return values.abs() * torch.sign(w_start)


# ----------------------------------------------------------------------------- mask-1 actions


def rewind(w_start: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Kept weights start again from the values they started this round with (the LT)."""
    return w_start.clone()


def reinit(w_start: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Kept weights get fresh values from the layer's init distribution: a random permutation of
    the layer's starting values over the whole layer (the official code's random_reinit)."""
    return _permuted(w_start, generator)


def reinit_fresh(w_start: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Kept weights get new draws of a normal truncated at two standard deviations whose standard
    deviation after truncation is sigma_L (the paper's wording of reinit)."""
    std = sigma_l(w_start) / 0.87962566103423978
    out = torch.empty_like(w_start)
    return torch.nn.init.trunc_normal_(out, 0.0, std, -2 * std, 2 * std, generator=generator)


def reshuffle(w_start: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Kept weights get the kept weights' starting values, permuted among the kept positions."""
    out = w_start.clone()
    kept = mask.bool()
    out[kept] = _permuted(w_start[kept], generator)
    return out


def constant(w_start: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Kept weights start at +-sigma_L with random signs (the signs of the layer shuffled)."""
    return _permuted(sigma_l(w_start) * torch.sign(w_start), generator)


def reinit_same_sign(w_start: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """reinit's magnitudes with the signs of the starting values."""
    return _same_sign(reinit(w_start, mask, generator), w_start)


def reshuffle_same_sign(w_start: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """reshuffle's magnitudes with the signs of the starting values."""
    return _same_sign(reshuffle(w_start, mask, generator), w_start)


def constant_same_sign(w_start: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """The signed constant: sigma_L x sign(w_start)."""
    return sigma_l(w_start) * torch.sign(w_start)


# ----------------------------------------------------------------------------- mask-0 actions


def _moved_toward_zero(w_start: Tensor, w_final: Tensor) -> Tensor:
    """Entries whose magnitude shrank during the round: abs(w_f) < abs(w_i)."""
    return w_final.abs() < w_start.abs()


def zero(kept: Tensor, w_start: Tensor, w_final: Tensor, mask: Tensor, generator) -> Tensor:
    """Pruned weights are set to zero and frozen there (the LT); kept weights are untouched."""
    return kept * mask


def freeze_init(kept: Tensor, w_start: Tensor, w_final: Tensor, mask: Tensor, generator) -> Tensor:
    """Pruned weights are frozen at their starting values."""
    return torch.where(mask.bool(), kept, w_start)


def variant_1(kept: Tensor, w_start: Tensor, w_final: Tensor, mask: Tensor, generator) -> Tensor:
    """Pruned weights that moved toward zero are frozen at 0, the others at their starting values;
    kept weights are untouched."""
    frozen = torch.where(_moved_toward_zero(w_start, w_final), torch.zeros_like(w_start), w_start)
    return torch.where(mask.bool(), kept, frozen)


def variant_2(kept: Tensor, w_start: Tensor, w_final: Tensor, mask: Tensor, generator) -> Tensor:
    """As variant 1, and kept weights that moved toward zero also start the next round at 0
    (the official code's freeze_init_zero_all)."""
    toward_zero = _moved_toward_zero(w_start, w_final)
    zeros = torch.zeros_like(kept)
    return torch.where(
        mask.bool(), torch.where(toward_zero, zeros, kept), torch.where(toward_zero, zeros, w_start)
    )


def random_zero_control(
    kept: Tensor, w_start: Tensor, w_final: Tensor, mask: Tensor, generator: torch.Generator
) -> Tensor:
    """The official code's control for variant 1: zero a random subset of the pruned weights,
    as many as variant 1 would zero, and freeze the rest at their starting values."""
    pruned = torch.nonzero(~mask.bool().reshape(-1), as_tuple=True)[0]
    count = int(_moved_toward_zero(w_start, w_final).reshape(-1)[pruned].sum())
    chosen = pruned[torch.randperm(pruned.numel(), generator=generator)[:count]]
    frozen = w_start.clone().reshape(-1)
    frozen[chosen] = 0
    return torch.where(mask.bool(), kept, frozen.reshape(w_start.shape))


#: Mask-1 actions of PAPER.md section 6 (Figure 4), by name.
MASK1_ACTIONS: dict[str, Mask1Action] = {
    f.__name__: f
    for f in (
        rewind,
        reinit,
        reshuffle,
        constant,
        reinit_same_sign,
        reshuffle_same_sign,
        constant_same_sign,
        reinit_fresh,
    )
}

#: Mask-0 actions of PAPER.md section 7 (Figure 5), by name.
MASK0_ACTIONS: dict[str, Mask0Action] = {
    f.__name__: f for f in (zero, freeze_init, variant_1, variant_2, random_zero_control)
}


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
) -> tuple[Tensor, Tensor]:
    """One layer's next round (PAPER.md section 1, steps 3 and 4): its starting values
    ``w_start`` and the tensor to train, whose pruned entries hold the mask-0 action's frozen
    values.

    The two differ only for the LT's ``zero``: the official code *masks* pruned weights (their
    variables keep the mask-1 values, which later actions such as reinit draw from), while every
    other mask-0 action *sets* them, so their frozen values are the starting values.
    """
    kept = mask1(w_start, mask, generator)
    trained = mask0(kept, w_start, w_final, mask, generator)
    return (kept if mask0 is zero else trained), trained

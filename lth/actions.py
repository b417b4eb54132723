"""Mask-1 and mask-0 actions: what kept and pruned weights start the next round from
(book/spec.md sections 1, 6 and 7).

Both act on one layer of one network and on *that round's starting values* ``w_i`` (the
values the round that just ended started from, over the whole layer), as the official code does:
random-sign variants therefore re-randomise every round, and same-sign variants keep the signs
the chain started with.

A **mask-1 action** ``(w_i, mask, generator) -> values`` gives the next round's starting
values over the whole layer; only the kept entries (``mask == 1``) are trained. These values are
also the next round's ``w_i``. sigma_L is the standard deviation of ``w_i`` over the whole
layer (population standard deviation, as ``np.std`` in the official code).

A **mask-0 action** ``(kept, w_i, w_f, mask, generator) -> tensor`` turns the mask-1
values ``kept`` into the tensor the population trains: it sets the value of every pruned entry,
which then stays frozen through training (:mod:`lth.train` masks its gradient), and may also
change the kept entries (variant 2).

Where the paper's wording and the official code differ, we follow the code: *reinit* permutes
the layer's own starting values over the whole layer (a draw from the layer's empirical init
distribution); ``reinit_fresh`` draws new truncated-normal values with the layer's sigma_L
instead. *constant* gives +-sigma_L with the signs of ``w_i`` shuffled over the layer, so
the numbers of positive and negative weights are kept.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .registry import Registry

Mask1Action = Callable[[Tensor, Tensor, torch.Generator], Tensor]
Mask0Action = Callable[[Tensor, Tensor, Tensor, Tensor, torch.Generator], Tensor]


def sigma_l(w_i: Tensor) -> float:
    """sigma_L: the standard deviation of the layer's starting values (book/spec.md section 6)."""
    return float(w_i.std(correction=0))


def _permuted(values: Tensor, generator: torch.Generator) -> Tensor:
    flat = values.reshape(-1)
    return flat[torch.randperm(flat.numel(), generator=generator)].reshape(values.shape)


def _same_sign(values: Tensor, w_i: Tensor) -> Tensor:
    return values.abs() * torch.sign(w_i)


# ----------------------------------------------------------------------------- mask-1 actions


def rewind(w_i: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Kept weights start again from the values they started this round with (the LT)."""
    return w_i.clone()


def reinit(w_i: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Kept weights get fresh values from the layer's init distribution: a random permutation of
    the layer's starting values over the whole layer (the official code's random_reinit)."""
    return _permuted(w_i, generator)


def reinit_fresh(w_i: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Kept weights get new draws of a normal truncated at two standard deviations whose standard
    deviation after truncation is sigma_L (the paper's wording of reinit)."""
    std = sigma_l(w_i) / 0.87962566103423978
    out = torch.empty_like(w_i)
    return torch.nn.init.trunc_normal_(out, 0.0, std, -2 * std, 2 * std, generator=generator)


def reshuffle(w_i: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Kept weights get the kept weights' starting values, permuted among the kept positions."""
    out = w_i.clone()
    kept = mask.bool()
    out[kept] = _permuted(w_i[kept], generator)
    return out


def constant(w_i: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Kept weights start at +-sigma_L with random signs (the signs of the layer shuffled)."""
    return _permuted(sigma_l(w_i) * torch.sign(w_i), generator)


def reinit_same_sign(w_i: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """reinit's magnitudes with the signs of the starting values."""
    return _same_sign(reinit(w_i, mask, generator), w_i)


def reshuffle_same_sign(w_i: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """reshuffle's magnitudes with the signs of the starting values."""
    return _same_sign(reshuffle(w_i, mask, generator), w_i)


def constant_same_sign(w_i: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
    """The signed constant: sigma_L x sign(w_i)."""
    return sigma_l(w_i) * torch.sign(w_i)


# ----------------------------------------------------------------------------- mask-0 actions


def _moved_toward_zero(w_i: Tensor, w_f: Tensor) -> Tensor:
    """Entries whose magnitude shrank during the round: abs(w_f) < abs(w_i)."""
    return w_f.abs() < w_i.abs()


def zero(kept: Tensor, w_i: Tensor, w_f: Tensor, mask: Tensor, generator) -> Tensor:
    """Pruned weights are set to zero and frozen there (the LT); kept weights are untouched."""
    return kept * mask


def freeze_init(kept: Tensor, w_i: Tensor, w_f: Tensor, mask: Tensor, generator) -> Tensor:
    """Pruned weights are frozen at their starting values."""
    return torch.where(mask.bool(), kept, w_i)


def variant_1(kept: Tensor, w_i: Tensor, w_f: Tensor, mask: Tensor, generator) -> Tensor:
    """Pruned weights that moved toward zero are frozen at 0, the others at their starting values;
    kept weights are untouched."""
    frozen = torch.where(_moved_toward_zero(w_i, w_f), torch.zeros_like(w_i), w_i)
    return torch.where(mask.bool(), kept, frozen)


def variant_2(kept: Tensor, w_i: Tensor, w_f: Tensor, mask: Tensor, generator) -> Tensor:
    """As variant 1, and kept weights that moved toward zero also start the next round at 0
    (the official code's freeze_init_zero_all)."""
    toward_zero = _moved_toward_zero(w_i, w_f)
    zeros = torch.zeros_like(kept)
    return torch.where(
        mask.bool(), torch.where(toward_zero, zeros, kept), torch.where(toward_zero, zeros, w_i)
    )


def random_zero_control(
    kept: Tensor, w_i: Tensor, w_f: Tensor, mask: Tensor, generator: torch.Generator
) -> Tensor:
    """The official code's control for variant 1: zero a random subset of the pruned weights,
    as many as variant 1 would zero, and freeze the rest at their starting values."""
    pruned = torch.nonzero(~mask.bool().reshape(-1), as_tuple=True)[0]
    count = int(_moved_toward_zero(w_i, w_f).reshape(-1)[pruned].sum())
    chosen = pruned[torch.randperm(pruned.numel(), generator=generator)[:count]]
    frozen = w_i.clone().reshape(-1)
    frozen[chosen] = 0
    return torch.where(mask.bool(), kept, frozen.reshape(w_i.shape))


#: Mask-1 actions of book/spec.md section 6 (Figure 4), by name.
MASK1_ACTIONS: Registry[Mask1Action] = Registry.of_functions(
    "mask-1 action",
    (
        rewind,
        reinit,
        reshuffle,
        constant,
        reinit_same_sign,
        reshuffle_same_sign,
        constant_same_sign,
        reinit_fresh,
    ),
)

#: Mask-0 actions of book/spec.md section 7 (Figure 5), by name.
MASK0_ACTIONS: Registry[Mask0Action] = Registry.of_functions(
    "mask-0 action", (zero, freeze_init, variant_1, variant_2, random_zero_control)
)


def get_mask1_action(name: str) -> Mask1Action:
    """Look up a mask-1 action; an unknown name lists the accepted ones."""
    return MASK1_ACTIONS.lookup(name)


def get_mask0_action(name: str) -> Mask0Action:
    """Look up a mask-0 action; an unknown name lists the accepted ones."""
    return MASK0_ACTIONS.lookup(name)


def next_round_start(
    w_i: Tensor,
    w_f: Tensor,
    mask: Tensor,
    mask1: Mask1Action,
    mask0: Mask0Action,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """One layer's next round (book/spec.md section 1, steps 3 and 4): its starting values
    ``w_i`` and the tensor to train, whose pruned entries hold the mask-0 action's frozen
    values.

    The two differ only for the LT's ``zero``: the official code *masks* pruned weights (their
    variables keep the mask-1 values, which later actions such as reinit draw from), while every
    other mask-0 action *sets* them, so their frozen values are the starting values.
    """
    kept = mask1(w_i, mask, generator)
    trained = mask0(kept, w_i, w_f, mask, generator)
    return (kept if mask0 is zero else trained), trained

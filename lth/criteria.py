"""Mask criteria and iterative layerwise pruning (book/spec.md sections 1, 4 and 5).

A mask criterion is a pure function ``(w_i, w_f) -> scores`` on the still-unpruned weights of one
layer (1-D tensors): the larger the score, the more the weight deserves to be kept. Adding a
criterion is one function plus one entry in :data:`CRITERIA`; it then appears in every sweep,
notebook and the command line.

:func:`prune_layer` applies a criterion the way the paper does: within each layer, prune
``floor(remaining * rate)`` of the weights that are still unpruned, keep the top-scoring rest,
break ties at random with a seeded generator, and never revive an already-pruned weight.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .registry import Registry

Criterion = Callable[[Tensor, Tensor], Tensor]


def large_final(w_i: Tensor, w_f: Tensor) -> Tensor:
    """Keep the weights that end training largest in magnitude: the lottery ticket."""
    return w_f.abs()


def small_final(w_i: Tensor, w_f: Tensor) -> Tensor:
    """Keep the weights that end training smallest in magnitude."""
    return -w_f.abs()


def large_init(w_i: Tensor, w_f: Tensor) -> Tensor:
    """Keep the weights that start largest in magnitude."""
    return w_i.abs()


def small_init(w_i: Tensor, w_f: Tensor) -> Tensor:
    """Keep the weights that start smallest in magnitude."""
    return -w_i.abs()


def _percentile_rank(x: Tensor) -> Tensor:
    """Rank of every entry in ``x`` scaled to [0, 1] (0 = smallest)."""
    ranks = torch.empty_like(x)
    ranks[torch.argsort(x, stable=True)] = torch.arange(x.numel(), dtype=x.dtype)
    return ranks / max(x.numel() - 1, 1)


def large_init_large_final(w_i: Tensor, w_f: Tensor) -> Tensor:
    """Keep a weight iff abs(w_i) and abs(w_f) are both above a common percentile q.

    The score is the smaller of the two percentile ranks: keeping the top-n scores keeps exactly
    the weights whose two ranks both clear the largest q that leaves n weights.
    """
    return torch.minimum(_percentile_rank(w_i.abs()), _percentile_rank(w_f.abs()))


def small_init_small_final(w_i: Tensor, w_f: Tensor) -> Tensor:
    """Keep a weight iff abs(w_i) and abs(w_f) are both below a common percentile."""
    return torch.minimum(_percentile_rank(-w_i.abs()), _percentile_rank(-w_f.abs()))


def magnitude_increase(w_i: Tensor, w_f: Tensor) -> Tensor:
    """Keep the weights whose magnitude grew the most during training."""
    return w_f.abs() - w_i.abs()


def movement(w_i: Tensor, w_f: Tensor) -> Tensor:
    """Keep the weights that moved the farthest during training."""
    return (w_f - w_i).abs()


def random(w_i: Tensor, w_f: Tensor) -> Tensor:
    """A constant score: the seeded random tie-break alone decides (the random-pruning control)."""
    return torch.zeros_like(w_f)


def _sign_gated(score: Tensor, w_i: Tensor, w_f: Tensor, *, same: bool) -> Tensor:
    """``score`` where the sign of w_f equals (``same``) or differs from that of w_i, else 0.

    The gated-out weights score 0, as in the official code: for large_final this is exactly the
    paper's ``max(0, +-w_i * w_f / abs(w_i))``; for magnitude_increase it means a gated-out weight
    outranks a weight that passed the gate but shrank (negative score).
    """
    passes = (torch.sign(w_i) == torch.sign(w_f)) == same
    return torch.where(passes, score, torch.zeros_like(score))


def large_final_same_sign(w_i: Tensor, w_f: Tensor) -> Tensor:
    """large_final among the weights whose sign did not flip during training."""
    return _sign_gated(w_f.abs(), w_i, w_f, same=True)


def large_final_diff_sign(w_i: Tensor, w_f: Tensor) -> Tensor:
    """large_final among the weights whose sign flipped during training."""
    return _sign_gated(w_f.abs(), w_i, w_f, same=False)


def magnitude_increase_same_sign(w_i: Tensor, w_f: Tensor) -> Tensor:
    """magnitude_increase among the weights whose sign did not flip during training."""
    return _sign_gated(magnitude_increase(w_i, w_f), w_i, w_f, same=True)


def magnitude_increase_diff_sign(w_i: Tensor, w_f: Tensor) -> Tensor:
    """magnitude_increase among the weights whose sign flipped during training."""
    return _sign_gated(magnitude_increase(w_i, w_f), w_i, w_f, same=False)


#: Every mask criterion of book/spec.md section 5, by the paper's name.
CRITERIA: Registry[Criterion] = Registry.of_functions(
    "mask criterion",
    (
        large_final,
        small_final,
        large_init,
        small_init,
        large_init_large_final,
        small_init_small_final,
        magnitude_increase,
        movement,
        random,
        large_final_same_sign,
        large_final_diff_sign,
        magnitude_increase_same_sign,
        magnitude_increase_diff_sign,
    ),
)


def get_criterion(name: str) -> Criterion:
    """Look up a criterion by name; an unknown name lists the accepted ones."""
    return CRITERIA.lookup(name)


def number_to_keep(remaining: int, rate: float) -> int:
    """Weights a layer keeps after one round: prune floor(remaining x rate) (book/spec.md,
    section 4)."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"pruning rate must be in [0, 1), got {rate}")
    return remaining - int(remaining * rate)


def keep_order(
    mask: Tensor, w_i: Tensor, w_f: Tensor, criterion: Criterion, generator: torch.Generator
) -> Tensor:
    """Flat indices of one layer's unpruned weights, the one most worth keeping first: by
    ``criterion`` score, ties broken at random by ``generator`` (book/spec.md section 1, step 2).

    Keeping the first ``n`` of this order is pruning to ``n`` weights; one order serves every
    one-shot level of the untrained supermasks (book/spec.md section 8).
    """
    alive = torch.nonzero(mask.reshape(-1), as_tuple=True)[0]
    scores = criterion(w_i.reshape(-1)[alive], w_f.reshape(-1)[alive])
    shuffle = torch.randperm(alive.numel(), generator=generator)
    order = torch.argsort(scores[shuffle], descending=True, stable=True)
    return alive[shuffle[order]]


def prune_layer(
    mask: Tensor,
    w_i: Tensor,
    w_f: Tensor,
    criterion: Criterion,
    keep: int,
    generator: torch.Generator,
) -> Tensor:
    """The next mask of one layer of one network: keep the ``keep`` highest-scoring weights
    among those the current ``mask`` keeps, ties broken at random by ``generator``.

    Already-pruned weights stay pruned: only mask-1 entries are scored.
    """
    alive = int(mask.count_nonzero())
    if not 0 <= keep <= alive:
        raise ValueError(f"cannot keep {keep} of {alive} unpruned weights")
    new = torch.zeros_like(mask).reshape(-1)
    new[keep_order(mask, w_i, w_f, criterion, generator)[:keep]] = 1
    return new.reshape(mask.shape)


def prune_layerwise(
    masks: list[Tensor],
    w_i: list[Tensor],
    w_f: list[Tensor],
    criterion: Criterion,
    rates: list[float],
    generator: torch.Generator,
) -> list[Tensor]:
    """One round of iterative layerwise pruning of one network (book/spec.md sections 1 and 4)."""
    return [
        prune_layer(m, wi, wf, criterion, number_to_keep(int(m.count_nonzero()), r), generator)
        for m, wi, wf, r in zip(masks, w_i, w_f, rates, strict=True)
    ]

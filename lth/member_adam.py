"""Adam (book/spec.md section 3) as K independent optimisers, one per member of a population.

Member independence (DESIGN.md, "The population engine") needs every member's arithmetic to be
the same whatever its companions: this module runs PyTorch's fused Adam kernel on each member's
slice of each stacked tensor separately.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.optim.adam import adam as _functional_adam

from .protocol import Protocol


def member_views(tensors: Sequence[Tensor]) -> list[Tensor]:
    """Every member's slice of every stacked ``(K, ...)`` tensor, tensor by tensor: the unit of
    work of the member-wise optimisers, so that no kernel ever sees two members at once."""
    return [t[j] for t in tensors for j in range(t.shape[0])]


class MemberAdam:
    """Adam (book/spec.md section 3) as K independent optimisers over stacked ``(K, ...)`` tensors.

    Each member's slice of every tensor is updated by its own call of PyTorch's fused Adam
    kernel, so a member's arithmetic is the same whatever the population's size: one fused call
    over a whole stacked tensor would put different elements of a member in the kernel's vector
    loop or its scalar tail (and split it differently between threads) for different K, and the
    two round differently. Members stay bit-for-bit independent of their companions
    (DESIGN.md, "The population engine"). ``step`` consumes and clears the gradients.

    ``replaced`` maps (tensor index, member) to a tensor trained in that slice's place: the
    kept values of a layer the member runs sparse (:mod:`lth.sparse`), whose moments live in
    ``sparse_avg``/``sparse_avg_sq``.
    """

    def __init__(
        self,
        params: Sequence[Tensor],
        protocol: Protocol,
        replaced: dict[tuple[int, int], Tensor] | None = None,
    ):
        self.params = list(params)
        self.k = self.params[0].shape[0]
        self.replaced = dict(replaced or {})
        self.hyper = {
            "lr": protocol.lr,
            "beta1": protocol.betas[0],
            "beta2": protocol.betas[1],
            "eps": protocol.eps,
            "weight_decay": 0.0,
            "amsgrad": False,
            "maximize": False,
        }
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.sparse_avg = {pair: torch.zeros_like(v) for pair, v in self.replaced.items()}
        self.sparse_avg_sq = {pair: torch.zeros_like(v) for pair, v in self.replaced.items()}
        device = self.params[0].device
        self.steps = [torch.zeros((), device=device) for _ in range(self.k * len(self.params))]
        self.units = [(i, j) for i in range(len(self.params)) for j in range(self.k)]
        # every unit's parameter and moments, as views that stay valid: updates are in place
        self.views = [self._unit(i, j) for i, j in self.units]

    def _unit(self, i: int, j: int) -> tuple[Tensor, Tensor, Tensor]:
        if (i, j) in self.replaced:
            return (
                self.replaced[i, j].detach(),
                self.sparse_avg[i, j],
                self.sparse_avg_sq[i, j],
            )
        return self.params[i].detach()[j], self.exp_avg[i][j], self.exp_avg_sq[i][j]

    def _grad(self, i: int, j: int) -> Tensor:
        if (i, j) in self.replaced:
            return self.replaced[i, j].grad
        return self.params[i].grad[j]

    @torch.no_grad()
    def step(self) -> None:
        params, exp_avg, exp_avg_sq = zip(*self.views, strict=True)
        _functional_adam(
            list(params),
            [self._grad(i, j) for i, j in self.units],
            list(exp_avg),
            list(exp_avg_sq),
            [],
            self.steps,
            fused=True,
            **self.hyper,
        )
        for p in (*self.params, *self.replaced.values()):
            p.grad = None

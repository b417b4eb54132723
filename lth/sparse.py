"""Sparse rounds: a pruned linear layer that costs what remains (issue "Sparse rounds").

In the lottery ticket's rounds (mask-0 action ``zero``, book/spec.md section 7) a pruned weight is
exactly zero for the whole round, so a layer's product needs only its kept entries. For such a
layer a member keeps its trainable weights as a vector of the kept values (in the CSR order of
the layer's transpose) and computes, with PyTorch's CSR kernels:

- the forward product ``y = x @ w`` as ``y^T = w^T x^T`` (``torch.sparse.mm``);
- the weight gradient at kept entries only (``torch.sparse.sampled_addmm``);
- the input gradient, where a layer below needs it, with the CSR of ``w`` itself;
- Adam on the kept values only (:class:`lth.train.MemberAdam`).

The same network is trained as on the dense path, the pruned entries stay exactly zero, but the
arithmetic is summed in another order, so a run computed this way is a different spec: the
layers that run sparse are named in the run's spec (:func:`sparse_layers`), which is a function
of the network, the round, the mask-0 action and the precision alone, so a spec still fixes its
result bit for bit. The threshold :data:`SPARSE_BELOW` comes from ``benchmarks/sparse.py``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:  # lth.nets imports this module
    from .nets import Architecture

#: A linear layer runs sparse from the round whose remaining fraction is below this, measured on
#: the project's 2-core CPU (benchmarks/sparse.py): FC's fc1 and fc2 from round 9 (13.4%), where
#: even a population of one runs no slower than dense (at 21%, K=1 ran at 0.9x).
SPARSE_BELOW = 0.15

#: Training speed (validation included) of a sparse FC round over the dense engine, by fc1's
#: remaining fraction, measured on the project's 2-core CPU at the campaign's populations of 8:
#: ``benchmarks/sparse.py --members 8 --eval full --iterations 300 --rounds 9 10 13 16 20 24``
#: (2026-12-01; dense 61-66k model-samples/s). Random masks gain more than the campaign's real
#: ones: the estimates scale this to the recorded rounds (:func:`lth.costs.measured_speedups`).
MEASURED_FC_SPEEDUP: tuple[tuple[float, float], ...] = (
    (0.135, 1.33),
    (0.108, 1.52),
    (0.056, 2.17),
    (0.029, 2.60),
    (0.012, 3.24),
    (0.005, 3.41),
)

#: Mask-0 actions whose pruned weights are all exactly zero: only these can run sparse.
ZERO_MASK0 = ("zero",)

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


def sparse_layers(arch: Architecture, round_: int, mask0: str, precision: str) -> tuple[str, ...]:
    """Names of the linear layers of ``arch`` that run sparse at ``round_`` of a chain with the
    mask-0 action ``mask0``: those whose remaining fraction ``(1 - rate) ** round_`` (book/spec.md
    section 4) is below :data:`SPARSE_BELOW`, when the pruned weights are zero and the precision
    is fp32 (the CSR kernels have no bf16 autocast). The conv nets run dense: their conv layers
    are most of their cost (Conv2's fc layers are about a tenth of its multiply-adds), and
    their sparse fc layers have not been measured to pay (``benchmarks/sparse.py --net
    conv2``)."""
    conv = any(layer.kind == "conv" for layer in arch.layers)
    if round_ == 0 or mask0 not in ZERO_MASK0 or precision != "fp32" or conv:
        return ()
    return tuple(
        layer.name
        for layer in arch.layers
        if layer.kind == "linear" and (1.0 - layer.rate) ** round_ < SPARSE_BELOW
    )


def estimated_speedup(arch: Architecture, round_: int, layers: Sequence[str]) -> float:
    """How much faster than dense a round with ``layers`` sparse trains, by
    :data:`MEASURED_FC_SPEEDUP` interpolated in log density (1 for other networks: their
    sparse linear layers are a small part of their cost, not yet measured)."""
    if arch.name != "fc" or not layers:
        return 1.0
    density = (1.0 - arch.layers[0].rate) ** round_
    points = sorted(MEASURED_FC_SPEEDUP)  # sparsest first
    if density <= points[0][0]:
        return points[0][1]
    if density >= points[-1][0]:
        return points[-1][1]
    for (d0, s0), (d1, s1) in zip(points, points[1:], strict=False):
        if d0 <= density <= d1:
            t = math.log(density / d0) / math.log(d1 / d0)
            return s0 + t * (s1 - s0)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class SparseLayout:
    """Where one member's kept weights lie in a ``(fan_in, fan_out)`` linear weight.

    ``crow``/``col`` are the CSR structure of the transpose ``w^T`` (``fan_out x fan_in``), the
    order of the value vector; ``flat`` the position of each value in ``w.reshape(-1)``;
    ``crow_t``/``col_t`` the CSR structure of ``w`` itself, whose values are
    ``values[perm]``."""

    shape: tuple[int, int]
    crow: Tensor
    col: Tensor
    flat: Tensor
    crow_t: Tensor
    col_t: Tensor
    perm: Tensor

    @classmethod
    def from_mask(cls, mask: Tensor) -> SparseLayout:
        fan_in, fan_out = mask.shape
        out_idx, in_idx = mask.t().nonzero(as_tuple=True)  # row-major order of w^T: CSR order
        flat = in_idx * fan_out + out_idx
        crow = _crow(out_idx, fan_out)
        perm = torch.argsort(flat, stable=True)  # row-major order of w: its CSR order
        crow_t = _crow(in_idx[perm], fan_in)
        return cls((fan_in, fan_out), crow, in_idx, flat, crow_t, out_idx[perm], perm)

    @property
    def nnz(self) -> int:
        return len(self.flat)

    def to(self, device: torch.device) -> SparseLayout:
        move = [t.to(device) for t in (self.crow, self.col, self.flat, self.crow_t)]
        return SparseLayout(self.shape, *move, self.col_t.to(device), self.perm.to(device))

    def gather(self, w: Tensor) -> Tensor:
        """The kept values of one member's weight ``w``, in CSR order (a copy)."""
        return w.reshape(-1)[self.flat]

    def scatter(self, values: Tensor, w: Tensor) -> None:
        """Write ``values`` back into the kept entries of ``w`` (in place)."""
        w.view(-1)[self.flat] = values

    def transpose_matrix(self, values: Tensor) -> Tensor:
        """``w^T`` as a CSR matrix ``(fan_out, fan_in)``."""
        fan_in, fan_out = self.shape
        return torch.sparse_csr_tensor(
            self.crow, self.col, values, (fan_out, fan_in), check_invariants=False
        )

    def matrix(self, values: Tensor) -> Tensor:
        """``w`` as a CSR matrix ``(fan_in, fan_out)``."""
        return torch.sparse_csr_tensor(
            self.crow_t, self.col_t, values[self.perm], self.shape, check_invariants=False
        )


def _crow(rows: Tensor, n_rows: int) -> Tensor:
    counts = torch.bincount(rows, minlength=n_rows)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


class SparseBlock:
    """The members of one linear layer that run sparse, as one block-diagonal CSR matrix: one
    product for all of them instead of one per member. Each output row is computed from its
    own row's kept entries alone, in their CSR order, so a member's arithmetic does not depend
    on its companions (DESIGN.md, "The population engine"; tested).

    ``members`` are the population indices of the sparse members, in block order."""

    def __init__(self, members: Sequence[int], layouts: Sequence[SparseLayout]):
        self.members = list(members)
        self.shape = layouts[0].shape
        fan_in, fan_out = self.shape
        counts = [layout.nnz for layout in layouts]
        pairs = list(zip(layouts, [sum(counts[:n]) for n in range(len(counts))], strict=True))
        first = layouts[0].crow[:1]
        self.crow = torch.cat([first] + [lay.crow[1:] + o for lay, o in pairs])
        self.col = torch.cat([lay.col + n * fan_in for n, lay in enumerate(layouts)])
        self.col_shared = torch.cat([lay.col for lay in layouts])  # rows stacked, one input
        self.crow_t = torch.cat([first] + [lay.crow_t[1:] + o for lay, o in pairs])
        self.col_t = torch.cat([lay.col_t + n * fan_out for n, lay in enumerate(layouts)])
        self.perm = torch.cat([lay.perm + o for lay, o in pairs])
        self.index = torch.tensor(self.members, device=self.crow.device)

    @property
    def size(self) -> int:
        return len(self.members)

    def transpose_matrix(self, values: Tensor, shared: bool = False) -> Tensor:
        """Every member's ``w^T`` on the block diagonal, ``(Ks * fan_out, Ks * fan_in)``, or,
        for one input shared by all, stacked: ``(Ks * fan_out, fan_in)``."""
        fan_in, fan_out = self.shape
        rows, cols = self.size * fan_out, fan_in if shared else self.size * fan_in
        col = self.col_shared if shared else self.col
        return torch.sparse_csr_tensor(self.crow, col, values, (rows, cols), check_invariants=False)

    def matrix(self, values: Tensor) -> Tensor:
        """Every member's ``w`` on the block diagonal, ``(Ks * fan_in, Ks * fan_out)``."""
        fan_in, fan_out = self.shape
        size = (self.size * fan_in, self.size * fan_out)
        return torch.sparse_csr_tensor(
            self.crow_t, self.col_t, values[self.perm], size, check_invariants=False
        )


class _BlockLinear(torch.autograd.Function):
    """``x_j @ w_j + b_j`` for every member j of a :class:`SparseBlock`: ``h`` is ``(Ks, B,
    fan_in)``, or ``(B, fan_in)`` shared by all; ``values`` the members' kept values end to end;
    ``bias`` ``(Ks, fan_out)``; ``relu``: apply ReLU to the result. Returns ``(Ks, B,
    fan_out)``."""

    @staticmethod
    def forward(ctx, h, values, bias, block: SparseBlock, relu: bool):
        fan_in, fan_out = block.shape
        shared = h.dim() == 2
        if shared:
            xt = h.t().contiguous()  # (fan_in, B)
        else:
            xt = h.transpose(1, 2).contiguous().view(block.size * fan_in, -1)  # (Ks*in, B)
        yt = torch.sparse.mm(block.transpose_matrix(values, shared), xt)
        yt = yt.view(block.size, fan_out, -1)
        yt += bias.unsqueeze(2)
        if relu:
            yt = torch.relu_(yt)
        if any(ctx.needs_input_grad):
            if shared:
                raise NotImplementedError("a shared batch is for evaluation, without gradients")
            ctx.block, ctx.relu = block, relu
            ctx.save_for_backward(xt, values, yt)
        return yt.transpose(1, 2)

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        xt, values, yt = ctx.saved_tensors
        block: SparseBlock = ctx.block
        fan_in, fan_out = block.shape
        gyt = grad_y.transpose(1, 2).contiguous()  # (Ks, out, B)
        if ctx.relu:
            gyt = gyt.mul_(yt > 0)
        gyt = gyt.view(block.size * fan_out, -1)
        grad_h = grad_values = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_h = torch.sparse.mm(block.matrix(values), gyt)
            grad_h = grad_h.view(block.size, fan_in, -1).transpose(1, 2)
        if ctx.needs_input_grad[1]:
            sampled = torch.sparse.sampled_addmm(
                block.transpose_matrix(values), gyt, xt.t(), beta=0.0
            )
            grad_values = sampled.values()
        if ctx.needs_input_grad[2]:
            grad_bias = gyt.view(block.size, fan_out, -1).sum(2)
        return grad_h, grad_values, grad_bias, None, None


def sparse_linear(
    h: Tensor, values: Tensor, bias: Tensor, block: SparseBlock, relu: bool = False
) -> Tensor:
    """The linear layer of every member of ``block`` on its kept weights, then ReLU if
    ``relu``: ``h`` is ``(Ks, B, fan_in)`` (or ``(B, fan_in)`` shared), ``values`` the members'
    kept values end to end, ``bias`` ``(Ks, fan_out)``; returns ``(Ks, B, fan_out)``."""
    return _BlockLinear.apply(h, values, bias, block, relu)


#: What :meth:`lth.nets.Population.forward` takes for its sparse layers: layer index -> (the
#: layer's :class:`SparseBlock`, its members' kept values end to end).
SparseWeights = Mapping[int, tuple[SparseBlock, Tensor]]


class SparseMembers:
    """The (layer, member) pairs of a population that run sparse, with their layouts.

    ``plan[j]`` holds the layer indices member j runs sparse. Each such layer must be linear and
    its pruned weights exactly zero (the mask-0 action ``zero``): anything else is refused."""

    def __init__(self, arch: Architecture, weights, masks, plan: Sequence[Sequence[int]]):
        self.layouts: dict[tuple[int, int], SparseLayout] = {}
        for j, layers in enumerate(plan):
            for i in layers:
                layer = arch.layers[i]
                if layer.kind != "linear":
                    raise ValueError(
                        f"{layer.name} is a {layer.kind} layer: only linear run sparse"
                    )
                w, m = weights[i][j], masks[i][j]
                if bool((w * (1 - m)).any()):
                    raise ValueError(
                        f"member {j}, {layer.name}: pruned weights are not all zero, so it "
                        "cannot run sparse (only the mask-0 action 'zero' can)"
                    )
                self.layouts[i, j] = SparseLayout.from_mask(m).to(w.device)
        self.blocks: dict[int, SparseBlock] = {}
        for i in sorted({i for i, _ in self.layouts}):
            members = sorted(j for layer, j in self.layouts if layer == i)
            self.blocks[i] = SparseBlock(members, [self.layouts[i, j] for j in members])

    def __bool__(self) -> bool:
        return bool(self.layouts)

    def gather(self, weights: Sequence[Tensor]) -> dict[tuple[int, int], Tensor]:
        """Every sparse pair's kept values from stacked ``(K, ...)`` tensors (copies)."""
        return {(i, j): lay.gather(weights[i][j]) for (i, j), lay in self.layouts.items()}

    def scatter(self, values: Mapping[tuple[int, int], Tensor], weights: Sequence[Tensor]):
        """Write every sparse pair's values back into stacked tensors (in place)."""
        with torch.no_grad():
            for (i, j), lay in self.layouts.items():
                lay.scatter(values[i, j].detach(), weights[i][j])

    def bind(self, values: Mapping[tuple[int, int], Tensor]) -> dict:
        """The ``sparse`` argument of :meth:`lth.nets.Population.forward`."""
        return {
            i: (block, torch.cat([values[i, j] for j in block.members]))
            for i, block in self.blocks.items()
        }

"""The paper's networks as populations of K independent members (PAPER.md section 2).

A network is described once, as an :class:`Architecture` (its layers, their shapes and their
per-round pruning rates). A :class:`Population` holds K members of one architecture with their
weights stacked along a leading member axis, so one batched computation trains all of them:
linear layers run as ``torch.baddbmm`` over the member axis. K=1 is the same code path.

Each member has its own mask. Pruned weights keep a fixed value (zero for the lottery ticket's
mask-0 action, something else for the other mask-0 actions of section 7) and never receive an
update: the training loop multiplies every weight gradient by the mask, which is the same as
computing ``w_eff = m * w + (1 - m) * w_frozen`` with the frozen values stored in the pruned
entries of ``w`` itself (see :mod:`lth.train`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class Layer:
    """One prunable layer: ``shape`` is the per-member weight shape, ``rate`` the fraction of
    its remaining weights pruned each round (PAPER.md section 4)."""

    name: str
    kind: str  # "linear": weight (fan_in, fan_out)
    shape: tuple[int, ...]
    rate: float

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def fans(self) -> tuple[int, int]:
        """(fan_in, fan_out) as TensorFlow's glorot initialisers count them."""
        if self.kind == "linear":
            return self.shape[0], self.shape[1]
        raise ValueError(f"unknown layer kind {self.kind!r}")


@dataclass(frozen=True)
class Architecture:
    """A network of the paper: its dataset, input shape and prunable layers."""

    name: str
    dataset: str
    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    num_classes: int = 10
    description: str = field(default="", compare=False)

    @property
    def num_weights(self) -> int:
        """Number of weights, biases excluded (the denominator of "percent remaining")."""
        return sum(layer.size for layer in self.layers)


def _fc(name: str, sizes: Sequence[int], hidden_rate: float, output_rate: float) -> Architecture:
    layers = tuple(
        Layer(
            name=f"fc{i + 1}",
            kind="linear",
            shape=(fan_in, fan_out),
            rate=output_rate if i == len(sizes) - 2 else hidden_rate,
        )
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
    )
    return Architecture(
        name=name,
        dataset="mnist",
        input_shape=(1, 28, 28),
        layers=layers,
        description="LeNet-300-100 on MNIST",
    )


#: The networks of PAPER.md section 2. Conv2/4/6 join this registry with CIFAR-10.
ARCHITECTURES: dict[str, Architecture] = {
    "fc": _fc("fc", (784, 300, 100, 10), hidden_rate=0.2, output_rate=0.1),
}


def get_architecture(name: str) -> Architecture:
    """Look up a network by name; an unknown name lists the accepted ones."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(
            f"unknown network {name!r}; accepted: {', '.join(sorted(ARCHITECTURES))}"
        ) from None


def seeded_generator(*parts: object) -> torch.Generator:
    """A CPU generator whose seed is a stable hash of ``parts`` (e.g. ``(seed, "init")``).

    Every random choice of the library draws from a generator made here, so a run's seed fixes
    it, and different purposes (init, batch order, tie-break) never share a stream.
    """
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def glorot_normal_truncated(layer: Layer, generator: torch.Generator) -> Tensor:
    """TensorFlow's ``glorot_normal``: a normal truncated at two standard deviations whose
    standard deviation after truncation is ``sqrt(2 / (fan_in + fan_out))`` (PAPER.md section 2).
    """
    fan_in, fan_out = layer.fans
    std = math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978  # std of N(0,1) cut at +-2
    w = torch.empty(layer.shape)
    return torch.nn.init.trunc_normal_(w, 0.0, std, -2.0 * std, 2.0 * std, generator=generator)


def initial_weights(arch: Architecture, seed: int) -> list[Tensor]:
    """One member's initial weights w_i, one tensor per layer, fixed by ``seed``."""
    generator = seeded_generator(seed, "init")
    return [glorot_normal_truncated(layer, generator) for layer in arch.layers]


@dataclass
class Population:
    """K members of one architecture: weights, biases and masks stacked on a member axis.

    ``weights[l]`` and ``masks[l]`` have shape ``(K, *layer.shape)``; ``biases[l]`` has shape
    ``(K, fan_out)``. Biases are trained and never pruned (PAPER.md section 2).
    """

    arch: Architecture
    weights: list[Tensor]
    biases: list[Tensor]
    masks: list[Tensor]

    @classmethod
    def from_members(
        cls,
        arch: Architecture,
        weights: Sequence[Sequence[Tensor]],
        masks: Sequence[Sequence[Tensor]],
    ) -> Population:
        """Stack per-member weight and mask lists; biases start at zero."""
        if len(weights) != len(masks) or not weights:
            raise ValueError("need one weight list and one mask list per member, at least one")
        stacked_w = [torch.stack([w[i] for w in weights]).float() for i in range(len(arch.layers))]
        stacked_m = [torch.stack([m[i] for m in masks]).float() for i in range(len(arch.layers))]
        biases = [torch.zeros(len(weights), layer.shape[-1]) for layer in arch.layers]
        return cls(arch, stacked_w, biases, stacked_m)

    @property
    def size(self) -> int:
        """Number of members K."""
        return self.weights[0].shape[0]

    def to(self, device: torch.device | str) -> Population:
        move = [t.to(device) for t in (*self.weights, *self.biases, *self.masks)]
        n = len(self.weights)
        return Population(self.arch, move[:n], move[n : 2 * n], move[2 * n :])

    def forward(self, x: Tensor, weights: Sequence[Tensor] | None = None, biases=None) -> Tensor:
        """Logits of every member, shape ``(K, B, classes)``.

        ``x`` is either one batch per member, ``(K, B, *input_shape)``, or one batch shared by
        all members, ``(B, *input_shape)``. ``weights``/``biases`` default to the population's.
        """
        weights = self.weights if weights is None else weights
        biases = self.biases if biases is None else biases
        k = weights[0].shape[0]
        shared = x.dim() == len(self.arch.input_shape) + 1
        h = x.reshape(x.shape[0], -1) if shared else x.reshape(k, x.shape[1], -1)
        last = len(weights) - 1
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            if h.dim() == 2:  # shared input: one GEMM (B, in) @ (in, K * out) -> (K, B, out)
                out = w.shape[-1]
                w_all = w.permute(1, 0, 2).reshape(w.shape[1], k * out)
                h = torch.addmm(b.reshape(-1), h, w_all).view(-1, k, out).transpose(0, 1)
            else:
                h = torch.baddbmm(b.unsqueeze(1), h, w)
            if i < last:
                h = torch.relu_(h)
        return h


def percent_remaining(arch: Architecture, masks: Sequence[Tensor]) -> float:
    """Percent of the network's weights still unpruned (the x-axis of every figure)."""
    kept = sum(int(m.count_nonzero()) for m in masks)
    return 100.0 * kept / arch.num_weights

"""The paper's networks as populations of K independent members (book/spec.md section 2).

A network is described once, as an :class:`Architecture` (its layers, their shapes, where the
max-pools go and the per-round pruning rates). A :class:`Population` holds K members of one
architecture with their weights stacked along a leading member axis, so one batched computation
trains all of them: linear layers run as ``torch.baddbmm`` over the member axis, conv layers as
one ``F.conv2d`` per member (see :meth:`Population.forward` for why). K=1 is the same code path.
A linear layer that a member's round runs sparse (:mod:`lth.sparse`) is computed on its kept
weights only, all such members of the layer in one block-diagonal CSR product.

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
import torch.nn.functional as F
from torch import Tensor

from .protocol import Protocol
from .registry import Registry
from .sparse import SparseWeights, sparse_linear


@dataclass(frozen=True)
class Layer:
    """One prunable layer: ``shape`` is the per-member weight shape, ``rate`` the fraction of
    its remaining weights pruned each round (book/spec.md section 4).

    Weight layouts: ``"linear"`` is ``(fan_in, fan_out)`` (``x @ w``); ``"conv"`` is PyTorch's
    ``(out_channels, in_channels, 3, 3)``, a 3x3 convolution with stride 1 and same padding,
    followed by ReLU and, if ``pool_after``, a 2x2 max-pool with stride 2 (book/spec.md section 2).
    Every layer but the last is followed by ReLU.
    """

    name: str
    kind: str  # "linear" or "conv"
    shape: tuple[int, ...]
    rate: float
    pool_after: bool = False

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def num_outputs(self) -> int:
        """Output features (linear) or channels (conv): the length of the layer's bias."""
        if self.kind == "linear":
            return self.shape[1]
        if self.kind == "conv":
            return self.shape[0]
        raise ValueError(f"unknown layer kind {self.kind!r}")

    @property
    def fans(self) -> tuple[int, int]:
        """(fan_in, fan_out) as TensorFlow's glorot initialisers count them: a conv layer's
        include the kernel area, ``in * 3 * 3`` and ``out * 3 * 3`` (book/spec.md section 2)."""
        if self.kind == "linear":
            return self.shape[0], self.shape[1]
        if self.kind == "conv":
            out_channels, in_channels, *kernel = self.shape
            area = math.prod(kernel)
            return in_channels * area, out_channels * area
        raise ValueError(f"unknown layer kind {self.kind!r}")


@dataclass(frozen=True)
class Architecture:
    """A network of the paper: its dataset, input shape and prunable layers.

    Conv layers come first, then linear ones. Before the first linear layer each member's
    last feature maps are flattened in ``(H, W, C)`` order (channel fastest), as the official
    TensorFlow code's NHWC flatten does: row ``(h * W + w) * C + c`` of the first fc weight
    takes channel ``c`` at position ``(h, w)``.
    """

    name: str
    dataset: str
    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    protocol: Protocol
    num_classes: int = 10
    description: str = field(default="", compare=False)
    #: training model-samples/s measured on the 2-core development CPU (fp32), for estimates
    rate_hint: float = field(default=50_000.0, compare=False)

    def __post_init__(self) -> None:
        self.feature_shapes()  # raises if the layers do not fit together

    @property
    def num_weights(self) -> int:
        """Number of weights, biases excluded (the denominator of "percent remaining")."""
        return sum(layer.size for layer in self.layers)

    def feature_shapes(self) -> list[tuple[int, ...]]:
        """Per-sample shape of each layer's input, then of the logits (pools applied)."""
        shape = tuple(self.input_shape)
        shapes = [shape]
        for i, layer in enumerate(self.layers):
            if layer.kind == "conv":
                if len(shape) != 3 or shape[0] != layer.shape[1]:
                    raise ValueError(f"{self.name}: {layer.name} {layer.shape} cannot take {shape}")
                _, h, w = shape
                shape = (
                    (layer.shape[0], h // 2, w // 2) if layer.pool_after else (layer.shape[0], h, w)
                )
            elif layer.kind == "linear":
                if math.prod(shape) != layer.shape[0]:
                    raise ValueError(f"{self.name}: {layer.name} {layer.shape} cannot take {shape}")
                if any(later.kind == "conv" for later in self.layers[i:]):
                    raise ValueError(f"{self.name}: conv layers must all come before linear ones")
                shape = (layer.shape[1],)
            else:
                raise ValueError(f"{self.name}: unknown layer kind {layer.kind!r}")
            shapes.append(shape)
        if shapes[-1] != (self.num_classes,):
            raise ValueError(f"{self.name}: {shapes[-1]} logits for {self.num_classes} classes")
        return shapes

    @property
    def forward_macs(self) -> int:
        """Multiply-accumulates of one sample's forward pass: a conv layer costs
        ``H * W * out * in * 3 * 3`` at its input's spatial size (stride 1, same padding), a
        linear layer ``fan_in * fan_out``. A training step costs about 3 x 2 x this in FLOPs."""
        total = 0
        for layer, shape in zip(self.layers, self.feature_shapes(), strict=False):
            spatial = math.prod(shape[1:]) if layer.kind == "conv" else 1
            total += spatial * layer.size
        return total

    @property
    def largest_activation(self) -> int:
        """Most numbers one sample's activation holds at any layer (sizes evaluation chunks)."""
        biggest = math.prod(self.input_shape)
        for layer, shape in zip(self.layers, self.feature_shapes(), strict=False):
            if layer.kind == "conv":
                biggest = max(biggest, layer.shape[0] * math.prod(shape[1:]))
            else:
                biggest = max(biggest, layer.shape[1])
        return biggest


def _fc(
    name: str,
    sizes: Sequence[int],
    hidden_rate: float,
    output_rate: float,
    protocol: Protocol,
    rate_hint: float,
) -> Architecture:
    return Architecture(
        name=name,
        dataset="mnist",
        input_shape=(1, 28, 28),
        layers=_linear_layers(sizes, hidden_rate, output_rate),
        protocol=protocol,
        description="LeNet-300-100 on MNIST",
        rate_hint=rate_hint,
    )


def _linear_layers(
    sizes: Sequence[int], hidden_rate: float, output_rate: float, first: int = 1
) -> tuple[Layer, ...]:
    return tuple(
        Layer(
            name=f"fc{first + i}",
            kind="linear",
            shape=(fan_in, fan_out),
            rate=output_rate if i == len(sizes) - 2 else hidden_rate,
        )
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
    )


def _conv(
    name: str, widths: Sequence[int], conv_rate: float, protocol: Protocol, rate_hint: float
) -> Architecture:
    """Conv-2/4/6 of book/spec.md section 2 on CIFAR-10: 3x3 conv layers of ``widths`` channels with
    a 2x2 max-pool after every second one, then fc256, fc256, fc10. Pruning rates of section 4:
    ``conv_rate`` for the conv layers, 20% for the fc layers, 10% for the output layer."""
    channels = (3, *widths)
    convs = tuple(
        Layer(
            name=f"conv{i + 1}",
            kind="conv",
            shape=(channels[i + 1], channels[i], 3, 3),
            rate=conv_rate,
            pool_after=i % 2 == 1,
        )
        for i in range(len(widths))
    )
    side = 32 // 2 ** (len(widths) // 2)
    fcs = _linear_layers((widths[-1] * side * side, 256, 256, 10), 0.2, 0.1)
    return Architecture(
        name=name,
        dataset="cifar10",
        input_shape=(3, 32, 32),
        layers=convs + fcs,
        protocol=protocol,
        description=f"Conv-{len(widths)} on CIFAR-10",
        rate_hint=rate_hint,
    )


#: The networks of book/spec.md section 2, each declared once: its dataset, layers and pruning
#: rates (section 4), its training protocol (section 3: iterations, batch, Adam's rate) and the
#: training rate measured on the development CPU (model-samples/s, fp32; for estimates: the conv
#: nets' from ``python benchmarks/throughput.py --nets conv2 conv4 conv6 --members 2``,
#: 2026-12-02, 2 threads, the engine at a population of 2, as their dense runs train). The
#: dataset's split (training/validation/test sizes) is the dataset's: :data:`lth.data.SPLITS`.
ARCHITECTURES: Registry[Architecture] = Registry(
    "network",
    (
        (
            "fc",
            _fc("fc", (784, 300, 100, 10), 0.2, 0.1, Protocol(50_380, 60, 1.2e-3), 50_000),
        ),
        ("conv2", _conv("conv2", (64, 64), 0.1, Protocol(20_250, 60, 2e-4), 740)),
        ("conv4", _conv("conv4", (64, 64, 128, 128), 0.1, Protocol(25_500, 60, 3e-4), 497)),
        (
            "conv6",
            _conv("conv6", (64, 64, 128, 128, 256, 256), 0.15, Protocol(30_000, 60, 3e-4), 359),
        ),
    ),
)


def get_architecture(name: str) -> Architecture:
    """Look up a network by name; an unknown name lists the accepted ones."""
    return ARCHITECTURES.lookup(name)


def seeded_generator(*parts: object) -> torch.Generator:
    """A CPU generator whose seed is a stable hash of ``parts`` (e.g. ``(seed, "init")``).

    Every random choice of the library draws from a generator made here, so a run's seed fixes
    it, and different purposes (init, batch order, tie-break) never share a stream.
    """
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def glorot_normal_truncated(layer: Layer, generator: torch.Generator) -> Tensor:
    """TensorFlow's ``glorot_normal``: a normal truncated at two standard deviations whose
    standard deviation after truncation is ``sqrt(2 / (fan_in + fan_out))`` (book/spec.md,
    section 2)."""
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
    ``(K, layer.num_outputs)``. Biases are trained and never pruned (book/spec.md section 2).
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
        biases = [torch.zeros(len(weights), layer.num_outputs) for layer in arch.layers]
        return cls(arch, stacked_w, biases, stacked_m)

    @property
    def size(self) -> int:
        """Number of members K."""
        return self.weights[0].shape[0]

    def to(self, device: torch.device | str) -> Population:
        move = [t.to(device) for t in (*self.weights, *self.biases, *self.masks)]
        n = len(self.weights)
        return Population(self.arch, move[:n], move[n : 2 * n], move[2 * n :])

    def forward(
        self,
        x: Tensor,
        weights: Sequence[Tensor] | None = None,
        biases: Sequence[Tensor] | None = None,
        sparse: SparseWeights | None = None,
    ) -> Tensor:
        """Logits of every member, shape ``(K, B, classes)``.

        ``x`` is either one batch per member, ``(K, B, *input_shape)``, or one batch shared by
        all members, ``(B, *input_shape)``. ``weights``/``biases`` default to the population's.
        ``sparse`` maps a linear layer's index to the members that compute it on their kept
        weights, and those weights (:mod:`lth.sparse`); the layer's other members still run as
        one batched GEMM.

        Conv layers run as one ``F.conv2d`` per member on channels-last activations, each
        member's whole conv stack in turn; its last feature maps are then flattened in
        ``(H, W, C)`` order (a free view of channels-last memory) and stacked to ``(K, B, F)``
        for the linear layers: batched GEMMs, which multiply member by member, so that each
        member's products are computed the same way whatever K is (a shared batch is not merged
        into one wider GEMM for the same reason: its blocking would depend on K). The per-member
        loop was the fastest of the candidates measured (grouped convolution, ``vmap``) on this
        project's CPU, channels-last 10-25% faster than NCHW: the measurements are in
        ``benchmarks/NOTES.md``.
        """
        weights = self.weights if weights is None else weights
        biases = self.biases if biases is None else biases
        k = weights[0].shape[0]
        shared = x.dim() == len(self.arch.input_shape) + 1
        n_conv = sum(layer.kind == "conv" for layer in self.arch.layers)
        if n_conv:
            cl = torch.channels_last
            if shared:
                members = [x.contiguous(memory_format=cl)] * k
            else:
                members = [m.contiguous(memory_format=cl) for m in x.unbind(0)]
            features = [
                self._conv_stack(
                    h, [w[j] for w in weights[:n_conv]], [b[j] for b in biases[:n_conv]]
                )
                for j, h in enumerate(members)
            ]
            h = torch.stack(features)  # (K, B, H * W * C), each member flattened (H, W, C)
        elif shared:  # the same batch for every member, as a free (K, B, in) view
            h = x.reshape(1, x.shape[0], -1).expand(k, -1, -1)
        else:
            h = x.reshape(k, x.shape[1], -1)
        rows = h.shape[1]
        if rows == 1:  # one row is a matrix-vector product, whose rounding depends on where
            h = torch.cat([h, torch.zeros_like(h)], dim=1)  # its member's slice lies: pad it
        last = len(weights) - 1
        for i in range(n_conv, len(weights)):
            if sparse and i in sparse:  # ReLU included
                h = _mixed_linear(h, weights[i], biases[i], *sparse[i], relu=i < last)
                continue
            h = torch.baddbmm(biases[i].unsqueeze(1), h, weights[i])
            if i < last:
                h = torch.relu_(h)
        return h[:, :rows]

    def _conv_stack(self, h: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor]) -> Tensor:
        """One member's conv layers (book/spec.md section 2): a channels-last ``(B, C, H, W)`` batch
        -> its last feature maps flattened in ``(H, W, C)`` order, ``(B, H * W * C)``."""
        for layer, w, b in zip(self.arch.layers, weights, biases, strict=False):
            h = torch.relu_(F.conv2d(h, w, b, padding=1))
            if layer.pool_after:
                h = F.max_pool2d(h, kernel_size=2, stride=2)
        return h.permute(0, 2, 3, 1).flatten(1)  # a view: channels-last memory is (B, H, W, C)


def _mixed_linear(h: Tensor, w: Tensor, b: Tensor, block, values: Tensor, relu: bool) -> Tensor:
    """One linear layer (then ReLU if ``relu``) whose members in ``block``
    (:class:`lth.sparse.SparseBlock`) run on their kept weights, the others as one batched
    GEMM, as they would without sparse members."""
    k = w.shape[0]
    shared = h.stride(0) == 0  # one batch for every member (evaluation)
    if block.size == k:
        return sparse_linear(h[0] if shared else h, values, b, block, relu)
    sparse_h = h[0] if shared else h[block.index]
    sparse_out = sparse_linear(sparse_h, values, b[block.index], block, relu)
    dense = torch.tensor([j for j in range(k) if j not in block.members], device=w.device)
    dense_out = torch.baddbmm(b[dense].unsqueeze(1), h[dense], w[dense])
    if relu:
        dense_out = torch.relu_(dense_out)
    order = torch.cat([dense, block.index]).argsort()  # back to member order
    return torch.cat([dense_out, sparse_out])[order]


def percent_remaining(arch: Architecture, masks: Sequence[Tensor]) -> float:
    """Percent of the network's weights still unpruned (the x-axis of every figure)."""
    kept = sum(int(m.count_nonzero()) for m in masks)
    return 100.0 * kept / arch.num_weights

"""The training protocol of book/spec.md section 3 as data: Adam's settings, the schedule, and the
numeric precision a run trains in. Each network declares its own :class:`Protocol`
(:data:`lth.nets.ARCHITECTURES`); :mod:`lth.train` carries it out.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .registry import Registry


@dataclass(frozen=True)
class Protocol:
    """Optimiser and schedule of one network (book/spec.md section 3, Adam throughout)."""

    iterations: int
    batch_size: int = 60
    lr: float = 1.2e-3
    eval_every: int = 100
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"learning rate must be positive, got {self.lr}")

    def evaluation_points(self) -> list[int]:
        """Iterations at which validation loss is measured: 0, every ``eval_every``, the end."""
        points = list(range(0, self.iterations, self.eval_every))
        return points + [self.iterations]


#: Accepted values of ``precision``, each with the dtype its forward pass autocasts to: "fp32"
#: (the paper's; no autocast) and "bf16".
PRECISIONS: Registry[torch.dtype | None] = Registry(
    "precision", (("fp32", None), ("bf16", torch.bfloat16))
)


def check_precision(precision: str) -> str:
    """``precision`` itself if it is one of :data:`PRECISIONS`, else a ValueError."""
    PRECISIONS.lookup(precision)
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context the forward pass and the loss run in: bf16 autocast, or nothing for fp32.
    ``precision`` must already be checked (:func:`check_precision`)."""
    dtype = PRECISIONS[precision]
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)

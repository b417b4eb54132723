"""What a pruning chain needs to go on, in compact form committed beside its records (issue
"The paper at full scale", item 2; DESIGN.md, "Runs, results and caching").

Round r+1 of a chain starts (book/spec.md section 1) from the mask its criterion chooses from round
r's ``(w_i, w_f, mask)``, and from its mask-1 and mask-0 actions applied to round r's
``w_i`` (:func:`lth.actions.next_round_start`). The actions use ``w_f`` only through
"moved toward zero", ``abs(w_f) < abs(w_i)`` (the mask-0 variants of section 7), and their
random draws come from generators seeded by the run's key. So round r+1's start is a
deterministic function of round r's start and mask plus two bit masks, a :class:`Step`:
which of round r's kept weights round r+1 keeps, and, for the mask-0 actions that need it,
which weights moved toward zero. Round 0 starts from the seed's initial weights.

A step is stored bit-packed and compressed at ``<store>/chains/<key of round r+1>.npz`` with
the SHA-256 of the start it gives, so that a fresh clone on another machine continues every
chain from committed files without re-training a finished round; the weight cache only saves
time.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .actions import get_mask0_action, get_mask1_action, next_round_start
from .nets import seeded_generator
from .store import atomic_write

#: Mask-0 actions that read "moved toward zero" (book/spec.md section 7): their steps carry it.
NEEDS_TOWARD_ZERO = frozenset({"variant_1", "variant_2", "random_zero_control"})


@dataclass
class Step:
    """What round r+1 of a chain adds to round r's start: ``keep[l]`` (bool, one entry per
    weight that round r's mask kept, in flattened order) says which of them round r+1 keeps;
    ``toward_zero[l]`` (bool, the whole layer) is ``abs(w_f) < abs(w_i)`` of round r, or
    None when the chain's mask-0 action does not use it; ``start_sha256`` fingerprints the
    start this step gives (see :func:`start_digest`)."""

    keep: list[Tensor]
    toward_zero: list[Tensor] | None
    start_sha256: str


def start_digest(starts: Sequence[Tensor], trained: Sequence[Tensor], mask: Sequence[Tensor]):
    """SHA-256 of a round's start values, the tensor it trains and its mask."""
    digest = hashlib.sha256()
    for tensor in (*starts, *trained, *mask):
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def apply_step(
    chain, round_: int, w_i: Sequence[Tensor], mask: Sequence[Tensor], step: Step
) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Round ``round_``'s (start values, tensor to train, mask) of ``chain`` from round
    ``round_ - 1``'s start values and mask and the step between them."""
    new_mask = []
    for m, keep in zip(mask, step.keep, strict=True):
        flat = m.reshape(-1).clone()
        kept = flat.nonzero(as_tuple=True)[0]
        flat[kept[~keep]] = 0
        new_mask.append(flat.view(m.shape))
    mask1, mask0 = get_mask1_action(chain.mask1), get_mask0_action(chain.mask0)
    generator = seeded_generator(chain.run_key(round_), "mask-1")
    toward = step.toward_zero or [None] * len(mask)
    starts, trained = [], []
    for ws, m, tz in zip(w_i, new_mask, toward, strict=True):
        # a w_f with the same "moved toward zero" as round r's: 0 where it moved, else w_i
        wf = ws if tz is None else torch.where(tz, torch.zeros_like(ws), ws)
        start, train = next_round_start(ws, wf, m, mask1, mask0, generator)
        starts.append(start)
        trained.append(train)
    return starts, trained, new_mask


def make_step(
    chain,
    w_i: Sequence[Tensor],
    w_f: Sequence[Tensor],
    mask: Sequence[Tensor],
    new_mask: Sequence[Tensor],
    start: tuple[Sequence[Tensor], Sequence[Tensor], Sequence[Tensor]],
) -> Step:
    """The step from round r (its start, final weights and mask) to round r+1 (its new mask
    and the start it gives)."""
    keep = [n.reshape(-1)[m.reshape(-1) != 0] != 0 for m, n in zip(mask, new_mask, strict=True)]
    toward = None
    if chain.mask0 in NEEDS_TOWARD_ZERO:
        toward = [wf.abs() < ws.abs() for ws, wf in zip(w_i, w_f, strict=True)]
    return Step(keep, toward, start_digest(*start))


class ChainSteps:
    """The committed steps of every chain: ``<root>/<run key>.npz``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def save(self, key: str, step: Step) -> None:
        """Write ``step`` as the one leading to run ``key`` (once: a step never changes)."""
        arrays = {f"keep_{i}": _pack(k) for i, k in enumerate(step.keep)}
        for i, t in enumerate(step.toward_zero or []):
            arrays[f"toward_zero_{i}"] = _pack(t)
        meta = {
            "start_sha256": step.start_sha256,
            "keep": [int(k.numel()) for k in step.keep],
            "toward_zero": None
            if step.toward_zero is None
            else [list(t.shape) for t in step.toward_zero],
        }
        buffer = io.BytesIO()
        meta_bytes = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        np.savez_compressed(buffer, meta=meta_bytes, **arrays)
        atomic_write(self.path(key), lambda f: f.write(buffer.getvalue()), once=True)

    def load(self, key: str) -> Step | None:
        try:
            with np.load(self.path(key)) as files:
                meta = json.loads(files["meta"].tobytes())
                keep = [_unpack(files[f"keep_{i}"], n) for i, n in enumerate(meta["keep"])]
                toward = None
                if meta["toward_zero"] is not None:
                    toward = [
                        _unpack(files[f"toward_zero_{i}"], int(np.prod(shape))).view(shape)
                        for i, shape in enumerate(meta["toward_zero"])
                    ]
        except FileNotFoundError:
            return None
        return Step(keep, toward, meta["start_sha256"])

    def available(self, chain, round_: int) -> bool:
        """Whether the steps of rounds 1..``round_`` are all here (round ``round_`` can start
        from committed files alone)."""
        return all(chain.run_key(r) in self for r in range(1, round_ + 1))

    def rebuild(self, chain, round_: int, initial: Sequence[Tensor]):
        """Round ``round_``'s (start values, tensor to train, mask) of ``chain`` from the
        seed's ``initial`` weights and the committed steps; None if a step is missing, and an
        error if a step does not give the start it was made from."""
        starts, trained = list(initial), list(initial)
        mask = [torch.ones_like(w) for w in initial]
        for r in range(1, round_ + 1):
            step = self.load(chain.run_key(r))
            if step is None:
                return None
            starts, trained, mask = apply_step(chain, r, starts, mask, step)
            if start_digest(starts, trained, mask) != step.start_sha256:
                raise ValueError(
                    f"{self.path(chain.run_key(r))} does not give the start it was made from "
                    f"({chain}, round {r}): made by other code?"
                )
        return starts, trained, mask


def _pack(bits: Tensor) -> np.ndarray:
    return np.packbits(bits.reshape(-1).cpu().numpy().astype(bool))


def _unpack(packed: np.ndarray, count: int) -> Tensor:
    return torch.from_numpy(np.unpackbits(packed, count=count).astype(bool))

"""The paper's training protocol on a population of networks (book/spec.md section 3).

All K members train in one batched computation. Each member draws its own batches (members that
share an order seed share the batch order), has its own Adam state
(:class:`lth.member_adam.MemberAdam`) and its own early-stopping point. The loss is the sum
over members of each member's mean cross-entropy, so no member's gradient depends on another's.

Pruned weights never move: after every backward pass each weight gradient is multiplied by the
mask. With a fresh Adam whose moments start at zero, a weight whose gradient is always zero gets
an update of exactly zero, so the pruned entries keep, bit for bit, the values the mask-0 action
gave them. This is the paper's ``w_eff = m * w + (1 - m) * w_frozen`` with ``w_frozen`` stored in
the pruned entries of ``w``.

Validation loss is measured every ``eval_every`` iterations, before the first and after the last;
each member's weights at its minimum-validation-loss point are kept, and test accuracy is
measured once, at the end, on those weights: the paper's "test accuracy at early stopping".

Precision is a parameter of training (:data:`PRECISIONS`): ``"fp32"`` is the paper's; ``"bf16"``
runs the forward pass and the loss under ``torch.autocast`` in bfloat16 (matrix products and
convolutions in bf16) while the master weights, their gradients and Adam stay in float32.

Everything runs on the device of the population's weights; the dataset is copied there once, at
the start. Inside the training loop nothing waits for the device except the evaluations.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from .data import Dataset, Split, to_float
from .member_adam import MemberAdam
from .nets import ARCHITECTURES, Population, seeded_generator
from .protocol import PRECISIONS, Protocol, autocast, check_precision  # noqa: F401 (re-exported)
from .sparse import SparseMembers, SparseWeights
from .store import atomic_write

#: The paper's protocol per network (book/spec.md section 3), from each network's declaration.
PROTOCOLS: dict[str, Protocol] = {name: arch.protocol for name, arch in ARCHITECTURES.items()}


def dataset_on(data: Dataset, device: torch.device) -> Dataset:
    """``data`` with every split's tensors on ``device`` (the same object if already there)."""
    if data.train.x.device == device:
        return data

    def move(split: Split) -> Split:
        return Split(split.x.to(device), split.y.to(device))

    return dataclasses.replace(
        data, train=move(data.train), val=move(data.val), test=move(data.test)
    )


@dataclass
class TrainResult:
    """What one population's training produced; every tensor has a leading member axis."""

    final_weights: list[Tensor]  # weights at the end of training (masks come from these)
    early_stop_iteration: Tensor  # (K,) iteration of minimum validation loss
    best_val_loss: Tensor  # (K,)
    test_accuracy: Tensor  # (K,) at the early-stopping point: the paper's metric
    final_test_accuracy: Tensor  # (K,) at the end of training
    val_iterations: list[int]
    val_loss: Tensor  # (K, len(val_iterations))
    n_test: int


class BatchOrder:
    """Each member's batches: a fresh seeded permutation every epoch, last partial batch
    dropped (book/spec.md section 3). Members with the same order seed get the same batches."""

    def __init__(self, n: int, batch_size: int, order_seeds: Sequence[int], device):
        if batch_size > n:
            raise ValueError(f"batch size {batch_size} exceeds the {n} training examples")
        self.n, self.batch_size, self.device = n, batch_size, device
        self.per_epoch = n // batch_size
        distinct = sorted(set(order_seeds))
        self.generators = [seeded_generator(seed, "batch-order") for seed in distinct]
        self.member_group = torch.tensor([distinct.index(s) for s in order_seeds], device=device)
        self.perms: Tensor | None = None

    def state(self) -> list[Tensor]:
        """What resuming needs: every generator's state, then the current permutations."""
        perms = [] if self.perms is None else [self.perms]
        return [g.get_state() for g in self.generators] + perms

    def restore(self, state: Sequence[Tensor]) -> None:
        for g, saved in zip(self.generators, state, strict=False):
            g.set_state(saved)
        extra = list(state[len(self.generators) :])
        self.perms = extra[0].to(self.device) if extra else None

    def indices(self, iteration: int) -> Tensor:
        """Training-set indices of every member's batch at ``iteration``, shape (K, B)."""
        step = iteration % self.per_epoch
        if step == 0 or self.perms is None:
            perms = [torch.randperm(self.n, generator=g) for g in self.generators]
            self.perms = torch.stack(perms).to(self.device)
        start = step * self.batch_size
        return self.perms[self.member_group, start : start + self.batch_size]


def _logits(pop: Population, split: Split, weights, biases, precision: str, sparse=None) -> Tensor:
    """Logits of every member on a whole split, shape (K, N, classes), float32, in chunks of
    at most 5000 images and about 2**24 numbers per activation (a conv net's chunks are
    smaller: one Conv2 feature map of 5000 images would take 1.3 GB)."""
    chunk = max(1, min(5000, 2**24 // pop.arch.largest_activation))
    device = weights[0].device
    with autocast(device, precision):
        parts = [
            pop.forward(
                to_float(split.x[i : i + chunk].to(device)), weights, biases, sparse
            ).float()
            for i in range(0, len(split.y), chunk)
        ]
    return torch.cat(parts, dim=1)


@torch.no_grad()
def loss_and_accuracy(
    pop: Population,
    split: Split,
    weights=None,
    biases=None,
    *,
    precision: str = "fp32",
    sparse: SparseWeights | None = None,
) -> tuple[Tensor, Tensor]:
    """Mean cross-entropy and classification accuracy of every member on ``split``, each of
    shape (K,), from one pass over it (``sparse`` as in :meth:`Population.forward`)."""
    logits = _logits(pop, split, weights or pop.weights, biases or pop.biases, precision, sparse)
    k, n, c = logits.shape
    y = split.y.to(logits.device)
    losses = F.cross_entropy(logits.reshape(-1, c), y.repeat(k), reduction="none")
    correct = (logits.argmax(dim=-1) == y).float()
    return member_sum(losses.view(k, n)) / n, member_sum(correct) / n


def member_sum(values: Tensor) -> Tensor:
    """The sum of each member's values, shape (K,), one member at a time: a reduction over a
    whole (K, N) tensor is split between threads differently for K=1 than for K>1, and so
    sums in a different order."""
    return torch.stack([member.sum() for member in values.flatten(1).unbind(0)])


def mean_loss(pop: Population, split: Split, weights=None, biases=None, **kwargs) -> Tensor:
    """Mean cross-entropy of every member on ``split``, shape (K,)."""
    return loss_and_accuracy(pop, split, weights, biases, **kwargs)[0]


def accuracy(pop: Population, split: Split, weights=None, biases=None, **kwargs) -> Tensor:
    """Classification accuracy of every member on ``split``, shape (K,)."""
    return loss_and_accuracy(pop, split, weights, biases, **kwargs)[1]


#: Seconds between a training population's checkpoints (see :class:`Checkpoint`).
CHECKPOINT_EVERY_S = 300.0


class DeadlineReached(Exception):
    """Training stopped at its deadline after saving a checkpoint; training the same population
    again with the same :class:`Checkpoint` resumes where it stopped."""


@dataclass
class Checkpoint:
    """Where and how often :func:`train_population` saves its state mid-training.

    The state (weights, biases, Adam's moments and steps, the best-so-far weights and losses,
    the validation curve, the batch order's permutation and generator states, the iteration) is
    saved at an evaluation point at most every ``every_s`` seconds, and at the first evaluation
    point after ``deadline`` (a ``time.time()`` value), where training then stops with
    :class:`DeadlineReached`. A saved state is resumed only by a population with the same
    ``fingerprint`` (its members and protocol); resuming gives, bit for bit, what training
    without a stop would have. The file is removed when training completes.

    It also keeps the training time of earlier sittings: each save holds the seconds trained so
    far, and :meth:`elapsed_s` (after :meth:`load`) is the population's whole training time,
    which its records state (``provenance.population_wall_time_s``), not only the last
    sitting's."""

    path: Path
    fingerprint: str
    every_s: float = 300.0
    deadline: float | None = None
    _before_s: float = field(default=0.0, init=False, repr=False)
    _started: float = field(default_factory=time.perf_counter, init=False, repr=False)

    def load(self) -> dict | None:
        """The saved state of this population, or None; the clock of :meth:`elapsed_s` starts
        here, from the seconds the saved state had trained (0 without one)."""
        self._before_s, self._started = 0.0, time.perf_counter()
        try:
            state = torch.load(self.path, weights_only=True)
        except FileNotFoundError:
            return None
        except Exception:  # a damaged checkpoint costs only the time since the last one
            self.path.unlink(missing_ok=True)
            return None
        if state.get("fingerprint") != self.fingerprint:
            return None
        self._before_s = float(state.get("elapsed_s", 0.0))  # none in checkpoints before it
        return state

    def elapsed_s(self) -> float:
        """Seconds of training of this population: earlier sittings' and this one's."""
        return self._before_s + time.perf_counter() - self._started

    def maybe_save(self, save: Callable[[], None], last_save: float) -> tuple[float, bool]:
        """At a point where training may stop: call ``save`` if ``every_s`` seconds have passed
        since ``last_save`` (a ``time.monotonic()`` value) or the deadline has; return the time
        of the last save and whether the deadline has passed (the caller then stops, raising
        :class:`DeadlineReached`)."""
        late = self.deadline is not None and time.time() >= self.deadline
        if late or time.monotonic() - last_save >= self.every_s:
            save()
            last_save = time.monotonic()
        return last_save, late

    def save(self, state: dict) -> None:
        cpu = {
            name: [t.detach().cpu().clone() for t in v] if isinstance(v, list) else v
            for name, v in state.items()
        }
        cpu |= {"fingerprint": self.fingerprint, "elapsed_s": self.elapsed_s()}
        atomic_write(self.path, lambda f: torch.save(cpu, f))


def train_population(
    pop: Population,
    data: Dataset,
    protocol: Protocol,
    order_seeds: Sequence[int],
    *,
    precision: str = "fp32",
    progress: bool = False,
    desc: str = "training",
    checkpoint: Checkpoint | None = None,
    sparse: Sequence[Sequence[int]] | None = None,
) -> TrainResult:
    """Train every member of ``pop`` in place by the paper's protocol (book/spec.md section 3).

    ``pop.weights`` must already hold each member's start values: mask-1 values on kept entries,
    mask-0 values on pruned ones. ``order_seeds[k]`` fixes member k's batch order.
    ``precision`` is one of :data:`PRECISIONS`; evaluations run in the same precision.
    Training runs on the device of ``pop.weights``; ``data`` is copied there once if needed.
    With a ``checkpoint``, training resumes from its saved state and saves its own (see
    :class:`Checkpoint`); it may then stop early with :class:`DeadlineReached`.
    ``sparse[j]``, if given, lists the linear layers (by index) member j computes on its kept
    weights only (:mod:`lth.sparse`): forward, backward, Adam and every evaluation.
    """
    check_precision(precision)
    k = pop.size
    if len(order_seeds) != k:
        raise ValueError(f"need one order seed per member: {len(order_seeds)} for {k} members")
    if sparse is not None and len(sparse) != k:
        raise ValueError(f"need one sparse plan per member: {len(sparse)} for {k} members")
    device = pop.weights[0].device
    data = dataset_on(data, device)
    weights = [w.clone().requires_grad_(True) for w in pop.weights]
    biases = [b.clone().requires_grad_(True) for b in pop.biases]
    members = SparseMembers(pop.arch, pop.weights, pop.masks, sparse or [()] * k)
    values = {pair: v.requires_grad_(True) for pair, v in members.gather(pop.weights).items()}
    optimizer = MemberAdam(weights + biases, protocol, values)
    order = BatchOrder(len(data.train), protocol.batch_size, order_seeds, device)
    train_x, train_y = data.train.x, data.train.y
    batch = protocol.batch_size

    evaluation_points = protocol.evaluation_points()
    val_loss = torch.empty(k, len(evaluation_points))
    best_loss = torch.full((k,), float("inf"))
    best_iteration = torch.zeros(k, dtype=torch.long)
    best_weights = [w.detach().clone() for w in weights]
    best_biases = [b.detach().clone() for b in biases]

    def evaluate(column: int, iteration: int) -> None:
        members.scatter(values, weights)  # the dense tensors hold every weight again
        loss = mean_loss(
            pop,
            data.val,
            [w.detach() for w in weights],
            [b.detach() for b in biases],
            precision=precision,
            sparse=members.bind({pair: v.detach() for pair, v in values.items()}),
        )
        val_loss[:, column] = loss.cpu()
        improved = val_loss[:, column] < best_loss
        if improved.any():
            best_loss[improved] = val_loss[improved, column]
            best_iteration[improved] = iteration
            on_device = improved.to(device)
            for best, current in zip(best_weights + best_biases, weights + biases, strict=True):
                best[on_device] = current.detach()[on_device]

    column, start = 0, 0
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        start, column = int(saved["iteration"]), int(saved["column"])
        with torch.no_grad():
            pairs = (
                (weights + biases, saved["params"]),
                (optimizer.exp_avg, saved["exp_avg"]),
                (optimizer.exp_avg_sq, saved["exp_avg_sq"]),
                (optimizer.steps, saved["steps"]),
                (best_weights + best_biases, saved["best"]),
                ([val_loss, best_loss, best_iteration], saved["curve"]),
            )
            for mine, theirs in pairs:
                for tensor, value in zip(mine, theirs, strict=True):
                    tensor.copy_(value)
            for pair, value in members.gather(weights).items():
                values[pair].copy_(value)
            for mine, dense in (
                (optimizer.sparse_avg, optimizer.exp_avg),
                (optimizer.sparse_avg_sq, optimizer.exp_avg_sq),
            ):
                for pair, value in members.gather(dense).items():
                    mine[pair].copy_(value)
        order.restore(saved["order"])
    last_save = time.monotonic()

    def save_checkpoint(iteration: int) -> None:
        # weights were scattered by the evaluation just before; the sparse moments go into
        # the dense moments' unused slices, so a checkpoint has one format
        members.scatter(optimizer.sparse_avg, optimizer.exp_avg)
        members.scatter(optimizer.sparse_avg_sq, optimizer.exp_avg_sq)
        checkpoint.save(
            {
                "iteration": iteration,
                "column": column,
                "params": weights + biases,
                "exp_avg": optimizer.exp_avg,
                "exp_avg_sq": optimizer.exp_avg_sq,
                "steps": optimizer.steps,
                "best": best_weights + best_biases,
                "curve": [val_loss, best_loss, best_iteration],
                "order": order.state(),
            }
        )

    interactive = sys.stderr.isatty()  # in a notebook or a log: a line a minute, not a stream
    bar = tqdm(
        range(start, protocol.iterations),
        desc=desc,
        disable=not progress,
        mininterval=1 if interactive else 60,
        initial=start,
        total=protocol.iterations,
    )
    for iteration in bar:
        if iteration == evaluation_points[column]:
            evaluate(column, iteration)
            column += 1
            if checkpoint is not None and iteration > start:
                save = partial(save_checkpoint, iteration)
                last_save, late = checkpoint.maybe_save(save, last_save)
                if late:
                    bar.close()
                    raise DeadlineReached(f"{desc}: stopped at iteration {iteration:,}")
        idx = order.indices(iteration)
        with autocast(device, precision):
            logits = pop.forward(to_float(train_x[idx]), weights, biases, members.bind(values))
            loss = F.cross_entropy(
                logits.reshape(k * batch, -1).float(), train_y[idx].reshape(-1), reduction="sum"
            )
        (loss / batch).backward()
        for w, m in zip(weights, pop.masks, strict=True):
            if w.grad is not None:  # None: every member runs this layer sparse
                w.grad.mul_(m)
        optimizer.step()
    evaluate(column, protocol.iterations)
    if checkpoint is not None:
        checkpoint.path.unlink(missing_ok=True)

    def test_accuracy(ws: list[Tensor], bs: list[Tensor]) -> Tensor:
        sparse_ws = members.bind(members.gather(ws))
        return accuracy(pop, data.test, ws, bs, precision=precision, sparse=sparse_ws).cpu()

    final_weights = [w.detach() for w in weights]
    final_biases = [b.detach() for b in biases]
    return TrainResult(
        final_weights=final_weights,
        early_stop_iteration=best_iteration,
        best_val_loss=best_loss,
        test_accuracy=test_accuracy(best_weights, best_biases),
        final_test_accuracy=test_accuracy(final_weights, final_biases),
        val_iterations=evaluation_points,
        val_loss=val_loss,
        n_test=len(data.test.y),
    )

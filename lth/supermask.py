"""Supermasks: masks that make an untrained network accurate (book/spec.md sections 8 and 9).

**Untrained supermasks** (section 8, Figure 7). Train a dense network once; for a mask criterion
and a one-shot level k (each layer keeps what k rounds of iterative pruning would leave it),
keep the top-ranked weights of (w_i, w_f), give the kept weights a *treatment* (the original
``init`` values or the ``signed_constant`` sigma_L x sign(w_i)) and measure test accuracy with no
training. :func:`untrained_supermask_accuracy` evaluates many such masked networks at once, as
one population in inference mode.

**Learned supermasks** (section 9, Table 1). The weights stay frozen at their random init (or
at the signed constant); each weight has a real score s, and every forward pass multiplies it by
a fresh Bernoulli sample with p = sigmoid(s). The gradient reaches the scores straight through
the sample (:func:`straight_through_mask`). **Dynamic weight rescaling** multiplies each layer,
at every iteration, by (weights in the layer) / (ones in that layer's sampled mask)
(:func:`dynamic_weight_rescaling`). :func:`train_learned_supermasks` trains many such runs (seeds,
treatments, with and without rescaling) as one population; the reported accuracy is the mean
over 10 sampled masks on the test set, as in the official code.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim.sgd import sgd as _functional_sgd
from tqdm import tqdm

from .actions import constant_same_sign, rewind
from .criteria import Criterion, keep_order, number_to_keep
from .data import Dataset, Split, to_float
from .member_adam import member_views
from .nets import Architecture, Population, get_architecture, initial_weights, seeded_generator
from .registry import Registry
from .train import (
    BatchOrder,
    Checkpoint,
    DeadlineReached,
    accuracy,
    dataset_on,
    loss_and_accuracy,
    member_sum,
)

#: The values the kept weights of a supermask take (book/spec.md section 8): the original init, or
#: the signed constant sigma_L x sign(w_i) (section 6's "constant, same sign" action).
TREATMENTS = Registry(
    "weight treatment", {"init": rewind, "signed_constant": constant_same_sign}.items()
)

#: One-shot levels of the untrained supermasks: k = 0..24, as the 25 levels of Figure 3.
SUPERMASK_LEVELS = tuple(range(25))

#: The criteria Figure 7 draws strong, and Table 1's (large_final_same_sign): every level on
#: every network.
FIGURE7_HEADLINE = ("large_final_same_sign", "magnitude_increase_same_sign")


def figure7_levels(net: str, criterion: str) -> tuple[int, ...]:
    """The one-shot levels Figure 7 evaluates ``criterion`` at on ``net``: all 25 on FC; on the
    conv nets all 25 for :data:`FIGURE7_HEADLINE` and every other level (k = 0, 2, ..., 24) for
    the rest, which halves their cost and still draws each curve at 13 points. One untrained
    network on the 10,000 test images took 4.7 s (Conv2), 7.1 s (Conv4) and 8.7 s (Conv6) on
    the 2-core CPU, so a dense run's 386 networks take 30 to 56 minutes."""
    if net == "fc" or criterion in FIGURE7_HEADLINE:
        return SUPERMASK_LEVELS
    return SUPERMASK_LEVELS[::2]


#: The official code's learned-supermask schedule on FC (book/spec.md section 9).
OFFICIAL_EPOCHS = 2000

#: Our learned-supermask setting for the conv nets (book/spec.md section 9: the paper gives no
#: CIFAR-10 setting): the official FC setting (SGD, momentum 0.9, batch 250, scores from 0) on
#: the initial weights, as the paper's rows, but with a learning rate of 1,000 for
#: :data:`CONV_LEARNED_EPOCHS` epochs. The rate was chosen on validation accuracy after 2
#: epochs of Conv2, seed 0, with DWR: 33.5% at the official 100, 37.8% at 300, 44.8% at 1,000
#: (without DWR at 100: 18.7%). The epochs are what the 2-core CPU affords: a Conv2
#: member-epoch took 83 s there, so Conv2's four runs take about 2 h and Conv6's, with about
#: 3.5 times the multiply-adds, about 6.5 h; FC's committed profile trains 60 epochs, the
#: official code 2,000.
CONV_LEARNED_LR = 1000.0
CONV_LEARNED_EPOCHS = 20


def get_treatment(name: str):
    """Look up a weight treatment by name; an unknown name lists the accepted ones."""
    return TREATMENTS.lookup(name)


def treated_weights(w_i: Sequence[Tensor], treatment: str) -> list[Tensor]:
    """Every layer's weights under ``treatment``, before masking (sigma_L per layer)."""
    action = get_treatment(treatment)
    return [action(w, torch.ones_like(w), torch.Generator()) for w in w_i]


def one_shot_keep(arch: Architecture, k: int) -> list[int]:
    """Weights each layer keeps at one-shot level ``k``: what k rounds of pruning
    ``floor(remaining x rate)`` leave (book/spec.md section 4)."""
    if k < 0:
        raise ValueError(f"one-shot level must be >= 0, got {k}")
    counts = []
    for layer in arch.layers:
        n = layer.size
        for _ in range(k):
            n = number_to_keep(n, layer.rate)
        counts.append(n)
    return counts


def one_shot_masks(
    arch: Architecture,
    w_i: Sequence[Tensor],
    w_f: Sequence[Tensor],
    criterion: Criterion,
    levels: Sequence[int],
    generator: torch.Generator,
) -> list[list[Tensor]]:
    """One mask per level (a list of per-layer masks each), all from one ranking of the dense
    run's weights per layer, so a sparser level's mask lies inside a denser one's."""
    orders = [
        keep_order(torch.ones_like(wi), wi, wf, criterion, generator)
        for wi, wf in zip(w_i, w_f, strict=True)
    ]
    masks = []
    for k in levels:
        level = []
        for w, order, keep in zip(w_i, orders, one_shot_keep(arch, k), strict=True):
            m = torch.zeros(w.numel())
            m[order[:keep]] = 1
            level.append(m.view(w.shape))
        masks.append(level)
    return masks


@torch.no_grad()
def untrained_supermask_accuracy(
    arch: Architecture,
    weights: Sequence[Sequence[Tensor]],
    masks: Sequence[Sequence[Tensor]],
    split: Split,
    *,
    chunk: int = 64,
) -> Tensor:
    """Accuracy on ``split`` of every masked network ``weights[j] * masks[j]`` with zero
    biases and no training, evaluated ``chunk`` networks at a time as one population."""
    if len(weights) != len(masks):
        raise ValueError(f"{len(weights)} weight lists but {len(masks)} mask lists")
    results = []
    for start in range(0, len(weights), chunk):
        members_w = weights[start : start + chunk]
        members_m = masks[start : start + chunk]
        masked = [
            [w * m for w, m in zip(ws, ms, strict=True)]
            for ws, ms in zip(members_w, members_m, strict=True)
        ]
        pop = Population.from_members(arch, masked, members_m)
        results.append(accuracy(pop, split))
    return torch.cat(results)


# ----------------------------------------------------------------------------- learned supermasks


def straight_through_mask(p: Tensor, sample: Tensor) -> Tensor:
    """A Bernoulli sample in the forward pass whose gradient is that of ``p = sigmoid(s)``:
    the value is ``sample``, the derivative d sigmoid(s)/ds (book/spec.md section 9)."""
    return sample + p - p.detach()


def _uniform16(shape: torch.Size, generator: torch.Generator) -> Tensor:
    """Uniforms in (0, 1) on a grid of 2^-16, four from each 64-bit draw of ``generator``.

    Sampling dominates a learned-supermask step (one draw per weight per member per
    iteration); on the 2-core CPU this is about 5x faster than ``torch.rand`` (1.7 against
    9.3 ns per value). A Bernoulli probability is thereby rounded to a multiple of 2^-16.
    """
    n = math.prod(shape)
    words = ((n + 3) // 4,)
    bits = torch.randint(-(2**63), 2**63 - 1, words, dtype=torch.int64, generator=generator)
    return ((bits.view(torch.int16)[:n].to(torch.float32) + 32768.5) / 65536.0).view(shape)


def sample_masks(p: Tensor, generators: Sequence[torch.Generator]) -> Tensor:
    """One Bernoulli(p) sample per member (leading axis), each member drawing from its own
    generator, so a member's masks do not depend on the population it trains in."""
    with torch.no_grad():
        u = torch.stack([_uniform16(p.shape[1:], g) for g in generators])
        return (u.to(p.device) < p).to(p.dtype)


def dynamic_weight_rescaling(weights: Tensor, mask: Tensor) -> Tensor:
    """Dynamic weight rescaling (paper section 5.2): each member's layer multiplied by
    (weights in the layer) / (ones in its mask). Leading axis = members."""
    dims = tuple(range(1, mask.dim()))
    ones = mask.sum(dim=dims, keepdim=True).clamp_min(1.0)
    return weights * (math.prod(mask.shape[1:]) / ones)


@dataclass(frozen=True)
class LearnedSupermask:
    """One learned-supermask run (book/spec.md section 9); defaults are the official FC setting."""

    net: str
    seed: int
    weights: str = "init"  # a TREATMENTS name
    dynamic_weight_rescaling: bool = False
    score_init: float = 0.0  # p = sigmoid(0) = 0.5
    lr: float = 100.0
    momentum: float = 0.9
    batch_size: int = 250
    epochs: int = OFFICIAL_EPOCHS
    eval_samples: int = 10

    def __post_init__(self) -> None:
        get_architecture(self.net)
        get_treatment(self.weights)
        for name in ("batch_size", "epochs", "eval_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 <= self.momentum < 1:
            raise ValueError(f"need lr > 0 and 0 <= momentum < 1, got {self.lr}, {self.momentum}")

    def spec(self) -> dict:
        return {"kind": "learned_supermask", **asdict(self)}


@dataclass
class LearnedResult:
    """Per-member results of :func:`train_learned_supermasks` (leading axis = members)."""

    test_accuracy: Tensor  # (K,) mean over eval_samples sampled masks
    test_accuracy_samples: Tensor  # (K, eval_samples)
    percent_kept: Tensor  # (K,) ones in the sampled test masks, mean, percent of weights
    expected_percent_kept: Tensor  # (K,) 100 x mean sigmoid(score)
    layer_kept: Tensor  # (K, layers) fraction of ones per layer, mean over the test samples
    epochs: list[int]  # evaluation points: 0 (before training) and after every epoch
    val_accuracy: Tensor  # (K, len(epochs)) one sampled mask each
    val_loss: Tensor  # (K, len(epochs))
    n_test: int


def _masked(frozen: Tensor, mask: Tensor, rescale: Tensor) -> Tensor:
    """``frozen * mask`` per member, with dynamic weight rescaling where ``rescale[k]``."""
    masked = frozen * mask
    where = rescale.view(-1, *[1] * (frozen.dim() - 1))
    return torch.where(where, dynamic_weight_rescaling(masked, mask), masked)


def member_sigmoid(scores: Tensor) -> Tensor:
    """``sigmoid(scores)`` one member at a time: the vectorised kernel and its scalar tail round
    ``exp`` differently, and which elements of a member fall in the tail must not depend on the
    population's size (DESIGN.md, "The population engine")."""
    return torch.stack([torch.sigmoid(member) for member in scores.unbind(0)])


class MemberSGD:
    """SGD with momentum on stacked ``(K, ...)`` scores, each member's slice stepped on its own
    (see :class:`lth.train.MemberAdam`), so a member's result does not depend on its companions."""

    def __init__(self, params: Sequence[Tensor], lr: float, momentum: float):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.buffers: list[Tensor | None] = [None] * len(member_views(self.params))

    @torch.no_grad()
    def step(self) -> None:
        _functional_sgd(
            member_views([p.detach() for p in self.params]),
            member_views([p.grad for p in self.params]),
            self.buffers,
            foreach=False,
            weight_decay=0.0,
            momentum=self.momentum,
            lr=self.lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
        )
        for p in self.params:
            p.grad = None


def _effective_weights(frozen, scores, generators, rescale) -> list[Tensor]:
    """The weights of one forward pass: a fresh straight-through mask sample per layer."""
    out = []
    for w, s in zip(frozen, scores, strict=True):
        p = member_sigmoid(s)
        out.append(_masked(w, straight_through_mask(p, sample_masks(p, generators)), rescale))
    return out


def train_learned_supermasks(
    runs: Sequence[LearnedSupermask],
    data: Dataset,
    *,
    device: str = "cpu",
    progress: bool = False,
    desc: str = "learned supermasks",
    checkpoint: Checkpoint | None = None,
) -> LearnedResult:
    """Train the scores of every run in ``runs`` as one population (book/spec.md section 9).

    SGD with momentum on the scores only; weights and zero biases stay frozen. Validation
    accuracy and loss (one sampled mask each) are taken before training and after every epoch;
    at the end every member is evaluated on the test set with ``eval_samples`` sampled masks.
    With a ``checkpoint`` (:class:`lth.train.Checkpoint`) the state (scores, momenta, every
    mask generator, the batch order, the curve) is saved at the end of an epoch at most every
    ``every_s`` seconds, and at the first epoch's end after its deadline, where training stops
    with :class:`lth.train.DeadlineReached`; training again resumes it, bit for bit.
    """
    shared = {(r.net, r.lr, r.momentum, r.batch_size, r.epochs, r.eval_samples) for r in runs}
    if len(shared) != 1:
        raise ValueError("one population needs one net, lr, momentum, batch size, epochs, samples")
    first = runs[0]
    arch = get_architecture(first.net)
    k = len(runs)
    data = dataset_on(data, torch.device(device))
    frozen = [
        torch.stack(layer).to(device)
        for layer in zip(
            *(treated_weights(initial_weights(arch, r.seed), r.weights) for r in runs), strict=True
        )
    ]
    scores = [
        torch.stack([torch.full(layer.shape, r.score_init) for r in runs]).to(device)
        for layer in arch.layers
    ]
    scores = [s.requires_grad_(True) for s in scores]
    biases = [torch.zeros(k, layer.num_outputs, device=device) for layer in arch.layers]
    rescale = torch.tensor([r.dynamic_weight_rescaling for r in runs], device=device)
    keys = [repr(sorted(r.spec().items())) for r in runs]
    train_gens = [seeded_generator(key, "bernoulli") for key in keys]
    eval_gens = [seeded_generator(key, "evaluation") for key in keys]
    optimizer = MemberSGD(scores, lr=first.lr, momentum=first.momentum)
    order = BatchOrder(len(data.train), first.batch_size, [r.seed for r in runs], device)
    pop = Population(arch, frozen, biases, [torch.ones_like(w) for w in frozen])

    epochs = list(range(first.epochs + 1))
    val_acc, val_loss = torch.empty(k, len(epochs)), torch.empty(k, len(epochs))

    def evaluate(epoch: int) -> None:
        with torch.no_grad():
            w = _effective_weights(frozen, scores, eval_gens, rescale)
            loss, acc = loss_and_accuracy(pop, data.val, w, biases)
            val_loss[:, epoch], val_acc[:, epoch] = loss.cpu(), acc.cpu()

    generators = train_gens + eval_gens
    saved = checkpoint.load() if checkpoint is not None else None
    start_epoch = 0 if saved is None else int(saved["epoch"])
    if saved is None:
        evaluate(0)
    else:
        with torch.no_grad():
            for mine, theirs in ((scores, saved["scores"]), ([val_loss, val_acc], saved["curve"])):
                for tensor, value in zip(mine, theirs, strict=True):
                    tensor.copy_(value)
        optimizer.buffers = [b.to(device) for b in saved["momenta"]]
        for g, state in zip(generators, saved["generators"], strict=True):
            g.set_state(state)
        order.restore(saved["order"])
    last_save = time.monotonic()

    def save_checkpoint(epoch: int) -> None:
        state = {"epoch": epoch, "scores": scores, "curve": [val_loss, val_acc]}
        state["momenta"] = list(optimizer.buffers)
        state["generators"] = [g.get_state() for g in generators]
        checkpoint.save({**state, "order": order.state()})

    batch, per_epoch = first.batch_size, order.per_epoch
    bar = tqdm(
        range(start_epoch * per_epoch, first.epochs * per_epoch),
        desc=desc,
        disable=not progress,
        mininterval=1 if sys.stderr.isatty() else 60,
        initial=start_epoch * per_epoch,
        total=first.epochs * per_epoch,
    )
    for iteration in bar:
        idx = order.indices(iteration)
        x = to_float(data.train.x[idx])
        logits = pop.forward(x, _effective_weights(frozen, scores, train_gens, rescale), biases)
        loss = F.cross_entropy(
            logits.reshape(k * batch, -1), data.train.y[idx].reshape(-1), reduction="sum"
        )
        (loss / batch).backward()  # sum over members of each member's mean loss
        optimizer.step()
        if (iteration + 1) % per_epoch == 0:
            epoch = (iteration + 1) // per_epoch
            evaluate(epoch)
            if checkpoint is not None and epoch < first.epochs:
                last_save, late = checkpoint.maybe_save(partial(save_checkpoint, epoch), last_save)
                if late:
                    bar.close()
                    raise DeadlineReached(f"{desc}: stopped after epoch {epoch:,}")
    if checkpoint is not None:
        checkpoint.path.unlink(missing_ok=True)

    samples, kept, layer_kept = [], [], []
    with torch.no_grad():
        for _ in range(first.eval_samples):
            masks = [sample_masks(member_sigmoid(s), eval_gens) for s in scores]
            w = [_masked(f, m, rescale) for f, m in zip(frozen, masks, strict=True)]
            samples.append(accuracy(pop, data.test, w, biases).cpu())
            counts = torch.stack([m.flatten(1).sum(1) for m in masks], dim=1).cpu()  # (K, L)
            kept.append(100.0 * counts.sum(1) / arch.num_weights)
            layer_kept.append(counts / torch.tensor([layer.size for layer in arch.layers]))
        expected = sum(member_sum(member_sigmoid(s)) for s in scores).cpu()
    test_samples = torch.stack(samples, dim=1)
    return LearnedResult(
        test_accuracy=test_samples.mean(dim=1),
        test_accuracy_samples=test_samples,
        percent_kept=torch.stack(kept).mean(dim=0),
        expected_percent_kept=100.0 * expected / arch.num_weights,
        layer_kept=torch.stack(layer_kept).mean(dim=0),
        epochs=epochs,
        val_accuracy=val_acc,
        val_loss=val_loss,
        n_test=len(data.test),
    )

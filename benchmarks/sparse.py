"""Sparse rounds against the dense engine, by density (issue "Sparse rounds").

For FC (LeNet-300-100, book/spec.md section 2) at the paper's levels of weights remaining (100, 51,
21, 10.7, 5.5, 2.9, 1.2, 0.5%: rounds 0, 3, 7, 10, 13, 16, 20, 24, with fc1 and fc2 keeping
0.8^r of their weights and fc3 0.9^r, section 4), prints the model-samples/s of
:func:`lth.train.train_population` at the paper's batch of 60 with Adam, side by side:

- ``dense``: the dense engine (every product over the whole weight, pruned entries masked);
- ``sparse fc1+fc2``: fc1 and fc2 on their kept weights only (:mod:`lth.sparse`);
- ``sparse all``: fc3 too;
- ``engine``: the plan the engine picks for that round (:func:`lth.sparse.sparse_layers`;
  always dense for the conv nets).

``--net conv2`` measures Conv2 instead (book/spec.md section 2): only its three linear layers can
run sparse (``sparse fc``), beside its two conv layers, which dominate its cost.

``--eval full`` adds the protocol's validation pass (5,000 images every 100 iterations) to the
timed work, as in a real run; by default validation is 10 images (training steps only).
Data are synthetic: speed does not depend on pixel values. Masks are seeded random at the
level's density per layer; with ``--masks committed`` (FC) they are the real ones of Figure 3's
chains at the paper's protocol, rebuilt from the committed chain steps (``data/runs/chains``,
:mod:`lth.chains`: no training), one chain per member in the order of the criteria, for the
rounds the campaign has begun. Real masks are not spread like random ones (whole input pixels
go), and the sparse kernels' speed depends on it. The first iterations of every measurement are
a warm-up. ``--mixed`` adds a table: a population half dense, half sparse against its halves
trained apart (random masks), the case :func:`lth.pruning.populations` avoids. Run it on an
otherwise idle machine (pause the campaign: ``kill -STOP``, then ``-CONT``).

    python benchmarks/sparse.py [--net fc|conv2] [--members 1 4 16] [--rounds 0 3 7 ...]
        [--iterations N] [--eval small|full] [--masks random|committed] [--device cpu|cuda]
        [--threads T] [--mixed]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from lth.data import Dataset
from lth.nets import Population, get_architecture, initial_weights
from lth.pruning import chain_steps, round_step
from lth.sparse import sparse_layers
from lth.specs import resolve_settings
from lth.store import RunStore
from lth.train import PROTOCOLS, Protocol, train_population

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from throughput import sync, synthetic  # noqa: E402

#: The rounds at the paper's FC levels of weights remaining (Figure 3's x-axis ticks).
ROUNDS = (0, 3, 7, 10, 13, 16, 20, 24)


def lottery_population(
    round_: int, members: int, device: torch.device, net: str = "fc"
) -> Population:
    """``members`` networks at ``round_``: seeded random masks at the round's density per
    layer, pruned weights zero (the mask-0 action ``zero``)."""
    arch = get_architecture(net)
    weights, masks = [], []
    for seed in range(members):
        g = torch.Generator().manual_seed(seed)
        mask = [
            (torch.rand(layer.shape, generator=g) < (1 - layer.rate) ** round_).float()
            for layer in arch.layers
        ]
        w = initial_weights(arch, seed)
        weights.append([a * m for a, m in zip(w, mask, strict=True)])
        masks.append(mask)
    return Population.from_members(arch, weights, masks).to(device)


def committed_population(round_: int, members: int, device: torch.device) -> Population:
    """``members`` of Figure 3's FC chains at the paper's protocol at ``round_``, their starts
    and masks rebuilt from the committed chain steps (an error if the store lacks them)."""
    settings = resolve_settings("paper", "fc")
    store = RunStore()
    steps = chain_steps(store)
    chains = sorted(settings.chains(), key=lambda c: (c.seed, c.criterion))[:members]
    starts = [round_step(chain, round_, None, steps) for chain in chains]
    arch = get_architecture("fc")
    return Population.from_members(arch, [s[1] for s in starts], [s[2] for s in starts]).to(device)


def seconds(
    net: str,
    round_: int,
    plan: list[tuple[int, ...]],
    data: Dataset,
    iterations: int,
    eval_every: int,
    device: torch.device,
    masks: str = "random",
) -> float:
    """Wall seconds of ``iterations`` timed iterations of a population at ``round_`` whose
    member j runs the layers ``plan[j]`` sparse, its masks seeded random or the committed
    chains' (``masks``)."""
    members = len(plan)
    if masks == "committed":
        pop = committed_population(round_, members, device)
    else:
        pop = lottery_population(round_, members, device, net)
    lr, seeds = PROTOCOLS[net].lr, list(range(members))
    warm = Protocol(iterations=max(2, iterations // 10), lr=lr)
    train_population(pop, data, warm, seeds, sparse=plan)
    protocol = Protocol(iterations=iterations, lr=lr, eval_every=eval_every)
    sync(device)
    start = time.perf_counter()
    train_population(pop, data, protocol, seeds, sparse=plan)
    sync(device)
    return time.perf_counter() - start


def rate(
    net: str,
    round_: int,
    members: int,
    layers: tuple[int, ...],
    data: Dataset,
    iterations: int,
    eval_every: int,
    device: torch.device,
    masks: str = "random",
) -> float:
    """Model-samples/s of ``members`` networks at ``round_``, each with ``layers`` sparse."""
    plan = [layers] * members
    wall = seconds(net, round_, plan, data, iterations, eval_every, device, masks)
    return members * iterations * PROTOCOLS[net].batch_size / wall


def mixed_rates(round_: int, members: int, layers: tuple[int, ...], common: tuple):
    """Model-samples/s of an FC population whose first half runs dense and second half runs
    ``layers`` sparse, and of the same two halves trained as two populations one after the
    other (random masks); ``common`` is :func:`seconds`' ``(data, iterations, eval_every,
    device)``."""
    half, iterations = members // 2, common[1]
    dense, sparse = [()] * half, [layers] * (members - half)
    together = seconds("fc", round_, dense + sparse, *common)
    apart = seconds("fc", round_, dense, *common) + seconds("fc", round_, sparse, *common)
    samples = members * iterations * PROTOCOLS["fc"].batch_size
    return samples / together, samples / apart


def engine_plan(arch, round_: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The layers the engine runs sparse at ``round_`` of a lottery-ticket chain, by name and
    by index (:func:`lth.sparse.sparse_layers`)."""
    names = sparse_layers(arch, round_, "zero", "fp32")
    return names, tuple(i for i, layer in enumerate(arch.layers) if layer.name in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=("fc", "conv2"), default="fc")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, nargs="+", default=list(ROUNDS))
    parser.add_argument("--iterations", type=int, help="timed iterations (fc 300, conv2 10)")
    parser.add_argument("--eval", choices=("small", "full"), default="small")
    parser.add_argument("--masks", choices=("random", "committed"), default="random")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    parser.add_argument(
        "--mixed",
        action="store_true",
        help="FC: also half dense, half sparse members in one population against apart",
    )
    args = parser.parse_args()
    if args.mixed and (args.net != "fc" or min(args.members) < 2):
        parser.error("--mixed: FC only, and at least 2 members (half dense, half sparse)")
    if args.masks == "committed" and args.net != "fc":
        parser.error(
            "--masks committed: only FC's Figure 3 chains are committed at the paper's protocol"
        )
    if args.masks == "committed" and max(args.members) > 45:
        parser.error("--masks committed: Figure 3 has 45 chains, so at most 45 members")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda requested, but CUDA is not available")
    device = torch.device(args.device)
    arch = get_architecture(args.net)
    iterations = args.iterations or {"fc": 300, "conv2": 10}[args.net]
    n_eval = 5_000 if args.eval == "full" else 10
    data = synthetic(arch, n_eval=n_eval)
    eval_every = 100 if args.eval == "full" else 10**9
    if args.net == "fc":
        modes = {"dense": (), "sparse fc1+fc2": (0, 1), "sparse all": (0, 1, 2)}
    else:
        modes = {"dense": (), "sparse fc": (2, 3, 4)}

    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print(
        f"torch {torch.__version__}, {device}{threads}; {args.net}, fp32, batch 60, {iterations} "
        f"timed iterations, {args.masks} masks, validation: {n_eval:,} images"
        + (" every 100 iterations" if args.eval == "full" else " at the ends only")
    )
    header = f"{'round':>5s} {'remaining':>9s} {'K':>3s} " + " ".join(f"{m:>15s}" for m in modes)
    print(f"{header} {'engine picks':>14s} {'engine/dense':>12s}", flush=True)
    for round_ in args.rounds:
        remaining = (
            100
            * sum(layer.size * (1 - layer.rate) ** round_ for layer in arch.layers)
            / arch.num_weights
        )
        names, picked = engine_plan(arch, round_)
        for k in args.members:
            rates = {
                mode: rate(
                    args.net, round_, k, layers, data, iterations, eval_every, device, args.masks
                )
                for mode, layers in modes.items()
            }
            engine = next(
                (rates[m] for m, layers in modes.items() if layers == picked),
                None,
            )
            if engine is None:
                engine = rate(
                    args.net, round_, k, picked, data, iterations, eval_every, device, args.masks
                )
            label = "+".join(names) or "dense"
            cells = " ".join(f"{rates[m]:>15,.0f}" for m in modes)
            print(
                f"{round_:>5d} {remaining:>8.1f}% {k:>3d} {cells} {label:>14s} "
                f"{engine / rates['dense']:>11.2f}x",
                flush=True,
            )
    if args.mixed:
        mixed_table(args.rounds, args.members, arch, (data, iterations, eval_every, device))


def mixed_table(rounds, members, arch, common) -> None:
    """``--mixed``: at each round from 9 (where FC's engine runs fc1 and fc2 sparse), a
    population of K members, the first half dense and the rest sparse, against its two halves
    trained apart, one after the other (model-samples/s; :func:`lth.pruning.populations`)."""
    print("\nhalf dense, half sparse: one population against the two halves apart")
    print(f"{'round':>5s} {'K':>3s} {'one population':>15s} {'halves apart':>13s} {'ratio':>6s}")
    for round_ in rounds:
        _, picked = engine_plan(arch, round_)
        if not picked:
            continue
        for k in members:
            together, apart = mixed_rates(round_, k, picked, common)
            ratio = apart / together
            print(f"{round_:>5d} {k:>3d} {together:>15,.0f} {apart:>13,.0f} {ratio:>5.2f}x")


if __name__ == "__main__":
    main()

"""Training throughput of the population engine against a plain PyTorch loop.

Prints model-samples per second (training samples per second, summed over the members of a
population) for the FC network (LeNet-300-100, batch 60, Adam), for:

- a plain one-network loop: ``nn.Sequential``, default ``torch.optim.Adam``, one batch per step;
- our engine (:func:`lth.train.train_population`) with K=1 and K=8 members.

All are measured in the same process, on synthetic MNIST-shaped data (the throughput does not
depend on pixel values). The engine is timed twice: training alone (like the plain loop) and
with the protocol's validation pass every 100 iterations (what a real run costs). Each figure is
also given as a fraction of this CPU's fp32 GEMM peak, measured first (a 2048^3 matmul).

    python benchmarks/throughput.py [--iterations 1000] [--members 1 8]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from lth.data import Dataset, Split
from lth.nets import Population, get_architecture, initial_weights
from lth.train import Protocol, train_population


def synthetic_mnist(n_train: int = 55_000, n_val: int = 5_000, n_test: int = 10_000) -> Dataset:
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        x = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g)
        return Split(x, torch.randint(0, 10, (n,), generator=g))

    return Dataset("synthetic-mnist", split(n_train), split(n_val), split(n_test), 10)


def plain_loop(data: Dataset, iterations: int, batch: int = 60) -> float:
    """Samples/s of the textbook single-network loop with default Adam."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
        nn.Linear(100, 10),
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1.2e-3)
    loss_fn = nn.CrossEntropyLoss()
    x_all, y_all = data.train.x, data.train.y
    start = time.perf_counter()
    for i in range(iterations):
        idx = torch.randint(0, len(y_all), (batch,))
        x = x_all[idx].float() / 255
        optimizer.zero_grad()
        loss_fn(model(x), y_all[idx]).backward()
        optimizer.step()
        if i == 9:  # exclude warm-up
            start, done = time.perf_counter(), 10
    return (iterations - done) * batch / (time.perf_counter() - start)


FC_FLOP_PER_SAMPLE = 6 * 266_200  # forward + backward multiply-adds of LeNet-300-100


def gemm_peak(n: int = 2048, repeats: int = 10) -> float:
    """This CPU's fp32 matrix-product rate in FLOP/s (best of a few timed products)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def engine(data: Dataset, iterations: int, members: int, eval_every: int) -> float:
    """Model-samples/s of train_population on ``members`` FC networks."""
    arch = get_architecture("fc")
    weights = [initial_weights(arch, seed) for seed in range(members)]
    masks = [[torch.ones(layer.shape) for layer in arch.layers]] * members
    pop = Population.from_members(arch, weights, masks)
    protocol = Protocol(iterations=iterations, batch_size=60, lr=1.2e-3, eval_every=eval_every)
    train_population(pop, data, Protocol(iterations=20), list(range(members)))  # warm-up
    start = time.perf_counter()
    train_population(pop, data, protocol, list(range(members)))
    return members * iterations * protocol.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--members", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    data = synthetic_mnist()
    peak = gemm_peak()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, FC (LeNet-300-100)")
    print(f"fp32 GEMM peak of this CPU: {peak / 1e9:.0f} GFLOP/s\n")
    print(f"{'':52s} {'model-samples/s':>15s} {'vs plain':>8s} {'of peak':>8s}")

    def show(label: str, rate: float, plain: float) -> None:
        share = rate * FC_FLOP_PER_SAMPLE / peak
        print(f"{label:52s} {rate:>15,.0f} {rate / plain:>7.2f}x {share:>8.0%}")

    plain = plain_loop(data, args.iterations)
    show("plain loop, 1 network, default Adam (no validation)", plain, plain)
    for k in args.members:
        show(
            f"engine, K={k}, fused Adam, training only",
            engine(data, args.iterations, k, 10**9),
            plain,
        )
        show(
            f"engine, K={k}, with validation every 100 its",
            engine(data, args.iterations, k, 100),
            plain,
        )


if __name__ == "__main__":
    main()

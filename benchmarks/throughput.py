"""Training throughput of the population engine against a plain PyTorch loop.

Prints model-samples per second (training samples per second, summed over the members of a
population) for the FC network (LeNet-300-100, batch 60, Adam), for:

- a plain one-network loop: ``nn.Sequential``, default ``torch.optim.Adam``, one batch per step;
- our engine (:func:`lth.train.train_population`) with K=1 and K=8 members.

All are measured in the same process, on synthetic MNIST-shaped data (the throughput does not
depend on pixel values), with validation every 100 iterations as in the paper's protocol for the
engine and none for the plain loop (so the comparison is conservative for the engine).

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


def engine(data: Dataset, iterations: int, members: int) -> float:
    """Model-samples/s of train_population on ``members`` FC networks."""
    arch = get_architecture("fc")
    weights = [initial_weights(arch, seed) for seed in range(members)]
    masks = [[torch.ones(layer.shape) for layer in arch.layers]] * members
    pop = Population.from_members(arch, weights, masks)
    protocol = Protocol(iterations=iterations, batch_size=60, lr=1.2e-3)
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
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, FC (LeNet-300-100)")
    plain = plain_loop(data, args.iterations)
    print(f"{'plain loop, 1 network, default Adam':45s} {plain:>10,.0f} samples/s   1.00x")
    for k in args.members:
        rate = engine(data, args.iterations, k)
        label = f"lth engine, population of {k}, fused Adam"
        print(f"{label:45s} {rate:>10,.0f} model-samples/s {rate / plain:5.2f}x")


if __name__ == "__main__":
    main()

"""Shared fixtures: a tiny learnable MNIST-shaped dataset, and a patch that makes sweeps use it."""

from __future__ import annotations

import os

import pytest
import torch

import lth.data
from lth.data import Dataset, Split

N_TRAIN, N_VAL, N_TEST = 600, 100, 100

# The tests are tiny: one thread avoids OpenMP spin-waiting (and CPU contention with any other
# job on the machine) and keeps the whole suite's CPU time small.
torch.set_num_threads(1)


def _learnable_split(n: int, groups: torch.Tensor, generator: torch.Generator) -> Split:
    """Random uint8 images whose label is the argmax of 10 fixed pixel-group sums, so a linear
    model can learn it and training lowers the loss. To make it learnable in a few dozen steps,
    each image's pixels are noise in [0, 128) with one random group brightened by 128."""
    x = torch.randint(0, 128, (n, 784), generator=generator, dtype=torch.uint8)
    bright = torch.randint(0, 10, (n,), generator=generator)
    x[torch.arange(n).unsqueeze(1), groups[bright]] += 128
    sums = torch.stack([x[:, g].to(torch.float32).sum(dim=1) for g in groups], dim=1)  # (n, 10)
    return Split(x.reshape(n, 1, 28, 28), sums.argmax(dim=1).to(torch.int64))


def make_tiny_data() -> Dataset:
    """600 train / 100 val / 100 test MNIST-shaped images, fixed by a seeded generator (also
    built by the tests' subprocesses)."""
    g = torch.Generator().manual_seed(1234)
    groups = torch.randperm(784, generator=g)[:780].reshape(10, 78)
    return Dataset(
        name="tiny",
        train=_learnable_split(N_TRAIN, groups, g),
        val=_learnable_split(N_VAL, groups, g),
        test=_learnable_split(N_TEST, groups, g),
        num_classes=10,
    )


def make_tiny_cifar(n_train: int, n_val: int, n_test: int, seed: int) -> Dataset:
    """CIFAR-shaped uint8 images (N, 3, 32, 32): noise plus a fixed random template per class,
    so a conv net learns it in a few dozen steps."""
    g = torch.Generator().manual_seed(seed)
    templates = (torch.rand(10, 3, 32, 32, generator=g) < 0.3).to(torch.uint8) * 127

    def split(n: int) -> Split:
        y = torch.randint(0, 10, (n,), generator=g)
        x = torch.randint(0, 128, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
        return Split(x + templates[y], y)

    return Dataset("tiny-cifar", split(n_train), split(n_val), split(n_test), 10)


@pytest.fixture(scope="session")
def device() -> torch.device:
    """Where the device-sensitive tests train: ``$LTH_TEST_DEVICE`` (default cpu), so that
    ``benchmarks/gpu_check.sh`` runs them on CUDA."""
    return torch.device(os.environ.get("LTH_TEST_DEVICE", "cpu"))


#: The tiny dataset every sweep of the tests trains on: sweeps take it as their ``data``.
TINY = make_tiny_data()


@pytest.fixture(scope="session")
def tiny_data() -> Dataset:
    """See :func:`make_tiny_data`."""
    return TINY


@pytest.fixture
def cli_data(monkeypatch) -> Dataset:
    """The command line reads its dataset from a folder, where the tests have none: make
    :func:`lth.data.load_dataset` give the tiny dataset (the one seam the tests patch)."""
    monkeypatch.setattr(lth.data, "load_dataset", lambda name, root=None, **kwargs: TINY)
    return TINY

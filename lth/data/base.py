"""Shared types and helpers of every dataset (book/spec.md section 3, "Training protocol").

``Split`` and ``Dataset`` are what the loaders return (uint8 images, int64 labels, the paper's
fixed train/validation split and the official test set); ``split_indices`` draws that split once
with ``SPLIT_SEED``; ``to_float`` is the paper's only input scaling ([0, 1], no normalisation);
``data_root`` resolves the dataset root (argument, else ``$LTH_DATA``, else ``./data``);
``test_set_tag`` and ``_partial_test_allowed`` handle a partial test set; and the error classes
raised by every loader live here.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass

import torch

DATA_ENV = "LTH_DATA"
DEFAULT_ROOT = "./data"

SPLIT_SEED = 0
"""Seed of the one fixed train/validation split of the official training set (book/spec.md s. 3)."""

PARTIAL_TEST_ENV = "LTH_PARTIAL_TEST"
"""Set to 1 to accept a partial CIFAR-10 test batch when ``partial_test`` is not given."""


class DatasetNotFoundError(FileNotFoundError):
    """Dataset files are missing (and could not be downloaded)."""


class ChecksumError(ValueError):
    """A dataset file does not have its official md5."""


class PartialTestSetError(ValueError):
    """The CIFAR-10 test batch holds fewer than the official records and that was not allowed."""


@dataclass(frozen=True)
class Split:
    """One part of a dataset: images ``x`` uint8 (N, C, H, W) and labels ``y`` int64 (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"{self.x.shape[0]} images but {self.y.shape[0]} labels")

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Dataset:
    """A dataset with the paper's fixed train/validation split and the official test set.

    ``test_complete`` is False when ``test`` is only part of the official test set (a partial
    CIFAR-10 test batch accepted with ``partial_test``); ``len(test)`` says how many images it has.
    ``files`` names every file read and its md5, in reading order (see :meth:`identity`).
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    test_complete: bool = True
    files: tuple[tuple[str, str], ...] = ()

    def identity(self) -> dict:
        """What a run saw, for its record (DESIGN.md, "Runs, results and caching"): the
        dataset, the md5 of every file read and the test-set size."""
        return {
            "dataset": self.name,
            "files": dict(self.files),
            "n_test": len(self.test),
            "test_complete": self.test_complete,
        }


def test_set_tag(data: Dataset) -> str | None:
    """None for the official complete test set, else what distinguishes the one ``data`` has:
    its size and md5 (so runs on a partial test set never share keys with the real ones)."""
    if data.test_complete:
        return None
    md5 = next((md5 for name, md5 in data.files if name.startswith(("test", "t10k"))), "?")
    return f"partial: {len(data.test)} images, md5 {md5}"


def data_root(root: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """Dataset root folder: ``root`` if given, else ``$LTH_DATA`` if set, else ``./data``."""
    if root is not None:
        return pathlib.Path(root)
    return pathlib.Path(os.environ.get(DATA_ENV) or DEFAULT_ROOT)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """The paper's input scaling (book/spec.md s. 3): uint8 pixels -> float32 in [0, 1], x / 255."""
    if x.dtype != torch.uint8:
        raise TypeError(f"to_float expects uint8 pixels, got {x.dtype}")
    return x.to(torch.float32) / 255.0


def split_indices(
    n_total: int, n_val: int, seed: int = SPLIT_SEED
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed (train, val) index split of ``range(n_total)``, each part sorted ascending.

    ``n_val`` indices are drawn by ``torch.randperm`` under
    ``torch.Generator().manual_seed(seed)``.
    """
    if not 0 <= n_val <= n_total:
        raise ValueError(f"n_val={n_val} must lie in [0, {n_total}]")
    perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def _partial_test_allowed(partial_test: bool | None) -> bool:
    """The explicit ``partial_test`` keyword if given, else ``$LTH_PARTIAL_TEST`` (1 / 0)."""
    if partial_test is not None:
        return bool(partial_test)
    value = os.environ.get(PARTIAL_TEST_ENV, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(
        f"{PARTIAL_TEST_ENV}={value!r} is not understood: set it to 1 to accept a partial "
        "CIFAR-10 test set, or to 0 (or leave it unset) to refuse one"
    )

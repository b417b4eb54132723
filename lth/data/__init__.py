"""Datasets: official files -> uint8 tensors with the paper's fixed splits.

Implements the data part of book/spec.md section 3 ("Training protocol"): 5,000 validation images
drawn once, with a fixed seed (``SPLIT_SEED``), from the official training set (MNIST 55,000 /
5,000 / 10,000 official test; CIFAR-10 45,000 / 5,000 / 10,000); inputs scaled to [0, 1] by
``to_float``, no normalisation, no augmentation. Files are read from a root in torchvision's
layout (argument, else ``$LTH_DATA``, else ``./data``) and checked against their official md5s.
Loaded datasets are cached per (root, name, options) for the life of the process, so the
returned tensors are shared: never modify them in place. A partial CIFAR-10 test batch is refused
unless allowed (``partial_test=True`` or ``$LTH_PARTIAL_TEST=1``; then ``test_complete=False``).

Modules: ``base`` (``Split``, ``Dataset``, the split, errors), ``files`` (md5s, downloads),
``mnist`` and ``cifar10`` (one loader each); this package holds the registry ``DATASETS`` and
re-exports their public names. Constants re-exported here are copies of the submodules' names:
to patch one (in tests), patch the submodule that looks it up, e.g. ``lth.data.cifar10``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..registry import Registry
from .base import (
    DATA_ENV,
    DEFAULT_ROOT,
    PARTIAL_TEST_ENV,
    SPLIT_SEED,
    ChecksumError,
    Dataset,
    DatasetNotFoundError,
    PartialTestSetError,
    Split,
    data_root,
    split_indices,
    test_set_tag,
    to_float,
)
from .base import _partial_test_allowed as _partial_test_allowed  # used by lth.parameters
from .cifar10 import (
    CIFAR10_BIN_DIR,
    CIFAR10_BIN_MD5,
    CIFAR10_IMAGE_SHAPE,
    CIFAR10_NUM_CLASSES,
    CIFAR10_NUM_VAL,
    CIFAR10_PY_DIR,
    CIFAR10_PY_MD5,
    CIFAR10_RECORD_BYTES,
    CIFAR10_RECORDS_PER_BATCH,
    CIFAR10_TAR_MD5,
    CIFAR10_TEST_BATCH,
    CIFAR10_TRAIN_BATCHES,
    CIFAR10_URL,
    _load_cifar10_cached,
    load_cifar10,
)
from .files import DOWNLOAD_TIMEOUT_S, md5sum
from .mnist import (
    MNIST_FILES,
    MNIST_MIRRORS,
    MNIST_NUM_CLASSES,
    MNIST_NUM_VAL,
    IdxFile,
    _load_mnist_cached,
    load_mnist,
    read_idx,
)

__all__ = [
    "SPLITS",
    "CIFAR10_BIN_DIR",
    "CIFAR10_BIN_MD5",
    "CIFAR10_IMAGE_SHAPE",
    "CIFAR10_NUM_CLASSES",
    "CIFAR10_NUM_VAL",
    "CIFAR10_PY_DIR",
    "CIFAR10_PY_MD5",
    "CIFAR10_RECORDS_PER_BATCH",
    "CIFAR10_RECORD_BYTES",
    "CIFAR10_TAR_MD5",
    "CIFAR10_TEST_BATCH",
    "CIFAR10_TRAIN_BATCHES",
    "CIFAR10_URL",
    "DATASETS",
    "DATA_ENV",
    "DEFAULT_ROOT",
    "DOWNLOAD_TIMEOUT_S",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "MNIST_NUM_CLASSES",
    "MNIST_NUM_VAL",
    "PARTIAL_TEST_ENV",
    "SPLIT_SEED",
    "ChecksumError",
    "Dataset",
    "DatasetNotFoundError",
    "IdxFile",
    "PartialTestSetError",
    "Split",
    "clear_cache",
    "data_root",
    "load_cifar10",
    "load_dataset",
    "load_mnist",
    "md5sum",
    "read_idx",
    "split_indices",
    "test_set_tag",
    "to_float",
]

#: Training, validation and official test-set sizes per dataset (book/spec.md section 3): the
#: official training set less the validation images held out of it, and the official test set.
SPLITS: dict[str, tuple[int, int, int]] = {
    "mnist": (
        MNIST_FILES["train_labels"].shape[0] - MNIST_NUM_VAL,
        MNIST_NUM_VAL,
        MNIST_FILES["test_labels"].shape[0],
    ),
    "cifar10": (
        len(CIFAR10_TRAIN_BATCHES) * CIFAR10_RECORDS_PER_BATCH - CIFAR10_NUM_VAL,
        CIFAR10_NUM_VAL,
        CIFAR10_RECORDS_PER_BATCH,
    ),
}

DATASETS: Registry[Callable[..., Dataset]] = Registry(
    "dataset", (("mnist", load_mnist), ("cifar10", load_cifar10))
)


def load_dataset(
    name: str, root: str | os.PathLike[str] | None = None, **kwargs: bool | None
) -> Dataset:
    """Load the dataset registered as ``name`` in ``DATASETS`` (``"mnist"`` or ``"cifar10"``).

    Keyword options (``download``, ``partial_test``) are passed to the loader; every loader
    accepts both.
    """
    return DATASETS.lookup(name)(root, **kwargs)


def clear_cache() -> None:
    """Forget every dataset loaded so far in this process."""
    _load_mnist_cached.cache_clear()
    _load_cifar10_cached.cache_clear()

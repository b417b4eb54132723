"""Datasets: official files -> uint8 tensors with the paper's fixed splits.

Implements the data part of PAPER.md section 3 ("Training protocol"):

- Splits: 5,000 validation images drawn once, with a fixed seed (``SPLIT_SEED``), from the
  official training set. MNIST 55,000 train / 5,000 validation / 10,000 official test.
- Inputs scaled to [0, 1] (see ``to_float``), no mean/std normalisation, no augmentation.

Tensors are kept as uint8 here; the training code scales them with ``to_float``. Datasets are read
from a root folder in torchvision's layout (``<root>/MNIST/raw/``); the root is the explicit
argument, else ``$LTH_DATA``, else ``./data``. Loaded datasets are cached per (root, name) for the
life of the process, so the returned tensors are shared: never modify them in place.

CIFAR-10 (45,000 / 5,000 / 10,000) is not implemented yet; it will be one more ``load_cifar10``
function plus its entry in ``DATASETS``.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import math
import os
import pathlib
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch

__all__ = [
    "DATA_ENV",
    "DATASETS",
    "MNIST_FILES",
    "SPLIT_SEED",
    "ChecksumError",
    "Dataset",
    "DatasetNotFoundError",
    "IdxFile",
    "Split",
    "clear_cache",
    "data_root",
    "load_dataset",
    "load_mnist",
    "md5sum",
    "read_idx",
    "split_indices",
    "to_float",
]

DATA_ENV = "LTH_DATA"
DEFAULT_ROOT = "./data"

SPLIT_SEED = 0
"""Seed of the one fixed train/validation split of the official training set (PAPER.md s. 3)."""

MNIST_NUM_VAL = 5_000
MNIST_NUM_CLASSES = 10
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
)
DOWNLOAD_TIMEOUT_S = 10.0


class DatasetNotFoundError(FileNotFoundError):
    """Dataset files are missing (and could not be downloaded)."""


class ChecksumError(ValueError):
    """A dataset file does not have its official md5."""


@dataclass(frozen=True)
class IdxFile:
    """One official IDX file: its name without ``.gz``, the md5 of the ``.gz``, its array shape."""

    name: str
    md5_gz: str
    shape: tuple[int, ...]


# md5s of the official gzipped files (the ones torchvision lists). We do not
# list md5s of the uncompressed files: an uncompressed file is checked structurally instead (IDX
# magic number, dtype, number of dimensions, every dimension, and total byte size).
MNIST_FILES: dict[str, IdxFile] = {
    "train_images": IdxFile(
        "train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873", (60_000, 28, 28)
    ),
    "train_labels": IdxFile(
        "train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432", (60_000,)
    ),
    "test_images": IdxFile(
        "t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3", (10_000, 28, 28)
    ),
    "test_labels": IdxFile("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c", (10_000,)),
}


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
    """A dataset with the paper's fixed train/validation split and the official test set."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int


def data_root(root: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """Dataset root folder: ``root`` if given, else ``$LTH_DATA`` if set, else ``./data``."""
    if root is not None:
        return pathlib.Path(root)
    return pathlib.Path(os.environ.get(DATA_ENV) or DEFAULT_ROOT)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """The paper's input scaling (PAPER.md s. 3): uint8 pixels -> float32 in [0, 1], x / 255."""
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


def md5sum(path: pathlib.Path, chunk_size: int = 1 << 20) -> str:
    """md5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


# IDX type codes (third byte of the magic number) that we accept: 0x08 = unsigned byte.
_IDX_DTYPES = {0x08: torch.uint8}


def read_idx(path: str | os.PathLike[str]) -> torch.Tensor:
    """Parse an IDX file (gzipped if its name ends in ``.gz``) into a tensor.

    The magic number is two zero bytes, a type code (only 0x08, unsigned byte, is accepted) and the
    number of dimensions; then one big-endian int32 per dimension, then the data. The total size
    must match the header exactly.
    """
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()!r})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise ValueError(f"{path}: {len(raw)} bytes, IDX header {shape} implies {expected}")
    data = torch.frombuffer(bytearray(raw[header:]), dtype=_IDX_DTYPES[raw[2]])
    return data.reshape(shape)


def _locate(raw_dir: pathlib.Path, spec: IdxFile) -> pathlib.Path | None:
    """The file for ``spec`` in ``raw_dir``: the ``.gz`` if present, else the plain file."""
    for candidate in (raw_dir / f"{spec.name}.gz", raw_dir / spec.name):
        if candidate.is_file():
            return candidate
    return None


def _verify_md5(path: pathlib.Path, expected: str) -> None:
    actual = md5sum(path)
    if actual != expected:
        raise ChecksumError(f"{path}: md5 {actual}, expected the official {expected}")


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # torch.hub.download_url_to_file takes no timeout; set the default briefly and restore it.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _download_url(url: str, dst: pathlib.Path) -> None:
    """Download ``url`` to ``dst`` (a seam the tests replace)."""
    with _socket_timeout(DOWNLOAD_TIMEOUT_S):
        torch.hub.download_url_to_file(url, str(dst), progress=False)


def _download(raw_dir: pathlib.Path, spec: IdxFile, mirrors: tuple[str, ...]) -> str | None:
    """Fetch ``spec``'s ``.gz`` from the first mirror that serves the right md5.

    Returns None on success, otherwise a one-line summary of every failed attempt.
    """
    dst = raw_dir / f"{spec.name}.gz"
    errors = []
    for mirror in mirrors:
        url = mirror + dst.name
        try:
            raw_dir.mkdir(parents=True, exist_ok=True)
            _download_url(url, dst)
            _verify_md5(dst, spec.md5_gz)
            return None
        except Exception as exc:  # any failure just means "try the next mirror"
            dst.unlink(missing_ok=True)
            errors.append(f"{url}: {type(exc).__name__}: {exc}")
    return "; ".join(errors)


def _not_found_message(
    root: pathlib.Path, raw_dir: pathlib.Path, missing: list[IdxFile], errors: dict[str, str]
) -> str:
    lines = [f"MNIST files missing under dataset root {root} (looked in {raw_dir}):"]
    for spec in missing:
        lines.append(f"  {spec.name}.gz  (md5 {spec.md5_gz})")
        if spec.name in errors:
            lines.append(f"    download failed: {errors[spec.name]}")
    lines += [
        "Provide them by setting the environment variable "
        f"{DATA_ENV} to a folder that holds MNIST/raw/ with these files,",
        f"or by copying the official files (gzipped or not) into {raw_dir}.",
    ]
    if errors:
        lines.append("(Downloads stop after the first file that no mirror could provide.)")
    else:
        lines.append("(No download was attempted: download=False.)")
    return "\n".join(lines)


def _mnist_files(root: pathlib.Path, download: bool) -> dict[str, pathlib.Path]:
    """Paths of the four MNIST files, downloading missing ones if allowed; md5s of .gz verified."""
    raw_dir = root / "MNIST" / "raw"
    found: dict[str, pathlib.Path] = {}
    missing: list[IdxFile] = []
    errors: dict[str, str] = {}
    for key, spec in MNIST_FILES.items():
        path = _locate(raw_dir, spec)
        if path is None and download:
            error = _download(raw_dir, spec, MNIST_MIRRORS)
            if error is None:
                path = raw_dir / f"{spec.name}.gz"
            else:
                errors[spec.name] = error
                download = False  # keep offline failures cheap: no more attempts
        if path is None:
            missing.append(spec)
        else:
            found[key] = path
    if missing:
        raise DatasetNotFoundError(_not_found_message(root, raw_dir, missing, errors))
    for key, path in found.items():
        if path.suffix == ".gz":
            _verify_md5(path, MNIST_FILES[key].md5_gz)
    return found


def _read_checked(path: pathlib.Path, shape: tuple[int, ...]) -> torch.Tensor:
    """``read_idx`` plus a check of the expected shape (the check for uncompressed files)."""
    array = read_idx(path)
    if tuple(array.shape) != shape:
        raise ValueError(f"{path}: shape {tuple(array.shape)}, expected {shape}")
    return array


def _split(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> Split:
    """uint8 images (N, H, W) and uint8 labels -> Split with x (N, 1, H, W) and int64 y."""
    if labels.numel() and int(labels.max()) >= num_classes:
        raise ValueError(f"label {int(labels.max())} out of range for {num_classes} classes")
    return Split(x=images.unsqueeze(1).contiguous(), y=labels.to(torch.int64))


def _build_mnist(root: pathlib.Path, download: bool) -> Dataset:
    paths = _mnist_files(root, download)
    arrays = {key: _read_checked(paths[key], MNIST_FILES[key].shape) for key in MNIST_FILES}
    full = _split(arrays["train_images"], arrays["train_labels"], MNIST_NUM_CLASSES)
    train_idx, val_idx = split_indices(len(full), MNIST_NUM_VAL, SPLIT_SEED)
    return Dataset(
        name="mnist",
        train=Split(full.x[train_idx], full.y[train_idx]),
        val=Split(full.x[val_idx], full.y[val_idx]),
        test=_split(arrays["test_images"], arrays["test_labels"], MNIST_NUM_CLASSES),
        num_classes=MNIST_NUM_CLASSES,
    )


@functools.lru_cache(maxsize=4)
def _load_mnist_cached(root: pathlib.Path, download: bool) -> Dataset:
    return _build_mnist(root, download)


def load_mnist(root: str | os.PathLike[str] | None = None, *, download: bool = True) -> Dataset:
    """MNIST: 55,000 train / 5,000 validation (fixed seed) / 10,000 official test, uint8.

    Reads ``<root>/MNIST/raw/`` (``root`` resolved by ``data_root``). Missing files are downloaded
    from the official mirrors when ``download`` is true. Raises ``DatasetNotFoundError`` if files
    are still missing and ``ChecksumError`` if a ``.gz`` file lacks its official md5. Cached per
    root for the life of the process (see ``clear_cache``).
    """
    return _load_mnist_cached(data_root(root).resolve(), download)


DATASETS: Mapping[str, Callable[..., Dataset]] = {
    "mnist": load_mnist,
    # "cifar10": load_cifar10,  (to be added: 45,000 / 5,000 / 10,000, PAPER.md s. 3)
}


def load_dataset(name: str, root: str | os.PathLike[str] | None = None, **kwargs: bool) -> Dataset:
    """Load the dataset registered as ``name`` in ``DATASETS`` (e.g. ``"mnist"``)."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; accepted names: {', '.join(sorted(DATASETS))}"
        ) from None
    return loader(root, **kwargs)


def clear_cache() -> None:
    """Forget every dataset loaded so far in this process."""
    _load_mnist_cached.cache_clear()

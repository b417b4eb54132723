"""MNIST (book/spec.md section 3): the four official IDX files under ``<root>/MNIST/raw/``, gzipped
or not, each checked against its official md5 (``MNIST_FILES``), downloaded from
``MNIST_MIRRORS`` when missing and allowed; parsed by ``read_idx`` into 55,000 train / 5,000
validation (fixed seed) / 10,000 official test uint8 images. ``load_mnist`` caches per root.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import pathlib
from dataclasses import dataclass

import torch

from .base import (
    DATA_ENV,
    SPLIT_SEED,
    Dataset,
    DatasetNotFoundError,
    Split,
    data_root,
    split_indices,
)
from .files import _download, _locate, _verify_md5

MNIST_NUM_VAL = 5_000
MNIST_NUM_CLASSES = 10
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
)


@dataclass(frozen=True)
class IdxFile:
    """One official IDX file: its name without ``.gz``, the md5 of the ``.gz``, its array shape
    and the md5 of the uncompressed file (gunzipped official ``.gz``)."""

    name: str
    md5_gz: str
    shape: tuple[int, ...]
    md5_raw: str = ""

    def md5_of(self, path: pathlib.Path) -> str:
        """The official md5 of ``path``: of the ``.gz`` or of the uncompressed file."""
        return self.md5_gz if path.suffix == ".gz" else self.md5_raw


# md5s of the official gzipped files (the ones torchvision lists) and of their uncompressed
# contents (gunzip of those files), so that either form is checked before use.
MNIST_FILES: dict[str, IdxFile] = {
    "train_images": IdxFile(
        "train-images-idx3-ubyte",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        (60_000, 28, 28),
        "6bbc9ace898e44ae57da46a324031adb",
    ),
    "train_labels": IdxFile(
        "train-labels-idx1-ubyte",
        "d53e105ee54ea40749a09fcbcd1e9432",
        (60_000,),
        "a25bea736e30d166cdddb491f175f624",
    ),
    "test_images": IdxFile(
        "t10k-images-idx3-ubyte",
        "9fb629c4189551a2d022fa330f9573f3",
        (10_000, 28, 28),
        "2646ac647ad5339dbf082846283269ea",
    ),
    "test_labels": IdxFile(
        "t10k-labels-idx1-ubyte",
        "ec29112dd5afa0611ce80d1b7f02629c",
        (10_000,),
        "27ae3e4e09519cfbb04c329615203637",
    ),
}


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
    """Paths of the four MNIST files, downloading missing ones if allowed; every md5 verified
    (of the ``.gz`` or of the uncompressed file, whichever is there)."""
    raw_dir = root / "MNIST" / "raw"
    found: dict[str, pathlib.Path] = {}
    missing: list[IdxFile] = []
    errors: dict[str, str] = {}
    for key, spec in MNIST_FILES.items():
        path = _locate((raw_dir / f"{spec.name}.gz", raw_dir / spec.name))
        if path is None and download:
            error = _download(raw_dir / f"{spec.name}.gz", spec.md5_gz, MNIST_MIRRORS)
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
        _verify_md5(path, MNIST_FILES[key].md5_of(path))
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
        files=tuple((p.name, MNIST_FILES[key].md5_of(p)) for key, p in paths.items()),
    )


@functools.lru_cache(maxsize=4)
def _load_mnist_cached(root: pathlib.Path, download: bool) -> Dataset:
    return _build_mnist(root, download)


def load_mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    partial_test: bool | None = None,
) -> Dataset:
    """MNIST: 55,000 train / 5,000 validation (fixed seed) / 10,000 official test, uint8.

    Reads ``<root>/MNIST/raw/`` (``root`` resolved by ``data_root``). Missing files are downloaded
    from the official mirrors when ``download`` is true. Raises ``DatasetNotFoundError`` if files
    are still missing and ``ChecksumError`` if a ``.gz`` file lacks its official md5. Cached per
    root for the life of the process (see ``clear_cache``). ``partial_test`` is accepted so that
    callers can pass the same options to every loader; it has no effect here (the official MNIST
    test files are always complete).
    """
    del partial_test
    return _load_mnist_cached(data_root(root).resolve(), download)

"""CIFAR-10 (book/spec.md section 3): the six official batches in the binary version
(``<root>/cifar-10-batches-bin/``, preferred) or the python version
(``<root>/cifar-10-batches-py/``, read by a restricted unpickler that resolves only numpy's
array globals), each checked against its official md5; the binary tarball downloaded, checked
and safely extracted when neither folder is complete; 45,000 train / 5,000 validation (fixed
seed) / 10,000 official test uint8 images. A shorter test batch is refused unless allowed with
``partial_test`` (``PartialTestSetError``). ``load_cifar10`` caches per (root, options).
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import os
import pathlib
import pickle
import shutil
import tarfile
from collections.abc import Callable
from typing import NamedTuple

import torch

from .base import (
    DATA_ENV,
    PARTIAL_TEST_ENV,
    SPLIT_SEED,
    ChecksumError,
    Dataset,
    DatasetNotFoundError,
    PartialTestSetError,
    Split,
    _partial_test_allowed,
    data_root,
    split_indices,
)
from .files import _fetch_verified, _read_bytes

CIFAR10_NUM_VAL = 5_000
CIFAR10_NUM_CLASSES = 10
CIFAR10_RECORDS_PER_BATCH = 10_000
"""Records in each of the five official training batches and in the official test batch."""
CIFAR10_IMAGE_SHAPE = (3, 32, 32)
CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32
"""3,073: one label byte, then 1,024 red, 1,024 green and 1,024 blue bytes (rows of 32)."""
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_BIN_DIR = "cifar-10-batches-bin"
CIFAR10_PY_DIR = "cifar-10-batches-py"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_TAR_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"

# Official md5s of the binary version (cifar-10-binary.tar.gz, extracted) ...
CIFAR10_BIN_MD5: dict[str, str] = {
    "data_batch_1.bin": "5dd7e06a14cb22eb9f671a540d1b7c25",
    "data_batch_2.bin": "5ea93a67294ea407fff1d09f752e9692",
    "data_batch_3.bin": "942cd6a4bcdd0dd3c604fbe906cb4421",
    "data_batch_4.bin": "ae636b3ba5c66a11e91e8cb52e771fcb",
    "data_batch_5.bin": "53f37980c15c3d472c316c40844f3f0d",
    "test_batch.bin": "803d5f7f4d78ea53de84dbe85f74fb6d",
}
# ... and of the python version (cifar-10-python.tar.gz, extracted; the ones torchvision lists).
CIFAR10_PY_MD5: dict[str, str] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}


class _CifarFormat(NamedTuple):
    """One official CIFAR-10 version: its folder, file suffix, md5 table and batch parser."""

    folder: str
    suffix: str
    description: str
    md5s: dict[str, str]
    parse: Callable[[pathlib.Path, bytearray], tuple[torch.Tensor, torch.Tensor]]


def _cifar_formats() -> tuple[_CifarFormat, ...]:
    """The two official versions, binary first (preferred). Built on each call from the module
    tables, so that tests can patch them."""
    return (
        _CifarFormat(CIFAR10_BIN_DIR, ".bin", "binary version", CIFAR10_BIN_MD5, _parse_cifar_bin),
        _CifarFormat(CIFAR10_PY_DIR, "", "python version", CIFAR10_PY_MD5, _parse_cifar_py),
    )


def _cifar_batches() -> tuple[str, ...]:
    return (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)


def _parse_cifar_bin(path: pathlib.Path, buf: bytearray) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary batch -> (uint8 images (N, 3, 32, 32), int64 labels (N,)), without copying pixels.

    Each record is one label byte then the red, green and blue planes, each 32 rows of 32 bytes,
    which is exactly channel-first row-major order.
    """
    if not buf or len(buf) % CIFAR10_RECORD_BYTES:
        raise ValueError(
            f"{path}: {len(buf):,} bytes is not a whole, non-zero number of "
            f"{CIFAR10_RECORD_BYTES:,}-byte records"
        )
    n = len(buf) // CIFAR10_RECORD_BYTES
    records = torch.frombuffer(buf, dtype=torch.uint8).reshape(n, CIFAR10_RECORD_BYTES)
    return records[:, 1:].reshape(n, *CIFAR10_IMAGE_SHAPE), records[:, 0].to(torch.int64)


# Globals a CIFAR-10 python batch may reference: numpy's array reconstruction (protocol 2 from
# Python 2, as in the official files, or from Python 3) and bytes encoding. Nothing else is
# resolved, so unpickling a file that has not (yet) passed its md5 check cannot run code.
_PICKLE_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _parse_cifar_py(path: pathlib.Path, buf: bytearray) -> tuple[torch.Tensor, torch.Tensor]:
    """Python batch (a pickled dict, read with ``encoding="bytes"``) -> (images, labels).

    ``b"data"`` is uint8 (N, 3072), each row the red, green and blue planes of 32 rows of 32;
    ``b"labels"`` is a list of N ints.
    """
    import numpy as np

    try:
        entry = _RestrictedUnpickler(io.BytesIO(buf), encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means "not a valid batch"
        raise ValueError(
            f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(entry, dict) or b"data" not in entry or b"labels" not in entry:
        raise ValueError(f"{path}: not a CIFAR-10 python batch (no b'data' and b'labels' entries)")
    data, labels = entry[b"data"], entry[b"labels"]
    width = math.prod(CIFAR10_IMAGE_SHAPE)
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[0] == 0
        or data.shape[1] != width
    ):
        raise ValueError(f"{path}: b'data' is not a non-empty uint8 array of shape (N, {width})")
    n = data.shape[0]
    try:
        y = torch.from_numpy(np.asarray(labels, dtype=np.int64).copy())
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{path}: b'labels' is not a list of integers") from exc
    if tuple(y.shape) != (n,):
        raise ValueError(f"{path}: {n} images but b'labels' has shape {tuple(y.shape)}")
    return torch.from_numpy(data.copy()).reshape(n, *CIFAR10_IMAGE_SHAPE), y


def _check_cifar_labels(path: pathlib.Path, labels: torch.Tensor) -> None:
    if int(labels.min()) < 0 or int(labels.max()) >= CIFAR10_NUM_CLASSES:
        raise ValueError(
            f"{path}: labels span [{int(labels.min())}, {int(labels.max())}], expected "
            f"[0, {CIFAR10_NUM_CLASSES - 1}]"
        )


def _load_cifar_batch(
    path: pathlib.Path, fmt: _CifarFormat, *, is_test: bool, partial_ok: bool
) -> tuple[torch.Tensor, torch.Tensor, bool, str]:
    """Read and check one batch; returns (images, labels, complete, md5).

    A file with its official md5 must hold ``CIFAR10_RECORDS_PER_BATCH`` records. Any other file
    is an error (``ChecksumError``), except a test batch with fewer records that is structurally
    valid (whole records, labels < 10): that is a ``PartialTestSetError`` unless ``partial_ok``,
    in which case it is returned with ``complete=False``.
    """
    official = fmt.md5s[path.name]
    buf = _read_bytes(path)
    md5 = hashlib.md5(buf).hexdigest()
    full = CIFAR10_RECORDS_PER_BATCH
    if md5 == official:
        x, y = fmt.parse(path, buf)
        if len(y) != full:
            raise ValueError(f"{path}: holds {len(y):,} records, expected {full:,}")
        _check_cifar_labels(path, y)
        return x, y, True, md5

    mismatch = f"{path}: md5 {md5}, expected the official {official}"
    if not is_test:
        raise ChecksumError(
            f"{mismatch}. Training batches must be the official files, with all {full:,} "
            "records (partial_test applies only to the test batch)."
        )
    try:
        x, y = fmt.parse(path, buf)
        _check_cifar_labels(path, y)
    except ValueError as exc:
        raise ChecksumError(
            f"{mismatch}; it is not a structurally valid partial test batch either: {exc}"
        ) from exc
    n = len(y)
    if n >= full:
        raise ChecksumError(f"{mismatch} ({n:,} records: a full-size test batch must match it)")
    if not partial_ok:
        raise PartialTestSetError(
            f"{path}: the test batch holds {n:,} of {full:,} records (md5 {md5}; the complete "
            f"official file has md5 {official}). Test accuracy on it would be measured on "
            f"{n:,} images only, so it is refused by default. To accept this partial test set "
            f"explicitly, pass partial_test=True (to load_cifar10 or load_dataset) or set the "
            f"environment variable {PARTIAL_TEST_ENV}=1; the Dataset then has "
            "test_complete=False. Otherwise provide the complete official test batch."
        )
    return x, y, False, md5


def _cifar_paths(root: pathlib.Path, fmt: _CifarFormat) -> dict[str, pathlib.Path]:
    return {batch: root / fmt.folder / f"{batch}{fmt.suffix}" for batch in _cifar_batches()}


def _extract_cifar10(tar_path: pathlib.Path, root: pathlib.Path) -> None:
    """Extract the regular files directly inside ``cifar-10-batches-bin/`` of the tarball.

    Safe by construction: each destination is ``<root>/cifar-10-batches-bin/<base name>``, chosen
    here; links, devices, nested or absolute paths and ``..`` are never extracted.
    """
    dest = root / CIFAR10_BIN_DIR
    with tarfile.open(tar_path, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix("./")
            folder, _, base = name.rpartition("/")
            if not member.isfile() or folder != CIFAR10_BIN_DIR or base in ("", ".", ".."):
                continue
            source = tar.extractfile(member)
            if source is None:
                continue
            dest.mkdir(parents=True, exist_ok=True)
            part = dest / f"{base}.part"
            with source, open(part, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            os.replace(part, dest / base)


def _download_cifar10(root: pathlib.Path) -> str | None:
    """Fetch, verify and extract the official binary tarball into ``root``.

    Returns None on success, otherwise a one-line description of the failure. The tarball is
    deleted afterwards either way.
    """
    tar_path = root / CIFAR10_URL.rsplit("/", 1)[-1]
    try:
        root.mkdir(parents=True, exist_ok=True)
        _fetch_verified(CIFAR10_URL, tar_path, CIFAR10_TAR_MD5)
        _extract_cifar10(tar_path, root)
    except Exception as exc:  # reported in the DatasetNotFoundError
        return f"{CIFAR10_URL}: {type(exc).__name__}: {exc}"
    finally:
        tar_path.unlink(missing_ok=True)
    return None


def _cifar_not_found_message(root: pathlib.Path, download: bool, error: str | None) -> str:
    lines = [f"CIFAR-10 files missing under dataset root {root}. Looked in:"]
    for fmt in _cifar_formats():
        folder = root / fmt.folder
        lines.append(f"  {folder}  ({fmt.description}); missing:")
        for path in _cifar_paths(root, fmt).values():
            if not path.is_file():
                lines.append(f"    {path.name}  (md5 {fmt.md5s[path.name]})")
    if error is not None:
        lines.append(f"Download failed: {error}")
    elif not download:
        lines.append("(No download was attempted: download=False.)")
    else:
        lines.append(f"The tarball from {CIFAR10_URL} did not contain these files.")
    lines += [
        f"Provide one folder complete: set the environment variable {DATA_ENV} to a folder that "
        f"holds {CIFAR10_BIN_DIR}/ (or {CIFAR10_PY_DIR}/) with these files, or copy the official "
        f"files into {root / CIFAR10_BIN_DIR} (e.g. extract the official {CIFAR10_URL} "
        f"(md5 {CIFAR10_TAR_MD5}) into {root}).",
    ]
    return "\n".join(lines)


def _cifar_files(
    root: pathlib.Path, download: bool
) -> tuple[_CifarFormat, dict[str, pathlib.Path]]:
    """The first version (binary preferred) with all six batch files present, downloading the
    binary tarball if neither is complete and ``download`` is true."""
    formats = _cifar_formats()
    for fmt in formats:
        paths = _cifar_paths(root, fmt)
        if all(path.is_file() for path in paths.values()):
            return fmt, paths
    error = None
    if download:
        error = _download_cifar10(root)
        paths = _cifar_paths(root, formats[0])
        if error is None and all(path.is_file() for path in paths.values()):
            return formats[0], paths
    raise DatasetNotFoundError(_cifar_not_found_message(root, download, error))


def _build_cifar10(root: pathlib.Path, download: bool, partial_test: bool) -> Dataset:
    fmt, paths = _cifar_files(root, download)
    # The test batch first: a refused partial test set fails before 150 MB are read.
    test_x, test_y, complete, test_md5 = _load_cifar_batch(
        paths[CIFAR10_TEST_BATCH], fmt, is_test=True, partial_ok=partial_test
    )
    xs, ys, files = [], [], []
    for batch in CIFAR10_TRAIN_BATCHES:
        x, y, _, md5 = _load_cifar_batch(paths[batch], fmt, is_test=False, partial_ok=False)
        xs.append(x)
        ys.append(y)
        files.append((paths[batch].name, md5))
    files.append((paths[CIFAR10_TEST_BATCH].name, test_md5))
    full = Split(torch.cat(xs), torch.cat(ys))
    train_idx, val_idx = split_indices(len(full), CIFAR10_NUM_VAL, SPLIT_SEED)
    return Dataset(
        name="cifar10",
        train=Split(full.x[train_idx], full.y[train_idx]),
        val=Split(full.x[val_idx], full.y[val_idx]),
        test=Split(test_x.contiguous(), test_y),
        num_classes=CIFAR10_NUM_CLASSES,
        test_complete=complete,
        files=tuple(files),
    )


@functools.lru_cache(maxsize=2)
def _load_cifar10_cached(root: pathlib.Path, download: bool, partial_test: bool) -> Dataset:
    return _build_cifar10(root, download, partial_test)


def load_cifar10(
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    partial_test: bool | None = None,
) -> Dataset:
    """CIFAR-10: 45,000 train / 5,000 validation (fixed seed) / 10,000 official test (book/spec.md
    section 3), uint8 images (N, 3, 32, 32) and int64 labels.

    Reads ``<root>/cifar-10-batches-bin/`` (the binary version, preferred) or
    ``<root>/cifar-10-batches-py/`` (the python version), ``root`` resolved by ``data_root``. If
    neither holds all six batches and ``download`` is true, the official binary tarball is
    downloaded, checked and extracted into ``root``. Every batch must have its official md5
    (``ChecksumError`` otherwise); ``DatasetNotFoundError`` if files are still missing.

    The only exception is a structurally valid test batch with fewer than 10,000 records: it
    raises ``PartialTestSetError`` unless ``partial_test`` is true (if ``partial_test`` is None,
    ``$LTH_PARTIAL_TEST=1`` allows it); the result then has ``test_complete=False``. Cached per
    (root, download, partial_test) for the life of the process (see ``clear_cache``).
    """
    allowed = _partial_test_allowed(partial_test)
    return _load_cifar10_cached(data_root(root).resolve(), download, allowed)

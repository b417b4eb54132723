"""Datasets: official files -> uint8 tensors with the paper's fixed splits.

Implements the data part of PAPER.md section 3 ("Training protocol"):

- Splits: 5,000 validation images drawn once, with a fixed seed (``SPLIT_SEED``), from the
  official training set. MNIST 55,000 train / 5,000 validation / 10,000 official test; CIFAR-10
  45,000 train / 5,000 validation / 10,000 official test.
- Inputs scaled to [0, 1] (see ``to_float``), no mean/std normalisation, no augmentation.

Tensors are kept as uint8 here; the training code scales them with ``to_float``. Datasets are read
from a root folder in torchvision's layout (``<root>/MNIST/raw/``, ``<root>/cifar-10-batches-bin/``
or ``<root>/cifar-10-batches-py/``); the root is the explicit argument, else ``$LTH_DATA``, else
``./data``. Every file is checked against its official md5 before use (MNIST gzipped or not).
Loaded datasets are cached per (root, name, options) for the life of the process, so the returned
tensors are shared: never modify them in place.

A CIFAR-10 test batch with fewer than the official 10,000 records (the only kind of incomplete
file accepted) is refused unless explicitly allowed with ``partial_test=True`` or
``$LTH_PARTIAL_TEST=1``; the dataset then has ``test_complete=False``.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import io
import math
import os
import pathlib
import pickle
import shutil
import socket
import tarfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch

__all__ = [
    "CIFAR10_BIN_DIR",
    "CIFAR10_BIN_MD5",
    "CIFAR10_PY_DIR",
    "CIFAR10_PY_MD5",
    "CIFAR10_RECORDS_PER_BATCH",
    "CIFAR10_RECORD_BYTES",
    "CIFAR10_TAR_MD5",
    "CIFAR10_URL",
    "DATA_ENV",
    "DATASETS",
    "MNIST_FILES",
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

PARTIAL_TEST_ENV = "LTH_PARTIAL_TEST"
"""Set to 1 to accept a partial CIFAR-10 test batch when ``partial_test`` is not given."""

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


class DatasetNotFoundError(FileNotFoundError):
    """Dataset files are missing (and could not be downloaded)."""


class ChecksumError(ValueError):
    """A dataset file does not have its official md5."""


class PartialTestSetError(ValueError):
    """The CIFAR-10 test batch holds fewer than the official records and that was not allowed."""


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
    """The file for ``spec`` in ``raw_dir``: the ``.gz`` if present, else the plain file.

    A link that points nowhere is an error naming it (never replaced by a download)."""
    for candidate in (raw_dir / f"{spec.name}.gz", raw_dir / spec.name):
        if candidate.is_file():
            return candidate
        if candidate.is_symlink():
            raise DatasetNotFoundError(
                f"{candidate} is a broken symbolic link (to {os.readlink(candidate)}): "
                "point it at the official file, or remove it"
            )
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
    part = raw_dir / f".{dst.name}.part"  # only this file of ours is ever deleted
    errors = []
    for mirror in mirrors:
        url = mirror + dst.name
        try:
            raw_dir.mkdir(parents=True, exist_ok=True)
            _download_url(url, part)
            _verify_md5(part, spec.md5_gz)
            os.replace(part, dst)
            return None
        except Exception as exc:  # any failure just means "try the next mirror"
            part.unlink(missing_ok=True)
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
    """Paths of the four MNIST files, downloading missing ones if allowed; every md5 verified
    (of the ``.gz`` or of the uncompressed file, whichever is there)."""
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


# ----------------------------------------------------------------------------------------------
# CIFAR-10


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


def _read_bytes(path: pathlib.Path) -> bytearray:
    """The whole file in one writable buffer (``torch.frombuffer`` then needs no copy)."""
    buf = bytearray(path.stat().st_size)
    with open(path, "rb") as f:
        n = f.readinto(buf)
    if n != len(buf):  # the file changed size while being read
        raise OSError(f"{path}: read {n} of {len(buf)} bytes")
    return buf


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
        _download_url(CIFAR10_URL, tar_path)
        _verify_md5(tar_path, CIFAR10_TAR_MD5)
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
    """CIFAR-10: 45,000 train / 5,000 validation (fixed seed) / 10,000 official test (PAPER.md
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


DATASETS: Mapping[str, Callable[..., Dataset]] = {
    "mnist": load_mnist,
    "cifar10": load_cifar10,
}


def load_dataset(
    name: str, root: str | os.PathLike[str] | None = None, **kwargs: bool | None
) -> Dataset:
    """Load the dataset registered as ``name`` in ``DATASETS`` (``"mnist"`` or ``"cifar10"``).

    Keyword options (``download``, ``partial_test``) are passed to the loader; every loader
    accepts both.
    """
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
    _load_cifar10_cached.cache_clear()

"""File handling shared by the dataset loaders: md5 sums and their check against the official
values, whole-file reads, finding a file among its accepted forms (a broken link is an error,
never replaced), and downloads (a socket timeout, mirrors tried in order, a ``.part`` file
renamed only once its md5 is right). ``_download_url`` is the one place a download happens: the
seam the tests replace (patch it here, in ``lth.data.files``, where it is looked up).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import socket
from collections.abc import Iterable, Iterator

import torch

from .base import ChecksumError, DatasetNotFoundError

DOWNLOAD_TIMEOUT_S = 10.0


def md5sum(path: pathlib.Path, chunk_size: int = 1 << 20) -> str:
    """md5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_md5(path: pathlib.Path, expected: str) -> None:
    actual = md5sum(path)
    if actual != expected:
        raise ChecksumError(f"{path}: md5 {actual}, expected the official {expected}")


def _read_bytes(path: pathlib.Path) -> bytearray:
    """The whole file in one writable buffer (``torch.frombuffer`` then needs no copy)."""
    buf = bytearray(path.stat().st_size)
    with open(path, "rb") as f:
        n = f.readinto(buf)
    if n != len(buf):  # the file changed size while being read
        raise OSError(f"{path}: read {n} of {len(buf)} bytes")
    return buf


def _locate(candidates: Iterable[pathlib.Path]) -> pathlib.Path | None:
    """The first of ``candidates`` that is a regular file (or a link to one), else None.

    A link that points nowhere is an error naming it (never replaced by a download)."""
    for candidate in candidates:
        if candidate.is_file():
            return candidate
        if candidate.is_symlink():
            raise DatasetNotFoundError(
                f"{candidate} is a broken symbolic link (to {os.readlink(candidate)}): "
                "point it at the official file, or remove it"
            )
    return None


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


def _fetch_verified(url: str, dst: pathlib.Path, md5: str) -> None:
    """Download ``url`` to ``dst`` and check that it has the official ``md5``."""
    _download_url(url, dst)
    _verify_md5(dst, md5)


def _download(dst: pathlib.Path, md5: str, mirrors: tuple[str, ...]) -> str | None:
    """Fetch ``dst.name`` into ``dst`` from the first mirror that serves the right ``md5``.

    Returns None on success, otherwise a one-line summary of every failed attempt.
    """
    part = dst.parent / f".{dst.name}.part"  # only this file of ours is ever deleted
    errors = []
    for mirror in mirrors:
        url = mirror + dst.name
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            _fetch_verified(url, part, md5)
            os.replace(part, dst)
            return None
        except Exception as exc:  # any failure just means "try the next mirror"
            part.unlink(missing_ok=True)
            errors.append(f"{url}: {type(exc).__name__}: {exc}")
    return "; ".join(errors)

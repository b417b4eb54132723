"""The run store and the chain-state cache (DESIGN.md, "Runs, results and caching").

:class:`RunStore` keeps one JSON record per trained network, named by the hash of the spec that
produced it. Records are small, sorted and indented so that the committed ones diff cleanly, and
every write is atomic (a temporary file in the same folder, then ``os.replace``): a killed sweep
leaves whole records or none, and resuming it skips every run already recorded.

:class:`StateCache` keeps the tensors a pruning chain needs to go on (each round's start values,
final weights and mask), also atomically, in a git-ignored folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

RUNS_ENV = "LTH_RUNS"
CACHE_ENV = "LTH_CACHE"


def spec_key(spec: dict) -> str:
    """A stable 16-hex-digit key for a run spec (canonical JSON, SHA-256).

    Entries whose value is None are left out, so a field added to specs later with a None
    default leaves the keys of every existing record unchanged.
    """
    present = {k: v for k, v in spec.items() if v is not None}
    canonical = json.dumps(present, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_runs_dir() -> Path:
    """``$LTH_RUNS`` or ``./data/runs``: where the committed records live."""
    return Path(os.environ.get(RUNS_ENV) or "data/runs")


def default_cache_dir() -> Path:
    """``$LTH_CACHE`` or ``./.cache/lth``."""
    return Path(os.environ.get(CACHE_ENV) or ".cache/lth")


class RunStore:
    """One JSON record per run, at ``<root>/<key>.json``."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str) -> dict | None:
        """The record stored under ``key``, or None."""
        try:
            return json.loads(self.path(key).read_text())
        except FileNotFoundError:
            return None

    def put(self, key: str, record: dict) -> None:
        """Write ``record`` under ``key`` atomically."""
        text = json.dumps(record, sort_keys=True, indent=1) + "\n"
        _atomic_write(self.path(key), lambda f: f.write(text.encode()))

    def keys(self) -> Iterator[str]:
        return (p.stem for p in sorted(self.root.glob("*.json")))


class StateCache:
    """Per-run tensors (``{name: list of tensors}``) at ``<root>/<key>.pt``."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def load(self, key: str) -> dict[str, list[torch.Tensor]] | None:
        try:
            return torch.load(self.path(key), weights_only=True)
        except FileNotFoundError:
            return None

    def save(self, key: str, state: dict[str, list[torch.Tensor]]) -> None:
        cpu = {name: [t.detach().cpu().clone() for t in ts] for name, ts in state.items()}
        _atomic_write(self.path(key), lambda f: torch.save(cpu, f))

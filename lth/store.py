"""The run store and the chain-state cache (DESIGN.md, "Runs, results and caching").

:class:`RunStore` keeps one JSON record per trained network, named by the hash of the spec that
produced it. Records are small, sorted and indented so that the committed ones diff cleanly.
Every write is atomic (a temporary file in the same folder, then a link or rename), and a record
is written once: a killed sweep leaves whole records or none, and resuming it skips every run
already recorded.

Many processes (and machines sharing a filesystem) may work on one store: :meth:`RunStore.lock`
gives a run to one of them at a time (:class:`RunLock`), a lock left by a killed process is
detected and taken over, temporary files left by a killed write are removed, and a damaged
record or cache file is reported with its path and set aside in ``damaged/`` so that it is
recomputed.

:class:`StateCache` keeps the tensors a pruning chain needs to go on (each round's start values,
final weights and mask), also atomically, in a git-ignored folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import tempfile
import threading
import time
import warnings
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


HOST = socket.gethostname()
#: A lock whose holder has not refreshed it for this long is stale (its machine is gone).
STALE_LOCK_S = 600.0
#: How often a held lock is refreshed.
HEARTBEAT_S = 60.0
#: A temporary file this old is a leftover of a killed write, whatever its host.
STALE_TMP_S = 24 * 3600.0


class DamagedFileWarning(UserWarning):
    """A record or cache file could not be read; it was set aside and will be recomputed."""


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}~{HOST}~{os.getpid()}~"  # "~" is in no host name


def atomic_write(path: Path, write, *, once: bool = False) -> bool:
    """Write ``path`` atomically; with ``once``, only if it does not exist yet (returns False
    and writes nothing if it does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if not once:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # atomic create-if-absent
        except FileExistsError:
            return False
        finally:
            Path(tmp).unlink(missing_ok=True)
        return True
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _process_alive(host: str, pid: int) -> bool | None:
    """Whether process ``pid`` of ``host`` runs; None when it is another host's."""
    if host != HOST:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_temporary_files(folder: Path) -> list[Path]:
    """Remove temporary files that killed writes left in ``folder``: those of a dead process
    of this host, and any older than :data:`STALE_TMP_S`. Returns what was removed."""
    removed = []
    for tmp in folder.glob(".*.tmp"):
        try:
            age = time.time() - tmp.stat().st_mtime
        except FileNotFoundError:
            continue
        parts = tmp.name.split("~")
        host, pid = (parts[1], int(parts[2])) if len(parts) == 4 and parts[2].isdigit() else ("", 0)
        if age > STALE_TMP_S or (pid and _process_alive(host, pid) is False):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def set_aside(path: Path, error: Exception) -> Path:
    """Move a damaged file into ``damaged/`` beside it, warn with both paths, return the new
    path (the caller then recomputes what the file held)."""
    dest = path.parent / "damaged" / f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, dest)
    warnings.warn(
        f"{path} is damaged ({type(error).__name__}: {error}); moved to {dest}, "
        "and what it held will be recomputed",
        DamagedFileWarning,
        stacklevel=3,
    )
    return dest


class LockHeld(RuntimeError):
    """Another live process holds the lock."""


class RunLock:
    """An exclusive lock on one run key: ``<store>/.locks/<key>.lock``, created atomically,
    holding its owner's host and pid, refreshed every :data:`HEARTBEAT_S` while held.

    A lock is stale, and taken over, when its process is dead (same host) or it has not been
    refreshed for :data:`STALE_LOCK_S` (another host, which may be gone)."""

    def __init__(self, path: Path):
        self.path = path
        self.held = False

    def owner(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def stale(self) -> bool:
        owner = self.owner()
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return False
        if owner is None:  # being written, or damaged: judge by its age alone
            return age > STALE_LOCK_S
        alive = _process_alive(owner.get("host", ""), int(owner.get("pid", -1)))
        return alive is False or (alive is None and age > STALE_LOCK_S)

    def acquire(self) -> bool:
        """Take the lock if it is free or stale; False if a live process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mine = json.dumps({"host": HOST, "pid": os.getpid(), "since": time.time()})
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self.stale():
                    return False
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()  # take over: one of the contenders wins the O_EXCL
                continue
            with os.fdopen(fd, "w") as f:
                f.write(mine)
            self.held = True
            return True
        return False

    def refresh(self) -> None:
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.path)

    def release(self) -> None:
        if self.held:
            self.held = False
            owner = self.owner()
            if owner and owner.get("host") == HOST and owner.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)


class Heartbeat:
    """Refreshes held locks from a background thread while a population trains."""

    def __init__(self, locks: list[RunLock], every: float = HEARTBEAT_S):
        self.locks, self.every = locks, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for lock in self.locks:
                lock.refresh()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


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
        """The record stored under ``key``, or None (also for a damaged record, which is set
        aside with a :class:`DamagedFileWarning`)."""
        path = self.path(key)
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            return record
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError) as error:
            set_aside(path, error)
            return None

    def put(self, key: str, record: dict) -> bool:
        """Write ``record`` under ``key`` atomically, once: False (and nothing written) if a
        record is already there."""
        text = json.dumps(record, sort_keys=True, indent=1) + "\n"
        return atomic_write(self.path(key), lambda f: f.write(text.encode()), once=True)

    def keys(self) -> Iterator[str]:
        return (p.stem for p in sorted(self.root.glob("*.json")))

    def lock(self, key: str) -> RunLock:
        """The lock that gives run ``key`` to one process at a time."""
        return RunLock(self.root / ".locks" / f"{key}.lock")

    def clean(self) -> list[Path]:
        """Remove temporary files of killed writes (see :func:`clean_temporary_files`)."""
        return clean_temporary_files(self.root) if self.root.is_dir() else []


def is_legacy(record: dict) -> bool:
    """Whether ``record`` was made before members trained independently of their population
    (its provenance names no population): its numbers depend on its companions, so it cannot
    be re-made bit for bit."""
    return "population" not in record.get("provenance", {})


class LegacyRemake(RunStore):
    """A store as a sweep that re-makes legacy records sees it (:func:`is_legacy`): a legacy
    record counts as absent, so it is trained again, and its re-made twin replaces it
    atomically. Every other record is untouched, and the legacy one stays until its
    replacement is written, so a stopped remake leaves a complete store."""

    def _legacy(self, key: str) -> bool:
        record = RunStore.get(self, key)
        return record is not None and is_legacy(record)

    def __contains__(self, key: str) -> bool:
        return super().__contains__(key) and not self._legacy(key)

    def put(self, key: str, record: dict) -> bool:
        if not self._legacy(key):
            return super().put(key, record)
        text = json.dumps(record, sort_keys=True, indent=1) + "\n"
        return atomic_write(self.path(key), lambda f: f.write(text.encode()))


#: A cache written before the paper's names were used everywhere called w_i and w_f these.
OLD_STATE_NAMES = {"w_start": "w_i", "w_final": "w_f"}


class StateCache:
    """Per-run tensors (``{name: list of tensors}``) at ``<root>/<key>.pt``."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def load(self, key: str) -> dict[str, list[torch.Tensor]] | None:
        """The tensors saved under ``key``, or None (also for a damaged file, which is set
        aside with a :class:`DamagedFileWarning`)."""
        path = self.path(key)
        try:
            state = torch.load(path, weights_only=True)
            if not isinstance(state, dict):
                raise ValueError("not a dict of tensor lists")
            return {OLD_STATE_NAMES.get(name, name): tensors for name, tensors in state.items()}
        except FileNotFoundError:
            return None
        except Exception as error:  # unpickling errors of every kind: a damaged file
            set_aside(path, error)
            return None

    def save(self, key: str, state: dict[str, list[torch.Tensor]]) -> None:
        cpu = {name: [t.detach().cpu().clone() for t in ts] for name, ts in state.items()}
        atomic_write(self.path(key), lambda f: torch.save(cpu, f))

    def clean(self) -> list[Path]:
        """Remove temporary files of killed writes (see :func:`clean_temporary_files`)."""
        return clean_temporary_files(self.root) if self.root.is_dir() else []

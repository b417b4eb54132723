"""How a record was made (DESIGN.md, "Runs, results and caching"): the code, its environment,
the data and the population, so that a record can be re-made and checked (``python -m lth
verify``).

The code's identity is read once per process, before any training, so that a commit made while
a sweep runs does not leak into its records. A record from a tree with uncommitted changes says
so (``git_dirty``); records meant to be committed (those written into the repository's own
``data/runs``) are refused from such a tree unless the user allows it explicitly
(``allow_dirty=True``, ``--allow-dirty`` or ``LTH_ALLOW_DIRTY=1``).
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy
import torch

from . import __version__

ALLOW_DIRTY_ENV = "LTH_ALLOW_DIRTY"

#: The repository this package runs from (None when installed elsewhere than a checkout).
_PACKAGE_DIR = Path(__file__).resolve().parent


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, cwd=_PACKAGE_DIR
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


@functools.cache
def repository_root() -> Path | None:
    """The git work tree holding this package, if it is one."""
    top = _git("rev-parse", "--show-toplevel")
    return Path(top.strip()) if top and top.strip() else None


@functools.cache
def code_identity() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the code this process runs, read once. Dirty means a tracked file
    differs from the commit or an untracked, not ignored file exists, outside ``data/runs``
    (records are data, not code)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = _git("status", "--porcelain", "--", ":(top)", ":(top,exclude)data/runs")
    return commit.strip() or None, None if status is None else bool(status.strip())


def committed_store(root: str | os.PathLike) -> bool:
    """Whether ``root`` is this repository's own ``data/runs``: the records the book is built
    from, meant to be committed."""
    repo = repository_root()
    return repo is not None and Path(root).resolve() == (repo / "data" / "runs").resolve()


def check_clean_tree(root: str | os.PathLike, allow_dirty: bool | None = None) -> None:
    """Refuse, before any work, to write records meant to be committed from a dirty tree.

    ``allow_dirty`` None reads ``$LTH_ALLOW_DIRTY`` (1 allows). Records written anyway carry
    ``git_dirty: true``."""
    if allow_dirty is None:
        allow_dirty = os.environ.get(ALLOW_DIRTY_ENV, "").strip() in ("1", "true", "yes")
    if allow_dirty or not committed_store(root):
        return
    commit, dirty = code_identity()
    if dirty:
        raise ValueError(
            f"the git tree has uncommitted changes, and records written into {root} are meant "
            "to be committed: a record must say which code made it. Commit first, or write "
            f"elsewhere (LTH_RUNS or --runs), or allow it explicitly ({ALLOW_DIRTY_ENV}=1 or "
            "--allow-dirty; the records then say git_dirty: true)"
        )


#: CPU features that change which kernels torch picks, so the low bits of a result: bf16 is
#: native only with AVX-512 BF16 (or AMX), and emulated about 100 times slower without it.
_NUMERIC_FLAGS = frozenset(("avx512_bf16", "amx_bf16", "amx_tile"))


@functools.cache
def _cpuinfo(field: str) -> str | None:
    """The first ``field`` line of ``/proc/cpuinfo`` (None where there is none, as off Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == field:
            return value.strip()
    return None


def _bf16_features() -> list[str]:
    """This CPU's flags among :data:`_NUMERIC_FLAGS`, sorted."""
    return sorted(_NUMERIC_FLAGS.intersection((_cpuinfo("flags") or "").split()))


@functools.cache
def machine_type() -> str:
    """The machine type a record's bits depend on: the CPU vendor, the vector instruction set
    torch dispatches to and the bf16 features, for example "AuthenticAMD AVX512 avx512_bf16"
    (DESIGN.md, "Runs, results and caching": a spec fixes its result on the same machine type).
    A record made on an AVX-512 machine differs in its low bits from the same spec re-made on
    an AVX2 machine, and those bits grow over training into a different early-stop point."""
    capability = torch.backends.cpu.get_cpu_capability()
    return " ".join([_cpuinfo("vendor_id") or platform.machine(), capability, *_bf16_features()])


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX); without it torch emulates
    bf16 products at about 1% of the fp32 rate, so a bf16 run costs some 100 times more."""
    return bool(_bf16_features())


def provenance(
    device: torch.device | str,
    population: Sequence[str],
    wall: float,
    data: dict | None = None,
) -> dict:
    """A record's provenance: code, versions, machine, threads, the population it was trained
    in (its members' keys), the wall time of that population and the data it saw."""
    commit, dirty = code_identity()
    record = {
        "lth_version": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "machine": machine_type(),
        "threads": torch.get_num_threads(),
        "platform": sys.platform,
        "population_size": len(population),
        "population": list(population),
        "population_wall_time_s": round(wall, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if data is not None:
        record["data"] = data
    return record

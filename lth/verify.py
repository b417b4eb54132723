"""Re-make records at their own spec and compare them bit for bit (``python -m lth verify``).

A record promises that its spec fixes its result on the same machine type and thread count
(DESIGN.md, "Runs, results and caching"). :func:`verify_record` keeps that promise honest: it
re-trains the run alone, in a scratch store, and compares key, spec and every result field with
the record. A pruned round needs its chain's previous state: it is taken from the state cache
when the cache's tensors carry the previous record's ``state_sha256``, and otherwise rebuilt
from the chain's committed steps (:mod:`lth.chains`), or else by re-training the
chain's earlier rounds, as a sweep does. Supermask records re-use their dense run the same way.

Records made before members were trained independently of their population (provenance
without ``population``) cannot be re-made bit for bit; :func:`verifiable` leaves them out of
random samples, and verifying one explicitly reports what differs.

A record reproduces only on the machine type that made it (an AVX2 CPU rounds products
differently from an AVX-512 one, and the difference grows over training). A record that names
another machine type (``provenance.machine``) is skipped, not called a mismatch. Records made
before provenance named it are tried; every record verified bit for bit is logged, with the
machine type, in the store's ``verified.jsonl``, so that ``--here`` can pick a record known to
reproduce on this machine type (``make verify-one``).
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .criteria import get_criterion
from .data import Dataset
from .provenance import code_identity, machine_type
from .pruning import chain_steps, run_sweep, state_digest
from .specs import LEARNED_EPOCH_HINT_S, RATE_HINT, Chain, resolve_settings
from .store import RunStore, StateCache, is_legacy
from .supermask import LearnedSupermask
from .supermask_sweeps import learned_supermask_sweep, untrained_supermask_sweep

#: Extra cost of validation passes over the training itself, for estimates.
EVALUATION_OVERHEAD = 1.3


@dataclass
class Verdict:
    """The outcome for one record: ``status`` is "ok", "mismatch" or "skipped"."""

    key: str
    status: str
    what: str
    detail: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        text = f"{self.status.upper():8s} {self.key}  {self.what}"
        if self.detail:
            text += f": {self.detail}"
        return text + (f"  ({self.seconds:.0f} s)" if self.seconds else "")


def kind(record: dict) -> str:
    """ "run" (a pruning chain's round), "untrained_supermask" or "learned_supermask"."""
    return record["spec"].get("kind", "run")


def verifiable(record: dict) -> bool:
    """Whether the record was made by the member-independent engine (so can be re-made)."""
    return not is_legacy(record)


#: The log of records re-made bit for bit, one JSON object per line, in the store's folder.
VERIFIED_LOG = "verified.jsonl"


def made_on(record: dict) -> str | None:
    """The machine type that made ``record`` (None for records from before provenance said)."""
    return record.get("provenance", {}).get("machine")


def verified_on(store: RunStore) -> dict[str, set[str]]:
    """For each key in the store's verification log, the machine types it re-made on."""
    path = store.root / VERIFIED_LOG
    known: dict[str, set[str]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                known.setdefault(entry["key"], set()).add(entry["machine"])
    return known


def log_verified(store: RunStore, verdict: Verdict) -> None:
    """Append a bit-for-bit verification to the store's log."""
    entry = {
        "key": verdict.key,
        "machine": machine_type(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "git_commit": code_identity()[0],
        "seconds": round(verdict.seconds, 1),
    }
    store.root.mkdir(parents=True, exist_ok=True)
    with open(store.root / VERIFIED_LOG, "a") as log:
        log.write(json.dumps(entry, sort_keys=True) + "\n")


def known_here(store: RunStore) -> dict[str, dict]:
    """The store's verifiable records, by key, made on this machine type or logged as re-made
    bit for bit on it."""
    here, logged = machine_type(), verified_on(store)
    known = {}
    for key in store.keys():
        record = store.get(key)
        if record is not None and verifiable(record):
            if made_on(record) == here or here in logged.get(key, ()):
                known[key] = record
    return known


def elsewhere(record: dict) -> str | None:
    """Why ``record`` cannot be checked on this machine (made on another type), else None."""
    made = made_on(record)
    if made is not None and made != machine_type():
        return f"made on another machine type ({made}; this one is {machine_type()})"
    return None


def chain_of(spec: dict) -> tuple[Chain, int]:
    """The chain and round a run record's spec describes."""
    dense = spec["round"] == 0
    chain = Chain(
        spec["net"],
        spec["seed"],
        "large_final" if dense else spec["criterion"],
        "rewind" if dense else spec["mask1"],
        "zero" if dense else spec["mask0"],
        spec["iterations"],
        spec["precision"],
        spec.get("test_set"),
        "sparse" in spec,
    )
    if chain.run_spec(spec["round"]) != spec:  # a hand-made spec or one of another protocol
        raise ValueError(f"spec {spec} is not one this version's chains make")
    return chain, spec["round"]


def describe(record: dict) -> str:
    spec = record["spec"]
    if kind(record) == "run":
        chain = f"{spec['criterion']}/{spec['mask1']}/{spec['mask0']}" if spec["round"] else "dense"
        return (
            f"{spec['net']} seed {spec['seed']} {chain} round {spec['round']}, "
            f"{spec['iterations']:,} its, {spec['precision']}"
        )
    if kind(record) == "learned_supermask":
        dwr = " + DWR" if spec["dynamic_weight_rescaling"] else ""
        return f"learned supermask{dwr}, {spec['net']} seed {spec['seed']}, {spec['weights']}"
    return f"untrained supermask {spec['criterion']}/{spec['treatment']} of {spec['dense']}"


def _valid_state(store: RunStore, cache: StateCache, key: str) -> bool:
    """Whether the cache holds the state the record ``key`` came from (by its digest)."""
    record = store.get(key)
    digest = record and record["result"].get("state_sha256")
    state = cache.load(key) if digest and key in cache else None
    return state is not None and state_digest(state) == digest


def _seed_scratch(store, cache, key: str, scratch_store, scratch_cache) -> bool:
    """Copy record ``key`` and its cached state into the scratch folders if the state is the
    record's own; returns whether it did (otherwise the scratch sweep re-trains it)."""
    if not _valid_state(store, cache, key):
        return False
    scratch_store.put(key, store.get(key))
    scratch_cache.root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cache.path(key), scratch_cache.path(key))
    return True


def _seed_steps(store: RunStore, chain: Chain, round_: int, scratch_store: RunStore) -> bool:
    """Copy the chain's committed steps to ``round_`` and its earlier records into the scratch
    store if all are there, so that the round starts from the committed steps (themselves
    checked against their digests) instead of re-training the earlier rounds."""
    steps, scratch_steps = chain_steps(store), chain_steps(scratch_store)
    earlier = [chain.run_key(r) for r in range(round_)]
    if not steps.available(chain, round_) or not all(key in store for key in earlier):
        return False
    scratch_steps.root.mkdir(parents=True, exist_ok=True)
    for r in range(1, round_ + 1):
        shutil.copyfile(steps.path(chain.run_key(r)), scratch_steps.path(chain.run_key(r)))
    for key in earlier:
        scratch_store.put(key, store.get(key))
    return True


def estimate_minutes(record: dict, store: RunStore, cache: StateCache) -> float:
    """About how long re-making ``record`` takes on the development CPU."""
    spec = record["spec"]
    if kind(record) == "learned_supermask":
        return spec["epochs"] * LEARNED_EPOCH_HINT_S / 60
    if kind(record) == "untrained_supermask":
        dense = store.get(spec["dense"])
        if dense is None:
            return float("inf")
        train = 0.0 if _valid_state(store, cache, spec["dense"]) else 1.0
        return 0.5 + train * estimate_minutes(dense, store, cache)
    chain, round_ = chain_of(spec)
    rounds = 1
    if round_ > 0 and not _valid_state(store, cache, chain.run_key(round_ - 1)):
        rounds = 1 if chain_steps(store).available(chain, round_) else round_ + 1
    protocol = chain.protocol
    samples = rounds * protocol.iterations * protocol.batch_size
    return samples / RATE_HINT.get(chain.net, RATE_HINT["fc"]) / 60 * EVALUATION_OVERHEAD


def remake(
    record: dict,
    store: RunStore,
    cache: StateCache,
    scratch: Path,
    data_root: str | None = None,
    data: Dataset | None = None,
) -> dict | None:
    """Re-make ``record`` alone in the scratch folder (on ``data`` if given, else on the
    dataset under ``data_root``); the new record (None if it came out under another key, e.g.
    because the data differs)."""
    spec = record["spec"]
    out, out_cache = RunStore(scratch / "runs"), StateCache(scratch / "cache")
    quiet: dict = {"progress": False, "log": lambda m: None, "data_root": data_root, "data": data}
    if kind(record) == "run":
        chain, round_ = chain_of(spec)
        if round_ > 0 and not _seed_scratch(
            store, cache, chain.run_key(round_ - 1), out, out_cache
        ):
            _seed_steps(store, chain, round_, out)
        run_sweep([chain], round_, store=out, cache=out_cache, **quiet)
    elif kind(record) == "learned_supermask":
        run = LearnedSupermask(**{k: v for k, v in spec.items() if k != "kind"})
        learned_supermask_sweep([run], store=out, **quiet)
    else:
        dense = store.get(spec["dense"])
        if dense is None:
            raise ValueError(f"its dense run {spec['dense']} is not in {store.root}")
        chain, _ = chain_of(dense["spec"])
        _seed_scratch(store, cache, spec["dense"], out, out_cache)
        get_criterion(spec["criterion"])
        settings = resolve_settings(
            "paper", chain.net, [spec["criterion"]], [chain.seed], 0, chain.iterations,
            precision=chain.precision,
        )  # fmt: skip
        untrained_supermask_sweep(
            settings, [spec["treatment"]], spec["levels"], store=out, cache=out_cache, **quiet
        )
    return out.get(record["key"])


def differences(record: dict, remade: dict | None) -> list[str]:
    """What differs between a record and its re-made twin: key, spec and result fields."""
    if remade is None:
        return ["re-made under another key (different data or code?)"]
    diffs = [name for name in ("key", "spec") if record[name] != remade[name]]
    old, new = record["result"], remade["result"]
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            a, b = old.get(name, "missing"), new.get(name, "missing")
            if isinstance(a, list) or isinstance(b, list) or isinstance(a, dict):
                diffs.append(name)
            else:
                diffs.append(f"{name} {a} != {b}")
    return diffs


def verify_record(
    record: dict,
    store: RunStore,
    cache: StateCache,
    data_root: str | None = None,
    data: Dataset | None = None,
) -> Verdict:
    """Re-make one record, with the thread count it was made with, and compare it bit for
    bit (a product split between another number of threads may round differently)."""
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(record.get("provenance", {}).get("threads") or threads)
    try:
        with tempfile.TemporaryDirectory(prefix="lth-verify-") as scratch:
            remade = remake(record, store, cache, Path(scratch), data_root, data)
    finally:
        torch.set_num_threads(threads)
    diffs = differences(record, remade)
    status = "mismatch" if diffs else "ok"
    detail = "; ".join(diffs[:6]) + (f"; {len(diffs) - 6} more" if len(diffs) > 6 else "")
    if diffs and not verifiable(record):
        detail += " (a legacy record, made before member independence)"
    elif diffs and made_on(record) is None:
        detail += (
            f" (its provenance does not name the machine type that made it; this one is "
            f"{machine_type()}, and records reproduce only on their own type)"
        )
    return Verdict(record["key"], status, describe(record), detail, time.perf_counter() - t0)


def candidates(store: RunStore, sample: int, seed: int) -> Iterator[str]:
    """Keys of the store's verifiable records not made on another machine type, in a seeded
    random order."""
    keys = [
        k
        for k in store.keys()
        if (r := store.get(k)) is not None and verifiable(r) and elsewhere(r) is None
    ]
    random.Random(seed).shuffle(keys)
    return iter(keys)


def verify(
    keys: Sequence[str],
    *,
    store: RunStore,
    cache: StateCache,
    sample: int | None = None,
    seed: int = 0,
    max_minutes: float | None = None,
    data_root: str | None = None,
    data: Dataset | None = None,
    report: Callable[[str], None] = print,
    log: bool = True,
) -> list[Verdict]:
    """Verify the records ``keys``, or (no keys) ``sample`` verifiable records drawn with
    ``seed``; a record whose estimated cost exceeds what is left of ``max_minutes``, or that was
    made on another machine type, is skipped (a sample then draws another). One line per record
    goes to ``report``; with ``log``, each record re-made bit for bit is logged
    (:func:`log_verified`)."""
    for key in keys:
        if key not in store:
            raise ValueError(f"no record {key!r} in {store.root}")
    queue = iter(keys) if keys else candidates(store, sample or 1, seed)
    wanted = len(keys) if keys else (sample or 1)
    deadline = None if max_minutes is None else time.monotonic() + 60 * max_minutes
    verdicts: list[Verdict] = []
    for key in queue:
        if sum(v.status != "skipped" for v in verdicts) >= wanted:
            break
        record = store.get(key)
        if (why := elsewhere(record)) is not None:
            verdict = Verdict(key, "skipped", describe(record), why)
            verdicts.append(verdict)
            report(verdict.line())
            continue
        if deadline is not None:
            left = (deadline - time.monotonic()) / 60
            cost = estimate_minutes(record, store, cache)
            if cost > left:
                verdict = Verdict(
                    key, "skipped", describe(record), f"about {cost:.1f} min, {left:.1f} left"
                )
                verdicts.append(verdict)
                report(verdict.line())
                continue
        verdict = verify_record(record, store, cache, data_root, data)
        if log and verdict.status == "ok":
            log_verified(store, verdict)
        verdicts.append(verdict)
        report(verdict.line())
    return verdicts


def cheapest_here(store: RunStore, cache: StateCache) -> str | None:
    """The record known to reproduce on this machine type (:func:`known_here`) that is cheapest
    to re-make, or None if there is none."""
    known = known_here(store)
    return min(known, key=lambda k: estimate_minutes(known[k], store, cache), default=None)

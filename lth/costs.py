"""What runs cost on the project's 2-core CPU (issue "The paper at full scale": the campaign
prints what remains "and an estimate of hours at the measured rate"): the dense training rate and
the sparse rounds' speed-up, both measured from the store's own records where they exist, and
the work of the runs still to make.

- :func:`measured_rate`: dense model-samples/s, the median over the store's records made at
  this process's thread count (a rate at one thread says little of one at two);
- :func:`measured_speedups`: how much faster than dense each sparse round of FC trained, from
  its records; rounds not yet recorded take the benchmark's speed-up
  (:func:`lth.sparse.estimated_speedup`, measured on seeded random masks) scaled by what the
  recorded rounds showed, since iterative pruning's real masks gain less (benchmarks/NOTES.md,
  "Sparse rounds");
- :func:`dense_equivalent_samples`: the runs to make, in dense model-samples.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from .data import SPLITS
from .nets import Architecture, get_architecture
from .protocol import Protocol
from .sparse import estimated_speedup
from .specs import RATE_HINT, Chain
from .store import RunStore

#: bf16 training against fp32 on the project's CPU, for estimates before any bf16 record of a
#: network exists: the engine's bf16 over fp32 rate at a population of 2, as the campaign's
#: dense conv targets train (``python benchmarks/throughput.py --nets conv2 conv4 conv6
#: --members 2``, 2026-12-02, 2 threads, campaign paused: 1,153/740, 930/497, 678/359; the
#: fp32 rates are the networks' ``rate_hint``). FC is not faster in bf16.
BF16_SPEEDUP_HINT = {"fc": 1.0, "conv2": 1.56, "conv4": 1.87, "conv6": 1.89}


def run_samples(net: str, protocol: Protocol) -> float:
    """The work of one run in training model-samples: its training samples, and its
    evaluations (validation at every evaluation point, the test set twice at the end) at a
    third of a training step per image. Counting the evaluations makes the rate of short runs,
    where they weigh more, a fair estimate for long ones."""
    _, n_val, n_test = SPLITS[get_architecture(net).dataset]
    evaluations = len(protocol.evaluation_points()) * n_val + 2 * n_test
    return protocol.iterations * protocol.batch_size + evaluations / 3


def _engine_rates(
    store: RunStore, net: str, precision: str, memo: dict | None
) -> list[tuple[dict, float]]:
    """``(spec, model-samples/s)`` of every pruning-run record of ``net`` in ``precision`` made
    by the member-independent engine (which records its population and its wall time) at this
    process's thread count (``torch.get_num_threads()``), read once per network and precision
    where a ``memo`` is given: each reading goes through every record of the store."""
    if memo is not None and ("records", net, precision) in memo:
        return memo["records", net, precision]
    threads, found = torch.get_num_threads(), []
    for key in store.keys():
        record = store.get(key)
        spec, made = (record or {}).get("spec", {}), (record or {}).get("provenance", {})
        if spec.get("net") != net or "population" not in made or spec.get("kind"):
            continue
        wall = made.get("population_wall_time_s") or 0
        if spec.get("precision", "fp32") != precision or wall <= 0:
            continue
        if made.get("threads") != threads:
            continue
        protocol = Protocol(spec["iterations"], spec["batch_size"], eval_every=spec["eval_every"])
        found.append((spec, made["population_size"] * run_samples(net, protocol) / wall))
    if memo is not None:
        memo["records", net, precision] = found
    return found


def measured_rate(
    store: RunStore, net: str, precision: str = "fp32", memo: dict | None = None
) -> tuple[float, str]:
    """Model-samples/s of dense training (:func:`run_samples`: evaluations included) for ``net``
    in ``precision``: the median over the store's dense-path records made by the
    member-independent engine at this process's thread count, else the development CPU's
    hint, the network's ``rate_hint`` (bf16: times :data:`BF16_SPEEDUP_HINT`). Sparse rounds:
    :func:`measured_speedups`."""
    records = _engine_rates(store, net, precision, memo)
    rates = [rate for spec, rate in records if "sparse" not in spec]
    if rates:
        n, threads = len(rates), torch.get_num_threads()
        source = f"measured, median of {n} record{'s' * (n != 1)} at {threads} thread"
        source += "s" * (threads != 1)
        return statistics.median(rates), source
    speedup = BF16_SPEEDUP_HINT.get(net, 1.0) if precision == "bf16" else 1.0
    return RATE_HINT.get(net, RATE_HINT["fc"]) * speedup, "development CPU's hint"


@dataclass(frozen=True)
class SparseSpeedups:
    """How much faster than dense a sparse round trains: ``measured[r]`` for a round the store
    has sparse records of, else the benchmark's (:func:`lth.sparse.estimated_speedup`) times
    ``scale``, the median over the measured rounds of measured over benchmark (1 when none is
    measured)."""

    measured: Mapping[int, float] = field(default_factory=dict)
    scale: float = 1.0

    def of(self, arch: Architecture, round_: int, layers: Sequence[str]) -> float:
        if not layers:
            return 1.0
        if round_ in self.measured:
            return self.measured[round_]
        return estimated_speedup(arch, round_, layers) * self.scale

    def describe(self) -> str:
        """In words, for the campaign's plan."""
        if not self.measured:
            return "sparse rounds at the benchmark's speed-up (random masks)"
        rounds, values = sorted(self.measured), sorted(self.measured.values())
        span = f"round {rounds[0]}" if len(rounds) == 1 else f"rounds {rounds[0]}-{rounds[-1]}"
        return (
            f"sparse {span} at their records' speed-up ({values[0]:.2f}-{values[-1]:.2f}x), "
            f"later ones at the benchmark's times {self.scale:.2f}"
        )


def measured_speedups(
    store: RunStore, net: str, dense_rate: float, memo: dict | None = None
) -> SparseSpeedups:
    """The speed-up over ``dense_rate`` of each round of ``net`` the store has sparse fp32
    records of (the median over that round's records of their rate over ``dense_rate``), and
    the scale that brings the benchmark's speed-up to what those rounds measured."""
    by_round: dict[int, list[float]] = {}
    for spec, rate in _engine_rates(store, net, "fp32", memo):
        if "sparse" in spec:
            by_round.setdefault(spec["round"], []).append(rate / dense_rate)
    if not by_round:
        return SparseSpeedups()
    measured = {r: statistics.median(v) for r, v in sorted(by_round.items())}
    arch = get_architecture(net)
    layers = [layer.name for layer in arch.layers if layer.kind == "linear"]
    ratios = [s / estimated_speedup(arch, r, layers) for r, s in measured.items()]
    return SparseSpeedups(measured, statistics.median(ratios))


def rate_of(store: RunStore, net: str, precision: str, rates: dict | None) -> tuple[float, str]:
    """:func:`measured_rate`, looked up once per network and precision in ``rates`` (a memo
    that :func:`lth.campaign.campaign_plan` shares between its targets, which also keeps the
    records read for :func:`speedups_of`)."""
    if rates is None:
        return measured_rate(store, net, precision)
    if (net, precision) not in rates:
        rates[net, precision] = measured_rate(store, net, precision, rates)
    return rates[net, precision]


def speedups_of(store: RunStore, net: str, rates: dict | None) -> SparseSpeedups:
    """:func:`measured_speedups` at :func:`rate_of`'s fp32 rate, memoised in ``rates`` too."""
    memo = {} if rates is None else rates
    if ("sparse", net) not in memo:
        dense = rate_of(store, net, "fp32", memo)[0]
        memo["sparse", net] = measured_speedups(store, net, dense, memo)
    return memo["sparse", net]


def dense_equivalent_samples(
    chains: Sequence[Chain],
    to_train: Sequence[set[str]],
    speedups: SparseSpeedups | None = None,
) -> float:
    """The model-samples of the runs ``to_train`` (round r's keys at index r) of ``chains``,
    each sparse round's divided by its speed-up (``speedups``, by default the benchmark's):
    divided by the dense rate, the hours they take."""
    speedups = speedups or SparseSpeedups()
    arch = get_architecture(chains[0].net)
    per_run = run_samples(arch.name, chains[0].protocol)
    samples = 0.0
    for r, keys in enumerate(to_train):
        by_key = {c.run_key(r): c for c in chains}
        for key in keys:
            samples += per_run / speedups.of(arch, r, by_key[key].sparse_layers(r))
    return samples

"""The conv nets' Figure 3 profile (issue "The paper at full scale", target 3; book/spec.md
sections 3 and 10): the paper's 24 rounds at the paper's length cost hundreds of CPU-hours per
network, so each conv net's Figure 3 runs at a profile chosen, by a rule fixed before any of
their paper-length runs existed, from measured costs and from the validation curves of their
dense runs at the paper's length (the campaign's ``<net>-dense`` and ``<net>-dense-bf16``):

- **length**: the smallest whole number of epochs that is at least :data:`LENGTH_FACTOR` times
  the latest early-stopping iteration of the fp32 dense runs (the paper's early-stopping point,
  section 3), and at most the paper's length. The dense runs' early-stopping point then lies in
  the first two thirds of training, which leaves room for pruned runs that learn more slowly;
  the page measures how many pruned runs still stop in the last tenth.
- **precision**: bf16 where the mean of the bf16 dense runs lies within the range of the fp32
  dense runs of the same seeds, widened on each side by the test-set noise margin
  (:func:`lth.verdicts.noise_margin`: two seeds span little of the seed-to-seed spread); else
  fp32. The precision page shows the comparison.
- **rounds**: as many as fit :data:`BUDGET_HOURS` on the project's 2-core CPU, for Figure 3's
  nine criteria and :data:`SEEDS`, at the training rates of :data:`RATES` (at least one).
"""

from __future__ import annotations

import math

import pandas as pd

from . import paper
from .data import SPLITS
from .nets import get_architecture
from .specs import CONV_SEEDS, Chain, Settings
from .store import RunStore
from .targets import Target
from .train import PROTOCOLS
from .verdicts import noise_margin

CONV_NETS = ("conv2", "conv4", "conv6")

#: The seeds of the dense runs the rule reads, and of the Figure 3 chains it chooses.
SEEDS = CONV_SEEDS

#: The chosen length is at least this many times the latest dense early-stopping iteration.
LENGTH_FACTOR = 1.5

#: CPU-hours on the project's 2-core CPU that each conv net's Figure 3 may cost.
BUDGET_HOURS = 10.0

#: Training model-samples/s of a population of 8 on the project's 2-core CPU, fp32 and bf16
#: (``python benchmarks/throughput.py --nets conv2 conv4 conv6 --members 2 8``, 2026-12-01,
#: campaign paused). Frozen here so that the choice does not move with later measurements.
RATES = {
    "conv2": {"fp32": 879.0, "bf16": 1485.0},
    "conv4": {"fp32": 541.0, "bf16": 1030.0},
    "conv6": {"fp32": 408.0, "bf16": 739.0},
}


def dense_runs(store: RunStore, net: str, precision: str) -> list[dict] | None:
    """The records of ``net``'s dense runs of :data:`SEEDS` at the paper's length in
    ``precision``, or None while any is missing."""
    records = [store.get(Chain(net, seed, precision=precision).run_key(0)) for seed in SEEDS]
    return None if any(r is None for r in records) else records


def dense_frames(store: RunStore, net: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The dense runs the rule reads that exist (``net``'s :data:`SEEDS` at the paper's length,
    fp32 and bf16): one row per run (precision, seed, test accuracy in percent, early-stopping
    iteration and its share of training, hours of training), and their validation-loss curves
    (precision, seed, iteration, val_loss), from which the rule takes the length."""
    runs, curves = [], []
    protocol = PROTOCOLS[net]
    for precision in ("fp32", "bf16"):
        for seed in SEEDS:
            record = store.get(Chain(net, seed, precision=precision).run_key(0))
            if record is None:
                continue
            result, made = record["result"], record["provenance"]
            runs.append(
                {
                    "precision": precision,
                    "seed": seed,
                    "test accuracy (%)": round(100 * result["test_accuracy"], 2),
                    "early stop (iteration)": result["early_stop_iteration"],
                    "early stop (% of training)": round(
                        100 * result["early_stop_iteration"] / protocol.iterations, 1
                    ),
                    "training (h)": round(
                        made["population_wall_time_s"] / made["population_size"] / 3600, 2
                    ),
                }
            )
            points = protocol.evaluation_points()
            curves += [
                {"precision": precision, "seed": seed, "iteration": i, "val_loss": loss}
                for i, loss in zip(points, result["val_loss"], strict=True)
            ]
    return pd.DataFrame(runs), pd.DataFrame(curves)


def choose_length(net: str, fp32: list[dict]) -> int:
    """The rule's length (module docstring) from the fp32 dense records."""
    protocol = PROTOCOLS[net]
    epoch = SPLITS[get_architecture(net).dataset][0] // protocol.batch_size
    latest = max(r["result"]["early_stop_iteration"] for r in fp32)
    epochs = max(1, math.ceil(LENGTH_FACTOR * latest / epoch))
    return min(protocol.iterations, epochs * epoch)


def bf16_within_fp32(fp32: list[dict], bf16: list[dict]) -> tuple[bool, str]:
    """The rule's precision test (module docstring), and the sentence that states it."""
    ours = [100 * r["result"]["test_accuracy"] for r in fp32]
    theirs = [100 * r["result"]["test_accuracy"] for r in bf16]
    mean = sum(theirs) / len(theirs)
    margin = noise_margin(sum(ours) / len(ours) / 100, fp32[0]["result"]["n_test"])
    low, high = min(ours) - margin, max(ours) + margin
    within = low <= mean <= high
    return within, (
        f"bf16 mean {mean:.2f}% {'within' if within else 'outside'} the fp32 range "
        f"{min(ours):.2f}-{max(ours):.2f}% widened by the noise margin {margin:.2f} points"
    )


def run_hours(net: str, iterations: int, precision: str) -> float:
    """Hours of one run on the 2-core CPU at :data:`RATES`, its validation passes included
    (each a third of a training step per validation image)."""
    protocol = PROTOCOLS[net]
    n_val = SPLITS[get_architecture(net).dataset][1]
    evaluations = iterations // protocol.eval_every + 1
    samples = iterations * protocol.batch_size + evaluations * n_val / 3
    return samples / RATES[net][precision] / 3600


def choose_rounds(net: str, iterations: int, precision: str) -> int:
    """The most rounds whose runs (the dense runs, then nine criteria per seed and round) fit
    :data:`BUDGET_HOURS`; at least 1, at most the paper's 24."""
    per_run = run_hours(net, iterations, precision)
    per_round = len(paper.FIGURE3_CRITERIA) * len(SEEDS) * per_run
    dense = len(SEEDS) * per_run
    return max(1, min(24, int((BUDGET_HOURS - dense) // per_round)))


def figure3_target(net: str, store: RunStore) -> Target | str:
    """``net``'s Figure 3 at the chosen profile, or what it waits for."""
    fp32, bf16 = dense_runs(store, net, "fp32"), dense_runs(store, net, "bf16")
    if fp32 is None or bf16 is None:
        return f"{net}-dense and {net}-dense-bf16 (the profile is chosen from them)"
    iterations = choose_length(net, fp32)
    within, why = bf16_within_fp32(fp32, bf16)
    precision = "bf16" if within else "fp32"
    rounds = choose_rounds(net, iterations, precision)
    settings = Settings(
        net, paper.FIGURE3_CRITERIA, SEEDS, rounds, iterations, "conv-fig3", precision=precision
    )
    criteria = len(paper.FIGURE3_CRITERIA)
    hours = run_hours(net, iterations, precision) * len(SEEDS) * (1 + criteria * rounds)
    latest = max(r["result"]["early_stop_iteration"] for r in fp32)
    return Target(
        f"{net}-fig3",
        f"{iterations:,} iterations (dense early stop at most {latest:,}), {precision} ({why}), "
        f"{rounds} rounds, {criteria} criteria x {len(SEEDS)} seeds: about {hours:.1f} h",
        (settings,),
    )

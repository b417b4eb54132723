"""What to run: chains, profiles and a notebook's resolved settings (book/spec.md section 1).

A :class:`Chain` is one iterative pruning experiment (book/spec.md section 1): a network, a seed, a
mask criterion, a mask-1 action and a mask-0 action. Its round r is one trained network, a *run*,
fully described by :meth:`Chain.run_spec` and stored under that spec's hash. Round 0 is the dense
network, the same for every criterion and action, so its spec names none of them and all chains
of one seed share it. A :class:`Profile` is a named scale (seeds, rounds, training length) that
every notebook takes; :func:`resolve_settings` turns a notebook's parameters into
:class:`Settings`, whose :meth:`Settings.chains` are the chains a page wants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from .actions import get_mask0_action, get_mask1_action
from .criteria import get_criterion
from .data import Dataset, test_set_tag
from .nets import ARCHITECTURES, get_architecture
from .paper import FIGURE3_CRITERIA
from .registry import Registry
from .sparse import sparse_layers
from .store import spec_key
from .supermask import OFFICIAL_EPOCHS
from .train import (
    PROTOCOLS,
    Protocol,
    check_precision,
)

#: The seeds of the conv nets' runs at the paper's length (issue "The paper at full scale",
#: target 3): their dense runs, supermasks and Figure 3 chains.
CONV_SEEDS = (0, 1)

#: Training model-samples/s measured on the 2-core development CPU (fp32), for estimates.
RATE_HINT = {name: arch.rate_hint for name, arch in ARCHITECTURES.items()}
LEARNED_EPOCH_HINT_S = 1.0  # s per member-epoch of a learned FC supermask on that CPU


@dataclass(frozen=True)
class Chain:
    """One iterative pruning experiment; ``iterations`` etc. default to the paper's protocol."""

    net: str
    seed: int
    criterion: str = "large_final"
    mask1: str = "rewind"
    mask0: str = "zero"
    iterations: int | None = None
    precision: str = "fp32"
    test_set: str | None = None  # None: the official complete test set (see test_set_tag)
    sparse: bool = False  # compute pruned linear layers on their kept weights (lth.sparse)

    def __post_init__(self) -> None:
        get_architecture(self.net)
        get_criterion(self.criterion)
        get_mask1_action(self.mask1)
        get_mask0_action(self.mask0)
        check_precision(self.precision)
        if self.net not in PROTOCOLS:
            raise ValueError(f"no training protocol for {self.net!r}")

    @property
    def protocol(self) -> Protocol:
        base = PROTOCOLS[self.net]
        return base if self.iterations is None else replace(base, iterations=self.iterations)

    def run_spec(self, round_: int) -> dict:
        """Everything that determines round ``round_`` of this chain (its store key's source)."""
        protocol = self.protocol
        dense = round_ == 0
        return {
            "net": self.net,
            "seed": self.seed,
            "round": round_,
            "criterion": None if dense else self.criterion,
            "mask1": None if dense else self.mask1,
            "mask0": None if dense else self.mask0,
            "iterations": protocol.iterations,
            "batch_size": protocol.batch_size,
            "lr": protocol.lr,
            "eval_every": protocol.eval_every,
            "precision": self.precision,
            # hashed only when not the official complete set, so existing keys stay found
            **({"test_set": self.test_set} if self.test_set is not None else {}),
            # hashed only in rounds that run sparse: the sparse path rounds otherwise
            **({"sparse": list(layers)} if (layers := self.sparse_layers(round_)) else {}),
        }

    def sparse_layers(self, round_: int) -> tuple[str, ...]:
        """The linear layers round ``round_`` computes on their kept weights only
        (:func:`lth.sparse.sparse_layers`; none unless the chain is ``sparse``)."""
        if not self.sparse:
            return ()
        return sparse_layers(get_architecture(self.net), round_, self.mask0, self.precision)

    def sparse_plan(self, round_: int) -> tuple[int, ...]:
        """:meth:`sparse_layers` as layer indices (the ``sparse`` plan of train_population)."""
        names = self.sparse_layers(round_)
        arch = get_architecture(self.net)
        return tuple(i for i, layer in enumerate(arch.layers) if layer.name in names)

    def run_key(self, round_: int) -> str:
        return spec_key(self.run_spec(round_))


# ----------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    """A named scale for every notebook: seeds, rounds and training length."""

    seeds: tuple[int, ...]
    rounds: int
    iterations: int | None  # None: the paper's per-network protocol
    description: str = field(default="", compare=False)
    supermask_epochs: int | None = None  # learned supermasks; None: the official 2,000
    sparse: bool = False  # sparse rounds (lth.sparse): only profiles begun after they existed
    chosen: bool = False  # a target profile whose settings are chosen from records (see below)


PROFILES: Registry[Profile] = Registry(
    "profile",
    {
        "smoke": Profile((0,), 2, 200, "CI: 1 seed, 2 rounds, 200 iterations", supermask_epochs=1),
        "mid": Profile(
            (0, 1), 16, 10_000, "committed (Fig. 3): 2 seeds, 16 rounds, 10,000 iterations"
        ),
        "mid-short": Profile(
            (0, 1), 16, 5_000, "committed (Figs. 4, 5, S5): 2 seeds, 16 rounds, 5,000 iterations"
        ),
        "paper": Profile(
            (0, 1, 2, 3, 4),
            24,
            None,
            "the paper: 5 seeds, 24 rounds, full protocol (sparse rounds where they pay)",
            sparse=True,
        ),
        "conv-short": Profile(
            (0, 1),
            6,
            300,
            "committed (Conv2, Fig. 3): 2 seeds, 6 rounds, 300 iterations (about 0.4 epoch)",
        ),
        "supermask": Profile(
            (0, 1, 2, 3, 4),
            0,
            None,
            "committed (Fig. 7, Table 1): 5 dense runs at the paper's full protocol, "
            "learned supermasks for 60 epochs",
            supermask_epochs=60,
        ),
        # a page's target profile only: lth.conv_profile chooses it per conv net from that net's
        # dense runs, so it has no fixed seeds, rounds or length to resolve
        "conv-fig3": Profile(
            CONV_SEEDS,
            0,
            None,
            "target (conv nets' Fig. 3): chosen from their dense runs by lth.conv_profile",
            chosen=True,
        ),
    }.items(),
)


@dataclass(frozen=True)
class Settings:
    """A notebook's resolved parameters: the chains are every combination of criterion, mask-1
    action, mask-0 action and seed."""

    net: str
    criteria: tuple[str, ...]
    seeds: tuple[int, ...]
    rounds: int
    iterations: int | None
    profile: str
    mask1: tuple[str, ...] = ("rewind",)
    mask0: tuple[str, ...] = ("zero",)
    precision: str = "fp32"
    sparse: bool = False
    supermask_epochs: int = OFFICIAL_EPOCHS  # learned supermasks (book/spec.md section 9)

    def chains(self) -> list[Chain]:
        return [
            Chain(
                self.net,
                seed,
                criterion,
                mask1,
                mask0,
                self.iterations,
                self.precision,
                sparse=self.sparse,
            )
            for criterion in self.criteria
            for mask1 in self.mask1
            for mask0 in self.mask0
            for seed in self.seeds
        ]

    def describe(self) -> str:
        iterations = self.iterations or PROTOCOLS[self.net].iterations
        return (
            f"{self.net}, profile {self.profile!r}: {len(self.seeds)} seed(s) {list(self.seeds)}, "
            f"{self.rounds} pruning rounds, {iterations:,} iterations per run, {self.precision}"
        )


def as_list(value: str | Sequence | None, cast=str) -> list | None:
    """A list parameter given as a sequence or as text (``"[0, 1]"``, ``"0,1"``, ``"a b"``), as
    papermill's ``-p`` passes lists; a single number is a list of one; None stays None."""
    if value is None or not isinstance(value, str):
        if value is not None and not isinstance(value, Sequence):
            value = [value]  # seeds=0 is [0]
        return None if value is None else [cast(v) for v in value]
    items = value.strip().strip("[]()").replace(",", " ").split()
    return [cast(item.strip("'\"")) for item in items]


def resolve_settings(
    profile: str = "mid",
    net: str = "fc",
    criteria: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    rounds: int | None = None,
    iterations: int | None = None,
    mask1: str | Sequence[str] = "rewind",
    mask0: str | Sequence[str] = "zero",
    precision: str = "fp32",
) -> Settings:
    """Fill the parameters left as None from ``profile``; reject unknown values at once.

    ``criteria`` defaults to Figure 3's nine; ``mask1`` and ``mask0`` take one name or a list.
    """
    get_architecture(net)
    base = PROFILES.lookup(profile)
    if base.chosen:
        raise ValueError(
            f"profile {profile!r} is chosen from records by lth.conv_profile: give it as a "
            f"page's target_profile, or train it with `python -m lth campaign --only {net}-fig3`"
        )
    criteria, seeds = as_list(criteria), as_list(seeds, int)
    criteria = tuple(FIGURE3_CRITERIA if criteria is None else criteria)
    mask1, mask0 = tuple(as_list(mask1)), tuple(as_list(mask0))
    for name in criteria:
        get_criterion(name)
    for name in mask1:
        get_mask1_action(name)
    for name in mask0:
        get_mask0_action(name)
    seeds = tuple(base.seeds if seeds is None else seeds)
    rounds = base.rounds if rounds is None else rounds
    iterations = base.iterations if iterations is None else iterations
    if not (seeds and criteria and mask1 and mask0):
        raise ValueError("need at least one seed, criterion, mask-1 action and mask-0 action")

    def whole(value) -> bool:  # booleans and 1.5 are not whole numbers (lth.parameters)
        return hasattr(value, "__index__") and not isinstance(value, bool)

    if not whole(rounds) or rounds < 0:
        raise ValueError(f"rounds must be a whole number >= 0, got {rounds!r}")
    if iterations is not None and (not whole(iterations) or iterations < 1):
        raise ValueError(f"iterations must be a whole number >= 1 or None, got {iterations!r}")
    if any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be whole numbers >= 0, got {list(seeds)!r}")
    seeds = tuple(int(s) for s in seeds)
    check_precision(precision)
    epochs = OFFICIAL_EPOCHS if base.supermask_epochs is None else base.supermask_epochs
    return Settings(
        net,
        criteria,
        seeds,
        rounds,
        iterations,
        profile,
        mask1,
        mask0,
        precision,
        base.sparse,
        epochs,
    )


def for_data(chains: Sequence[Chain], data: Dataset) -> list[Chain]:
    """``chains`` with the identity of the test set they are trained and tested on: unchanged
    for the official complete set, tagged for any other (a partial test set gets other keys)."""
    tag = test_set_tag(data)
    return [c if c.test_set == tag else replace(c, test_set=tag) for c in chains]

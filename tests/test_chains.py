"""Committed chain steps (lth.chains; issue "The paper at full scale", item 2): a chain goes on
from committed files alone, bit for bit, whatever its criterion and actions."""

from __future__ import annotations

import pytest
import torch

from lth import paper
from lth.chains import NEEDS_TOWARD_ZERO
from lth.experiments import Chain, chain_steps, run_sweep
from lth.nets import get_architecture, initial_weights
from lth.store import RunStore, StateCache
from lth.train import DeadlineReached

ROUNDS = 3
CHAINS = [
    *(Chain("fc", 0, "large_final", m1, "zero", 100) for m1 in paper.FIGURE4_MASK1),
    *(Chain("fc", 1, "magnitude_increase", "rewind", m0, 100) for m0 in paper.FIGURE5_MASK0),
    Chain("fc", 2, "large_final_same_sign", "reshuffle_same_sign", "variant_2", 100),
]


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tiny_data):
    root = tmp_path_factory.mktemp("chains")
    store, cache = RunStore(root / "runs"), StateCache(root / "cache")
    run_sweep(
        CHAINS, ROUNDS, store=store, cache=cache, progress=False, log=lambda m: None, data=tiny_data
    )
    return store, cache


def test_every_action_rebuilds_its_chain_from_committed_steps_bit_for_bit(swept):
    store, cache = swept
    steps = chain_steps(store)
    arch = get_architecture("fc")
    for chain in CHAINS:
        for r in range(1, ROUNDS + 2):  # the step to the next round is committed too
            assert steps.available(chain, r), (chain, r)
        for r in range(1, ROUNDS + 1):
            starts, _, mask = steps.rebuild(chain, r, initial_weights(arch, chain.seed))
            cached = cache.load(chain.run_key(r))
            for name, rebuilt in (("w_i", starts), ("mask", mask)):
                assert all(torch.equal(a, b) for a, b in zip(rebuilt, cached[name], strict=True)), (
                    chain,
                    r,
                    name,
                )


def test_steps_are_small_and_carry_toward_zero_only_where_used(swept):
    store, _ = swept
    steps = chain_steps(store)
    for chain in CHAINS:
        step = steps.load(chain.run_key(2))
        assert (step.toward_zero is not None) == (chain.mask0 in NEEDS_TOWARD_ZERO)
        size = steps.path(chain.run_key(2)).stat().st_size
        # FC keeps 0.8 x 266,200 weights after round 1: at most a bit per kept weight, plus
        # one per weight for "moved toward zero"
        bound = 0.8 * 266_200 / 8 + (266_200 / 8 if step.toward_zero is not None else 0)
        assert size < 1.05 * bound + 2_000, (chain, size)


def test_a_step_that_does_not_give_its_start_is_an_error(swept, tmp_path):
    store, _ = swept
    steps = chain_steps(store)
    chain = CHAINS[0]
    step = steps.load(chain.run_key(1))
    step.keep[0][:10] = ~step.keep[0][:10]
    other = type(steps)(tmp_path)
    other.save(chain.run_key(1), step)
    with pytest.raises(ValueError, match="does not give the start it was made from"):
        other.rebuild(chain, 1, initial_weights(get_architecture("fc"), chain.seed))


def _stop_at_call(monkeypatch, n: int) -> list:
    """Make the ``n``-th population a sweep trains (1-based) stop at its deadline."""
    from lth import pruning

    calls, train = [], pruning._train_round

    def stopping(context, members, r, states):
        calls.append((r, list(members)))
        if len(calls) == n:
            raise DeadlineReached("test")
        return train(context, members, r, states)

    monkeypatch.setattr(pruning, "_train_round", stopping)
    return calls


def test_each_population_commits_its_steps_before_the_next_trains(tmp_path, tiny_data, monkeypatch):
    """A sitting that stops in the middle of a round keeps the steps of the populations it
    finished (a fresh clone does not train them again); steps an earlier sitting left out are
    made from the cache at the round's end."""
    chains = [Chain("fc", seed, "large_final", "rewind", "zero", 100) for seed in (0, 1)]
    store, cache = RunStore(tmp_path / "runs"), StateCache(tmp_path / "cache")
    sweep = dict(store=store, cache=cache, progress=False, log=lambda m: None, data=tiny_data)
    _stop_at_call(monkeypatch, 2)
    with pytest.raises(DeadlineReached):
        run_sweep(chains, 1, max_population=1, **sweep)
    steps = chain_steps(store)
    assert chains[0].run_key(0) in store and chains[1].run_key(0) not in store
    assert steps.available(chains[0], 1) and not steps.available(chains[1], 1)

    steps.path(chains[0].run_key(1)).unlink()  # as a sitting before per-population steps left it
    calls = _stop_at_call(monkeypatch, 2)
    with pytest.raises(DeadlineReached):
        run_sweep(chains, 1, max_population=1, **sweep)
    assert calls[0] == (0, [chains[1].run_key(0)])
    assert calls[1][0] == 1  # stopped in round 1: both steps into it committed first
    assert all(steps.available(chain, 1) for chain in chains)

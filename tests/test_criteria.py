"""Mask criteria (book/spec.md section 5) and iterative layerwise pruning (sections 1 and 4)."""

from __future__ import annotations

import pytest
import torch

from lth import criteria
from lth.criteria import CRITERIA, number_to_keep, prune_layer, prune_layerwise
from lth.nets import get_architecture, percent_remaining
from lth.paper import FIGURE3_CRITERIA

# book/spec.md section 5, in table order; the first nine are Figure 3.
PAPER_CRITERIA = [
    "large_final",
    "small_final",
    "large_init",
    "small_init",
    "large_init_large_final",
    "small_init_small_final",
    "magnitude_increase",
    "movement",
    "random",
    "large_final_same_sign",
    "large_final_diff_sign",
    "magnitude_increase_same_sign",
    "magnitude_increase_diff_sign",
]

# One hand example for every criterion. No ties in abs(w_i), abs(w_f).
#   abs(w_i) = [0.1, 0.35, 0.9, 0.3, 0.7]   ranks (0 = smallest) [0, 2, 4, 1, 3]
#   abs(w_f) = [0.8, 0.2, 0.6, 0.9, 0.65]   ranks               [3, 0, 1, 4, 2]
#   sign(w_i) = [+, -, +, -, +], sign(w_f) = [-, -, +, +, +]: same sign at {1, 2, 4}
W_I = torch.tensor([0.1, -0.35, 0.9, -0.3, 0.7])
W_F = torch.tensor([-0.8, -0.2, 0.6, 0.9, 0.65])


def kept(name: str, keep: int, w_i=W_I, w_f=W_F, seed: int = 0) -> set[int]:
    """Indices kept by ``prune_layer`` from a full mask."""
    mask = torch.ones_like(w_i)
    new = prune_layer(mask, w_i, w_f, CRITERIA[name], keep, torch.Generator().manual_seed(seed))
    return set(torch.nonzero(new).flatten().tolist())


# ----------------------------------------------------------------------------- registry


def test_criteria_registry_has_the_papers_13_names_in_its_order():
    # other criteria may be registered beside them: adding one edits no test
    assert [name for name in CRITERIA if name in PAPER_CRITERIA] == PAPER_CRITERIA


def test_figure3_criteria_are_the_papers_first_nine():
    assert FIGURE3_CRITERIA == tuple(PAPER_CRITERIA[:9])


def test_unknown_criterion_lists_accepted_names():
    with pytest.raises(ValueError, match="unknown mask criterion") as info:
        criteria.get_criterion("largest_final")
    for name in PAPER_CRITERIA:
        assert name in str(info.value)


# ----------------------------------------------------------------------------- scores


@pytest.mark.parametrize(
    "name, expected",
    [
        ("large_final", [0.8, 0.2, 0.6, 0.9, 0.65]),
        ("small_final", [-0.8, -0.2, -0.6, -0.9, -0.65]),
        ("large_init", [0.1, 0.35, 0.9, 0.3, 0.7]),
        ("small_init", [-0.1, -0.35, -0.9, -0.3, -0.7]),
        # abs(w_f) - abs(w_i)
        ("magnitude_increase", [0.7, -0.15, -0.3, 0.6, -0.05]),
        # abs(w_f - w_i) = abs([-0.9, 0.15, -0.3, 1.2, -0.05])
        ("movement", [0.9, 0.15, 0.3, 1.2, 0.05]),
        # min of the two percentile ranks / 4: min([0,2,4,1,3], [3,0,1,4,2]) = [0,0,1,1,2]
        ("large_init_large_final", [0.0, 0.0, 0.25, 0.25, 0.5]),
        # ranks of -abs: [4,2,0,3,1] and [1,4,3,0,2]; min = [1,2,0,0,1]
        ("small_init_small_final", [0.25, 0.5, 0.0, 0.0, 0.25]),
    ],
)
def test_score_matches_hand_computation(name, expected):
    scores = CRITERIA[name](W_I, W_F)
    torch.testing.assert_close(scores, torch.tensor(expected), atol=1e-6, rtol=0)


def test_random_gives_equal_scores():
    scores = CRITERIA["random"](W_I, W_F)
    assert scores.shape == W_I.shape
    assert bool((scores == scores[0]).all())


@pytest.mark.parametrize(
    "name, expected",
    [
        # paper: max(0, w_i * w_f / abs(w_i)) = max(0, sign(w_i) * w_f)
        ("large_final_same_sign", [0.0, 0.2, 0.6, 0.0, 0.65]),
        # paper: max(0, -w_i * w_f / abs(w_i))
        ("large_final_diff_sign", [0.8, 0.0, 0.0, 0.9, 0.0]),
        # magnitude_increase [0.7, -0.15, -0.3, 0.6, -0.05] where the sign test passes, else 0
        # (the official code's gating; a gated-out weight outranks a passing one that shrank)
        ("magnitude_increase_same_sign", [0.0, -0.15, -0.3, 0.0, -0.05]),
        ("magnitude_increase_diff_sign", [0.7, 0.0, 0.0, 0.6, 0.0]),
    ],
)
def test_sign_gated_scores(name, expected):
    scores = CRITERIA[name](W_I, W_F)
    torch.testing.assert_close(scores, torch.tensor(expected), atol=1e-6, rtol=0)


def test_sign_gate_treats_a_zero_final_weight_as_a_sign_change():
    # sign(0) = 0 matches neither sign: the paper's max(0, w_i * 0 / abs(w_i)) = 0 either way
    w_i, w_f = torch.tensor([0.5, -0.5]), torch.tensor([0.0, 0.0])
    for name in ("large_final_same_sign", "large_final_diff_sign"):
        assert torch.equal(CRITERIA[name](w_i, w_f), torch.zeros(2))


# ----------------------------------------------------------------------------- kept sets


@pytest.mark.parametrize(
    "name, keep, expected",
    [
        ("large_final", 2, {0, 3}),
        ("small_final", 2, {1, 2}),
        ("large_init", 2, {2, 4}),
        ("small_init", 2, {0, 3}),
        ("magnitude_increase", 2, {0, 3}),
        ("movement", 2, {0, 3}),
        ("large_final_same_sign", 2, {2, 4}),
        ("large_final_same_sign", 3, {1, 2, 4}),
        ("large_final_diff_sign", 1, {3}),
        # same-sign scores [0, -0.15, -0.3, 0, -0.05]: the two gated-out zeros come first
        ("magnitude_increase_same_sign", 3, {0, 3, 4}),
        ("magnitude_increase_diff_sign", 1, {0}),
        # top-3 of abs(w_i) = {2,4,1}, top-3 of abs(w_f) = {3,0,4}: both above -> {4}
        ("large_init_large_final", 1, {4}),
        # top-4: {2,4,1,3} and {3,0,4,2} -> {2,3,4}
        ("large_init_large_final", 3, {2, 3, 4}),
        # bottom-3 of abs(w_i) = {0,3,1}, bottom-3 of abs(w_f) = {1,2,4}: both below -> {1}
        ("small_init_small_final", 1, {1}),
        # bottom-4: {0,3,1,4} and {1,2,4,0} -> {0,1,4}
        ("small_init_small_final", 3, {0, 1, 4}),
    ],
)
def test_kept_set_matches_hand_computation(name, keep, expected):
    assert kept(name, keep) == expected


def test_large_init_large_final_is_an_intersection_of_top_sets():
    """On a random layer, whenever the target count is exactly |top_j(w_i) & top_j(w_f)|, the
    kept set is that intersection (both magnitudes above a common percentile)."""
    g = torch.Generator().manual_seed(3)
    w_i, w_f = torch.randn(40, generator=g), torch.randn(40, generator=g)
    order_i = torch.argsort(w_i.abs(), descending=True).tolist()
    order_f = torch.argsort(w_f.abs(), descending=True).tolist()
    for j in range(1, 41):
        both = set(order_i[:j]) & set(order_f[:j])
        assert kept("large_init_large_final", len(both), w_i, w_f) == both


# ----------------------------------------------------------------------------- pruning


@pytest.mark.parametrize(
    "remaining, rate, expected",
    [(235_200, 0.2, 188_160), (7, 0.2, 6), (1000, 0.1, 900), (5, 0.1, 5), (10, 0.0, 10)],
)
def test_number_to_keep_prunes_floor_of_remaining_times_rate(remaining, rate, expected):
    assert number_to_keep(remaining, rate) == expected


@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_number_to_keep_rejects_bad_rates(rate):
    with pytest.raises(ValueError):
        number_to_keep(10, rate)


def test_prune_layer_keeps_exactly_keep_among_unpruned_and_the_top_scores():
    # 2-D layer; the largest final weights sit in already-pruned entries
    w_f = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    w_i = torch.zeros(3, 4)
    mask = torch.ones(3, 4)
    mask[2, 1:] = 0  # prunes the entries with w_f = 9, 10, 11
    new = prune_layer(mask, w_i, w_f, CRITERIA["large_final"], 4, torch.Generator())
    assert new.shape == mask.shape
    assert int(new.count_nonzero()) == 4
    assert bool((new[mask == 0] == 0).all())  # pruned stay pruned
    assert set(w_f[new == 1].tolist()) == {5.0, 6.0, 7.0, 8.0}  # the top 4 still unpruned


def test_prune_layer_rejects_keeping_more_than_unpruned():
    mask = torch.tensor([1.0, 1.0, 0.0])
    with pytest.raises(ValueError):
        prune_layer(mask, mask, mask, CRITERIA["large_final"], 3, torch.Generator())


def test_ties_are_broken_at_random_but_reproducibly():
    w = torch.ones(100)  # every large_final score ties

    def mask(name, seed):
        return prune_layer(
            torch.ones(100), w, w, CRITERIA[name], 50, torch.Generator().manual_seed(seed)
        )

    for name in ("large_final", "random"):
        assert torch.equal(mask(name, 1), mask(name, 1))
        assert not torch.equal(mask(name, 1), mask(name, 2))
        assert int(mask(name, 1).count_nonzero()) == 50


def test_prune_layerwise_follows_the_fc_rates_over_rounds():
    arch = get_architecture("fc")
    g = torch.Generator().manual_seed(0)
    w_i = [torch.randn(layer.shape, generator=g) for layer in arch.layers]
    w_f = [torch.randn(layer.shape, generator=g) for layer in arch.layers]
    masks = [torch.ones(layer.shape) for layer in arch.layers]
    rates = [layer.rate for layer in arch.layers]
    # floor pruning by hand: 235200 -> 188160 -> 150528 -> 150528 - 30105 = 120423;
    # 30000 -> 24000 -> 19200 -> 15360; 1000 -> 900 -> 810 -> 729.
    expected_counts = [
        [188_160, 24_000, 900],
        [150_528, 19_200, 810],
        [120_423, 15_360, 729],
    ]
    expected_percent = [80.0, 64.1, 51.3]  # book/spec.md section 4
    for counts, percent in zip(expected_counts, expected_percent, strict=True):
        new = prune_layerwise(masks, w_i, w_f, CRITERIA["large_final"], rates, g)
        assert [int(m.count_nonzero()) for m in new] == counts
        for old, m in zip(masks, new, strict=True):
            assert bool((m[old == 0] == 0).all())
        assert round(percent_remaining(arch, new), 1) == percent
        masks = new

"""The conv nets' Figure 3 profile (lth.conv_profile): chosen from the dense runs' early-stopping
points and precision check at the paper's length, within a fixed budget."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from lth import conv_profile
from lth.campaign import TARGETS, campaign_plan
from lth.paper import FIGURE3_CLAIMS, FIGURE3_CRITERIA
from lth.specs import Chain
from lth.store import RunStore, StateCache
from lth.targets import Target
from lth.train import PROTOCOLS

ROOT = Path(__file__).resolve().parent.parent


def put_dense(store: RunStore, net: str, precision: str, early_stops, accuracies) -> None:
    """Dense records of ``net``'s seeds 0 and 1 at the paper's length, with just what the rule
    and the pages read."""
    points = PROTOCOLS[net].evaluation_points()
    for seed, (stop, acc) in enumerate(zip(early_stops, accuracies, strict=True)):
        chain = Chain(net, seed, precision=precision)
        key = chain.run_key(0)
        result = {
            "early_stop_iteration": stop,
            "test_accuracy": acc,
            "final_test_accuracy": acc,
            "best_val_loss": 1.0,
            "percent_remaining": 100.0,
            "n_test": 10_000,
            "val_loss": [1.0 + abs(i - stop) / 10_000 for i in points],
        }
        made = {"population_wall_time_s": 7200.0, "population_size": 2}
        store.put(key, {"key": key, "spec": {}, "result": result, "provenance": made})


def put_rounds(store: RunStore, settings, rounds) -> None:
    """Records of ``rounds`` of every chain of ``settings``, with what the pages read."""
    for (i, chain), r in itertools.product(enumerate(settings.chains()), rounds):
        key = chain.run_key(r)
        result = {
            "percent_remaining": 100 * 0.88**r,
            "test_accuracy": 0.70 + 0.001 * i,
            "early_stop_iteration": 2_000,
            "final_test_accuracy": 0.70,
            "best_val_loss": 1.0,
            "n_test": 10_000,
        }
        store.put(key, {"key": key, "spec": {}, "result": result, "provenance": {}})


def test_the_length_is_whole_epochs_past_one_and_a_half_times_the_latest_early_stop():
    records = [{"result": {"early_stop_iteration": i}} for i in (3_000, 4_100)]
    # 1.5 x 4,100 = 6,150 iterations: 8.2 epochs of 750, so 9 epochs
    assert conv_profile.choose_length("conv2", records) == 9 * 750
    late = [{"result": {"early_stop_iteration": 19_000}}]
    assert conv_profile.choose_length("conv2", late) == 20_250  # at most the paper's length


def test_bf16_is_chosen_only_within_the_fp32_range_and_its_noise_margin():
    def records(*accuracies):
        return [{"result": {"test_accuracy": a, "n_test": 10_000}} for a in accuracies]

    fp32 = records(0.680, 0.690)  # margin at 68.5%: 2 x 100 x sqrt(2 x .685 x .315 / 1e4) = 1.31
    assert conv_profile.bf16_within_fp32(fp32, records(0.693, 0.695))[0]  # 69.4 < 70.31
    within, why = conv_profile.bf16_within_fp32(fp32, records(0.702, 0.706))  # 70.4 > 70.31
    assert not within and "outside the fp32 range 68.00-69.00%" in why


def test_the_rounds_fit_the_budget():
    for net in conv_profile.CONV_NETS:
        for precision in ("fp32", "bf16"):
            iterations = 6_000
            rounds = conv_profile.choose_rounds(net, iterations, precision)
            per_run = conv_profile.run_hours(net, iterations, precision)
            runs = len(conv_profile.SEEDS) * (1 + len(FIGURE3_CRITERIA) * rounds)
            assert rounds == 1 or runs * per_run <= conv_profile.BUDGET_HOURS
            more = runs + len(conv_profile.SEEDS) * len(FIGURE3_CRITERIA)
            assert rounds == 24 or more * per_run > conv_profile.BUDGET_HOURS
    # bf16 trains faster, so it affords at least as many rounds
    assert conv_profile.choose_rounds("conv2", 6_000, "bf16") >= conv_profile.choose_rounds(
        "conv2", 6_000, "fp32"
    )


def test_the_figure3_target_waits_for_its_dense_runs_then_is_chosen_from_them(tmp_path):
    store, cache = RunStore(tmp_path / "runs"), StateCache(tmp_path / "cache")
    target = next(t for t in TARGETS if t.name == "conv2-fig3")
    assert "conv2-dense and conv2-dense-bf16" in campaign_plan([target], store, cache)[0].line()
    put_dense(store, "conv2", "fp32", (3_000, 4_100), (0.680, 0.690))
    assert campaign_plan([target], store, cache)[0].waiting is not None  # bf16 still missing
    put_dense(store, "conv2", "bf16", (3_100, 4_000), (0.685, 0.689))
    chosen = target.resolved(store)
    assert isinstance(chosen, Target) and chosen.name == "conv2-fig3"
    (settings,) = chosen.settings
    assert settings.iterations == 9 * 750 and settings.precision == "bf16"
    assert settings.criteria == tuple(FIGURE3_CRITERIA) and settings.seeds == (0, 1)
    assert settings.rounds == conv_profile.choose_rounds("conv2", 9 * 750, "bf16")
    plan = campaign_plan([target], store, cache)[0]
    assert plan.waiting is None and plan.runs == 2 + 9 * 2 * settings.rounds
    assert plan.to_train == plan.runs  # its dense runs too: 6,750 iterations, not 20,250
    assert "6,750 iterations (dense early stop at most 4,100), bf16" in chosen.description


@pytest.mark.parametrize("net", conv_profile.CONV_NETS)
def test_every_conv_net_has_its_milestone_targets_in_order(net):
    names = [t.name for t in TARGETS]
    order = ["dense", "dense-bf16", "supermask-untrained", "supermask-learned", "fig3"]
    positions = [names.index(f"{net}-{part}") for part in order]
    assert positions == sorted(positions)
    assert names.index("fc-fig4-5-s5-seeds-0-1") < positions[0]
    assert positions[-1] < names.index("fc-fig4-5-s5-seeds-2-4")


def test_conv_fig3_is_a_target_profile_only_resolved_from_the_records(tmp_path):
    from lth.experiments import resolve_settings
    from lth.report import target_settings

    with pytest.raises(ValueError, match="chosen from records by lth.conv_profile"):
        resolve_settings("conv-fig3", "conv2")
    store = RunStore(tmp_path / "runs")
    page = resolve_settings("conv-short", "conv2", ["large_final", "random"])
    assert "conv2-dense and conv2-dense-bf16" in target_settings(page, "conv-fig3", store)
    put_dense(store, "conv2", "fp32", (3_000, 4_100), (0.680, 0.690))
    put_dense(store, "conv2", "bf16", (3_100, 4_000), (0.685, 0.689))
    chosen = target_settings(page, "conv-fig3", store)
    assert chosen.criteria == tuple(FIGURE3_CRITERIA) and chosen.iterations == 6_750


def test_a_conv_figure3_page_draws_what_exists_and_the_scorecard_judges_it_once_begun(tmp_path):
    from lth.plots import validation_curves
    from lth.report import progress_section
    from lth.scorecard import not_yet_run, pruning_lines

    store, figures = RunStore(tmp_path / "runs"), tmp_path / "figures"
    runs, curves = conv_profile.dense_frames(store, "conv4")
    assert runs.empty and curves.empty
    waiting = conv_profile.figure3_target("conv4", store)
    text, figure, table = progress_section(
        waiting, "conv-fig3", store, hue="criterion", figures=figures, name="criteria_conv4"
    )
    assert "not begun; it waits for conv4-dense and conv4-dense-bf16" in text and figure is None
    assert (figures / "criteria_conv4.status").read_text() == "conv-fig3 profile not begun"

    put_dense(store, "conv4", "fp32", (3_000, 4_100), (0.740, 0.750))
    runs, curves = conv_profile.dense_frames(store, "conv4")
    assert list(runs["precision"]) == ["fp32", "fp32"] and runs["training (h)"].tolist() == [1, 1]
    assert runs["early stop (% of training)"].tolist() == [11.8, 16.1]  # of 25,500
    assert len(curves) == 2 * len(PROTOCOLS["conv4"].evaluation_points())
    put_dense(store, "conv4", "bf16", (3_100, 4_000), (0.745, 0.748))
    settings = conv_profile.figure3_target("conv4", store).settings[0]
    figure = validation_curves(*conv_profile.dense_frames(store, "conv4")[::-1], 6_750)
    assert len(figure.axes[0].lines) == 4 + 4 + 1  # 4 curves, their early stops, the length
    assert not [line for line in pruning_lines(store) if line.item == "Figure 3, Conv4"]

    # rounds 0 (its own dense runs, at the chosen length) and 1 of every chain: the scorecard
    # judges them, the page tabulates them
    put_rounds(store, settings, (0, 1))
    text, figure, table = progress_section(
        settings, "conv-fig3", store, hue="criterion", figures=figures, name="criteria_conv4"
    )
    assert "The rule of `lth.conv_profile` chose 6,750 iterations (dense early stop" in text
    assert figure is not None and (figures / "criteria_conv4_conv-fig3.png").exists()
    assert list(table.columns)[0] == "round 1 (88%)" and len(table) == len(FIGURE3_CRITERIA)
    lines = [line for line in pruning_lines(store) if line.item == "Figure 3, Conv4"]
    assert len(lines) == len(FIGURE3_CLAIMS) and {line.profile for line in lines} == {"conv-fig3"}
    assert {line.page for line in lines} == {"criteria_conv4"}
    # what is not yet run: the chosen profile's coverage, no longer what it waits for
    text = "\n".join(not_yet_run(store))
    assert (
        "- **[Figure 3, Conv4](criteria_conv4.html) at its target profile**: conv-fig3 profile: "
        "rounds 0-1 of" in text
    )
    assert "[Figure 3 on Conv4]" not in text and "[Figure 3 on Conv6]" in text


def test_the_criteria_conv_notebook_reads_the_store_and_never_trains(tmp_path, monkeypatch):
    """Its code cells, run in process against a store with the dense runs and rounds 0-1 of the
    chosen profile, draw and judge them; anything that would train or evaluate raises."""
    import json

    import matplotlib

    from lth import pruning, supermask_sweeps, train

    matplotlib.use("Agg")
    store = RunStore(tmp_path / "runs")
    put_dense(store, "conv6", "fp32", (3_000, 4_100), (0.780, 0.790))
    put_dense(store, "conv6", "bf16", (3_100, 4_000), (0.785, 0.788))
    put_rounds(store, conv_profile.figure3_target("conv6", store).settings[0], (0, 1))

    def refuse(*args, **kwargs):
        raise AssertionError("the page trained or evaluated")

    for module, name in ((pruning, "run_sweep"), (pruning, "train_population"),
                         (train, "train_population"), (supermask_sweeps, "run_sweep")):  # fmt: skip
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setenv("LTH_RUNS", str(store.root))
    monkeypatch.chdir(tmp_path)
    cells = json.loads((ROOT / "notebooks" / "criteria_conv.ipynb").read_text())["cells"]
    namespace: dict = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            exec(source.replace('net = "conv4"', 'net = "conv6"'), namespace)
    assert namespace["figure_name"] == "criteria_conv6"
    figures = tmp_path / "book" / "figures"
    assert (figures / "criteria_conv6_dense.png").exists()
    assert (figures / "criteria_conv6_conv-fig3.png").exists()
    assert (figures / "criteria_conv6.status").read_text().startswith("conv-fig3 profile in")
    assert list(namespace["target_table"].columns) == ["round 1 (88%)"]

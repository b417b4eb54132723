"""The campaign (issue "The paper at full scale"): its plan, its deadline and its restart."""

from __future__ import annotations

import shutil
import time

import pytest
import torch
from conftest import TINY
from test_many_writers import results

from lth import campaign
from lth.__main__ import main
from lth.campaign import Target, campaign_plan, parse_deadline, profile_costs, run_campaign
from lth.experiments import resolve_settings
from lth.store import RunStore, StateCache
from lth.supermask import LearnedSupermask
from lth.targets import LearnedSupermaskTarget, UntrainedSupermaskTarget

#: Two small targets in the shape of the real ones: a Figure 3 part, then a Figure 4 part.
SMALL = (
    Target(
        "small-fig3",
        "2 criteria x 2 seeds x 2 rounds",
        (resolve_settings("smoke", "fc", ["large_final", "random"], [0, 1], 2, 300),),
    ),
    Target(
        "small-fig4",
        "2 mask-1 actions, seed 0, 2 rounds",
        (
            resolve_settings(
                "smoke", "fc", ["large_final"], [0], 2, 300, mask1=["rewind", "reinit"]
            ),
        ),
    ),
)


#: One small target of each other kind, in the campaign's order: dense runs, their untrained
#: supermasks, learned supermasks.
SUPERMASKS = (
    Target("small-dense", "2 dense runs", (resolve_settings("smoke", "fc", None, [0, 1], 0, 300),)),
    UntrainedSupermaskTarget(
        "small-untrained",
        "2 criteria x 2 treatments x 25 levels of small-dense's runs",
        resolve_settings("smoke", "fc", ["large_final_same_sign", "random"], [0, 1], 0, 300),
        "small-dense",
    ),
    LearnedSupermaskTarget(
        "small-learned",
        "2 seeds, without and with DWR, 3 epochs",
        tuple(
            LearnedSupermask("fc", seed, "init", dwr, epochs=3, batch_size=50)
            for seed in (0, 1)
            for dwr in (False, True)
        ),
    ),
)


def folders(root):
    return dict(store=RunStore(root / "runs"), cache=StateCache(root / "cache"))


def test_the_plan_says_what_exists_and_what_it_costs(tmp_path):
    quiet = dict(progress=False, log=lambda message: None)
    plans = campaign_plan(SMALL, **folders(tmp_path))
    assert [(p.runs, p.present, p.to_train) for p in plans] == [(2 + 4 + 4, 0, 10), (5, 0, 5)]
    assert all(p.hours > 0 and p.rate_source == "development CPU's hint" for p in plans)
    run_campaign(SMALL[:1], time.time() + 3600, **folders(tmp_path), **quiet, data=TINY)
    plans = campaign_plan(SMALL, **folders(tmp_path))
    assert [(p.present, p.to_train, p.rounds_complete) for p in plans] == [(10, 0, 3), (3, 2, 1)]
    threads = torch.get_num_threads()  # the rate of its records
    assert plans[0].rate_source == f"measured, median of 10 records at {threads} thread" + "s" * (
        threads != 1
    )
    assert "round 0 complete" in plans[1].line()


@pytest.mark.parametrize("fresh_clone", [False, True])
def test_a_campaign_stopped_by_its_deadline_and_restarted_writes_the_same_records(
    fresh_clone, tmp_path
):
    """Each sitting stops within 100 iterations of its deadline, checkpointed; the next one
    resumes mid-round, or, on a fresh clone whose cache is empty, at the start of the round
    from the committed chain steps (no finished round is trained again)."""
    quiet = dict(progress=False, log=lambda message: None)
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert run_campaign(SMALL, time.time() + 3600, **folders(whole), **quiet, data=TINY)
    sittings = 0
    # sittings of 0.2 s, 0.4 s, ...: a fresh clone loses the round in training at each stop,
    # so its sittings must grow until one finishes a population
    while not run_campaign(
        SMALL, time.time() + 0.2 * (sittings + 1), **folders(stopped), **quiet, data=TINY
    ):
        sittings += 1
        assert sittings < 60
        if fresh_clone:  # a new machine: only what is committed (the store) goes on
            shutil.rmtree(stopped / "cache", ignore_errors=True)
    assert sittings >= 3
    assert results(stopped) == results(whole)


@pytest.mark.parametrize("fresh_clone", [False, True])
def test_supermask_targets_stopped_by_their_deadline_and_restarted_write_the_same_records(
    fresh_clone, tmp_path
):
    """The untrained supermasks stop between criteria, the learned ones at an epoch's end,
    checkpointed; later sittings (on a fresh clone, with an empty cache: the dense runs' final
    weights are trained again) write the records of an uninterrupted campaign."""
    quiet = dict(progress=False, log=lambda message: None)
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    plans = campaign_plan(SUPERMASKS, **folders(whole))
    assert plans[1].waiting == "small-dense (its dense runs)" and plans[1].to_train == 8
    assert (plans[2].runs, plans[2].to_train) == (4, 4) and plans[2].hours > 0
    assert run_campaign(SUPERMASKS, time.time() + 3600, **folders(whole), **quiet, data=TINY)
    assert [p.to_train for p in campaign_plan(SUPERMASKS, **folders(whole))] == [0, 0, 0]
    sittings, said = 0, []
    while not run_campaign(
        SUPERMASKS,
        time.time() + 0.05 * (sittings + 1),
        **folders(stopped),
        progress=False,
        log=said.append,
        data=TINY,
        checkpoint_every_s=0.0,
    ):
        sittings += 1
        assert sittings < 100
        if fresh_clone:
            shutil.rmtree(stopped / "cache", ignore_errors=True)
    stops = [m for m in said if m.startswith("deadline reached")]
    assert any("untrained supermasks of" in m for m in stops)
    assert any("learned supermasks: stopped after epoch" in m for m in stops)
    assert results(stopped) == results(whole)


def test_bf16_targets_are_left_out_on_a_cpu_without_native_bf16(tmp_path, monkeypatch):
    bf16 = Target(
        "small-bf16",
        "2 dense runs in bf16",
        (resolve_settings("smoke", "fc", None, [0, 1], 0, 300, precision="bf16"),),
    )
    monkeypatch.setattr(campaign, "native_bf16", lambda: False)
    lines = []
    where = folders(tmp_path)
    targets = (bf16, SUPERMASKS[0])
    done = run_campaign(
        targets, time.time() + 600, **where, data=TINY, progress=False, log=lines.append
    )
    assert not done and any("small-bf16: left out here" in line for line in lines)
    assert {r["spec"]["precision"] for r in map(where["store"].get, where["store"].keys())} == {
        "fp32"
    }  # the fp32 target after it still ran
    assert campaign.trains_bf16(bf16, where["store"]) and not campaign.trains_bf16(
        SUPERMASKS[0], where["store"]
    )


def test_the_dry_run_of_a_fresh_clone_prints_every_target(tmp_path, capsys):
    args = ["campaign", "--dry-run", "--runs", str(tmp_path / "runs")]
    assert main([*args, "--cache", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    for target in campaign.TARGETS:
        assert target.name in out
    assert "fc-fig3                      0 of 1,085 runs" in out and "in all:" in out


def test_deadlines():
    now = time.mktime((2026, 12, 1, 9, 30, 0, 0, 0, -1))
    assert parse_deadline(None, 1.5, now) == now + 5400
    assert parse_deadline("10:45", None, now) == now + 75 * 60
    for until, hours, message in [
        ("09:00", None, r"has passed today \(for a deadline after midnight, give --hours H\)"),
        ("25:00", None, "expected a time HH:MM"),
        (None, None, "exactly one"),
        ("10:00", 1.0, "exactly one"),
        (None, 0, "> 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_deadline(until, hours, now)


def test_unknown_targets_are_named(capsys, tmp_path):
    assert main(["campaign", "--dry-run", "--only", "fig3", "--runs", str(tmp_path)]) == 2
    assert "unknown campaign target 'fig3'; accepted: fc-fig3" in capsys.readouterr().err


def test_profile_costs_count_every_run_and_what_remains(tmp_path):
    """The costs on the "Reproduce it yourself" page: runs per figure and profile, and hours
    for the whole and for what the store lacks (all of it in an empty store)."""
    rows = {(r["figure"], r["net"], r["profile"]): r for r in profile_costs(**folders(tmp_path))}
    assert rows["Figure 3", "fc", "paper"]["runs"] == 5 + 9 * 5 * 24
    assert rows["Figure 4", "fc", "paper"]["runs"] == 5 + 7 * 5 * 24
    assert rows["Figure 3", "fc", "mid"]["runs"] == 2 + 9 * 2 * 16
    for row in rows.values():
        assert row["recorded"] == 0
        assert row["CPU-hours, all"] == row["CPU-hours, remaining"] > 0
    # sparse rounds cost less than dense ones: the paper profile's 24 rounds cost less than
    # 24/16 of mid's 16 rounds would at the same length
    paper, mid = rows["Figure 3", "fc", "paper"], rows["Figure 3", "fc", "mid"]
    per_run = {k: r["CPU-hours, all"] / r["runs"] for k, r in (("paper", paper), ("mid", mid))}
    assert per_run["paper"] < per_run["mid"] * 50_380 / 10_000

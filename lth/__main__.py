"""Command line: ``python -m lth sweep ...`` trains (or finds in the store) a criteria sweep.

python -m lth sweep --profile mid                     # Figure 3 on FC, committed profile
python -m lth sweep --profile smoke --criteria large_final random --seeds 0 1
python -m lth list                                    # networks, criteria, actions, profiles
python -m lth verify --sample 3                       # re-make 3 committed records, bit for bit
python -m lth campaign --dry-run                      # the paper-scale plan and its cost
python -m lth campaign --hours 8 --scheduler tcp://10.0.0.1:8786   # on a Dask cluster
"""

from __future__ import annotations

import argparse
import sys

from .actions import MASK0_ACTIONS, MASK1_ACTIONS
from .criteria import CRITERIA
from .executors import executor
from .nets import ARCHITECTURES
from .parameters import check_environment, check_value
from .pruning import run_sweep
from .specs import PROFILES, resolve_settings
from .store import LegacyRemake, RunStore, StateCache

#: The kind of each ``sweep`` option (lth.parameters), all checked before any work.
SWEEP_KINDS = {
    "profile": "profile",
    "net": "net",
    "criteria": "criteria or None",
    "seeds": "seeds or None",
    "rounds": "rounds or None",
    "iterations": "iterations or None",
    "mask1": "mask1",
    "mask0": "mask0",
    "precision": "precision",
}
#: Where ``sweep`` and ``campaign`` train (lth.executors), checked the same way.
WHERE_KINDS = {
    "scheduler": "scheduler or None",
    "local_workers": "local_workers",
    "device": "device",
}


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, ``error: ...``, with exit status 2, and which
    takes no abbreviations: ``--profil`` is an error, not ``--profile``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _where(args: argparse.Namespace) -> dict:
    """``--scheduler``, ``--local-workers`` and ``--device``, checked."""
    return {
        name: check_value(f"--{name.replace('_', '-')}", getattr(args, name), kind)
        for name, kind in WHERE_KINDS.items()
    }


def _add_where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS", help="a Dask scheduler")
    parser.add_argument(
        "--local-workers", default="0", metavar="N", help="a Dask LocalCluster of N processes"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (each worker's own)")


def _sweep(args: argparse.Namespace) -> None:
    given = {name: getattr(args, name) for name in SWEEP_KINDS}
    given = {k: " ".join(v) if isinstance(v, list) else v for k, v in given.items()}  # nargs="+"
    values = {
        name: check_value(f"--{name}", given[name], kind) for name, kind in SWEEP_KINDS.items()
    }
    where = _where(args)
    folders = check_environment(args.runs, args.cache, args.data)
    settings = resolve_settings(**values)
    print(settings.describe())
    with executor(where["scheduler"], where["local_workers"]) as ex:
        frame = run_sweep(
            settings.chains(),
            settings.rounds,
            store=(LegacyRemake if args.remake_legacy else RunStore)(folders["runs"]),
            cache=StateCache(folders["cache"]),
            data_root=args.data,
            progress=not args.quiet,
            allow_dirty=args.allow_dirty or None,
            device=where["device"],
            executor=ex,
        )
    frame["variant"] = frame["criterion"] + "/" + frame["mask1"] + "/" + frame["mask0"]
    summary = frame.groupby(["variant", "round"])["test_accuracy"].mean().unstack("variant")
    print(summary.round(4).to_string())


def _list(_: argparse.Namespace) -> None:
    print("networks:        ", ", ".join(ARCHITECTURES))
    print("mask criteria:   ", ", ".join(CRITERIA))
    print("mask-1 actions:  ", ", ".join(MASK1_ACTIONS))
    print("mask-0 actions:  ", ", ".join(MASK0_ACTIONS))
    for name, profile in PROFILES.items():
        print(f"profile {name:8s}  {profile.description}")


def _number(name: str, text: str, cast=float, minimum: float = 0.0):
    """``text`` as a number >= ``minimum`` (an int if ``cast`` is int), else one clear error."""
    try:
        value = cast(text)
    except ValueError:
        value = None
    if value is None or value < minimum or (cast is float and value != value):
        what = "a whole number" if cast is int else "a number"
        raise ValueError(f"{name}: expected {what} >= {minimum:g}, got {text!r}")
    return value


def _verify(args: argparse.Namespace) -> int:
    """Exit status 0 if every record verified re-made bit for bit, 1 on any mismatch, 3 if
    nothing could be verified (everything skipped)."""
    from .verify import verify

    sample = _number("--sample", args.sample, int, 1)
    seed = _number("--seed", args.seed, int, 0)
    minutes = None if args.max_minutes is None else _number("--max-minutes", args.max_minutes)
    folders = check_environment(args.runs, args.cache, args.data)
    store, cache = RunStore(folders["runs"]), StateCache(folders["cache"])
    keys = list(args.keys)
    if args.here:
        from .provenance import machine_type
        from .verify import cheapest_here

        if keys:
            raise ValueError("--here picks its own record: give no KEY with it")
        key = cheapest_here(store, cache)
        if key is None:
            print(
                f"no record in {folders['runs']} is known to reproduce on this machine type "
                f"({machine_type()}): none was made on it or re-made bit for bit on it. "
                "Verify one by KEY (`python -m lth verify KEY`) to log it."
            )
            return 3
        keys = [key]
    verdicts = verify(
        keys,
        store=store,
        cache=cache,
        sample=sample,
        seed=seed,
        max_minutes=minutes,
        data_root=args.data,
        log=not args.no_log,
    )
    counts = {s: sum(v.status == s for v in verdicts) for s in ("ok", "mismatch", "skipped")}
    seconds = sum(v.seconds for v in verdicts)
    print(
        f"{counts['ok']} verified bit for bit, {counts['mismatch']} mismatched, "
        f"{counts['skipped']} skipped ({seconds / 60:.1f} min)"
    )
    if counts["mismatch"]:
        return 1
    return 0 if counts["ok"] else 3


def _campaign(args: argparse.Namespace) -> int:
    """Exit status 0 when every target is complete, 4 when the deadline stopped the campaign
    (the normal end of a sitting), 2 for bad input."""
    from .campaign import (
        NO_NATIVE_BF16,
        campaign_plan,
        get_targets,
        parse_deadline,
        run_campaign,
        trains_bf16,
    )
    from .provenance import machine_type, native_bf16

    targets = get_targets(args.only)
    where = _where(args)
    folders = check_environment(args.runs, args.cache, args.data)
    store, cache = RunStore(folders["runs"]), StateCache(folders["cache"])
    if args.dry_run:
        plans = campaign_plan(targets, store, cache)
        for plan in plans:
            print(plan.line())
        hours = sum(p.hours for p in plans)
        made = sum(p.to_train for p in plans)
        print(f"in all: {made:,} runs and records to make, about {hours:,.1f} h", end="")
        waiting = [p.target.name for p in plans if p.waiting is not None and not p.to_train]
        print(f", and {', '.join(waiting)} once chosen" if waiting else "")
        if where["device"] == "cpu" and not native_bf16():
            bf16 = [t.name for t in targets if trains_bf16(t, store)]
            if bf16:
                print(f"left out here: {', '.join(bf16)}: {NO_NATIVE_BF16.format(machine_type())}")
        return 0
    hours = None if args.hours is None else _number("--hours", args.hours)
    deadline = parse_deadline(args.until, hours)
    with executor(where["scheduler"], where["local_workers"]) as ex:
        done = run_campaign(
            targets,
            deadline,
            store=store,
            cache=cache,
            data_root=args.data,
            progress=not args.quiet,
            allow_dirty=args.allow_dirty or None,
            device=where["device"],
            executor=ex,
        )
    return 0 if done else 4


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m lth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sweep = sub.add_parser("sweep", help="run (or read back) an iterative pruning sweep")
    sweep.add_argument("--profile", default="mid", help=f"one of {', '.join(PROFILES)}")
    sweep.add_argument("--net", default="fc")
    sweep.add_argument("--criteria", nargs="+", default=None, help="default: Figure 3's nine")
    sweep.add_argument("--seeds", nargs="+", default=None, help="e.g. 0 1 2")
    sweep.add_argument("--rounds", default=None, help="pruning rounds after the dense network")
    sweep.add_argument("--iterations", default=None, help="training iterations per run")
    sweep.add_argument("--mask1", nargs="+", default=["rewind"], help="mask-1 action(s)")
    sweep.add_argument("--mask0", nargs="+", default=["zero"], help="mask-0 action(s)")
    sweep.add_argument("--precision", default="fp32", help="fp32 (the paper's) or bf16")
    sweep.add_argument("--runs", default=None, help="run store folder (default $LTH_RUNS)")
    sweep.add_argument("--cache", default=None, help="state cache folder (default $LTH_CACHE)")
    sweep.add_argument("--data", default=None, help="dataset root (default $LTH_DATA)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.add_argument(
        "--remake-legacy",
        action="store_true",
        help="train again the records made before member independence, replacing them",
    )
    sweep.add_argument(
        "--allow-dirty",
        action="store_true",
        help="write records into the committed store from a tree with uncommitted changes",
    )
    _add_where(sweep)
    sweep.set_defaults(func=_sweep)
    sub.add_parser("list", help="what the library knows").set_defaults(func=_list)
    check = sub.add_parser("verify", help="re-make records alone and compare them bit for bit")
    check.add_argument("keys", nargs="*", metavar="KEY", help="record keys (default: a sample)")
    check.add_argument("--sample", default="3", help="how many records to draw (default 3)")
    check.add_argument(
        "--here",
        action="store_true",
        help="the cheapest record known to reproduce on this machine type (made or re-made on it)",
    )
    check.add_argument("--seed", default="0", help="seed of the draw (default 0)")
    check.add_argument("--max-minutes", default=None, help="skip records that would not fit")
    check.add_argument(
        "--no-log", action="store_true", help="do not append to the store's verified.jsonl"
    )
    check.add_argument("--runs", default=None, help="run store folder (default $LTH_RUNS)")
    check.add_argument("--cache", default=None, help="state cache folder (default $LTH_CACHE)")
    check.add_argument("--data", default=None, help="dataset root (default $LTH_DATA)")
    check.set_defaults(func=_verify)
    camp = sub.add_parser("campaign", help="train the paper-scale runs the book wants, in order")
    camp.add_argument("--until", default=None, metavar="HH:MM", help="stop at this time today")
    camp.add_argument("--hours", default=None, metavar="H", help="stop after H hours")
    camp.add_argument("--only", nargs="+", default=None, metavar="NAME", help="these targets")
    camp.add_argument("--dry-run", action="store_true", help="print the plan and its cost")
    camp.add_argument("--runs", default=None, help="run store folder (default $LTH_RUNS)")
    camp.add_argument("--cache", default=None, help="state cache folder (default $LTH_CACHE)")
    camp.add_argument("--data", default=None, help="dataset root (default $LTH_DATA)")
    camp.add_argument("--quiet", action="store_true", help="no progress bar")
    camp.add_argument("--allow-dirty", action="store_true", help="see sweep --allow-dirty")
    _add_where(camp)
    camp.set_defaults(func=_campaign)
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError) as error:  # bad input or missing data: say what
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

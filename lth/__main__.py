"""Command line: ``python -m lth sweep ...`` trains (or finds in the store) a criteria sweep.

python -m lth sweep --profile mid                     # Figure 3 on FC, committed profile
python -m lth sweep --profile smoke --criteria large_final random --seeds 0 1
python -m lth list                                    # networks, criteria, actions, profiles
"""

from __future__ import annotations

import argparse
import sys

from .actions import MASK0_ACTIONS, MASK1_ACTIONS
from .criteria import CRITERIA
from .experiments import PROFILES, resolve_settings, run_sweep
from .nets import ARCHITECTURES
from .store import RunStore, StateCache


def _sweep(args: argparse.Namespace) -> None:
    settings = resolve_settings(
        args.profile,
        args.net,
        args.criteria,
        args.seeds,
        args.rounds,
        args.iterations,
        args.mask1,
        args.mask0,
        args.precision,
    )
    print(settings.describe())
    frame = run_sweep(
        settings.chains(),
        settings.rounds,
        store=RunStore(args.runs),
        cache=StateCache(args.cache),
        data_root=args.data,
        progress=not args.quiet,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sweep = sub.add_parser("sweep", help="run (or read back) an iterative pruning sweep")
    sweep.add_argument("--profile", default="mid", help=f"one of {', '.join(PROFILES)}")
    sweep.add_argument("--net", default="fc")
    sweep.add_argument("--criteria", nargs="+", default=None, help="default: Figure 3's nine")
    sweep.add_argument("--seeds", nargs="+", type=int, default=None)
    sweep.add_argument("--rounds", type=int, default=None)
    sweep.add_argument("--iterations", type=int, default=None)
    sweep.add_argument("--mask1", nargs="+", default=["rewind"], help="mask-1 action(s)")
    sweep.add_argument("--mask0", nargs="+", default=["zero"], help="mask-0 action(s)")
    sweep.add_argument("--precision", default="fp32", help="fp32 (the paper's) or bf16")
    sweep.add_argument("--runs", default=None, help="run store folder (default $LTH_RUNS)")
    sweep.add_argument("--cache", default=None, help="state cache folder (default $LTH_CACHE)")
    sweep.add_argument("--data", default=None, help="dataset root (default $LTH_DATA)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(func=_sweep)
    sub.add_parser("list", help="what the library knows").set_defaults(func=_list)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as error:  # bad input or missing data: say what
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

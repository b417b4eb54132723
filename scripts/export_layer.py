"""Export one trained layer's start and final weights (w_i, w_f) from a committed dense run, for
the book's "what each criterion keeps" page, which draws them without training anything.

    python scripts/export_layer.py                       # FC, seed 0, fc2, the paper's protocol

The run's tensors come from the state cache, or the run is trained again for them (its record is
never rewritten); either way they must give the record's ``state_sha256``, so the exported layer
is, bit for bit, the one the committed record was made from. Writes
``data/layers/<key>_<layer>.npz`` (float32 ``w_i`` and ``w_f``, and the record's key).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lth.nets import get_architecture
from lth.pruning import run_sweep, state_digest
from lth.specs import resolve_settings
from lth.store import RunStore, StateCache

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ROOT / "data" / "layers"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--net", default="fc")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layer", default="fc2")
    parser.add_argument("--profile", default="paper")
    args = parser.parse_args()
    settings = resolve_settings(args.profile, args.net, ["large_final"], [args.seed], 0)
    chain = settings.chains()[0]
    key = chain.run_key(0)
    store, cache = RunStore(), StateCache()
    record = store.get(key)
    if record is None:
        raise SystemExit(f"run {key} ({chain}, round 0) is not a committed record")
    names = [layer.name for layer in get_architecture(args.net).layers]
    if args.layer not in names:
        raise SystemExit(f"unknown layer {args.layer!r}; accepted: {', '.join(names)}")
    # trains only if uncached, for the tensors alone: the record exists and is not written again
    run_sweep([chain], 0, store=store, cache=cache, keep_state=True, allow_dirty=True)
    state = cache.load(key)
    if state_digest(state) != record["result"]["state_sha256"]:
        raise SystemExit(f"the cached tensors of {key} do not give its record's state_sha256")
    index = names.index(args.layer)
    LAYERS.mkdir(parents=True, exist_ok=True)
    out = LAYERS / f"{key}_{args.layer}.npz"
    np.savez_compressed(
        out,
        w_i=state["w_i"][index].numpy().astype(np.float32),
        w_f=state["w_f"][index].numpy().astype(np.float32),
        key=np.array(key),
        layer=np.array(args.layer),
    )
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size:,} bytes) from run {key}")


if __name__ == "__main__":
    main()

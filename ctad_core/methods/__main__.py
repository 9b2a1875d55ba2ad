"""Command line for the methods' trainers (:func:`ctad_core.methods.run_method`), usable as is under ``torchrun``.

Examples::

    python -m ctad_core.methods train --method resae --run-dir runs/quick
    torchrun --nproc_per_node 4 -m ctad_core.methods train --method fanogan3d --run-dir runs/gpu \\
        --params parameters/gpu/05_volumetric_3d.yaml --evaluate

Parameters are the method's notebook's (defaults: its parameters cell), overridden by ``--params`` (a
profile YAML) and then by ``--set key=value`` (values parsed as YAML). Rank 0 writes; every rank trains.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m ctad_core.methods", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train (and optionally score) volumetric methods on run_dir/data")
    tr.add_argument("--method", action="append", required=True, help="method name; repeat for several")
    tr.add_argument("--run-dir", required=True, type=Path)
    tr.add_argument("--params", type=Path, help="profile YAML, e.g. parameters/gpu/05_volumetric_3d.yaml")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one parameter")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    tr.add_argument("--evaluate", action="store_true", help="score val/test and write results (rank 0)")
    tr.add_argument(
        "--rank-digest", action="store_true", help="write each rank's parameter digest (DDP check)"
    )
    tr.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap.parse_args(argv)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    p: dict[str, Any] = {}
    if args.params is not None:
        p.update(yaml.safe_load(args.params.read_text()) or {})
    for kv in args.set:
        if "=" not in kv:
            raise SystemExit(f"--set expects KEY=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        p[k.strip()] = yaml.safe_load(v)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from ctad_core import distributed as ddp
    from ctad_core.evaluation import evaluate
    from ctad_core.methods import run_method
    from ctad_core.run import Run
    from ctad_core.utils import resolve_device, seed_everything, write_json

    params = _params(args)
    info = ddp.init_from_env(resolve_device(args.device))
    seed_everything(args.seed)
    run = Run(args.run_dir)
    opts = {"seed": args.seed, "progress": not args.quiet}
    try:
        for name in args.method:
            tm = run_method(name, run, params, info.device, resume=not args.no_resume, evaluate=False, info=info, **opts)
            if args.rank_digest:
                write_json(
                    run.volumetric / "ddp" / f"{name}.rank{info.rank}.json",
                    {"rank": info.rank, "world_size": info.world_size, "digest": ddp.parameter_digest(tm.model)},
                )
            if info.is_main:
                print(f"{name}: trained, world size {info.world_size}, {tm.train_seconds:.1f} s", flush=True)
            if args.evaluate and info.is_main:
                res = run_method(name, run, params, info.device, resume=True, **opts)
                m = evaluate(res).metrics
                print(f"{name}: test scan AUROC {m['scan_auroc']:.3f} {m['scan_auroc_by_kind']}", flush=True)
            ddp.barrier()
    finally:
        ddp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time building the phantom set of a profile (goal for `quick`: under two minutes on 2 CPU cores).

    .venv/bin/python benchmarks/bench_phantom_set.py --profile quick
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import yaml

from ctad_core.data.phantom_set import PhantomSetSpec, prepare_phantoms
from ctad_core.data.template import load_template


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    params = yaml.safe_load((Path(__file__).parents[1] / "parameters" / args.profile / "01_data_prep.yaml").read_text())
    spec = PhantomSetSpec(
        n_train=params["n_train"],
        n_val_healthy=params["n_val_healthy"],
        n_test_healthy=params["n_test_healthy"],
        n_val_per_kind=params["n_val_per_kind"],
        n_test_per_kind=params["n_test_per_kind"],
        shape_3d=params["shape_3d"],
        size_2d=params["size_2d"],
        slices_2d=params["slices_2d"],
        seed=params.get("seed", 0),
    )
    t0 = time.perf_counter()
    load_template()
    t_tpl = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        df = prepare_phantoms(Path(tmp) / "data", spec, [0.0, 80.0], workers=args.workers, progress=False)
        t_set = time.perf_counter() - t1
    n = len(df)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores")
    print(f"profile {args.profile}: {n} scans, 3D {tuple(spec.shape_3d)}, 2D {spec.slices_2d}x{spec.size_2d}^2")
    print(f"template load (cached): {t_tpl:.1f} s")
    print(f"phantom set build + write: {t_set:.1f} s ({t_set / n:.2f} s per scan)  goal: < 120 s")


if __name__ == "__main__":
    main()

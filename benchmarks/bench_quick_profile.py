"""Run the whole chain with the quick profile and print wall time and the headline metrics.

Usage::

    python benchmarks/bench_quick_profile.py [--run-dir runs/bench_quick] [--reuse]

It calls ``ctad run --profile quick --run-dir D`` (``ctad_core.workbook``) and then reads
``D/report/metrics.json``. A benchmark prints figures; it does not pass or fail on timings.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from ctad_core.utils import read_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run-dir", default="runs/bench_quick")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--reuse", action="store_true", help="only print the metrics of an existing run")
    a = ap.parse_args()
    run = Path(a.run_dir)
    wall = None
    if not a.reuse:
        cmd = [sys.executable, "-c", "import sys; from ctad_core.workbook import main; sys.exit(main())",
               "run", "--profile", a.profile, "--run-dir", str(run)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - t0
    rep = read_json(run / "report" / "metrics.json")
    print(f"profile {rep['profile']} · device {rep['device']} · seed {rep['seed']}")
    if wall is not None:
        print(f"chain wall time: {wall / 60:.1f} min")
    cols = ("pixel_auroc", "pixel_auprc", "dice_mean", "dice_median", "scan_auroc", "dice_seed004", "seconds_per_scan")
    print(f"{'method':28s}" + "".join(f"{c:>15s}" for c in cols))
    for name, m in rep["methods"].items():
        vals = [m.get(c) for c in cols]
        print(f"{name:28s}" + "".join(f"{v:15.4f}" if isinstance(v, (int, float)) else f"{'–':>15s}" for v in vals))
    fid = rep.get("fid") or {}
    for which in ("healthy", "lesioned"):
        if (fid.get(which) or {}).get("fid_inf") is not None:
            print(f"FID∞ generated vs real {which}: {fid[which]['fid_inf']:.3f} ({fid['extractor']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

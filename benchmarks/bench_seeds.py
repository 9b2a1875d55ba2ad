"""Seed-to-seed benchmark (issue 11 item 7): the chain for several seeds, mean ± SD of the headline figures.

Usage::

    python benchmarks/bench_seeds.py [--profile quick] [--seeds 0 1 2] [--run-root runs/bench_seeds]
                                     [--reuse] [--timeout-min 90]

Each seed runs ``ctad run --profile P --run-dir ROOT/seed<N> --set seed=N --resume`` (other phantoms, other
initial weights, other mini-batches; ``--resume`` continues an interrupted seed), one after another, each under
a wall-clock limit. Then the figures of every finished run's ``report/metrics.json`` are summarised by
:func:`ctad_core.evaluation.seeds.seed_table`, printed, and written to ``ROOT/seeds.md``. A benchmark prints
figures; it does not pass or fail on them. Not part of CI (three quick chains take about 1.5 h on 2 cores).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from ctad_core.evaluation.seeds import seed_markdown, seed_table
from ctad_core.utils import atomic_write, read_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--run-root", default="runs/bench_seeds")
    ap.add_argument("--reuse", action="store_true", help="only summarise the runs already under --run-root")
    ap.add_argument("--timeout-min", type=float, default=90.0, help="wall-clock limit of one seed's chain")
    a = ap.parse_args()
    root = Path(a.run_root)
    walls: dict[int, float] = {}
    for seed in a.seeds:
        run = root / f"seed{seed}"
        if a.reuse:
            continue
        cmd = [
            sys.executable,
            "-c",
            "import sys; from ctad_core.workbook import main; sys.exit(main())",
            "run",
            "--profile",
            a.profile,
            "--run-dir",
            str(run),
            "--set",
            f"seed={seed}",
            "--resume",
            "--no-progress",
        ]
        t0 = time.perf_counter()
        try:
            rc = subprocess.run(cmd, timeout=a.timeout_min * 60).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        walls[seed] = time.perf_counter() - t0
        print(f"seed {seed}: rc {rc}, {walls[seed] / 60:.1f} min", flush=True)
    reports, used = [], []
    for seed in a.seeds:
        path = root / f"seed{seed}" / "report" / "metrics.json"
        if path.is_file():
            reports.append(read_json(path))
            used.append(seed)
        else:
            print(f"seed {seed}: no {path}, left out", file=sys.stderr)
    if not reports:
        print("no finished run to summarise", file=sys.stderr)
        return 1
    head = (
        f"# Seed-to-seed spread: profile {a.profile}, seeds {used} (mean ± SD over seeds, SD with ddof 1)\n\n"
        f"device: {reports[0].get('device')}; chain wall time per seed (min): "
        + (", ".join(f"{s}: {w / 60:.1f}" for s, w in walls.items()) or "not run here (--reuse)")
        + "\n"
    )
    text = (
        head
        + "\n## Headline figures († baseline)\n\n"
        + seed_markdown(seed_table(reports))
        + "\n\n## Scan AUROC per lesion kind\n\n"
        + seed_markdown(seed_table(reports, by_kind=True))
        + "\n"
    )
    print(text)
    atomic_write(root / "seeds.md", lambda p: p.write_text(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())

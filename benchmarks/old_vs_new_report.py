"""Old (pre-issue-10, commit ce45029) report definitions vs the new evaluator on the same run's results.

Run with a checkout of commit ce45029 and its venv (`git worktree add /tmp/old ce45029 && cd /tmp/old && bash scripts/setup.sh`):

    /tmp/old/.venv/bin/python benchmarks/old_vs_new_report.py runs/quick runs/quick/report/metrics.json

It prints, per method, the old report definitions (mean-map Dice, mean-map slice AUROC, [DICE] without the
declared component removal) beside the new evaluator's numbers from the run's metrics.json.
"""
import glob
import json
import sys
from pathlib import Path

import numpy as np

from ctad_core import evaluate as E  # the old module (commit ce45029)
from ctad_core.results import MethodResults

run, new_path = Path(sys.argv[1]), Path(sys.argv[2])
new = json.loads(new_path.read_text())["methods"]
old_fields = set(MethodResults.__dataclass_fields__)
rows = []
for npz in sorted(glob.glob(str(run / "*" / "methods" / "*.npz"))):
    meta = json.loads(Path(npz).with_suffix(".json").read_text())
    with np.load(npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k in old_fields}
        inputs = z["inputs"] if "inputs" in z.files else None
    info = dict(meta.get("info", {}))
    info.pop("segmentation", None)
    if "seconds_per_item" in info:
        info["seconds_per_scan"] = info["seconds_per_item"]
        info["seconds_unit"] = "slice (all members)"
    r = MethodResults(name=meta["name"], level=meta["level"], info=info, **arrays)
    m = E.evaluate_method_full(r, dice_thresholds=200, inputs=inputs if r.level == "2d" else None).metrics
    n = new[r.name]
    rows.append((r.name, m.get("dice_mean"), n.get("dice_mean"), m.get("dice_median"), n.get("dice_median"),
                 m.get("dice_seed004"), n.get("dice_seed004"), m.get("slice_auroc"), n.get("slice_auroc")))
print("| method | Dice mean old | new | Dice median old | new | [DICE] old | new | slice AUROC old | new |")
print("|---|---|---|---|---|---|---|---|---|")
def f(x):
    return "—" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.3f}"


for r in rows:
    print("| " + r[0] + " | " + " | ".join(f(x) for x in r[1:]) + " |")

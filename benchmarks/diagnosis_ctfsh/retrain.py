"""Train (or reload) one method on a copy of the quick run's data and print its test scan AUROCs.
usage: retrain.py RUN_DIR METHOD [ctfsh_steps]"""

import sys
import time
import warnings
from pathlib import Path

import yaml

from ctad_core.evaluation import evaluate
from ctad_core.methods import method_params, run_method, training_history

run_dir, name = sys.argv[1], sys.argv[2]
p = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "parameters/quick/05_volumetric_3d.yaml").read_text()
)
p.pop("methods")
p["device"] = "cpu"
if len(sys.argv) > 3:
    p["ctfsh_steps"] = int(sys.argv[3])
t0 = time.time()
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    res = run_method(name, run_dir, method_params(name, p), device="cpu", seed=0, progress=False)
    for x in w:
        print("warning:", x.message)
print("seconds", round(time.time() - t0, 1))
m = evaluate(res, keep_segmentations=False).metrics
print(
    name,
    "scan_auroc",
    round(m["scan_auroc"], 3),
    {k: round(v, 2) for k, v in m["scan_auroc_by_kind"].items()},
)
try:
    h = training_history(name, run_dir)
    for ph, rows in h.items():
        print(ph, "loss first/last", rows[0], rows[-1], "n", len(rows))
except Exception as e:
    print("history:", e)

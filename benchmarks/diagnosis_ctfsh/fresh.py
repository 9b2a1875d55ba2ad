"""A fresh draw of test patients (data seed 1, same generator and acquisition ranges): 32 healthy and 8 per
haemorrhage kind, scored by the quick run's trained models. usage: fresh.py RUN_COPY OUT METHOD..."""

import dataclasses
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import roc_auc_score

from ctad_core.data.manifest import load_volumes, read_config
from ctad_core.data.phantom_set import plan_phantom_set, render_phantom_scan, spec_from_config
from ctad_core.data.prepare import write_prepared
from ctad_core.methods import method_params, score_scans

warnings.simplefilter("ignore")
run, out, names = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
HAEM = ["edh", "sah", "sdh", "iph", "ivh"]
cfg = read_config(run)
spec = spec_from_config(cfg)
spec1 = dataclasses.replace(
    spec,
    seed=1,
    n_train=1,
    n_val_healthy=0,
    n_val_per_kind=0,
    n_test_healthy=32,
    n_test_per_kind=8,
    kinds=HAEM,
)
if not (out / "data" / "manifest.csv").is_file():
    items = [it for it in plan_phantom_set(spec1) if it["split"] == "test"]
    write_prepared(
        out / "data",
        (render_phantom_scan(it, spec1) for it in items),
        {it["patient_id"]: "test" for it in items},
        cfg,
    )
vs = load_volumes(out)
P = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "parameters/quick/05_volumetric_3d.yaml").read_text()
)
P.pop("methods")
rows = []
for arg in names:
    name, _, steps = arg.partition(":")
    p = dict(P, **({"ctfsh_steps": int(steps)} if steps else {}))
    r = score_scans(name, run, volumes=vs, params=method_params(name, p), device="cpu")
    k = np.asarray(r.kind)
    pos = np.maximum(r.inputs - r.recon, 0) * (vs.brain > 0)
    n = (vs.brain > 0).reshape(len(k), -1).sum(1)
    top = np.array(
        [np.sort(pos[i].ravel())[-max(1, int(round(0.01 * n[i]))) :].mean() for i in range(len(k))]
    )
    for sname, s in (("I (method score)", np.asarray(r.scan_score)), ("top1% max(r,0) brain", top)):
        h = s[k == "healthy"]
        row = {"method": arg, "score": sname}
        for kk in HAEM + ["haem"]:
            q = s[np.isin(k, HAEM)] if kk == "haem" else s[k == kk]
            row[kk] = round(roc_auc_score(np.r_[np.zeros(len(h)), np.ones(len(q))], np.r_[h, q]), 2)
        rows.append(row)
df = pd.DataFrame(rows)
print(df.to_string(index=False))
df.to_csv(out / f"fresh_{'_'.join(a.replace(':', '-') for a in names)}.csv", index=False)

"""Patient draws behind the scores: skull thickness (sample_patient, drawn before the lesion, the same for every
kind) per group, its 'AUROC' per kind on test, and Spearman(I, bone voxels). Needs global.py's global.csv."""

import os

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ctad_core.data.phantom import sample_patient

run = os.environ.get("CTAD_DIAG_RUN", "runs/quick")
m = pd.read_csv(f"{run}/data/manifest.csv")
sk = {
    r.scan_id: sample_patient(int(r.phantom_seed), r.kind, aligned=True)["skull_mm"] for r in m.itertuples()
}
g = pd.read_csv("/tmp/diag/global.csv")
g["skull_mm"] = g.scan_id.map(sk)
g.to_csv("/tmp/diag/global.csv", index=False)
print(
    g.groupby("grp")[["skull_mm", "bone", "head", "brain", "noise_sd_5mm", "age"]].mean().round(2).to_string()
)
t = g[g.split == "test"]
h = t[t.kind == "healthy"]
for c in ["skull_mm", "bone"]:
    print(
        "AUROC of",
        c,
        {
            k: round(
                roc_auc_score(
                    np.r_[np.zeros(len(h)), np.ones((t.kind == k).sum())], np.r_[h[c], t[t.kind == k][c]]
                ),
                2,
            )
            for k in ["edh", "sah", "sdh", "iph", "ivh", "infarct", "tumour", "fracture", "atrophy"]
        },
    )

"""Is the AE a mean-head predictor? How much its reconstruction follows the input, what it puts over the lesions,
and the AUROC of the distance of each test scan to the mean healthy val input. usage: meanhead.py [METHOD]"""

import os
import sys

import numpy as np
from sklearn.metrics import roc_auc_score

run = os.environ.get("CTAD_DIAG_RUN", "runs/quick")
name = sys.argv[1] if len(sys.argv) > 1 else "ctfsh_ae_l1"
z = np.load(f"{run}/volumetric/methods/{name}.npz")
print(name)
split, kind, x, r = z["split"], z["kind"], z["inputs"], z["recon"]
tpl = x[(split == "val") & (kind == "healthy")].mean(0)
t = split == "test"
mh = np.abs(x - tpl).mean((1, 2, 3)) / 2
score_i = z["scan_score"]
xc, rc = x - x.mean(0), r - r.mean(0)
print(
    f"across-scan sd per voxel (val+test, mean over voxels): input {x.std(0).mean():.3f}, recon {r.std(0).mean():.3f}; correlation of their deviations from the mean {(xc * rc).sum() / np.sqrt((xc**2).sum() * (rc**2).sum()):.2f}"
)
del xc, rc
les = z["lesion"] > 0
for k in ["edh", "sah", "sdh", "iph", "ivh"]:
    m = les & (kind == k)[:, None, None, None]
    print(
        f"{k}: mean over the lesion voxels (val+test), model range: x {x[m].mean():.2f}, recon {r[m].mean():.2f}"
    )
print(
    "spearman(I, mean-head L1) on test:",
    round(float(np.corrcoef(np.argsort(np.argsort(score_i[t])), np.argsort(np.argsort(mh[t])))[0, 1]), 3),
)
print(
    "mean |recon - template| over test scans:",
    round(float(np.abs(r[t] - tpl).mean()), 3),
    " mean |x - template|:",
    round(float(np.abs(x[t] - tpl).mean()), 3),
)
h = kind[t] == "healthy"
for k in ["edh", "sah", "sdh", "iph", "ivh", "atrophy"]:
    p = kind[t] == k
    y = np.r_[np.zeros(h.sum()), np.ones(p.sum())]
    print(
        k,
        "AUROC mean-head L1",
        round(roc_auc_score(y, np.r_[mh[t][h], mh[t][p]]), 2),
        " AE I",
        round(roc_auc_score(y, np.r_[score_i[t][h], score_i[t][p]]), 2),
    )

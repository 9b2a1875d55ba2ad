"""How much of the I score is head anatomy? Fit I ~ bone voxels on the healthy val scans; AUROC of the rest."""

import os

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

run = os.environ.get("CTAD_DIAG_RUN", "runs/quick")
g = pd.read_csv("/tmp/diag/global.csv").set_index("scan_id")
KINDS = ["edh", "sah", "sdh", "iph", "ivh", "infarct", "tumour", "fracture", "atrophy"]
HAEM = ["edh", "sah", "sdh", "iph", "ivh"]
s = pd.read_csv(f"{run}/volumetric/scores.csv").join(g[["bone", "head", "skull_mm"]], on="scan_id")
for name in [
    "ctfsh_ae_l1",
    "ctfsh_ae_msssim",
    "ctfsh_vae_msssim",
    "ctfsh_ae_msssim_strip",
    "fanogan3d",
    "resae",
]:
    d = s[s.method == name]
    ref = d[(d.split == "val") & (d.kind == "healthy")]
    X = np.c_[np.ones(len(ref)), ref["bone"], ref["head"]]
    beta = np.linalg.lstsq(X, ref.score, rcond=None)[0]
    t = d[d.split == "test"].copy()
    t["adj"] = t.score - np.c_[np.ones(len(t)), t["bone"], t["head"]] @ beta
    h = t[t.kind == "healthy"]
    out = {}
    for col in ["score", "adj"]:
        row = {}
        for k in KINDS + ["haem"]:
            p = t[t.kind.isin(HAEM)] if k == "haem" else t[t.kind == k]
            row[k] = round(roc_auc_score(np.r_[np.zeros(len(h)), np.ones(len(p))], np.r_[h[col], p[col]]), 2)
        out[col] = row
    rho = t[["score", "bone"]].corr(method="spearman").iloc[0, 1]
    print(
        f"{name}: spearman(score, bone voxels) on test = {rho:.2f}; healthy test score sd = {h.score.std():.4f}"
    )
    print("   raw     ", out["score"])
    print("   adjusted", out["adj"])

"""Haemorrhage scan AUROC of the saved scores by which healthy group is the reference (val 10 / test 16)."""

import os

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

s = pd.read_csv(os.path.join(os.environ.get("CTAD_DIAG_RUN", "runs/quick"), "volumetric", "scores.csv"))
HAEM = ["edh", "sah", "sdh", "iph", "ivh"]


def au(h, p):
    return round(roc_auc_score(np.r_[np.zeros(len(h)), np.ones(len(p))], np.r_[h, p]), 2)


print(
    "method | test haem vs test healthy | test haem vs val healthy | val haem vs val healthy | val haem vs test healthy"
)
for m, d in s.groupby("method"):
    H = {sp: d[(d.split == sp) & (d.kind == "healthy")].score for sp in ["val", "test"]}
    P = {sp: d[(d.split == sp) & d.kind.isin(HAEM)].score for sp in ["val", "test"]}
    print(
        m,
        "|",
        au(H["test"], P["test"]),
        "|",
        au(H["val"], P["test"]),
        "|",
        au(H["val"], P["val"]),
        "|",
        au(H["test"], P["val"]),
    )

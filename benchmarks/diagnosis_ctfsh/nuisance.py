"""Which patient/acquisition features drive each method's score on HEALTHY scans (val+test, no lesion)?"""

import os

import numpy as np
import pandas as pd

run = os.environ.get("CTAD_DIAG_RUN", "runs/quick")
man = pd.read_csv(f"{run}/data/manifest.csv").set_index("scan_id")
g = pd.read_csv("/tmp/diag/global.csv").set_index("scan_id")
feat = pd.DataFrame(
    {
        "noise_sd_5mm": man.noise_sd_5mm,
        "slice_mm": man.slice_thickness_mm,
        "age": man.age,
        "sharp": (man.kernel == "sharp").astype(int),
        "smooth": (man.kernel == "smooth").astype(int),
        "n_calc": man.calcification.fillna("").map(lambda c: 0 if c in ("", "none") else c.count("+") + 1),
        "bone": g.bone,
        "head": g["head"],
        "brain": g.brain,
        "skull_mm": g.skull_mm,
        "brain_sd": g.brain_sd,
        "brain_hu": g.brain_hu,
    }
)
s = pd.read_csv(f"{run}/volumetric/scores.csv").join(feat, on="scan_id")
pd.set_option("display.width", 250)
rows = []
for name, d in s.groupby("method"):
    h = d[d.kind == "healthy"]
    rows.append(
        {
            "method": name,
            **{c: round(h[["score", c]].corr(method="spearman").iloc[0, 1], 2) for c in feat.columns},
        }
    )
print("Spearman(score, feature) over the 26 healthy val+test scans")
print(pd.DataFrame(rows).to_string(index=False))
f = feat.join(man[["split", "kind"]])
f["grp"] = np.where(f.kind == "healthy", f.split + "_healthy", f.split + "_lesion")
print(f.groupby("grp")[list(feat.columns)].mean().round(2).to_string())

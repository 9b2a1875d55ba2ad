import os

import nibabel as nib
import numpy as np
import pandas as pd

run = os.path.join(os.environ.get("CTAD_DIAG_RUN", "runs/quick"), "data")
m = pd.read_csv(f"{run}/manifest.csv")
rows = []
for _, r in m.iterrows():
    v = np.asarray(nib.load(f"{run}/{r.image}").dataobj, dtype=np.float32)
    b = np.asarray(nib.load(f"{run}/{r.brain_mask}").dataobj) > 0
    rows.append(
        dict(
            scan_id=r.scan_id,
            bone=(v > 100).sum(),
            head=(v > -200).sum(),
            brain=b.sum(),
            win_mean=np.clip(v, 0, 100).mean(),
            brain_hu=v[b].mean(),
            brain_sd=v[b].std(),
        )
    )
d = m[["scan_id", "split", "kind", "age", "noise_sd_5mm"]].merge(pd.DataFrame(rows))
d["grp"] = np.where(d.kind == "healthy", d.split + "_healthy", d.split + "_lesion")
pd.set_option("display.width", 200)
print(
    d.groupby("grp")[["bone", "head", "brain", "win_mean", "brain_hu", "brain_sd", "age"]]
    .agg(["mean", "std"])
    .round(1)
    .T
)
print(d[d.split == "test"].groupby("kind")[["bone", "head", "brain", "win_mean", "age"]].mean().round(1))
d.to_csv("/tmp/diag/global.csv", index=False)

"""Alternative scan scores on the same trained models: paired effect of the lesion (same patient with/without
lesion) and test AUROC (16 healthy vs 20 haemorrhage). usage: alt_scores.py RUN_COPY PAIRED_DIR METHOD[:steps]..."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import roc_auc_score

from ctad_core.data.manifest import load_volumes
from ctad_core.methods import method_params, score_scans

warnings.simplefilter("ignore")
run, paired = Path(sys.argv[1]), Path(sys.argv[2])
HAEM = ["edh", "sah", "sdh", "iph", "ivh"]
P = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "parameters/quick/05_volumetric_3d.yaml").read_text()
)
P.pop("methods")
ev, pv = load_volumes(run, ("val", "test")), load_volumes(paired)


def topk(v, f=0.01):
    k = max(1, int(round(f * v.size)))
    return float(np.partition(v, v.size - k)[-k:].mean())


def scores(x, rec, brain, mu, sd):
    r = x - rec
    z = np.maximum((r - mu) / sd, 0)
    out = {
        "mean |r| brain": [],
        "top1% |r| brain (evaluator map score)": [],
        "top1% max(r,0) brain": [],
        "top1% normative z brain": [],
        "intensity top1% x brain (floor)": [],
    }
    for i in range(len(x)):
        b = brain[i] > 0
        out["mean |r| brain"].append(np.abs(r[i][b]).mean())
        out["top1% |r| brain (evaluator map score)"].append(topk(np.abs(r[i][b])))
        out["top1% max(r,0) brain"].append(topk(np.maximum(r[i][b], 0)))
        out["top1% normative z brain"].append(topk(z[i][b]))
        out["intensity top1% x brain (floor)"].append(topk(x[i][b]))
    return {k: np.asarray(v) for k, v in out.items()}


rows = []
for arg in sys.argv[3:]:
    name, _, steps = arg.partition(":")
    p = dict(P, **({"ctfsh_steps": int(steps)} if steps else {}))
    mp = method_params(name, p)
    a = score_scans(name, run, volumes=ev, params=mp, device="cpu")
    b = score_scans(name, run, volumes=pv, params=mp, device="cpu")
    ref = (a.split == "val") & (a.kind == "healthy")
    res = a.inputs[ref] - a.recon[ref]
    mu, sd = res.mean(0), np.maximum(res.std(0), 0.05)
    sa = {"I (method score)": np.asarray(a.scan_score), **scores(a.inputs, a.recon, ev.brain, mu, sd)}
    sb = {"I (method score)": np.asarray(b.scan_score), **scores(b.inputs, b.recon, pv.brain, mu, sd)}
    t = a.split == "test"
    h = t & (a.kind == "healthy")
    q = t & np.isin(a.kind, HAEM)
    ids = [str(s) for s in b.scan_id]
    for k in sa:
        auc = roc_auc_score(np.r_[np.zeros(h.sum()), np.ones(q.sum())], np.r_[sa[k][h], sa[k][q]])
        pos = {s: i for i, s in enumerate(ids)}
        lid = [s for s in ids if not s.endswith("h")]
        w, wo = sb[k][[pos[s] for s in lid]], sb[k][[pos[s + "h"] for s in lid]]
        d = w - wo
        auc0 = roc_auc_score(np.r_[np.zeros(h.sum()), np.ones(len(wo))], np.r_[sa[k][h], wo])
        rows.append(
            {
                "method": arg,
                "score": k,
                "test AUROC haem": round(auc, 2),
                "AUROC lesion removed": round(auc0, 2),
                "raised": f"{(d > 0).sum()}/{len(d)}",
                "effect (delta/sd)": round(d.mean() / wo.std(), 2),
            }
        )
    del a, b
df = pd.DataFrame(rows)
pd.set_option("display.width", 250)
print(df.to_string(index=False))
df.to_csv(paired / ("alt_" + "_".join(a.replace(":", "-") for a in sys.argv[3:]) + ".csv"), index=False)

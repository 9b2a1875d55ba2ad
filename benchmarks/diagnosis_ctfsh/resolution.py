"""What the 32^3 model grid can see at best: the intensity floor (top 1 % of the windowed input inside the
brain) on the 64^3 volumes vs the same volumes average-pooled to 32^3 and upsampled back (what every quick-profile
3D model is trained and scored on), test haemorrhage vs healthy."""

import numpy as np
from sklearn.metrics import roc_auc_score

from ctad_core.data.manifest import load_volumes
from ctad_core.methods.inputs import downsample, model_volumes, upsample

HAEM = ["edh", "sah", "sdh", "iph", "ivh"]
vs = load_volumes("/tmp/diag-quick", "test")
x = model_volumes(vs, "ctfsh", False)
x32 = upsample(downsample(x, 2), x.shape[1:])


def top(a, b):
    v = a[b > 0]
    k = max(1, int(round(0.01 * v.size)))
    return np.sort(v)[-k:].mean()


k = np.asarray(vs.kind)
for name, a in (("64^3", x), ("32^3 pooled", x32)):
    s = np.array([top(a[i], vs.brain[i]) for i in range(len(a))])
    h = s[k == "healthy"]
    out = {
        kk: round(roc_auc_score(np.r_[np.zeros(len(h)), np.ones((k == kk).sum())], np.r_[h, s[k == kk]]), 2)
        for kk in HAEM
    }
    q = s[np.isin(k, HAEM)]
    out["haem"] = round(roc_auc_score(np.r_[np.zeros(len(h)), np.ones(len(q))], np.r_[h, q]), 2)
    print(name, out)
les = vs.lesion > 0
print(
    f"mean windowed value over the lesion (haem scans): 64^3 {x[les & np.isin(k, HAEM)[:, None, None, None]].mean():.3f}, 32^3 pooled {x32[les & np.isin(k, HAEM)[:, None, None, None]].mean():.3f}"
)

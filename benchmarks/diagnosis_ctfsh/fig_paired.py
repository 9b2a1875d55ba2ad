import os

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt

p = pd.read_csv("/tmp/diag-paired/paired.csv")
s = pd.read_csv(os.path.join(os.environ.get("CTAD_DIAG_RUN", "runs/quick"), "volumetric", "scores.csv"))
ms = list(dict.fromkeys(p.method))
fig, ax = plt.subplots(1, len(ms), figsize=(3.2 * len(ms), 4))
for a, m in zip(ax, ms):
    h = s[(s.method == m) & (s.split == "test") & (s.kind == "healthy")].score
    a.scatter(
        np.zeros(len(h)) + np.random.default_rng(0).uniform(-0.1, 0.1, len(h)),
        h,
        c="tab:blue",
        s=14,
        label="healthy test (16)",
    )
    d = p[p.method == m]
    for r in d.itertuples():
        a.plot([1, 2], [r.without, r.with_lesion], c="0.6", lw=0.7)
    a.scatter(np.ones(len(d)), d.without, c="tab:green", s=14, label="haem. patient, lesion removed")
    a.scatter(np.ones(len(d)) * 2, d.with_lesion, c="tab:red", s=14, label="same patient with lesion (test)")
    a.set_xticks([0, 1, 2], ["healthy", "no lesion", "lesion"])
    a.set_title(m, fontsize=9)
ax[0].set_ylabel("scan score (I)")
ax[0].legend(fontsize=6, loc="upper left")
plt.tight_layout()
plt.savefig("/tmp/diag/paired.png", dpi=70)

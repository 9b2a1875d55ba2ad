"""docs/figures/diagnosis_ctfsh.png: ctfsh_ae_l1 of runs/quick (200 steps), same model, two scan scores."""

import os
import sys

import matplotlib
import nibabel as nib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.metrics import roc_auc_score

run = os.environ.get("CTAD_DIAG_RUN", "runs/quick")
z = np.load(f"{run}/volumetric/methods/ctfsh_ae_l1.npz")
t = z["split"] == "test"
sid, kind, x, r, les = z["scan_id"][t], z["kind"][t], z["inputs"][t], z["recon"][t], z["lesion"][t]
br = np.stack(
    [np.asarray(nib.load(f"{run}/data/volumes/{s}_brain.nii.gz").dataobj).transpose(2, 1, 0) > 0 for s in sid]
)  # NIfTI (x, y, z) -> ctad_core (z, y, x)
score_i = z["scan_score"][t]
pos = np.maximum(x - r, 0)


def top(a, b):
    v = a[b]
    k = max(1, int(round(0.01 * v.size)))
    return np.sort(v)[-k:].mean()


T = np.array([top(pos[i], br[i]) for i in range(len(x))])
order = ["healthy", "edh", "sah", "sdh", "iph", "ivh", "infarct", "tumour", "fracture", "atrophy"]
fig = plt.figure(figsize=(13, 6.5))
for j, (name, s) in enumerate(
    (
        ("I score (Eq. 1, whole volume) - as run", score_i),
        ("top 1 % of max(x - x_hat, 0) inside the brain mask", T),
    )
):
    a = fig.add_subplot(2, 3, 1 + 3 * j)
    h = s[kind == "healthy"]
    for i, k in enumerate(order):
        v = s[kind == k]
        a.scatter(
            np.full(len(v), i) + np.linspace(-0.15, 0.15, len(v)),
            v,
            s=12,
            c="tab:blue" if k == "healthy" else "tab:red",
        )
        if k != "healthy":
            auc = roc_auc_score(np.r_[np.zeros(len(h)), np.ones(len(v))], np.r_[h, v])
            a.text(
                i, a.get_ylim()[1] if False else v.max(), f"{auc:.2f}", fontsize=7, ha="center", va="bottom"
            )
    a.set_xticks(range(len(order)), order, rotation=60, fontsize=7)
    a.set_title(name + "\n(numbers: AUROC vs the 16 healthy)", fontsize=8)
# maps: one healthy and one EDH scan at the lesion's slice
picks = [
    np.flatnonzero(kind == "healthy")[np.argmax(score_i[kind == "healthy"])],
    np.flatnonzero(kind == "edh")[1],
]
for j, i in enumerate(picks):
    zz = int(np.argmax(les[i].sum((1, 2)))) if les[i].any() else 32
    a = fig.add_subplot(2, 3, 2 + 3 * j)
    a.imshow(x[i, zz], cmap="gray", vmin=-1, vmax=1)
    a.imshow(
        np.ma.masked_less(np.where(br[i, zz], pos[i, zz], 0), 0.3),
        cmap="autumn",
        vmin=0.3,
        vmax=1.5,
        alpha=0.8,
    )
    if les[i].any():
        a.contour(les[i, zz], [0.5], colors="c", linewidths=0.8)
    a.set_title(
        f"{sid[i]} {kind[i]}: input, max(x - x_hat, 0) > 0.3 in brain\nI = {score_i[i]:.4f}, top-1% score = {T[i]:.3f}",
        fontsize=8,
    )
    a.axis("off")
    a = fig.add_subplot(2, 3, 3 + 3 * j)
    a.imshow(r[i, zz], cmap="gray", vmin=-1, vmax=1)
    a.set_title("reconstruction x_hat", fontsize=8)
    a.axis("off")
plt.tight_layout()
plt.savefig(sys.argv[1], dpi=65)

# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Reconstruction by encoder or by latent restoration, and the anomaly maps
#
# **Inference in seed 000.** A slice $x$ is redrawn by each healthy generator, $\hat x = G(z)$, and
# the residual $D = \rho(x - \hat x)$ marks what $G$ could not draw. There are two ways to find $z$:
#
# 1. **Encoder** (notebook 03): $z = E(x)$, one forward pass (seed: ~0.02 s per 512² slice).
# 2. **Latent restoration** (seed Eq. 4): solve, per slice,
#    $$\min_{-1\le z_i\le 1}\ w_1\,\ell_{percept}(x, G(z)) + w_2\,\ell_{MSE}(x, G(z))$$
#    with Adam (the seed starts from $z = 0$), clipping $z$ to $[-1, 1]$ after every step, for a fixed number of steps
#    (seed: 8000 steps, ~110 s per slice on their GPU). Here **all slices are restored at once**: the
#    per-slice losses are summed, so each latent gets exactly its own gradient and the result equals
#    one-at-a-time restoration (a test checks this) — only much faster.
#
#    `restoration_init` picks the start: `"zero"` is the seed's ($z = 0$; the `gpu` and `paper`
#    profiles); `"encoder"` starts from $E(x)$ and refines it — the workbook's choice for the CPU
#    profiles, where a hundred steps from zero cannot get as far as the encoder already is.
#
# During reconstruction $G$ runs in eval mode with its noise injection switched off (the noise's
# mean), so that $G(z)$ is a deterministic function of $z$.
#
# **From residuals to masks.** $\rho = |\cdot|$ detects any change; $\rho = \max(\cdot, 0)$ only tissue
# brighter than its healthy reconstruction (haemorrhage; the seed's hemorrhage set). The residual is
# thresholded, restricted to the brain, closed morphologically, and the three members vote (strict
# majority). The threshold is chosen on the **validation** slices (best mean Dice, the seed's Fig. 6)
# and applied unchanged to **test**. Results for notebook 07 are written under `restoration/methods/`.

# %% tags=["parameters"]
run_dir = "runs/quick"
seed = 0
device = "auto"
steps = 60
lr = 0.05
restoration_init = "encoder"
batch_size = 128
w_percept = 1.0
w_mse = 10.0
feature_space = "discriminator"
vgg_weights = ""
residual_mode = "abs"
closing_radius = 1
min_size = 0
n_thresholds = 40
top_fraction = 0.01
amp = False
channels_last = False
max_slices_per_split = 60
n_show = 4
threads = 0

# %% [markdown]
# ## Setup
#
# `threads` sets torch's CPU threads (0 keeps torch's default). On a shared, busy machine one thread
# is often several times faster than two: threads that wait for each other lose their time slices.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from ctad_core import anomaly, ensemble2d, gan2d
from ctad_core.data.manifest import load_slices, read_config
from ctad_core.data.windows import to_model
from ctad_core.losses import ReconstructionLoss, make_feature_extractor
from ctad_core.restoration import encode_reconstruct, restore_many
from ctad_core.results import MethodResults, save_method_results
from ctad_core.utils import describe_device, read_json, resolve_device, save_npz, seed_everything, write_json

if threads:
    torch.set_num_threads(threads)
dev = resolve_device(device)
seed_everything(seed)
run = Path(run_dir)
gan_dir, enc_dir, out_dir = run / "gan", run / "encoder", run / "restoration"
out_dir.mkdir(parents=True, exist_ok=True)
window = read_config(run)["window"]
gan_info = read_json(gan_dir / "training.json")
n_members, image_size = gan_info["n_members"], gan_info["config"]["image_size"]
print("device:", describe_device(dev), f"| {n_members} members, {image_size} px, feature space: {feature_space}")

# %% [markdown]
# ## Validation and test slices
#
# Restoration costs seconds per slice on a CPU, so the `quick` profile takes at most
# `max_slices_per_split` slices of each split (half of them with a lesion); `0` takes all.

# %%
ev = load_slices(run)
ev = ev.subset(np.isin(ev.split, ["val", "test"]))
ev = ev.subset(ensemble2d.select_slices(ev.split, ev.lesion.reshape(len(ev), -1).any(1), max_slices_per_split, seed))
x = gan2d.prepare_slices(to_model(ev.image, window), image_size)
xn = x[:, 0].numpy()
lesion = ensemble2d.resize_masks(ev.lesion, image_size)
brain = ensemble2d.resize_masks(ev.brain, image_size)
has_lesion = lesion.reshape(len(ev), -1).any(1)
print(f"{len(ev)} slices: " + ", ".join(f"{s}: {int((ev.split == s).sum())} ({int(has_lesion[ev.split == s].sum())} with lesion)" for s in ("val", "test")))

# %% [markdown]
# ## Reconstruct with both methods, member by member

# %%
rec = {"encoder": [], "restoration": []}
seconds = {"encoder": 0.0, "restoration": 0.0}
loss_curves = []
for m, (g_dir, e_dir) in enumerate(zip(gan2d.member_dirs(gan_dir, n_members), gan2d.member_dirs(enc_dir, n_members))):
    G = gan2d.load_generator(g_dir, dev)
    D = gan2d.load_discriminator(g_dir, dev) if feature_space == "discriminator" else None
    loss_fn = ReconstructionLoss(make_feature_extractor(feature_space, D, vgg_weights or None), w_percept, w_mse)
    z_enc, r_enc, t_enc = encode_reconstruct(gan2d.load_encoder(e_dir, dev), G, x)
    assert restoration_init in ("zero", "encoder"), f"restoration_init must be 'zero' or 'encoder', not {restoration_init!r}"
    z0 = z_enc if restoration_init == "encoder" else None
    res = restore_many(G, x, loss_fn, batch_size=batch_size, steps=steps, lr=lr, amp=amp, channels_last=channels_last, z0=z0)
    if z0 is not None:
        res.seconds += t_enc  # the encoder pass (E and G(E(x)), a slight overestimate) is part of this cost
    rec["encoder"].append(r_enc[:, 0].numpy())
    rec["restoration"].append(res.recon[:, 0].numpy())
    seconds["encoder"] += t_enc
    seconds["restoration"] += res.seconds
    loss_curves.append(res.losses)
    print(f"member {m}: encoder {t_enc:.2f} s, restoration {res.seconds:.1f} s for {len(x)} slices")
rec = {k: ensemble2d.stack_members(v) for k, v in rec.items()}
timings = {k: {"seconds_total": v, "seconds_per_slice": v / len(x), "members": n_members} for k, v in seconds.items()}
timings["restoration"]["steps"] = steps
timings["restoration"]["init"] = restoration_init
timings["device"] = describe_device(dev)
write_json(out_dir / "timings.json", timings)
timings


# %% [markdown]
# ## The restoration loss
#
# The summed loss of Eq. 4 per step (mean over slices, one line per member). The seed stops after a
# fixed number of steps; a curve still falling at the end says more steps would fit closer — for
# healthy anatomy and, eventually, for lesions too, which is why the step count is not "as many as
# possible".

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
for m, lc in enumerate(loss_curves):
    ax.plot(lc.mean(1), label=f"member {m}")
ax.set_xlabel("Adam step")
ax.set_ylabel(f"{w_percept}·percept + {w_mse}·MSE")
ax.set_yscale("log")
ax.legend()
fig.savefig(out_dir / "restoration_loss.png", dpi=100)
plt.show()

# %% [markdown]
# ## Residual maps

# %%
maps = {k: ensemble2d.residual_maps(xn, v, residual_mode) for k, v in rec.items()}
save_npz(
    out_dir / "reconstructions.npz", x=xn, lesion=lesion, brain=brain, scan_id=ev.scan_id, slice_index=ev.slice_index, split=ev.split,
    kind=ev.kind, recon_encoder=rec["encoder"], recon_restoration=rec["restoration"],
    maps_encoder=maps["encoder"], maps_restoration=maps["restoration"])


def show_examples(idx, title):
    cols = ["input", "encoder recon", "restoration recon", "encoder residual", "restoration residual", "reference"]
    fig, axes = plt.subplots(len(idx), len(cols), figsize=(2.1 * len(cols), 2.1 * len(idx)), squeeze=False)
    # overlay only residuals above the 95th percentile of the healthy slices' (noise stays grey)
    healthy_px = (brain > 0) & ~has_lesion[:, None, None]
    floor = {k: float(np.quantile(maps[k].mean(0)[healthy_px], 0.95)) if healthy_px.any() else 0.02 for k in maps}
    vmax = float(np.quantile(maps["restoration"].mean(0)[brain > 0], 0.999))
    for r, i in enumerate(idx):
        panels = [xn[i], rec["encoder"].mean(0)[i], rec["restoration"].mean(0)[i]]
        for c, img in enumerate(panels):
            axes[r, c].imshow(img, cmap="gray", vmin=-1, vmax=1)
        for c, k in ((3, "encoder"), (4, "restoration")):
            axes[r, c].imshow(xn[i], cmap="gray", vmin=-1, vmax=1)
            axes[r, c].imshow(np.ma.masked_less(maps[k].mean(0)[i] * brain[i], floor[k]), cmap="autumn_r", vmin=0, vmax=vmax, alpha=0.8)
        axes[r, 5].imshow(xn[i], cmap="gray", vmin=-1, vmax=1)
        axes[r, 5].imshow(np.ma.masked_equal(lesion[i], 0), cmap="cool", alpha=0.7)
        axes[r, 0].set_ylabel(f"{ev.kind[i]}", fontsize=8)
    for c, t in enumerate(cols):
        axes[0, c].set_title(t, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


rng = np.random.default_rng(seed)
healthy_idx = rng.choice(np.flatnonzero(~has_lesion), min(n_show, int((~has_lesion).sum())), replace=False)
lesion_idx = rng.choice(np.flatnonzero(has_lesion), min(n_show, int(has_lesion.sum())), replace=False)
show_examples(healthy_idx, "healthy slices: residuals should be faint").savefig(out_dir / "healthy_examples.png", dpi=100)
plt.show()
show_examples(lesion_idx, "lesioned slices: residuals should light up the lesion").savefig(out_dir / "lesion_examples.png", dpi=100)
plt.show()

# %% [markdown]
# ## Results for notebook 07
#
# Each method writes its val + test maps (the members' mean residual, for pixel AUROC and the figures), each
# member's residual map and its positive residual max(x − x̂, 0) (seed 000's haemorrhage set), the inputs
# and the members' mean reconstruction (reconstruction-error statistics), the reference, a per-slice score
# (the mean of the top 1 % of residuals inside the brain), and the seed's segmentation step: threshold →
# closing → strict majority vote of the members, which the evaluator applies before every Dice.

# %%
from ctad_core.evaluation import evaluate

slices_per_scan = float(np.mean(np.unique(load_slices(run).scan_id, return_counts=True)[1]))
results = {}
for k, name in (("encoder", "fastgan_encoder"), ("restoration", "fastgan_restoration")):
    mean_map = maps[k].mean(0)
    results[name] = MethodResults(
        name=name, level="2d", scan_id=ev.scan_id, split=ev.split, kind=ev.kind,
        scan_score=anomaly.scan_score(mean_map, brain, top_fraction, spatial_dims=2),
        maps=mean_map.astype(np.float32), lesion=lesion.astype(np.uint8), brain=brain.astype(np.uint8),
        member_maps=maps[k].astype(np.float32),
        member_maps_haemorrhage=ensemble2d.residual_maps(xn, rec[k], "pos").astype(np.float32),
        maps_haemorrhage=ensemble2d.residual_maps(xn, rec[k], "pos").mean(0).astype(np.float32),
        recon=rec[k].mean(0).astype(np.float32), inputs=xn.astype(np.float32),
        info={"seconds_per_item": timings[k]["seconds_per_slice"], "items_per_scan": slices_per_scan,
              "device": describe_device(dev), "feature_space": feature_space, "residual_mode": residual_mode,
              "n_members": n_members, "image_size": image_size,
              "segmentation": {"closing_radius": closing_radius, "vote": "majority", "min_component_size": min_size},
              "restoration_steps": steps if k == "restoration" else 0,
              "restoration_init": restoration_init if k == "restoration" else None,
              "slice_index": ev.slice_index.tolist()},
    )
    save_method_results(out_dir, results[name])
sorted(p.name for p in (out_dir / "methods").iterdir())

# %% [markdown]
# ## Choosing the threshold on validation, measuring on test
#
# Dice of the members' majority vote against the threshold on the validation slices with lesions (the
# seed's Fig. 6): the results depend strongly on it. The best one is applied unchanged to the test slices.
# This is the evaluator of notebook 07 (`ctad_core.evaluation.evaluate`), called the same way, so the test
# Dice below is the one in `report/metrics.json`. Pixel AUROC / AUPRC use the members' mean residual
# inside the brain and need no threshold.

# %%
import pandas as pd

from ctad_core.evaluation import figures as evfig

evaluations = {name: evaluate(r) for name, r in results.items()}
fig = evfig.dice_threshold_figure(evaluations, "all")
fig.savefig(out_dir / "dice_vs_threshold.png", dpi=100)
plt.show()
rows = {
    "threshold (val)": ("dice_threshold",), "val mean Dice": ("dice_all", "val_mean_dice"),
    "test Dice mean": ("dice_mean",), "test Dice median": ("dice_median",), "test Dice SD": ("dice_sd",),
    "lesions detected": ("lesion_detection", "rate"), "pixel AUROC": ("pixel_auroc",),
    "pixel AUPRC": ("pixel_auprc",), "s / slice": ("seconds_per_item",),
}


def pick(m, keys):
    for k in keys:
        m = (m or {}).get(k)
    return m


pd.DataFrame({n: {label: pick(e.metrics, keys) for label, keys in rows.items()} for n, e in evaluations.items()}).T

# %% [markdown]
# ## Test segmentations (majority vote of the members)

# %%
first = evaluations["fastgan_encoder"]
test_items = first.dice_test["all"][1] if "all" in first.dice_test else np.zeros(0, int)
show = list(range(min(n_show, len(test_items))))
fig, axes = plt.subplots(max(1, len(show)), 3, figsize=(6.5, 2.2 * len(show)), squeeze=False)
for r, j in enumerate(show):
    i = test_items[j]
    panels = [("reference", lesion[i] > 0)] + [
        (n.removeprefix("fastgan_"), evaluations[n].segmentation_test["all"][j]) for n in evaluations
    ]
    for c, (title, m) in enumerate(panels):
        axes[r, c].imshow(xn[i], cmap="gray", vmin=-1, vmax=1)
        axes[r, c].imshow(np.ma.masked_equal(m.astype(np.uint8), 0), cmap="autumn", alpha=0.7)
        axes[r, c].set_title(title, fontsize=8)
        axes[r, c].axis("off")
fig.tight_layout()
fig.savefig(out_dir / "test_segmentations.png", dpi=100)
plt.show()

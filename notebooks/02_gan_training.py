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
# # 02 · Learning healthy head CT with a FastGAN ensemble
#
# **Step 1 of Walluscheck et al. 2024 (seed 000).** A generative adversarial network learns what
# *healthy* axial head-CT slices look like: the generator $G$ turns a latent vector
# $z \sim \mathcal{U}[-1,1]^{512}$ into a slice, the discriminator $D$ tells generated slices from real
# ones. Later (notebooks 03 and 04) every test slice is re-drawn by $G$ — and whatever $G$ cannot draw,
# because it never saw it in healthy training data, is an anomaly.
#
# The architecture is **FastGAN** (Liu et al., ICLR 2021), chosen by the seed because it trains on a
# few hundred to a thousand images:
#
# - **skip-layer excitation** — small feature maps (4×4 … 32×32) gate the channels of large ones
#   (64×64 … 512×512), a cheap long-range path for the gradient;
# - **noise injection** — per-pixel noise with a learned weight in every other up-block;
# - a discriminator with **spectral normalisation** and **self-supervised decoders** that must redraw
#   the real image (and a random quarter of it) from D's own features, so D learns *descriptive*
#   features instead of memorising — the seed feeds the decoders 4×4 instead of 8×8 feature maps;
# - the **hinge loss** $\mathcal L_D = \mathbb E[\max(0, 1-D(x))] + \mathbb E[\max(0, 1+D(G(z)))] + \mathcal L_{rec}$,
#   $\mathcal L_G = -\mathbb E[D(G(z))]$, and **differentiable augmentation** (mirroring, contrast,
#   translation) applied alike to real and generated images so that D cannot overfit the small set.
#
# The seed trains **three** GANs that differ only by their random seed: their three anomaly masks are
# later combined by a majority vote. Seed settings (the `paper` profile): 512×512, batch 8, Adam 2e-4,
# 100 000 steps. The `quick` profile trains tiny networks on 64×64 slices for about five minutes each on
# a CPU (900 steps, Adam 5e-4 instead of 2e-4 so that ventricles appear within that budget) — enough for
# skull, brain and ventricles, not for fine anatomy.

# %% tags=["parameters"]
run_dir = "runs/quick"
seed = 0
device = "auto"
image_size = 64
n_members = 3
steps = 900
batch_size = 8
ngf = 8
ndf = 8
nz = 512
lr = 0.0005
dec_in = 4
augment = "flip,contrast,translation"
ema_decay = 0.99
sample_every = 100
ckpt_every = 100
resume = True
n_show = 8
threads = 0

# %% [markdown]
# ## Setup
#
# `threads` sets torch's CPU threads (0 keeps torch's default). On a shared, busy machine one thread
# is often several times faster than two: threads that wait for each other lose their time slices.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from ctad_core.data.windows import to_model
from ctad_core.methods.fastgan import train as gan2d
from ctad_core.methods.fastgan.model import Discriminator, FastGANConfig, Generator, count_parameters
from ctad_core.run import Run
from ctad_core.utils import describe_device, resolve_device, seed_everything
from ctad_core.workbook import resolve_run_dir

if threads:
    torch.set_num_threads(threads)
dev = resolve_device(device)
seed_everything(seed)
run_dir = resolve_run_dir(run_dir)  # one run_dir whether run by `ctad run`, `ctad lab` or opened in place
run = Run(run_dir)
out_dir = run.stage("gan", create=True)
window = run.window()
print("device:", describe_device(dev), "| window (HU):", window)

# %% [markdown]
# ## The training slices
#
# Only the **healthy** training split is used — the GAN must never see a lesion. Intensities go
# from HU to the model range [-1, 1] through the brain window in one place (`to_model`).

# %%
train = run.slices("train")
x_train = to_model(train.image, window)
x_small = gan2d.prepare_slices(x_train, image_size)[:, 0].numpy()
n_show = min(n_show, len(x_small))  # a small set (a dry run, a few real scans) has fewer slices to show
print(f"{len(train)} healthy training slices of {train.image.shape[1:]} px → model size {image_size}")
fig, axes = plt.subplots(1, n_show, figsize=(2 * n_show, 2))
for ax, img in zip(axes, x_small[np.linspace(0, len(x_small) - 1, n_show).astype(int)]):
    ax.imshow(img, cmap="gray", vmin=-1, vmax=1)
    ax.axis("off")
fig.suptitle("real healthy slices (model range)")
plt.show()

# %% [markdown]
# ## The networks
#
# One implementation serves 64…1024 px: the generator adds one up-block per doubling (at 512 px it
# ends one block before FastGAN's 1024 px), the discriminator reduces any size to 8×8.

# %%
cfg = FastGANConfig(
    image_size=image_size, nz=nz, ngf=ngf, ndf=ndf, dec_in=dec_in, steps=steps, batch_size=batch_size,
    lr=lr, ema_decay=ema_decay, augment=augment, sample_every=sample_every, ckpt_every=ckpt_every,
)
print(f"G: {count_parameters(Generator(cfg)):,} parameters | D: {count_parameters(Discriminator(cfg)):,} parameters")

# %% [markdown]
# ## Training the ensemble
#
# Each member trains in `gan/member_k/` with seed `seed + 1000·k`; `gan/ensemble.json` describes the
# ensemble for notebooks 03, 04 and 06. Checkpoints are written every
# `ckpt_every` steps; re-running the notebook with `resume = True` continues where it stopped. After
# every step an exponential moving average (EMA) of G's weights is updated: the EMA generator gives
# smoother samples and is the one used downstream. Its decay sets how many recent steps it averages
# (about `1 / (1 − decay)`): FastGAN's 0.999 suits long runs; a short CPU run needs ~0.99, or the average
# would still be dominated by the random initial weights.

# %%
results = gan2d.train_gan(run, cfg, n_members, dev, seed, resume)
run.ensemble("gan").info["timing"]

# %% [markdown]
# ## Samples as training goes
#
# The same fixed latent vectors, drawn by member 0's EMA generator at successive checkpoints: first
# blobs, then a skull ring, then the brain inside it.

# %%
with np.load(out_dir / "member_0" / "samples.npz") as s:
    snaps, snap_steps = s["images"], s["steps"]
rows = np.linspace(0, len(snaps) - 1, min(5, len(snaps))).astype(int)
fig, axes = plt.subplots(len(rows), n_show, figsize=(1.6 * n_show, 1.6 * len(rows)), squeeze=False)
for r, i in enumerate(rows):
    for c in range(n_show):
        axes[r, c].imshow(snaps[i, c % snaps.shape[1]], cmap="gray", vmin=-1, vmax=1)
        axes[r, c].set_xticks([])
        axes[r, c].set_yticks([])
    axes[r, 0].set_ylabel(f"step {snap_steps[i]}")
fig.tight_layout()
fig.savefig(out_dir / "samples_during_training.png", dpi=100)
plt.show()

# %% [markdown]
# ## Loss curves
#
# With the hinge loss a balanced game keeps $\mathcal L_D$ around 1–2 and D's mean outputs on real and
# generated images apart but not diverging. A collapsing $\mathcal L_D \to 0$ means D has won (G gets
# no useful gradient); the decoder loss $\mathcal L_{rec}$ should fall steadily.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
for k, r in enumerate(results):
    h = r.history
    axes[0].plot(h["step"], h["loss_d"], label=f"member {k}")
    axes[1].plot(h["step"], h["loss_g"], label=f"member {k}")
    axes[2].plot(h["step"], h["loss_rec"], label=f"member {k}")
for ax, t in zip(axes, ["D hinge + reconstruction", "G: -E[D(G(z))]", "D decoders (L1)"]):
    ax.set_title(t)
    ax.set_xlabel("step")
    ax.legend()
fig.tight_layout()
fig.savefig(out_dir / "loss_curves.png", dpi=100)
plt.show()

# %% [markdown]
# ## Real, generated, and the nearest training slice
#
# A GAN trained on few images may **memorise** them. For each generated slice (middle row) we look up
# the training slice with the smallest mean squared distance (bottom row): a generator that creates
# new heads shows clear differences, one that copies shows twins (RMSE near 0).

# %%
Gs = [gan2d.load_generator(d, dev) for d in run.ensemble("gan").members]
fake = gan2d.generate(Gs[0], n_show, seed=seed + 1)
idx, rmse = gan2d.nearest_training_images(fake, x_small)
real = x_small[np.random.default_rng(seed).choice(len(x_small), n_show, replace=False)]
fig, axes = plt.subplots(3, n_show, figsize=(1.8 * n_show, 5.8))
for c in range(n_show):
    for r, (img, title) in enumerate([(real[c], "real"), (fake[c], "generated"), (x_small[idx[c]], f"nearest, RMSE {rmse[c]:.3f}")]):
        axes[r, c].imshow(img, cmap="gray", vmin=-1, vmax=1)
        axes[r, c].axis("off")
        axes[r, c].set_title(title, fontsize=7)
fig.tight_layout()
fig.savefig(out_dir / "real_generated_nearest.png", dpi=100)
plt.show()
print(f"median RMSE of a sample to its nearest training slice: {np.median(rmse):.3f}")

# %% [markdown]
# ## The ensemble side by side
#
# The members start from different random weights and see the data in a different order, so they
# learn slightly different heads. Where one member fails to draw a detail, the other two outvote it
# later (notebook 04).

# %%
fig, axes = plt.subplots(n_members, n_show, figsize=(1.6 * n_show, 1.7 * n_members), squeeze=False)
for m, G in enumerate(Gs):
    imgs = gan2d.generate(G, n_show, seed=seed + 7)
    for c in range(n_show):
        axes[m, c].imshow(imgs[c], cmap="gray", vmin=-1, vmax=1)
        axes[m, c].set_xticks([])
        axes[m, c].set_yticks([])
    axes[m, 0].set_ylabel(f"member {m}")
fig.tight_layout()
fig.savefig(out_dir / "ensemble_samples.png", dpi=100)
plt.show()

# %% [markdown]
# ## Exercises
#
# Predict first, then run. Each exercise has an answer cell (your prediction, `None` until you answer, and
# the one parameter to change), a computation that reads what this notebook trained under `run_dir` (no
# training), and a self-check that compares your prediction with what the computation found. The logic
# lives in `ctad_core/exercises.py`.
#
# ### Exercise 2.1 · Does the generator copy its training slices?
#
# A generator that memorised its few training slices draws near-copies of them. **Predict:** do generated
# slices lie *closer* to their nearest training slice than real training slices lie to their nearest other
# training slice? Then change `member` and `n_samples` and look again.

# %%
samples_closer = None  # your prediction: True (closer: it copies) or False (farther: it draws new heads)
member = 0  # the parameter to change: which ensemble member generates
n_samples = 32

# %%
from ctad_core import exercises as ex

G_ex = gan2d.load_generator(run.ensemble("gan").members[member], dev)
mem = ex.memorisation(gan2d.generate(G_ex, n_samples, seed=seed + 11), x_small)
{k: round(v, 4) if isinstance(v, float) else v for k, v in mem.items()}

# %%
print(ex.check_memorisation(samples_closer, mem))

# %% [markdown]
# ### Exercise 2.2 · Does training bring the samples' grey levels toward real CT?
#
# `samples.npz` keeps the same latent vectors drawn at successive checkpoints. The distance below compares
# the histogram of all their pixel values with that of the real training slices (Wasserstein-1, in
# model-range units: 0 = the same histogram). **Predict:** is the last checkpoint closer to the real grey
# levels than the first? Change `progress_member` to see whether every member learns alike.

# %%
last_closer = None  # your prediction: True or False
progress_member = 0  # the parameter to change

# %%
with np.load(run.ensemble("gan").members[progress_member] / "samples.npz") as s:
    ex_snaps, ex_steps = s["images"], s["steps"]
dist = ex.intensity_distance(ex_snaps, x_small)
fig, ax = plt.subplots(figsize=(5, 2.8))
ax.plot(ex_steps, dist, "o-")
ax.set_xlabel("training step")
ax.set_ylabel("W1 to real grey levels")
ax.set_title(f"member {progress_member}")
plt.show()

# %%
print(ex.check_progress(last_closer, dist))

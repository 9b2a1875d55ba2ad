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
# # 03 · An encoder into the generator's latent space
#
# **Step 2 of seed 000.** The trained generator draws a healthy slice from any $z \in [-1,1]^{512}$.
# To reconstruct a *given* slice $x$ we need the $z$ whose drawing looks like it. An encoder $E$ learns
# that mapping in one forward pass, with $G$ frozen and $D$ unused (seed Eq. 3):
#
# $$\mathcal L_E = \mathbb E_x\left[ w_1\,\ell_{percept}(x, G(E(x))) + w_2\,\ell_{MSE}(x, G(E(x)))\right],\quad w_1 = 1,\ w_2 = 10.$$
#
# - **Architecture** (seed Fig. 2): down-sampling blocks of a stride-2 convolution, batch normalisation
#   and a gated linear unit (GLU) — eight blocks at 512 px, `log2(size) − 1` in general — then a
#   linear layer to 512 numbers and `tanh`, so that $E(x)$ lies in G's latent box.
# - **Random erasing** with probability 0.25: a random rectangle of the input is set to the background
#   (air). The loss still compares with the *whole* slice, so E cannot learn the identity; it must
#   fill holes with healthy anatomy — exactly what it has to do with a lesion at test time.
# - **Perceptual loss**: the seed uses a VGG network pretrained on ImageNet (Johnson et al.). Nothing
#   can be downloaded here, so by default the feature space is the one the workbook trained itself:
#   the **discriminator's** features from notebook 02 (`feature_space = "discriminator"`). With a local
#   copy of torchvision's `vgg16-397923af.pth`, set `feature_space = "vgg16"` and `vgg_weights` to its
#   path. Every number below says which feature space it came from.
#
# One encoder is trained per ensemble member (its own generator). The seed trains 20 000 steps; the
# `quick` profile a few hundred.

# %% tags=["parameters"]
run_dir = "runs/quick"
seed = 0
device = "auto"
steps = 300
batch_size = 8
width = 16
lr = 0.001
w_percept = 1.0
w_mse = 10.0
erase_p = 0.25
feature_space = "discriminator"
vgg_weights = ""
ckpt_every = 100
resume = True
n_show = 6
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
from ctad_core.methods.fastgan.model import EncoderConfig
from ctad_core.methods.fastgan.restore import encode_reconstruct
from ctad_core.nn.augment import random_erase
from ctad_core.run import Run
from ctad_core.utils import describe_device, resolve_device, seed_everything
from ctad_core.workbook import resolve_run_dir

if threads:
    torch.set_num_threads(threads)
dev = resolve_device(device)
seed_everything(seed)
run_dir = resolve_run_dir(run_dir)  # one run_dir whether run by `ctad run`, `ctad lab` or opened in place
run = Run(run_dir)
out_dir = run.stage("encoder", create=True)
window = run.window()
gans = run.ensemble("gan")
n_members, image_size, nz = gans.n_members, gans.config["image_size"], gans.config["nz"]
print("device:", describe_device(dev), f"| {n_members} generators of {image_size} px, nz = {nz}")

# %% [markdown]
# ## Random erasing
#
# What the encoder sees during training: a quarter of the inputs carry a blank box.

# %%
train = run.slices("train")
x_train = to_model(train.image, window)
xt = gan2d.prepare_slices(x_train, image_size)
erased, which = random_erase(xt[: 4 * n_show], p=erase_p, generator=torch.Generator().manual_seed(seed))
fig, axes = plt.subplots(1, n_show, figsize=(2 * n_show, 2.2))
order = torch.argsort(which.int(), descending=True)[:n_show]
for ax, i in zip(axes, order):
    ax.imshow(erased[i, 0], cmap="gray", vmin=-1, vmax=1)
    ax.set_title("erased" if which[i] else "as is", fontsize=8)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Training the encoders

# %%
cfg = EncoderConfig(
    image_size=image_size, nz=nz, width=width, steps=steps, batch_size=batch_size, lr=lr,
    w_percept=w_percept, w_mse=w_mse, erase_p=erase_p, feature_space=feature_space,
    vgg_weights=vgg_weights, ckpt_every=ckpt_every,
)
results = gan2d.train_encoders(run, cfg, dev, seed, resume)

# %% [markdown]
# ## Loss curves
#
# The total loss (perceptual + 10 · MSE) and the pixel MSE alone; both should fall and flatten.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for k, r in enumerate(results):
    axes[0].plot(r.history["step"], r.history["loss"], label=f"member {k}")
    axes[1].plot(r.history["step"], r.history["mse"], label=f"member {k}")
axes[0].set_title(f"encoder loss ({feature_space} features + 10·MSE)")
axes[1].set_title("MSE(x, G(E(x)))")
for ax in axes:
    ax.set_xlabel("step")
    ax.set_yscale("log")
    ax.legend()
fig.tight_layout()
fig.savefig(out_dir / "loss_curves.png", dpi=100)
plt.show()

# %% [markdown]
# ## Reconstructions of healthy validation slices
#
# Top: input; below: $G_m(E_m(x))$ for each member. A good encoder keeps the skull shape, ventricles
# and overall grey levels; fine sulci are beyond a small quick-profile model.

# %%
val = run.slices("val")
healthy = val.subset(val.slice_label == 0)
xv = gan2d.prepare_slices(to_model(healthy.image, window), image_size)[:n_show]
recs = []
for g, e in zip(gans.members, run.ensemble("encoder").members):
    _, rec, _ = encode_reconstruct(gan2d.load_encoder(e, dev), gan2d.load_generator(g, dev), xv)
    recs.append(rec[:, 0].numpy())
fig, axes = plt.subplots(1 + n_members, len(xv), figsize=(1.9 * len(xv), 2 * (1 + n_members)), squeeze=False)
for c in range(len(xv)):
    axes[0, c].imshow(xv[c, 0], cmap="gray", vmin=-1, vmax=1)
    for m in range(n_members):
        axes[m + 1, c].imshow(recs[m][c], cmap="gray", vmin=-1, vmax=1)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
axes[0, 0].set_ylabel("input")
for m in range(n_members):
    axes[m + 1, 0].set_ylabel(f"G{m}(E{m}(x))")
fig.tight_layout()
fig.savefig(out_dir / "healthy_reconstructions.png", dpi=100)
plt.show()
print("RMSE per member (model range):", [float(np.sqrt(np.mean((r - xv[:, 0].numpy()) ** 2))) for r in recs])

# %% [markdown]
# ## Exercises
#
# Predict first, then run. Each exercise has an answer cell (your prediction, `None` until you answer, and
# the one parameter to change), a computation with the networks this notebook and notebook 02 trained (no
# training), and a self-check that compares your prediction with what the computation found. The logic
# lives in `ctad_core/exercises.py`.
#
# ### Exercise 3.1 · One encoder pass or many restoration steps?
#
# Notebook 04 can also find $z$ by optimisation: start at $z = 0$ (the seed's choice) and take Adam steps on
# the MSE between $x$ and $G(z)$. **Predict:** after `restore_steps` steps, is restoration's reconstruction
# closer to the healthy validation slices (lower RMSE) than member 0's encoder, $G(E(x))$? Then change
# `restore_steps` (5, 50, 200) and watch RMSE and time.

# %%
restoration_better = None  # your prediction: True or False
restore_steps = 20  # the parameter to change

# %%
from ctad_core import exercises as ex

G_ex = gan2d.load_generator(gans.members[0], dev)
E_ex = gan2d.load_encoder(run.ensemble("encoder").members[0], dev)
speed = ex.encoder_vs_restoration(E_ex, G_ex, xv.to(dev), restore_steps)
print(f"encoder: {speed['encoder_s']:.3f} s, RMSE {speed['encoder_rmse']:.4f} | "
      f"restoration, {restore_steps} steps: {speed['restoration_s']:.3f} s, RMSE {speed['restoration_rmse']:.4f}")

# %%
print(ex.check_restoration_better(restoration_better, speed))

# %% [markdown]
# ### Exercise 3.2 · What does the encoder draw into a blank?
#
# Random erasing trained the encoder on inputs with a blank box, against the *whole* slice. Here a central
# box of the healthy validation slices is blanked to air. **Predict:** does $G(E(x))$ draw *anatomy* into
# the box, or copy the *air*? Change `box_fraction` (the box's side as a fraction of the slice) and look.

# %%
box_filled_with = None  # your prediction: "anatomy" or "air"
box_fraction = 0.3  # the parameter to change, in (0, 1)

# %%
fill = ex.erased_box_fill(E_ex, G_ex, xv.to(dev), box_fraction)
fig, axes = plt.subplots(2, len(xv), figsize=(1.9 * len(xv), 4), squeeze=False)
for c in range(len(xv)):
    axes[0, c].imshow(fill["erased"][c], cmap="gray", vmin=-1, vmax=1)
    axes[1, c].imshow(fill["recon"][c], cmap="gray", vmin=-1, vmax=1)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
axes[0, 0].set_ylabel("blanked input")
axes[1, 0].set_ylabel("G0(E0(x))")
plt.show()

# %%
print(ex.check_fill(box_filled_with, fill))

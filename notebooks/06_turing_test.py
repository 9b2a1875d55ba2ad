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
# # 06 · Visual Turing test of the generated images
#
# Anomaly detection by restoration only works if the generator produces **realistic healthy head CT**:
# whatever it cannot draw will light up as an "anomaly". Seed 000 (Walluscheck et al. 2024) checks this
# with a *visual Turing test*: 25 real and 25 generated slices are shuffled and experts say, for each,
# whether it is real or generated (their Table 2).
#
# This notebook
#
# 1. draws `n_per_class` real healthy test slices and `n_per_class` generator samples with one `seed`,
# 2. writes a **blinded gallery** — every file is an 8-bit gray PNG of the same size and windowing, with a
#    random hex name, no metadata chunks and the same file time — and keeps the **answer key apart**
#    in `turing/key/` (do not show that folder to readers),
# 3. gives each reader a JupyterLab **rater** (one image at a time, *Real* / *Generated*),
# 4. adds a **machine observer** — a cross-validated logistic regression on simple image features — as one
#    more reader, and
# 5. scores everybody exactly as Table 2.
#
# **Which class is positive?** The footnote of Table 2 says TP = correctly classified *generated* images
# and TN = correctly classified *real* images, so *generated* is the positive class:
# recall = TP / (TP + FN) is the share of generated images that were caught, precision = TP / (TP + FP) the
# share of "generated" answers that were right. (The published recall and precision rows are swapped
# relative to these formulas — reader A's 7/25 = 0.28 is printed as precision — and the radiologists' mean
# TP is printed 21.5 for (22 + 19)/2 = 20.5; we compute the formulas as written.) A reader who cannot tell
# the classes apart scores accuracy ≈ 0.5.

# %% tags=["parameters"]
run_dir = "runs/quick"
seed = 0
device = "auto"
n_per_class = 25  # seed 000: 25 real + 25 generated
image_size = 256  # side of every gallery PNG
split = "test"  # real images: healthy slices of this split
gan_member = 0  # which ensemble member generates
machine_extra = 100  # extra images per class (not in the gallery) that the machine observer may learn from
machine_folds = 5
reader = ""  # set a name (e.g. "A") to rate in JupyterLab
reader_group = ""  # e.g. "radiologists" or "scientists"
simulate_readers = False  # smoke/demo only: two simulated readers so the scoring path runs without people

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from ctad_core import turing
from ctad_core.frontend import headless
from ctad_core.methods.fastgan.sampling import generated_images, real_images
from ctad_core.run import Run
from ctad_core.utils import describe_device, resolve_device, seed_everything, write_json
from ctad_core.workbook import resolve_run_dir

seed_everything(seed)
dev = resolve_device(device)
run_dir = resolve_run_dir(run_dir)  # one run_dir whether run by `ctad run`, `ctad lab` or opened in place
root = Run(run_dir).stage("turing", create=True)
print("device:", describe_device(dev), "· gallery under", root)

# %% [markdown]
# ## Draw the images
#
# Real images are healthy slices of the `split` set, windowed exactly as the models see them
# (`ctad_core.data.windows.to_display`); generated images are samples of FastGAN member `gan_member`
# (written by notebook 02), mapped from [-1, 1] to the same [0, 1] display range. Both are then resized to
# `image_size` with the same interpolation and quantised to 8 bits (`turing.to_gallery_image`).

# %%
n_need = n_per_class + machine_extra
gen = generated_images(run_dir, n_need, seed=seed, member=gan_member, device=str(dev))
real = real_images(run_dir, split, "healthy")
print(f"{len(real)} real healthy {split} slices {real.shape[1:]}, {len(gen)} generated {gen.shape[1:]}")
if len(real) < n_per_class:
    raise ValueError(f"only {len(real)} real healthy {split} slices; lower n_per_class (now {n_per_class})")

# the first n_per_class generated samples feed the gallery pool; the rest (and unused real slices) are extras
rng = np.random.default_rng(seed)
real_order = rng.permutation(len(real))
gal_real, extra_real = real[real_order[:n_per_class]], real[real_order[n_per_class:n_need]]
gal_gen, extra_gen = gen[:n_per_class], gen[n_per_class:]

# %% [markdown]
# ## Write the blinded gallery and the key

# %%
gallery = turing.build_gallery(gal_real, gal_gen, root, n=n_per_class, seed=seed, size=image_size,
                               sources={"real": f"{split} healthy slices", "generated": f"gan/member_{gan_member}"})
turing.check_blind(gallery)
print(f"{len(gallery.images)} images in {gallery.gallery_dir}; key in {gallery.key_dir} (keep it from readers)")

names, shown = turing.load_gallery_images(gallery)
fig, axes = plt.subplots(2, 8, figsize=(12, 3.4))
for ax, name, im in zip(axes.ravel(), names, shown):
    ax.imshow(im, cmap="gray", vmin=0, vmax=1)
    ax.set_title(name[:6], fontsize=7)
    ax.axis("off")
fig.suptitle("the first gallery images, as readers see them — real or generated?")
plt.show()

# %% [markdown]
# ## Rate (people, in JupyterLab)
#
# Set `reader` (and `reader_group`) in the parameters cell and run the next cell: the rater shows one image
# at a time and saves every answer to `turing/responses/<reader>.csv` at once, so you can stop and resume.
# Readers should see only this widget — not the key, not this notebook's other outputs.

# %%
if reader and headless():
    print(f"reader {reader!r} is set, but this run is headless (no JupyterLab): open the notebook to rate")
elif reader:
    display(turing.rater(gallery, reader, group=reader_group))
else:
    print("no reader set: skip rating (set `reader` in the parameters cell to rate)")

# %% [markdown]
# ## The machine observer
#
# A logistic regression on an intensity histogram, a 16×16 thumbnail, gradient statistics and the radially
# averaged power spectrum (GAN up-sampling leaves traces at high spatial frequencies). With
# `StratifiedKFold`, every gallery image is judged by a model that never saw it; extra real and generated
# images (outside the gallery) only enlarge the training folds. A machine accuracy far above 0.5 means
# the generated images differ *statistically*, even if people cannot see it.

# %%
mo = turing.machine_observer(gallery, extra_real, extra_gen, n_splits=machine_folds, seed=seed)
print(f"machine observer: cross-validated accuracy {mo['cv_accuracy']:.3f}, AUROC {mo['cv_auroc']:.3f} "
      f"on {mo['n_pool']} images ({mo['n_splits']} folds)")

if simulate_readers:  # demonstration only — never mix with real readers' results
    turing.simulate_reader(gallery, "sim_A", 0.5, seed=seed + 1, group="simulated")
    turing.simulate_reader(gallery, "sim_B", 0.8, seed=seed + 2, group="simulated")

# %% [markdown]
# ## Scores (seed 000 Table 2)
#
# In JupyterLab this cell scores only readers who answered every image: with *Run All* it runs before
# anyone has rated, and then says so. **Rate first, then re-run this cell.** A headless run (`ctad run`)
# scores every reader found (the simulated ones on the smoke profile).

# %%
scores = turing.score_gallery(gallery, complete_only=not headless())
scores["machine_observer"] = mo
write_json(root / "scores.json", scores)
message = turing.scores_message(scores)
if message:
    display(Markdown(message))
else:
    display(Markdown((root / "scores.md").read_text()))
    print("positive class:", scores["positive"], "· readers:", sorted(scores["readers"]))

# %% [markdown]
# ## Exercises
#
# Predict first, then run. Each exercise has an answer cell (`None` until you answer, and the one parameter
# to change), a computation on this notebook's gallery and scores, and a self-check that compares your
# answer with what the computation found. The logic lives in `ctad_core/exercises.py`.
#
# ### Exercise 6.1 · People or the machine observer?
#
# **Predict:** on this gallery, is the machine observer more accurate than the readers on average? (With
# `simulate_readers` the readers are simulated — one guessing, one right 80 % of the time.) Then rate
# yourself: set `reader` in the parameters cell, rate in JupyterLab, run the scores cell again and this
# exercise again.

# %%
machine_beats_readers = None  # your prediction: True or False

# %%
from ctad_core import exercises as ex

hvm = ex.human_vs_machine(scores)
print("readers:", {k: round(v, 3) for k, v in hvm["readers"].items()}, "| machine observer:", round(hvm["machine"], 3))

# %%
print(ex.check_machine_beats(machine_beats_readers, hvm))

# %% [markdown]
# ### Exercise 6.2 · Be a reader
#
# The first `n_guess` gallery images are shown below, numbered. Write one letter per image into
# `my_guesses`, `R` for real and `G` for generated (e.g. `"RGGRGRRG"`); the check scores you against the
# key. How many would a coin get right?

# %%
my_guesses = None  # your answer: a string of R and G, one letter per image shown
n_guess = 8  # the parameter to change: how many images to judge

# %%
n_guess = min(n_guess, len(names))
fig, axes = plt.subplots(1, n_guess, figsize=(1.6 * n_guess, 1.9), squeeze=False)
for j, ax in enumerate(axes[0]):
    ax.imshow(shown[j], cmap="gray", vmin=0, vmax=1)
    ax.set_title(str(j + 1), fontsize=9)
    ax.axis("off")
plt.show()

# %%
print(ex.check_guesses(my_guesses, names[:n_guess], gallery.key()))

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
# # 01 · Data preparation: a head CT as the models see it
#
# Every method in this workbook learns what a **healthy** head CT looks like and flags whatever it cannot
# reproduce. This notebook prepares the data all later notebooks read from `run_dir/data/`:
#
# 1. **Hounsfield units and windows** — why a brain window of 80 HU hides almost everything but the brain;
# 2. **the phantoms** — the workbook's default data: synthetic head CTs built from the ICBM152 template
#    that ships with nilearn (no download), with voxel masks for nine lesion kinds, and what makes them
#    hard the way real head CT is hard: bright normal anatomy, a skull base with its beam-hardening
#    artefacts, lesions an intensity rule misses, and a different scanner setting for every patient;
# 3. **skull stripping vs full head** — the comparison of seed 002 (CTFSH);
# 4. **the prepared set** — 2D mid-axial slices (seed 000) and 3D volumes (seeds 001, 002, 004) of the same
#    patients, split by patient into train (healthy only), validation and test.
#
# Real scans (RSNA, CQ500, PhysioNet CT-ICH, a folder of DICOM/NIfTI) take the same road: set `source`
# and `source_path` below.

# %% tags=["parameters"]
run_dir = "runs/quick"
seed = 0
device = "auto"
source = "phantom"  # phantom | rsna | cq500 | physionet | folder
source_path = ""  # root folder of a real data set, for any source but phantom
prep = {}  # real data: preprocessing options passed to ctad_core.data.datasets.prepare_source
window = "brain"  # the models' window: a preset name or [lower, upper] HU
n_train = 60
n_val_healthy = 10
n_test_healthy = 40
n_val_per_kind = 2
n_test_per_kind = 16
kinds = None  # lesion kinds to include; None: all of ctad_core.kinds.LESION_KINDS
shape_3d = [64, 64, 64]
size_2d = 64
slices_2d = 5
slice_mm = 5.0
fov_mm = 230.0
aligned = True  # phantoms in the template pose, as the seeds registered their scans
acquisition = {}  # overrides of ctad_core.data.phantom_acquisition.ACQUISITION_DEFAULTS (kernels, slice_mm, ...)
workers = 0  # processes for building phantoms, 0 for one per core
gallery_size = 192  # pixels of the teaching figures' phantoms

# %% [markdown]
# ## Setup

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from ctad_core import viz
from ctad_core.data import checks
from ctad_core.data import phantom as ph
from ctad_core.data.manifest import load_slices, load_volumes, read_manifest
from ctad_core.data.phantom_acquisition import KERNELS, acquisition_ranges
from ctad_core.data.phantom_set import PhantomSetSpec, prepare_phantoms
from ctad_core.data.windows import WINDOWS, window_bounds
from ctad_core.kinds import LESION_KINDS
from ctad_core.utils import seed_everything
from ctad_core.workbook import resolve_run_dir

kinds = list(LESION_KINDS if kinds is None else kinds)

seed_everything(seed)
run_dir = resolve_run_dir(run_dir)  # one run_dir whether run by `ctad run`, `ctad lab` or opened in place
data_dir = run_dir / "data"
data_dir.mkdir(parents=True, exist_ok=True)
fig_dir = data_dir / "figures"
fig_dir.mkdir(exist_ok=True)
print("run_dir:", run_dir.resolve())

# %% [markdown]
# ## 1 · Hounsfield units and windows
#
# CT measures X-ray attenuation in Hounsfield units: air −1000, water 0, brain 20–45, blood 50–90, bone up
# to ~2000. A screen shows ~256 grey levels, so we *window*: map `[lower, upper]` HU to black…white and
# clip the rest. The brain window (level 40, width 80 → [0, 80] HU) spends every grey level on the
# 30-HU range where grey matter, white matter, CSF and fresh blood differ; bone and air saturate. Each seed
# chose its own window for the model's input, listed with the radiological presets below.

# %%
head = ph.make_phantom(seed, "healthy", shape=(1, gallery_size, gallery_size), spacing=(5.0, 230 / gallery_size, 230 / gallery_size))
names = ["brain", "subdural", "stroke", "bone", "ctfsh", "viana"]
fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 2.9))
for ax, name in zip(axes, names):
    lo, hi = WINDOWS[name]
    viz.show_ct(ax, head.hu[0], name, f"{name}\n[{lo:g}, {hi:g}] HU")
fig.suptitle("one phantom slice, six windows", y=1.02)
fig.savefig(fig_dir / "windows.png", dpi=100, bbox_inches="tight")
plt.show()

# %%
fig, ax = plt.subplots(figsize=(8, 3))
ax.hist(head.hu[0].ravel(), bins=np.arange(-1050, 2000, 10), color="0.3", log=True)
for label, (lo, hi), c in [("brain window", WINDOWS["brain"], "tab:blue"), ("bone window", WINDOWS["bone"], "tab:orange")]:
    ax.axvspan(lo, hi, alpha=0.15, color=c, label=label)
ax.set_xlabel("HU")
ax.set_ylabel("pixels (log)")
ax.legend()
ax.set_title("HU histogram: air, fat, soft tissue and bone peaks")
plt.show()

# %% [markdown]
# ## 2 · The phantoms
#
# A phantom is the ICBM152 brain (grey/white matter probabilities, CSF as what is neither) placed in a
# head: a CSF rim, a skull whose two tables (~1800 HU) enclose the diploe, a scalp with its dark fat band,
# then air. Each "patient" differs by pose (rotation, scale, shift), a smooth elastic warp, skull and scalp
# thickness, ventricle size and sulcal width (a normal-ageing spectrum) and tissue contrast. The scanner
# adds partial volume, thick-slice averaging, blur and **spatially correlated** noise (3–5 HU at 5 mm).
#
# The generator also returns the tissue label map, so we can check the HU it produced against the reference
# ranges (REFERENCE.md). **Where** we measure matters. The label map names the tissue at each voxel's
# centre, but a voxel's HU is the average over the voxel — and over 5 mm along z for a thick slice. The
# skin-galea is 1 mm thick, the CSF rim 1–2.5 mm, the skull's tables under 2 mm: on a 0.9 mm × 5 mm grid
# their voxels are mostly their neighbours (*partial volume*), and a median over them says nothing about
# the tissue.
#
# So the check (`ctad_core.data.checks.tissue_hu_table`) reads the anatomy's own HU: one axial slice of
# patient `seed` at **0.5 mm pixels and 0.5 mm slice thickness, point-sampled, noise-free, without blur or
# artefacts**, and for each tissue only its **core** — the voxels at least one voxel away from any other
# tissue. `check` is `pass` when the core's median lies in the reference range; a `flag` comes with the
# reason in `why`.

# %%
check_cols = ["voxels", "core voxels", "median HU (core)", "reference HU", "check", "why"]
fine = checks.tissue_check_phantom(seed)
tissue_table = checks.tissue_hu_table(fine)
print("measured on:", tissue_table["grid"].iloc[0], "· noise-free, no blur, core = eroded by 1 voxel")
display(tissue_table[check_cols])

# %% [markdown]
# The same head on the gallery's grid (0.9 mm pixels, 5 mm slices, each voxel the mean of its sub-samples):
# thin layers have no core at all or a core that is still a blend along z, and the check flags them with
# that reason. This is what a scanner does to thin structures too — one reason the models see a blurred
# skin and skull.

# %%
clean = ph.make_phantom(seed, "healthy", shape=(1, 256, 256), spacing=(5.0, 0.9, 0.9), noise=False, blur=False)
display(checks.tissue_hu_table(clean)[["median HU (all)", *check_cols]])
fig, axes = plt.subplots(1, 2, figsize=(9.5, 4))
viz.show_ct(axes[0], clean.hu[0], "brain", "noise-free, brain window")
viz.show_labels(axes[1], clean.tissue[0], ph.TISSUE_CODES, "tissue labels")
plt.show()

# %% [markdown]
# ### Bright normal anatomy
#
# Inside a real skull much that is bright is normal, and an anomaly detector must learn it: the **dural
# venous sinuses** (unenhanced blood, ~52 HU — superior sagittal under the vault, transverse along the
# occipital bone, straight sinus behind the pineal), the **falx and tentorium** (thin, slightly dense dura,
# visible on ~90 % of normal scans) and **physiological calcification**: pineal (~70 % of adults),
# choroid plexus (~65 %), basal ganglia (punctate in ~17 %, coarse in ~1–2 %) and falx (~30 %), all
# rising with age. `ctad_core.data.phantom_anatomy` cites the sources of each value and frequency. Red
# outlines the structure's label; the text gives its label's median HU in this slice.

# %%
g = gallery_size
px = 230 / g


def axial_view(s, params, z_mm, shape_z=1):
    """One noise-free axial slice ``z_mm`` above the mid-axial level of patient ``s``."""
    return ph.make_phantom(s, shape=(shape_z, g, g), spacing=(5.0, px, px), offset_mm=(z_mm, 0.0, 0.0), noise=False,
                           params=params)


tpl_mid = ph.load_template().midaxial_z
P0 = ph.sample_patient(seed, aligned=True)
seed_bg, P_bg = ph.find_patient(lambda P: P["anatomy"]["bg_calc"] == "patchy", aligned=True, start=seed)
seed_fx, P_fx = ph.find_patient(lambda P: P["anatomy"]["falx_calc"], aligned=True, start=seed)
falx_z = max(c["centre"][0] for c in P_fx["anatomy"]["calcs"] if c["site"] == "falx") - tpl_mid
views = [
    (seed, P0, 25.0, ("dura", "sinus"), "falx and superior sagittal sinus"),
    (seed, P0, -31.0, ("dura", "sinus"), "tentorium, straight sinus"),
    (seed, P0, -38.0, ("sinus",), "transverse sinuses, torcula"),
    (seed_bg, P_bg, -21.0, ("calcification",), "basal ganglia calcification"),
    (seed_fx, P_fx, falx_z, ("calcification",), "falx calcification"),
]
fig, axes = plt.subplots(1, len(views), figsize=(3.2 * len(views), 3.6))
for ax, (s, P, z_mm, labels, title) in zip(axes, views):
    v = axial_view(s, P, z_mm)
    m = np.isin(v.tissue[0], [ph.TISSUE_CODES[n] for n in labels])
    med = f"{np.median(v.hu[0][m]):.0f} HU" if m.any() else "—"
    viz.show_ct(ax, v.hu[0], "brain", f"{title}\n{z_mm:+.0f} mm · {med}", mask=m)
fig.suptitle("bright normal anatomy (brain window, label outlined)", y=1.02)
fig.savefig(fig_dir / "normal_anatomy.png", dpi=100, bbox_inches="tight")
plt.show()

# %% [markdown]
# ### The skull base and beam hardening
#
# The template stops at the brain, so the phantom builds the floor itself: thick dense bone under the
# anterior, middle and posterior fossae, petrous pyramids (~2000 HU) between temporal lobe and cerebellum,
# and the soft tissue of face and neck below. Dense bone hardens the X-ray beam: a **dark band between the
# petrous bones** across the posterior fossa (with fainter streaks fanning out) and a **bright cupping rim**
# a few HU deep under the inner table. Both are painted in the scanner's axial planes, so a tilted head
# tilts the anatomy but not the streaks. Low slices of a volume have bone partial volume next to brain; the
# mid-axial 2D slices (±12 mm) see little of it — only the cupping rim.

# %%
n3 = max(32, g // 2)
sp3 = 230 / n3
head3 = ph.make_phantom(seed, shape=(n3, n3, n3), spacing=(sp3, sp3, sp3), noise=False, params=P0)


def plane(z_template):
    """Index of the volume plane at template height ``z_template`` (the grid is centred on the mid-axial level)."""
    return int(np.clip(round((n3 - 1) / 2 + (z_template - tpl_mid) / sp3), 0, n3 - 1))


zp, zm = plane(-36.0), plane(tpl_mid + 30.0)
fig, axes = plt.subplots(1, 5, figsize=(16, 3.6))
viz.show_ct(axes[0], head3.hu[zp], "brain", "petrous level, brain window")
viz.show_ct(axes[1], head3.hu[zp], "bone", "petrous level, bone window")
for ax, z, t in ((axes[2], zp, "beam hardening at the petrous level"), (axes[3], zm, "cupping only, +30 mm")):
    viz.show_map(ax, head3.artefact[z], f"{t}\n(HU added)", cmap="RdBu_r", vmin=-20, vmax=20)
viz.show_labels(axes[4], viz.sagittal(head3.tissue), ph.TISSUE_CODES, "tissue labels, midline sagittal", oriented=True)
fig.savefig(fig_dir / "skull_base.png", dpi=100, bbox_inches="tight")
plt.show()

# %% [markdown]
# ### Acquisition: kernel, noise and slice thickness per patient
#
# Real sets mix scanners and protocols. Each phantom patient draws a reconstruction **kernel** (smooth,
# standard or sharp: blur, edge enhancement and noise grain), a **noise level** in that kernel's range and a
# **slice thickness** (mostly 5 mm, some thin); the manifest records them per scan, so an evaluation can
# hold some out for a test under acquisition shift, and `render_phantom_scan(item, spec, acquisition=...)`
# renders any scan of the set as another scanner would. The defaults below are parameters (`acquisition`).

# %%
display(pd.DataFrame(KERNELS).T.rename_axis("kernel"))
print("sampling:", acquisition_ranges(acquisition))
fig, axes = plt.subplots(2, 3, figsize=(10, 6.8))
for j, kern in enumerate(KERNELS):
    for i, thick in enumerate((5.0, 0.625)):
        v = ph.make_phantom(seed, shape=(1, g, g), spacing=(5.0, px, px), params=P0, slice_mm=thick,
                            acquisition={"kernel": kern})
        viz.show_ct(axes[i, j], v.hu[0], "brain", f"{kern}, {thick:g} mm · noise SD {v.params['noise_sd']:.1f} HU")
fig.suptitle("one patient, six acquisitions", y=1.01)
fig.savefig(fig_dir / "acquisitions.png", dpi=100, bbox_inches="tight")
plt.show()

# %% [markdown]
# ### The lesions
#
# Nine kinds, each with realistic HU, shape and place (REFERENCE.md), and a voxel mask (red). Mass effect —
# the displacement of normal anatomy around a haematoma or tumour — is recorded separately from the lesion.
# Each lesion sits in the tissue, so it carries the same noise texture as its surroundings.

# %%
kind_window = {"sdh": "subdural", "edh": "subdural", "fracture": "bone"}
slab = 9
fig, axes = plt.subplots(2, len(kinds), figsize=(2.3 * len(kinds), 4.8), squeeze=False)
for j, kind in enumerate(kinds):
    p = ph.make_phantom(seed + 100 + j, kind, shape=(slab, gallery_size, gallery_size), spacing=(5.0, 230 / gallery_size, 230 / gallery_size))
    z = int(np.argmax((p.lesion > 0).sum(axis=(1, 2))))
    viz.show_ct(axes[0, j], p.hu[z], "brain", f"{kind}")
    viz.show_ct(axes[1, j], p.hu[z], kind_window.get(kind, "brain"), kind_window.get(kind, "brain"), mask=p.lesion[z])
fig.suptitle("lesion kinds (top: brain window; bottom: the window a reader would use, mask in red)", y=1.01)
fig.savefig(fig_dir / "lesion_gallery.png", dpi=100, bbox_inches="tight")
plt.show()

# %% [markdown]
# ### Lesion variants: what an intensity rule misses
#
# Every acute haemorrhage is brighter than brain, so a rule that flags high HU finds large fresh bleeds.
# Each kind therefore comes in variants (the manifest's `variant` column; the nine kinds stay the label
# space): **subacute SDH** isodense to cortex (25–40 HU) and **chronic SDH** hypodense; a **hyperacute
# infarct** that is only a few HU of lost grey–white contrast; **small** haemorrhages of a few mm (IPH, EDH,
# a thin IVH layer, focal SAH); **isodense tumours** whose oedema and mass effect give them away.

# %%
pairs = [(k, v) for k in kinds for v in ph.VARIANTS[k]]
ncol = 6
fig, axes = plt.subplots(-(-len(pairs) // ncol), ncol, figsize=(2.4 * ncol, 2.6 * -(-len(pairs) // ncol)),
                         squeeze=False)
for ax in axes.ravel():
    ax.axis("off")
for j, (kind, variant) in enumerate(pairs):
    P = ph.sample_patient(seed + 400 + j, kind, aligned=True, variant=variant)
    v = ph.make_phantom(seed + 400 + j, shape=(slab, g, g), spacing=(5.0, px, px), params=P)
    z = int(np.argmax((v.lesion > 0).sum(axis=(1, 2))))
    viz.show_ct(axes.ravel()[j], v.hu[z], kind_window.get(kind, "brain"), f"{kind} / {variant}", mask=v.lesion[z])
fig.suptitle("lesion variants (mask in red)", y=1.01)
fig.savefig(fig_dir / "lesion_variants.png", dpi=100, bbox_inches="tight")
plt.show()

# %% [markdown]
# **What phantoms still lack.** The skull base is a plausible floor, not anatomy: there are no orbits,
# paranasal sinuses, mastoid air cells, face or teeth (the soft tissue below is one block), and the
# brainstem continues straight down through a ring of bone. Beam hardening and cupping are painted in the
# image rather than reconstructed from projections, so there are no metal, motion or photon-starvation
# streaks and no ring artefacts; the sinuses and dura follow the template's average anatomy (no
# hypoplastic transverse sinus, no arachnoid granulations); calcification is a few ellipsoids; lesions are
# single and of one age (no acute-on-chronic SDH, no haemorrhagic transformation, no multiple
# metastases); fractures are not depressed; there is no contrast agent and no gantry tilt. Models trained
# here learn the brain, calvarium and these mimics — numbers on phantoms are a teaching and regression
# device, not a clinical result.
#
# ## 3 · Skull stripping vs full head
#
# Seed 002 trained every model twice: on the full head and on skull-stripped volumes. Stripping removes the
# brightest, most variable structure (bone), which makes intracranial lesions easier to reconstruct away —
# but also hides fractures and scalp findings. The phantom's intracranial mask is exact; for real scans
# `ctad_core.data.preprocess` strips by thresholding bone, filling and keeping the largest component.

# %%
p = ph.make_phantom(seed + 200, "fracture", shape=(slab, gallery_size, gallery_size), spacing=(5.0, 230 / gallery_size, 230 / gallery_size))
z = int(np.argmax((p.lesion > 0).sum(axis=(1, 2))))
lo, _ = window_bounds(window)
stripped = np.where(p.brain[z] > 0, p.hu[z], lo)
fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
viz.show_ct(axes[0], p.hu[z], "bone", "full head (bone window)", mask=p.lesion[z])
viz.show_ct(axes[1], p.hu[z], window, "full head (model window)")
viz.show_ct(axes[2], stripped, window, "skull-stripped: the fracture is gone")
plt.show()

# %% [markdown]
# ## 4 · The prepared set
#
# One phantom patient is rendered twice from the same seed: a 3D volume (isotropic, `shape_3d`) for the
# volumetric models, and `slices_2d` thick axial slices through the mid-axial level (the level of the
# lateral ventricles, as in seed 000) for the 2D models. The split is **by patient**: training holds
# healthy patients only; validation (to choose thresholds) and test hold both.
#
# All three volumetric seeds registered their scans to a template before training. With `aligned = True`
# the phantoms are rendered in the template's pose — what a perfect affine registration gives — while the
# elastic warp, skull, ventricles, sulci and contrast still vary from patient to patient. With
# `aligned = False` each head keeps a random pose (±10–15°, ±10 mm, scale 0.9–1.1): a model must then
# learn pose as part of "normal", and scan-level scores that average the whole head mostly measure pose
# and head size rather than lesions. Real scans are aligned by `prep = {"align": "affine"}` (to the
# phantom atlas in HU).

# %%
lo, hi = window_bounds(window)
if source == "phantom":
    spec = PhantomSetSpec(
        n_train=n_train, n_val_healthy=n_val_healthy, n_test_healthy=n_test_healthy,
        n_val_per_kind=n_val_per_kind, n_test_per_kind=n_test_per_kind, kinds=tuple(kinds),
        shape_3d=tuple(shape_3d), size_2d=size_2d, slices_2d=slices_2d, slice_mm=slice_mm, fov_mm=fov_mm, seed=seed,
        aligned=aligned, acquisition=acquisition or None,
    )
    manifest = prepare_phantoms(data_dir, spec, window, workers=workers or None)
else:
    from ctad_core.data.datasets import prepare_source

    manifest = prepare_source(source, source_path, data_dir, window=[lo, hi], shape_3d=shape_3d, size_2d=size_2d,
                              slices_2d=slices_2d, seed=seed, **prep)
manifest = read_manifest(run_dir)
pd.crosstab(manifest.kind, manifest.split, margins=True)

# %% [markdown]
# Phantom sets also record, per scan, the lesion's variant, the acquisition and the patient's
# calcifications (real sources leave these columns out):

# %%
if "variant" in manifest:
    display(pd.crosstab([manifest.kind, manifest.variant], manifest.split))
    display(pd.crosstab(manifest.kernel, manifest.slice_thickness_mm, margins=True))

# %%
assert manifest.groupby("patient_id").split.nunique().max() == 1, "a patient is in two splits"
assert (manifest[manifest.split == "train"].label == 0).all(), "training data must be healthy"
slices = load_slices(run_dir)
print(f"2D set: {len(slices)} slices of {slices.image.shape[1:]}; abnormal slices: {(slices.slice_label == 1).sum()}")
show = checks.lesion_slice_picks(slices.lesion, slices.scan_id, slices.kind, n=12)  # each on its most lesioned slice
fig = viz.gallery([slices.image[i] for i in show],
                  [f"{slices.split[i]} · {slices.kind[i]} · slice {slices.slice_index[i]}" for i in show], window,
                  masks=[slices.lesion[i] for i in show], ncols=6)
fig.suptitle("lesioned 2D slices as the 2D models get them, each scan on its slice with the most lesion "
             "(lesion masks in red)", y=1.02)
fig.savefig(fig_dir / "slices.png", dpi=100, bbox_inches="tight")
plt.show()

# %%
vols = load_volumes(run_dir, "test")
k = int(np.argmax([(vols.lesion[i] > 0).sum() if vols.kind[i] != "atrophy" else 0 for i in range(len(vols))]))
fig = viz.three_plane([vols.image[k], vols.image[k], vols.lesion[k].astype(float)],
                      ["model window", "bone window", "lesion mask"],
                      windows=[window, "bone", None], mask=vols.lesion[k],
                      name=f"{vols.scan_id[k]} ({vols.kind[k]}), planes through the lesion's centre")
fig.savefig(fig_dir / "volume.png", dpi=100, bbox_inches="tight")
plt.show()

# %% [markdown]
# `run_dir/data/` now holds `manifest.csv`, `config.json`, `volumes/*.nii.gz` (HU, brain and lesion masks,
# affines kept — they open aligned in 3D Slicer or ITK-SNAP) and `slices.npz`. In JupyterLab,
# `viz.slice_viewer(volume, mask=...)` scrolls through a volume.

# %%
viz.slice_viewer(vols.image[k], window if isinstance(window, str) else "brain", mask=vols.lesion[k])

# %% [markdown]
# ## Exercises
#
# Predict first, then run. Each exercise has an answer cell (your prediction, `None` until you answer, and
# the one parameter to change), a computation that reads what this notebook wrote under `run_dir`, and a
# self-check that compares your prediction with what the computation found. Change the parameter, predict
# again, and re-run the three cells. The logic lives in `ctad_core/exercises.py`.
#
# ### Exercise 1.1 · Which window shows a fresh bleed best?
#
# Grey matter is about 40 HU, fresh blood about 65 HU (section 1). A window maps its `[lower, upper]` HU to
# 256 grey levels and clips the rest. **Predict:** in which of the windows `brain`, `subdural`, `stroke`,
# `bone` do the two tissues lie the most grey levels apart? Then set `hu_lesion` to a chronic subdural
# haematoma (about 10 HU) or to a calcification (about 200 HU), predict again and look.

# %%
best_window = None  # your prediction: "brain", "subdural", "stroke" or "bone"
hu_lesion = 65.0  # the parameter to change: the lesion's HU (grey matter: 40 HU)

# %%
from ctad_core import exercises as ex

ex_windows = ["brain", "subdural", "stroke", "bone"]
contrast = ex.window_contrast(40.0, hu_lesion, ex_windows)
patch = np.full((24, 48), 40.0, np.float32)
patch[:, 24:] = hu_lesion
fig, axes = plt.subplots(1, len(ex_windows), figsize=(2.4 * len(ex_windows), 1.9))
for ax, name in zip(axes, ex_windows):
    viz.show_ct(ax, patch, name, f"{name}: {contrast[name]:.0f} grey levels apart", oriented=True)
    ax.axis("on")  # a frame, so that a white or black half is not lost on the page
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"left 40 HU (grey matter), right {hu_lesion:g} HU", y=1.05)
plt.show()

# %%
print(ex.check_window(best_window, contrast))

# %% [markdown]
# ### Exercise 1.2 · What does a lesion look like in HU?
#
# **Predict:** is the lesion kind `kind` brighter or darker than the brain around it, on the median over the
# test scans? Start with an infarct, then try `iph`, `sdh` (its variants include chronic, darker ones),
# `tumour` and `atrophy` (what is the "lesion" of atrophy?).

# %%
lesion_looks = None  # your prediction: "brighter" or "darker"
kind = "infarct"  # the parameter to change: iph, sdh, edh, sah, ivh, infarct, tumour, atrophy

# %%
test_vols = load_volumes(run_dir, "test")
hu_table = ex.lesion_hu(test_vols.image, test_vols.lesion, test_vols.brain, test_vols.kind, kind, test_vols.scan_id)
display(hu_table.round(1))

# %%
print(ex.check_lesion_brighter(lesion_looks, hu_table))

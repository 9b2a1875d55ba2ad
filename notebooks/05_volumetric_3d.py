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
# # 05 · Volumetric anomaly detection: three 3D methods on whole head CTs
#
# Notebooks 02–04 looked at one axial slice at a time. A radiologist scrolls through the whole stack, and a
# haematoma that spans ten slices is easier to see in 3D than in any one of them. This notebook trains the
# 3D methods of three seed papers on the **healthy** training volumes that notebook 01 prepared and scores
# every validation and test volume:
#
# | seed | method | idea | scan score |
# |---|---|---|---|
# | 001 Viana 2021 | 3D f-AnoGAN | a WGAN-GP learns healthy heads; an encoder maps a scan to the latent z whose image is closest; Viana's extra step fine-tunes encoder **and** generator | Eq. 6: L_img + κ·L_feat |
# | 002 CTFSH 2022 | 3D AE / VAE | an autoencoder with L1, L1 + MS-SSIM, or + ACAI (a critic that makes latent interpolations look real); full head **vs** skull-stripped | **I** = the loss (Eq. 1), **F** = distance of the code to the healthy codes (Eq. 3) |
# | 004 Luo 2023 | 3D residual AE | four residual down-sampling blocks, dense latent 512 (or a spatial latent, the ablation), L2 loss; median filter, eroded brain mask, threshold, 3D components | slice **normality score** (App. E1) |
#
# What every method shares: a model of *healthy* anatomy, a reconstruction x̂ of each scan, and the voxel
# anomaly map |x − x̂|. A lesion is what the model cannot reconstruct.
#
# **What to expect from the phantoms.** The workbook's default data are synthetic head CTs (notebook 01) at
# the profile's size (smoke 32³, quick 64³, paper 128³). At 64³ a voxel is about 3.6 mm: small lesions
# (a thin subarachnoid haemorrhage, a fracture line) are a voxel wide and hard for any 3D model, as Viana et
# al. note for their 64³ volumes. The quick profile trains for a few minutes on a CPU; the `gpu` and
# `paper` profiles use the seeds' own sizes and schedules.
#
# Everything below calls `ctad_core.methods.run_method` (`run_methods` for several: on a CPU side by side in
# processes); the same trainers run under `torchrun` on several GPUs:
#
# ```
# torchrun --nproc_per_node 4 -m ctad_core.methods train --method fanogan3d --run-dir runs/gpu \
#     --params parameters/gpu/05_volumetric_3d.yaml --evaluate
# ```
#
# A model trained that way is picked up here (same configuration → loaded, not retrained).

# %% tags=["parameters"]
run_dir = "runs/quick"
seed = 0
device = "auto"
methods = [  # ACAI (ctfsh_*_acai) and the VAE/strip grid run in the smoke, gpu and paper profiles
    "fanogan3d",
    "fanogan2d",
    "ctfsh_ae_l1",
    "ctfsh_ae_msssim",
    "ctfsh_vae_msssim",
    "ctfsh_ae_msssim_strip",
    "resae",
    "resae_spatial",
    "intensity",  # the baselines (issue 11): the floor every method must beat
    "intensity_hypo",
    "normative",
    "dae",
]
# seed 001 — Viana et al. 3D f-AnoGAN (paper: 64³, latent 2500, Kwon's widths 64…512)
fanogan_window = "viana"  # [-20, 100] HU
fanogan_skull_strip = True  # Viana's inputs are skull-stripped
fanogan_downsample = 2  # the model sees volumes average-pooled by this factor (maps return on the data grid)
fanogan_latent_dim = 128
fanogan_base_channels = 4
fanogan_max_channels = 32
fanogan_batch_size = 4
fanogan_gan_steps = 120  # generator steps; the critic takes fanogan_n_critic steps before each
fanogan_n_critic = 3
fanogan_gp_lambda = 10.0
fanogan_lr_gan = 2e-4
fanogan_encoder_steps = 120
fanogan_finetune_steps = 60  # Viana's extra step: encoder and generator together
fanogan_lr_encoder = 5e-4
fanogan_kappa = 1.0
fanogan2d_mid_fraction = 0.3  # the 2D comparison trains on the central 30 % of axial slices
# seed 002 — CTFSH AE / VAE (paper: 128³, channels 32…512, latent 512)
ctfsh_window = "ctfsh"  # L50 / W100
ctfsh_downsample = 2
ctfsh_channels = [4, 8, 16]
ctfsh_latent_dim = 64
ctfsh_batch_size = 4
ctfsh_steps = 200
ctfsh_lr = 1e-3
ctfsh_rho = 0.15
ctfsh_win_size = 7  # MS-SSIM window; fewer than 5 scales fit small volumes (stated in the results)
ctfsh_acai_lambda = 1.0
ctfsh_acai_gamma = 0.2
ctfsh_kl_weight = 1.0  # per voxel, i.e. the ELBO with a unit-scale reconstruction likelihood
# seed 004 — Luo et al. residual AE (paper: DRBs 32…256, latent 512, L2, weight decay 1e-5)
resae_window = "brain"
resae_skull_strip = True
resae_downsample = 2
resae_channels = [4, 8, 16, 32]
resae_latent_dim = 512
resae_spatial_channels = 4
resae_batch_size = 4
resae_steps = 300
resae_lr = 1e-3
resae_weight_decay = 1e-5
resae_median = 3  # Luo: 5³ at 1 mm; at the quick grid (3.6 mm voxels) 3³ is the nearer physical size
resae_erode = 1
resae_min_size = 4
# baselines (issue 11) — intensity (Meissen et al. 2021), voxel-wise normative model, coarse-noise DAE
intensity_window = "brain"  # the map is the windowed image inside the brain (intensity_hypo: its negative)
normative_window = "brain"
normative_floor = 0.02  # lower bound of the voxel spread (model-range units, ~1 % of the window)
dae_window = "brain"
dae_downsample = 2
dae_channels = [4, 8, 16]  # Kascenas et al.: 2D U-Net, 64…512 at 128²; the 3D U-Net is the workbook's
dae_noise_cell = 2  # noise grid this many voxels coarser: 16 cells per side as Kascenas' 16² noise on 128²
dae_noise_std = 0.2  # Kascenas: 0.2
dae_batch_size = 4
dae_steps = 300  # Kascenas: 2100 epochs × 32 batches of 16
dae_lr = 1e-3  # Kascenas: 1e-4 (Adam, AMSGrad)
dae_weight_decay = 1e-5
dae_median = 3  # Kascenas: 5 (median filter of the residual)
dae_erode = 1
# all methods
eval_batch_size = 4
amp = True  # bf16 autocast on CUDA (ignored on CPU)
ckpt_every = 100
nifti_splits = ["test"]  # voxel maps also written as NIfTI for these splits
resume = True  # reuse finished models in run_dir/volumetric/models

# %% [markdown]
# ## Setup

# %%

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from ctad_core import viz
from ctad_core.evaluation import auroc_table
from ctad_core.evaluation import figures as evfig
from ctad_core.evaluation.report import evaluate_files, evaluation_kwargs, preview_table
from ctad_core.methods import baseline_names, method_spec, run_methods, training_history, write_summary
from ctad_core.methods import figures as vfig
from ctad_core.methods.inputs import VolumeCache
from ctad_core.run import Run
from ctad_core.utils import describe_device, resolve_device, seed_everything
from ctad_core.workbook import resolve_run_dir

seed_everything(seed)
dev = resolve_device(device)
run_dir = resolve_run_dir(run_dir)  # one run_dir whether run by `ctad run`, `ctad lab` or opened in place
run = Run(run_dir)
params = dict(  # the parameters cell, passed on as one dict
    fanogan_window=fanogan_window, fanogan_skull_strip=fanogan_skull_strip, fanogan_downsample=fanogan_downsample,
    fanogan_latent_dim=fanogan_latent_dim, fanogan_base_channels=fanogan_base_channels,
    fanogan_max_channels=fanogan_max_channels, fanogan_batch_size=fanogan_batch_size,
    fanogan_gan_steps=fanogan_gan_steps, fanogan_n_critic=fanogan_n_critic, fanogan_gp_lambda=fanogan_gp_lambda,
    fanogan_lr_gan=fanogan_lr_gan, fanogan_encoder_steps=fanogan_encoder_steps,
    fanogan_finetune_steps=fanogan_finetune_steps, fanogan_lr_encoder=fanogan_lr_encoder, fanogan_kappa=fanogan_kappa,
    fanogan2d_mid_fraction=fanogan2d_mid_fraction,
    ctfsh_window=ctfsh_window, ctfsh_downsample=ctfsh_downsample, ctfsh_channels=ctfsh_channels,
    ctfsh_latent_dim=ctfsh_latent_dim, ctfsh_batch_size=ctfsh_batch_size, ctfsh_steps=ctfsh_steps, ctfsh_lr=ctfsh_lr,
    ctfsh_rho=ctfsh_rho, ctfsh_win_size=ctfsh_win_size, ctfsh_acai_lambda=ctfsh_acai_lambda,
    ctfsh_acai_gamma=ctfsh_acai_gamma, ctfsh_kl_weight=ctfsh_kl_weight,
    resae_window=resae_window, resae_skull_strip=resae_skull_strip, resae_downsample=resae_downsample,
    resae_channels=resae_channels, resae_latent_dim=resae_latent_dim, resae_spatial_channels=resae_spatial_channels,
    resae_batch_size=resae_batch_size, resae_steps=resae_steps, resae_lr=resae_lr,
    resae_weight_decay=resae_weight_decay, resae_median=resae_median, resae_erode=resae_erode,
    resae_min_size=resae_min_size,
    intensity_window=intensity_window, normative_window=normative_window, normative_floor=normative_floor,
    dae_window=dae_window, dae_downsample=dae_downsample, dae_channels=dae_channels, dae_noise_cell=dae_noise_cell,
    dae_noise_std=dae_noise_std, dae_batch_size=dae_batch_size, dae_steps=dae_steps, dae_lr=dae_lr,
    dae_weight_decay=dae_weight_decay, dae_median=dae_median, dae_erode=dae_erode,
    eval_batch_size=eval_batch_size, amp=amp, ckpt_every=ckpt_every,
)
config = run.config()
cache = VolumeCache.of(run)
print(f"device: {describe_device(dev)}")
print(f"volumes {cache.shape} (from notebook 01, source {config.get('source')!r}); "
      f"train {len(cache.train)} healthy, val+test {len(cache.eval)}")
print(pd.Series(cache.eval.kind[cache.eval.split == "test"]).value_counts().rename("test scans").to_frame().T.to_string())
# per method: its info and its evaluation; its arrays stay on disk (run.load_method_results) so that memory
# holds one method at a time — 16 methods at the gpu profile's sizes would not fit in a host's RAM
infos, evaluations = {}, {}
eval_kw = evaluation_kwargs(run_dir, seed)  # the report's arguments (patients, thresholds' targets, bootstrap)
lean_kw = {**eval_kw, "keep_segmentations": False}  # the test segmentations stay on disk


def train_and_score(names: list[str], report: bool = True):
    """Train (or reload) each method not yet done in this session, score it, write its results under
    run_dir/volumetric and evaluate it (run_methods: on the CPU several methods side by side in processes, on a
    GPU one after another). Each evaluation is saved beside the results (the evaluator and arguments of
    notebook 07, which reads them back instead of repeating them); evaluate_files below reads them back too."""
    todo = [n for n in names if n not in infos]
    if todo:
        infos.update(run_methods(todo, run, params, dev, seed, resume=resume, evaluation_kwargs=lean_kw,
                                 nifti_splits=tuple(nifti_splits)))
    found = run.find_method_results()
    evaluations.update(evaluate_files({n: found[n] for n in names if n not in evaluations}, lean_kw))
    for name in names if report else ():
        info = infos[name]
        print(f"{name}: trained {info['train_seconds']:.0f} s, scoring {info['seconds_per_scan']:.2f} s/scan, "
              f"test scan AUROC {evaluations[name].metrics['scan_auroc']:.3f}")


# %% [markdown]
# ## Training and scoring every method
#
# The next cell trains and scores all the `methods` at once; the sections below show them family by family.
# On a CPU they run side by side in processes (one per core), the methods that train a network first and the
# baselines that only compute statistics last, so that no family waits for another's slowest method; on a
# GPU one after another. Each method's own progress is in its training history (figures below).

# %%
train_and_score(methods, report=False)

# %% [markdown]
# ## The inputs: full head and skull-stripped
#
# Each method sees the volume through its paper's window, mapped to [-1, 1]. Skull stripping (Viana, Luo and
# CTFSH's "Strip" models) keeps the brain mask that ships with the data and sets everything else to the
# window's lower bound. CTFSH's point: a model that never sees the skull cannot flag a fracture.

# %%
spec_full = method_spec("ctfsh_ae_l1", cache.shape, params)
spec_strip = method_spec("ctfsh_ae_l1_strip", cache.shape, params)
items_full, items_strip = cache.items(spec_full), cache.items(spec_strip)
i_case = int(next(i for i, k in enumerate(items_full.kind) if k != "healthy"))
fig = viz.three_plane(
    [cache.eval.image[i_case], items_full.x[i_case], items_strip.x[i_case]],
    [f"{items_full.scan_id[i_case]} ({items_full.kind[i_case]}) HU", "full head, model range", "skull-stripped"],
    windows=[spec_full.window, None, None],
    cmaps=["gray", "gray", "gray"],
    mask=items_full.lesion[i_case],
)
del items_full, items_strip  # every eval volume twice: free them

# %% [markdown]
# ## Seed 001 — 3D f-AnoGAN with fine-tuning (Viana et al. 2021)
#
# 1. **WGAN-GP.** The critic D scores images; it is trained to separate real healthy volumes from generated
#    ones, L_D = E[D(G(z))] − E[D(x)] + λ·E[(‖∇D(x̂)‖₂ − 1)²] (Eq. 2), the penalty on points x̂ between real
#    and fake keeping D 1-Lipschitz; G minimises −E[D(G(z))] (Eq. 3). Architecture after Kwon et al.
#    (Fig. 3): a linear layer to 4³, then up-sampling convolutions to the volume.
# 2. **Encoder.** With G and D frozen, E learns z = E(x) such that G(z) ≈ x, on
#    L_E = ‖x − G(E(x))‖²/n + κ·‖f(x) − f(G(E(x)))‖²/m (Eqs. 4–6), f = D's last hidden layer.
# 3. **Fine-tuning** (Viana's addition): E and G are trained together on L_E, restoring detail the GAN
#    alone does not reproduce.
#
# The anomaly score is L_E of the scan; the operating point is the Youden index — Viana's of the test ROC
# (optimistic), and the one the report uses, chosen on the validation scans and applied to test. The 2D
# comparison trains the same networks (`spatial_dims=2`) on mid-axial slices; as in the paper, lesioned scans
# whose lesion misses those slices are left out of its evaluation.
#
# *Feature space*: f is the workbook's own critic (no pretrained network), as in f-AnoGAN.

# %%
train_and_score([m for m in methods if m.startswith("fanogan")])
if "fanogan3d" in infos:
    vfig.loss_figure(training_history("fanogan3d", run), "fanogan3d")
    plt.show()

# %%
if "fanogan3d" in infos:
    res = run.load_method_results("fanogan3d")
    for i in vfig.pick_cases(res):
        vfig.case_views(res, i)
        plt.show()
    m = evaluations["fanogan3d"].metrics
    for label, yd in (("test ROC, Viana's", m["scan_youden_test"]), ("validation, applied to test", m["scan_operating_point"])):
        display(Markdown(
            f"**Youden operating point ({label}):** threshold {yd['threshold']:.4g}, accuracy {yd['accuracy']:.3f}, "
            f"recall {yd['sensitivity']:.3f}, specificity {yd['specificity']:.3f} "
            f"(paper, CENTER-TBI + PhysioNet: 0.708 / 0.541 / 0.867)."
        ))

# %% [markdown]
# ## Seed 002 — CTFSH: AE and VAE, L1 → + MS-SSIM → + ACAI, full head vs skull-stripped
#
# - ℓ_r = ρ·L1 + (1 − ρ)·(1 − MS-SSIM), ρ = 0.15 (Eq. 1). MS-SSIM compares local structure at five scales;
#   a 64³ volume cannot hold five scales of the Gaussian window, so fewer are used (weights renormalised,
#   recorded in each method's `info["msssim_scales"]`).
# - ACAI: two scans are encoded, their codes mixed, z_α = α·z₁ + (1 − α)·z₂ with α ~ U[0, 0.5]; a critic
#   tries to read α from the decoded mix, and the AE is pushed (λ) to make mixes look like real reconstructions.
# - Two scores per scan: **I** = ℓ_r of the scan, **F** = 1 − exp(−‖f(x) − μ‖²/σ²) with μ, σ² fitted on the
#   training codes (Eq. 3).
#
# The tables below have the shape of the paper's Tables 1–3: AUROC per pathology, I and F.

# %%
train_and_score([m for m in methods if m.startswith("ctfsh")])
ctfsh = [m for m in methods if m.startswith("ctfsh") and m in infos]
if ctfsh:
    ctfsh_eval = {n: evaluations[n] for n in ctfsh}
    display(Markdown("**AUROC(I)** (test; each lesion kind against the healthy test scans)"))
    display(auroc_table(ctfsh_eval).round(3))
    display(Markdown("**AUROC(F)**"))
    display(auroc_table(ctfsh_eval, "F").round(3))
    print("MS-SSIM:", {n: infos[n]["msssim_scales"] for n in ctfsh if infos[n]["msssim_scales"]["used"]})

# %%
if ctfsh:
    best = run.load_method_results(max(ctfsh, key=lambda n: evaluations[n].metrics["scan_auroc"]))
    for i in vfig.pick_cases(best):
        vfig.case_views(best, i)
        plt.show()

# %% [markdown]
# ## Seed 004 — Luo's residual AE, post-processing and the slice normality score
#
# The anomaly map is the residual |x − x̂| after a median filter (Luo: 5³ at 1 mm; `resae_median` here), inside
# a slightly eroded brain mask.
# A threshold and the removal of small 3D connected components (the method's declared segmentation step)
# give a segmentation; the seed's threshold is the one with the best pooled Dice of that segmentation on the
# labelled **validation** lesions ([DICE], Sec. 2.6), applied unchanged to the test scans; beside it, the
# workbook's default rule needs no lesion label (the threshold flagging 1 % of the healthy validation scans'
# brain voxels). Every column names its rule. Slice sensitivity is shown at the default threshold, which
# flags 5 % of the slices of healthy validation scans (no label), and at seed 004's operating point, Youden's
# J on labelled validation slices. For detection Luo scores
# **slices**: e(u) sums the anomaly map of slice u and s(u) = 1 − (e(u) − min e)/(max e − min e) (App. E1) —
# low s(u) flags an abnormal slice. These are the evaluator's numbers, the ones notebook 07 reports. The
# spatial-latent AE is the paper's ablation: it reconstructs more detail, lesions included.

# %%
train_and_score([m for m in methods if m.startswith("resae")])
luo = [m for m in methods if m.startswith("resae") and m in infos]
if luo:
    display(preview_table({n: evaluations[n] for n in luo}, [
        ("slice AUROC", "slice_auroc"), ("slice AUPRC", "slice_auprc"), ("slice sensitivity", "slice_sensitivity"),
        ("slice sensitivity", "slice_sensitivity_val_youden"),
        ("val pooled Dice", "dice_seed004_val"), ("test pooled Dice", "dice_seed004"),
        ("test Dice median", "dice_default_median"), ("test Dice mean", "dice_mean"),
    ]).round(3))
    evfig.dice_threshold_figure({n: evaluations[n] for n in luo}, "pooled")
    plt.show()
    ev = run.load_method_results(luo[0])
    cases = vfig.pick_cases(ev)
    vfig.normality_figure(ev, cases)
    plt.show()
    for i in cases:
        vfig.case_views(ev, i)
        plt.show()

# %% [markdown]
# ## Baselines: the floor every method must beat
#
# Three simple methods, registered and scored exactly like the seeds' (same evaluator, same mask, same
# top-1 % scan score). A seed method that does not beat them on a lesion kind has learnt nothing that
# the intensities alone do not say.
#
# - **intensity** / **intensity_hypo** (Meissen et al. 2021): the windowed image itself inside the brain is
#   the anomaly map — bright for haemorrhage, its negative for hypodense lesions. No training.
# - **normative**: per-voxel median and spread (1.4826·MAD) of the healthy training scans, which are aligned;
#   the map is the deviation z in units of that spread (|z|; max(z, 0) for haemorrhages).
# - **dae** (Kascenas et al. 2023): a U-Net trained to remove *coarse* noise from healthy scans; the map is
#   the median-filtered residual |x − f(x)| of the clean scan.

# %%
base = [m for m in methods if m in baseline_names("3d")]
train_and_score(base)
base = [m for m in base if m in infos]
if base:
    display(auroc_table({n: evaluations[n] for n in base}).round(3))
    best_base = max(base, key=lambda n: evaluations[n].metrics["scan_auroc"])
    res = run.load_method_results(best_base)
    for i in vfig.pick_cases(res)[-1:]:  # the largest lesion
        vfig.case_views(res, i)
        plt.show()

# %% [markdown]
# ## All methods: per-pathology AUROC, ROC curves, timings
#
# The baselines are in the table beside the seeds' methods: they are the floor every method must beat.
#
# Each method's own scan score (f-AnoGAN: Eq. 6; CTFSH: I; Luo: mean of the top 1 % of the post-processed
# map — Luo scored slices, so this scan score is the workbook's choice). Notebook 07 recomputes these and the
# voxel-level metrics from `run_dir/volumetric/methods/`.
#
# The papers' own scores of f-AnoGAN and CTFSH are **means over the whole volume**: a haemorrhage of a few
# hundred voxels in a 64³ head barely moves them, while healthy heads differ from each other by more (skull,
# ventricles, head size). Notebook 07 also scores every method the same way, by the mean of the top 1 % of
# its own map (Luo's score), to ask whether each model's *map* sees the lesion.

# %%
ev_all = [m for m in methods if m in infos]
summary = write_summary(run.volumetric, (run.load_method_results(m) for m in ev_all), evaluations)  # evaluated above
display(Markdown("**Scan AUROC, each method's own score** (test)"))
display(auroc_table({n: evaluations[n] for n in ev_all}).round(3))
evfig.roc_figure({n: evaluations[n] for n in ev_all})
plt.show()
display(Markdown("**Every method beside the baselines (†)**: validation figures that need no threshold, then "
                 "test segmentation and voxel figures (each Dice names the rule that chose its threshold)"))
display(preview_table({n: evaluations[n] for n in ev_all}, [
    ("val scan AUROC", "val.scan_auroc"), ("val pixel AUROC", "val.pixel_auroc"),
    ("val pixel AUPRC", "val.pixel_auprc"),
    ("Dice median", "dice_default_median"), ("Dice mean", "dice_default_mean"),
    ("Dice median", "dice_median"), ("Dice mean", "dice_mean"),
    ("pixel AUROC", "pixel_auroc"), ("pixel AUPRC", "pixel_auprc"),
]).round(3))
if "fanogan_2d_vs_3d" in summary:
    c = summary["fanogan_2d_vs_3d"]
    print(f"f-AnoGAN on the same {c['n_scans']} test scans: 3D AUROC {c['auroc_3d']:.3f}, 2D (mid-axial) {c['auroc_2d']:.3f}"
          " (Viana: 3D better by 4 points)")
timing = pd.DataFrame({n: {"train s": infos[n]["train_seconds"], "score s/scan": infos[n]["seconds_per_scan"]}
                       for n in ev_all}).T.round(2)
display(timing)
out_dir = run.volumetric
print(f"written: {out_dir}/methods/*.npz|json, {out_dir}/maps/<method>/<scan>.nii.gz, {out_dir}/scores.csv, "
      f"{out_dir}/summary.json, models in {out_dir}/models")

# %% [markdown]
# ## Exercises
#
# Predict first, then run. Each exercise has an answer cell (your prediction, `None` until you answer, and
# the one parameter to change), a computation on the scores this notebook saved under `volumetric/methods/`
# (no training), and a self-check that compares your prediction with what the computation found. The logic
# lives in `ctad_core/exercises.py`.
#
# ### Exercise 5.1 · Full head or skull-stripped, on fractures?
#
# CTFSH (seed 002) trained every model on the full head and on skull-stripped volumes. **Predict:** which of
# the pair detects scans with a `fracture` better (test scan AUROC against the healthy scans, each method's
# own score)? The table also shows how much of the fracture lies inside each model's evaluation mask. Then
# set `strip_kind` to `"iph"` and predict again.

# %%
better_on_kind = None  # your prediction: one of the names in strip_pair
strip_pair = ["ctfsh_ae_msssim", "ctfsh_ae_msssim_strip"]
strip_kind = "fracture"  # the parameter to change: a lesion kind

# %%
from ctad_core import exercises as ex

found_ex = run.find_method_results()
missing = [n for n in strip_pair if n not in found_ex]
if missing:
    print(f"no results of {missing} in this run (found: {', '.join(found_ex)}): edit strip_pair")
strip_table = ex.compare_auroc({n: run.load_method_results(n) for n in strip_pair if n in found_ex}, strip_kind)
strip_table

# %%
print(ex.check_better_method(better_on_kind, strip_table, name="better_on_kind"))

# %% [markdown]
# ### Exercise 5.2 · L1 or L1 + MS-SSIM? AE or VAE?
#
# **Predict:** which of `loss_pair` separates lesioned from healthy test scans better (scan AUROC over all
# lesion kinds)? Then compare an AE with a VAE by changing `loss_pair` — e.g. `ctfsh_ae_msssim` and
# `ctfsh_vae_msssim` in the `quick` profile, `ctfsh_ae_acai` and `ctfsh_vae_acai_strip` in `smoke` (the
# names found in this run are printed).

# %%
better_loss = None  # your prediction: one of the names in loss_pair
loss_pair = ["ctfsh_ae_l1", "ctfsh_ae_msssim"]  # the parameter to change

# %%
print("methods in this run:", ", ".join(found_ex))
loss_table = ex.compare_auroc({n: run.load_method_results(n) for n in loss_pair if n in found_ex})
loss_table

# %%
print(ex.check_better_method(better_loss, loss_table, name="better_loss"))

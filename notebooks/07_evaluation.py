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
# # 07 · Evaluation: every method on the same test set
#
# Notebooks 04 and 05 left, for each method, anomaly maps and scores of the **validation** and **test**
# items under `run_dir/*/methods/`. Here they are compared the way the seed papers report them:
#
# | what | seed |
# |---|---|
# | mean ± SD Dice on the haemorrhage test set and on all lesions (Table 3), Dice boxplots | 000 |
# | Dice vs threshold on the validation set (Fig. 6), ROC curves (Fig. 7) | 000 |
# | scan-level AUROC per pathology (Table 1) | 002 |
# | slice-level AUC, AUPRC, sensitivity and [DICE] (Tables 2–3) | 004 |
# | unbiased FID of generated vs real healthy / real lesioned slices, reconstruction time | 000 |
#
# **One evaluator, one threshold rule.** Every number comes from `ctad_core.evaluation.evaluate`, the call
# notebooks 04 and 05 make for their previews, so a method shows the same figures everywhere.
# **Thresholds are chosen on validation, never on test**, over one grid (200 evenly spaced values of the
# thresholded maps): the Dice threshold maximises the mean Dice of the validation items that have a lesion
# (separately for the haemorrhage subset and for all lesions, as seed 000 tunes one per test set); [DICE]
# (seed 004) maximises the pooled Dice; the scan operating point is Youden's J on the validation scans.
# `dice_oracle_test`, the best threshold *on the test set itself*, is only an upper bound.
#
# **Each method's own segmentation step** is applied before every Dice, as the method declares it:
# seed 000 thresholds each ensemble member, closes the masks and keeps a strict majority vote; seed 004
# removes small connected components. Per-item Dice: mean, sample SD (ddof = 1) and median.
#
# **Items and scans.** A 2D method's items are slices; its scan score is the **maximum** of its slice
# scores (one clearly abnormal slice makes the scan abnormal). Pixel metrics pool all test pixels inside
# the brain mask. Haemorrhages are the kinds `iph, sdh, edh, sah, ivh`.
#
# **Two scan scores.** Each method's own (seed 001: Eq. 6; seed 002: I; Luo and the 2D FastGAN: the mean
# of the top 1 % of the map) and, for every method, that same **map score** — so the f-AnoGAN and CTFSH
# columns can also be read for what their maps see. For Luo and the 2D methods both tables agree.
#
# Everything lands in `run_dir/report/`: `metrics.json` (the regression surface of `tests/`), the tables as
# Markdown and the figures as PNG.

# %% tags=["parameters"]
run_dir = "runs/quick"
seed = 0
device = "auto"
profile = "quick"
methods = []  # names of the methods to evaluate (empty: every method found)
min_lesion_dice = 0.1  # seed 000: a lesion is detected when its Dice > 0.1
compute_fid = True
n_fid_generated = 200  # generator samples for FID
fid_num_points = 10  # subset sizes of the FID-infinity fit
fid_split = "test"  # real slices FID compares with
inception_weights = ""  # local torchvision Inception-v3 state_dict file (empty: the trained discriminator of this run)
qualitative_items = 3
interactive = True  # build the ipywidgets viewer

# %%
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from ctad_core import evaluation as E
from ctad_core.evaluation import figures as RF
from ctad_core.methods.fastgan.sampling import gan_member_dirs
from ctad_core.results import find_method_results, load_method_results
from ctad_core.utils import describe_device, resolve_device, seed_everything
from ctad_core.workbook import resolve_run_dir

seed_everything(seed)
dev = resolve_device(device)
run_dir = resolve_run_dir(run_dir)  # one run_dir whether run by `ctad run`, `ctad lab` or opened in place
report_dir = Path(run_dir) / "report"
found = find_method_results(run_dir)
print("device:", describe_device(dev))
print("methods found:", ", ".join(found) or "none — run notebooks 04/05 first")

# %% [markdown]
# ## FID: are the generated images closer to healthy than to lesioned slices?
#
# FID compares the mean and covariance of network features of two image sets; it is biased upwards for
# few images, so we report the **unbiased FID∞** of Chong & Forsyth (2020), as seed 000 does: FID on
# random subsets of N generated images, a straight line in 1/N, extrapolated to 1/N = 0. The number
# depends on the feature network: the paper used Inception-v3; without a local Inception file the
# workbook uses the run's own trained FastGAN discriminator (the name is printed and stored).
# Seed 000 found FID 19.0 vs healthy and 30.5 vs diseased slices: generated images should be closer to
# healthy ones.

# %%
fid = None
if compute_fid and gan_member_dirs(run_dir):
    fid = E.compute_fid(run_dir, n_generated=n_fid_generated, seed=seed, inception_weights=inception_weights,
                        split=fid_split, num_points=fid_num_points, device=str(dev))
    print("feature extractor:", fid["extractor"])
    for which in ("healthy", "lesioned"):
        d = fid[which]
        if d.get("fid") is not None:
            print(f"generated vs real {which:8s} (n={d['n_real']}): FID {d['fid']:.3f}, FID∞ {d['fid_inf']:.3f}")
    fig = RF.fid_figure(fid)
    RF.save(fig, report_dir / "fid_infinity.png")
    plt.show()
else:
    print("FID skipped (compute_fid is False or no GAN under run_dir/gan)")

# %% [markdown]
# ## Evaluate every method and write `metrics.json`

# %%
report, evals = E.build_report(run_dir, profile=profile, seed=seed, device=describe_device(dev),
                               methods=methods or None, fid=fid, min_lesion_dice=min_lesion_dice)
results = {n: load_method_results(p) for n, p in found.items() if n in evals}
tables = E.markdown_tables(report)
display(Markdown("### Summary\n\n" + tables["summary"]))

# %% [markdown]
# ## Seed 000 · Table 3 and Fig. 6–7
#
# Mean ± SD (and median) Dice of the test items with a lesion, at the threshold chosen on validation.
# Seed 000: restoration 0.62 ± 0.24, encoder 0.61 ± 0.25 on haemorrhages; 0.40 / 0.37 with tumours.

# %%
display(Markdown(tables["table3_seed000_dice"]))
if "wilcoxon_dice" in tables:
    display(Markdown("Paired Wilcoxon signed-rank tests of per-item Dice:\n\n" + tables["wilcoxon_dice"]))
for n, m in report["methods"].items():
    det = m.get("lesion_detection")
    if det:
        print(f"{n}: detected {det['detected']}/{det['total']} lesions (Dice > {det['min_dice']})")

fig = RF.dice_threshold_figure(evals, "haemorrhage")
RF.save(fig, report_dir / "dice_vs_threshold_val.png")
plt.show()
fig = RF.dice_boxplot(evals)
RF.save(fig, report_dir / "dice_boxplots.png")
plt.show()
fig = RF.roc_figure(evals)
RF.save(fig, report_dir / "roc_curves.png")
plt.show()

# %% [markdown]
# ## Seed 002 · Table 1: scan-level AUROC per pathology
#
# Each lesion kind against the healthy test scans (a scan of kind `sdh+fracture` counts for both).

# %%
display(Markdown(tables["table1_seed002_auroc_by_kind"]))
if "table1_auroc_by_kind_map_score" in tables:
    display(Markdown("The same, every method scored by its **map** (mean of the top 1 % inside the mask; 2D: max over "
                     "a scan's slices) — the whole-volume scores of seeds 001 and 002 hardly move for a focal lesion; Luo's and "
                     "the 2D columns repeat the table above:\n\n"
                     + tables["table1_auroc_by_kind_map_score"]))

# %% [markdown]
# ## Seed 004 · Tables 2–3: slice level and [DICE]
#
# Slice-level AUC and AUPRC — for 3D methods every slice is scored by Luo's normality score: e(u) sums the
# method's map inside the mask over slice u, s(u) = 1 − (e(u) − min e)/(max e − min e) within the scan, and
# 1 − s(u) is the slice's anomaly score (App. E1) — sensitivity at the validation Youden point, and [DICE]:
# the pooled-Dice-optimal threshold of the validation set applied, with the method's segmentation step,
# to all test voxels.

# %%
display(Markdown(tables["table3_seed004"]))

# %% [markdown]
# ## Qualitative results, reconstruction error and timing
#
# Seed 000 reports the reconstruction error on intensities scaled to [0, 1]: RMSE 0.076 for normal and 0.089
# for abnormal slices — a good healthy model reconstructs normal slices better. Encoders answer in one
# forward pass; iterative restoration optimises z for thousands of steps (seed 000: ~110 s per slice).

# %%
fig = RF.qualitative_panel(results, evals, n_items=qualitative_items, seed=seed)
RF.save(fig, report_dir / "qualitative.png")
plt.show()
fig = RF.timing_figure(report)
RF.save(fig, report_dir / "timing.png")
plt.show()
if "recon_error_seed000" in tables:  # seed 000: RMSE etc. on [0, 1] intensities, normal vs abnormal items
    display(Markdown(tables["recon_error_seed000"]))
if "fid" in tables:
    display(Markdown(tables["fid"]))
if report.get("turing"):
    groups = report["turing"].get("groups", {})
    print("Turing test accuracy by group:", {g: round(v["accuracy"], 3) for g, v in groups.items()})

# %% [markdown]
# ## Explore
#
# Pick a method and a test item; move the threshold and watch the item's Dice change. The validation
# threshold is where the slider starts.

# %%
if interactive and results:
    display(RF.viewer(results, evals))

# %%
print("wrote", report_dir / "metrics.json")
print(sorted(p.name for p in report_dir.iterdir()))

# %% [markdown]
# ## Exercises
#
# Predict first, then run. Each exercise has an answer cell (your prediction, `None` until you answer, and
# the one parameter to change), a computation on the methods' saved maps (no model runs), and a self-check
# that compares your prediction with what the computation found. The logic lives in
# `ctad_core/exercises.py`.
#
# ### Exercise 7.1 · The validation threshold against the oracle
#
# Every threshold above was chosen on validation. The *oracle* picks the best threshold on the test set
# itself — an upper bound no honest method can claim. **Predict:** what share of the oracle's pooled test
# Dice ([DICE], seed 004) does the validation threshold keep for `oracle_method`? Answer a number between 0
# and 1 (within 0.1 counts as right). Then try another method.

# %%
share_of_oracle = None  # your prediction: a number between 0 and 1
oracle_method = "fastgan_encoder"  # the parameter to change: a method found above

# %%
from ctad_core import exercises as ex

oracle_method = ex.pick_method(list(found), oracle_method)
oracle = ex.val_test_dice(load_method_results(found[oracle_method]), reduce="pooled")
{k: round(v, 4) if isinstance(v, float) else v for k, v in oracle.items()}

# %%
print(ex.check_oracle_share(share_of_oracle, oracle))

# %% [markdown]
# ### Exercise 7.2 · AUROC or AUPRC?
#
# Lesion pixels are a few per cent of the brain. **Predict:** for `pixel_method`, is its pixel AUROC or its
# pixel AUPRC the higher number? The table adds a random map: what does each metric give for a map that
# knows nothing? Then try another method.

# %%
higher_metric = None  # your prediction: "AUROC" or "AUPRC"
pixel_method = "fastgan_restoration"  # the parameter to change: a method found above

# %%
pixel_method = ex.pick_method(list(found), pixel_method)
pixel_table = ex.pixel_auroc_auprc(load_method_results(found[pixel_method]), seed=seed)
pixel_table.round(4)

# %%
print(ex.check_higher_metric(higher_metric, pixel_table))

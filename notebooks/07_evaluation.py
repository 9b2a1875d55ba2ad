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
# **One evaluator; every Dice names the rule that chose its threshold.** Every number comes from
# `ctad_core.evaluation.evaluate`, the call notebooks 04 and 05 make for their previews, so a method shows
# the same figures everywhere. Thresholds never come from the test set, and the `rule` column (the `rule`
# field in `metrics.json`) says which of these chose each Dice's threshold:
#
# | rule | uses | what it is |
# |---|---|---|
# | `healthy_fpr` (**default**) | healthy validation scans only | the threshold at which the method's segmentation step flags `healthy_fpr` (1 %) of their evaluation-mask voxels — what an unsupervised user can do |
# | `val_lesion_mean` | labelled validation lesions | best mean per-item Dice, one threshold per test set (haemorrhage, all lesions) — seed 000's rule |
# | `val_lesion_pooled` | labelled validation lesions | best pooled Dice, [DICE] — seed 004's rule |
# | `test_oracle` | the test set itself | best Dice on test: an **upper bound**, never a result |
#
# The seeds' rules need labelled lesions an unsupervised user would not have; they stand beside the default
# so that the papers' figures can be read against it. The scan operating point (sensitivity, specificity) is,
# by default, the threshold that flags at most `scan_fpr` of the healthy validation scans; Youden's J on the
# labelled validation scans (the seeds') is shown beside it, labelled.
#
# **Uncertainty.** The test set is small, so every headline figure carries a **95 % bootstrap interval**
# `[low, high]`: patients are resampled with replacement (`n_boot` times, seeded), all of a patient's items
# together — scan AUROC (overall and per kind), pixel AUROC and AUPRC side by side (inside the evaluation
# mask only), median Dice. Methods are compared **paired**, on the same items: each against the best simple
# baseline when the run holds baselines (`intensity*`, `normative*`, `dae*`), otherwise against the best
# method — a paired bootstrap of the AUROC difference and a Wilcoxon signed-rank test of per-item Dice (as
# seed 000 did). The report also gives the test set's **prevalence** and the results by **lesion size**
# (terciles of lesion voxels over the test items) beside the results by kind.
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
healthy_fpr = 0.01  # default Dice rule: fraction of healthy validation voxels the threshold flags
scan_fpr = 0.05  # default scan operating point: fraction of healthy validation scans flagged
n_boot = 1000  # bootstrap resamples of every interval and paired comparison (patients resampled)
eval_workers = 0  # processes the methods are evaluated in (0: as many as the cores and free memory allow)
reuse_evaluations = True  # read back what notebooks 04/05 evaluated (same results, arguments and code)
qualitative_items = 3
shift_test = True  # phantom runs: healthy test scans re-rendered under another acquisition (false-positive test)
shift_acquisition = {"kernel": "sharp", "slice_mm": 0.625, "noise_sd_5mm": 9.0}  # the shift (see its section)
interactive = True  # build the ipywidgets viewer

# %%
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from ctad_core import evaluation as E
from ctad_core.evaluation import figures as RF
from ctad_core.methods.fastgan.sampling import gan_member_dirs
from ctad_core.results import LazyResults, find_method_results, load_method_results
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
#
# The summary lists the simple baselines first (marked †): the floor a method must clear to be worth its
# complexity. Under it, one plain sentence per method and figure says whether it **beats** the best baseline,
# **does not beat** it (significantly below), or **cannot be told apart** from it — decided by the paired test
# on the same test items (scan AUROC: paired bootstrap interval clear of 0 and p < 0.05; Dice: paired
# Wilcoxon), the figures and the test quoted in the sentence.

# %%
report, evals = E.build_report(run_dir, profile=profile, seed=seed, device=describe_device(dev),
                               methods=methods or None, fid=fid, min_lesion_dice=min_lesion_dice,
                               fpr=healthy_fpr, scan_fpr=scan_fpr, n_boot=n_boot, workers=eval_workers or None,
                               reuse=reuse_evaluations)
results = LazyResults({n: p for n, p in found.items() if n in evals})  # read from disk when shown, one at a time
tables = E.markdown_tables(report)
display(Markdown("### Summary\n\n" + RF.fit_table(tables["summary"], corner="Method")))
if "floor" in tables:  # plainly: does each method beat the simple baselines? (also report/floor.md)
    display(Markdown("### Against the floor\n\n" + tables["floor"]))

# %% [markdown]
# ## Seed 000 · Table 3 and Fig. 6–7
#
# Mean ± SD and median [95 % interval] Dice of the test items with a lesion, one row per threshold rule:
# the default (healthy validation voxels only), seed 000's rule (best mean Dice on validation lesions, one
# threshold per test set) and the test-set oracle, an upper bound. Seed 000 (its own rule): restoration
# 0.62 ± 0.24, encoder 0.61 ± 0.25 on haemorrhages; 0.40 / 0.37 with tumours.

# %%
display(Markdown(RF.fit_table(tables["table3_seed000_dice"], corner="Method")))
if "comparisons_dice" in tables:
    display(Markdown("Per-item Dice against the reference (the best baseline, else the best method), paired "
                     "Wilcoxon signed-rank tests on the same items:\n\n"
                     + RF.fit_table(tables["comparisons_dice"], corner="Method")))
if "wilcoxon_dice" in tables:
    display(Markdown("Every pair, seed 000's rule (paired Wilcoxon signed-rank tests of per-item Dice):\n\n"
                     + RF.fit_table(tables["wilcoxon_dice"])))
for n, m in report["methods"].items():
    det = m.get("lesion_detection")
    if det:
        print(f"{n}: detected {det['detected']}/{det['total']} lesions (Dice > {det['min_dice']}, "
              f"rule {det.get('rule')})")

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
# Each lesion kind against the healthy test scans (a scan of kind `sdh+fracture` counts for both), with
# its 95 % interval resampling patients: with a handful of scans per kind the interval is wide, and two
# methods whose intervals overlap are only told apart by the paired comparison further down.

# %%
display(Markdown(RF.fit_table(tables["table1_seed002_auroc_by_kind"], corner="Method")))
if "table1_auroc_by_kind_map_score" in tables:
    display(Markdown("The same, every method scored by its **map** (mean of the top 1 % inside the mask; 2D: max over "
                     "a scan's slices) — the whole-volume scores of seeds 001 and 002 hardly move for a focal lesion; Luo's and "
                     "the 2D columns repeat the table above:\n\n"
                     + RF.fit_table(tables["table1_auroc_by_kind_map_score"], corner="Method")))
if "head_mask" in tables:  # fracture lies outside the brain mask: full-head methods also inside their head mask
    display(Markdown("**Outside the brain: fracture, full-head methods inside the head mask.** Every figure above "
                     "is inside the brain mask, where a skull fracture has (almost) no voxel; a full-head model "
                     "(CTFSH without `_strip`) also models the skull and scalp, so it is scored there too, inside "
                     "its head mask (HU > −500, largest component, holes filled) — extra rows, labelled:\n\n"
                     + RF.fit_table(tables["head_mask"], corner="Method")))

# %% [markdown]
# ## Seed 004 · Tables 2–3: slice level and [DICE]
#
# Slice-level AUC and AUPRC — for 3D methods every slice is scored by Luo's normality score: e(u) sums the
# method's map inside the mask over slice u, s(u) = 1 − (e(u) − min e)/(max e − min e) within the scan, and
# 1 − s(u) is the slice's anomaly score (App. E1) — sensitivity at the validation Youden point, and [DICE]:
# the pooled-Dice-optimal threshold of the validation set applied, with the method's segmentation step,
# to all test voxels.

# %%
display(Markdown(RF.fit_table(tables["table3_seed004"], corner="Method")))

# %% [markdown]
# ## How sure are these figures? Prevalence, lesion size, operating points, paired comparisons
#
# **Prevalence** of the test set: lesioned scans among all scans, and lesion voxels among the evaluation
# mask's voxels — the floor of a pixel AUPRC (a random map scores the voxel prevalence). **By lesion size**:
# the test items with a lesion split into terciles of lesion voxels; a method that finds only large lesions
# shows it here and not in the per-kind table. **Scan operating points**: sensitivity and specificity on test
# at the default threshold (healthy validation scans only) and at the seeds' validation Youden point.
# **Paired comparisons**: each method's scan AUROC minus the reference's on the same scans (paired bootstrap
# over patients; p < 0.05 and an interval clear of 0 mean a difference this test set can show).

# %%
for stem, title in (("prevalence", "Prevalence of the test set"), ("by_lesion_size", "By lesion size"),
                    ("scan_operating_points", "Scan operating points"),
                    ("comparisons_scan_auroc", "Scan AUROC against the reference, paired")):
    if stem in tables:
        display(Markdown(f"### {title}\n\n" + RF.fit_table(tables[stem])))

# %% [markdown]
# ## Qualitative results, reconstruction error and timing
#
# Seed 000 reports the reconstruction error on intensities scaled to [0, 1]: RMSE 0.076 for normal and 0.089
# for abnormal slices — a good healthy model reconstructs normal slices better. Encoders answer in one
# forward pass; iterative restoration optimises z for thousands of steps (seed 000: ~110 s per slice).

# %%
for level, fig in RF.qualitative_figures(results, evals, n_items=qualitative_items, seed=seed).items():
    RF.save(fig, report_dir / f"qualitative_{level}.png")  # one figure per item level (and per 6 methods)
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
# ## False positives under acquisition shift
#
# A detector trained on one scanner's protocols meets scans made another way: another noise level,
# another reconstruction kernel, thinner or thicker slices. If it calls such a **healthy** scan abnormal, it
# raises a false alarm, however well it separates lesions on its own protocol. Here the run's healthy test
# patients are rendered again — the same heads — under `shift_acquisition` (default: the sharp kernel, the
# thinnest slices, 0.625 mm, and a noise level of 9 HU at 5 mm, above every training scan's; the training
# set's protocols are listed below), prepared exactly as notebook 01 prepared the data, and every trained
# method scores them by the very path it scored the test set with (models loaded, nothing retrained).
#
# Each method keeps its **default thresholds**, chosen on its healthy validation scans only: the scan
# operating point that flags `scan_fpr` of them, and the pixel threshold that flags `healthy_fpr` of their
# brain voxels. We count, on the healthy test scans without and with the shift, the **fraction of scans
# flagged** and the **fraction of evaluation-mask voxels flagged** (95 % intervals, patients resampled).
# Without shift both should sit near their targets (dotted lines); a method whose rates jump under shift
# partly calls "abnormal" what is only "acquired differently". With few healthy test scans (smoke: 2) the
# scan rate moves in large steps: read its interval.
#
# **Real scans** cannot be re-rendered, so on a real-data run this section is skipped. To test a shift
# there, hold one protocol out: prepare a run whose training scans share one kernel and slice thickness
# (e.g. CQ500's thick series), then score the other protocol's healthy scans (its thin series) as a test
# set, and compare the flagged rates between the two.

# %%
if shift_test:
    from ctad_core.data.phantom_set import ShiftUnavailable
    from ctad_core.evaluation import shift as S

    try:
        shift = S.shift_test(run_dir, shift_acquisition, methods=list(evals), profile=profile, device=str(dev),
                             fpr=healthy_fpr, scan_fpr=scan_fpr, n_boot=n_boot, seed=seed)
    except ShiftUnavailable as e:
        shift = None
        print("shift test skipped:", e)
    if shift is not None:
        print("training protocols (noise: HU at 5 mm):")
        display(S.training_acquisitions(run_dir))
        display(Markdown(f"### Healthy test scans flagged, shift {shift_acquisition}\n\n"
                         + RF.fit_table(S.shift_markdown(shift))))
        for name, why in shift.attrs["skipped"].items():
            print(f"not scored under shift: {name}: {why}")
        fig = RF.shift_figure(shift, targets=(scan_fpr, healthy_fpr))
        RF.save(fig, report_dir / "shift_false_positives.png")
        plt.show()
else:
    print("shift test off (shift_test = False)")

# %% [markdown]
# ## Explore
#
# Pick a method and a test item: the input scan with the reference lesion outlined (lime) and the prediction
# at the threshold over it (orange), the anomaly map with its colour scale (set inside the evaluation mask),
# and the reconstruction where the method keeps one. Each method starts at its test item with the most
# lesion, on the slice with the most lesion, at its validation threshold; move the threshold and watch the
# item's Dice change. Run without JupyterLab (`ctad run`), the cell shows that starting picture.

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

"""Evaluation metrics, one function per metric, split by the question they answer.

- :mod:`.classification`: is this item / pixel anomalous? (ROC, PR, AUROC, AUPRC, operating points)
- :mod:`.segmentation`: where is the lesion? (Dice, Dice against the threshold, threshold grid, detection)
- :mod:`.generative`: do generated images look real? (FID, FID∞)
- :mod:`.stats`: summaries and tests of per-item values, reconstruction-error statistics

Conventions shared by every function: NumPy in, plain numbers out; spatial-dims-agnostic (a pixel map is
``(H, W)``, a voxel map ``(D, H, W)``, a batch puts items first ``(N, *spatial)``); **positive =
anomalous**: labels and targets are binarised with ``!= 0``, a score is a float where higher means more
anomalous and a threshold ``t`` predicts positive where ``score >= t`` (scikit-learn's ``roc_curve``
convention); optional ``mask`` arguments select the pixels that count (e.g. the brain mask); **degenerate
inputs** (one class only, nothing to compare) give ``nan`` and a :class:`MetricWarning`, never an
exception; **malformed inputs** (shapes or lengths that differ) raise ``ValueError`` naming both shapes.
"""

from ctad_core.evaluation.metrics._common import MetricWarning
from ctad_core.evaluation.metrics.classification import (
    OperatingPoint,
    auroc_auprc,
    average_precision,
    operating_point,
    per_kind_auroc,
    pr_curve,
    roc_auc,
    roc_curve,
    youden_threshold,
)
from ctad_core.evaluation.metrics.generative import fid, fid_infinity, frechet_distance
from ctad_core.evaluation.metrics.segmentation import (
    DiceSweep,
    best_achievable_dice,
    dice,
    dice_per_item,
    dice_vs_threshold,
    lesion_detection_rate,
    threshold_for_best_dice,
    threshold_grid,
)
from ctad_core.evaluation.metrics.stats import (
    TERCILES,
    recon_error_stats,
    size_terciles,
    summary,
    wilcoxon_dice,
)

__all__ = [
    "TERCILES",
    "DiceSweep",
    "MetricWarning",
    "OperatingPoint",
    "auroc_auprc",
    "average_precision",
    "best_achievable_dice",
    "dice",
    "dice_per_item",
    "dice_vs_threshold",
    "fid",
    "fid_infinity",
    "frechet_distance",
    "lesion_detection_rate",
    "operating_point",
    "per_kind_auroc",
    "pr_curve",
    "recon_error_stats",
    "roc_auc",
    "roc_curve",
    "size_terciles",
    "summary",
    "threshold_for_best_dice",
    "threshold_grid",
    "wilcoxon_dice",
    "youden_threshold",
]

"""One evaluator for every method: notebooks 04 and 05 preview with it, notebook 07 reports with it.

- :func:`evaluate` (:mod:`.evaluator`): one method's ``MethodResults`` → :class:`MethodEvaluation`.
- :mod:`.thresholds`: THE threshold rule (chosen on validation over :data:`DICE_GRID` values).
- :mod:`.segmentation`: the method's declared segmentation step (closing, majority vote, mask, components).
- :mod:`.slices`: Luo's slice normality score s(u) (seed 004).
- :mod:`.metrics`: one function per metric, split by question.
- :func:`build_report` (:mod:`.report`), :mod:`.baseline` (CLI ``python -m ctad_core.evaluation``),
  :mod:`.figures`.
"""

from ctad_core.evaluation import store as _store  # noqa: F401  (its code digest: taken as the evaluator loads)
from ctad_core.evaluation.evaluator import (
    MethodEvaluation,
    auroc_table,
    compare_dice,
    compare_on_common_scans,
    evaluate,
    evaluate_all,
    item_labels,
    roc_curves,
    scan_table,
)
from ctad_core.evaluation.report import build_report, compute_fid, markdown_tables
from ctad_core.evaluation.segmentation import segment
from ctad_core.evaluation.slices import normality_score, slice_errors, slice_labels, slice_table
from ctad_core.evaluation.thresholds import DICE_GRID, choose_threshold, sweep

__all__ = [
    "DICE_GRID",
    "MethodEvaluation",
    "auroc_table",
    "build_report",
    "choose_threshold",
    "compare_dice",
    "compare_on_common_scans",
    "compute_fid",
    "evaluate",
    "evaluate_all",
    "item_labels",
    "markdown_tables",
    "normality_score",
    "roc_curves",
    "scan_table",
    "segment",
    "slice_errors",
    "slice_labels",
    "slice_table",
    "sweep",
]

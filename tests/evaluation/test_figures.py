"""Report figures: rows per item level, and predictions drawn with the method's segmentation step."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use("Agg")

from ctad_core.evaluation import figures as RF  # noqa: E402
from ctad_core.evaluation.evaluator import evaluate  # noqa: E402

from ._synthetic import synthetic  # noqa: E402


def test_qualitative_panel_rows_per_level_and_dice_threshold_figure():
    res = {
        "a2": synthetic("a2", "2d"),
        "b2": synthetic("b2", "2d", seed=1),
        "v3": synthetic("v3", "3d", seed=2),
    }
    evals = {n: evaluate(r) for n, r in res.items()}
    fig = RF.qualitative_panel(res, evals, n_items=2, seed=0)
    axes = np.array(fig.axes).reshape(4, 1 + 3 * 2)
    for row in axes:
        assert row[0].images and row[2].images
    assert not axes[2, 5].images and not axes[3, 5].images
    les = np.zeros((6, 4, 4), np.uint8)
    les[4, 1:3, 1:3] = 1
    assert RF._lesion_slice(les) == 4 and RF._lesion_slice(les[0]) is None
    matplotlib.pyplot.close(fig)
    fig = RF.dice_threshold_figure(evals, "all")
    assert len(fig.axes) == 3
    matplotlib.pyplot.close(fig)
    for f in (RF.roc_figure(evals), RF.dice_boxplot(evals), RF.viewer(res, evals)):
        matplotlib.pyplot.close(f)

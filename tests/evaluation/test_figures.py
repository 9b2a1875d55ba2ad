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
    figs = RF.qualitative_figures(res, evals, n_items=2, seed=0)
    assert list(figs) == ["2d", "3d"]  # one figure per item level, one row per method
    assert [sf._suptitle.get_text().split(" — ")[0] for sf in figs["2d"].subfigs] == ["a2", "b2"]
    assert [sf._suptitle.get_text().split(" — ")[0] for sf in figs["3d"].subfigs] == ["v3"]
    for fig in figs.values():
        for sf in fig.subfigs:  # per item: scan and map, no reconstruction column (none is kept)
            assert len(sf.axes) == 2 * 2 and all(ax.images for ax in sf.axes)
        matplotlib.pyplot.close(fig)
    les = np.zeros((6, 4, 4), np.uint8)
    les[4, 1:3, 1:3] = 1
    assert RF._lesion_slice(les) == 4 and RF._lesion_slice(les[0]) is None
    assert RF._lesion_slice(np.zeros((6, 4, 4))) == 3  # no lesion: the middle slice
    fig = RF.dice_threshold_figure(evals, "all")
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 3
    matplotlib.pyplot.close(fig)
    for f in (RF.roc_figure(evals), RF.dice_boxplot(evals), RF.viewer(res, evals)):
        matplotlib.pyplot.close(f)

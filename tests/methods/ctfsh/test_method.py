"""Seed 002 through the registry: I and F scores written with the results."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[2]))
from _volumetric_fake import make_fake_run  # noqa: E402


def test_training_writes_i_and_f_scores(tmp_path):
    from ctad_core.evaluation import auroc_table, evaluate
    from ctad_core.methods import method_spec, run_method
    from ctad_core.methods.inputs import VolumeCache
    from ctad_core.run import Run

    run = Run(make_fake_run(tmp_path, size=16, n_train=4, n_val=3, n_test=6))
    cache = VolumeCache.of(run)
    p = {
        "ctfsh_channels": [2, 4],
        "ctfsh_latent_dim": 6,
        "ctfsh_steps": 2,
        "ctfsh_win_size": 3,
        "ctfsh_downsample": 1,
    }
    evs = []
    for name in ("ctfsh_vae_acai", "ctfsh_ae_l1_strip"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = run_method(name, run, p, progress=False)
        evs.append(r)
        info = r.info
        assert len(info["scores"]["F"]) == len(r.scan_id) and info["scores"]["I"] == r.scan_score.tolist()
        m = evaluate(r).metrics
        assert set(m["scan_auroc_by_kind"]) == set(m["scan_auroc_by_score"]["F"]["by_kind"]) == {"iph", "infarct"}
    assert evs[0].info["msssim_scales"]["scales"] == 3 and evs[1].info["msssim_scales"]["used"] is False
    # skull-stripped inputs: outside the brain the input is the window's lower bound
    strip = cache.items(method_spec("ctfsh_ae_l1_strip", cache.shape, p))
    assert np.all(strip.x[strip.brain == 0] == -1.0)
    # full head: maps over the head, figures inside the brain mask, the head mask kept beside it
    from ctad_core.data.masks import head_mask

    full = cache.items(method_spec("ctfsh_vae_acai", cache.shape, p))
    np.testing.assert_array_equal(evs[0].brain, full.brain)
    np.testing.assert_array_equal(evs[0].head, head_mask(cache.eval.image))
    np.testing.assert_array_equal(full.head, evs[0].head)
    outside = (full.brain == 0) & (full.head != 0)
    assert outside.any() and (evs[0].maps[outside] > 0).any() and not evs[0].maps[full.head == 0].any()
    assert evs[1].head is None and strip.head is None
    table = auroc_table({r.name: evaluate(r) for r in evs}, "F")
    assert list(table.index) == ["infarct", "iph", "TOTAL"]

"""VolumeCache: the head mask of the val/test volumes is computed once for every full-head preparation."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))
from _volumetric_fake import make_fake_run  # noqa: E402


def test_head_mask_is_computed_once_and_is_the_head_mask_of_the_volumes(tmp_path, monkeypatch):
    from ctad_core.data.masks import head_mask
    from ctad_core.methods import inputs, method_spec
    from ctad_core.methods.inputs import HEAD_HU, EvalItems, VolumeCache
    from ctad_core.run import Run

    run = Run(make_fake_run(tmp_path, size=16, n_train=3, n_val=2, n_test=3))
    calls = []
    real = inputs.head_mask
    monkeypatch.setattr(inputs, "head_mask", lambda *a, **k: calls.append(1) or real(*a, **k))
    cache = VolumeCache(run, max_prepared=1)  # every new preparation evicts the last one
    shape = cache.shape
    full_a = cache.items(method_spec("ctfsh_ae_l1", shape, {}))
    strip = cache.items(method_spec("ctfsh_ae_l1_strip", shape, {}))
    full_b = cache.items(method_spec("resae", shape, {"resae_skull_strip": False, "resae_window": [-100, 200], "resae_downsample": 1}))
    assert len(calls) == 1 and strip.head is None
    expected = head_mask(cache.eval.image, HEAD_HU)
    assert np.array_equal(full_a.head, expected) and np.array_equal(full_b.head, expected)
    assert not np.array_equal(full_a.x, full_b.x)  # two preparations (windows differ), one head mask
    direct = EvalItems.from_volumes(cache.eval, (-100, 200), False)  # without the cache: computed here
    assert np.array_equal(direct.head, expected) and len(calls) == 2

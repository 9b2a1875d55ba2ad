"""Seed 001 training: the three phases (G frozen in the encoder phase, trained in fine-tuning), checkpoints per
phase, and a finished model reloaded instead of retrained."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from .test_method import TINY


def test_three_phases_train_score_and_resume(fake_run):
    from ctad_core.methods import method_spec, run_method
    from ctad_core.methods.base import train_method
    from ctad_core.methods.inputs import VolumeCache
    from ctad_core.run import Run
    from ctad_core.train import load_checkpoint

    run = Run(fake_run)
    cache = VolumeCache.of(run)
    tm = run_method("fanogan3d", run, TINY, progress=False, evaluate=False)
    r = run_method("fanogan3d", run, TINY, progress=False)
    assert set(tm.history) == {"gan", "encoder", "finetune"}
    assert all(np.isfinite(list(h.values())).all() for ph in tm.history.values() for h in ph)
    # G frozen in the encoder phase, trained in the fine-tuning phase
    mdir = fake_run / "volumetric" / "models" / "fanogan3d"
    gan, enc, ft = (load_checkpoint(mdir / f"{p}.pt") for p in ("gan", "encoder", "finetune"))
    k = "blocks.1.weight"
    assert torch.equal(gan["modules"]["generator"][k], enc["modules"]["generator"][k])
    assert not torch.equal(enc["modules"]["generator"][k], ft["modules"]["generator"][k])
    assert r.level == "3d" and r.maps.shape == (len(r.scan_id), 16, 16, 16)
    assert r.inputs.shape == r.maps.shape and r.recon.shape == r.maps.shape
    assert r.segmentation == {"closing_radius": 0, "vote": None, "min_component_size": 0}
    assert run.find_method_results()["fanogan3d"] == fake_run / "volumetric" / "methods" / "fanogan3d.npz"
    from ctad_core.evaluation import evaluate

    assert {"threshold", "sensitivity", "specificity", "accuracy"} <= set(evaluate(r).metrics["scan_youden_test"])
    # a finished model is reloaded, not retrained
    spec = method_spec("fanogan3d", cache.shape, TINY)
    again = train_method(spec, cache.train_x(spec), fake_run / "volumetric", progress=False)
    assert again.train_seconds == pytest.approx(tm.train_seconds)
    for a, b in zip(tm.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())

"""What notebook 05 wrote in the smoke chain, and that every profile's parameters build its methods."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ctad_core.data.manifest import load_volumes
from ctad_core.data.nifti import load_nifti
from ctad_core.results import find_method_results, load_method_results

NB = Path(__file__).resolve().parents[2] / "notebooks" / "05_volumetric_3d.ipynb"


def _nb_params() -> dict:
    from ctad_core.workbook import notebook_parameters

    return notebook_parameters(NB)  # literals, evaluated


@pytest.mark.parametrize("profile", ["smoke", "quick", "gpu", "paper"])
def test_profile_keys_exist_and_build(profile):
    from ctad_core.methods import method_spec

    y = yaml.safe_load((NB.parents[1] / "parameters" / profile / "05_volumetric_3d.yaml").read_text())
    p = _nb_params()
    assert set(y) <= set(p), set(y) - set(p)
    shape = {"smoke": (32, 32, 32), "quick": (64, 64, 64)}.get(profile, (128, 128, 128))
    params = {**p, **y}
    for name in params["methods"]:
        method_spec(name, shape, params)  # every configured method builds at the profile's data size


def test_volumetric_outputs(smoke_run_dir):
    out = smoke_run_dir / "volumetric"
    found = {n: p for n, p in find_method_results(smoke_run_dir).items() if p.parent.parent == out}
    smoke = yaml.safe_load((NB.parents[1] / "parameters" / "smoke" / "05_volumetric_3d.yaml").read_text())
    expected = set(smoke.get("methods", _nb_params()["methods"]))
    assert expected <= set(found), expected - set(found)
    vs = load_volumes(smoke_run_dir, ("val", "test"))
    shape = vs.image.shape[1:]
    aff = dict(zip(vs.scan_id, vs.affine))
    for name in expected:
        r = load_method_results(found[name])
        assert r.level == "3d"
        assert r.maps.shape[1:] == shape and r.lesion.shape == r.maps.shape and r.brain.shape == r.maps.shape
        assert np.isfinite(r.scan_score).all() and np.isfinite(r.maps).all()
        # positive residual for haemorrhages: never above the |residual| map (the median filter is monotone)
        assert r.maps_haemorrhage.shape == r.maps.shape and (r.maps_haemorrhage >= 0).all()
        assert (r.maps_haemorrhage <= r.maps + 1e-6).all()
        assert set(r.split) <= {"val", "test"} and (r.split == "test").any()
        assert r.info["seconds_per_scan"] > 0 and r.info["device"]
        assert (out / "models" / f"{name}.pt").is_file()
        # voxel maps as NIfTI on the input's grid (same affine)
        sid = r.scan_id[r.split == "test"][0]
        m, a = load_nifti(out / "maps" / name / f"{sid}.nii.gz")
        assert m.shape == shape and np.allclose(a, aff[sid], atol=1e-4)
        assert np.allclose(m, r.maps[list(r.scan_id).index(sid)], atol=1e-6)
        if name.startswith("ctfsh"):
            assert len(r.info["scores"]["F"]) == len(r.scan_id)
        if name.startswith("resae"):
            assert r.segmentation["min_component_size"] >= 1  # Luo's declared segmentation step
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores.method) >= expected and {"scan_id", "split", "kind", "score"} <= set(scores.columns)
    assert (out / "summary.json").is_file()

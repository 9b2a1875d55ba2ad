"""The acquisition-shift false-positive test (issue 11 item 6): hand-computed rates, the re-rendering, the
table, and the inputs that must fail or skip."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pandas as pd
import pytest

from ctad_core.data.manifest import load_slices, load_volumes, read_manifest, write_manifest
from ctad_core.data.phantom_set import PhantomSetSpec, ShiftUnavailable, prepare_phantoms, render_shifted
from ctad_core.evaluation import evaluate
from ctad_core.evaluation import shift as S
from ctad_core.results import MethodResults
from ctad_core.run import Run
from ctad_core.utils import read_json, write_json
from tests.evaluation._synthetic import synthetic


def _hand_results(test_maps: np.ndarray, test_scores: np.ndarray, test_brain: np.ndarray) -> MethodResults:
    """4 healthy val scans (scores 0.1–0.4, maps 0..7 each) and healthy test scans as given; (2, 2, 2) volumes."""
    n_val, n_test = 4, len(test_scores)
    val_maps = np.tile(np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2), (n_val, 1, 1, 1))
    maps = np.concatenate([val_maps, test_maps.astype(np.float32)])
    brain = np.concatenate([np.ones_like(val_maps, np.uint8), test_brain.astype(np.uint8)])
    return MethodResults(
        "hand",
        "3d",
        np.array([f"v{i}" for i in range(n_val)] + [f"t{i}" for i in range(n_test)]),
        np.array(["val"] * n_val + ["test"] * n_test),
        np.array(["healthy"] * (n_val + n_test)),
        np.r_[[0.1, 0.2, 0.3, 0.4], test_scores].astype(np.float64),
        maps,
        np.zeros(maps.shape, np.uint8),
        brain,
    )


def test_flagged_rates_equal_a_hand_computation():
    # scan threshold: scan_fpr 0.25 of 4 healthy val scores {0.1, 0.2, 0.3, 0.4} allows 1 flagged -> t = 0.4
    # voxel threshold: fpr 0.125 of 32 val voxels (0..7 four times) allows 4 flagged -> t = 7
    test_maps = np.zeros((3, 2, 2, 2), np.float32)
    test_maps[1].flat[:3] = 7.5  # 3 voxels >= 7
    test_maps[2][:] = 9.0  # all 8 >= 7, but only 4 inside the mask
    brain = np.ones((3, 2, 2, 2), np.uint8)
    brain[2, 0] = 0
    res = _hand_results(test_maps, np.array([0.35, 0.45, 0.4]), brain)
    t = S.default_thresholds(res, fpr=0.125, scan_fpr=0.25)
    assert t == {"scan": 0.4, "voxel": 7.0}
    r = S.healthy_false_positives(res, t, n_boot=200, seed=1)
    assert r["n_scans"] == 3
    assert r["scans_flagged"] == pytest.approx(2 / 3)  # 0.45 and 0.4 (>=) are flagged, 0.35 is not
    assert r["voxel_fpr"] == pytest.approx((0 + 3 + 4) / (8 + 8 + 4))
    for k in ("scans_flagged", "voxel_fpr"):
        lo, hi = r[f"{k}_ci"]
        assert 0.0 <= lo <= r[k] <= hi <= 1.0
    # the thresholds are the evaluator's own default rules
    m = evaluate(res, fpr=0.125, scan_fpr=0.25, n_boot=10).metrics
    assert m["scan_operating_points"]["healthy_val_quantile"]["threshold"] == pytest.approx(t["scan"])


def test_default_thresholds_are_the_evaluators():
    res = synthetic("m", "3d", seed=3)
    t = S.default_thresholds(res, fpr=0.05, scan_fpr=0.2)
    m = evaluate(res, fpr=0.05, scan_fpr=0.2, n_boot=10, keep_segmentations=False).metrics
    assert m["scan_operating_points"]["healthy_val_quantile"]["threshold"] == pytest.approx(t["scan"])
    assert m["dice_by_rule"]["healthy_fpr"]["all"]["threshold"] == pytest.approx(t["voxel"])


@pytest.mark.parametrize("level", ["2d", "3d"])
def test_table_has_both_conditions_and_a_shift_raises_the_rates(level):
    base = synthetic("a", level, seed=0)
    shifted = synthetic("a", level, seed=0, shift_test=0.5)  # the same items, maps brighter on test
    rows = S.shift_rows(base, shifted, fpr=0.05, scan_fpr=0.2, n_boot=50)
    table = pd.DataFrame(rows)
    assert list(table["condition"]) == ["unshifted", "shifted"]
    assert set(S.COLUMNS) <= set(table.columns)
    u, s = table.iloc[0], table.iloc[1]
    assert u["scan_threshold"] == s["scan_threshold"] and u["voxel_threshold"] == s["voxel_threshold"]
    assert s["voxel_fpr"] > u["voxel_fpr"] and s["scans_flagged"] >= u["scans_flagged"]
    md = S.shift_markdown(table)
    assert md.count("\n") == 2 and "| a |" in md


def test_no_healthy_items_is_named():
    res = synthetic("b", "3d")
    res.kind = np.where(res.split == "test", "iph", res.kind)
    with pytest.raises(ValueError, match="b: no healthy test scan"):
        S.healthy_false_positives(res, {"scan": 0.5, "voxel": 0.5})
    res = synthetic("c", "3d")
    res.kind = np.where(res.split == "val", "iph", res.kind)
    with pytest.raises(ValueError, match="c: no healthy validation item"):
        S.default_thresholds(res)


# ------------------------------------------------------------------------------------- the re-rendering


@pytest.fixture(scope="module")
def phantom_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("shift_run")
    spec = PhantomSetSpec(
        n_train=2, n_val_healthy=1, n_test_healthy=2, n_val_per_kind=1, n_test_per_kind=0, kinds=("iph",),
        shape_3d=(24, 24, 24), size_2d=32, slices_2d=2, seed=5, aligned=True,
    )  # fmt: skip
    prepare_phantoms(root / "data", spec, "brain", workers=1, progress=False)
    return root


def _digest(folder) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_shifted_rendering_changes_the_acquisition_only(phantom_run, tmp_path):
    before = _digest(phantom_run / "data")
    same = render_shifted(phantom_run, {}, tmp_path / "same")
    shifted = render_shifted(phantom_run, S.DEFAULT_SHIFT, tmp_path / "shifted")
    assert _digest(phantom_run / "data") == before  # the run's data are not modified
    orig = load_volumes(phantom_run, "test")
    a, b = load_volumes(tmp_path / "same"), load_volumes(tmp_path / "shifted")
    # same patients, and without a shift the very same scans: the re-rendering is the data prep's
    assert list(same.patient_id) == list(shifted.patient_id) == list(read_manifest(phantom_run).query(
        "split == 'test' and kind == 'healthy'").patient_id)  # fmt: skip
    np.testing.assert_array_equal(a.image, orig.image)
    np.testing.assert_array_equal(a.brain, orig.brain)
    # the shift: the manifest records it, the images change, the lesion-free brain mask barely does
    assert set(shifted.kernel) == {"sharp"} and set(shifted.slice_thickness_mm) == {0.625}
    assert set(shifted.noise_sd_5mm) == {9.0} and (shifted.lesion_voxels == 0).all()
    assert np.abs(b.image - a.image)[a.brain > 0].mean() > 0.5
    assert (b.brain != a.brain).mean() < 0.01
    sa, sb = load_slices(tmp_path / "same"), load_slices(tmp_path / "shifted")
    assert (sb.brain != sa.brain).mean() < 0.03
    # thin sharp slices with more noise: the high-frequency noise inside the brain rises
    hf = lambda s: np.diff(s.image, axis=-1)[(s.brain[..., 1:] > 0) & (s.brain[..., :-1] > 0)].std()  # noqa: E731
    assert hf(sb) > 1.5 * hf(sa)


def test_bad_inputs_name_the_cause(phantom_run, tmp_path):
    with pytest.raises(ValueError, match="unknown kernel 'bone'"):
        render_shifted(phantom_run, {"kernel": "bone"}, tmp_path / "x")
    with pytest.raises(ValueError, match="unknown acquisition settings"):
        render_shifted(phantom_run, {"kvp": 80}, tmp_path / "x")
    assert not (tmp_path / "x").exists()  # checked before anything is rendered or written
    # a run without healthy test scans
    no_healthy = tmp_path / "no_healthy"
    shutil.copytree(phantom_run / "data", no_healthy / "data")
    df = read_manifest(no_healthy)
    write_manifest(df[~((df.split == "test") & (df.kind == "healthy"))], no_healthy / "data")
    with pytest.raises(ValueError, match="manifest.csv has no healthy scan in split 'test'"):
        render_shifted(no_healthy, S.DEFAULT_SHIFT, tmp_path / "y")
    # a real-data run: nothing to re-render, the error says so and names the config
    real = tmp_path / "real"
    shutil.copytree(phantom_run / "data", real / "data")
    cfg = read_json(real / "data" / "config.json")
    write_json(real / "data" / "config.json", {**cfg, "source": "cq500"})
    with pytest.raises(ShiftUnavailable, match=r"config.json: source 'cq500' is not 'phantom'"):
        S.shift_test(real, n_boot=10)


def test_shift_test_scores_every_method_in_both_conditions(phantom_run, tmp_path):
    from ctad_core.methods import run_method

    run = tmp_path / "run"
    shutil.copytree(phantom_run / "data", run / "data")
    for name in ("intensity", "normative"):  # baselines without training steps: fast
        run_method(name, run, progress=False)
    table = S.shift_test(run, methods=["intensity", "normative", "resae"], n_boot=20)
    assert sorted(table["method"].unique()) == ["intensity", "normative"]
    for _, t in table.groupby("method"):
        assert sorted(t["condition"]) == ["shifted", "unshifted"] and (t["n_scans"] == 2).all()
        assert t["scans_flagged"].between(0, 1).all() and t["voxel_fpr"].between(0, 1).all()
    assert table.attrs["skipped"] == {"resae": "no results in this run"}
    saved = read_json(run / "report" / "shift" / "shift.json")
    assert saved["acquisition"] == S.DEFAULT_SHIFT and len(saved["rows"]) == 4
    assert pd.read_csv(run / "report" / "shift" / "shift_false_positives.csv").shape[0] == 4


def test_score_scans_never_trains_and_names_the_cause(phantom_run, tmp_path):
    from ctad_core.methods import run_method, score_scans

    run = tmp_path / "run"
    shutil.copytree(phantom_run / "data", run / "data")
    vols = load_volumes(run, "test")
    with pytest.raises(
        FileNotFoundError, match=r"normative\.pt not found: method 'normative' has not been trained"
    ):
        score_scans("normative", run, vols)
    assert not (run / "volumetric" / "models" / "normative.pt").exists()  # not trained on the way
    run_method("normative", run, progress=False)
    with pytest.raises(ValueError, match="trained with another configuration"):
        score_scans("normative", run, vols, params={"normative_floor": 0.5})
    with pytest.raises(ValueError, match="scores 3d items: pass volumes"):
        score_scans("normative", run, slices=load_slices(run))
    # the same path as the test set: the run's own test scans give the written results' maps
    res = score_scans("normative", run, vols)
    written = Run(run).load_method_results("normative")
    sel = np.isin(written.scan_id, res.scan_id)
    np.testing.assert_allclose(res.maps, written.maps[sel], rtol=1e-6, atol=1e-6)

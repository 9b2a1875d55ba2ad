"""evaluate.py on small synthetic method results (2D slices and 3D volumes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ctad_core import evaluate as E
from ctad_core import metrics as M
from ctad_core.results import MethodResults, load_method_results, save_method_results

KINDS = ["healthy", "iph", "sdh", "tumour", "iph+fracture"]


def _synthetic(
    name: str, level: str = "2d", seed: int = 0, noise: float = 0.3, shift_test: float = 0.0
) -> MethodResults:
    rng = np.random.default_rng(seed)
    spatial = (16, 16) if level == "2d" else (6, 12, 12)
    per_scan = 3 if level == "2d" else 1
    sid, split, kind = [], [], []
    for s in range(20):
        sp = "val" if s < 10 else "test"
        k = KINDS[s % len(KINDS)]
        for _ in range(per_scan):
            sid.append(f"{sp}{s:02d}")
            split.append(sp)
            kind.append(k)
    n = len(sid)
    lesion = np.zeros((n, *spatial), np.uint8)
    for i in range(n):
        if kind[i] != "healthy" and (
            level == "3d" or i % 3 != 0
        ):  # some slices of a lesioned scan are normal
            c = rng.integers(3, 9, len(spatial))
            sl = tuple(slice(int(x), int(x) + 4) for x in c)
            lesion[(i, *sl)] = 1
    maps = rng.random(lesion.shape).astype(np.float32) * noise + lesion * 0.6
    maps[np.array(split) == "test"] += shift_test
    brain = np.ones_like(lesion)
    brain[(slice(None), *[slice(0, 1)] * len(spatial))] = 0
    score = maps.reshape(n, -1).max(1)
    return MethodResults(
        name,
        level,
        np.array(sid),
        np.array(split),
        np.array(kind),
        score,
        maps,
        lesion,
        brain,
        info={"seconds_per_scan": 0.5, "device": "cpu"},
    )


def test_evaluate_method_2d_keys_and_values():
    res = _synthetic("a")
    m = E.evaluate_method(res)
    for k in (
        "pixel_auroc",
        "pixel_auprc",
        "dice_mean",
        "dice_median",
        "scan_auroc",
        "scan_auroc_by_kind",
        "seconds_per_scan",
        "slice_auroc",
        "slice_auprc",
        "dice_seed004",
        "lesion_detection",
        "dice_haemorrhage",
    ):
        assert k in m, k
    assert m["pixel_auroc"] > 0.9 and m["dice_mean"] > 0.5
    assert sorted(m["scan_auroc_by_kind"]) == ["fracture", "iph", "sdh", "tumour"]
    assert m["dice_haemorrhage"]["n"] < m["dice_all"]["n"]
    assert m["scan_aggregate"] == "max" and m["n_test_scans"] == 10
    # pixel AUROC equals sklearn-checked metric on the test pixels in the mask
    t = res.split == "test"
    assert m["pixel_auroc"] == pytest.approx(M.roc_auc(res.maps[t], res.lesion[t], res.brain[t]))


def test_dice_threshold_comes_from_validation_not_test():
    res = _synthetic("a", shift_test=0.25)  # test maps are shifted: the test-optimal threshold differs
    ev = E.evaluate_method_full(res)
    val = (res.split == "val") & (res.lesion.reshape(len(res.lesion), -1).any(1))
    sw = ev.sweeps["all"]
    assert ev.metrics["dice_threshold"] == pytest.approx(
        M.dice_vs_threshold(res.maps[val], res.lesion[val], res.brain[val], sw.thresholds).best_threshold
    )
    assert ev.metrics["dice_oracle_test"] > ev.metrics["dice_seed004"]


def test_scan_scores_aggregate_slices_by_max():
    res = _synthetic("a")
    st = E.scan_table(res, "test")
    sel = res.scan_id == st["scan_id"][0]
    assert st["score"][0] == res.scan_score[sel].max()


def test_evaluate_3d_method_and_score_only_method():
    m = E.evaluate_method(_synthetic("v", "3d"))
    assert m["level"] == "3d" and "slice_auroc" in m and "slice_auroc_normality" in m
    res = _synthetic("s")
    res.maps = res.lesion = res.brain = None
    m2 = E.evaluate_method(res)
    assert "pixel_auroc" not in m2 and 0 <= m2["scan_auroc"] <= 1


def test_item_level_and_model_dims_are_recorded_apart(tmp_path):
    # fanogan2d: a 2D model scoring volumes — items "3d", model "2d", in the results and in the report
    v = _synthetic("fanogan2d", "3d", seed=3)
    v.info["model_dims"] = "2d"
    back = load_method_results(save_method_results(tmp_path, v))
    assert back.level == "3d" and back.model_dims == "2d"
    s = _synthetic("fastgan_restoration")  # no info: the model is as its items
    assert s.model_dims == "2d" and _synthetic("ae3d", "3d").model_dims == "3d"
    m = E.evaluate_method(back)
    assert m["level"] == "3d" and m["model_dims"] == "2d"
    table = E.markdown_tables({"methods": {"fanogan2d": m, "fastgan_restoration": E.evaluate_method(s)}})[
        "summary"
    ]
    assert "| Method | items | model |" in table
    assert "| fanogan2d | volumes | 2D |" in table and "| fastgan_restoration | slices | 2D |" in table


def test_build_report_writes_metrics_tables_and_baseline_roundtrip(tmp_path):
    run = tmp_path / "run"
    save_method_results(run / "restoration", _synthetic("fastgan_restoration", seed=1))
    save_method_results(run / "restoration", _synthetic("fastgan_encoder", seed=1, noise=0.75))
    save_method_results(run / "volumetric", _synthetic("ae3d", "3d", seed=2))
    rep, evals = E.build_report(
        run,
        profile="smoke",
        seed=0,
        device="cpu",
        fid={"extractor": "x", "n_generated": 4, "healthy": {"n_real": 3, "fid": 1.0, "fid_inf": 0.5}},
    )
    on_disk = json.loads((run / "report" / "metrics.json").read_text())
    assert on_disk["profile"] == "smoke" and set(on_disk["methods"]) == {
        "fastgan_restoration",
        "fastgan_encoder",
        "ae3d",
    }
    assert E.check_report(on_disk) == []
    assert "fastgan_encoder vs fastgan_restoration" in on_disk["wilcoxon"]
    for stem in ("table3_seed000_dice", "table1_seed002_auroc_by_kind", "table3_seed004", "summary", "fid"):
        assert (run / "report" / f"{stem}.md").is_file(), stem
    base = E.record_baseline(run, "smoke", out=tmp_path / "smoke.json")
    b = json.loads(base.read_text())
    assert E.compare_to_baseline(on_disk, b) == []
    on_disk["methods"]["ae3d"]["pixel_auroc"] -= 0.5
    assert any("ae3d.pixel_auroc" in d for d in E.compare_to_baseline(on_disk, b))
    assert E.main(["check", "--run-dir", str(run), "--baseline", str(base)]) == 0
    # record-baseline writes where it is told and nowhere else (never into the repository's tests/)
    repo_baselines = Path(E.__file__).resolve().parents[1] / "tests" / "baselines"
    listing = {p.name: p.stat().st_mtime_ns for p in repo_baselines.iterdir()}
    out = tmp_path / "elsewhere" / "cli.json"
    assert E.main(["record-baseline", "--run-dir", str(run), "--profile", "smoke", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["methods"] == b["methods"]
    with pytest.raises(SystemExit):  # --out is required
        E.main(["record-baseline", "--run-dir", str(run), "--profile", "smoke"])
    with pytest.raises(TypeError):  # so is out
        E.record_baseline(run, "smoke")
    assert {p.name: p.stat().st_mtime_ns for p in repo_baselines.iterdir()} == listing


def test_report_json_has_no_nan(tmp_path):
    run = tmp_path / "run"
    res = _synthetic("only_healthy_val")
    res.kind[res.split == "val"] = "healthy"  # Youden on val undefined
    save_method_results(run / "restoration", res)
    with pytest.warns(M.MetricWarning):
        E.build_report(run, profile="smoke")
    text = (run / "report" / "metrics.json").read_text()
    assert "NaN" not in text
    with pytest.raises(FileNotFoundError):
        E.build_report(tmp_path / "empty")


def test_aligned_inputs_give_recon_error_stats(tmp_path):
    from ctad_core.data.manifest import SliceSet, save_slices
    from ctad_core.data.windows import from_model
    from ctad_core.utils import write_json

    res = _synthetic("r", seed=3)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, res.maps.shape).astype(np.float32)
    res.recon = np.clip(x + 0.1, -1, 1).astype(np.float32)
    n = len(res.scan_id)
    idx = np.array([i % 3 for i in range(n)])
    order = rng.permutation(n)  # slices.npz in another order: alignment must undo it
    s = SliceSet(
        from_model(x, "brain")[order],
        res.lesion[order],
        res.brain[order],
        res.scan_id[order],
        idx[order],
        res.split[order],
        res.kind[order],
        np.zeros(n, np.int8),
    )
    (tmp_path / "data").mkdir()
    save_slices(tmp_path / "data" / "slices.npz", s)
    write_json(tmp_path / "data" / "config.json", {"window": "brain"})
    got = E.aligned_inputs(res, tmp_path)
    np.testing.assert_allclose(got, x, atol=1e-5)
    m = E.evaluate_method(res, inputs=got)
    assert m["recon_error"]["normal"]["mean_abs"] == pytest.approx(0.05, abs=0.01)
    res.lesion = res.lesion.copy()
    res.lesion[0, 0, 0] = 1 - res.lesion[0, 0, 0]  # a mismatch refuses the alignment
    assert E.aligned_inputs(res, tmp_path) is None


def test_seconds_per_slice_become_seconds_per_scan_and_closing_is_reported():
    res = _synthetic("t")
    res.info = {"seconds_per_scan": 0.5, "seconds_unit": "slice (all members)", "closing_radius": 1}
    m = E.evaluate_method(res)
    assert m["seconds_per_slice"] == 0.5 and m["seconds_per_scan"] == pytest.approx(1.5)  # 3 slices per scan
    assert m["dice_postprocessed"]["postprocess"] == {"closing_radius": 1}


def test_aligned_inputs_resized_like_notebook04(tmp_path):
    from ctad_core.data.manifest import SliceSet, save_slices
    from ctad_core.data.windows import from_model
    from ctad_core.methods.fastgan.train import prepare_slices
    from ctad_core.utils import write_json

    res = _synthetic("r", seed=4)
    n = len(res.scan_id)
    rng = np.random.default_rng(1)
    big = rng.uniform(-1, 1, (n, 32, 32)).astype(np.float32)
    big_les = np.repeat(np.repeat(res.lesion, 2, 1), 2, 2)
    idx = np.array([i % 3 for i in range(n)])
    s = SliceSet(
        from_model(big, "brain"),
        big_les,
        np.ones_like(big_les),
        res.scan_id,
        idx,
        res.split,
        res.kind,
        np.zeros(n, np.int8),
    )
    (tmp_path / "data").mkdir()
    save_slices(tmp_path / "data" / "slices.npz", s)
    write_json(tmp_path / "data" / "config.json", {"window": "brain"})
    res.recon = np.zeros_like(res.maps)
    res.info["slice_index"] = idx.tolist()
    got = E.aligned_inputs(res, tmp_path)
    assert got is not None and got.shape == res.maps.shape
    np.testing.assert_allclose(got, prepare_slices(big, 16)[:, 0].numpy(), atol=1e-5)


def test_map_score_auroc_by_hand():
    """scan_auroc_map: top-1 % mean of each item's map in its mask, max over a scan's slices, then sklearn AUROC."""
    from sklearn.metrics import roc_auc_score

    res = _synthetic("m", "2d", seed=3)
    m = E.evaluate_method(res)
    t = res.split == "test"
    per_item = []
    for mp, b in zip(res.maps, res.brain):
        v = np.sort(mp[b > 0])[::-1]
        per_item.append(v[: int(np.ceil(0.01 * v.size))].mean())
    per_item = np.array(per_item)
    ids = np.unique(res.scan_id[t])
    s = np.array([per_item[t][res.scan_id[t] == i].max() for i in ids])
    y = np.array([res.kind[t][res.scan_id[t] == i][0] != "healthy" for i in ids]).astype(int)
    assert m["scan_auroc_map"] == pytest.approx(roc_auc_score(y, s))
    assert sorted(m["scan_auroc_map_by_kind"]) == sorted(m["scan_auroc_by_kind"])
    tables = E.markdown_tables({"methods": {"m": m}})
    assert (
        "scan AUROC (map score)" in tables["summary"] and "TOTAL" in tables["table1_auroc_by_kind_map_score"]
    )


def test_haemorrhage_subset_uses_the_positive_residual(tmp_path):
    """Seed 000 scores haemorrhages on max(x - x_hat, 0): with maps_haemorrhage given, the haemorrhage Dice
    and pixel AUROC come from it (threshold from validation), the all-lesion figures from ``maps``."""
    from ctad_core.results import load_method_results

    res = _synthetic("h", "2d", seed=5, noise=0.9)  # |residual| maps: noisy
    clean = (res.lesion != 0) * 0.8 + np.random.default_rng(1).random(res.maps.shape).astype(np.float32) * 0.1
    res.maps_haemorrhage = clean.astype(np.float32)
    m = E.evaluate_method(res)
    without = E.evaluate_method(_synthetic("h", "2d", seed=5, noise=0.9))
    assert m["dice_haemorrhage"]["residual"] == "max(x - x_hat, 0)"
    assert without["dice_haemorrhage"]["residual"] == "the method's map"
    assert m["dice_haemorrhage"]["median"] > without["dice_haemorrhage"]["median"] + 0.2
    assert m["dice_all"] == without["dice_all"] and m["pixel_auroc"] == without["pixel_auroc"]
    t = res.split == "test"
    h = t & np.isin(res.kind, ["healthy", "iph", "sdh", "iph+fracture"])
    assert m["pixel_auroc_haemorrhage"] == pytest.approx(
        M.roc_auc(clean[h], res.lesion[h] != 0, res.brain[h])
    )
    # the field survives the results files
    back = load_method_results(save_method_results(tmp_path, res))
    np.testing.assert_array_equal(back.maps_haemorrhage, res.maps_haemorrhage)
    with pytest.raises(ValueError, match="maps_haemorrhage"):
        MethodResults(
            "bad", "2d", res.scan_id, res.split, res.kind, res.scan_score, maps_haemorrhage=res.maps[:3]
        )


def test_qualitative_panel_rows_per_level():
    """2D and 3D methods score different items: each level gets its own rows, none left empty."""
    import matplotlib

    matplotlib.use("Agg")
    from ctad_core import report_figures as RF

    res = {
        "a2": _synthetic("a2", "2d"),
        "b2": _synthetic("b2", "2d", seed=1),
        "v3": _synthetic("v3", "3d", seed=2),
    }
    evals = {n: E.evaluate_method_full(r) for n, r in res.items()}
    fig = RF.qualitative_panel(res, evals, n_items=2, seed=0)
    axes = np.array(fig.axes).reshape(4, 1 + 3 * 2)
    for row in axes:  # every row draws its reference and at least one method's map
        assert row[0].images and row[2].images
    assert not axes[2, 5].images and not axes[3, 5].images  # one 3D method: its second slot stays empty
    les = np.zeros((6, 4, 4), np.uint8)
    les[4, 1:3, 1:3] = 1
    assert RF._lesion_slice(les) == 4 and RF._lesion_slice(les[0]) is None
    matplotlib.pyplot.close(fig)

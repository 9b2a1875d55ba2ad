"""The baselines of issue 11 as registered methods: listed by the registry, run by ``run_method`` on a tiny
fake run (volumes and slices), written as MethodResults the evaluator takes; maps checked against numpy by
hand; the DAE's training resumes exactly and is probed in a dry run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ctad_core import methods as M
from ctad_core import probe as P
from ctad_core.data.manifest import SliceSet, load_volumes, save_slices
from ctad_core.distributed import DistInfo
from ctad_core.evaluation import evaluate
from ctad_core.methods.base import training_images
from ctad_core.methods.dae.train import train_dae
from ctad_core.results import load_method_results
from ctad_core.run import Run
from ctad_core.train import PhaseRunner
from tests._volumetric_fake import fake_run_fixture

fake_run = fake_run_fixture()

BASE_3D = ["intensity", "intensity_hypo", "normative", "dae"]
BASE_2D = ["intensity2d", "intensity_hypo2d", "normative2d", "dae2d"]
TINY = {
    "dae_channels": [2, 4],
    "dae_steps": 3,
    "dae_batch_size": 2,
    "dae_downsample": 1,
    "dae_noise_cell": 2,
    "dae_median": 3,
    "dae_erode": 1,
    "ckpt_every": 2,
    "eval_batch_size": 2,
    "batch_size": 8,
    "max_slices_per_split": 0,
}
LO, HI = 0.0, 80.0  # the "brain" window (L40 / W80), written out by hand


def _window(hu: np.ndarray) -> np.ndarray:
    return (np.clip(hu, LO, HI) - LO) / (HI - LO) * 2.0 - 1.0


def _top1(maps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the top 1 % (at least one value) of each item's map inside its mask, by sorting."""
    out = []
    for m, b in zip(maps, mask):
        v = np.sort(m[b > 0])[::-1]
        out.append(v[: max(1, int(np.ceil(0.01 * v.size)))].mean() if v.size else 0.0)
    return np.asarray(out)


@pytest.fixture(scope="module")
def run_with_slices(fake_run):
    """The fake run plus ``data/slices.npz``: the three middle axial slices of every volume."""
    vs = load_volumes(fake_run, ("train", "val", "test"))
    k = vs.image.shape[1] // 2
    idx = [k - 1, k, k + 1]
    n = len(vs.scan_id)
    save_slices(
        fake_run / "data" / "slices.npz",
        SliceSet(
            image=vs.image[:, idx].reshape(-1, *vs.image.shape[2:]).astype(np.float32),
            lesion=vs.lesion[:, idx].reshape(-1, *vs.image.shape[2:]),
            brain=vs.brain[:, idx].reshape(-1, *vs.image.shape[2:]),
            scan_id=np.repeat(vs.scan_id, 3),
            slice_index=np.tile(idx, n),
            split=np.repeat(vs.split, 3),
            kind=np.repeat(vs.kind, 3),
            slice_label=vs.lesion[:, idx].reshape(n * 3, -1).any(1).astype(np.uint8),
        ),
    )
    return fake_run


@pytest.fixture(scope="module")
def results_3d(fake_run):
    return {n: M.run_method(n, fake_run, TINY, progress=False) for n in BASE_3D}


@pytest.fixture(scope="module")
def results_2d(run_with_slices):
    return {n: M.run_method(n, run_with_slices, TINY, progress=False) for n in BASE_2D}


def test_registry_lists_the_baselines_at_both_levels():
    assert M.baseline_names("3d") == BASE_3D and M.baseline_names("2d") == BASE_2D
    assert set(M.baseline_names()) == set(BASE_3D + BASE_2D)
    for n in BASE_3D + BASE_2D:
        d = M.get(n)
        assert d.baseline and d.family in M.FAMILIES and M.FAMILIES[d.family].baseline
        two = n.endswith("2d")
        assert (d.level, d.model_dims, d.stage) == (
            ("2d", "2d", "restoration") if two else ("3d", "3d", "volumetric")
        )
        assert d.notebook == ("04_latent_restoration" if two else "05_volumetric_3d")
        assert "dae_steps" in M.method_params(n)  # the baselines' defaults are in their notebook's cell
    assert not any(M.get(n).baseline for n in ("fanogan3d", "resae", "fastgan_encoder", "ctfsh_ae_l1"))


def test_dae_spec_is_2d_or_3d_by_the_grid_and_checks_the_unet_sides():
    assert M.method_spec("dae", (16, 16, 16), TINY).spatial_dims == 3
    assert M.method_spec("dae2d", (16, 16), TINY).spatial_dims == 2
    assert (
        M.method_spec(
            "dae", (16, 16, 16), {**TINY, "dae_channels": [2, 4, 8], "dae_downsample": 2}
        ).downsample
        == 2
    )
    with pytest.raises(ValueError, match="divisible by 4"):
        M.method_spec("dae", (6, 6, 6), {**TINY, "dae_channels": [2, 4, 8]})


@pytest.mark.parametrize("level", ["3d", "2d"])
def test_results_are_written_and_accepted_by_the_evaluator(level, results_3d, results_2d, fake_run):
    res = results_3d if level == "3d" else results_2d
    stage = "volumetric" if level == "3d" else "restoration"
    for name, r in res.items():
        assert r.level == level and r.model_dims == level and r.info["baseline"] is True
        assert r.info["segmentation"] == {"closing_radius": 0, "vote": None, "min_component_size": 0}
        assert r.maps.shape == r.lesion.shape == r.brain.shape == r.inputs.shape == r.recon.shape
        assert np.isfinite(r.maps).all() and (r.maps >= 0).all() and (r.maps[r.brain == 0] == 0).all()
        # map score: the mean of the top 1 % of the map inside the mask, by sorting
        np.testing.assert_allclose(r.scan_score, _top1(r.maps, r.brain), rtol=1e-5, atol=1e-6)
        back = load_method_results(Run(fake_run).stage(stage) / "methods" / f"{name}.npz")
        np.testing.assert_array_equal(back.maps, r.maps)
        m = evaluate(back, keep_segmentations=False).metrics
        assert 0.0 <= m["scan_auroc"] <= 1.0 and 0.0 <= m["pixel_auroc"] <= 1.0
        assert m["seconds_per_scan"] >= 0


def test_the_2d_baselines_score_the_slices_seed_000_scores(results_2d, run_with_slices):
    from ctad_core.methods.fastgan.method import eval_slices

    ev = eval_slices(Run(run_with_slices), 16, 0, 0)
    for r in results_2d.values():
        np.testing.assert_array_equal(r.scan_id, ev.scan_id)
        assert r.info["slice_index"] == ev.slice_index.tolist() and r.info["items_per_scan"] == 3.0
        tm = M.run_method(
            r.name, run_with_slices, TINY, progress=False, evaluate=False
        )  # reloaded, not scored
        assert isinstance(tm, M.TrainedMethod) and tm.spec.spatial_dims == 2
        assert (run_with_slices / "restoration" / "models" / f"{r.name}.pt").is_file()
        if r.name == "dae2d":  # its post-processing erodes the brain mask (Kascenas)
            assert (r.brain <= ev.brain).all() and r.brain.sum() < ev.brain.sum()
        else:
            np.testing.assert_array_equal(r.brain, ev.brain)


def test_intensity_map_is_the_windowed_input_inside_the_brain(results_3d, results_2d, fake_run):
    vs = load_volumes(fake_run, ("val", "test"))
    x = _window(vs.image.astype(np.float64))
    inside = vs.brain > 0
    hyper, hypo = results_3d["intensity"], results_3d["intensity_hypo"]
    np.testing.assert_array_equal(hyper.scan_id, vs.scan_id)
    np.testing.assert_allclose(hyper.maps, np.where(inside, x + 1, 0), atol=1e-5)
    np.testing.assert_allclose(hypo.maps, np.where(inside, 1 - x, 0), atol=1e-5)
    np.testing.assert_allclose(hyper.maps_haemorrhage, hyper.maps, atol=1e-6)
    np.testing.assert_allclose(hypo.maps_haemorrhage, hypo.maps, atol=1e-6)
    # a hyperdense blob (iph, 75 HU) in the fake heads scores above every healthy scan
    kinds = hyper.kind
    assert hyper.scan_score[kinds == "iph"].min() > hyper.scan_score[kinds == "healthy"].max()
    s = results_2d["intensity2d"]  # slices at their own size (no ensemble): the same rule per pixel
    np.testing.assert_allclose(s.maps, np.where(s.brain > 0, s.inputs + 1, 0), atol=1e-6)


def test_normative_deviation_by_hand(results_3d, fake_run):
    tr = load_volumes(fake_run, "train")
    xt = np.where(tr.brain > 0, _window(tr.image.astype(np.float64)), -1.0)  # skull-stripped training inputs
    med = np.median(xt, axis=0)
    spread = np.maximum(1.482602218505602 * np.median(np.abs(xt - med), axis=0), 0.02)
    vs = load_volumes(fake_run, ("val", "test"))
    x = np.where(vs.brain > 0, _window(vs.image.astype(np.float64)), -1.0)
    z = (x - med) / spread * (vs.brain > 0)
    r = results_3d["normative"]
    np.testing.assert_allclose(r.maps, np.abs(z), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(r.maps_haemorrhage, np.maximum(z, 0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(r.recon, np.broadcast_to(med, x.shape), atol=1e-6)


def _dae_training(tmp_path, fake_run, steps: int, monkeypatch, dry: int | None = None, probes=None):
    """Train the tiny 3D DAE in ``tmp_path``; ``dry``: a dry run of that many steps, probed into ``probes``."""
    spec = M.method_spec("dae", (16, 16, 16), {**TINY, "dae_steps": steps, "ckpt_every": 100})
    x = training_images(spec, np.stack([_window(v) for v in load_volumes(fake_run, "train").image]))
    for env, value in ((P.DRY_STEPS_ENV, dry), (P.PROBE_DIR_ENV, probes)):
        if value is None:
            monkeypatch.delenv(env, raising=False)
        else:
            monkeypatch.setenv(env, str(value))
    torch.manual_seed(0)
    model, _ = M.FAMILIES["dae"].build(spec)
    runner = PhaseRunner(
        tmp_path, DistInfo(device=torch.device("cpu")), 100, True, False, name="dae", batch_size=2
    )
    train_dae(model, x.astype(np.float32), spec, runner, seed=3)
    return model, runner.history["denoise"]


def test_dae_training_resumes_exactly_and_its_dry_run_is_probed(tmp_path, fake_run, monkeypatch):
    full, hist = _dae_training(tmp_path / "a", fake_run, 4, monkeypatch)
    _, first = _dae_training(tmp_path / "b", fake_run, 4, monkeypatch, dry=2, probes=tmp_path / "probes")
    assert len(first) == 2 and (tmp_path / "b" / "denoise.pt").is_file()  # the dry run stopped after 2 steps
    assert [p.name for p in (tmp_path / "probes").iterdir()] == ["dae_denoise.json"]
    rec = json.loads((tmp_path / "probes" / "dae_denoise.json").read_text())
    assert rec["steps_run"] == 2 and rec["total_steps"] == 4 and rec["trainable_parameters"] > 0
    resumed, hist_b = _dae_training(tmp_path / "b", fake_run, 4, monkeypatch)  # resumes at step 2
    assert [h["mse"] for h in hist_b] == [h["mse"] for h in hist]
    for (k, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k
    fresh, _ = _dae_training(tmp_path / "c", fake_run, 2, monkeypatch)  # fewer steps: a different model
    assert not all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), fresh.state_dict().values()))


def test_a_run_keeps_no_trained_network_after_run_method(fake_run):
    """Notebook 05 runs 20 methods in one kernel: each model must be freed once its results are written (the
    `gpu` dry run's kernel grew ~1 GB per 3D method while ``Run.cache`` kept every trained model and score)."""
    import gc

    def live_daes():
        gc.collect()
        return [o for o in gc.get_objects() if isinstance(o, torch.nn.Module) and type(o).__module__.startswith(
            "ctad_core.methods.dae")]

    assert not live_daes()
    run = Run(fake_run)
    res = M.run_method("dae", run, TINY, progress=False)
    assert res.maps.shape[0] > 0
    del res
    assert set(run.cache) <= {"volumes"}  # the prepared volumes are shared; nothing per method
    assert not live_daes()

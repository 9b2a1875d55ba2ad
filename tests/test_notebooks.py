"""What notebook 01 wrote in the smoke chain, and the chain runner itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctad_core.data.manifest import load_slices, load_volumes, read_config, read_manifest
from ctad_core.data.nifti import load_nifti
from ctad_core.data.phantom import LESION_KINDS


def test_chain_ran_every_notebook(smoke_run_dir, repo_root):
    nbs = sorted(p.name for p in (repo_root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert nbs
    for name in nbs:
        executed = smoke_run_dir / name
        assert executed.is_file(), f"{name} was not executed into the run dir"
        cells = json.loads(executed.read_text())["cells"]
        errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors
    chain = json.loads((smoke_run_dir / "chain.json").read_text())["smoke"]
    assert set(chain) == {n[:-6] for n in nbs}


def test_headless_chain_stores_no_widgets(smoke_run_dir):
    """``ctad run`` executes headless: text progress bars and static viewers, no widget traffic (the stall
    of issue 13 was a widget cell) and nothing in the executed notebooks that needs a live kernel."""
    for executed in sorted(smoke_run_dir.glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(executed.read_text())
        views = [o for c in nb["cells"] for o in c.get("outputs", [])
                 if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert not views, f"{executed.name} holds widget outputs"
        assert "widgets" not in nb["metadata"], f"{executed.name} stores widget state"
    cells = json.loads((smoke_run_dir / "01_data_prep.ipynb").read_text())["cells"]
    viewer_cell = next(c for c in cells if c["cell_type"] == "code" and "viz.slice_viewer(" in "".join(c["source"]))
    assert any("image/png" in o.get("data", {}) for o in viewer_cell["outputs"]), "static viewer not rendered"


def test_resume_skips_a_finished_chain(smoke_run_dir):
    from ctad_core.workbook import run_chain

    assert run_chain("smoke", smoke_run_dir, overrides={"device": "cpu"}, progress=False, resume=True) == {}


def test_data_prep_outputs(smoke_run_dir):
    df = read_manifest(smoke_run_dir)
    cfg = read_config(smoke_run_dir)
    assert set(df.split) == {"train", "val", "test"}
    assert (df[df.split == "train"].kind == "healthy").all()
    assert set(df[df.split == "test"].kind) == {"healthy", *LESION_KINDS}
    assert cfg["window"] == [0.0, 80.0] and cfg["shape_3d"] == [32, 32, 32]
    vols = load_volumes(smoke_run_dir)
    assert vols.image.shape == (len(df), 32, 32, 32) and vols.image.dtype == np.float32
    assert vols.image.min() <= -900 and vols.image.max() >= 1000, "air and bone expected in HU"
    lesioned = vols.kind != "healthy"
    assert all(vols.lesion[i].any() for i in np.flatnonzero(lesioned) if vols.kind[i] != "fracture")
    assert not vols.lesion[~lesioned].any()
    s = load_slices(smoke_run_dir)
    assert s.image.shape[1:] == (64, 64) and len(s) == 3 * len(df)
    assert set(np.unique(s.split)) == {"train", "val", "test"}
    assert (s.slice_label[s.kind == "healthy"] == 0).all()
    assert (s.slice_label[s.kind != "healthy"] == 1).sum() >= 5


def test_volume_affines_are_kept(smoke_run_dir):
    df = read_manifest(smoke_run_dir)
    row = df.iloc[0]
    vol, aff = load_nifti(smoke_run_dir / "data" / row.image)
    brain, aff_b = load_nifti(smoke_run_dir / "data" / row.brain_mask, np.uint8)
    np.testing.assert_allclose(aff, aff_b)
    assert np.allclose(np.abs(np.diag(aff[:3, :3])[::-1]), 230 / 32, atol=1e-3) or np.allclose(
        np.abs(aff[:3, :3]).sum(0), 230 / 32, atol=1e-3
    )
    assert vol.shape == brain.shape == (32, 32, 32)


def test_chain_rejects_unknown_profile_and_notebook(tmp_path):
    from ctad_core.workbook import main, run_chain

    with pytest.raises(ValueError, match="unknown profile"):
        run_chain("fast", tmp_path)
    with pytest.raises(ValueError, match="do not exist"):
        run_chain("smoke", tmp_path, only=["99"])
    with pytest.raises(SystemExit):
        main(["run", "--profile", "smoke", "--run-dir", str(tmp_path), "--set", "novalue"])


@pytest.mark.slow
def test_notebook_01_reads_a_folder_of_real_scans_and_02_trains_on_it(tmp_path, smoke_run_dir, cell_timeout):
    """Notebook 01 pointed at a plain folder of NIfTI scans (with a labels CSV) writes the same contract,
    and notebook 02 runs on it unchanged.

    Asks for ``smoke_run_dir`` so that it runs after the shared smoke chain, on the same xdist worker (two
    chains at once on 2 cores would only slow each other). Kernels no longer share TCP ports: ``ctad run``
    gives each one private IPC sockets.
    """
    import pandas as pd

    from ctad_core.data.nifti import save_nifti
    from ctad_core.data.phantom import make_phantom
    from ctad_core.workbook import run_chain

    src = tmp_path / "scans"
    rows = []
    for i in range(12):
        kind = "healthy" if i < 8 else "iph"
        p = make_phantom(900 + i, kind, shape=(12, 48, 48), spacing=(5.0, 4.8, 4.8))
        save_nifti(src / f"case{i:02d}.nii.gz", p.hu, p.affine)
        rows.append({"scan": f"case{i:02d}", "label": int(kind != "healthy"), "kind": kind})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    run = tmp_path / "run"
    prep = {"adapter_kwargs": {"labels_csv": str(tmp_path / "labels.csv")}, "progress": False}
    run_chain("smoke", run, only=["01", "02"], overrides={"source": "folder", "source_path": str(src), "prep": prep},
              progress=False, cell_timeout=cell_timeout)
    df = read_manifest(run)
    assert len(df) == 12 and set(df.source) == {"folder"}
    assert (df[df.split == "train"].label == 0).all() and set(df.split) == {"train", "val", "test"}
    vols = load_volumes(run)
    assert vols.image.shape[1:] == (32, 32, 32)
    s = load_slices(run)
    assert s.image.shape[1:] == (64, 64)
    assert (run / "02_gan_training.ipynb").is_file() and any((run / "gan").iterdir())

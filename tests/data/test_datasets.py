"""Dataset adapters on tiny fake folders in each public layout, and prepare_source end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydicom.uid import generate_uid

from ctad_core.data.datasets import (
    cq500_records,
    detect_source,
    folder_records,
    physionet_records,
    prepare_source,
    read_rsna_labels,
    rsna_records,
)
from ctad_core.data.manifest import load_slices, read_manifest
from ctad_core.data.nifti import centred_affine, save_nifti

SMALL = dict(target_spacing=None, mask_spacing=4.0, model_shape=(16, 24, 24), slice_shape=(24, 24), n_slices=3)
SUB = ["epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any"]


@pytest.fixture
def rsna(tmp_path, dicom, head):
    root = tmp_path / "rsna"
    img = root / "stage_2_train"
    img.mkdir(parents=True)
    rows = []
    for p, (pid, sick) in enumerate([("ID_p0", False), ("ID_p1", True), ("ID_p2", False)]):
        vol = head(shape=(8, 24, 24), spacing=(6.0, 8.0, 8.0), seed=p)
        uid, study = generate_uid(), generate_uid()
        for k in np.random.default_rng(p).permutation(8):  # file names say nothing about order
            name = f"ID_{p}{k:02d}abc"
            dicom.slice(img / f"{name}.dcm", vol[k], ipp=(-96, -96, 6.0 * k), pixel_spacing=(8, 8),
                        series_uid=uid, study_uid=study, patient_id=pid)
            for s in SUB:
                lab = int(sick and 3 <= k <= 5 and s in ("intraparenchymal", "any"))
                rows.append((f"{name}_{s}", lab))
    df = pd.DataFrame(rows, columns=["ID", "Label"])
    pd.concat([df, df.iloc[:6]]).to_csv(root / "stage_2_train.csv", index=False)  # with duplicated rows
    return root


def test_rsna_labels_and_grouping(rsna, tmp_path) -> None:
    lab = read_rsna_labels(rsna / "stage_2_train.csv")
    assert lab.shape == (24, 6) and set(lab.columns) == set(SUB)
    recs = rsna_records(rsna, cache_dir=tmp_path / "c")
    assert len(recs) == 3 and sorted(r.label for r in recs) == [0, 0, 1]
    sick = next(r for r in recs if r.label)
    assert sick.kind == "iph" and len(sick.inputs) == 8 and sum(v == 1 for v in sick.slice_labels.values()) == 3
    assert len({r.patient_id for r in recs}) == 3 and all("ID_p" not in r.patient_id for r in recs)
    assert (tmp_path / "c").is_dir() and rsna_records(rsna, cache_dir=tmp_path / "c")[0].scan_id == recs[0].scan_id


def test_prepare_rsna(rsna, tmp_path) -> None:
    data = tmp_path / "run" / "data"
    df = prepare_source("rsna", rsna, data, params=dict(SMALL, n_slices=8, min_brain_fraction=0.0), progress=False)
    assert len(df) == 3 and set(df.source) == {"rsna"} and (df.lesion_mask == "").all()
    assert (df[df.split == "train"].label == 0).all()
    m = read_manifest(tmp_path / "run")
    assert m.equals(df.astype(m.dtypes.to_dict())) or len(m) == 3
    s = load_slices(tmp_path / "run")
    sick = df[df.label == 1].scan_id.iloc[0]
    labs = s.slice_label[s.scan_id == sick]
    assert (labs == 1).any() and (labs == 0).any()  # per-slice labels mapped through positions
    assert (s.slice_label[s.scan_id != sick] == 0).all()
    again = prepare_source("rsna", rsna, tmp_path / "run2" / "data", params=dict(SMALL, n_slices=8, min_brain_fraction=0.0),
                           cache_dir=tmp_path / "run" / "cache", progress=False)
    assert len(again) == 3


def test_prepare_rsna_progress_false_prints_nothing(rsna, tmp_path, capfd) -> None:
    prepare_source("rsna", rsna, tmp_path / "run" / "data", params=dict(SMALL, n_slices=8, min_brain_fraction=0.0),
                   progress=False)
    err = capfd.readouterr().err
    assert "reading DICOM headers" not in err and "preparing" not in err and "%|" not in err
    rsna_records(rsna, cache_dir=tmp_path / "c2")  # the default still shows the header bar
    assert "reading DICOM headers" in capfd.readouterr().err


@pytest.fixture
def cq500(tmp_path, dicom, head):
    root = tmp_path / "cq500"
    for n in (0, 1, 2):
        study = root / f"CQ500CT{n} CQ500CT{n}" / "Unknown Study"
        vol = head(shape=(8, 24, 24), spacing=(5.0, 8.0, 8.0), seed=n)
        dicom.series(study / "CT PLAIN THIN", vol, spacing=(5.0, 8.0, 8.0), series_number=2, kernel="STANDARD",
                     patient_id=f"CQ{n}")
        dicom.series(study / "CT 0.625mm", vol + 300, spacing=(5.0, 8.0, 8.0), series_number=3, kernel="BONE",
                     patient_id=f"CQ{n}")
    cols = ["name", "Category"] + [f"R{r}:{f}" for r in (1, 2, 3) for f in ("ICH", "IPH", "Fracture", "MassEffect")]
    rows = [["CQ500-CT-0", "B1", 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],  # one reader only: healthy
            ["CQ500-CT-1", "B1", 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0],  # ICH + IPH by majority
            ["CQ500-CT-2", "B2", 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]]  # fracture
    pd.DataFrame(rows, columns=cols).to_csv(root / "reads.csv", index=False)
    return root


def test_cq500_records(cq500, tmp_path) -> None:
    recs = cq500_records(cq500)
    assert [(r.scan_id, r.label, r.kind) for r in recs] == [
        ("cq500-ct-0", 0, "healthy"), ("cq500-ct-1", 1, "iph+ich"), ("cq500-ct-2", 1, "fracture")]
    assert recs[1].extra["cq500_IPH"] == 1
    (cq500 / "cq500_labels.csv").write_text(
        "name;is_pathl;diagnosis;TEST;notes\nCT_0;0;HEALTHY;0;\nCT_1;1;IPH, ATY;1;x\nCT_2;1;FRAC;0;\n")
    recs = cq500_records(cq500)
    assert [r.kind for r in recs] == ["healthy", "aty+ich", "frac"] and recs[1].extra["ctfsh_test"] == 1


def test_prepare_cq500_picks_soft_series(cq500, tmp_path) -> None:
    with pytest.warns(UserWarning, match="picked series #2 'HEAD PLAIN'.*soft-tissue kernel"):
        df = prepare_source("cq500", cq500, tmp_path / "run" / "data", params=SMALL, progress=False)
    assert len(df) == 3 and set(df.kind) == {"healthy", "iph+ich", "fracture"}
    s = load_slices(tmp_path / "run")
    assert (s.slice_index == 0).sum() == 3  # one mid-axial slice per scan
    assert (s.slice_label[s.kind == "healthy"] == 0).all() and (s.slice_label[s.kind != "healthy"] == -1).all()


@pytest.fixture
def physionet(tmp_path, head):
    root = tmp_path / "ctich"
    rows = []
    for n, sick in ((49, True), (50, False)):
        vol = head(shape=(10, 24, 24), spacing=(5.0, 8.0, 8.0), seed=n)
        mask = np.zeros(vol.shape, np.uint8)
        if sick:
            mask[4:6, 10:14, 10:14] = 255
        aff = centred_affine(vol.shape, (5.0, 8.0, 8.0))
        save_nifti(root / "ct_scans" / f"{n:03d}.nii", vol, aff)
        save_nifti(root / "masks" / f"{n:03d}.nii", mask, aff)
        for k in range(10):
            h = int(sick and mask[k].any())
            rows.append([n, k + 1, 0, h, 0, 0, 0, 1 - h, 0])
    cols = ["PatientNumber", "SliceNumber", "Intraventricular", "Intraparenchymal", "Subarachnoid", "Epidural",
            "Subdural", "No_Hemorrhage", "Fracture_Yes_No"]
    pd.DataFrame(rows, columns=cols).to_csv(root / "hemorrhage_diagnosis_raw_ct.csv", index=False)
    return root


def test_physionet(physionet, tmp_path) -> None:
    recs = physionet_records(physionet)
    assert [(r.scan_id, r.label, r.kind) for r in recs] == [("physionet-049", 1, "iph"), ("physionet-050", 0, "healthy")]
    assert recs[0].slice_labels == {k: int(k in (4, 5)) for k in range(10)} and recs[0].lesion_path
    df = prepare_source("physionet", physionet, tmp_path / "run" / "data",
                        params=dict(SMALL, n_slices=16, min_brain_fraction=0.0), progress=False)
    sick = df[df.label == 1].iloc[0]
    assert sick.lesion_mask.endswith("_lesion.nii.gz")
    s = load_slices(tmp_path / "run")
    rows = s.scan_id == sick.scan_id
    assert (s.lesion[rows].max(axis=(1, 2)) > 0).any()
    has = s.lesion[rows].reshape(rows.sum(), -1).any(1)
    assert (s.slice_label[rows][has] == 1).all()  # slices through the mask are labelled abnormal


def test_folder(tmp_path, head) -> None:
    root = tmp_path / "mine"
    for i in range(3):
        vol = head(shape=(8, 24, 24), spacing=(5.0, 8.0, 8.0), seed=i)
        save_nifti(root / f"case{i}.nii.gz", vol, centred_affine(vol.shape, (5.0, 8.0, 8.0)))
    with pytest.warns(UserWarning, match="taken as healthy"):
        assert [r.label for r in folder_records(root)] == [0, 0, 0]
    csv = tmp_path / "labels.csv"
    csv.write_text("scan,label,kind,patient\ncase0.nii.gz,0,,p0\ncase1,1,tumour,p1\ncase2,0,,p0\n")
    recs = folder_records(root, csv)
    assert [(r.label, r.kind, r.patient_id) for r in recs] == [(0, "healthy", "p0"), (1, "tumour", "p1"),
                                                                (0, "healthy", "p0")]
    df = prepare_source("folder", root, tmp_path / "run" / "data", params=SMALL, progress=False,
                        adapter_kwargs={"labels_csv": csv}, window=[0, 80], shape_3d=[16, 16, 16], size_2d=20,
                        slices_2d=1, skull_strip=True)
    from ctad_core.data.manifest import read_config

    cfg = read_config(tmp_path / "run")
    assert cfg["window"] == [0.0, 80.0] and cfg["shape_3d"] == [16, 16, 16] and cfg["size_2d"] == 20
    assert load_slices(tmp_path / "run").image.shape == (3, 20, 20) and cfg["skull_stripped"] is True
    with pytest.raises(TypeError, match="unknown arguments"):
        prepare_source("folder", root, tmp_path / "r2" / "data", modelshape=[1, 1, 1])
    assert df.groupby("patient_id").split.nunique().max() == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("scan,label\nnope,1\n")
    with pytest.raises(FileNotFoundError, match="'nope' not found"):
        folder_records(root, bad)


def test_detect_and_errors(rsna, cq500, physionet, tmp_path) -> None:
    assert (detect_source(rsna), detect_source(cq500), detect_source(physionet)) == ("rsna", "cq500", "physionet")
    (tmp_path / "plain").mkdir()
    assert detect_source(tmp_path / "plain") == "folder"
    with pytest.raises(ValueError, match="unknown source"):
        prepare_source("kaggle", rsna, tmp_path / "d")
    (cq500 / "reads.csv").unlink()
    with pytest.raises(FileNotFoundError, match="CQ500 needs labels"):
        cq500_records(cq500)


def test_unreadable_scan_is_skipped(physionet, tmp_path) -> None:
    (physionet / "ct_scans" / "050.nii").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="physionet-050: skipped"):
        df = prepare_source("physionet", physionet, tmp_path / "run" / "data", params=SMALL, progress=False)
    assert df.scan_id.tolist() == ["physionet-049"]
    with pytest.raises(Exception, match="050.nii"):
        prepare_source("physionet", physionet, tmp_path / "run3" / "data", params=SMALL, progress=False,
                       on_error="raise")

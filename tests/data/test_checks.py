"""Notebook 01's checks (issue 15 item 5): the tissue HU table and the lesion slice picks."""

from __future__ import annotations

import hashlib

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ctad_core import viz  # noqa: E402
from ctad_core.data import checks  # noqa: E402
from ctad_core.data import phantom as ph  # noqa: E402
from ctad_core.data.nifti import zyx_affine  # noqa: E402


@pytest.fixture(scope="module")
def fine_tables():
    return {s: checks.tissue_check_phantom(s) for s in (0, 3)}


def test_fine_phantom_tissue_medians_inside_reference_and_no_nan(fine_tables):
    for seed, p in fine_tables.items():
        t = checks.tissue_hu_table(p)
        assert not t[["median HU (core)", "ref lo", "ref hi"]].isna().any().any(), t
        assert (t["check"] == "pass").all(), t[t["check"] != "pass"][
            ["median HU (core)", "reference HU", "why"]
        ]
        assert (t["measured on"] == "core").all()
        # the ventricles are CSF (REFERENCE.md 0-15 HU): the row that read "nan ... nan" before
        assert t.loc["ventricle", "reference HU"] == "0 … 15"
        for name in ("skin", "fat", "gm", "wm", "csf", "ventricle", "bone", "diploe"):
            lo, hi = t.loc[name, ["ref lo", "ref hi"]]
            assert lo - 0.5 <= t.loc[name, "median HU (core)"] <= hi + 0.5, (seed, name)
        # an independent reference: the layers' cores read the HU the patient was drawn with
        for name in ("skin", "fat", "csf", "bone"):
            assert t.loc[name, "median HU (core)"] == pytest.approx(p.params["hu"][name], abs=0.6), (
                seed,
                name,
            )


def test_gallery_grid_flags_thin_layers_with_the_reason():
    p = ph.make_phantom(0, "healthy", shape=(1, 256, 256), spacing=(5.0, 0.9, 0.9), noise=False, blur=False)
    t = checks.tissue_hu_table(p)
    skin_lo, _ = ph.HU_RANGES["skin"]
    assert t.loc["skin", "median HU (all)"] < skin_lo - 20  # the contradiction the notebook showed (−4.8 HU)
    assert t.loc["skin", "check"] == "flag" and "partial volume" in t.loc["skin", "why"]
    assert (t.loc[t["check"] == "flag", "why"].str.len() > 0).all()
    assert (t.loc[t["check"] == "pass", "why"] == "").all()
    value = np.where(t["measured on"] == "core", t["median HU (core)"], t["median HU (all)"])
    assert not np.isnan(value).any()
    assert "0.9 × 0.9 mm pixels, 5 mm slice" in t["grid"].iloc[0]


def _hand_phantom(hu: np.ndarray, tissue: np.ndarray) -> ph.Phantom:
    z = np.zeros(hu.shape, np.uint8)
    return ph.Phantom(
        hu=hu,
        spacing=(0.5, 0.5, 0.5),
        affine=zyx_affine((0.5, 0.5, 0.5)),
        tissue=tissue,
        lesion=z,
        mass_effect=z.astype(np.float32),
        brain=z,
        kind="healthy",
        params={"supersample": (1, 1, 1), "slice_mm": 0.5, "noise_sd": 0.0},
    )


def test_table_by_hand_core_counts_and_a_true_failure():
    tissue = np.zeros((1, 20, 20), np.uint8)  # air
    hu = np.full((1, 20, 20), -1000.0, np.float32)
    tissue[0, 2:8, 2:8] = ph.TISSUE_CODES["gm"]  # 6 x 6 block: core 4 x 4
    hu[0, 2:8, 2:8] = 37.0
    tissue[0, 10:18, 10:18] = ph.TISSUE_CODES["wm"]  # 8 x 8: core 6 x 6, HU off the reference 25-30
    hu[0, 10:18, 10:18] = 50.0
    hu[0, 10, 10:18] = 28.0  # the edge row is not in the core, so it does not move the core's median
    tissue[0, 0, :] = ph.TISSUE_CODES["skin"]  # one pixel thick: no core
    hu[0, 0, :] = 0.0
    before = hashlib.sha256(hu.tobytes() + tissue.tobytes()).hexdigest()
    t = checks.tissue_hu_table(_hand_phantom(hu, tissue), min_voxels=10)
    assert hashlib.sha256(hu.tobytes() + tissue.tobytes()).hexdigest() == before  # inputs untouched
    assert t.loc["gm", ["voxels", "core voxels"]].tolist() == [36, 16]
    assert t.loc["gm", "check"] == "pass" and t.loc["gm", "median HU (core)"] == 37.0
    assert t.loc["wm", ["voxels", "core voxels"]].tolist() == [64, 36]
    assert t.loc["wm", "median HU (core)"] == 50.0 and t.loc["wm", "check"] == "flag"
    assert "departs from REFERENCE.md" in t.loc["wm", "why"]
    assert t.loc["skin", "core voxels"] == 0 and t.loc["skin", "measured on"] == "all voxels"
    assert t.loc["skin", "check"] == "flag" and "no voxel lies" in t.loc["skin", "why"]
    assert "csf" not in t.index  # absent tissues are left out, not shown as NaN rows
    with pytest.raises(ValueError, match="erode"):
        checks.tissue_hu_table(_hand_phantom(hu, tissue), erode=-1)
    with pytest.raises(ValueError, match="labelled voxels"):
        checks.tissue_hu_table(_hand_phantom(hu, tissue), min_voxels=10_000)


def test_every_tissue_code_has_a_reference_range():
    for name in ph.TISSUE_CODES:
        lo, hi = checks.reference_range(name)
        assert lo <= hi
    with pytest.raises(KeyError, match="no reference HU range"):
        checks.reference_range("cartilage")


def test_lesion_slice_picks_take_each_lesioned_scan_at_its_largest_slice():
    # scans: a (healthy, 3 slices), b (iph: lesion largest on its 3rd slice), c (sdh), d (iph, smaller)
    scan = np.array(["a", "a", "a", "b", "b", "b", "c", "c", "d", "d"])
    kind = np.array(["healthy"] * 3 + ["iph"] * 3 + ["sdh"] * 2 + ["iph"] * 2)
    lesion = np.zeros((10, 8, 8), np.uint8)
    for row, n in {3: 2, 4: 5, 5: 9, 6: 4, 7: 1, 8: 3, 9: 1}.items():
        lesion[row].flat[:n] = 1
    picks = checks.lesion_slice_picks(lesion, scan, kind, n=12)
    assert picks == [5, 6, 8]  # iph's larger scan first, then sdh, then the second iph
    assert checks.lesion_slice_picks(lesion, scan, kind, n=2) == [5, 6]  # two kinds before a second iph
    assert all(kind[i] != "healthy" for i in picks)
    assert checks.lesion_slice_picks(np.zeros((3, 4, 4)), scan[:3], kind[:3]) == []
    with pytest.raises(ValueError, match="differ in length"):
        checks.lesion_slice_picks(lesion, scan[:3], kind)


def test_label_legend_names_the_tissues_present():
    labels = np.zeros((6, 6), np.uint8)
    labels[1:3] = ph.TISSUE_CODES["gm"]
    labels[4:] = ph.TISSUE_CODES["ventricle"]
    fig, ax = plt.subplots()
    leg = viz.show_labels(ax, labels, ph.TISSUE_CODES, "labels")
    assert [t.get_text() for t in leg.get_texts()] == ["air", "gm", "ventricle"]
    colours = viz.label_colours(ph.TISSUE_CODES)
    shown = ax.images[0].cmap(ax.images[0].norm(ph.TISSUE_CODES["gm"]))
    assert np.allclose(shown, colours["gm"])  # the legend's colour is the image's colour
    plt.close(fig)


def test_three_plane_rows_are_labelled():
    vol = np.zeros((8, 10, 12), np.float32)
    fig = viz.three_plane([vol, vol], ["a", "b"], windows=["brain", None], name="item X (iph)")
    axes = np.array(fig.axes).reshape(3, 2)
    assert [a.get_ylabel() for a in axes[:, 0]] == ["axial (z=4)", "coronal (y=5)", "sagittal (x=6)"]
    assert fig._suptitle.get_text() == "item X (iph)"
    plt.close(fig)

"""The data package's public API: ``from ctad_core.data import load_scan, make_phantom`` and the rest."""

from __future__ import annotations

import importlib

import numpy as np

import ctad_core.data as data
from ctad_core.data import load_scan, make_phantom, save_nifti

SUBMODULES = (
    "datasets",
    "io",
    "manifest",
    "nifti",
    "phantom",
    "phantom_set",
    "prepare",
    "preprocess",
    "windows",
)


def test_every_exported_name_is_the_submodules_object():
    assert len(set(data.__all__)) == len(data.__all__)
    homes = [importlib.import_module(f"ctad_core.data.{m}") for m in SUBMODULES]
    for name in data.__all__:
        obj = getattr(data, name)
        owners = [m.__name__ for m in homes if getattr(m, name, None) is obj]
        assert owners, f"{name} is not one of the data submodules' objects"
        assert not name.startswith("_") and (obj.__doc__ or "").strip(), f"{name}: public and documented"


def test_phantom_written_and_read_back_through_the_package_api(tmp_path):
    ph = make_phantom(5, "iph", shape=(3, 48, 48), spacing=(5, 4.8, 4.8), noise=False)
    before = ph.hu.copy()
    path = save_nifti(tmp_path / "head.nii.gz", ph.hu, ph.affine)
    scan = load_scan(path)
    np.testing.assert_allclose(scan.hu, ph.hu, atol=1e-3)
    np.testing.assert_allclose(scan.affine, ph.affine, atol=1e-5)
    np.testing.assert_allclose(scan.spacing, ph.spacing, rtol=1e-6)
    np.testing.assert_array_equal(ph.hu, before)  # the input is not modified

"""A tiny fake ``run_dir/data`` for the volumetric tests: ellipsoid heads in HU with a skull, brain masks and
blob lesions, written through the real manifest / NIfTI helpers (no phantom renderer needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ctad_core.data.manifest import write_manifest
from ctad_core.data.nifti import centred_affine, save_nifti
from ctad_core.utils import write_json


def _head(rng: np.random.Generator, n: int, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = (np.mgrid[:n, :n, :n].astype(np.float32) - (n - 1) / 2) / (n / 2)
    r = np.array([0.8, 0.85, 0.7]) * rng.uniform(0.93, 1.07, 3)
    d = np.sqrt((g[0] / r[0]) ** 2 + (g[1] / r[1]) ** 2 + (g[2] / r[2]) ** 2)
    hu = np.full((n, n, n), -1000.0, np.float32)
    hu[d < 1.0] = 1500.0
    brain = d < 0.85
    hu[brain] = 32.0 + rng.normal(0, 3, brain.sum())
    vent = np.sqrt((g[0] / 0.25) ** 2 + (g[1] / 0.15) ** 2 + ((g[2] - 0.1) / 0.3) ** 2) < 1
    hu[vent & brain] = 8.0
    lesion = np.zeros((n, n, n), np.uint8)
    if kind != "healthy":
        c = rng.uniform(-0.3, 0.3, 3)
        blob = np.sqrt(((g - c[:, None, None, None]) ** 2).sum(0)) < 0.22
        blob &= brain
        hu[blob] = 75.0 if kind == "iph" else 12.0
        lesion[blob] = 1 if kind == "iph" else 6
    return hu, brain.astype(np.uint8), lesion


def make_fake_run(root: str | Path, size: int = 16, n_train: int = 6, n_val: int = 4, n_test: int = 6, seed: int = 0) -> Path:
    """Write ``root/data`` (manifest, config, volumes) and return ``root``.

    Val and test hold healthy scans and two lesion kinds (``iph`` hyperdense, ``infarct`` hypodense).
    """
    root = Path(root)
    data = root / "data"
    rng = np.random.default_rng(seed)
    aff = centred_affine((size,) * 3, (2.0, 2.0, 2.0))
    rows = []
    plan = [("train", "healthy")] * n_train
    for split, n in (("val", n_val), ("test", n_test)):
        plan += [(split, ("healthy", "iph", "infarct")[i % 3]) for i in range(n)]
    for i, (split, kind) in enumerate(plan):
        hu, brain, lesion = _head(rng, size, kind)
        sid = f"fake{i:03d}"
        save_nifti(data / "volumes" / f"{sid}.nii.gz", hu, aff)
        save_nifti(data / "volumes" / f"{sid}_brain.nii.gz", brain, aff)
        save_nifti(data / "volumes" / f"{sid}_lesion.nii.gz", lesion, aff)
        rows.append({
            "scan_id": sid, "patient_id": f"p{i:03d}", "split": split, "label": int(kind != "healthy"), "kind": kind,
            "source": "phantom", "image": f"volumes/{sid}.nii.gz", "lesion_mask": f"volumes/{sid}_lesion.nii.gz",
            "brain_mask": f"volumes/{sid}_brain.nii.gz",
        })
    write_manifest(pd.DataFrame(rows), data)
    write_json(data / "config.json", {"window": "brain", "shape": [size] * 3, "source": "fake"})
    return root


def fake_run_fixture(scope: str = "module"):
    """A pytest fixture factory: one fake run (16³, 4 train / 3 val / 6 test) per test module."""
    import pytest

    @pytest.fixture(scope=scope)
    def fake_run(tmp_path_factory):
        import torch

        # tiny tensors gain nothing from threads, and OpenMP spinning hurts on a busy 2-core runner
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield make_fake_run(tmp_path_factory.mktemp("fake_run"), size=16, n_train=4, n_val=3, n_test=6)
        torch.set_num_threads(threads)

    return fake_run

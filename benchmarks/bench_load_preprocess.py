"""Seconds per scan to load a 512×512×~200 DICOM series and to preprocess it (alignment included).

Writes a synthetic head series with pydicom to a temporary folder (nothing downloaded), then times
``load_scan`` and ``preprocess_scan`` (1 mm working grid, masks, affine registration to a phantom-like atlas,
128³ model grid, 2D slices). Prints one line per stage and the machine. Not a pass/fail test.

    .venv/bin/python benchmarks/bench_load_preprocess.py [--slices 200] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from ctad_core.data.io import load_scan
from ctad_core.data.nifti import centred_affine
from ctad_core.data.preprocess import PreprocessParams, preprocess_scan


def head_slice(z_mm: float, n: int, px: float, rng: np.random.Generator, shift=(0.0, 0.0)) -> np.ndarray:
    c = (np.arange(n) - (n - 1) / 2) * px
    y, x = np.meshgrid(c - shift[0], c - shift[1], indexing="ij")
    r = np.sqrt((x / 72) ** 2 + (y / 92) ** 2 + (z_mm / 66) ** 2)
    hu = np.full((n, n), -1000.0, np.float32)
    hu[r < 1.0] = 40
    hu[r < 0.93] = 1600
    inside = r < 0.86
    hu[inside] = (30 + 8 * (np.sin(x / 6) * np.sin(y / 7) > 0))[inside]  # grey/white-ish pattern
    hu[np.sqrt((x / 10) ** 2 + ((y + 5) / 28) ** 2 + ((z_mm - 8) / 14) ** 2) < 1] = 8
    return hu + rng.normal(0, 5, hu.shape).astype(np.float32)


def write_series(folder: Path, n_slices: int, n: int = 512, px: float = 0.48, dz: float = 1.25) -> None:
    rng = np.random.default_rng(0)
    uid, study = generate_uid(), generate_uid()
    for k in rng.permutation(n_slices):
        z = (k - (n_slices - 1) / 2) * dz
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "CT", "BENCH", study, uid
        ds.ImagePositionPatient = [-(n - 1) / 2 * px, -(n - 1) / 2 * px, z]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [px, px]
        ds.SliceThickness = dz
        ds.ConvolutionKernel = "STANDARD"
        ds.Rows = ds.Columns = n
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = np.rint(head_slice(z, n, px, rng, (6.0, -4.0)) + 1024).astype(np.int16).tobytes()
        ds.save_as(folder / f"{generate_uid()}.dcm", enforce_file_format=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    # Atlas: the same kind of head, centred, 1.5 mm grid (a phantom would do the same job).
    rng = np.random.default_rng(1)
    a_sp = (1.5, 1.5, 1.5)
    a_shape = (128, 160, 160)
    zc = (np.arange(a_shape[0]) - (a_shape[0] - 1) / 2) * a_sp[0]
    atlas = np.stack([head_slice(z, a_shape[1], a_sp[1], rng) for z in zc])
    assert centred_affine(a_shape, a_sp).shape == (4, 4)
    params = PreprocessParams(target_spacing=1.0, align="affine", model_shape=(128, 128, 128), slice_shape=(256, 256))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_series(Path(tmp), args.slices)
        print(f"wrote {args.slices} slices 512×512 in {time.perf_counter() - t:.1f} s")
        loads, pres = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            scan = load_scan(tmp)
            loads.append(time.perf_counter() - t)
            t = time.perf_counter()
            r = preprocess_scan(scan, params, atlas=(atlas, a_sp))
            pres.append(time.perf_counter() - t)
    stages = {k: round(v, 2) for k, v in r.info.items() if k.startswith("t_")}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}")
    print(f"scan {scan.hu.shape} spacing {tuple(round(s, 3) for s in scan.spacing)}; model grid {r.volume.shape}, "
          f"{len(r.slices)} slices {r.slices.shape[1:]}")
    print(f"load:       {min(loads):.2f} s per scan (best of {args.repeats})")
    print(f"preprocess: {min(pres):.2f} s per scan (best of {args.repeats}; alignment included) stages {stages}")
    print(f"total:      {min(loads) + min(pres):.2f} s per scan")


if __name__ == "__main__":
    main()

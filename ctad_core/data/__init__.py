"""Data: scan I/O, dataset adapters, preprocessing, phantoms, the manifest.

The public API is exported here, as TorchIO and MONAI export theirs from their ``data`` packages::

    from ctad_core.data import load_scan, make_phantom, preprocess_scan

- reading scans: :func:`load_scan` (DICOM folder or file list, NIfTI, MHA/NRRD) → :class:`Scan` (HU,
  (z, y, x), affine); :func:`list_series`, :func:`choose_series`, :func:`save_scan_nifti`;
  :func:`load_nifti` / :func:`save_nifti` for plain volumes.
- windows: :func:`window_bounds`, :func:`to_model`, :func:`from_model`, :func:`to_display`.
- preprocessing: :func:`preprocess_scan` / :func:`preprocess_path` with :class:`PreprocessParams` →
  :class:`Preprocessed` (resampled volume, brain and head masks, axial slices).
- phantoms: :func:`make_phantom` (one synthetic head CT), :func:`atlas_phantom`, :func:`sample_patient`;
  whole sets with :class:`PhantomSetSpec` and :func:`build_phantom_set`.
- datasets: :func:`source_records` / :func:`detect_source` (RSNA, CQ500, PhysioNet, a folder) →
  :class:`ScanRecord`; :func:`prepare_source` writes a run's ``data/``.
- the contract with later notebooks: :func:`write_prepared` (:class:`PreparedScan`), then
  :func:`read_manifest`, :func:`read_config`, :func:`load_slices` (:class:`SliceSet`) and
  :func:`load_volumes` (:class:`VolumeSet`).
"""

from ctad_core.data.datasets import ScanRecord, detect_source, prepare_source, source_records
from ctad_core.data.io import (
    Scan,
    ScanError,
    SeriesInfo,
    choose_series,
    list_series,
    load_scan,
    save_scan_nifti,
)
from ctad_core.data.manifest import (
    SliceSet,
    VolumeSet,
    load_slices,
    load_volumes,
    read_config,
    read_manifest,
    validate_manifest,
    write_manifest,
)
from ctad_core.data.nifti import NiftiError, load_nifti, save_nifti
from ctad_core.data.phantom import Phantom, atlas_phantom, make_phantom, sample_patient
from ctad_core.data.phantom_set import PhantomSetSpec, build_phantom_set, plan_phantom_set
from ctad_core.data.prepare import PreparedScan, assign_splits, write_prepared
from ctad_core.data.preprocess import Preprocessed, PreprocessParams, preprocess_path, preprocess_scan
from ctad_core.data.windows import from_model, to_display, to_model, window_bounds

__all__ = [
    "NiftiError",
    "Phantom",
    "PhantomSetSpec",
    "PreparedScan",
    "PreprocessParams",
    "Preprocessed",
    "Scan",
    "ScanError",
    "ScanRecord",
    "SeriesInfo",
    "SliceSet",
    "VolumeSet",
    "assign_splits",
    "atlas_phantom",
    "build_phantom_set",
    "choose_series",
    "detect_source",
    "from_model",
    "list_series",
    "load_nifti",
    "load_scan",
    "load_slices",
    "load_volumes",
    "make_phantom",
    "plan_phantom_set",
    "prepare_source",
    "preprocess_path",
    "preprocess_scan",
    "read_config",
    "read_manifest",
    "sample_patient",
    "save_nifti",
    "save_scan_nifti",
    "source_records",
    "to_display",
    "to_model",
    "validate_manifest",
    "window_bounds",
    "write_manifest",
    "write_prepared",
]

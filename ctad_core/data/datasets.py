"""Adapters for the public head-CT datasets (as users download them) and for a plain folder of scans.

Each adapter turns a dataset's layout and label files into :class:`ScanRecord` objects (what to load, the
patient, scan-level and per-slice labels); :func:`prepare_source` loads and preprocesses every record
(:func:`ctad_core.data.preprocess.preprocess_path`, cached) and writes the same ``run_dir/data/`` as the
phantom set (:func:`ctad_core.data.prepare.write_prepared`), so notebooks 02–07 run unchanged.

Layouts (REFERENCE.md):

- ``rsna``: ``stage_2_train/ID_<hex>.dcm`` + ``stage_2_train.csv`` (``ID,Label``; ``ID_<sop>_<subtype>``).
  Slices are grouped into volumes by StudyInstanceUID/SeriesInstanceUID read from the headers (an index
  cached as CSV). Per-slice labels (``any``); no voxel masks. Scans without any label row are skipped.
- ``cq500``: ``CQ500CT<n> CQ500CT<n>/Unknown Study/<series>/CT*.dcm``; ``reads.csv`` (majority of R1–R3 per
  finding); optional CTFSH ``cq500_labels.csv`` (``;``-separated) whose diagnoses are grouped into ATY, FRAC,
  ICH, ISCH, MASS, OTHER (it then decides the scan label). The series is chosen by SliceThickness and kernel
  (:func:`ctad_core.data.io.choose_series`), not by folder name. Scan-level labels only.
- ``physionet``: ``ct_scans/NNN.nii``, ``masks/NNN.nii`` (0/255), ``hemorrhage_diagnosis_raw_ct.csv``
  (per slice, 1-based SliceNumber). Voxel masks and per-slice labels.
- ``folder``: every NIfTI/MHA/NRRD file and every sub-folder (a DICOM series) directly under the folder is a
  scan. Optional labels CSV with columns ``scan`` (entry name, with or without extension), ``label`` (0/1),
  and optionally ``kind``, ``patient`` (default: the scan) and ``lesion_mask`` (a NIfTI on the scan's grid,
  relative to the folder). Without a CSV every scan is taken as healthy (label 0) — a folder of normal scans.

Patient and scan ids are pseudonyms (salted hashes) or the datasets' own public case numbers.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pydicom

from ctad_core.data.io import ScanError, pseudonym
from ctad_core.data.preprocess import Preprocessed, PreprocessParams, preprocess_path
from ctad_core.data.windows import window_bounds
from ctad_core.frontend import tqdm
from ctad_core.kinds import LESION_CODES, join_kinds

SOURCES = ("rsna", "cq500", "physionet", "folder")
RSNA_SUBTYPES = {"epidural": "edh", "intraparenchymal": "iph", "intraventricular": "ivh",
                 "subarachnoid": "sah", "subdural": "sdh"}
PHYSIONET_SUBTYPES = {"Intraventricular": "ivh", "Intraparenchymal": "iph", "Subarachnoid": "sah",
                      "Epidural": "edh", "Subdural": "sdh", "Fracture_Yes_No": "fracture"}
CQ500_FINDINGS = ("ICH", "IPH", "IVH", "SDH", "EDH", "SAH", "BleedLocation-Left", "BleedLocation-Right",
                  "ChronicBleed", "Fracture", "CalvarialFracture", "OtherFracture", "MassEffect", "MidlineShift")
#: CQ500 findings that make a scan abnormal, and the kind token each contributes.
CQ500_KIND = {"IPH": "iph", "IVH": "ivh", "SDH": "sdh", "EDH": "edh", "SAH": "sah", "ICH": "ich",
              "ChronicBleed": "ich", "Fracture": "fracture", "CalvarialFracture": "fracture",
              "OtherFracture": "fracture", "MassEffect": "mass", "MidlineShift": "mass"}
#: CTFSH diagnosis codes → CTFSH groups (unknown codes → OTHER).
CTFSH_GROUPS = {"IPH": "ICH", "SDH": "ICH", "EDH": "ICH", "SAH": "ICH", "IVH": "ICH", "ICH": "ICH", "CHR": "ICH",
                "FRAC": "FRAC", "ATY": "ATY", "MSE": "MASS", "MSHIFT": "MASS", "TUM": "MASS", "MASS": "MASS",
                "LST": "ISCH", "ISCH": "ISCH", "INF": "ISCH", "OTHER": "OTHER"}

@dataclass
class ScanRecord:
    """One scan to prepare.

    Attributes:
        scan_id: file-name safe, no identifiers.
        patient_id: pseudonymous patient key.
        source: ``rsna``, ``cq500``, ``physionet`` or ``folder``.
        inputs: what :func:`ctad_core.data.io.load_scan` reads (file, folder, or list of files).
        label: 0 healthy, 1 abnormal.
        kind: ``"healthy"`` or kinds joined by ``"+"``.
        slice_labels: per source slice, 1 abnormal / 0 normal: keyed by DICOM file name (RSNA) or 0-based
            storage slice index (NIfTI); None when only scan-level labels exist.
        lesion_path: a voxel label map on the scan's grid, or None.
        extra: further manifest columns (per-finding labels).
    """

    scan_id: str
    patient_id: str
    source: str
    inputs: str | list[str]
    label: int
    kind: str
    slice_labels: dict[Any, int] | None = None
    lesion_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _kind(tokens: Sequence[str]) -> str:
    return join_kinds(tokens)


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", s).strip("-") or "scan"


# ----------------------------------------------------------------------------------------------- RSNA


def read_rsna_labels(csv_path: str | os.PathLike) -> pd.DataFrame:
    """``stage_2_train.csv`` → one row per image (index: ``ID_<sop>``), one 0/1 column per subtype + ``any``.

    Rows are split with ``rsplit('_', 1)``; duplicated rows are dropped (the file has some).
    """
    df = pd.read_csv(csv_path)
    if list(df.columns[:2]) != ["ID", "Label"]:
        raise ValueError(f"{csv_path}: expected columns ID,Label, got {list(df.columns)}")
    df = df.drop_duplicates()
    parts = df["ID"].str.rsplit("_", n=1, expand=True)
    df = df.assign(image=parts[0], subtype=parts[1])
    dup = df.duplicated(["image", "subtype"], keep=False)
    if dup.any():
        raise ValueError(f"{csv_path}: conflicting labels for {df.loc[dup, 'ID'].iloc[0]}")
    wide = df.pivot(index="image", columns="subtype", values="Label").fillna(-1).astype(int)
    return wide


def index_dicom_headers(files: Sequence[Path], cache_csv: Path | None = None, progress: bool = True) -> pd.DataFrame:
    """Study/series/patient pseudonyms of many DICOM files (header only), cached as CSV when asked.

    Args:
        files: the DICOM files.
        cache_csv: where the index is cached (reused while it lists the same file names).
        progress: show a tqdm bar.

    Returns:
        DataFrame with columns ``file`` (name), ``study``, ``series``, ``patient`` (pseudonyms).
    """
    if cache_csv is not None and cache_csv.is_file():
        df = pd.read_csv(cache_csv, dtype=str, keep_default_na=False)
        if set(df["file"]) == {f.name for f in files}:
            return df
    rows = []
    tags = ["StudyInstanceUID", "SeriesInstanceUID", "PatientID"]
    for f in tqdm(files, desc="reading DICOM headers", unit="file", leave=False, disable=not progress):
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=tags)
        except Exception as e:
            warnings.warn(f"{f}: unreadable DICOM header ({e}); skipped", stacklevel=2)
            continue
        rows.append({"file": f.name, "study": pseudonym(str(ds.get("StudyInstanceUID", ""))),
                     "series": pseudonym(str(ds.get("SeriesInstanceUID", ""))),
                     "patient": pseudonym(str(ds.get("PatientID", "")))})
    df = pd.DataFrame(rows, columns=["file", "study", "series", "patient"])
    if cache_csv is not None:
        from ctad_core.utils import atomic_write

        atomic_write(cache_csv, lambda p: df.to_csv(p, index=False))
    return df


def rsna_records(root: str | os.PathLike, labels_csv: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None, progress: bool = True) -> list[ScanRecord]:
    """Records of the RSNA 2019 ICH layout.

    Args:
        root: the folder holding ``stage_2_train/`` (or that image folder itself).
        labels_csv: default ``stage_2_train.csv`` next to the image folder.
        cache_dir: where the header index is cached.
        progress: show a tqdm bar while the headers are read.
    """
    root = Path(root)
    img_dir = root / "stage_2_train" if (root / "stage_2_train").is_dir() else root
    csv = Path(labels_csv) if labels_csv else next(
        (c for c in (img_dir.parent / "stage_2_train.csv", root / "stage_2_train.csv") if c.is_file()), None)
    if csv is None or not csv.is_file():
        raise FileNotFoundError(f"{root}: stage_2_train.csv not found; pass labels_csv=")
    labels = read_rsna_labels(csv)
    files = sorted(img_dir.glob("*.dcm"))
    if not files:
        raise FileNotFoundError(f"{img_dir}: no .dcm files (expected stage_2_train/ID_<hex>.dcm)")
    cache_csv = Path(cache_dir) / f"rsna_index_{pseudonym(str(img_dir.resolve()))}.csv" if cache_dir else None
    index = index_dicom_headers(files, cache_csv, progress=progress)
    records, unlabelled = [], 0
    for (_study, series), grp in index.groupby(["study", "series"], sort=True):
        names = sorted(grp["file"])
        keys = [n[: -len(".dcm")] for n in names]
        lab = labels.reindex(keys)
        if lab["any"].isna().all() if "any" in lab else True:
            unlabelled += 1
            continue
        slice_labels = {n: int(v) for n, v in zip(names, lab["any"].fillna(-1).astype(int))}
        pos = lab.fillna(-1).astype(int)
        kinds = [RSNA_SUBTYPES[c] for c in RSNA_SUBTYPES if c in pos and (pos[c] == 1).any()]
        label = int((pos["any"] == 1).any())
        records.append(ScanRecord(
            scan_id=f"rsna-{series[:12]}", patient_id=f"rsna-{grp['patient'].iloc[0][:12]}", source="rsna",
            inputs=[str(img_dir / n) for n in names], label=label, kind=_kind(kinds) if label else "healthy",
            slice_labels=slice_labels,
            extra={f"rsna_{c}": int((pos[c] == 1).any()) for c in RSNA_SUBTYPES if c in pos}))
    if unlabelled:
        warnings.warn(f"{img_dir}: {unlabelled} series without labels in {csv.name} skipped", stacklevel=2)
    return records


# ----------------------------------------------------------------------------------------------- CQ500


def read_cq500_reads(csv_path: str | os.PathLike) -> pd.DataFrame:
    """``reads.csv`` → index case number (int), one 0/1 column per finding: the majority of readers R1–R3."""
    df = pd.read_csv(csv_path)
    if "name" not in df.columns:
        raise ValueError(f"{csv_path}: no 'name' column (expected CQ500 reads.csv)")
    votes: dict[str, list[str]] = {}
    for c in df.columns:
        m = re.match(r"^R[123][:_ .]?(.+)$", str(c))
        if m:
            votes.setdefault(m.group(1).strip(), []).append(c)
    if not votes:
        raise ValueError(f"{csv_path}: no reader columns R1:…/R2:…/R3:…")
    out = pd.DataFrame({f: (df[cols].astype(float).sum(axis=1) * 2 > len(cols)).astype(int) for f, cols in votes.items()})
    out.index = df["name"].map(_cq500_number)
    return out


def _cq500_number(name: Any) -> int:
    m = re.search(r"(\d+)\s*$", str(name))
    if not m:
        raise ValueError(f"cannot read a CQ500 case number from {name!r}")
    return int(m.group(1))


def read_ctfsh_labels(csv_path: str | os.PathLike) -> pd.DataFrame:
    """CTFSH ``cq500_labels.csv`` (``;``-separated ``name;is_pathl;diagnosis;TEST;notes``, name ``CT_<n>``).

    Returns:
        Index case number; columns ``is_pathl`` (0/1), ``test`` (0/1), ``groups`` (sorted CTFSH groups
        joined by "+", "" for healthy) and one 0/1 column per group ``ctfsh_<GROUP>``.
    """
    df = pd.read_csv(csv_path, sep=";", dtype=str, keep_default_na=False)
    need = {"name", "is_pathl", "diagnosis"}
    if not need <= set(df.columns):
        raise ValueError(f"{csv_path}: expected ';'-separated columns {sorted(need)}, got {list(df.columns)}")
    rows = []
    for _, r in df.iterrows():
        codes = [c for c in re.findall(r"[A-Za-z]+", r["diagnosis"].upper()) if c != "HEALTHY"]
        groups = sorted({CTFSH_GROUPS.get(c, "OTHER") for c in codes})
        path = int(float(r["is_pathl"] or 0) > 0)
        rows.append({"case": _cq500_number(r["name"]), "is_pathl": path, "test": int(str(r.get("TEST", "0")) in
                     ("1", "True", "true")), "groups": "+".join(groups),
                     **{f"ctfsh_{g}": int(g in groups) for g in ("ATY", "FRAC", "ICH", "ISCH", "MASS", "OTHER")}})
    return pd.DataFrame(rows).set_index("case")


def cq500_records(root: str | os.PathLike, reads_csv: str | os.PathLike | None = None,
                  ctfsh_csv: str | os.PathLike | None = None) -> list[ScanRecord]:
    """Records of the CQ500 layout (one per case folder; the series is chosen at load time)."""
    root = Path(root)
    cases = {}
    for d in sorted(root.iterdir()):
        m = re.match(r"^CQ500-?CT-?(\d+)", d.name, re.I)
        if d.is_dir() and m:
            cases.setdefault(int(m.group(1)), d)
    if not cases:
        raise FileNotFoundError(f"{root}: no 'CQ500CT<n> CQ500CT<n>' case folders")
    reads_path = Path(reads_csv) if reads_csv else root / "reads.csv"
    ctfsh_path = Path(ctfsh_csv) if ctfsh_csv else (root / "cq500_labels.csv")
    reads = read_cq500_reads(reads_path) if reads_path.is_file() else None
    ctfsh = read_ctfsh_labels(ctfsh_path) if ctfsh_path.is_file() else None
    if reads is None and ctfsh is None:
        raise FileNotFoundError(f"{root}: neither reads.csv nor cq500_labels.csv found; CQ500 needs labels")
    out = []
    for n, d in sorted(cases.items()):
        extra: dict[str, Any] = {}
        if ctfsh is not None and n in ctfsh.index:
            c = ctfsh.loc[n]
            label = int(c["is_pathl"])
            kind = "+".join(g.lower() for g in c["groups"].split("+")) if label and c["groups"] else (
                "other" if label else "healthy")
            extra.update({k: int(c[k]) for k in c.index if k.startswith("ctfsh_")}, ctfsh_test=int(c["test"]))
        elif reads is not None and n in reads.index:
            r = reads.loc[n]
            found = [f for f in CQ500_KIND if f in r.index and int(r[f]) == 1]
            label = int(bool(found))
            kind = _kind([CQ500_KIND[f] for f in found]) if label else "healthy"
        else:
            warnings.warn(f"{d}: case CQ500-CT-{n} has no labels; skipped", stacklevel=2)
            continue
        if reads is not None and n in reads.index:
            extra.update({f"cq500_{f}": int(reads.loc[n][f]) for f in reads.columns})
        out.append(ScanRecord(scan_id=f"cq500-ct-{n}", patient_id=f"cq500-ct-{n}", source="cq500", inputs=str(d),
                              label=label, kind=kind, slice_labels=None, extra=extra))
    return out


# ----------------------------------------------------------------------------------------------- PhysioNet


def physionet_records(root: str | os.PathLike, labels_csv: str | os.PathLike | None = None) -> list[ScanRecord]:
    """Records of the PhysioNet CT-ICH 1.3.1 layout (voxel masks and per-slice labels)."""
    root = Path(root)
    ct_dir = root / "ct_scans"
    if not ct_dir.is_dir():
        raise FileNotFoundError(f"{root}: no ct_scans/ folder (expected PhysioNet CT-ICH layout)")
    csv = Path(labels_csv) if labels_csv else next(
        (p for p in (root / "hemorrhage_diagnosis_raw_ct.csv", root / "hemorrhage_diagnosis.csv") if p.is_file()), None)
    if csv is None:
        raise FileNotFoundError(f"{root}: hemorrhage_diagnosis_raw_ct.csv not found")
    df = pd.read_csv(csv)
    need = {"PatientNumber", "SliceNumber", "No_Hemorrhage"}
    if not need <= set(df.columns):
        raise ValueError(f"{csv}: expected columns {sorted(need)}, got {list(df.columns)}")
    out = []
    for f in sorted(ct_dir.iterdir()):
        m = re.match(r"^(\d+)\.nii(\.gz)?$", f.name)
        if not m:
            continue
        n = int(m.group(1))
        rows = df[df.PatientNumber.astype(int) == n]
        if rows.empty:
            warnings.warn(f"{f}: patient {n} has no rows in {csv.name}; skipped", stacklevel=2)
            continue
        frac = rows["Fracture_Yes_No"].astype(int) if "Fracture_Yes_No" in rows else 0
        abn = ((rows["No_Hemorrhage"].astype(int) == 0) | (frac == 1)).astype(int)
        slice_labels = {int(s) - 1: int(a) for s, a in zip(rows["SliceNumber"], abn)}
        kinds = [k for c, k in PHYSIONET_SUBTYPES.items() if c in rows and (rows[c].astype(int) == 1).any()]
        label = int(abn.any())
        mask = next((p for p in (root / "masks" / f.name, root / "masks" / f"{m.group(1)}.nii.gz") if p.is_file()), None)
        out.append(ScanRecord(
            scan_id=f"physionet-{n:03d}", patient_id=f"physionet-{n:03d}", source="physionet", inputs=str(f),
            label=label, kind=_kind(kinds) if label else "healthy", slice_labels=slice_labels,
            lesion_path=str(mask) if mask else None,
            extra={f"physionet_{k}": int(k in kinds) for k in PHYSIONET_SUBTYPES.values()}))
    if not out:
        raise FileNotFoundError(f"{ct_dir}: no NNN.nii scans")
    return out


# ----------------------------------------------------------------------------------------------- folder

_SCAN_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd")


def folder_records(root: str | os.PathLike, labels_csv: str | os.PathLike | None = None) -> list[ScanRecord]:
    """Records of a plain folder of scans (see the module docstring for the CSV)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    entries = {}
    for e in sorted(root.iterdir()):
        if e.name.startswith(".") or (labels_csv and e.resolve() == Path(labels_csv).resolve()):
            continue
        if e.is_dir() or e.name.lower().endswith(_SCAN_SUFFIXES):
            stem = re.sub(r"(\.nii\.gz|\.nii|\.mha|\.mhd|\.nrrd)$", "", e.name, flags=re.I)
            entries[stem] = e
    labels = None
    if labels_csv is not None:
        labels = pd.read_csv(labels_csv, dtype=str, keep_default_na=False)
        if not {"scan", "label"} <= set(labels.columns):
            raise ValueError(f"{labels_csv}: needs columns scan,label (optional kind, patient, lesion_mask)")
    else:
        warnings.warn(f"{root}: no labels CSV; every scan is taken as healthy (label 0)", stacklevel=2)
    out = []
    if labels is not None:
        for _, r in labels.iterrows():
            key = re.sub(r"(\.nii\.gz|\.nii|\.mha|\.mhd|\.nrrd)$", "", r["scan"].strip().rstrip("/"), flags=re.I)
            if key not in entries:
                raise FileNotFoundError(f"{labels_csv}: scan {r['scan']!r} not found under {root}")
            label = int(float(r["label"]))
            kind = r.get("kind", "") or ("abnormal" if label else "healthy")
            lesion = str(root / r["lesion_mask"]) if r.get("lesion_mask") else None
            out.append(ScanRecord(scan_id=_safe(f"folder-{key}"), patient_id=_safe(r.get("patient", "") or key),
                                  source="folder", inputs=str(entries[key]), label=label, kind=kind,
                                  lesion_path=lesion))
    else:
        for key, e in entries.items():
            out.append(ScanRecord(scan_id=_safe(f"folder-{key}"), patient_id=_safe(key), source="folder",
                                  inputs=str(e), label=0, kind="healthy"))
    if not out:
        raise FileNotFoundError(f"{root}: no scans (NIfTI/MHA/NRRD files or DICOM series folders)")
    return out


# ----------------------------------------------------------------------------------------------- prepare


def detect_source(path: str | os.PathLike) -> str:
    """Guess the layout of a dataset folder: ``rsna``, ``cq500``, ``physionet`` or ``folder``."""
    p = Path(path)
    if (p / "ct_scans").is_dir():
        return "physionet"
    if (p / "stage_2_train").is_dir() or (p / "stage_2_train.csv").is_file():
        return "rsna"
    if any(re.match(r"^CQ500-?CT-?\d+", d.name, re.I) for d in p.iterdir() if d.is_dir()):
        return "cq500"
    return "folder"


def source_records(source: str, source_path: str | os.PathLike, **kw: Any) -> list[ScanRecord]:
    """Records of a dataset (``source`` in :data:`SOURCES` or ``"auto"``); ``kw`` go to the adapter."""
    if source == "auto":
        source = detect_source(source_path)
    adapters = {"rsna": rsna_records, "cq500": cq500_records, "physionet": physionet_records, "folder": folder_records}
    if source not in adapters:
        raise ValueError(f"unknown source {source!r}; one of {SOURCES} or 'auto'")
    return adapters[source](source_path, **kw)


def slice_labels_for(record: ScanRecord, pp: Preprocessed) -> np.ndarray:
    """Per 2D slice: 1 abnormal, 0 normal, −1 unknown, from the record's labels and the slices' source range.

    A healthy scan's slices are all normal; a slice is abnormal when any source slice it crosses is; when no
    per-slice labels exist for an abnormal scan, a voxel mask decides, else −1.
    """
    k = len(pp.slice_index)
    if record.label == 0:
        return np.zeros(k, np.int8)
    out = np.full(k, -1, np.int8)
    for i, (lo, hi) in enumerate(np.asarray(pp.slice_source).reshape(-1, 2)):
        if record.slice_labels is not None and lo >= 0:
            keys = [Path(pp.sources[j]).name for j in range(lo, hi + 1)] if pp.sources else list(range(lo, hi + 1))
            vals = [record.slice_labels.get(key, -1) for key in keys]
            out[i] = 1 if 1 in vals else (0 if vals and all(v == 0 for v in vals) else -1)
        elif pp.slice_lesion is not None:
            out[i] = int(pp.slice_lesion[i].any())
    return out


def _lesion_code(kind: str) -> int:
    for k in kind.split("+"):
        if k in LESION_CODES:
            return int(LESION_CODES[k])
    return int(LESION_CODES.get("iph", 1))


def prepare_source(
    source: str,
    source_path: str | os.PathLike,
    data_dir: str | os.PathLike,
    *,
    params: PreprocessParams | dict[str, Any] | None = None,
    atlas: Any = None,
    cache_dir: str | os.PathLike | None = None,
    window: str | tuple[float, float] | list[float] = "brain",
    shape_3d: Sequence[int] | None = None,
    size_2d: int | None = None,
    slices_2d: int | None = None,
    fractions: tuple[float, float, float] = (0.6, 0.15, 0.25),
    seed: int = 0,
    limit: int | None = None,
    on_error: Literal["skip", "raise"] = "skip",
    load_kwargs: dict[str, Any] | None = None,
    adapter_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    **param_overrides: Any,
) -> pd.DataFrame:
    """Prepare a real dataset under ``data_dir`` (``run_dir/data``) exactly as the phantom set is prepared.

    Args:
        source: ``rsna``, ``cq500``, ``physionet``, ``folder`` or ``auto``.
        source_path: the dataset's root folder as downloaded.
        data_dir: output folder (``run_dir/data``).
        params: preprocessing (:class:`~ctad_core.data.preprocess.PreprocessParams` or dict).
        atlas: template for ``params.align`` (see :func:`~ctad_core.data.preprocess.preprocess_scan`).
        cache_dir: preprocessing cache (default ``<data_dir>/../cache``).
        window: the window the models will use (recorded in ``config.json`` as [lower, upper] HU).
        shape_3d: overrides ``params.model_shape`` (notebook 01's parameter of the same name).
        size_2d: overrides ``params.slice_shape`` with (size_2d, size_2d).
        slices_2d: overrides ``params.n_slices``.
        fractions: (train, val, test) fractions of healthy patients; abnormal ones go to val/test.
        seed: split and subset seed.
        limit: use at most this many scans (a seeded random subset), e.g. for a quick run.
        on_error: ``"skip"`` a scan that cannot be read (warning naming the file) or ``"raise"``.
        load_kwargs: passed to :func:`~ctad_core.data.io.load_scan` (``tilt``, ``irregular``, …).
        adapter_kwargs: passed to the dataset adapter (e.g. ``labels_csv``, ``ctfsh_csv``).
        progress: show tqdm bars (also the RSNA header-reading one).
        **param_overrides: any :class:`~ctad_core.data.preprocess.PreprocessParams` field (e.g.
            ``skull_strip=True``), so notebook 01's ``prep`` dict can hold them as literals.

    Returns:
        The manifest as written.
    """
    from ctad_core.data.prepare import PreparedScan, assign_splits, data_config, write_prepared

    p = params if isinstance(params, PreprocessParams) else PreprocessParams.from_dict(params)
    unknown = sorted(set(param_overrides) - set(PreprocessParams.__dataclass_fields__))
    if unknown:
        raise TypeError(f"prepare_source got unknown arguments {unknown}")
    over: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in param_overrides.items()}
    if shape_3d is not None:
        over["model_shape"] = tuple(int(v) for v in shape_3d)
    if size_2d is not None:
        over["slice_shape"] = (int(size_2d), int(size_2d))
    if slices_2d is not None:
        over["n_slices"] = int(slices_2d)
    if over:
        p = replace(p, **over)
    lo, hi = window_bounds(window)
    data_dir = Path(data_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else data_dir.parent / "cache"
    kw = dict(adapter_kwargs or {})
    if source in ("rsna", "auto") and (source == "rsna" or detect_source(source_path) == "rsna"):
        kw.setdefault("cache_dir", cache_dir)
        kw.setdefault("progress", progress)
    records = source_records(source, source_path, **kw)
    source = records[0].source if records else source
    if limit is not None and limit < len(records):
        rng = np.random.default_rng(seed)
        records = [records[i] for i in sorted(rng.choice(len(records), size=limit, replace=False))]
    if not records:
        raise ValueError(f"{source_path}: no scans found")
    splits = assign_splits([r.patient_id for r in records], [r.label == 1 for r in records], fractions, seed,
                           stratify=[r.kind for r in records])
    config = data_config(
        source, window, p.model_shape, (p.slice_shape or p.model_shape[1:])[0], p.n_slices,
        skull_stripped=p.skull_strip, aligned=p.align, seed=seed,
        source_path=str(source_path), preprocess=asdict(p), n_records=len(records), skipped=[],
    )

    def generate() -> Iterator[PreparedScan]:
        bar = tqdm(records, desc=f"preparing {source}", unit="scan", disable=not progress)
        for r in bar:
            try:
                pp = preprocess_path(r.inputs, p, atlas=atlas, cache_dir=cache_dir, lesion_path=r.lesion_path,
                                     load_kwargs=load_kwargs)
            except (ScanError, ValueError, FileNotFoundError) as e:
                if on_error == "raise":
                    raise
                warnings.warn(f"{r.scan_id}: skipped: {e}", stacklevel=2)
                config["details"]["skipped"].append({"scan_id": r.scan_id, "error": str(e)})
                continue
            lesion = pp.lesion
            slice_lesion = pp.slice_lesion
            if lesion is not None:
                code = _lesion_code(r.kind)
                lesion = np.where(lesion > 0, code, 0).astype(np.uint8)
                slice_lesion = np.where(slice_lesion > 0, code, 0).astype(np.uint8)
            yield PreparedScan(
                scan_id=r.scan_id, patient_id=r.patient_id, kind=r.kind, label=r.label, source=r.source,
                volume=pp.volume, affine=pp.affine, brain=pp.brain, lesion=lesion, slices=pp.slices,
                slice_brain=pp.slice_brain, slice_lesion=slice_lesion, slice_index=pp.slice_index,
                slice_label=slice_labels_for(r, pp), extra=dict(r.extra),
            )

    return write_prepared(data_dir, generate(), splits, config)

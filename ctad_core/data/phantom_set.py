"""A phantom data set: healthy training scans, validation and test scans with and without lesions.

Each scan is one synthetic patient rendered twice from the same seed: a 3D volume at the 3D models'
shape (isotropic) and a stack of 2D axial slices (through the mid-axial level) at the 2D models' size —
the same head and lesion in both, as 2D and 3D sets cut from one real scan would be.

Each patient also has an acquisition (:mod:`ctad_core.data.phantom_acquisition`): its slice thickness is
the 2D slices' thickness (native slices, ``slice_mm`` apart) and, where thicker than the 3D voxels, the
3D volume's slice profile; its kernel and noise level apply to both. The manifest records per scan the
lesion ``variant``, the acquisition (``kernel``, ``slice_thickness_mm``, ``noise_sd_5mm``), the patient's
``age`` and which physiological ``calcification`` it has, so an evaluation can split by any of them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ctad_core.data.phantom import make_phantom, sample_patient
from ctad_core.data.phantom_acquisition import acquisition_ranges, resolve_acquisition
from ctad_core.data.prepare import PreparedScan, data_config, write_prepared
from ctad_core.frontend import tqdm
from ctad_core.kinds import HAEMORRHAGE_KINDS, LESION_KINDS
from ctad_core.parallel import MAX_WORKERS, available_cores

__all__ = [
    "PhantomSetSpec",
    "ShiftUnavailable",
    "build_phantom_set",
    "phantom_splits",
    "plan_phantom_set",
    "prepare_phantoms",
    "render_phantom_scan",
    "render_shifted",
    "spec_from_config",
]


@dataclass
class PhantomSetSpec:
    """What phantom set to build.

    Attributes:
        n_train: healthy training scans.
        n_val_healthy / n_test_healthy: healthy scans in validation / test.
        n_val_per_kind / n_test_per_kind: lesioned scans per kind in validation / test.
        kinds: lesion kinds to include (default: all of :data:`LESION_KINDS`).
        shape_3d: (z, y, x) voxels of the 3D volumes (isotropic spacing ``fov_mm / shape``).
        size_2d: 2D slice size (square).
        slices_2d: number of 2D slices per scan, centred on the mid-axial level.
        slice_mm: spacing between the 2D slices (mm); their thickness is each patient's acquisition's.
        fov_mm: field of view of both renderings (mm).
        seed: the set's seed; scan ``i`` is patient ``seed * 100003 + i``.
        aligned: render every head in the template's pose, as the seeds' scans were after registration
            (rotation, scale and shift removed; warp and anatomy still vary).
        acquisition: overrides of the acquisition sampling ranges
            (:data:`ctad_core.data.phantom_acquisition.ACQUISITION_DEFAULTS`), e.g.
            ``{"kernels": {"standard": 1.0}, "slice_mm": {5.0: 1.0}}`` for one protocol.
    """

    n_train: int = 60
    n_val_healthy: int = 10
    n_test_healthy: int = 16
    n_val_per_kind: int = 2
    n_test_per_kind: int = 4
    kinds: Sequence[str] = LESION_KINDS
    shape_3d: Sequence[int] = (64, 64, 64)
    size_2d: int = 64
    slices_2d: int = 5
    slice_mm: float = 5.0
    fov_mm: float = 230.0
    seed: int = 0
    aligned: bool = False
    acquisition: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        acquisition_ranges(self.acquisition)  # raises on bad ranges
        bad = [k for k in self.kinds if k not in LESION_KINDS]
        if bad:
            raise ValueError(f"unknown lesion kinds {bad}; choose from {LESION_KINDS}")
        if self.n_train < 1:
            raise ValueError("a phantom set needs at least one healthy training scan")
        if len(self.shape_3d) != 3 or min(self.shape_3d) < 4:
            raise ValueError(f"shape_3d must be three sizes >= 4, got {self.shape_3d}")
        if self.size_2d < 8 or self.slices_2d < 1:
            raise ValueError(f"size_2d >= 8 and slices_2d >= 1 required, got {self.size_2d}, {self.slices_2d}")

    @property
    def spacing_3d(self) -> tuple[float, float, float]:
        return tuple(self.fov_mm / s for s in self.shape_3d)  # type: ignore[return-value]

    @property
    def spacing_2d(self) -> tuple[float, float, float]:
        px = self.fov_mm / self.size_2d
        return (self.slice_mm, px, px)


def plan_phantom_set(spec: PhantomSetSpec) -> list[dict[str, Any]]:
    """The scans of the set: ``[{scan_id, patient_id, seed, kind, split}]`` (deterministic)."""
    plan: list[tuple[str, str]] = []
    plan += [("train", "healthy")] * spec.n_train
    plan += [("val", "healthy")] * spec.n_val_healthy
    plan += [("val", k) for k in spec.kinds for _ in range(spec.n_val_per_kind)]
    plan += [("test", "healthy")] * spec.n_test_healthy
    plan += [("test", k) for k in spec.kinds for _ in range(spec.n_test_per_kind)]
    out = []
    for i, (split, kind) in enumerate(plan):
        out.append(
            {
                "scan_id": f"ph{spec.seed:03d}_{i:04d}",
                "patient_id": f"phantom-{spec.seed:03d}-{i:04d}",
                "seed": spec.seed * 100003 + i,
                "kind": kind,
                "split": split,
            }
        )
    return out


def render_phantom_scan(
    item: dict[str, Any], spec: PhantomSetSpec, acquisition: dict[str, Any] | None = None
) -> PreparedScan:
    """Render one planned scan in 3D and 2D (same patient).

    Args:
        item: a row of :func:`plan_phantom_set`.
        spec: the set.
        acquisition: render the patient under this acquisition instead of its own (any keys of
            :func:`ctad_core.data.phantom_acquisition.resolve_acquisition`, e.g.
            ``{"kernel": "sharp", "slice_mm": 0.625}``): the same head and lesion as another scanner
            would show them, for a test under acquisition shift.

    Returns:
        The :class:`PreparedScan`; ``extra`` holds the manifest columns of the module docstring.
    """
    params = sample_patient(item["seed"], item["kind"], aligned=spec.aligned, acquisition=spec.acquisition)
    if acquisition:
        params["acq"] = resolve_acquisition(params["acq"], **acquisition)
    acq = params["acq"]
    vol = make_phantom(item["seed"], shape=tuple(spec.shape_3d), spacing=spec.spacing_3d, params=params,
                       slice_mm=max(acq["slice_mm"], spec.spacing_3d[0]))
    sl = make_phantom(
        item["seed"], shape=(spec.slices_2d, spec.size_2d, spec.size_2d), spacing=spec.spacing_2d, params=params,
        slice_mm=acq["slice_mm"],
    )
    slice_label = (sl.lesion.reshape(spec.slices_2d, -1) > 0).any(axis=1).astype(np.int8)
    return PreparedScan(
        scan_id=item["scan_id"],
        patient_id=item["patient_id"],
        kind=item["kind"],
        label=int(item["kind"] != "healthy"),
        source="phantom",
        volume=vol.hu,
        affine=vol.affine,
        brain=vol.brain,
        lesion=vol.lesion,
        slices=sl.hu,
        slice_brain=sl.brain,
        slice_lesion=sl.lesion,
        slice_index=np.arange(spec.slices_2d) - spec.slices_2d // 2,
        slice_label=slice_label,
        extra={
            "haemorrhage": int(item["kind"] in HAEMORRHAGE_KINDS),
            "phantom_seed": item["seed"],
            "lesion_voxels": int((vol.lesion > 0).sum()),
            "variant": vol.variant,
            "kernel": acq["kernel"],
            "slice_thickness_mm": acq["slice_mm"],
            "noise_sd_5mm": round(float(acq["noise_sd_5mm"]), 3),
            "age": round(float(params["age"]), 1),
            "calcification": calcification_summary(params),
        },
    )


def calcification_summary(params: dict[str, Any]) -> str:
    """The patient's physiological calcifications joined by ``+`` (``pineal``, ``choroid``,
    ``basal_ganglia_punctate`` or ``_patchy``, ``falx``, ``tentorium``), or ``none``."""
    a = params["anatomy"]
    parts = [n for n in ("pineal", "choroid") if params.get(n)]
    if a["bg_calc"] != "none":
        parts.append(f"basal_ganglia_{a['bg_calc']}")
    parts += [n for n in ("falx", "tentorium") if a[f"{n}_calc"]]
    return "+".join(parts) or "none"


def _render_worker(args: tuple[dict[str, Any], PhantomSetSpec]) -> PreparedScan:
    import torch

    torch.set_num_threads(1)  # one process per core
    return render_phantom_scan(*args)


def build_phantom_set(spec: PhantomSetSpec, workers: int | None = None, progress: bool = True):
    """Render every scan of ``spec``.

    Args:
        spec: the set.
        workers: processes (default: the cores this process may use, at most 8); 1 renders in this process.
        progress: show a tqdm bar.

    Yields:
        :class:`PreparedScan` in plan order (a generator, so the caller can write as they come).
    """
    plan = plan_phantom_set(spec)
    workers = workers or min(MAX_WORKERS, available_cores())
    bar = tqdm(total=len(plan), desc="phantoms", unit="scan", disable=not progress)
    if workers <= 1:
        for item in plan:
            yield render_phantom_scan(item, spec)
            bar.update()
    else:
        import multiprocessing as mp

        chunk = max(1, math.ceil(len(plan) / (workers * 4)))
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            for scan in pool.map(_render_worker, [(it, spec) for it in plan], chunksize=chunk):
                yield scan
                bar.update()
    bar.close()


def phantom_splits(spec: PhantomSetSpec) -> dict[str, str]:
    """``{patient_id: split}`` of the set (one scan per patient, so the split is by patient)."""
    return {it["patient_id"]: it["split"] for it in plan_phantom_set(spec)}


def prepare_phantoms(
    data_dir: str | os.PathLike,
    spec: PhantomSetSpec,
    window: str | Sequence[float],
    workers: int | None = None,
    progress: bool = True,
):
    """Render the phantom set of ``spec`` and write it under ``data_dir`` (manifest, volumes, slices, and
    ``config.json`` in the schema :func:`ctad_core.data.prepare.data_config` shares with real scans).

    Args:
        data_dir: ``run_dir/data``.
        spec: the set to render.
        window: the models' window (preset name or (lower, upper) HU).
        workers: rendering processes (None: one per core).
        progress: a progress bar.

    Returns:
        The manifest as written (a DataFrame).
    """
    from ctad_core.data import phantom as ph
    from ctad_core.data.phantom_acquisition import acquisition_ranges

    config = data_config(
        "phantom", window, spec.shape_3d, spec.size_2d, spec.slices_2d,
        skull_stripped=False, aligned=spec.aligned, seed=spec.seed, spacing_3d=spec.spacing_3d,
        spacing_2d=spec.spacing_2d, kinds=spec.kinds,
        variants=ph.VARIANTS, acquisition=acquisition_ranges(spec.acquisition),
    )
    return write_prepared(data_dir, build_phantom_set(spec, workers=workers, progress=progress), phantom_splits(spec), config)


class ShiftUnavailable(ValueError):
    """The run's scans cannot be rendered under another acquisition (real scans, not phantoms)."""


def spec_from_config(config: dict[str, Any], where: str = "config.json") -> PhantomSetSpec:
    """The :class:`PhantomSetSpec` a phantom run's ``data/config.json`` was prepared with (what rendering
    needs: grids, field of view, seed, pose, acquisition ranges; the split sizes are not needed).

    Raises:
        ShiftUnavailable: the config is not a phantom set's (naming ``where`` and its source).
    """
    if config.get("source") != "phantom":
        raise ShiftUnavailable(
            f"{where}: source {config.get('source')!r} is not 'phantom': real scans cannot be re-rendered "
            "under another acquisition"
        )
    shape = [int(v) for v in config["shape_3d"]]
    return PhantomSetSpec(
        kinds=tuple(config["kinds"]),
        shape_3d=tuple(shape),
        size_2d=int(config["size_2d"]),
        slices_2d=int(config["slices_2d"]),
        slice_mm=float(config["spacing_2d"][0]),
        fov_mm=float(config["spacing_3d"][2]) * shape[2],
        seed=int(config["seed"]),
        aligned=bool(config["aligned"]),
        acquisition=(config.get("details") or {}).get("acquisition"),
    )


def render_shifted(
    run_dir: str | os.PathLike,
    acquisition: dict[str, Any],
    out_dir: str | os.PathLike,
    split: str = "test",
    kind: str = "healthy",
) -> Any:
    """Render the run's ``split``/``kind`` phantom patients again under ``acquisition`` and write them as data
    prep writes a set (:func:`ctad_core.data.prepare.write_prepared`: manifest, volumes, slices, config),
    under ``out_dir/data`` — the same heads as in the run, only the acquisition changed.

    Args:
        run_dir: a run prepared from phantoms (``data/config.json``, ``data/manifest.csv``).
        acquisition: keys of :func:`ctad_core.data.phantom_acquisition.resolve_acquisition` applied to every
            patient, e.g. ``{"kernel": "sharp", "slice_mm": 0.625, "noise_sd_5mm": 9.0}``.
        out_dir: where to write (``out_dir/data/...``; read back with ``load_volumes(out_dir)``).
        split, kind: which patients (default: the healthy test patients).

    Returns:
        The manifest written (a DataFrame; ``split`` as in the run).

    Raises:
        ShiftUnavailable: the run holds real scans (naming its config.json).
        ValueError: an unknown acquisition setting or kernel (before anything is rendered), or no
            ``split``/``kind`` scan in the run's manifest (naming it).
    """
    from pathlib import Path

    from ctad_core.data.manifest import read_config, read_manifest
    from ctad_core.data.phantom_acquisition import resolve_acquisition

    run_dir = Path(run_dir)
    config = read_config(run_dir)
    spec = spec_from_config(config, str(run_dir / "data" / "config.json"))
    resolve_acquisition({"kernel": "standard", "slice_mm": 5.0, "noise_q": 0.5, "blur_q": 0.5}, **acquisition)
    df = read_manifest(run_dir)
    rows = df[(df.split == split) & (df.kind == kind)]
    if rows.empty:
        raise ValueError(
            f"{run_dir / 'data' / 'manifest.csv'} has no {kind} scan in split {split!r} to re-render"
        )
    items = [
        {"scan_id": r.scan_id, "patient_id": r.patient_id, "seed": int(r.phantom_seed), "kind": r.kind}
        for r in rows.itertuples()
    ]
    scans = (render_phantom_scan(it, spec, acquisition) for it in items)
    cfg = {**config, "details": {**config.get("details", {}), "acquisition_shift": dict(acquisition)}}
    return write_prepared(Path(out_dir) / "data", scans, {it["patient_id"]: split for it in items}, cfg)

"""Scoring the 3D-data methods (seeds 001, 002, 004) on val/test volumes and writing what notebook 07 reads.

One path for every folder: its :class:`~ctad_core.methods.base.Family` supplies the forward pass, the
score and any post-processing of maps. What the folders do (higher = more anomalous everywhere):

- ``fanogan``: scan score = Eq. 6 (L_img + κ·L_feat); voxel map |x − G(E(x))|; Youden operating point.
  ``fanogan2d`` scores the central ``mid_fraction`` of axial slices with the 2D model (scan score = mean of
  the slices' Eq. 6), its maps are zero outside that band and its ``brain`` mask is restricted to the band;
  lesioned scans without lesion voxels in the band are left out, as Viana et al. did.
- ``ctfsh``: scan score = **I** (ℓ_r of Eq. 1); **F** (Eq. 3) in ``info``; voxel map |x − x̂|.
- ``resae``: voxel map = median-filtered |x − x̂| (Luo: 5³) inside the eroded brain mask (Luo's post-processing before
  the threshold); scan score = mean of the top 1 % of that map (Luo scored slices, not scans: this choice is
  ours); the declared segmentation step removes components smaller than ``post["min_size"]`` voxels.

Metrics are computed by :mod:`ctad_core.evaluation` from the written results, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ctad_core.data.nifti import save_nifti
from ctad_core.frontend import tqdm
from ctad_core.methods.base import TrainedMethod, family_of
from ctad_core.methods.inputs import EvalItems, downsample, mid_axial_range, upsample
from ctad_core.results import MethodResults, save_method_results
from ctad_core.train import Stopwatch, autocast
from ctad_core.utils import atomic_write, describe_device, write_json


@dataclass
class ScoredMethod:
    """A method's outputs on the evaluation items (from :func:`score_method`), kept for notebook 05's figures.

    Not the per-method evaluation (:class:`ctad_core.evaluation.MethodEvaluation`).

    Attributes:
        results: the :class:`~ctad_core.results.MethodResults` written for notebook 07.
        x: (N, D, H, W) model inputs of the kept items; recon: their reconstructions.
        extra: per-item extras (``I``/``F`` scores, …).
    """

    results: MethodResults
    x: np.ndarray
    recon: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.results.name


def _batches(n: int, bs: int):
    for i in range(0, n, bs):
        yield slice(i, min(n, i + bs))


@torch.no_grad()
def _infer(
    tm: TrainedMethod, x: np.ndarray, device: torch.device, batch_size: int, progress: bool
) -> dict[str, np.ndarray]:
    """Run the method's forward pass (its family's ``infer``) on (N, *spatial) inputs: recon, score, extras."""
    spec, model = tm.spec, tm.model
    infer = family_of(spec).infer
    model.eval().to(device)
    out: dict[str, list[np.ndarray]] = {"recon": [], "score": []}
    for sl in tqdm(
        list(_batches(len(x), batch_size)), desc=f"{spec.name} scoring", disable=not progress, leave=False
    ):
        xb = torch.from_numpy(np.ascontiguousarray(x[sl])).unsqueeze(1).to(device)
        with autocast(device, spec.amp):
            rec, score, extras = infer(tm, xb)
        out["recon"].append(rec[:, 0].float().cpu().numpy().astype(np.float32))
        out["score"].append(score.float().cpu().numpy())
        for k, v in extras.items():
            out.setdefault(k, []).append(v.float().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
    return {k: np.concatenate(v) for k, v in out.items()}


def score_method(
    tm: TrainedMethod,
    items: EvalItems,
    device: torch.device | str = "cpu",
    batch_size: int = 4,
    progress: bool = True,
) -> ScoredMethod:
    """Score val + test volumes with a trained method.

    Args:
        tm: the trained method.
        items: val + test volumes prepared for this method (window / skull strip of ``tm.spec``).
        device: torch device.
        batch_size: inference batch (volumes, or slices for a 2D model such as ``fanogan2d``).
        progress: tqdm bars.

    Returns:
        A :class:`ScoredMethod` whose ``results`` carry the maps, inputs, reconstructions, the method's
        segmentation step; metrics come from :mod:`ctad_core.evaluation`.
    """
    spec, device = tm.spec, torch.device(device)
    family = family_of(spec)
    n = len(items)
    keep = np.ones(n, bool)
    band: tuple[int, int] | None = None
    extra: dict[str, Any] = {}
    f = spec.downsample
    full = items.x.shape[1:]
    map_desc = ""
    with Stopwatch(device) as sw:
        xs = downsample(items.x, f)  # the grid the model works on (Viana: 64³ from 128³)
        if spec.spatial_dims == 2:
            band = mid_axial_range(xs.shape[1], spec.mid_fraction or 1.0)
            k = band[1] - band[0]
            inf = _infer(
                tm, xs[:, band[0] : band[1]].reshape(-1, *xs.shape[2:]), device, batch_size, progress
            )
            rs = xs.copy()
            rs[:, band[0] : band[1]] = inf["recon"].reshape(n, k, *xs.shape[2:])
            scores = inf["score"].reshape(n, k).mean(1)
            extra["slice_scores"] = inf["score"].reshape(n, k)
            band = (band[0] * f, band[1] * f)  # on the data grid from here on
            in_band = items.lesion[:, band[0] : band[1]].reshape(n, -1).any(1)
            keep = (items.label == 0) | in_band
        else:
            inf = _infer(tm, xs, device, batch_size, progress)
            rs, scores = inf["recon"], inf["score"]
            extra.update({k: v for k, v in inf.items() if k not in ("recon", "score")})
        recon = upsample(rs, full)
        if band is not None:
            recon[:, : band[0]], recon[:, band[1] :] = items.x[:, : band[0]], items.x[:, band[1] :]
        outside = None
        if band is not None:
            outside = np.ones(items.x.shape[1], bool)
            outside[band[0] : band[1]] = False
        mp = method_maps(tm, items.x, recon, items.eval_mask(spec.skull_strip), items.brain, scores, outside)
        maps, maps_pos, brain, scores = mp.maps, mp.maps_haemorrhage, mp.mask, mp.scan_score
        map_desc = mp.description
        extra.update(mp.extra)
    seconds = sw.seconds

    sel = np.flatnonzero(keep)
    res = MethodResults(
        name=spec.name,
        level="3d",  # the items are volumes, also for fanogan2d (its 2D model scores a volume's band)
        scan_id=items.scan_id[sel],
        split=items.split[sel],
        kind=items.kind[sel],
        scan_score=np.asarray(scores, np.float64)[sel],
        maps=maps[sel],
        maps_haemorrhage=maps_pos[sel],
        lesion=items.lesion[sel],
        # every method's figures inside the brain (evaluation) mask; a full-head method's maps cover the head,
        # kept as ``head`` for the kinds outside the brain (fracture)
        brain=(brain[sel] if spec.skull_strip else brain[sel] * items.brain[sel]).astype(np.uint8),
        head=None if spec.skull_strip else brain[sel].astype(np.uint8),
        recon=recon[sel].astype(np.float32),
        inputs=items.x[sel].astype(np.float32),
        info={"seconds_per_scan": seconds / max(1, n), **_info(tm, device, map_desc)},
    )
    if family.info is not None:
        res.info.update(family.info(tm, scores, extra))
    extra = {k: (v[sel] if isinstance(v, np.ndarray) and len(v) == n else v) for k, v in extra.items()}
    ev = ScoredMethod(res, items.x[sel], recon[sel], extra)
    if band is not None:
        res.info["band"] = list(band)
        res.info["excluded_scans"] = items.scan_id[~keep].tolist()
    return ev


@dataclass
class Maps:
    """A method's anomaly maps on a batch of items (from :func:`method_maps`).

    Attributes:
        maps: (N, *spatial) float32 |residual| inside the mask (after the method's post-processing).
        maps_haemorrhage: (N, *spatial) float32 max(residual, 0) inside the mask (post-processed).
        mask: (N, *spatial) uint8 the evaluation mask (the method's post-processing may erode it).
        scan_score: (N,) the per-item score (the method's own, or its post-processing's).
        description: what the post-processing did, for ``info["map"]``.
        extra: per-item arrays of the post-processing.
    """

    maps: np.ndarray
    maps_haemorrhage: np.ndarray
    mask: np.ndarray
    scan_score: np.ndarray
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def method_maps(
    tm: TrainedMethod,
    x: np.ndarray,
    recon: np.ndarray,
    mask: np.ndarray,
    brain: np.ndarray,
    scores: np.ndarray,
    outside: np.ndarray | None = None,
) -> Maps:
    """Maps of items (volumes or slices) from inputs and reconstructions, the one path of every family.

    The signed residual is the family's ``residual`` (default ``x − recon``); ``maps`` = its absolute value and
    ``maps_haemorrhage`` = its positive part (seed 000's ρ = max(·, 0)), both zero outside ``mask``; then the
    family's ``postprocess``.

    Args:
        tm: the trained method.
        x, recon: (N, *spatial) model-range inputs and reconstructions.
        mask: (N, *spatial) evaluation mask (not modified). brain: (N, *spatial) brain masks.
        scores: (N,) the method's own scores.
        outside: (D,) bool axial slices outside a 2D model's band (fanogan2d): maps and mask set to 0 there.
    """
    family = family_of(tm.spec)
    signed = family.residual(tm, x, recon) if family.residual is not None else x - recon
    mask = np.array(mask, copy=True)
    signed = signed * (mask > 0)
    maps = np.abs(signed).astype(np.float32)
    maps_pos = np.maximum(signed, 0).astype(np.float32)
    del signed
    if outside is not None:
        maps[:, outside] = 0.0
        maps_pos[:, outside] = 0.0
        mask[:, outside] = 0
    out = Maps(maps, maps_pos, mask, np.asarray(scores))
    if family.postprocess is not None:
        post = family.postprocess(tm.spec, maps, maps_pos, mask, x, recon, brain)
        out = Maps(
            post.get("maps", maps), post.get("maps_haemorrhage", maps_pos), post.get("mask", mask),
            np.asarray(post.get("scan_score", scores)), post.get("map", ""), dict(post.get("extra", {})),
        )
    return out


def _info(tm: TrainedMethod, device: torch.device, map_desc: str) -> dict[str, Any]:
    """The results' info entries every family shares (timings, spec, map, score, segmentation step)."""
    spec = tm.spec
    family = family_of(spec)
    return {
        "train_seconds": tm.train_seconds,
        "device": describe_device(device),
        "family": spec.family,
        "model_dims": f"{spec.spatial_dims}d",
        "spec": spec.to_dict(),
        "map": family.map
        + map_desc
        + (
            "; brain = evaluation mask (brain mask)"
            if spec.skull_strip
            else "; maps over the whole head; brain = evaluation mask (brain mask), head = head mask (kinds "
            "outside the brain)"
        ),
        "scan_score": family.scan_score,
        "segmentation": family.segmentation(spec),
        "baseline": family.baseline,
    }


def score_slices(
    tm: TrainedMethod,
    items: Any,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    items_per_scan: float = 1.0,
    progress: bool = True,
) -> MethodResults:
    """Score 2D slices with a method trained on slices (the 2D baselines of notebook 04).

    Args:
        tm: a method whose spec is 2D.
        items: :class:`~ctad_core.methods.fastgan.method.EvalSlices`-like: ``x`` (N, 1, S, S) tensor or
            (N, S, S) array in [-1, 1] (already windowed / skull-stripped for ``tm.spec``), ``lesion``,
            ``brain`` (N, S, S), ``scan_id``, ``split``, ``kind``, ``slice_index`` (N,).
        device: torch device. batch_size: slices per forward pass.
        items_per_scan: slices per scan of the run (the evaluator's seconds per scan).
        progress: tqdm bar.

    Returns:
        :class:`~ctad_core.results.MethodResults` at level ``"2d"``.
    """
    device = torch.device(device)
    x = np.asarray(items.x, dtype=np.float32)
    x = x[:, 0] if x.ndim == 4 else x
    with Stopwatch(device) as sw:
        inf = _infer(tm, x, device, batch_size, progress)
        mp = method_maps(tm, x, inf["recon"], items.brain, items.brain, inf["score"])
    n = len(x)
    return MethodResults(
        name=tm.spec.name,
        level="2d",
        scan_id=np.asarray(items.scan_id),
        split=np.asarray(items.split),
        kind=np.asarray(items.kind),
        scan_score=np.asarray(mp.scan_score, np.float64),
        maps=mp.maps,
        maps_haemorrhage=mp.maps_haemorrhage,
        lesion=np.asarray(items.lesion, np.uint8),
        brain=mp.mask.astype(np.uint8),
        recon=inf["recon"].astype(np.float32),
        inputs=x,
        info={
            "seconds_per_item": sw.seconds / max(1, n),
            "items_per_scan": float(items_per_scan),
            "slice_index": np.asarray(items.slice_index).tolist(),
            **_info(tm, device, mp.description),
        },
    )


def _results(ev: ScoredMethod | MethodResults) -> MethodResults:
    """The results of a scored method, or the results themselves."""
    return ev.results if isinstance(ev, ScoredMethod) else ev


# ---------------------------------------------------------------------------------------------- outputs


def write_method(
    out_dir: str | Path,
    ev: ScoredMethod,
    items: EvalItems | None = None,
    nifti_splits: tuple[str, ...] = ("test",),
) -> Path:
    """Write one method's ``methods/<name>.npz/.json`` and its voxel maps as NIfTI (input-aligned).

    Maps go to ``maps/<name>/<scan_id>.nii.gz`` for the scans of ``nifti_splits``, with each volume's affine
    (from ``items``), so they open on top of ``data/volumes/<scan_id>.nii.gz`` in any viewer.
    """
    out_dir = Path(out_dir)
    npz = save_method_results(out_dir, ev.results)
    if items is not None and nifti_splits:
        aff = {s: a for s, a in zip(items.scan_id, items.affine)}
        r = ev.results
        for sid, split, m in zip(r.scan_id, r.split, r.maps):
            if split in nifti_splits:
                save_nifti(out_dir / "maps" / r.name / f"{sid}.nii.gz", m.astype(np.float32), aff[sid])
    return npz


def scores_frame(results: list[MethodResults]) -> pd.DataFrame:
    """One row per method and scan: method, scan_id, split, kind, score (+ the extra scores of
    ``info["scores"]``, e.g. I and F for CTFSH)."""
    rows = []
    for r in results:
        extra = r.info.get("scores", {})
        for i in range(len(r.scan_id)):
            row = {
                "method": r.name,
                "scan_id": r.scan_id[i],
                "split": r.split[i],
                "kind": r.kind[i],
                "score": float(r.scan_score[i]),
            }
            for k, v in extra.items():
                row[k] = float(v[i])
            rows.append(row)
    return pd.DataFrame(rows)


def write_scores_csv(out_dir: str | Path, results: list[MethodResults]) -> Path:
    """Write ``scores.csv`` (see :func:`scores_frame`) atomically."""
    df = scores_frame(results)
    return atomic_write(Path(out_dir) / "scores.csv", lambda p: df.to_csv(p, index=False))


def write_summary(
    out_dir: str | Path,
    results: Iterable[MethodResults],
    evaluations: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``scores.csv`` and ``summary.json`` to ``out_dir``: per method its test scan AUROC (overall and
    per kind, from :func:`ctad_core.evaluation.evaluate`, the report's evaluator), scoring and training time,
    and the 2D-vs-3D comparison of a method registered with a 3D ``counterpart`` (``fanogan2d``) on the scans
    both kept, under ``<family>_2d_vs_3d``.

    ``results`` may be a generator (e.g. of :meth:`ctad_core.run.Run.load_method_results`): each method's arrays
    are dropped before the next is read, so memory stays that of one method at the ``gpu`` profile's sizes.
    ``evaluations`` (method name → :class:`~ctad_core.evaluation.MethodEvaluation` of the same results, e.g.
    notebook 05's) are used instead of evaluating again: a full evaluation with its bootstraps and threshold
    sweeps costs tens of seconds per method on a CPU (notebook 05 of ``quick`` spent 507 s here re-evaluating
    twelve methods it had just evaluated).
    """
    from ctad_core import distributed as ddp
    from ctad_core.evaluation import compare_on_common_scans, evaluate
    from ctad_core.methods import REGISTRY

    out = Path(out_dir)
    frames, methods, scans = [], {}, {}
    for r in results:
        frames.append(scores_frame([r]))
        given = (evaluations or {}).get(r.name)
        m = given.metrics if given is not None else evaluate(r, keep_segmentations=False).metrics
        methods[r.name] = {
            "scan_auroc": m.get("scan_auroc"),
            "scan_auroc_by_kind": m.get("scan_auroc_by_kind"),
            "seconds_per_scan": r.info.get("seconds_per_scan"),
            "train_seconds": r.info.get("train_seconds"),
        }
        # what the 2D-vs-3D comparison needs: the scan scores only
        scans[r.name] = MethodResults(r.name, r.level, r.scan_id, r.split, r.kind, r.scan_score)
    df = pd.concat(frames, ignore_index=True) if frames else scores_frame([])
    atomic_write(out / "scores.csv", lambda p: df.to_csv(p, index=False))
    summary: dict[str, Any] = {"methods": methods}
    for n, r in scans.items():
        d = REGISTRY.get(n)
        if d is not None and d.counterpart in scans:
            c = compare_on_common_scans(scans[d.counterpart], r)
            summary[f"{d.family}_2d_vs_3d"] = {
                "n_scans": c["n_scans"],
                "auroc_3d": c[f"auroc_{d.counterpart}"],
                "auroc_2d": c[f"auroc_{n}"],
            }
    if ddp.is_main():
        write_json(out / "summary.json", summary)
    return summary

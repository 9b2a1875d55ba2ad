"""Seed 004 (Luo et al. 2023): the 3D residual AE and its post-processing of maps.

Methods ``resae`` (dense latent 512) and ``resae_spatial`` (the spatial-latent ablation), parameters
``resae_*``. Voxel map = median-filtered |x − x̂| (Luo: 5³) inside the eroded brain mask, Luo's
post-processing before the threshold; scan score = mean of the top 1 % of that map (Luo scored slices, not
scans: this choice is ours). Its slice normality score s(u) (Appendix E1) is computed by the evaluator
(:mod:`ctad_core.evaluation.slices`) from these maps, as for every 3D method. The segmentation step it
declares: removal of 3D components smaller than ``resae_min_size`` voxels.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ctad_core.methods.base import Family, TrainedMethod, median_eroded_postprocess
from ctad_core.methods.resae.model import ResAE, ResAEConfig
from ctad_core.methods.resae.train import ResAETrain, train_resae
from ctad_core.methods.spec import MethodSpec, pooled_shape, window_param


def resae_spec(name: str, shape: tuple[int, int, int], p: dict[str, Any]) -> MethodSpec:
    """``resae`` / ``resae_spatial`` from the flat ``resae_*`` parameters (volume ``shape`` (D, H, W))."""
    f, small = pooled_shape(shape, p, "resae_downsample")
    cfg = ResAEConfig(
        image_shape=small,
        channels=tuple(p["resae_channels"]),
        latent="spatial" if name.endswith("spatial") else "dense",
        latent_dim=int(p["resae_latent_dim"]),
        spatial_channels=int(p["resae_spatial_channels"]),
    )
    tr = ResAETrain(
        batch_size=int(p["resae_batch_size"]),
        steps=int(p["resae_steps"]),
        lr=float(p["resae_lr"]),
        weight_decay=float(p["resae_weight_decay"]),
    )
    post = {
        "median": int(p["resae_median"]),
        "erode": int(p["resae_erode"]),
        "min_size": int(p["resae_min_size"]),
    }
    return MethodSpec(
        name,
        "resae",
        cfg,
        tr,
        window_param(p["resae_window"]),
        bool(p["resae_skull_strip"]),
        downsample=f,
        post=post,
        amp=bool(p["amp"]),
        ckpt_every=int(p["ckpt_every"]),
    )


def infer(tm: TrainedMethod, xb: Tensor) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Reconstruction and per-item mean squared error of a batch."""
    rec = tm.model(xb).float()
    return rec, (xb - rec).pow(2).flatten(1).mean(1), {}


#: Luo's post-processing of (N, D, H, W) maps: median filter, eroded evaluation mask; top-1 % scan score.
postprocess = median_eroded_postprocess


FAMILY = Family(
    name="resae",
    spec=resae_spec,
    build=lambda spec: (ResAE(spec.model), None),
    train=lambda model, x, spec, runner, seed, critic: train_resae(model, x, spec, runner, seed),
    infer=infer,
    scan_score="top-1% mean of the post-processed map",
    postprocess=postprocess,
    segmentation=lambda spec: {"min_component_size": int(spec.post["min_size"])},
)

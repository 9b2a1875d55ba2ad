"""The coarse-noise denoising U-Net as a registered method: ``dae`` (volumes, 3D U-Net) and ``dae2d``
(notebook 04's slices, 2D U-Net), one model through ``spatial_dims``.

Parameters ``dae_*`` (notebook 05 for the volumes, notebook 04 for the slices). Inputs: the brain window,
skull-stripped (Kascenas et al. work on skull-stripped brain MRI). Map: |x − f(x)| of the un-noised input,
median-filtered (``dae_median``; their code: 5) inside the brain mask eroded by ``dae_erode`` (their code
erodes the foreground by a 5-wide average), as :func:`~ctad_core.methods.base.median_eroded_postprocess`;
``maps_haemorrhage`` the same of max(x − f(x), 0). Scan score: the mean of the top 1 % of the map. No
segmentation step beyond the threshold (theirs: threshold only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from ctad_core.methods.base import Family, median_eroded_postprocess
from ctad_core.methods.dae.model import UNet, UNetConfig
from ctad_core.methods.dae.train import DAETrain, train_dae
from ctad_core.methods.spec import MethodSpec, pooled_shape, window_param


@dataclass
class DAEConfig:
    """The denoising U-Net and its noise.

    Attributes:
        image_shape: the grid the model sees, (D, H, W) or (H, W) (its length sets ``spatial_dims``).
        channels: U-Net widths per level (Kascenas: 64, 128, 256, 512).
        noise_cell: the coarse-noise grid is this many voxels coarser per axis (Kascenas: 16² noise on
            128² images, i.e. 8).
        noise_std: the noise's standard deviation in model-range units (Kascenas: 0.2).
    """

    image_shape: tuple[int, ...]
    channels: tuple[int, ...] = (64, 128, 256, 512)
    noise_cell: int = 8
    noise_std: float = 0.2
    unet: UNetConfig = field(init=False)

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(s) for s in self.image_shape)
        self.unet = UNetConfig(spatial_dims=len(self.image_shape), channels=self.channels)
        self.channels = self.unet.channels
        f = 2 ** (len(self.channels) - 1)
        if any(s % f for s in self.image_shape):
            raise ValueError(
                f"the U-Net's {len(self.channels)} levels need sides divisible by {f}, got {self.image_shape}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_shape": list(self.image_shape),
            "channels": list(self.channels),
            "noise_cell": self.noise_cell,
            "noise_std": self.noise_std,
        }


def dae_spec(name: str, shape: tuple[int, ...], p: dict[str, Any]) -> MethodSpec:
    """``dae`` / ``dae2d`` from the flat ``dae_*`` parameters; volumes (3D ``shape``) are average-pooled by
    ``dae_downsample``, slices (2D ``shape``) are not."""
    shape = tuple(int(s) for s in shape)
    f, small = pooled_shape(shape, p, "dae_downsample") if len(shape) == 3 else (1, shape)
    cfg = DAEConfig(small, tuple(p["dae_channels"]), int(p["dae_noise_cell"]), float(p["dae_noise_std"]))
    tr = DAETrain(
        int(p["dae_batch_size"]), int(p["dae_steps"]), float(p["dae_lr"]), float(p["dae_weight_decay"])
    )
    post = {"median": int(p["dae_median"]), "erode": int(p["dae_erode"])}
    return MethodSpec(
        name,
        "dae",
        cfg,
        tr,
        window_param(p["dae_window"]),
        True,
        downsample=f,
        post=post,
        amp=bool(p["amp"]),
        ckpt_every=int(p["ckpt_every"]),
    )


def infer(tm: Any, xb: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """f(x) of the un-noised batch and its per-item mean squared error."""
    rec = tm.model(xb).float()
    return rec, (xb - rec).pow(2).flatten(1).mean(1), {}


FAMILY = Family(
    name="dae",
    spec=dae_spec,
    build=lambda spec: (UNet(spec.model.unet), None),
    train=lambda model, x, spec, runner, seed, critic: train_dae(model, x, spec, runner, seed),
    infer=infer,
    scan_score="top-1% mean of the post-processed map",
    postprocess=median_eroded_postprocess,
    baseline=True,
    map="|x - f(x)| of the coarse-noise denoising U-Net (Kascenas 2023)",
)

"""Seed 001 (Viana et al. 2021): 3D f-AnoGAN with fine-tuning, and the same networks in 2D on mid-axial slices.

Methods ``fanogan3d`` and ``fanogan2d`` (``spatial_dims`` 2: the central ``fanogan2d_mid_fraction`` of axial
slices; scan score = mean of the slices' score, maps zero outside that band, lesioned scans without lesion
voxels in the band left out, as Viana et al. did). Score: Eq. 6, L_E = L_img + κ·L_feat; map |x − G(E(x))|.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ctad_core.methods.base import Family, TrainedMethod
from ctad_core.methods.fanogan.model import FAnoGAN, FAnoGANConfig, encoder_loss_terms
from ctad_core.methods.fanogan.train import FAnoGANTrain, train_fanogan
from ctad_core.methods.spec import MethodSpec, pooled_shape, window_param


def fanogan_spec(name: str, shape: tuple[int, int, int], p: dict[str, Any]) -> MethodSpec:
    """``fanogan3d`` / ``fanogan2d`` from the flat ``fanogan_*`` parameters (volume ``shape`` (D, H, W))."""
    two_d = name == "fanogan2d"
    f, small = pooled_shape(shape, p, "fanogan_downsample")
    cfg = FAnoGANConfig(
        image_shape=small[1:] if two_d else small,
        latent_dim=int(p["fanogan_latent_dim"]),
        base_channels=int(p["fanogan_base_channels"]),
        max_channels=int(p["fanogan_max_channels"]),
    )
    tr = FAnoGANTrain(
        batch_size=int(p["fanogan_batch_size"]),
        gan_steps=int(p["fanogan_gan_steps"]),
        n_critic=int(p["fanogan_n_critic"]),
        gp_lambda=float(p["fanogan_gp_lambda"]),
        lr_gan=float(p["fanogan_lr_gan"]),
        encoder_steps=int(p["fanogan_encoder_steps"]),
        finetune_steps=int(p["fanogan_finetune_steps"]),
        lr_encoder=float(p["fanogan_lr_encoder"]),
        kappa=float(p["fanogan_kappa"]),
    )
    return MethodSpec(
        name,
        "fanogan",
        cfg,
        tr,
        window_param(p["fanogan_window"]),
        bool(p["fanogan_skull_strip"]),
        mid_fraction=float(p["fanogan2d_mid_fraction"]) if two_d else None,
        downsample=f,
        amp=bool(p["amp"]),
        ckpt_every=int(p["ckpt_every"]),
    )


def infer(tm: TrainedMethod, xb: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Reconstruction G(E(x)) and the per-item score L_E (Eq. 6) of a batch."""
    rec = tm.model.reconstruct(xb).float()
    return rec, encoder_loss_terms(xb, rec, tm.model.critic, tm.spec.train.kappa)[2], {}


FAMILY = Family(
    name="fanogan",
    spec=fanogan_spec,
    build=lambda spec: (FAnoGAN(spec.model), None),
    train=lambda model, x, spec, runner, seed, critic: train_fanogan(model, x, spec, runner, seed),
    infer=infer,
    scan_score="Eq. 6 (L_img + kappa*L_feat)",
)

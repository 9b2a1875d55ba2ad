"""Seed 002 (CTFSH 2022): 3D AE / VAE with L1, L1 + MS-SSIM or + ACAI, on the full head or skull-stripped.

Twelve methods ``ctfsh_{ae,vae}_{l1,msssim,acai}[_strip]`` (``acai`` means L1 + MS-SSIM + ACAI, as in the
paper's third column; ``_strip`` the skull-stripped inputs). Scan score **I** = ℓ_r (Eq. 1); **F** (Eq. 3)
in the results' ``info["scores"]``; voxel map |x − x̂|.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from torch import Tensor

from ctad_core.methods.base import Family, TrainedMethod
from ctad_core.methods.ctfsh import model as ctfsh_lib
from ctad_core.methods.ctfsh.model import CTFSH, ACAICritic, CTFSHConfig
from ctad_core.methods.ctfsh.train import CTFSHTrain, fit_latent, train_ctfsh
from ctad_core.methods.spec import MethodSpec, pooled_shape, window_param

#: The twelve CTFSH method names.
NAMES = tuple(
    f"ctfsh_{m}_{loss}{strip}"
    for strip, m, loss in itertools.product(("", "_strip"), ("ae", "vae"), ("l1", "msssim", "acai"))
)


def ctfsh_variant(name: str) -> tuple[bool, str, bool, bool]:
    """Parse ``ctfsh_{ae,vae}_{l1,msssim,acai}[_strip]`` → (variational, loss, acai, skull_strip).

    Raises:
        ValueError: for any other name.
    """
    parts = name.split("_")
    if (
        len(parts) not in (3, 4)
        or parts[0] != "ctfsh"
        or parts[1] not in ("ae", "vae")
        or parts[2] not in ("l1", "msssim", "acai")
        or (len(parts) == 4 and parts[3] != "strip")
    ):
        raise ValueError(f"unknown CTFSH method {name!r}; use ctfsh_{{ae,vae}}_{{l1,msssim,acai}}[_strip]")
    return parts[1] == "vae", ("l1" if parts[2] == "l1" else "l1+msssim"), parts[2] == "acai", len(parts) == 4


def ctfsh_spec(name: str, shape: tuple[int, int, int], p: dict[str, Any]) -> MethodSpec:
    """One CTFSH variant from the flat ``ctfsh_*`` parameters (volume ``shape`` (D, H, W))."""
    variational, loss, acai, strip = ctfsh_variant(name)
    f, small = pooled_shape(shape, p, "ctfsh_downsample")
    cfg = CTFSHConfig(
        image_shape=small,
        channels=tuple(p["ctfsh_channels"]),
        latent_dim=int(p["ctfsh_latent_dim"]),
        variational=variational,
    )
    tr = CTFSHTrain(
        batch_size=int(p["ctfsh_batch_size"]),
        steps=int(p["ctfsh_steps"]),
        lr=float(p["ctfsh_lr"]),
        loss=loss,
        rho=float(p["ctfsh_rho"]),
        win_size=int(p["ctfsh_win_size"]),
        acai=acai,
        acai_lambda=float(p["ctfsh_acai_lambda"]),
        acai_gamma=float(p["ctfsh_acai_gamma"]),
        kl_weight=float(p["ctfsh_kl_weight"]),
    )
    return MethodSpec(
        name,
        "ctfsh",
        cfg,
        tr,
        window_param(p["ctfsh_window"]),
        strip,
        downsample=f,
        amp=bool(p["amp"]),
        ckpt_every=int(p["ckpt_every"]),
    )


def infer(tm: TrainedMethod, xb: Tensor) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Reconstruction (the VAE's mean), the I score ℓ_r and the F score of a batch."""
    tc = tm.spec.train
    rec, _, mu, _ = tm.model(xb, sample=False)
    rec = rec.float()
    score = ctfsh_lib.reconstruction_loss(xb, rec, tc.loss, tc.rho, tc.win_size)
    return rec, score, {"F": ctfsh_lib.f_score(mu.float(), tm.latent["mu"], tm.latent["sigma2"])}


def msssim_info(spec: MethodSpec) -> dict[str, Any]:
    """The MS-SSIM scales a spec uses (fewer than five on small volumes), for the results' info."""
    if spec.train.loss != "l1+msssim":
        return {"used": False}
    n, w = ctfsh_lib.msssim_scales(spec.model.image_shape, spec.train.win_size)
    return {"used": True, "scales": n, "weights": list(w), "win_size": spec.train.win_size, "of": 5}


def info(tm: TrainedMethod, scores: np.ndarray, extra: dict[str, np.ndarray]) -> dict[str, Any]:
    """MS-SSIM scales, the F score's σ² and both scores per item (I = the scan score)."""
    extra["I"] = np.asarray(scores)
    return {
        "msssim_scales": msssim_info(tm.spec),
        "latent_sigma2": float(tm.latent["sigma2"]),
        "scores": {"I": np.asarray(scores).tolist(), "F": np.asarray(extra["F"]).tolist()},
    }


FAMILY = Family(
    name="ctfsh",
    spec=ctfsh_spec,
    build=lambda spec: (CTFSH(spec.model), ACAICritic(spec.model) if spec.train.acai else None),
    train=train_ctfsh,
    infer=infer,
    scan_score="I score (Eq. 1)",
    fit_latent=fit_latent,
    info=info,
)

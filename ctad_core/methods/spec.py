"""The volumetric methods by name, and how the notebook's flat parameters become their configurations.

Names (each one ``MethodResults`` for notebook 07):

- ``fanogan3d`` / ``fanogan2d`` — Viana et al. (seed 001) in 3D, and the same networks on mid-axial slices;
- ``ctfsh_{ae,vae}_{l1,msssim,acai}`` and the ``_strip`` (skull-stripped) twins — CTFSH (seed 002);
  ``acai`` means L1 + MS-SSIM + ACAI, as in the paper's third column;
- ``luo_resae`` (dense latent 512) / ``luo_resae_spatial`` (the spatial-latent ablation) — Luo et al. (seed 004).

:data:`DEFAULT_PARAMS` are the ``quick`` profile's values (the notebook's parameters cell holds the same
literals); the CLI and the notebook both pass their flat parameter dict to :func:`method_spec`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ctad_core.models.ctfsh import CTFSHConfig
from ctad_core.models.fanogan import FAnoGANConfig
from ctad_core.models.resae import ResAEConfig

#: Parameters of notebook 05 / the CLI, at the quick profile's values (64³ phantoms, 2 CPU cores: every model
#: runs on the volumes average-pooled to 32³, maps come back on the 64³ grid).
DEFAULT_PARAMS: dict[str, Any] = {
    "methods": [
        "fanogan3d",
        "fanogan2d",
        "ctfsh_ae_l1",
        "ctfsh_ae_msssim",
        "ctfsh_vae_msssim",
        "ctfsh_ae_msssim_strip",
        "luo_resae",
        "luo_resae_spatial",
    ],
    # seed 001 — Viana et al. 3D f-AnoGAN
    "fanogan_window": "viana",
    "fanogan_skull_strip": True,
    "fanogan_downsample": 2,
    "fanogan_latent_dim": 128,
    "fanogan_base_channels": 4,
    "fanogan_max_channels": 32,
    "fanogan_batch_size": 4,
    "fanogan_gan_steps": 120,
    "fanogan_n_critic": 3,
    "fanogan_gp_lambda": 10.0,
    "fanogan_lr_gan": 2e-4,
    "fanogan_encoder_steps": 120,
    "fanogan_finetune_steps": 60,
    "fanogan_lr_encoder": 5e-4,
    "fanogan_kappa": 1.0,
    "fanogan2d_mid_fraction": 0.3,
    # seed 002 — CTFSH AE / VAE
    "ctfsh_window": "ctfsh",
    "ctfsh_downsample": 2,
    "ctfsh_channels": [4, 8, 16],
    "ctfsh_latent_dim": 64,
    "ctfsh_batch_size": 4,
    "ctfsh_steps": 200,
    "ctfsh_lr": 1e-3,
    "ctfsh_rho": 0.15,
    "ctfsh_win_size": 7,
    "ctfsh_acai_lambda": 1.0,
    "ctfsh_acai_gamma": 0.2,
    "ctfsh_kl_weight": 1.0,
    # seed 004 — Luo et al. residual AE
    "luo_window": "brain",
    "luo_skull_strip": True,
    "luo_downsample": 2,
    "luo_channels": [4, 8, 16, 32],
    "luo_latent_dim": 512,
    "luo_spatial_channels": 4,
    "luo_batch_size": 4,
    "luo_steps": 300,
    "luo_lr": 1e-3,
    "luo_weight_decay": 1e-5,
    "luo_median": 3,
    "luo_erode": 1,
    "luo_min_size": 4,
    # everything
    "eval_batch_size": 4,
    "amp": True,
    "ckpt_every": 100,
}

FAMILIES = ("fanogan", "ctfsh", "resae")


@dataclass
class FAnoGANTrain:
    """Training schedule of seed 001 (WGAN-GP → encoder → fine-tuning of E and G).

    Attributes:
        gan_steps: generator iterations; the critic takes ``n_critic`` steps before each.
        n_critic, gp_lambda: WGAN-GP (Gulrajani et al.: 5 and 10).
        lr_gan, betas_gan: Adam for G and D (Gulrajani et al.: 1e-4, (0, 0.9)).
        encoder_steps, lr_encoder: the f-AnoGAN encoder phase (G and D frozen).
        finetune_steps: Viana's extra phase training E and G on L_E (D frozen).
        kappa: weight of the feature term in L_E.
    """

    batch_size: int = 4
    gan_steps: int = 1000
    n_critic: int = 5
    gp_lambda: float = 10.0
    lr_gan: float = 1e-4
    betas_gan: tuple[float, float] = (0.0, 0.9)
    encoder_steps: int = 1000
    finetune_steps: int = 500
    lr_encoder: float = 1e-4
    kappa: float = 1.0

    def __post_init__(self) -> None:
        if self.n_critic < 1 or self.batch_size < 1:
            raise ValueError(f"n_critic and batch_size must be >= 1, got {self.n_critic} and {self.batch_size}")


@dataclass
class CTFSHTrain:
    """Training of seed 002: ℓ_r (L1 or L1 + MS-SSIM, ρ), optional ACAI (λ, γ), VAE KL weight."""

    batch_size: int = 4
    steps: int = 1000
    lr: float = 1e-4
    loss: str = "l1+msssim"
    rho: float = 0.15
    win_size: int = 11
    acai: bool = False
    acai_lambda: float = 1.0
    acai_gamma: float = 0.2
    kl_weight: float = 1.0


@dataclass
class ResAETrain:
    """Training of seed 004: L2 loss, Adam, L2 weight decay on kernels."""

    batch_size: int = 8
    steps: int = 1000
    lr: float = 1e-4
    weight_decay: float = 1e-5


@dataclass
class MethodSpec:
    """Everything that defines one method run: family, model and training configs, input preparation."""

    name: str
    family: str
    model: Any  # FAnoGANConfig | CTFSHConfig | ResAEConfig
    train: Any  # FAnoGANTrain | CTFSHTrain | ResAETrain
    window: str | tuple[float, float]
    skull_strip: bool
    mid_fraction: float | None = None  # fanogan2d: the central share of axial slices
    downsample: int = 1  # the model runs on volumes average-pooled by this factor (maps come back upsampled)
    post: dict[str, Any] = field(default_factory=dict)  # luo: median / erode / min_size
    amp: bool = True
    ckpt_every: int = 100

    @property
    def spatial_dims(self) -> int:
        return len(self.model.image_shape)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (for checkpoints and ``MethodResults.info``)."""
        return {
            "name": self.name,
            "family": self.family,
            "model": self.model.to_dict(),
            "train": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.train).items()},
            "window": list(self.window) if isinstance(self.window, tuple) else self.window,
            "skull_strip": self.skull_strip,
            "mid_fraction": self.mid_fraction,
            "downsample": self.downsample,
            "post": dict(self.post),
            "amp": self.amp,
        }


def ctfsh_variant(name: str) -> tuple[bool, str, bool, bool]:
    """Parse ``ctfsh_{ae,vae}_{l1,msssim,acai}[_strip]`` → (variational, loss, acai, skull_strip)."""
    parts = name.split("_")
    if len(parts) not in (3, 4) or parts[0] != "ctfsh" or parts[1] not in ("ae", "vae") or parts[2] not in (
        "l1",
        "msssim",
        "acai",
    ) or (len(parts) == 4 and parts[3] != "strip"):
        raise ValueError(f"unknown CTFSH method {name!r}; use ctfsh_{{ae,vae}}_{{l1,msssim,acai}}[_strip]")
    return parts[1] == "vae", ("l1" if parts[2] == "l1" else "l1+msssim"), parts[2] == "acai", len(parts) == 4


def method_names(params: dict[str, Any] | None = None) -> list[str]:
    """The methods a parameter dict asks for (default: :data:`DEFAULT_PARAMS`)."""
    return list((params or DEFAULT_PARAMS)["methods"])


def method_spec(name: str, volume_shape: tuple[int, int, int], params: dict[str, Any] | None = None) -> MethodSpec:
    """Build a :class:`MethodSpec` from flat parameters.

    Args:
        name: a method name (module docstring).
        volume_shape: (D, H, W) of the prepared volumes (read from the data, not assumed).
        params: flat parameters (notebook / YAML); missing keys fall back to :data:`DEFAULT_PARAMS`.

    Raises:
        ValueError: for an unknown name.
    """
    p = {**DEFAULT_PARAMS, **(params or {})}
    shape = tuple(int(s) for s in volume_shape)
    common = {"amp": bool(p["amp"]), "ckpt_every": int(p["ckpt_every"])}
    if name in ("fanogan3d", "fanogan2d"):
        two_d = name == "fanogan2d"
        f, small = _pooled(shape, p, "fanogan_downsample")
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
            name, "fanogan", cfg, tr, _window(p["fanogan_window"]), bool(p["fanogan_skull_strip"]),
            mid_fraction=float(p["fanogan2d_mid_fraction"]) if two_d else None, downsample=f, **common,
        )
    if name.startswith("ctfsh_"):
        variational, loss, acai, strip = ctfsh_variant(name)
        f, small = _pooled(shape, p, "ctfsh_downsample")
        cfg = CTFSHConfig(
            image_shape=small, channels=tuple(p["ctfsh_channels"]), latent_dim=int(p["ctfsh_latent_dim"]),
            variational=variational,
        )
        tr = CTFSHTrain(
            batch_size=int(p["ctfsh_batch_size"]), steps=int(p["ctfsh_steps"]), lr=float(p["ctfsh_lr"]),
            loss=loss, rho=float(p["ctfsh_rho"]), win_size=int(p["ctfsh_win_size"]), acai=acai,
            acai_lambda=float(p["ctfsh_acai_lambda"]), acai_gamma=float(p["ctfsh_acai_gamma"]),
            kl_weight=float(p["ctfsh_kl_weight"]),
        )
        return MethodSpec(name, "ctfsh", cfg, tr, _window(p["ctfsh_window"]), strip, downsample=f, **common)
    if name in ("luo_resae", "luo_resae_spatial"):
        f, small = _pooled(shape, p, "luo_downsample")
        cfg = ResAEConfig(
            image_shape=small, channels=tuple(p["luo_channels"]),
            latent="spatial" if name.endswith("spatial") else "dense",
            latent_dim=int(p["luo_latent_dim"]), spatial_channels=int(p["luo_spatial_channels"]),
        )
        tr = ResAETrain(
            batch_size=int(p["luo_batch_size"]), steps=int(p["luo_steps"]), lr=float(p["luo_lr"]),
            weight_decay=float(p["luo_weight_decay"]),
        )
        post = {"median": int(p["luo_median"]), "erode": int(p["luo_erode"]), "min_size": int(p["luo_min_size"])}
        return MethodSpec(
            name, "resae", cfg, tr, _window(p["luo_window"]), bool(p["luo_skull_strip"]), downsample=f, post=post, **common
        )
    raise ValueError(
        f"unknown volumetric method {name!r}; use fanogan3d, fanogan2d, ctfsh_{{ae,vae}}_{{l1,msssim,acai}}[_strip], "
        "luo_resae or luo_resae_spatial"
    )


def _pooled(shape: tuple[int, ...], p: dict[str, Any], key: str) -> tuple[int, tuple[int, ...]]:
    f = int(p[key])
    if f < 1 or any(s % f for s in shape):
        raise ValueError(f"{key}={f} does not divide the volume shape {shape}")
    return f, tuple(s // f for s in shape)


def _window(w: Any) -> str | tuple[float, float]:
    return w if isinstance(w, str) else (float(w[0]), float(w[1]))

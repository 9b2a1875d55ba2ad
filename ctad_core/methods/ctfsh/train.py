"""Training of seed 002 (CTFSH 2022): AE/VAE on ℓ_r (+ β·KL) (+ λ·ACAI with its critic), then the F score's
Gaussian fitted on the healthy training codes (Eq. 3). Phases run through :class:`ctad_core.train.PhaseRunner`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from ctad_core import distributed as ddp
from ctad_core.methods.ctfsh import model as ctfsh_lib
from ctad_core.methods.ctfsh.model import CTFSH, ACAICritic
from ctad_core.train import Batches, PhaseRunner, autocast, collect_wrappers, set_trainable, tensor_dataset

if TYPE_CHECKING:
    from ctad_core.methods.spec import MethodSpec


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


class _AEStep(nn.Module):
    """CTFSH AE/VAE step: forward(x, perm, alpha) → dict of reconstruction terms (+ ACAI interpolations)."""

    def __init__(self, model: CTFSH, critic: nn.Module | None, tc: Any) -> None:
        super().__init__()
        self.model = model
        self._critic = (critic,)
        self.tc = tc

    def forward(
        self, x: Tensor, perm: Tensor | None = None, alpha: Tensor | None = None
    ) -> dict[str, Tensor]:
        x_hat, z, mu, logvar = self.model(x)
        out = {
            "x_hat": x_hat,
            "rec": ctfsh_lib.reconstruction_loss(x, x_hat, self.tc.loss, self.tc.rho, self.tc.win_size),
        }
        out["kl"] = (
            ctfsh_lib.kl_divergence(mu, logvar) if logvar is not None else torch.zeros_like(out["rec"])
        )
        critic = self._critic[0]
        if critic is not None and perm is not None and alpha is not None:
            x_alpha = self.model.decode(ctfsh_lib.interpolate_latents(z, z[perm], alpha))
            out["x_alpha"] = x_alpha
            out["ae_reg"] = critic(x_alpha).float().pow(2).mean()
        return out


class _ACAICriticStep(nn.Module):
    """ACAI critic step: forward(x, x_hat, x_alpha, alpha) → critic loss (AE outputs detached)."""

    def __init__(self, critic: ACAICritic, gamma: float) -> None:
        super().__init__()
        self.critic, self.gamma = critic, gamma

    def forward(self, x: Tensor, x_hat: Tensor, x_alpha: Tensor, alpha: Tensor) -> Tensor:
        return ctfsh_lib.acai_losses(self.critic, x, x_hat.detach(), x_alpha.detach(), alpha, self.gamma)[1]


def train_ctfsh(
    model: CTFSH,
    x: np.ndarray,
    spec: MethodSpec,
    runner: PhaseRunner,
    seed: int = 0,
    critic: ACAICritic | None = None,
) -> None:
    """Seed 002: AE/VAE on ℓ_r (+ β·KL per voxel for the VAE) (+ λ·ACAI regulariser, with its critic)."""
    tc, info = spec.train, runner.info
    dev = info.device
    model.to(dev).train()
    batches = Batches(ddp.make_loader(tensor_dataset(x), tc.batch_size, info, seed), dev)
    rng = torch.Generator().manual_seed(seed * 7919 + info.rank)
    n_vox = float(np.prod(model.cfg.image_shape))
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    optims = {"ae": opt}
    modules: dict[str, nn.Module] = {"model": model}
    use_acai = tc.acai and critic is not None
    c_step = None
    if use_acai:
        critic.to(dev).train()
        opt_c = torch.optim.Adam(critic.parameters(), lr=tc.lr)
        optims["critic"], modules["critic"] = opt_c, critic
        c_step = ddp.wrap(_ACAICriticStep(critic, tc.acai_gamma), info)
    ae_step = ddp.wrap(_AEStep(model, critic if use_acai else None, tc), info)

    def step_fn(step: int) -> dict[str, float]:
        xb = batches.next()
        perm = alpha = None
        if use_acai:
            perm = torch.roll(torch.arange(xb.shape[0]), 1).to(dev)  # pairs of distinct volumes (batch ≥ 2)
            alpha = (0.5 * torch.rand(xb.shape[0], generator=rng)).to(dev)  # α ~ U[0, 0.5]
            set_trainable(critic, False)
        with autocast(dev, spec.amp):
            out = ae_step(xb, perm, alpha)
        loss = out["rec"].mean() + tc.kl_weight * out["kl"].mean() / n_vox
        logs = {"rec": out["rec"].mean().item()}
        if model.cfg.variational:
            logs["kl"] = out["kl"].mean().item()
        if use_acai:
            loss = loss + tc.acai_lambda * out["ae_reg"]
            logs["ae_reg"] = out["ae_reg"].item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if use_acai:
            set_trainable(critic, True)
            with autocast(dev, spec.amp):
                loss_c = c_step(xb, out["x_hat"], out["x_alpha"], alpha)
            opt_c.zero_grad(set_to_none=True)
            loss_c.backward()
            opt_c.step()
            logs["critic"] = loss_c.item()
        return logs

    runner.run("ae", tc.steps, modules, optims, step_fn, spec.name)
    ae_step = c_step = None
    collect_wrappers()
    model.eval()


@torch.no_grad()
def fit_latent(model: CTFSH, x: np.ndarray, device: torch.device, batch_size: int = 4) -> dict[str, Any]:
    """Encode healthy training volumes and fit the F score's Gaussian (μ, σ²) (CTFSH Eq. 3)."""
    model.eval()
    codes = []
    for i in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[i : i + batch_size]).unsqueeze(1).to(device)
        codes.append(model.encode(xb)[0].float().cpu())
    mu, sigma2 = ctfsh_lib.fit_latent_gaussian(torch.cat(codes))
    return {"mu": mu, "sigma2": sigma2}

"""Training of seed 001 (Viana et al. 2021, 3D f-AnoGAN): WGAN-GP, then the encoder, then Viana's fine-tuning.

Each phase wraps the modules it trains in DistributedDataParallel (through :mod:`ctad_core.distributed`; a
no-op for one process) inside a small *step module* whose ``forward`` computes everything the phase's loss
needs, so DDP sees one forward and one backward per step even with the gradient penalty. Frozen networks are
called directly, with ``requires_grad`` off, and never wrapped. Phases run through
:class:`ctad_core.train.PhaseRunner` (checkpoints, exact resume, progress, loop probe).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from ctad_core import distributed as ddp
from ctad_core.methods.fanogan.model import (
    FAnoGAN,
    critic_loss,
    encoder_loss_terms,
    generator_loss,
    gradient_penalty,
)
from ctad_core.train import Batches, PhaseRunner, autocast, collect_wrappers, set_trainable, tensor_dataset

if TYPE_CHECKING:
    from ctad_core.methods.spec import MethodSpec


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
            raise ValueError(
                f"n_critic and batch_size must be >= 1, got {self.n_critic} and {self.batch_size}"
            )


class _CriticStep(nn.Module):
    """D step of WGAN-GP: forward(real, fake) → (D(real), D(fake), gradient penalty)."""

    def __init__(self, critic: nn.Module) -> None:
        super().__init__()
        self.critic = critic

    def forward(self, real: Tensor, fake: Tensor, generator: torch.Generator | None = None):
        both = self.critic(torch.cat([real, fake]))
        d_real, d_fake = both[: real.shape[0]], both[real.shape[0] :]
        return d_real, d_fake, gradient_penalty(self.critic, real, fake, generator)


class _GeneratorStep(nn.Module):
    """G step: forward(z) → D(G(z)); the critic is held outside the module tree (frozen, not synced)."""

    def __init__(self, generator: nn.Module, critic: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self._critic = (critic,)

    def forward(self, z: Tensor) -> Tensor:
        return self._critic[0](self.generator(z))


class _EncoderStep(nn.Module):
    """Encoder / fine-tuning step: forward(x) → per-item (L_img, L_feat, L_E) of Eqs. 4–6.

    ``trainable`` holds the modules being trained (E, or E and G); the critic always stays outside.
    """

    def __init__(
        self, encoder: nn.Module, generator: nn.Module, critic: nn.Module, kappa: float, train_g: bool
    ) -> None:
        super().__init__()
        self.encoder = encoder
        if train_g:
            self.generator = generator
        else:
            self._generator = (generator,)
        self._critic = (critic,)
        self.kappa = kappa

    def forward(self, x: Tensor):
        g = self.generator if hasattr(self, "generator") else self._generator[0]
        return encoder_loss_terms(x, g(self.encoder(x)), self._critic[0], self.kappa)


def train_fanogan(
    model: FAnoGAN, x: np.ndarray, spec: MethodSpec, runner: PhaseRunner, seed: int = 0
) -> None:
    """Seed 001's three phases on healthy images ``x`` (N, *spatial) in [-1, 1]: WGAN-GP, encoder, fine-tuning.

    1. WGAN-GP (Eqs. 2–3): ``n_critic`` critic steps (penalty λ) per generator step, z ~ N(0, I).
    2. Encoder with G and D frozen, on L_E = L_img + κ·L_feat (Eqs. 4–6).
    3. Viana's extra step: E and G fine-tuned together on L_E, D frozen. G's BatchNorm statistics stay
       frozen (eval mode) in phases 2–3, as at scoring time.
    """
    tc, info = spec.train, runner.info
    dev = info.device
    model.to(dev)
    G, D = model.generator, model.critic
    batches = Batches(ddp.make_loader(tensor_dataset(x), tc.batch_size, info, seed), dev)
    rng = torch.Generator().manual_seed(seed * 7919 + info.rank)  # z and ε differ between ranks
    ac = lambda: autocast(dev, spec.amp)  # noqa: E731

    # 1. WGAN-GP ------------------------------------------------------------------------------------------
    G.train(), D.train()
    opt_g = torch.optim.Adam(G.parameters(), lr=tc.lr_gan, betas=tuple(tc.betas_gan))
    opt_d = torch.optim.Adam(D.parameters(), lr=tc.lr_gan, betas=tuple(tc.betas_gan))
    d_step, g_step = ddp.wrap(_CriticStep(D), info), ddp.wrap(_GeneratorStep(G, D), info)

    def gan_step(step: int) -> dict[str, float]:
        for _ in range(tc.n_critic):
            real = batches.next()
            z = torch.randn(real.shape[0], model.cfg.latent_dim, generator=rng).to(dev)
            with torch.no_grad(), ac():
                fake = G(z).float()
            with ac():
                d_real, d_fake, gp = d_step(real, fake, rng)
            loss_d = critic_loss(d_real, d_fake, gp, tc.gp_lambda)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        set_trainable(D, False)
        z = torch.randn(real.shape[0], model.cfg.latent_dim, generator=rng).to(dev)
        with ac():
            loss_g = generator_loss(g_step(z))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        set_trainable(D, True)
        w = (d_real.float().mean() - d_fake.float().mean()).item()
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "wasserstein": w, "gp": gp.item()}

    runner.run(
        "gan",
        tc.gan_steps,
        {"generator": G, "critic": D},
        {"g": opt_g, "d": opt_d},
        gan_step,
        f"{spec.name} WGAN-GP",
    )
    d_step = g_step = None
    collect_wrappers()

    # 2. encoder (G, D frozen) and 3. fine-tuning (E and G) ------------------------------------------------
    set_trainable(D, False)
    D.eval()
    for phase, steps, train_g in (
        ("encoder", tc.encoder_steps, False),
        ("finetune", tc.finetune_steps, True),
    ):
        if steps > 0:
            _encoder_phase(model, phase, steps, train_g, batches, spec, runner)
    set_trainable(model, True)
    model.eval()


def _encoder_phase(
    model: FAnoGAN,
    phase: str,
    steps: int,
    train_g: bool,
    batches: Batches,
    spec: MethodSpec,
    runner: PhaseRunner,
) -> None:
    """Phase 2 (E on L_E, G and D frozen) or 3 (E and G on L_E) of seed 001."""
    tc, info = spec.train, runner.info
    G, D, E = model.generator, model.critic, model.encoder
    set_trainable(G, train_g)
    G.eval()  # BatchNorm statistics of G frozen from here on (its weights train in phase 3)
    E.train()
    params = list(E.parameters()) + (list(G.parameters()) if train_g else [])
    opt = torch.optim.Adam(params, lr=tc.lr_encoder)
    e_step = ddp.wrap(_EncoderStep(E, G, D, tc.kappa, train_g), info)

    def enc_step(step: int) -> dict[str, float]:
        xb = batches.next()
        with autocast(info.device, spec.amp):
            l_img, l_feat, l_e = e_step(xb)
        loss = l_e.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss_e": loss.item(), "l_img": l_img.mean().item(), "l_feat": l_feat.mean().item()}

    runner.run(phase, steps, {"encoder": E, "generator": G}, {"e": opt}, enc_step, f"{spec.name} {phase}")
    e_step = None
    collect_wrappers()

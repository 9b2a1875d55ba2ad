"""Training of the coarse-noise denoising U-Net (Kascenas et al. 2022, 2023) through
:class:`ctad_core.train.PhaseRunner` (checkpoints, exact resume, the dry-run probe).

Each step draws its batch and its noise from a generator seeded by (seed, rank, step), so a run resumed
from a checkpoint sees the batches and the noise the uninterrupted run would have seen; together with the
model, optimiser and global random state that PhaseRunner restores, the resumed run is the same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ctad_core import distributed as ddp
from ctad_core.methods.dae.model import DenoisingStep, UNet
from ctad_core.train import PhaseRunner, autocast, collect_wrappers

if TYPE_CHECKING:
    from ctad_core.methods.spec import MethodSpec


@dataclass
class DAETrain:
    """Training of the denoising U-Net: L2 loss, Adam (AMSGrad, weight decay), constant learning rate.

    Kascenas et al.'s code: batch 16, lr 1e-4, AMSGrad, weight decay 1e-5, 2100 epochs of 32 batches
    (67 200 steps) with a cosine schedule restarting every 100 epochs (not used here: constant lr).
    """

    batch_size: int = 16
    steps: int = 1000
    lr: float = 1e-4
    weight_decay: float = 1e-5


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """The CPU generator of one training step (batch indices and noise): a function of (seed, rank, step)."""
    return torch.Generator().manual_seed(
        ((int(seed) * 1_000_003 + int(rank)) * 10_000_019 + int(step)) % (2**63)
    )


def train_dae(model: UNet, x: np.ndarray, spec: MethodSpec, runner: PhaseRunner, seed: int = 0) -> None:
    """Train the U-Net to remove coarse noise from (N, *spatial) healthy inputs in [-1, 1].

    Args:
        model: the U-Net (:class:`~ctad_core.methods.dae.model.UNet`).
        x: (N, *spatial) training inputs (volumes or slices) in the model range.
        spec: the method (``spec.model``: ``noise_cell``, ``noise_std``; ``spec.train``: :class:`DAETrain`).
        runner: the phase runner (phase ``"denoise"``).
        seed: the run's seed.
    """
    tc, info = spec.train, runner.info
    dev = info.device
    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)
    bs = max(1, min(int(tc.batch_size), len(data)))
    model.to(dev).train()
    step_model = ddp.wrap(model, info)
    loss_fn = DenoisingStep(step_model, spec.model.noise_cell, spec.model.noise_std)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, amsgrad=True)

    def step_fn(step: int) -> dict[str, float]:
        g = step_generator(seed, info.rank, step)
        idx = torch.randperm(len(data), generator=g)[:bs]
        xb = data[idx].to(dev, non_blocking=True)
        with autocast(dev, spec.amp):
            loss = loss_fn(xb, generator=g)
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        opt.step()
        return {"mse": loss.item()}

    runner.run("denoise", tc.steps, {"model": model}, {"opt": opt}, step_fn, spec.name)
    step_model = loss_fn = None
    collect_wrappers()
    model.eval()

"""Training of seed 004 (Luo et al. 2023, residual AE): L2 reconstruction loss, Adam with weight decay on the
kernels only. Runs through :class:`ctad_core.train.PhaseRunner`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ctad_core import distributed as ddp
from ctad_core.methods.resae.model import ResAE, weight_decay_groups
from ctad_core.train import Batches, PhaseRunner, autocast, collect_wrappers, tensor_dataset

if TYPE_CHECKING:
    from ctad_core.methods.spec import MethodSpec


@dataclass
class ResAETrain:
    """Training of seed 004: L2 loss, Adam, L2 weight decay on kernels."""

    batch_size: int = 8
    steps: int = 1000
    lr: float = 1e-4
    weight_decay: float = 1e-5


def train_resae(model: ResAE, x: np.ndarray, spec: MethodSpec, runner: PhaseRunner, seed: int = 0) -> None:
    """Seed 004: L2 reconstruction loss, Adam with weight decay on kernels only."""
    tc, info = spec.train, runner.info
    dev = info.device
    model.to(dev).train()
    batches = Batches(ddp.make_loader(tensor_dataset(x), tc.batch_size, info, seed), dev)
    opt = torch.optim.Adam(weight_decay_groups(model, tc.weight_decay), lr=tc.lr)
    step_model = ddp.wrap(model, info)

    def step_fn(step: int) -> dict[str, float]:
        xb = batches.next()
        with autocast(dev, spec.amp):
            x_hat = step_model(xb)
        loss = (x_hat.float() - xb).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"mse": loss.item()}

    runner.run("ae", tc.steps, {"model": model}, {"opt": opt}, step_fn, spec.name)
    step_model = None
    collect_wrappers()
    model.eval()

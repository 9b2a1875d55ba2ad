"""Reconstruction of healthy anatomy with a frozen generator: latent restoration (seed 000, Eq. 4) and
encoder inference.

Latent restoration solves, for every image x of a batch at once,

    min_{-1 <= z_i <= 1}  w1 · l_percept(x, G(z)) + w2 · l_MSE(x, G(z))

with Adam on z from z = 0, clipping z to [-1, 1] after every step, for a fixed number of steps
(seed: 8000). The per-image losses are *summed* over the batch: image b's latent then receives exactly
the gradient it would receive alone, and Adam's per-coordinate update makes batched restoration equal
to restoring each image by itself (up to floating-point summation order).

That equality needs a batch-independent generator: G and the perceptual network run in eval mode
(BatchNorm uses running statistics) and G's noise injection is switched off (``noise_mode="zero"``,
the noise's expectation) — or ``"fixed"``, one seeded map shared by all items. Spectral-norm weights
are computed once per call (``parametrize.cached``) since G is frozen.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ctad_core.frontend import tqdm
from ctad_core.methods.fastgan.model import NoiseInjection
from ctad_core.parallel import tick
from ctad_core.probe import LoopProbe

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class RestorationResult:
    """Outcome of :func:`restore`.

    Attributes:
        z: (B, nz) restored latents (CPU, float32), in [-1, 1].
        recon: (B, 1, H, W) ``G(z)`` (CPU, float32).
        losses: (T, B) per-image loss before each of the T steps run, then the final loss (T = steps + 1).
        steps: number of optimiser steps run (less than asked after an early stop).
        seconds: wall-clock seconds of the whole call (CUDA synchronised).
    """

    z: torch.Tensor
    recon: torch.Tensor
    losses: np.ndarray
    steps: int
    seconds: float


class _InferenceMode:
    """Put a generator (and a feature network) into eval / frozen / noise-free mode, restoring afterwards."""

    def __init__(self, modules: list[nn.Module], noise_mode: str) -> None:
        self.modules = [m for m in modules if isinstance(m, nn.Module)]
        self.noise_mode = noise_mode

    def __enter__(self) -> None:
        self.saved = []
        for m in self.modules:
            grads = [p.requires_grad for p in m.parameters()]
            noise = [(n, n.mode) for n in m.modules() if isinstance(n, NoiseInjection)]
            self.saved.append((m.training, grads, noise))
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)
            for n, _ in noise:
                n.mode = self.noise_mode

    def __exit__(self, *exc: object) -> None:
        for m, (training, grads, noise) in zip(self.modules, self.saved):
            m.train(training)
            for p, g in zip(m.parameters(), grads):
                p.requires_grad_(g)
            for n, mode in noise:
                n.mode = mode


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def restore(
    generator: nn.Module,
    x: torch.Tensor,
    loss_fn: LossFn,
    steps: int = 8000,
    lr: float = 0.01,
    z0: torch.Tensor | None = None,
    clip: float = 1.0,
    early_stop_patience: int = 0,
    early_stop_tol: float = 1e-4,
    amp: bool = False,
    channels_last: bool = False,
    noise_mode: str = "zero",
    progress: bool = False,
    nominal_batch_size: int | None = None,
) -> RestorationResult:
    """Latent restoration of a batch of images (seed 000, Sec. 2.2.3).

    Args:
        generator: trained G mapping (B, nz) to (B, 1, H, W); set to eval, frozen and noise-free here.
        x: (B, 1, H, W) images in model range, on G's device.
        loss_fn: per-image loss ``(x, x_hat) -> (B,)``, e.g. :class:`ctad_core.methods.fastgan.losses.ReconstructionLoss`.
        steps: Adam steps (seed: 8000).
        lr: Adam learning rate (the seed does not say; 0.01 by default).
        z0: (B, nz) starting latents; default zeros (the seed's choice).
        clip: z is clamped to [-clip, clip] after every step (seed: 1, the latent box of U[-1, 1]).
        early_stop_patience: stop when the batch's summed loss has not improved by a relative
            ``early_stop_tol`` for this many steps (0: never, the seed's fixed step count). The stop
            is per batch, so with it batched and single restorations may run different step counts.
        early_stop_tol: relative improvement counted as progress.
        amp: run G and the loss under bf16 autocast (CUDA or CPU); z and Adam stay float32.
        channels_last: convert G (in place; it stays so) and x to channels-last memory format (faster
            convolutions on GPU).
        noise_mode: G's noise injection during restoration: ``"zero"`` (default) or ``"fixed"``.
        progress: show a tqdm bar.
        nominal_batch_size: the batch size this batch is part of (:func:`restore_many`); the dry run's
            memory estimate scales this batch's activations to it (:mod:`ctad_core.probe`).

    Returns:
        A :class:`RestorationResult`.
    """
    if x.ndim != 4:
        raise ValueError(f"restore expects x of shape (B, 1, H, W), got {tuple(x.shape)}")
    device = x.device
    nz = generator.cfg.nz if hasattr(generator, "cfg") else int(z0.shape[1])  # type: ignore[union-attr]
    b = x.shape[0]
    z = (torch.zeros(b, nz, device=device) if z0 is None else z0.detach().to(device).float().clone()).clamp_(
        -clip, clip
    )
    z.requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    feats = getattr(loss_fn, "features", None)
    if channels_last:
        generator.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if amp else nullcontext()
    history: list[np.ndarray] = []
    best, since = float("inf"), 0
    run = 0
    _sync(device)
    t0 = time.perf_counter()
    with _InferenceMode([generator, feats], noise_mode), parametrize.cached():
        probe = LoopProbe("restoration", steps, 0, {"G": generator}, b, device, scales_with_data=True,
                          nominal_batch_size=nominal_batch_size)
        bar = tqdm(range(probe.stop), desc="restoration", disable=not progress, leave=False)
        with autocast:  # against the fixed x: its features once (ReconstructionLoss.bind), the same numbers
            bound = loss_fn.bind(x) if hasattr(loss_fn, "bind") else functools.partial(loss_fn, x)
        for _ in bar:
            with probe.step():
                opt.zero_grad(set_to_none=True)
                with autocast:
                    per_item = bound(generator(z)).float()
                total = per_item.sum()
                total.backward()
                opt.step()
            with torch.no_grad():
                z.clamp_(-clip, clip)
            history.append(per_item.detach().cpu().numpy())
            run += 1
            if early_stop_patience > 0:
                tv = float(total.detach())
                if tv < best * (1.0 - early_stop_tol):
                    best, since = tv, 0
                else:
                    since += 1
                    if since >= early_stop_patience:
                        break
        probe.close()
        with torch.no_grad(), autocast:
            recon = generator(z)
            history.append(bound(recon).float().cpu().numpy())
    _sync(device)
    seconds = time.perf_counter() - t0
    losses = np.stack(history).astype(np.float32) if history else np.zeros((0, b), np.float32)
    return RestorationResult(
        z=z.detach().float().cpu(),
        recon=recon.float().cpu().contiguous(),
        losses=losses,
        steps=run,
        seconds=seconds,
    )


def restore_many(
    generator: nn.Module,
    images: torch.Tensor,
    loss_fn: LossFn,
    batch_size: int = 64,
    progress: bool = True,
    z0: torch.Tensor | None = None,
    **kwargs,
) -> RestorationResult:
    """:func:`restore` over a large set in batches of ``batch_size``; results concatenated.

    Args:
        generator: see :func:`restore`.
        images: (N, 1, H, W) on any device (batches are moved to G's device).
        loss_fn: see :func:`restore`.
        batch_size: images restored together.
        progress: a bar over batches.
        z0: (N, nz) starting latents (e.g. the encoder's), split along with the images; None: zeros.
        **kwargs: passed to :func:`restore`.

    Returns:
        One :class:`RestorationResult`; ``losses`` is (T, N) with T the longest batch's, shorter
        batches padded with their last value; ``steps`` the largest step count.
    """
    device = next(generator.parameters()).device
    if z0 is not None and (z0.ndim != 2 or z0.shape[0] != images.shape[0]):
        raise ValueError(f"z0 must be (N, nz) with N = {images.shape[0]} rows, got shape {tuple(z0.shape)}")
    parts: list[RestorationResult] = []
    for i in tqdm(range(0, images.shape[0], batch_size), desc="restoring", disable=not progress):
        zi = None if z0 is None else z0[i : i + batch_size]
        parts.append(restore(generator, images[i : i + batch_size].to(device), loss_fn, z0=zi,
                             nominal_batch_size=batch_size, **kwargs))
        tick()  # a batch done, for the bar of ctad_core.parallel.run_jobs when this runs in a worker
    t = max(p.losses.shape[0] for p in parts)
    losses = np.concatenate(
        [np.concatenate([p.losses, np.repeat(p.losses[-1:], t - p.losses.shape[0], 0)]) for p in parts],
        axis=1,
    )
    return RestorationResult(
        z=torch.cat([p.z for p in parts]),
        recon=torch.cat([p.recon for p in parts]),
        losses=losses,
        steps=max(p.steps for p in parts),
        seconds=sum(p.seconds for p in parts),
    )


@torch.no_grad()
def encode_reconstruct(
    encoder: nn.Module,
    generator: nn.Module,
    images: torch.Tensor,
    batch_size: int = 64,
    noise_mode: str = "zero",
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Reconstruct ``G(E(x))`` in eval mode (seed 000, Sec. 2.2.2).

    Args:
        encoder: trained encoder (B, 1, H, W) → (B, nz).
        generator: the frozen G it was trained with.
        images: (N, 1, H, W).
        batch_size: images per forward pass.
        noise_mode: G's noise injection (``"zero"`` as in restoration).

    Returns:
        ``(z, recon, seconds)``: (N, nz) and (N, 1, H, W) on the CPU, and the wall-clock seconds.
    """
    device = next(generator.parameters()).device
    zs, recs = [], []
    with _InferenceMode([generator, encoder], noise_mode), parametrize.cached():
        _sync(device)
        t0 = time.perf_counter()
        for i in range(0, images.shape[0], batch_size):
            xb = images[i : i + batch_size].to(device)
            z = encoder(xb)
            zs.append(z.float().cpu())
            recs.append(generator(z).float().cpu())
        _sync(device)
        seconds = time.perf_counter() - t0
    return torch.cat(zs), torch.cat(recs), seconds

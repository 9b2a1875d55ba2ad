"""Seconds per FastGAN training step and parameter counts of G and D (seed 000's GAN).

A step is what :func:`ctad_core.gan2d.train_fastgan` does per iteration: G makes a batch (image + small
image), both real and fake go through the differentiable augmentation, D is updated on the hinge loss plus
its decoders' reconstruction loss, G is updated on the hinge loss through D, and the EMA copy of G moves.
The networks are randomly initialised and the "real" images are uniform noise: speed does not depend on
training or content. The first step is a warm-up and is not timed.

Parameter counts are printed for every supported size (building the networks only); steps are timed for
``--sizes``.

    .venv/bin/python benchmarks/bench_fastgan.py                              # 64, 128, 256 on the CPU
    .venv/bin/python benchmarks/bench_fastgan.py --sizes 256 --batch 8 --ngf 64 --ndf 64 --steps 3
    .venv/bin/python benchmarks/bench_fastgan.py --sizes 512 --batch 8 --steps 20 --device cuda
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from ctad_core.augment import diff_augment
from ctad_core.losses import d_reconstruction_loss, hinge_d_loss, hinge_g_loss, sample_z
from ctad_core.models.fastgan import (
    SIZES,
    Discriminator,
    FastGANConfig,
    Generator,
    count_parameters,
    reconstruction_targets,
)
from ctad_core.train import EMA, Stopwatch
from ctad_core.utils import describe_device, resolve_device, seed_everything


def training_step(
    G, D, ema, opt_g, opt_d, cfg: FastGANConfig, real: torch.Tensor, gen: torch.Generator
) -> None:
    """One step of the training loop of ``gan2d.train_fastgan`` (same calls, same order)."""
    real_small = F.interpolate(real, size=D.small, mode="area")
    z = sample_z(real.shape[0], cfg.nz, gen, real.device)
    fake, fake_small = G(z, with_small=True)
    real_a, real_small_a = diff_augment([real, real_small], cfg.augment, cfg.translation, generator=gen)
    fake_a, fake_small_a = diff_augment([fake, fake_small], cfg.augment, cfg.translation, generator=gen)
    part = int(torch.randint(0, 4, (1,), generator=gen))
    logits_real, recs = D(real_a, real_small_a, part=part)
    targets = reconstruction_targets(real_a, real_small_a, part, D.small)
    logits_fake = D(fake_a.detach(), fake_small_a.detach())
    loss_d = hinge_d_loss(logits_real, logits_fake) + cfg.rec_weight * d_reconstruction_loss(recs, targets)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    loss_g = hinge_g_loss(D(fake_a, fake_small_a))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    ema.update(G)


def time_size(size: int, a: argparse.Namespace, dev: torch.device) -> tuple[float, float, float]:
    """(wall seconds per training step, process CPU seconds per step, wall seconds per D forward) at ``size``.

    On a machine shared with other jobs the CPU seconds vary less than the wall-clock ones.
    """
    cfg = FastGANConfig(image_size=size, nz=a.nz, ngf=a.ngf, ndf=a.ndf, batch_size=a.batch)
    G, D = Generator(cfg).to(dev).train(), Discriminator(cfg).to(dev).train()
    ema = EMA(G, cfg.ema_decay)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=cfg.betas)
    gen = torch.Generator().manual_seed(0)
    real = (torch.rand(a.batch, 1, size, size, generator=gen) * 2 - 1).to(dev)
    training_step(G, D, ema, opt_g, opt_d, cfg, real, gen)  # warm-up
    cpu0 = time.process_time()
    with Stopwatch(dev) as sw:
        for _ in range(a.steps):
            training_step(G, D, ema, opt_g, opt_d, cfg, real, gen)
    cpu = time.process_time() - cpu0
    with torch.no_grad(), Stopwatch(dev) as fw:
        for _ in range(a.steps):
            D(real)
    return sw.seconds / a.steps, cpu / a.steps, fw.seconds / a.steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="64,128,256", help="comma-separated image sizes to time")
    ap.add_argument("--batch", type=int, default=8, help="images per step (seed: 8)")
    ap.add_argument("--ngf", type=int, default=64, help="generator width (FastGAN: 64)")
    ap.add_argument("--ndf", type=int, default=64, help="discriminator width (FastGAN: 64)")
    ap.add_argument("--nz", type=int, default=512, help="latent size (seed: 512)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per size (after one warm-up step)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    bad = [s for s in sizes if s not in SIZES]
    if bad:
        ap.error(f"--sizes {bad}: supported sizes are {SIZES}")

    if a.threads:
        torch.set_num_threads(a.threads)
    seed_everything(0)
    dev = resolve_device(a.device)
    print(f"device {describe_device(dev)}, torch threads {torch.get_num_threads()}")
    print(f"ngf {a.ngf}, ndf {a.ndf}, nz {a.nz}, batch {a.batch}, {a.steps} timed steps after 1 warm-up")
    print(f"{'size':>5} {'G params':>12} {'D params':>12} {'s/step':>9} {'cpu s/step':>10} {'D fwd s':>9}")
    for size in SIZES:
        cfg = FastGANConfig(image_size=size, nz=a.nz, ngf=a.ngf, ndf=a.ndf)
        n_g, n_d = count_parameters(Generator(cfg)), count_parameters(Discriminator(cfg))
        step, cpu, fwd = time_size(size, a, dev) if size in sizes else (float("nan"),) * 3
        print(f"{size:>5} {n_g:>12,} {n_d:>12,} {step:>9.3f} {cpu:>10.3f} {fwd:>9.3f}", flush=True)
    print(f"finished {time.strftime('%Y-%m-%d %H:%M:%S')}")


if __name__ == "__main__":
    main()

"""Seconds per FastGAN training step and parameter counts of G and D (seed 000's GAN).

A step is one iteration of :func:`ctad_core.methods.fastgan.train.train_fastgan` itself — G makes a batch (image + small
image), real and fake go through the differentiable augmentation, D is updated on the hinge loss plus its
decoders' reconstruction loss, G is updated on the hinge loss through D — timed by the loop's own
:class:`ctad_core.probe.LoopProbe` (median over the steps after the first, which carries one-off costs).
The networks are randomly initialised and the "real" slices are uniform noise: speed does not depend on
training or content. ``D fwd s`` is one forward pass of D on a batch, without gradients.

Parameter counts are printed for every supported size (building the networks only); steps are timed for
``--sizes``. ``train_fastgan`` ends with a checkpoint (G, D, EMA and both Adam states), written to a
temporary folder and deleted. On a machine shared with other jobs, ``--threads 1`` gives steadier figures.

    .venv/bin/python benchmarks/bench_fastgan.py                              # 64, 128, 256 on the CPU
    .venv/bin/python benchmarks/bench_fastgan.py --sizes 256 --batch 8 --ngf 64 --ndf 64 --steps 3
    .venv/bin/python benchmarks/bench_fastgan.py --sizes 512 --batch 8 --steps 20 --device cuda
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ctad_core.methods.fastgan.model import SIZES, Discriminator, FastGANConfig, Generator, count_parameters
from ctad_core.methods.fastgan.train import train_fastgan
from ctad_core.probe import DRY_STEPS_ENV, PROBE_DIR_ENV
from ctad_core.train import Stopwatch
from ctad_core.utils import describe_device, read_json, resolve_device, seed_everything


@contextlib.contextmanager
def probing(folder: Path) -> Iterator[None]:
    """Let the training loop's probe record into ``folder`` (and run every step: no dry-run cap)."""
    saved = {k: os.environ.pop(k, None) for k in (PROBE_DIR_ENV, DRY_STEPS_ENV)}
    os.environ[PROBE_DIR_ENV] = str(folder)
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v


def time_size(size: int, a: argparse.Namespace, dev: torch.device) -> tuple[float, float, float]:
    """(seconds per training step, the first step's seconds, seconds per D forward of one batch) at ``size``."""
    never = 10**9  # no samples, checkpoints or history rows inside the timed loop
    cfg = FastGANConfig(
        image_size=size, nz=a.nz, ngf=a.ngf, ndf=a.ndf, batch_size=a.batch, steps=a.steps + 1,
        sample_every=never, ckpt_every=never, log_every=never, n_samples=1,
    )  # fmt: skip
    slices = np.random.default_rng(0).uniform(-1, 1, (a.batch, size, size)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="bench_fastgan_") as tmp, probing(Path(tmp) / "probe"):
        train_fastgan(slices, cfg, Path(tmp) / "member", device=dev, seed=0, resume=False, progress=False)
        rec = read_json(Path(tmp) / "probe" / "fastgan_member.json")
    D = Discriminator(cfg).to(dev).train()
    real = torch.as_tensor(slices[:, None]).to(dev)
    with torch.no_grad():
        D(real)  # warm-up
        with Stopwatch(dev) as fw:
            for _ in range(a.steps):
                D(real)
    return float(rec["seconds_per_step"]), float(rec["first_step_seconds"]), fw.seconds / a.steps


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
    if a.steps < 1:
        ap.error("--steps must be at least 1")

    if a.threads:
        torch.set_num_threads(a.threads)
    seed_everything(0)
    dev = resolve_device(a.device)
    print(f"device {describe_device(dev)}, torch threads {torch.get_num_threads()}")
    print(f"ngf {a.ngf}, ndf {a.ndf}, nz {a.nz}, batch {a.batch}, median of {a.steps} steps after 1 warm-up")
    print(f"{'size':>5} {'G params':>12} {'D params':>12} {'s/step':>9} {'1st step':>9} {'D fwd s':>9}")
    for size in SIZES:
        cfg = FastGANConfig(image_size=size, nz=a.nz, ngf=a.ngf, ndf=a.ndf)
        n_g, n_d = count_parameters(Generator(cfg)), count_parameters(Discriminator(cfg))
        step, first, fwd = time_size(size, a, dev) if size in sizes else (float("nan"),) * 3
        print(f"{size:>5} {n_g:>12,} {n_d:>12,} {step:>9.3f} {first:>9.3f} {fwd:>9.3f}", flush=True)
    print(f"finished {time.strftime('%Y-%m-%d %H:%M:%S')}")


if __name__ == "__main__":
    main()

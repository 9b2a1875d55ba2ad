"""Wall-clock of a FastGAN ensemble trained one member after another with every thread, and side by side in
processes (:mod:`ctad_core.parallel`), at the quick profile's sizes.

:func:`ctad_core.methods.fastgan.train.train_fastgan_ensemble` runs twice on the same uniform-noise "slices"
(speed does not depend on content): ``workers=1`` with ``torch.set_num_threads(cores)`` (one member after
another, as before ctad_core.parallel), then ``workers=None`` (the plan: on 2 cores three 1-thread processes).
Also printed: one member alone with 1 thread and with every thread (how much PyTorch's intra-op threads give
these small convolutions). Run it alone on the machine: anything else running distorts every figure. A short
run (``--steps 60``) counts starting the processes more than the chain does. A benchmark prints figures; it
does not pass or fail.

Measured 2026-12-02 (2 cores, torch 2.13.0+cpu, ``--steps 60``, alone): one member 0.260 s/step with 1 thread,
0.166 with 2; three members 0.186 s per member-step one after another (2 threads), 0.154 side by side (3 × 1
thread), 1.21×.

    .venv/bin/python benchmarks/bench_parallel.py                      # quick: 64², batch 8, ngf = ndf = 8
    .venv/bin/python benchmarks/bench_parallel.py --members 3 --steps 200
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ctad_core.methods.fastgan.model import FastGANConfig
from ctad_core.methods.fastgan.train import train_fastgan, train_fastgan_ensemble
from ctad_core.parallel import available_cores, plan_workers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--ngf", type=int, default=8)
    ap.add_argument("--ndf", type=int, default=8)
    a = ap.parse_args()
    never = 10**9
    cfg = FastGANConfig(
        image_size=a.size, ngf=a.ngf, ndf=a.ndf, batch_size=a.batch, steps=a.steps,
        sample_every=never, ckpt_every=never, log_every=never, n_samples=1,
    )  # fmt: skip
    x = np.random.default_rng(0).uniform(-1, 1, (256, a.size, a.size)).astype(np.float32)
    cores = available_cores()
    workers, threads = plan_workers(a.members, "cpu")
    print(f"{platform.processor() or platform.machine()}, {cores} cores, torch {torch.__version__}; "
          f"FastGAN {a.size}², batch {a.batch}, ngf {a.ngf}, ndf {a.ndf}, {a.steps} steps per member")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for t in (1, cores):
            torch.set_num_threads(t)
            t0 = time.perf_counter()
            train_fastgan(x, cfg, Path(tmp) / f"one_{t}", "cpu", 0, resume=False, progress=False)
            s = time.perf_counter() - t0
            rows.append((f"one member, {t} thread(s)", s, s / a.steps))
        torch.set_num_threads(cores)
        t0 = time.perf_counter()
        train_fastgan_ensemble(x, cfg, Path(tmp) / "seq", a.members, "cpu", 0, False, False, workers=1)
        seq = time.perf_counter() - t0
        rows.append((f"{a.members} members one after another, {cores} threads", seq, seq / a.steps / a.members))
        t0 = time.perf_counter()
        train_fastgan_ensemble(x, cfg, Path(tmp) / "par", a.members, "cpu", 0, False, False, workers=None)
        par = time.perf_counter() - t0
        rows.append((f"{a.members} members side by side ({workers} processes × {threads} thread)", par,
                     par / a.steps / a.members))
    print(f"{'':<58} {'wall s':>8} {'s per member-step':>18}")
    for name, s, per in rows:
        print(f"{name:<58} {s:8.1f} {per:18.3f}")
    print(f"speed-up side by side: {seq / par:.2f}x (includes starting {workers} processes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Seconds per image: encoder inference vs latent restoration, one image at a time vs batched.

Uses randomly initialised networks (speed does not depend on training) at the chosen size and width.

    .venv/bin/python benchmarks/bench_restoration.py                       # small CPU default
    .venv/bin/python benchmarks/bench_restoration.py --size 512 --ngf 64 --ndf 64 --steps 200 \
        --n-images 16 --batch 16 --device cuda --amp --channels-last      # the seed's G on a GPU
"""

from __future__ import annotations

import argparse

import torch

from ctad_core.methods.fastgan.losses import ReconstructionLoss, make_feature_extractor
from ctad_core.methods.fastgan.model import Discriminator, Encoder, EncoderConfig, FastGANConfig, Generator
from ctad_core.methods.fastgan.restore import encode_reconstruct, restore
from ctad_core.utils import describe_device, resolve_device, seed_everything


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--ngf", type=int, default=8)
    ap.add_argument("--ndf", type=int, default=8)
    ap.add_argument("--enc-width", type=int, default=8)
    ap.add_argument("--nz", type=int, default=512)
    ap.add_argument("--steps", type=int, default=50, help="restoration steps (seed: 8000)")
    ap.add_argument("--n-images", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8, help="images restored together in the batched run")
    ap.add_argument("--feature-space", default="discriminator", choices=["discriminator", "none"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast")
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()

    if a.threads:
        torch.set_num_threads(a.threads)
    seed_everything(0)
    dev = resolve_device(a.device)
    cfg = FastGANConfig(image_size=a.size, nz=a.nz, ngf=a.ngf, ndf=a.ndf)
    G = Generator(cfg).to(dev).eval()
    D = Discriminator(cfg).to(dev).eval()
    E = Encoder(EncoderConfig(image_size=a.size, nz=a.nz, width=a.enc_width)).to(dev).eval()
    loss = ReconstructionLoss(make_feature_extractor(a.feature_space, D), 1.0, 10.0)
    with torch.no_grad():
        x = G(torch.rand(a.n_images, a.nz, device=dev) * 2 - 1).clone()
    kw = dict(steps=a.steps, lr=0.01, amp=a.amp, channels_last=a.channels_last)

    restore(G, x[:1], loss, steps=2)  # warm-up (allocator, kernels)
    encode_reconstruct(E, G, x[:1])
    _, _, t_enc = encode_reconstruct(E, G, x, batch_size=a.batch)
    t_single = sum(restore(G, x[i : i + 1], loss, **kw).seconds for i in range(a.n_images))
    t_batch = sum(restore(G, x[i : i + a.batch], loss, **kw).seconds for i in range(0, a.n_images, a.batch))

    n = a.n_images
    print(f"device          {describe_device(dev)}")
    print(
        f"image size      {a.size}x{a.size}, nz {a.nz}, ngf {a.ngf}, ndf {a.ndf}, feature space {a.feature_space}"
    )
    print(
        f"restoration     {a.steps} steps, {n} images, batch {a.batch}, amp {a.amp}, channels_last {a.channels_last}"
    )
    print(f"encoder         {t_enc / n:.5f} s/image")
    print(f"restore 1-by-1  {t_single / n:.4f} s/image  ({t_single / n / a.steps * 1e3:.2f} ms/image/step)")
    print(f"restore batched {t_batch / n:.4f} s/image  ({t_batch / n / a.steps * 1e3:.2f} ms/image/step)")
    print(
        f"batched speed-up {t_single / t_batch:.1f}x; at the seed's 8000 steps: "
        f"{t_batch / n / a.steps * 8000:.1f} s/image batched, {t_single / n / a.steps * 8000:.1f} s/image alone"
    )


if __name__ == "__main__":
    main()

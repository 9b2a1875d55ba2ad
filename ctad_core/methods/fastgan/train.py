"""Training of the 2D method of seed 000: the FastGAN ensemble (step 1) and its encoders (step 2).

Layout written under an output folder (``run_dir/gan`` or ``run_dir/encoder``)::

    ensemble.json            the ensemble: config, n_members, seed, device, timing (:meth:`ctad_core.run.Run.ensemble`)
    member_0/checkpoint.pt   everything to resume: models, EMA, optimisers, RNG states, step, history
    member_0/history.json    the loss history (also inside the checkpoint)
    member_0/samples.npz     fixed-z samples of the EMA generator along training (GAN only)
    member_1/ …              one folder per ensemble member (seed + 1000·k)

Checkpoints are written atomically with :func:`ctad_core.train.save_checkpoint` and loaded with
``weights_only=True``; ``resume=True`` continues an interrupted run from its last checkpoint and
yields the same result as an uninterrupted one (CPU, same seed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ctad_core.data.windows import to_model
from ctad_core.frontend import tqdm
from ctad_core.methods.fastgan.losses import (
    ReconstructionLoss,
    d_reconstruction_loss,
    hinge_d_loss,
    hinge_g_loss,
    make_feature_extractor,
    sample_z,
)
from ctad_core.methods.fastgan.model import (
    Discriminator,
    Encoder,
    EncoderConfig,
    FastGANConfig,
    Generator,
    reconstruction_targets,
)
from ctad_core.nn.augment import diff_augment, random_erase
from ctad_core.parallel import plan_workers, run_jobs, tick
from ctad_core.probe import LoopProbe
from ctad_core.run import Run, member_dirs
from ctad_core.train import EMA, Stopwatch, load_checkpoint, restore_training, save_checkpoint
from ctad_core.utils import describe_device, resolve_device, save_npz, seed_everything, write_json

CKPT = "checkpoint.pt"


# ---------------------------------------------------------------------------------------------------- data
def prepare_slices(images: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """Model-range slices (N, H, W) → float32 tensor (N, 1, size, size) (area / bilinear resampling).

    Args:
        images: (N, H, W) in [-1, 1] (from :func:`ctad_core.data.windows.to_model`).
        size: the model's image size.

    Returns:
        (N, 1, size, size) CPU tensor, clamped to [-1, 1].
    """
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim != 3:
        raise ValueError(f"expected slices (N, H, W), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("slices contain NaN or inf")
    x = x[:, None]
    if x.shape[-2:] != (size, size):
        down = x.shape[-1] > size
        x = F.interpolate(
            x, size=(size, size), mode="area" if down else "bilinear", align_corners=None if down else False
        )
    return x.clamp(-1, 1).contiguous()


def member_seed(seed: int, k: int) -> int:
    """Seed of ensemble member k (members differ only by seed, as in the seed paper)."""
    return int(seed) + 1000 * int(k)


# ------------------------------------------------------------------------------------------------ FastGAN
@dataclass
class TrainResult:
    """What a training call did: its folder, the history, the steps run now and the seconds they took."""

    out_dir: Path
    history: dict[str, list[float]]
    steps_run: int
    seconds: float


def _batch(data: torch.Tensor, n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    idx = torch.randint(0, data.shape[0], (n,), generator=gen)
    return data[idx].to(device, non_blocking=True)


def train_fastgan(
    slices_model_range: np.ndarray | torch.Tensor,
    cfg: FastGANConfig | dict[str, Any],
    out_dir: str | os.PathLike,
    device: str | torch.device = "auto",
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Train one FastGAN (seed 000, step 1) on healthy slices.

    Alternates a discriminator step (hinge loss on real and generated images, both through the same
    differentiable augmentation, plus the decoders' reconstruction loss on real images) and a
    generator step (``-E[D(G(z))]``), with ``z ~ U[-1, 1]^nz``, Adam, and an EMA copy of G.

    Args:
        slices_model_range: (N, H, W) healthy training slices in [-1, 1] (resized to ``cfg.image_size``).
        cfg: :class:`FastGANConfig` or a dict of its fields.
        out_dir: this member's folder (checkpoint, history, samples).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, …
        seed: seeds weights, batches, z, augmentation and noise.
        resume: continue from ``out_dir/checkpoint.pt`` when it exists.
        progress: tqdm bar.

    Returns:
        :class:`TrainResult`.
    """
    cfg = cfg if isinstance(cfg, FastGANConfig) else FastGANConfig.from_dict(cfg)
    dev = resolve_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    data = prepare_slices(slices_model_range, cfg.image_size)
    G, D = Generator(cfg).to(dev), Discriminator(cfg).to(dev)
    ema = EMA(G, cfg.ema_decay)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=cfg.betas)
    gen = torch.Generator().manual_seed(seed)
    fixed_z = sample_z(cfg.n_samples, cfg.nz, torch.Generator().manual_seed(seed + 12345), dev)
    history: dict[str, list[float]] = {
        k: [] for k in ("step", "loss_d", "loss_g", "loss_rec", "d_real", "d_fake")
    }
    samples: list[np.ndarray] = []
    sample_steps: list[int] = []
    step = 0
    ckpt_path = out / CKPT
    parts = {"G": G, "D": D, "G_ema": ema, "opt_g": opt_g, "opt_d": opt_d}
    ck = restore_training(ckpt_path, parts, gen, dev) if resume else None
    if ck is not None:
        history = {k: list(v) for k, v in ck["history"].items()}
        step = int(ck["step"])
        if (out / "samples.npz").is_file():
            with np.load(out / "samples.npz") as z:
                samples = list(z["images"])
                sample_steps = [int(s) for s in z["steps"]]
    small = D.small

    def save() -> None:
        save_checkpoint(
            ckpt_path,
            {
                "G": G.state_dict(),
                "D": D.state_dict(),
                "G_ema": ema.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "gen_state": gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "history": history,
                "step": step,
                "config": cfg.to_dict(),
                "seed": int(seed),
                "n_train": int(data.shape[0]),
            },
        )
        write_json(out / "history.json", history)
        arr = (
            np.stack(samples)
            if samples
            else np.zeros((0, cfg.n_samples, cfg.image_size, cfg.image_size), np.float32)
        )
        save_npz(out / "samples.npz", images=arr, steps=np.asarray(sample_steps, np.int64))

    @torch.no_grad()
    def snapshot() -> None:
        ema.model.eval()
        ema.model.set_noise("zero")
        samples.append(ema.model(fixed_z)[:, 0].float().cpu().numpy())
        sample_steps.append(step)

    start = step
    G.train()
    D.train()
    with Stopwatch(dev) as sw:
        bar = tqdm(total=cfg.steps, initial=step, desc=f"FastGAN {out.name}", disable=not progress)
        probe = LoopProbe(f"fastgan_{out.name}", cfg.steps, step, {"G": G, "D": D}, cfg.batch_size, dev)
        tick(step + cfg.steps - max(step, probe.stop))  # steps done before (resume) or not run (dry run)
        while step < probe.stop:
            with probe.step():
                real = _batch(data, cfg.batch_size, gen, dev)
                real_small = F.interpolate(real, size=small, mode="area")
                z = sample_z(cfg.batch_size, cfg.nz, gen, dev)
                fake, fake_small = G(z, with_small=True)
                real_a, real_small_a = diff_augment(
                    [real, real_small], cfg.augment, cfg.translation, generator=gen
                )
                fake_a, fake_small_a = diff_augment(
                    [fake, fake_small], cfg.augment, cfg.translation, generator=gen
                )
                part = int(torch.randint(0, 4, (1,), generator=gen))
                # discriminator step
                logits_real, recs = D(real_a, real_small_a, part=part)
                targets = reconstruction_targets(real_a, real_small_a, part, small)
                logits_fake = D(fake_a.detach(), fake_small_a.detach())
                loss_rec = d_reconstruction_loss(recs, targets)
                loss_d = hinge_d_loss(logits_real, logits_fake) + cfg.rec_weight * loss_rec
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                # generator step
                loss_g = hinge_g_loss(D(fake_a, fake_small_a))
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
            ema.update(G)
            step += 1
            bar.update(1)
            tick()
            if step % cfg.log_every == 0 or step == probe.stop:
                for k, v in (
                    ("step", step),
                    ("loss_d", loss_d.item()),
                    ("loss_g", loss_g.item()),
                    ("loss_rec", loss_rec.item()),
                    ("d_real", logits_real.mean().item()),
                    ("d_fake", logits_fake.mean().item()),
                ):
                    history[k].append(float(v))
                bar.set_postfix(d=f"{loss_d.item():.3f}", g=f"{loss_g.item():.3f}")
            if step % cfg.sample_every == 0 or step == probe.stop:
                snapshot()
            if step % cfg.ckpt_every == 0 or step == probe.stop:
                save()
        bar.close()
        probe.close()
    if step == start and not ckpt_path.is_file():
        save()
    return TrainResult(out, history, step - start, sw.seconds)


def train_fastgan_ensemble(
    slices_model_range: np.ndarray | torch.Tensor,
    cfg: FastGANConfig | dict[str, Any],
    out_dir: str | os.PathLike,
    n_members: int = 3,
    device: str | torch.device = "auto",
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
    workers: int | None = None,
) -> list[TrainResult]:
    """Train ``n_members`` FastGANs that differ only by seed (seed 000 trains three), one folder each.

    On the CPU the members train side by side in processes (:func:`ctad_core.parallel.plan_workers`; a member
    computes there what it computes here with the same number of threads); on a GPU one after another.

    Args:
        slices_model_range, cfg, device, seed, resume, progress: as :func:`train_fastgan`.
        out_dir: the ensemble's folder (``member_k`` inside).
        n_members: how many.
        workers: processes (None: :func:`~ctad_core.parallel.plan_workers` decides; 1: in this process).

    Returns:
        One :class:`TrainResult` per member, in order.
    """
    cfg = cfg if isinstance(cfg, FastGANConfig) else FastGANConfig.from_dict(cfg)
    dev = resolve_device(device)
    n, threads = plan_workers(n_members, dev, workers)
    # side by side: resized once here, and each worker gets the model-size slices (the same numbers)
    x = prepare_slices(slices_model_range, cfg.image_size)[:, 0].numpy() if n > 1 else slices_model_range
    jobs = [
        (x, cfg, d, dev, member_seed(seed, k), resume, progress and n == 1)
        for k, d in enumerate(member_dirs(out_dir, n_members))
    ]
    return run_jobs(train_fastgan, jobs, n, threads, "FastGAN ensemble", n_members * cfg.steps, progress)


def _ckpt(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p / CKPT if p.is_dir() else p


def load_generator(
    path: str | os.PathLike, device: str | torch.device = "cpu", ema: bool = True
) -> Generator:
    """The (EMA) generator of a FastGAN checkpoint (file or member folder), in eval mode, noise off, frozen."""
    ck = load_checkpoint(_ckpt(path), map_location="cpu")
    G = Generator(FastGANConfig.from_dict(ck["config"]))
    G.load_state_dict(ck["G_ema" if ema else "G"])
    G.set_noise("zero").eval()
    for p in G.parameters():
        p.requires_grad_(False)
    return G.to(resolve_device(device))


def load_discriminator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Discriminator:
    """The discriminator of a FastGAN checkpoint, in eval mode, frozen."""
    ck = load_checkpoint(_ckpt(path), map_location="cpu")
    D = Discriminator(FastGANConfig.from_dict(ck["config"]))
    try:
        D.load_state_dict(ck["D"])
    except RuntimeError as e:
        raise RuntimeError(f"{_ckpt(path)}: {e}") from e
    D.eval()
    for p in D.parameters():
        p.requires_grad_(False)
    return D.to(resolve_device(device))


@torch.no_grad()
def generate(G: Generator, n: int, seed: int = 0, batch_size: int = 64) -> np.ndarray:
    """``n`` samples ``G(z)``, ``z ~ U[-1, 1]^nz`` from ``seed``, as (n, S, S) float32 in [-1, 1]."""
    dev = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, batch_size):
        z = sample_z(min(batch_size, n - i), G.cfg.nz, gen, dev)
        out.append(G(z)[:, 0].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, G.cfg.image_size, G.cfg.image_size), np.float32)


def nearest_training_images(samples: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each sample, the training image with the smallest mean squared distance (memorisation check).

    Args:
        samples: (n, H, W) generated images.
        train: (N, H, W) training images at the same size.

    Returns:
        ``(index, rmse)``: (n,) index into ``train`` and the root-mean-square distance to it.
    """
    s = torch.as_tensor(samples, dtype=torch.float32).flatten(1)
    t = torch.as_tensor(train, dtype=torch.float32).flatten(1)
    d = torch.cdist(s, t).pow(2) / s.shape[1]
    best = d.min(dim=1)
    return best.indices.numpy(), best.values.sqrt().numpy()


# ------------------------------------------------------------------------------------------------ encoder
def train_encoder(
    slices_model_range: np.ndarray | torch.Tensor,
    gan_checkpoint: str | os.PathLike,
    cfg: EncoderConfig | dict[str, Any],
    out_dir: str | os.PathLike,
    device: str | torch.device = "auto",
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Train the encoder of one ensemble member with its generator frozen (seed 000, step 2, Eq. 3).

    Loss ``w1 · perceptual(x, G(E(x̃))) + w2 · MSE(x, G(E(x̃)))`` where ``x̃`` is ``x`` with random
    erasing (a box set to the background with probability ``erase_p``). The loss compares with the
    *unerased* ``x``, so the encoder learns to map an image with a hole to the healthy whole —
    which is what it must do with a lesion at test time (the seed does not say which target it used).

    Args:
        slices_model_range: (N, H, W) healthy training slices in [-1, 1].
        gan_checkpoint: that member's FastGAN checkpoint (file or folder).
        cfg: :class:`EncoderConfig` or a dict of its fields (``image_size`` / ``nz`` must match G).
        out_dir: this encoder's folder.
        device, seed, resume, progress: as :func:`train_fastgan`.

    Returns:
        :class:`TrainResult`.
    """
    cfg = cfg if isinstance(cfg, EncoderConfig) else EncoderConfig.from_dict(cfg)
    dev = resolve_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    G = load_generator(gan_checkpoint, dev)
    if (G.cfg.image_size, G.cfg.nz) != (cfg.image_size, cfg.nz):
        raise ValueError(
            f"encoder config (size {cfg.image_size}, nz {cfg.nz}) does not match the generator "
            f"(size {G.cfg.image_size}, nz {G.cfg.nz}) in {gan_checkpoint}"
        )
    D = load_discriminator(gan_checkpoint, dev) if cfg.feature_space == "discriminator" else None
    feats = make_feature_extractor(cfg.feature_space, D, cfg.vgg_weights or None)
    if feats is not None:
        feats = feats.to(dev)
    loss_fn = ReconstructionLoss(feats, cfg.w_percept, cfg.w_mse)
    data = prepare_slices(slices_model_range, cfg.image_size)
    E = Encoder(cfg).to(dev)
    opt = torch.optim.Adam(E.parameters(), lr=cfg.lr, betas=cfg.betas)
    gen = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {"step": [], "loss": [], "mse": []}
    step = 0
    ckpt_path = out / CKPT
    ck = restore_training(ckpt_path, {"E": E, "opt": opt}, gen, dev) if resume else None
    if ck is not None:
        history = {k: list(v) for k, v in ck["history"].items()}
        step = int(ck["step"])

    def save() -> None:
        save_checkpoint(
            ckpt_path,
            {
                "E": E.state_dict(),
                "opt": opt.state_dict(),
                "gen_state": gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "history": history,
                "step": step,
                "config": cfg.to_dict(),
                "gan_checkpoint": str(gan_checkpoint),
                "seed": int(seed),
            },
        )
        write_json(out / "history.json", history)

    start = step
    E.train()
    with Stopwatch(dev) as sw:
        bar = tqdm(total=cfg.steps, initial=step, desc=f"encoder {out.name}", disable=not progress)
        probe = LoopProbe(f"encoder_{out.name}", cfg.steps, step, {"E": E, "G": G}, cfg.batch_size, dev)
        tick(step + cfg.steps - max(step, probe.stop))  # steps done before (resume) or not run (dry run)
        while step < probe.stop:
            with probe.step():
                x = _batch(data, cfg.batch_size, gen, dev)
                x_in, _ = random_erase(x, cfg.erase_p, cfg.erase_area, fill=-1.0, generator=gen)
                x_hat = G(E(x_in))
                loss = loss_fn(x, x_hat).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            step += 1
            bar.update(1)
            tick()
            if step % cfg.log_every == 0 or step == probe.stop:
                history["step"].append(float(step))
                history["loss"].append(loss.item())
                history["mse"].append(float(F.mse_loss(x_hat.detach(), x).item()))
                bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % cfg.ckpt_every == 0 or step == probe.stop:
                save()
        bar.close()
        probe.close()
    if step == start and not ckpt_path.is_file():
        save()
    return TrainResult(out, history, step - start, sw.seconds)


def train_encoder_ensemble(
    slices_model_range: np.ndarray | torch.Tensor,
    gan_dir: str | os.PathLike,
    cfg: EncoderConfig | dict[str, Any],
    out_dir: str | os.PathLike,
    n_members: int,
    device: str | torch.device = "auto",
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
    workers: int | None = None,
) -> list[TrainResult]:
    """One encoder per generator of the ensemble: ``out_dir/member_k`` for ``gan_dir/member_k``; on the CPU
    side by side in processes, as :func:`train_fastgan_ensemble` (``workers`` likewise)."""
    cfg = cfg if isinstance(cfg, EncoderConfig) else EncoderConfig.from_dict(cfg)
    dev = resolve_device(device)
    n, threads = plan_workers(n_members, dev, workers)
    x = prepare_slices(slices_model_range, cfg.image_size)[:, 0].numpy() if n > 1 else slices_model_range
    jobs = [
        (x, g, cfg, e, dev, member_seed(seed, k), resume, progress and n == 1)
        for k, (g, e) in enumerate(zip(member_dirs(gan_dir, n_members), member_dirs(out_dir, n_members)))
    ]
    return run_jobs(train_encoder, jobs, n, threads, "encoders", n_members * cfg.steps, progress)


def load_encoder(path: str | os.PathLike, device: str | torch.device = "cpu") -> Encoder:
    """The encoder of a checkpoint (file or member folder), in eval mode, frozen."""
    ck = load_checkpoint(_ckpt(path), map_location="cpu")
    E = Encoder(EncoderConfig.from_dict(ck["config"]))
    E.load_state_dict(ck["E"])
    E.eval()
    for p in E.parameters():
        p.requires_grad_(False)
    return E.to(resolve_device(device))


def _timing(results: list[TrainResult]) -> dict[str, dict[str, float]]:
    return {r.out_dir.name: {"steps_run": r.steps_run, "seconds": r.seconds} for r in results}


def train_gan(
    run: Run,
    cfg: FastGANConfig,
    n_members: int = 3,
    device: str | torch.device = "auto",
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
    workers: int | None = None,
) -> list[TrainResult]:
    """Seed 000 step 1 for a run: the FastGAN ensemble on the run's healthy training slices, in ``gan/``,
    described by ``gan/ensemble.json`` (``workers``: as :func:`train_fastgan_ensemble`)."""
    x = to_model(run.slices("train").image, run.window())
    dev = resolve_device(device)
    results = train_fastgan_ensemble(
        x, cfg, run.stage("gan", create=True), n_members, dev, seed, resume, progress, workers
    )
    run.write_ensemble(
        "gan", cfg.to_dict(), n_members, seed=seed, device=describe_device(dev), timing=_timing(results)
    )
    return results


def train_encoders(
    run: Run,
    cfg: EncoderConfig,
    device: str | torch.device = "auto",
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
    workers: int | None = None,
) -> list[TrainResult]:
    """Seed 000 step 2 for a run: one encoder per generator of ``gan/``, in ``encoder/``, described by
    ``encoder/ensemble.json`` (``workers``: as :func:`train_fastgan_ensemble`)."""
    gans = run.ensemble("gan")
    x = to_model(run.slices("train").image, run.window())
    dev = resolve_device(device)
    results = train_encoder_ensemble(
        x, run.gan, cfg, run.stage("encoder", create=True), gans.n_members, dev, seed, resume, progress, workers
    )
    run.write_ensemble(
        "encoder", cfg.to_dict(), gans.n_members, seed=seed, device=describe_device(dev),
        feature_space=cfg.feature_space, timing=_timing(results),
    )
    return results

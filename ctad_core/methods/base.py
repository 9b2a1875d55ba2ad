"""Trainers of the three volumetric families, one code path for a notebook process and for ``torchrun``.

Each training phase wraps the modules it trains in DistributedDataParallel (through
:mod:`ctad_core.distributed`; a no-op for one process) inside a small *step module* whose ``forward`` computes
everything the phase's loss needs, so DDP sees one forward and one backward per step even when the loss uses
a gradient penalty (WGAN-GP) or a second network (ACAI). Frozen networks are called directly, with
``requires_grad`` off, and never wrapped.

Every phase checkpoints through :func:`ctad_core.train.save_checkpoint` (rank 0 only) every ``ckpt_every``
steps and resumes from its checkpoint; a finished method is stored as ``models/<name>.pt`` and is loaded
instead of retrained when its configuration matches. On CUDA, forward passes run under bf16 autocast.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from ctad_core import distributed as ddp
from ctad_core.frontend import tqdm
from ctad_core.models import ctfsh as ctfsh_lib
from ctad_core.models.ctfsh import CTFSH, ACAICritic, CTFSHConfig
from ctad_core.models.fanogan import (
    FAnoGAN,
    FAnoGANConfig,
    critic_loss,
    encoder_loss_terms,
    generator_loss,
    gradient_penalty,
)
from ctad_core.models.resae import ResAE, ResAEConfig, weight_decay_groups
from ctad_core.probe import LoopProbe
from ctad_core.train import Stopwatch, load_checkpoint, save_checkpoint
from ctad_core.volumetric.data import axial_slices, mid_axial_range
from ctad_core.volumetric.methods import MethodSpec

# ------------------------------------------------------------------------------------------- plumbing


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when ``enabled``; a null context elsewhere (CPU runs stay in float32)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


class _Batches:
    """An endless stream of batches from a loader, reshuffled per epoch."""

    def __init__(self, loader: torch.utils.data.DataLoader, device: torch.device) -> None:
        self.loader, self.device, self.epoch, self.it = loader, device, 0, None

    def next(self) -> Tensor:
        while True:
            if self.it is None:
                ddp.set_epoch(self.loader, self.epoch)
                self.it = iter(self.loader)
            try:
                return next(self.it)[0].to(self.device, non_blocking=True)
            except StopIteration:
                self.epoch, self.it = self.epoch + 1, None


@dataclass
class PhaseRunner:
    """Runs the phases of one method: checkpoints, resume, progress bar, loss history.

    Attributes:
        ckpt_dir: where phase checkpoints go (None: no checkpoints).
        info: the process's :class:`~ctad_core.distributed.DistInfo`.
        ckpt_every: checkpoint period in steps.
        resume: load a phase checkpoint if there is one.
        progress: show tqdm bars (rank 0 only).
        name, batch_size, nominal_batch_size, amp: the method's name, the batch it runs (capped by the
            data), the batch its parameters ask for, and autocast, for its loop probes (:mod:`ctad_core.probe`).
    """

    ckpt_dir: Path | None
    info: ddp.DistInfo
    ckpt_every: int = 100
    resume: bool = True
    progress: bool = True
    history: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    name: str = ""
    batch_size: int | None = None
    nominal_batch_size: int | None = None
    amp: bool = False

    def run(
        self,
        phase: str,
        steps: int,
        modules: dict[str, nn.Module],
        optims: dict[str, torch.optim.Optimizer],
        step_fn: Callable[[int], dict[str, float]],
        desc: str,
    ) -> None:
        """Run ``step_fn(step)`` for ``steps`` steps, resuming from ``<ckpt_dir>/<phase>.pt`` if present."""
        start, hist = 0, []
        path = self.ckpt_dir / f"{phase}.pt" if self.ckpt_dir is not None else None
        if self.resume and path is not None and path.is_file():
            ck = load_checkpoint(path, map_location=self.info.device)
            for k, m in modules.items():
                m.load_state_dict(ck["modules"][k])
            for k, o in optims.items():
                o.load_state_dict(ck["optims"][k])
            start, hist = int(ck["step"]), list(ck["history"])
            torch.set_rng_state(ck["rng"].cpu())
        probe = LoopProbe(f"{self.name}_{phase}" if self.name else phase, steps, start, modules,
                          self.batch_size, self.info.device, bf16_on_gpu=self.amp,
                          nominal_batch_size=self.nominal_batch_size)
        bar = tqdm(
            range(start, probe.stop), desc=desc, initial=start, total=steps,
            disable=not (self.progress and self.info.is_main), leave=False,
        )
        for step in bar:
            with probe.step():
                logs = step_fn(step)
            hist.append(logs)
            if step % 10 == 0 or step == steps - 1:
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()})
            done = step + 1
            if path is not None and (done % max(1, self.ckpt_every) == 0 or done == probe.stop):
                if self.info.is_main:
                    save_checkpoint(
                        path,
                        {
                            "phase": phase,
                            "step": done,
                            "modules": {k: ddp.unwrap(m).state_dict() for k, m in modules.items()},
                            "optims": {k: o.state_dict() for k, o in optims.items()},
                            "history": hist,
                            "rng": torch.get_rng_state(),
                        },
                    )
                ddp.barrier()
        if self.info.is_main:
            probe.close()
        self.history[phase] = hist


def _set_trainable(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def _dataset(x: np.ndarray) -> TensorDataset:
    """(N, *spatial) float32 → dataset of (1, *spatial) tensors."""
    return TensorDataset(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1))


def _collect() -> None:
    # A DDP wrapper keeps autograd hooks on its parameters until it is collected: callers drop their
    # references to a phase's wrappers and collect before the same parameters are wrapped again.
    gc.collect()


# ---------------------------------------------------------------------------------- step modules (DDP)


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

    def __init__(self, encoder: nn.Module, generator: nn.Module, critic: nn.Module, kappa: float, train_g: bool) -> None:
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


class _AEStep(nn.Module):
    """CTFSH AE/VAE step: forward(x, perm, alpha) → dict of reconstruction terms (+ ACAI interpolations)."""

    def __init__(self, model: CTFSH, critic: nn.Module | None, tc: Any) -> None:
        super().__init__()
        self.model = model
        self._critic = (critic,)
        self.tc = tc

    def forward(self, x: Tensor, perm: Tensor | None = None, alpha: Tensor | None = None) -> dict[str, Tensor]:
        x_hat, z, mu, logvar = self.model(x)
        out = {"x_hat": x_hat, "rec": ctfsh_lib.reconstruction_loss(x, x_hat, self.tc.loss, self.tc.rho, self.tc.win_size)}
        out["kl"] = ctfsh_lib.kl_divergence(mu, logvar) if logvar is not None else torch.zeros_like(out["rec"])
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


# ----------------------------------------------------------------------------------------- the trainers


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
    batches = _Batches(ddp.make_loader(_dataset(x), tc.batch_size, info, seed), dev)
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
        _set_trainable(D, False)
        z = torch.randn(real.shape[0], model.cfg.latent_dim, generator=rng).to(dev)
        with ac():
            loss_g = generator_loss(g_step(z))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        _set_trainable(D, True)
        w = (d_real.float().mean() - d_fake.float().mean()).item()
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "wasserstein": w, "gp": gp.item()}

    runner.run("gan", tc.gan_steps, {"generator": G, "critic": D}, {"g": opt_g, "d": opt_d}, gan_step, f"{spec.name} WGAN-GP")
    d_step = g_step = None
    _collect()

    # 2. encoder (G, D frozen) and 3. fine-tuning (E and G) ------------------------------------------------
    _set_trainable(D, False)
    D.eval()
    for phase, steps, train_g in (("encoder", tc.encoder_steps, False), ("finetune", tc.finetune_steps, True)):
        if steps > 0:
            _encoder_phase(model, phase, steps, train_g, batches, spec, runner)
    _set_trainable(model, True)
    model.eval()


def _encoder_phase(
    model: FAnoGAN, phase: str, steps: int, train_g: bool, batches: _Batches, spec: MethodSpec, runner: PhaseRunner
) -> None:
    """Phase 2 (E on L_E, G and D frozen) or 3 (E and G on L_E) of seed 001."""
    tc, info = spec.train, runner.info
    G, D, E = model.generator, model.critic, model.encoder
    _set_trainable(G, train_g)
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
    _collect()


def train_ctfsh(
    model: CTFSH, x: np.ndarray, spec: MethodSpec, runner: PhaseRunner, seed: int = 0, critic: ACAICritic | None = None
) -> None:
    """Seed 002: AE/VAE on ℓ_r (+ β·KL per voxel for the VAE) (+ λ·ACAI regulariser, with its critic)."""
    tc, info = spec.train, runner.info
    dev = info.device
    model.to(dev).train()
    batches = _Batches(ddp.make_loader(_dataset(x), tc.batch_size, info, seed), dev)
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
            _set_trainable(critic, False)
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
            _set_trainable(critic, True)
            with autocast(dev, spec.amp):
                loss_c = c_step(xb, out["x_hat"], out["x_alpha"], alpha)
            opt_c.zero_grad(set_to_none=True)
            loss_c.backward()
            opt_c.step()
            logs["critic"] = loss_c.item()
        return logs

    runner.run("ae", tc.steps, modules, optims, step_fn, spec.name)
    ae_step = c_step = None
    _collect()
    model.eval()


def train_resae(model: ResAE, x: np.ndarray, spec: MethodSpec, runner: PhaseRunner, seed: int = 0) -> None:
    """Seed 004: L2 reconstruction loss, Adam with weight decay on kernels only."""
    tc, info = spec.train, runner.info
    dev = info.device
    model.to(dev).train()
    batches = _Batches(ddp.make_loader(_dataset(x), tc.batch_size, info, seed), dev)
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
    _collect()
    model.eval()


# ------------------------------------------------------------------------------------------ one method


@dataclass
class TrainedMethod:
    """A trained method: its spec, networks and what scoring needs.

    Attributes:
        spec: the :class:`MethodSpec`.
        model: FAnoGAN, CTFSH or ResAE (eval mode).
        critic: the ACAI critic (CTFSH with ACAI), else None.
        latent: CTFSH F-score Gaussian ``{"mu": (d,), "sigma2": float}``, else empty.
        history: loss history per phase.
        train_seconds: wall-clock training time of this process (0 when loaded from disk).
    """

    spec: MethodSpec
    model: nn.Module
    critic: nn.Module | None = None
    latent: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    train_seconds: float = 0.0


def build_model(spec: MethodSpec) -> tuple[nn.Module, nn.Module | None]:
    """Fresh networks for a spec: (model, ACAI critic or None)."""
    if spec.family == "fanogan":
        return FAnoGAN(spec.model), None
    if spec.family == "ctfsh":
        return CTFSH(spec.model), (ACAICritic(spec.model) if spec.train.acai else None)
    if spec.family == "resae":
        return ResAE(spec.model), None
    raise ValueError(f"unknown family {spec.family!r}")


def training_images(spec: MethodSpec, x: np.ndarray) -> np.ndarray:
    """What a method trains on: the volumes (N, D, H, W), or for fanogan2d their mid-axial slices."""
    if spec.spatial_dims == 2:
        start, stop = mid_axial_range(x.shape[1], spec.mid_fraction or 1.0)
        return axial_slices(x, start, stop)
    return x


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


def train_method(
    spec: MethodSpec,
    x_train: np.ndarray,
    out_dir: str | Path,
    device: torch.device | str = "cpu",
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
    info: ddp.DistInfo | None = None,
) -> TrainedMethod:
    """Train one method on healthy volumes (or load it when ``models/<name>.pt`` has the same config).

    Args:
        spec: the method (:func:`~ctad_core.volumetric.methods.method_spec`).
        x_train: (N, D, H, W) healthy training volumes in [-1, 1], already windowed / skull-stripped
            as ``spec`` asks (:func:`~ctad_core.volumetric.data.model_volumes`).
        out_dir: ``run_dir/volumetric``; writes ``models/<name>.pt`` and ``models/<name>/<phase>.pt``.
        device: torch device (ignored under torchrun, where each rank takes its own).
        seed: the run's seed (networks are initialised from it; ranks differ only in their noise).
        resume: reuse finished models and resume phase checkpoints.
        progress: tqdm bars.
        info: the distributed context (default: a single process on ``device``).

    Returns:
        The :class:`TrainedMethod` (identical on every rank).
    """
    info = info or ddp.DistInfo(device=torch.device(device))
    out_dir = Path(out_dir)
    final = out_dir / "models" / f"{spec.name}.pt"
    if resume and final.is_file():
        ck = load_checkpoint(final, map_location=info.device)
        if ck.get("spec") == _jsonable(spec.to_dict()):
            return load_trained(final, spec, info.device)
        warnings.warn(f"{final} was trained with another configuration; training {spec.name} again", stacklevel=2)
        for p in (out_dir / "models" / spec.name).glob("*.pt"):
            if info.is_main:
                p.unlink()
        ddp.barrier()
    torch.manual_seed(seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model, critic = build_model(spec)
    x = training_images(spec, x_train)
    shard = (len(x) + info.world_size - 1) // info.world_size  # make_loader caps the batch at the shard
    runner = PhaseRunner(out_dir / "models" / spec.name, info, spec.ckpt_every, resume, progress,
                         name=spec.name, batch_size=max(1, min(spec.train.batch_size, shard)),
                         nominal_batch_size=spec.train.batch_size, amp=spec.amp)
    with Stopwatch(info.device) as sw:
        if spec.family == "fanogan":
            train_fanogan(model, x, spec, runner, seed)
        elif spec.family == "ctfsh":
            train_ctfsh(model, x, spec, runner, seed, critic)
        else:
            train_resae(model, x, spec, runner, seed)
    ddp.broadcast_buffers(model, info)  # BatchNorm statistics: rank 0's copy on every rank
    latent = fit_latent(model, x, info.device) if spec.family == "ctfsh" else {}
    tm = TrainedMethod(spec, model, critic, latent, runner.history, sw.seconds)
    if info.is_main:
        save_trained(final, tm)
    ddp.barrier()
    return tm


def _jsonable(d: Any) -> Any:
    """Tuples → lists, recursively (what a checkpoint round trip gives back)."""
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    return d


def save_trained(path: str | Path, tm: TrainedMethod) -> Path:
    """Write a trained method as one checkpoint (state dicts + config + history + F-score Gaussian)."""
    state: dict[str, Any] = {
        "method": tm.spec.name,
        "spec": _jsonable(tm.spec.to_dict()),
        "model": ddp.unwrap(tm.model).state_dict(),
        "history": tm.history,
        "train_seconds": float(tm.train_seconds),
    }
    if tm.critic is not None:
        state["critic"] = tm.critic.state_dict()
    if tm.latent:
        state["latent_mu"] = torch.as_tensor(np.asarray(tm.latent["mu"]), dtype=torch.float64)
        state["latent_sigma2"] = float(tm.latent["sigma2"])
    return save_checkpoint(path, state)


def load_trained(path: str | Path, spec: MethodSpec, device: torch.device | str = "cpu") -> TrainedMethod:
    """Load a method written by :func:`save_trained` (``weights_only=True``) into fresh networks of ``spec``."""
    ck = load_checkpoint(path, map_location=device)
    model, critic = build_model(spec)
    model.load_state_dict(ck["model"])
    model.to(device).eval()
    if critic is not None and "critic" in ck:
        critic.load_state_dict(ck["critic"])
        critic.to(device).eval()
    latent = {}
    if "latent_mu" in ck:
        latent = {"mu": ck["latent_mu"].cpu().numpy(), "sigma2": float(ck["latent_sigma2"])}
    return TrainedMethod(spec, model, critic, latent, ck.get("history", {}), float(ck.get("train_seconds", 0.0)))


__all__ = [
    "FAnoGANConfig",
    "CTFSHConfig",
    "ResAEConfig",
    "PhaseRunner",
    "TrainedMethod",
    "autocast",
    "build_model",
    "fit_latent",
    "load_trained",
    "save_trained",
    "train_ctfsh",
    "train_fanogan",
    "train_method",
    "train_resae",
    "training_images",
]

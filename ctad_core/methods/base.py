"""What every 3D-capable method (seeds 001, 002, 004) shares: its definition (:class:`Family`), training one
method from its :class:`~ctad_core.methods.spec.MethodSpec` (one code path for a notebook process and for
``torchrun``), and the trained method on disk.

A method folder (``methods/fanogan``, ``methods/ctfsh``, ``methods/resae``) defines one :class:`Family`: how
to build its networks, train them, fit what scoring needs after training, score a batch and post-process its
maps. The registry (:mod:`ctad_core.methods`) maps each method name to its family; nothing else branches on a
family. A finished method is stored as ``models/<name>.pt`` and is loaded instead of retrained when its
configuration matches; phases checkpoint and resume through :class:`ctad_core.train.PhaseRunner`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ctad_core import anomaly
from ctad_core import distributed as ddp
from ctad_core.methods.inputs import axial_slices, mid_axial_range
from ctad_core.methods.spec import MethodSpec
from ctad_core.probe import cap_batch
from ctad_core.results import NO_SEGMENTATION
from ctad_core.train import PhaseRunner, Stopwatch, load_checkpoint, save_checkpoint


@dataclass(frozen=True)
class Family:
    """One method folder's definition for the shared 3D train / score path.

    Attributes:
        name: the folder, e.g. ``"resae"`` (also ``MethodSpec.family`` and the parameter prefix).
        spec: ``(name, volume_shape, params) -> MethodSpec`` from the flat parameters.
        build: ``spec -> (model, critic or None)``: fresh networks.
        train: ``(model, x, spec, runner, seed, critic) -> None``: the method's phases on healthy inputs.
        infer: ``(trained, xb) -> (recon, score, extras)`` for a batch (B, 1, *spatial) in [-1, 1]: the
            reconstruction (B, 1, *spatial), the method's own per-item score (B,) and per-item extras
            (name -> (B,) tensor), higher = more anomalous.
        scan_score: what ``infer``'s score is (recorded in the results' info).
        fit_latent: ``(model, x, device) -> dict`` fitted on the training inputs after training (CTFSH's F
            score Gaussian), or None.
        postprocess: ``(spec, maps, maps_pos, mask, inputs, recon, brain) -> dict`` the method's own map
            post-processing (seed 004), returning any of ``maps``, ``maps_haemorrhage``, ``mask``,
            ``scan_score``, ``map`` (a description) and ``extra`` (per-item arrays), or None.
        info: ``(trained, extra) -> dict`` method-specific entries of the results' info, or None.
        segmentation: ``spec -> dict`` the segmentation step the evaluator applies after thresholding
            (:data:`ctad_core.results.NO_SEGMENTATION` keys).
        residual: ``(trained, inputs, recon) -> signed map`` (N, *spatial), higher = more anomalous, from which
            the maps are made (|·| and max(·, 0)); None: ``inputs − recon``. The baselines' maps: the
            windowed image (intensity), the deviation in units of the healthy spread (normative).
        baseline: a simple baseline (issue 11: the floor every method must beat), not a seed method.
        map: what the map is before post-processing, for the results' info.
        trains_network: training runs an optimiser (seconds to minutes); False: it only computes statistics of
            the healthy scans, or nothing (:func:`~ctad_core.methods.run_methods` starts such methods last).
    """

    name: str
    spec: Callable[..., MethodSpec]
    build: Callable[[MethodSpec], tuple[nn.Module, nn.Module | None]]
    train: Callable[..., None]
    infer: Callable[..., tuple[Tensor, Tensor, dict[str, Tensor]]]
    scan_score: str
    fit_latent: Callable[..., dict[str, Any]] | None = None
    postprocess: Callable[..., dict[str, Any]] | None = None
    info: Callable[..., dict[str, Any]] | None = None
    segmentation: Callable[[MethodSpec], dict[str, Any]] = lambda spec: dict(NO_SEGMENTATION)
    residual: Callable[[TrainedMethod, np.ndarray, np.ndarray], np.ndarray] | None = None
    baseline: bool = False
    map: str = "|x - x_hat| in the model range"
    trains_network: bool = True


@dataclass
class NoTraining:
    """The training config of a method that fits in one pass (intensity, normative): no steps."""

    batch_size: int = 1


def top_fraction_postprocess(
    spec: MethodSpec,
    maps: np.ndarray,
    maps_pos: np.ndarray,
    mask: np.ndarray,
    inputs: np.ndarray,
    recon: np.ndarray,
    brain: np.ndarray,
) -> dict[str, Any]:
    """Maps unchanged; scan score = mean of the top 1 % of ``maps`` inside ``mask`` (slices or volumes)."""
    return {"scan_score": anomaly.scan_score(maps, mask, top_fraction=0.01, spatial_dims=maps.ndim - 1)}


def median_eroded_postprocess(
    spec: MethodSpec,
    maps: np.ndarray,
    maps_pos: np.ndarray,
    mask: np.ndarray,
    inputs: np.ndarray,
    recon: np.ndarray,
    brain: np.ndarray,
) -> dict[str, Any]:
    """Median filter inside an eroded mask, then the top-1 % scan score (Luo 2023; Kascenas et al. 2022).

    Args:
        spec: the method (``spec.post``: ``median`` side, ``erode`` iterations).
        maps, maps_pos: (N, *spatial) |residual| and max(residual, 0) inside ``mask`` (slices or volumes).
        mask: (N, *spatial) evaluation mask; inputs, recon: model-range inputs and reconstructions;
        brain: (N, *spatial) brain masks (unused here).

    Returns:
        ``maps``, ``maps_haemorrhage``, ``mask`` (eroded), ``scan_score`` (N,) and ``map`` (a description).
    """
    post, sd = spec.post, maps.ndim - 1
    eroded = anomaly.erode_mask(mask, iterations=post["erode"], spatial_dims=sd) if post["erode"] else mask
    maps = anomaly.median_filter(maps, post["median"], spatial_dims=sd) * eroded
    maps_pos = anomaly.median_filter(maps_pos, post["median"], spatial_dims=sd) * eroded
    mask = eroded.astype(np.uint8)
    return {
        "maps": maps,
        "maps_haemorrhage": maps_pos,
        "mask": mask,
        "scan_score": anomaly.scan_score(maps, mask, top_fraction=0.01, spatial_dims=sd),
        "map": f", {post.get('median')}^{sd} median, eroded brain",
    }


def family_of(spec: MethodSpec) -> Family:
    """The :class:`Family` of a spec, from the registry."""
    from ctad_core.methods import FAMILIES

    return FAMILIES[spec.family]


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


def training_images(spec: MethodSpec, x: np.ndarray) -> np.ndarray:
    """What a method trains on: the volumes (N, D, H, W), or for a 2D model their mid-axial slices (fanogan2d);
    slices (N, H, W) (the 2D baselines of notebook 04) as they are."""
    if spec.spatial_dims == 2 and x.ndim == 4:
        start, stop = mid_axial_range(x.shape[1], spec.mid_fraction or 1.0)
        return axial_slices(x, start, stop)
    return x


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
        spec: the method (:func:`ctad_core.methods.method_spec`).
        x_train: (N, D, H, W) healthy training volumes in [-1, 1], already windowed / skull-stripped
            as ``spec`` asks (:func:`~ctad_core.methods.inputs.model_volumes`).
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
        if ck.get("spec") == spec_json(spec):
            return load_trained(final, spec, info.device)
        warnings.warn(
            f"{final} was trained with another configuration; training {spec.name} again", stacklevel=2
        )
        for p in (out_dir / "models" / spec.name).glob("*.pt"):
            if info.is_main:
                p.unlink()
        ddp.barrier()
    torch.manual_seed(seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    family = family_of(spec)
    model, critic = family.build(spec)
    x = training_images(spec, x_train)
    shard = (len(x) + info.world_size - 1) // info.world_size  # make_loader caps the batch at the shard
    runner = PhaseRunner(
        out_dir / "models" / spec.name,
        info,
        spec.ckpt_every,
        resume,
        progress,
        name=spec.name,
        batch_size=max(1, min(cap_batch(spec.train.batch_size), shard)),
        nominal_batch_size=spec.train.batch_size,
        amp=spec.amp,
    )
    with Stopwatch(info.device) as sw:
        family.train(model, x, spec, runner, seed, critic)
    ddp.broadcast_buffers(model, info)  # BatchNorm statistics: rank 0's copy on every rank
    latent = family.fit_latent(model, x, info.device) if family.fit_latent is not None else {}
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


def spec_json(spec: MethodSpec) -> dict[str, Any]:
    """``spec`` as a finished model's checkpoint records it (the key a trained model is matched by)."""
    return _jsonable(spec.to_dict())


def save_trained(path: str | Path, tm: TrainedMethod) -> Path:
    """Write a trained method as one checkpoint (state dicts + config + history + F-score Gaussian)."""
    state: dict[str, Any] = {
        "method": tm.spec.name,
        "spec": spec_json(tm.spec),
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
    model, critic = family_of(spec).build(spec)
    model.load_state_dict(ck["model"])
    model.to(device).eval()
    if critic is not None and "critic" in ck:
        critic.load_state_dict(ck["critic"])
        critic.to(device).eval()
    latent = {}
    if "latent_mu" in ck:
        latent = {"mu": ck["latent_mu"].cpu().numpy(), "sigma2": float(ck["latent_sigma2"])}
    return TrainedMethod(
        spec, model, critic, latent, ck.get("history", {}), float(ck.get("train_seconds", 0.0))
    )


def load_history(path: str | Path) -> dict[str, list[dict[str, float]]]:
    """The loss history per phase of a method written by :func:`save_trained`."""
    return dict(load_checkpoint(path).get("history", {}))


__all__ = [
    "Family",
    "NoTraining",
    "median_eroded_postprocess",
    "top_fraction_postprocess",
    "TrainedMethod",
    "family_of",
    "load_history",
    "load_trained",
    "save_trained",
    "train_method",
    "training_images",
]

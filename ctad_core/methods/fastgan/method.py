"""Seed 000 (Walluscheck et al. 2024): scoring slices with the FastGAN ensemble, by encoder or by restoration.

Methods ``fastgan_encoder`` (z = E(x), one forward pass) and ``fastgan_restoration`` (z by latent restoration,
Eq. 4, from z = 0 or from E(x)). Each of the M members reconstructs every val/test slice; a member's map is
its residual ρ(x − x̂) (ρ = |·| or max(·, 0); the evaluator restricts it to ``brain``); ``maps`` is the members' mean. The
segmentation step the method declares (and the evaluator applies): threshold each member's map, close with
``closing_radius``, strict majority vote over the members. Per-slice score: the mean of the top
``top_fraction`` of the mean map inside the brain. Parameters are notebook 04's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ctad_core import anomaly
from ctad_core.data.manifest import SliceSet
from ctad_core.data.windows import to_model
from ctad_core.methods.fastgan import train as fg_train
from ctad_core.methods.fastgan.ensemble import residual_maps, resize_masks, select_slices, stack_members
from ctad_core.methods.fastgan.losses import ReconstructionLoss, make_feature_extractor
from ctad_core.methods.fastgan.restore import encode_reconstruct, restore_many
from ctad_core.parallel import plan_workers, run_jobs
from ctad_core.results import MethodResults
from ctad_core.run import Run
from ctad_core.utils import describe_device, resolve_device

#: ``restoration_init`` values: the seed's start (z = 0) or the encoder's code.
INITS = ("zero", "encoder")


@dataclass
class EvalSlices:
    """The val/test slices seed 000 scores, at the ensemble's image size.

    Attributes:
        x: (N, 1, S, S) float32 tensor in [-1, 1], the model's inputs.
        lesion, brain: (N, S, S) uint8 masks resized to S.
        scan_id, slice_index, split, kind: (N,) per slice.
    """

    x: torch.Tensor
    lesion: np.ndarray
    brain: np.ndarray
    scan_id: np.ndarray
    slice_index: np.ndarray
    split: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])


def model_slices(
    ss: SliceSet, image_size: int, window: str | tuple[float, float], skull_strip: bool = False
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """HU slices → model inputs at ``image_size``: (N, 1, S, S) tensor in [-1, 1], lesion and brain (N, S, S).

    With ``skull_strip`` everything outside the (resized) brain mask is set to the window's lower bound (−1).
    """
    x = fg_train.prepare_slices(to_model(ss.image, window), image_size)
    brain = resize_masks(ss.brain, image_size).astype(np.uint8)
    if skull_strip:
        x = torch.where(torch.from_numpy(brain[:, None] > 0), x, torch.tensor(-1.0))
    return x, resize_masks(ss.lesion, image_size).astype(np.uint8), brain


def eval_slices(
    run: Run,
    image_size: int,
    max_slices_per_split: int = 0,
    seed: int = 0,
    window: str | tuple[float, float] | None = None,
    skull_strip: bool = False,
) -> EvalSlices:
    """The run's val + test slices (at most ``max_slices_per_split`` each, half lesioned; 0 = all), in model
    range at ``image_size`` (:func:`~ctad_core.methods.fastgan.ensemble.select_slices`): the run's window
    (seed 000) or ``window``, skull-stripped with ``skull_strip`` (the 2D baselines score the same slices)."""
    ev = run.slices()
    ev = ev.subset(np.isin(ev.split, ["val", "test"]))
    ev = ev.subset(
        select_slices(
            ev.split, ev.lesion.reshape(len(ev), -1).any(1), max_slices_per_split, seed, kind=ev.kind
        )
    )
    return slice_items(ev, image_size, window or run.window(), skull_strip)


def slice_items(
    ev: SliceSet, image_size: int, window: str | tuple[float, float], skull_strip: bool = False
) -> EvalSlices:
    """Slices as the 2D methods score them: in model range at ``image_size`` (:func:`model_slices`), with
    their masks and labels (used by :func:`eval_slices`, and on other slices of the same scans, e.g. the
    acquisition-shift test of :mod:`ctad_core.evaluation.shift`)."""
    x, lesion, brain = model_slices(ev, image_size, window, skull_strip)
    return EvalSlices(
        x=x,
        lesion=lesion,
        brain=brain,
        scan_id=ev.scan_id,
        slice_index=ev.slice_index,
        split=ev.split,
        kind=ev.kind,
    )


def slice_size(run: Run) -> int:
    """The side of the slices seed 000's methods score: the GAN ensemble's ``image_size`` (notebook 02), or
    the slices' own side when the run has no ensemble."""
    if (run.gan / "ensemble.json").is_file():
        return int(run.ensemble("gan").config["image_size"])
    return int(run.slices("val").image.shape[-1])


def check_init(p: dict[str, Any]) -> str:
    """``p["restoration_init"]``, checked against :data:`INITS`.

    Raises:
        ValueError: naming the value and the allowed ones.
    """
    init = p["restoration_init"]
    if init not in INITS:
        raise ValueError(f"restoration_init must be one of {INITS}, not {init!r}")
    return init


@dataclass
class MemberReconstructions:
    """Every member's reconstructions of the slices and what they cost.

    Attributes:
        recon: (M, N, S, S) float32 in [-1, 1].
        seconds: wall-clock seconds of the members' reconstruction, all members together — their sum when
            they run one after another, from the first start to the last end when side by side (restoration
            from the encoder includes the encoder pass; loading the networks and starting processes do not
            count).
        losses: per member, the restoration loss (steps, N) (empty for the encoder).
    """

    recon: np.ndarray
    seconds: float
    losses: list[np.ndarray] = field(default_factory=list)


def reconstruct_members(
    run: Run,
    x: torch.Tensor,
    p: dict[str, Any],
    restoration: bool,
    device: torch.device | str = "cpu",
    progress: bool = True,
    workers: int | None = None,
) -> MemberReconstructions:
    """Reconstruct slices with every member: G(E(x)), or latent restoration (seed 000 Eq. 4).

    Args:
        run: the run whose ``gan`` and ``encoder`` ensembles are used.
        x: (N, 1, S, S) inputs in [-1, 1].
        p: notebook 04's parameters (``restoration_init``, ``steps``, ``lr``, ``batch_size``, ``w_percept``,
            ``w_mse``, ``feature_space``, ``vgg_weights``, ``amp``, ``channels_last``).
        restoration: restore z (True) or take E(x) (False).
        device: torch device.
        progress: print one line per member.
        workers: restoration's processes on the CPU, one member each (None: :func:`ctad_core.parallel.plan_workers`
            decides; 1: one member after another here). On a GPU, and for the encoder, the members run here.

    Raises:
        ValueError: for a ``restoration_init`` other than :data:`INITS`.
        FileNotFoundError: when an ensemble is missing (run notebooks 02 and 03).
    """
    init = check_init(p)
    dev = torch.device(device)
    gans, encs = run.ensemble("gan"), run.ensemble("encoder")
    if gans.n_members != encs.n_members:
        raise ValueError(f"{run.root}: {gans.n_members} GANs but {encs.n_members} encoders")
    # the encoder pass takes a second: processes would cost more than they save
    n, threads = plan_workers(gans.n_members, dev, workers) if restoration else (1, 1)
    jobs = [(g, e, x, p, restoration, init, dev, progress and n == 1) for g, e in zip(gans.members, encs.members)]
    batches = gans.n_members * -(-len(x) // int(p["batch_size"])) if restoration else None
    out = run_jobs(
        _reconstruct_member, jobs, n, threads, "restoration" if restoration else "encoder", batches, progress
    )
    recons, losses = [o[0] for o in out], [o[1] for o in out if o[1] is not None]
    # one after another: the members' seconds add up; side by side: from the first start to the last end
    seconds = sum(o[2] for o in out) if n == 1 else max(o[4] for o in out) - min(o[3] for o in out)
    if progress:
        for m, o in enumerate(out):
            what = "restoration" if restoration else "encoder"
            print(f"member {m}: {what} {o[2]:.1f} s for {len(x)} slices")
    return MemberReconstructions(stack_members(recons), seconds, losses)


def _reconstruct_member(
    g_dir: Any,
    e_dir: Any,
    x: torch.Tensor,
    p: dict[str, Any],
    restoration: bool,
    init: str,
    dev: torch.device,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray | None, float, float, float]:
    """One member's reconstructions (N, S, S), its restoration losses (steps, N) or None, its seconds, and
    the wall-clock times (``time.time()``) at which that work started and ended."""
    G = fg_train.load_generator(g_dir, dev)
    E = fg_train.load_encoder(e_dir, dev)
    loss_fn = None
    if restoration:
        D = fg_train.load_discriminator(g_dir, dev) if p["feature_space"] == "discriminator" else None
        features = make_feature_extractor(p["feature_space"], D, p["vgg_weights"] or None)
        loss_fn = ReconstructionLoss(features, p["w_percept"], p["w_mse"])
    t_start = time.time()  # the networks are loaded: from here the member's reconstruction
    z_enc, r_enc, t_enc = encode_reconstruct(E, G, x)
    if loss_fn is None:
        return r_enc[:, 0].numpy(), None, t_enc, t_start, time.time()
    t_restore = time.time()
    res = restore_many(
        G,
        x,
        loss_fn,
        batch_size=p["batch_size"],
        progress=progress,
        steps=p["steps"],
        lr=p["lr"],
        amp=p["amp"],
        channels_last=p["channels_last"],
        z0=z_enc if init == "encoder" else None,
    )
    # from the encoder, the encoder pass (E and G(E(x)), a slight overestimate) is part of the cost
    from_encoder = init == "encoder"
    seconds = res.seconds + (t_enc if from_encoder else 0.0)
    started = t_start if from_encoder else t_restore
    return res.recon[:, 0].numpy(), np.asarray(res.losses), seconds, started, time.time()


def score(
    name: str,
    run: Run,
    p: dict[str, Any],
    restoration: bool,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = True,
    slices: SliceSet | None = None,
) -> MethodResults:
    """Score the run's val/test slices with the ensemble: members' maps, their mean, the vote it declares.

    Args:
        name: the method's name (``fastgan_encoder`` / ``fastgan_restoration``).
        run: the run (its ``data``, ``gan`` and ``encoder`` stages are read).
        p: notebook 04's parameters.
        restoration: latent restoration (True) or the encoder (False).
        device: torch device (``"auto"`` resolves).
        seed: the slice selection's seed.
        progress: per-member lines.
        slices: score these slices (all of them, HU, e.g. re-rendered test scans) instead of the run's
            val/test selection; the same models and steps.

    Returns:
        :class:`~ctad_core.results.MethodResults` at level ``"2d"`` with ``member_maps``,
        ``member_maps_haemorrhage``, ``maps`` (their mean), ``inputs``, ``recon`` (members' mean) and
        ``info["segmentation"]`` = closing radius + majority vote.

    Raises:
        ValueError: for a ``restoration_init`` other than :data:`INITS` (checked before anything loads).
        FileNotFoundError: when the run has no trained ensembles (notebooks 02 and 03).
    """
    check_init(p)
    dev = resolve_device(device) if str(device) == "auto" else torch.device(device)
    cfg = run.ensemble("gan").config
    image_size = int(cfg["image_size"])
    if slices is None:
        ev = eval_slices(run, image_size, int(p["max_slices_per_split"]), seed)
    else:
        ev = slice_items(slices, image_size, run.window())
    rec = reconstruct_members(run, ev.x, p, restoration, dev, progress)
    xn = ev.x[:, 0].numpy()
    member_maps = residual_maps(xn, rec.recon, p["residual_mode"])
    member_pos = residual_maps(xn, rec.recon, "pos")
    mean_map = member_maps.mean(0).astype(np.float32)
    n_members = rec.recon.shape[0]
    all_ids = (run.slices() if slices is None else slices).scan_id  # slices per scan: of the whole set
    info = {
        "seconds_per_item": rec.seconds / max(1, len(ev)),  # per slice, all members
        "items_per_scan": float(np.mean(np.unique(all_ids, return_counts=True)[1])),
        "seconds_total": rec.seconds,
        "device": describe_device(dev),
        "feature_space": p["feature_space"],
        "residual_mode": p["residual_mode"],
        "n_members": n_members,
        "image_size": image_size,
        "restoration_steps": int(p["steps"]) if restoration else 0,
        "restoration_init": p["restoration_init"] if restoration else None,
        "restoration_loss": [lc.mean(1).tolist() for lc in rec.losses],
        "slice_index": np.asarray(ev.slice_index).tolist(),
        "model_dims": "2d",
        "segmentation": {"closing_radius": int(p["closing_radius"]), "vote": "majority"},
    }
    return MethodResults(
        name=name,
        level="2d",
        scan_id=ev.scan_id,
        split=ev.split,
        kind=ev.kind,
        scan_score=anomaly.scan_score(mean_map, ev.brain, p["top_fraction"], spatial_dims=2),
        maps=mean_map,
        lesion=ev.lesion,
        brain=ev.brain,
        maps_haemorrhage=member_pos.mean(0).astype(np.float32),
        member_maps=member_maps.astype(np.float32),
        member_maps_haemorrhage=member_pos.astype(np.float32),
        recon=rec.recon.mean(0).astype(np.float32),
        inputs=xn.astype(np.float32),
        info=info,
    )

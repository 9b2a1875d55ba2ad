"""Training plumbing shared by every method, 2D and 3D: checkpoints, exact resume, EMA, timing, and the
phase runner (progress bar, loss history, loop probe, DDP-aware checkpoints).

Each method's training steps live in its folder (``ctad_core/methods/<name>/train.py``); this module knows
nothing of any model. The FastGAN and encoder loops of seed 000 checkpoint through :func:`save_checkpoint`
and resume through :func:`restore_training`; the 3D methods run their phases through :class:`PhaseRunner`,
which checkpoints and resumes with the same two functions.
"""

from __future__ import annotations

import copy
import gc
import os
import time
from collections.abc import Callable, Mapping
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
from ctad_core.probe import LoopProbe
from ctad_core.utils import atomic_write


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Save a checkpoint atomically (temp file, then ``os.replace``).

    Args:
        path: destination ``.pt`` file.
        state: a dict of state_dicts (``model``, ``optim``, …), plain config values and the ``step``.
            Only tensors, numbers, strings, lists, tuples and dicts: it must load with
            ``torch.load(weights_only=True)``.
    """
    return atomic_write(path, lambda p: torch.save(dict(state), p))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, with ``weights_only=True``.

    Raises:
        FileNotFoundError: with the path, if it does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


class EMA:
    """Exponential moving average of a model's parameters (buffers are copied).

    Args:
        model: the model being trained.
        decay: weight of the old average at each update (FastGAN uses 0.999).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        src = dict(model.named_parameters())
        for name, p in self.model.named_parameters():
            p.lerp_(src[name].detach(), 1.0 - self.decay)
        src_b = dict(model.named_buffers())
        for name, b in self.model.named_buffers():
            b.copy_(src_b[name])

    def state_dict(self) -> dict[str, Any]:
        return self.model.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state)


class Stopwatch:
    """Wall-clock timer that synchronises CUDA before reading, so GPU timings are honest."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device
        self.start = 0.0
        self.seconds = 0.0

    def _sync(self) -> None:
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __enter__(self) -> Stopwatch:
        self._sync()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self.start


def restore_training(
    path: str | os.PathLike,
    parts: Mapping[str, Any],
    generator: torch.Generator | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any] | None:
    """Resume from a checkpoint if one exists: load each part's state and the random-number states.

    Args:
        path: the checkpoint written by :func:`save_checkpoint`.
        parts: ``{key: object with load_state_dict}`` (models, optimisers, :class:`EMA`) keyed as saved.
        generator: a ``torch.Generator`` whose state was saved under ``"gen_state"``.
        map_location: device for the tensors.

    Returns:
        The checkpoint dict (for ``step``, ``history`` …), or None when there is no checkpoint yet.

    Raises:
        RuntimeError: naming the file and the part, when a part's saved state does not fit it (another
            architecture or size); the part's own message says how.
    """
    if not Path(path).is_file():
        return None
    ck = load_checkpoint(path, map_location=map_location)
    for key, obj in parts.items():
        try:
            obj.load_state_dict(ck[key])
        except (RuntimeError, ValueError) as e:
            raise RuntimeError(f"{path}: cannot restore {key!r}: {e}") from e
    if generator is not None:
        generator.set_state(ck["gen_state"])
    if "torch_rng" in ck:
        torch.set_rng_state(ck["torch_rng"].cpu())
    return ck


# ------------------------------------------------------------------------- phases (2D and 3D methods)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when ``enabled``; a null context elsewhere (CPU runs stay in float32)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


class Batches:
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


def set_trainable(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def tensor_dataset(x: np.ndarray) -> TensorDataset:
    """(N, *spatial) float32 → dataset of (1, *spatial) tensors."""
    return TensorDataset(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1))


def collect_wrappers() -> None:
    # A DDP wrapper keeps autograd hooks on its parameters until it is collected: callers drop their
    # references to a phase's wrappers and collect before the same parameters are wrapped again.
    gc.collect()

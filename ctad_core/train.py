"""Training plumbing shared by every model family: checkpoints, resume, EMA, timing.

Model-specific training steps live beside their models; this module knows nothing of any model.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

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

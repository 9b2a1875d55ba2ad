"""DistributedDataParallel helpers: the same trainer runs in a notebook (one process) or under ``torchrun``.

``torchrun --nproc_per_node N -m ctad_core.methods train ...`` sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; :func:`init_from_env` then starts a process group (``nccl`` on CUDA, ``gloo`` on CPU), and
everything else in this module degrades to no-ops for a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from ctad_core.probe import cap_batch


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_from_env(device: torch.device | str = "cpu", backend: str | None = None) -> DistInfo:
    """Join the process group described by torchrun's environment, if there is one.

    Args:
        device: the resolved device of this run; on CUDA each rank takes ``cuda:LOCAL_RANK``.
        backend: ``None`` picks ``nccl`` for CUDA and ``gloo`` otherwise.

    Returns:
        The :class:`DistInfo`; ``world_size == 1`` (and no process group) when ``WORLD_SIZE`` is unset or 1.
    """
    device = torch.device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(device=device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"))
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=device)


def current() -> DistInfo:
    """The :class:`DistInfo` of an already initialised process group (or a single process)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo()


def is_main() -> bool:
    """True unless this is a non-zero rank of a process group."""
    return current().is_main


def barrier() -> None:
    """Wait for every rank (no-op for one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group if one was started."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, info: DistInfo) -> nn.Module:
    """Wrap a module in DDP when running distributed (else return it unchanged).

    Only parameters that require grad at wrap time are synchronised, so wrap the modules being trained in a
    phase and call frozen ones directly.
    """
    if not info.enabled:
        return module
    ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or the module itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def make_loader(
    dataset: Dataset, batch_size: int, info: DistInfo, seed: int = 0, drop_last: bool = True, num_workers: int = 0
) -> DataLoader:
    """A shuffling loader; under DDP each rank sees its own shard through a ``DistributedSampler``.

    Call ``loader.sampler.set_epoch(epoch)`` every epoch (:func:`set_epoch` does it for either sampler kind).
    The per-rank batch is ``batch_size`` (so the global batch is ``batch_size × world_size``) and is capped by
    the shard size so a tiny data set still yields batches (and, in a dry run, by ``--max-batch``:
    :func:`ctad_core.probe.cap_batch`).
    """
    n = len(dataset)  # type: ignore[arg-type]
    if info.enabled:
        sampler = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed)
        shard = (n + info.world_size - 1) // info.world_size
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
        shard = n
    bs = max(1, min(cap_batch(batch_size), shard))
    loader = DataLoader(dataset, batch_size=bs, sampler=sampler, drop_last=drop_last and shard >= bs, num_workers=num_workers)
    loader.ctad_seed = seed  # type: ignore[attr-defined]
    return loader


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Reshuffle a :func:`make_loader` loader for ``epoch`` (both sampler kinds)."""
    s = loader.sampler
    if isinstance(s, DistributedSampler):
        s.set_epoch(epoch)
    elif isinstance(s, RandomSampler) and s.generator is not None:
        # a fixed order per epoch, so a resumed run sees the batches the uninterrupted run would have seen
        s.generator.manual_seed(int(getattr(loader, "ctad_seed", 0)) * 100_003 + epoch)


def broadcast_buffers(module: nn.Module, info: DistInfo, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every rank, so replicas end identical."""
    if not info.enabled:
        return
    for b in unwrap(module).buffers():
        dist.broadcast(b.data, src)


def parameter_digest(module: nn.Module, buffers: bool = True) -> str:
    """A short hash of every parameter (and buffer): equal on all ranks when replicas are in sync.

    During training BatchNorm running statistics follow each rank's own last batch (DDP broadcasts rank 0's
    buffers at the start of every forward); :func:`broadcast_buffers` aligns them at the end.
    """
    import hashlib

    h = hashlib.sha256()
    m = unwrap(module)
    items = sorted(m.state_dict().items()) if buffers else sorted(m.named_parameters())
    for name, t in items:
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]

"""Loop probes: seconds per step, peak memory and parameter counts of every training or optimisation loop,
and the step cap of a dry run (``ctad run --dry-run``).

Every long loop of the package (the 2D FastGAN and encoder trainers, latent restoration, the 3D phase
runner) creates a :class:`LoopProbe`, iterates ``while step < probe.stop`` and wraps each step in
``with probe.step():``. Outside a dry run the probe only counts; inside one it

* stops the loop after ``CTAD_DRY_RUN_STEPS`` steps (the model, batch, image and latent sizes are the
  profile's own — only the step count is cut), and
* with ``CTAD_DRY_RUN_MAX_BATCH`` (``ctad run --dry-run --max-batch N``), runs at most N items per batch —
  for a measuring machine with less memory than one step at the profile's batch needs (a 128³ CTFSH ACAI
  step at batch 4 takes 19–24 GB of host RAM on a CPU); the record keeps the profile's batch as
  ``nominal_batch_size`` and scales the GPU estimate and the time per step to it, and
* writes ``<CTAD_PROBE_DIR>/<name>.json``: parameters, measured seconds per step, peak memory on the device
  used, the activation memory autograd saved in one step, and an estimate of GPU memory at this batch size.

The GPU-memory estimate follows the usual accounting for training with Adam: weights (4 B per float32
parameter) + gradients and two Adam moments for the trainable ones (3 × 4 B) + the tensors autograd saved for
backward in one step (measured with :func:`torch.autograd.graph.saved_tensors_hooks`: the peak of the live
saved tensors, parameters excluded; halved when measured in float32 for a loop that runs under bf16 autocast on
a GPU; scaled up when a partial batch ran) + :data:`CUDA_OVERHEAD_BYTES` for the CUDA context and cuDNN
workspaces. Temporaries that autograd does not save (and the allocator's fragmentation) are not counted. On a CUDA device the probe
also records ``torch.cuda.max_memory_allocated``, which is what to trust there.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import time
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ctad_core.utils import write_json

PROBE_DIR_ENV = "CTAD_PROBE_DIR"
DRY_STEPS_ENV = "CTAD_DRY_RUN_STEPS"
MAX_BATCH_ENV = "CTAD_DRY_RUN_MAX_BATCH"
#: CUDA context, cuDNN/cuBLAS workspaces and allocator slack added to every GPU estimate (bytes).
CUDA_OVERHEAD_BYTES = 1 << 30


def _positive_int_env(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{name}={value!r}: expected a positive integer")
    return n


def dry_run_max_batch() -> int | None:
    """The batch cap of a dry run (``CTAD_DRY_RUN_MAX_BATCH``), or None (no cap; always None outside a dry run).

    Raises:
        ValueError: the variable is set but is not a positive integer.
    """
    return _positive_int_env(MAX_BATCH_ENV) if dry_run_steps() is not None else None


def cap_batch(batch_size: int) -> int:
    """``batch_size``, capped by :func:`dry_run_max_batch` in a dry run."""
    cap = dry_run_max_batch()
    return min(int(batch_size), cap) if cap else int(batch_size)


def dry_run_steps() -> int | None:
    """Steps per loop in a dry run (``CTAD_DRY_RUN_STEPS``), or None outside one.

    Raises:
        ValueError: the variable is set but is not a positive integer.
    """
    return _positive_int_env(DRY_STEPS_ENV)


def _peak_host_bytes() -> int:
    """Peak resident memory of this process (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def host_rss_bytes() -> int | None:
    """Resident memory of this process now (Linux ``/proc/self/statm``; None elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def release_host_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim(0)``; a no-op elsewhere).

    Large CPU tensors freed between methods otherwise stay in the allocator's arenas, so one process that trains
    many 3D models in turn (notebook 05) holds the peak of every one of them.
    """
    import gc

    gc.collect()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl)
            pass


class LoopProbe:
    """Measures one loop and, in a dry run, caps it.

    Args:
        name: the loop's name, unique within a notebook (file name of its record), e.g. ``"fastgan_member_0"``.
        total_steps: the steps the loop would run (the profile's value).
        start: the step it starts from (after a resume).
        modules: the networks it uses, by role (parameter counts and memory estimate).
        batch_size: items per step.
        device: where it runs.
        bf16_on_gpu: the activations measured here are float32 but would be bf16 on a GPU (autocast there
            only): the GPU estimate halves them.
        scales_with_data: the number of such loops grows with the number of images evaluated (restoration
            runs one per batch of validation and test slices); training loops have a fixed step count.
        nominal_batch_size: the batch size the profile asks for when this loop runs on fewer items (a dry
            run's last, partial batch): the GPU estimate scales the measured activations to it.

    Attributes:
        stop: the step to stop at: ``total_steps``, or ``start + CTAD_DRY_RUN_STEPS`` in a dry run.
    """

    def __init__(
        self,
        name: str,
        total_steps: int,
        start: int = 0,
        modules: Mapping[str, nn.Module] | None = None,
        batch_size: int | None = None,
        device: torch.device | str | None = None,
        bf16_on_gpu: bool = False,
        scales_with_data: bool = False,
        nominal_batch_size: int | None = None,
    ) -> None:
        self.name = name
        self.total_steps, self.start = int(total_steps), int(start)
        self.modules = dict(modules or {})
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.bf16_on_gpu, self.scales_with_data = bf16_on_gpu, scales_with_data
        self.nominal_batch_size = nominal_batch_size
        dry = dry_run_steps()
        self.stop = self.total_steps if dry is None else min(self.total_steps, self.start + dry)
        self.step_seconds: list[float] = []
        self.saved_bytes = 0
        self.rss_start = host_rss_bytes()  # what the process already held when the loop began
        self._record = os.environ.get(PROBE_DIR_ENV)
        if self._record and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """Time one step (and, on the first, count the bytes autograd saves for backward)."""
        if not self._record:
            yield
            return
        self._sync()
        t0 = time.perf_counter()
        if self.step_seconds:
            yield
        else:
            # live saved bytes: added when autograd saves a tensor, removed when the graph frees it; the
            # record keeps the peak. Parameters are counted as weights, not again as activations.
            params = {q.untyped_storage().data_ptr() for m in self.modules.values() for q in m.parameters()}
            live: dict[int, int] = {}
            current = [0]

            def release(key: int) -> None:
                current[0] -= live.pop(key, 0)

            def pack(t: torch.Tensor) -> torch.Tensor:
                try:
                    storage = t.untyped_storage()
                    key, nbytes = storage.data_ptr(), storage.nbytes()
                except (RuntimeError, NotImplementedError):  # sparse, nested or functional tensors
                    key, nbytes = id(t), t.numel() * t.element_size()
                if key not in params and key not in live:
                    live[key] = nbytes
                    current[0] += nbytes
                    self.saved_bytes = max(self.saved_bytes, current[0])
                    weakref.finalize(t, release, key)
                return t

            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                yield
        self._sync()
        self.step_seconds.append(time.perf_counter() - t0)

    def summary(self) -> dict[str, Any]:
        """The loop's record (what :meth:`close` writes)."""
        params = {k: sum(p.numel() for p in m.parameters()) for k, m in self.modules.items()}
        trainable = sum(p.numel() for m in self.modules.values() for p in m.parameters() if p.requires_grad)
        param_bytes = sum(p.numel() * p.element_size() for m in self.modules.values() for p in m.parameters())
        # the first step carries one-off costs (allocator warm-up, cuDNN autotuning): time from the second
        steady = self.step_seconds[1:] or self.step_seconds
        per_step = float(sorted(steady)[len(steady) // 2]) if steady else None
        activations = float(self.saved_bytes)
        if self.bf16_on_gpu and self.device.type != "cuda":
            activations /= 2
        if self.nominal_batch_size and self.batch_size and self.nominal_batch_size > self.batch_size:
            activations *= self.nominal_batch_size / self.batch_size
        record: dict[str, Any] = {
            "name": self.name,
            "device": str(self.device),
            "batch_size": self.batch_size,
            "total_steps": self.total_steps,
            "start": self.start,
            "steps_run": len(self.step_seconds),
            "seconds_per_step": per_step,
            # a partial batch ran (fewer items than the profile's batch): time scaled to the full batch, as on
            # a CPU where time grows with the items; a GPU's is flatter, so this errs long
            "seconds_per_step_nominal": per_step * self.nominal_batch_size / self.batch_size
            if per_step and self.nominal_batch_size and self.batch_size and self.nominal_batch_size > self.batch_size
            else per_step,
            "first_step_seconds": self.step_seconds[0] if self.step_seconds else None,
            "parameters": params,
            "trainable_parameters": int(trainable),
            "saved_activation_bytes": int(self.saved_bytes),
            "nominal_batch_size": self.nominal_batch_size,
            "estimated_gpu_bytes": int(param_bytes + 3 * 4 * trainable + activations + CUDA_OVERHEAD_BYTES),
            "peak_host_bytes": _peak_host_bytes(),
            "host_rss_at_start_bytes": self.rss_start,
            "peak_cuda_bytes": int(torch.cuda.max_memory_allocated(self.device))
            if self.device.type == "cuda"
            else None,
            "scales_with_data": self.scales_with_data,
            "bf16_on_gpu": self.bf16_on_gpu,
        }
        return record

    def close(self) -> dict[str, Any] | None:
        """Write the record to ``$CTAD_PROBE_DIR/<name>.json`` (a numbered name if taken); None when not probing."""
        if not self._record:
            return None
        out = Path(self._record)
        out.mkdir(parents=True, exist_ok=True)
        path, k = out / f"{self.name}.json", 1
        while True:  # claimed exclusively: loops probed side by side (ctad_core.parallel) never share a name
            try:
                with open(path, "x"):
                    break
            except FileExistsError:
                k += 1
                path = out / f"{self.name}_{k}.json"
        record = self.summary()
        write_json(path, record)
        return record

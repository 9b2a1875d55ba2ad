"""Independent jobs (ensemble members, their restorations) in parallel processes on the CPU.

PyTorch's intra-op threads use two cores only in part on the small networks of the CPU profiles. Measured on the
project's CPU machine (2 cores, torch 2.13.0+cpu; ``benchmarks/bench_parallel.py --steps 60``, 64² FastGAN,
batch 8, ``ngf = ndf = 8``): one member takes 0.166 s per step with 2 threads and 0.260 s with 1, but three
members take 0.186 s per member-step one after another with 2 threads and 0.154 s side by side in three 1-thread
processes, starting them included. In the ``quick`` chain, notebook 02 (3 × 900 steps) took 613 s one after
another and 338–385 s side by side (``docs/results.md``).

On an accelerator (one device), for a single job, or inside a worker, jobs run in this process, one after
another. A worker computes what the same call computes in this process with the same number of threads: the
tests compare the two bit for bit.

Progress: a worker's own bars are off (their lines would interleave); the caller's bar counts the steps the
workers report with :func:`tick`, or the jobs finished. A failing job or an interrupt stops the other workers
at once, and a worker whose caller has died (a kernel restarted) ends itself within a second.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import torch

from ctad_core.frontend import tqdm

MAX_WORKERS = 8
_counter: Any = None  # in a worker: the shared step counter of the caller's bar
_in_worker = False  # in a worker of run_jobs: its jobs run there, one after another (no pools in pools)


def _quota_v2(d: Path) -> float | None:
    try:
        quota, period = (d / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _quota_v1(d: Path) -> float | None:
    try:
        quota_us = int((d / "cpu.cfs_quota_us").read_text())
        period_us = int((d / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def _up_to(root: Path, rel: str) -> list[Path]:
    """``root/rel`` and each of its parents up to ``root``."""
    parts = [p for p in rel.strip("/").split("/") if p and p != ".."]
    return [root.joinpath(*parts[:k]) for k in range(len(parts), -1, -1)]


def cgroup_cpu_limit(
    root: str | os.PathLike = "/sys/fs/cgroup", proc_cgroup: str | os.PathLike = "/proc/self/cgroup"
) -> float | None:
    """The CPU quota of this process's control group in cores (a container's ``--cpus``, a systemd slice's
    ``CPUQuota``), or None if there is none.

    The process's group is read from ``/proc/self/cgroup``; the tightest quota of that group and its parents
    counts: cgroup v2 ``cpu.max`` (``"<quota> <period>"``, ``"max <period>"`` for none), else cgroup v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1 for none) under the ``cpu`` hierarchy. Files that
    cannot be read count as no quota (e.g. macOS, Windows).
    """
    base = Path(root)
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        lines = []
    dirs: list[tuple[Path, Any]] = []
    for line in lines:
        hid, _, rest = line.partition(":")
        controllers, _, rel = rest.partition(":")
        if hid == "0" and not controllers:  # v2, the unified hierarchy
            dirs += [(d, _quota_v2) for d in _up_to(base, rel)]
        elif "cpu" in controllers.split(","):  # v1
            mount = next((base / m for m in (controllers, "cpu", "cpu,cpuacct") if (base / m).is_dir()), None)
            if mount is not None:
                dirs += [(d, _quota_v1) for d in _up_to(mount, rel)]
    if not dirs:  # no /proc/self/cgroup: the root as mounted here (a container's own, under a cgroup namespace)
        dirs = [(base, _quota_v2), (base / "cpu", _quota_v1), (base / "cpu,cpuacct", _quota_v1)]
    limits = [q for q in (read(d) for d, read in dirs) if q is not None]
    return min(limits) if limits else None


def available_cores() -> int:
    """Cores this process may use: its CPU affinity (``os.sched_getaffinity``, else ``os.cpu_count()``), capped
    by a container's CPU quota (:func:`cgroup_cpu_limit`, rounded up), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(1, cores)


def plan_workers(
    n_jobs: int,
    device: torch.device | str = "cpu",
    workers: int | None = None,
    equal_jobs: bool = True,
) -> tuple[int, int]:
    """How many processes for ``n_jobs`` independent jobs, and how many threads each.

    Args:
        n_jobs: the number of jobs.
        device: where the jobs compute; anything but the CPU runs them in this process (one device). Inside a
            worker of :func:`run_jobs` too: its cores are already shared out.
        workers: the number asked for (None: decide; 1: in this process).
        equal_jobs: the jobs cost about the same (ensemble members). Then up to two per core run at once, so
            that three members on two cores finish together instead of in two rounds; otherwise at most one
            per core, taking the next job as one finishes.

    Returns:
        ``(workers, threads)``: ``workers == 1`` means "run here"; ``threads`` is ``torch.set_num_threads`` in
        each worker (the cores shared out, at least 1).

    Raises:
        ValueError: ``n_jobs`` or ``workers`` below 1.
    """
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be at least 1, got {n_jobs}")
    if workers is not None and int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    cores = available_cores()
    if torch.device(device).type != "cpu" or n_jobs == 1 or _in_worker:
        return 1, torch.get_num_threads()
    if workers is None:
        limit = 2 * cores if equal_jobs else cores
        workers = n_jobs if n_jobs <= limit else cores
    workers = max(1, min(int(workers), n_jobs, MAX_WORKERS))
    return workers, max(1, cores // workers)


def tick(n: int = 1) -> None:
    """Advance the caller's progress bar by ``n`` steps (inside a worker of :func:`run_jobs`; elsewhere nothing)."""
    if _counter is not None:
        with _counter.get_lock():
            _counter.value += n


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """End this worker when the process that started it is gone (a kernel restarted or killed): a member would
    otherwise train on and write its checkpoints into the run for nobody."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(every_s)


def _init_worker(threads: int, counter: Any, caller: int) -> None:
    global _counter, _in_worker
    torch.set_num_threads(threads)
    _counter = counter
    _in_worker = True
    # the caller's pid comes from the caller: it may have died while this worker was starting
    threading.Thread(target=_exit_with_parent, args=(caller,), daemon=True, name="ctad-parent-watch").start()


def run_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    workers: int,
    threads: int = 1,
    desc: str = "jobs",
    total_steps: int | None = None,
    progress: bool = True,
    poll_s: float = 0.5,
    isolate: bool = False,
) -> list[Any]:
    """``[fn(*job) for job in jobs]``, in ``workers`` spawned processes of ``threads`` threads each.

    Args:
        fn: a module-level function (it is pickled by name); it must not print bars of its own when run here
            (pass it ``progress=False`` through the job) and may call :func:`tick` per step.
        jobs: the positional arguments of each call (picklable).
        workers: processes (from :func:`plan_workers`); 1 calls ``fn`` here, one job after another (unless
            ``isolate``).
        threads: ``torch.set_num_threads`` in each worker.
        desc: the bar's label.
        total_steps: the steps all jobs report with :func:`tick` together (None: the bar counts jobs).
        progress: show the bar.
        poll_s: seconds between the bar's updates.
        isolate: with ``workers=1``, still one worker process (a job that may be killed for memory or crash
            does not take this process with it).

    Returns:
        The results in the order of ``jobs``.

    Raises:
        The first exception a job raised (the jobs not started are cancelled);
        concurrent.futures.process.BrokenProcessPool: a worker died (e.g. killed for memory: use fewer workers).
    """
    if (workers <= 1 and not isolate) or not jobs:
        return [fn(*job) for job in jobs]
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    bar = tqdm(total=total_steps or len(jobs), desc=desc, disable=not progress)
    pool = ProcessPoolExecutor(max(1, workers), mp_context=ctx, initializer=_init_worker,
                               initargs=(threads, counter, os.getpid()))
    try:
        futures = [pool.submit(fn, *job) for job in jobs]
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=poll_s, return_when=FIRST_EXCEPTION)
            for f in done:
                if f.exception() is not None:
                    raise f.exception()
            n = counter.value if total_steps else len(futures) - len(pending)
            bar.update(max(0, n - bar.n))
        results = [f.result() for f in futures]
    except BaseException:  # a job failed, or the user interrupted: stop the others now, wait for nothing
        procs = list((getattr(pool, "_processes", None) or {}).values())  # shutdown forgets them
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            proc.terminate()
        raise
    finally:
        bar.close()
    pool.shutdown(wait=True)
    return results

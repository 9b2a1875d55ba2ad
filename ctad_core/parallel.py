"""Independent jobs (ensemble members, their restorations) in parallel processes on the CPU.

PyTorch's intra-op threads hardly speed up the small convolutions of the CPU profiles. Measured on the
project's CPU machine (2 cores, torch 2.13.0+cpu; ``benchmarks/bench_parallel.py``), one FastGAN training
step (64², batch 8, ``ngf = ndf = 8``) takes about as long with 2 threads as with 1, while two 1-thread processes
side by side each run at nearly the 1-thread speed. Jobs that do not depend on each other therefore finish
sooner in processes of a few threads each than one after another with every thread.

On an accelerator (one device) or for a single job, jobs run in this process, one after another, exactly as
before. A worker computes what the same call computes in this process with the same number of threads: the
test compares the two bit for bit.

Progress: a worker's own bars are off (their lines would interleave); the caller's bar counts the steps the
workers report with :func:`tick`, or the jobs finished.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from typing import Any

import torch

from ctad_core.frontend import tqdm

MAX_WORKERS = 8
_counter: Any = None  # in a worker: the shared step counter of the caller's bar


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def plan_workers(
    n_jobs: int,
    device: torch.device | str = "cpu",
    workers: int | None = None,
    equal_jobs: bool = True,
) -> tuple[int, int]:
    """How many processes for ``n_jobs`` independent jobs, and how many threads each.

    Args:
        n_jobs: the number of jobs.
        device: where the jobs compute; anything but the CPU runs them in this process (one device).
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
    if torch.device(device).type != "cpu" or n_jobs == 1:
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


def _init_worker(threads: int, counter: Any) -> None:
    global _counter
    torch.set_num_threads(threads)
    _counter = counter


def run_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    workers: int,
    threads: int = 1,
    desc: str = "jobs",
    total_steps: int | None = None,
    progress: bool = True,
    poll_s: float = 0.5,
) -> list[Any]:
    """``[fn(*job) for job in jobs]``, in ``workers`` spawned processes of ``threads`` threads each.

    Args:
        fn: a module-level function (it is pickled by name); it must not print bars of its own when run here
            (pass it ``progress=False`` through the job) and may call :func:`tick` per step.
        jobs: the positional arguments of each call (picklable).
        workers: processes (from :func:`plan_workers`); 1 calls ``fn`` here, one job after another.
        threads: ``torch.set_num_threads`` in each worker.
        desc: the bar's label.
        total_steps: the steps all jobs report with :func:`tick` together (None: the bar counts jobs).
        progress: show the bar.
        poll_s: seconds between the bar's updates.

    Returns:
        The results in the order of ``jobs``.

    Raises:
        The first exception a job raised (the jobs not started are cancelled);
        concurrent.futures.process.BrokenProcessPool: a worker died (e.g. killed for memory: use fewer workers).
    """
    if workers <= 1 or len(jobs) <= 1:
        return [fn(*job) for job in jobs]
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    bar = tqdm(total=total_steps or len(jobs), desc=desc, disable=not progress)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(threads, counter)) as pool:
        futures = [pool.submit(fn, *job) for job in jobs]
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=poll_s, return_when=FIRST_EXCEPTION)
                for f in done:
                    if f.exception() is not None:
                        raise f.exception()
                n = counter.value if total_steps else len(futures) - len(pending)
                bar.update(max(0, n - bar.n))
        except BaseException:  # a job failed, or the user interrupted: stop the others now
            for f in futures:
                f.cancel()
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            raise
        finally:
            bar.close()
    return [f.result() for f in futures]

"""ctad_core.parallel: the plan, the pool, and members trained or restored side by side computing exactly what
they compute one after another with the same number of threads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ctad_core import parallel
from ctad_core.methods.fastgan import train as gan2d
from ctad_core.methods.fastgan.model import EncoderConfig, FastGANConfig
from ctad_core.train import load_checkpoint


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(parallel, "available_cores", lambda: 2)


def test_plan_on_two_cores(two_cores):
    assert parallel.plan_workers(3, "cpu") == (3, 1)  # three equal members finish together, not in two rounds
    assert parallel.plan_workers(2, "cpu") == (2, 1)
    assert parallel.plan_workers(5, "cpu") == (2, 1)  # more than two per core: one per core, queued
    assert parallel.plan_workers(3, "cpu", equal_jobs=False) == (2, 1)
    assert parallel.plan_workers(12, "cpu", equal_jobs=False) == (2, 1)
    assert parallel.plan_workers(3, "cpu", workers=1)[0] == 1
    assert parallel.plan_workers(3, "cpu", workers=20) == (3, 1)  # never more than the jobs
    assert parallel.plan_workers(1, "cpu")[0] == 1
    assert parallel.plan_workers(3, "cuda")[0] == 1  # one device: one after another, here
    assert parallel.plan_workers(3, "meta")[0] == 1


def test_plan_shares_cores(monkeypatch):
    monkeypatch.setattr(parallel, "available_cores", lambda: 16)
    assert parallel.plan_workers(3, "cpu") == (3, 5)
    assert parallel.plan_workers(40, "cpu") == (parallel.MAX_WORKERS, 2)


def test_cgroup_quota(tmp_path, monkeypatch):
    """The tightest quota of this process's group and its parents, cgroup v2 (cpu.max) and v1 (cfs quota and
    period), as container runtimes and systemd write them."""
    v2 = tmp_path / "v2"
    (v2 / "system.slice" / "job.scope").mkdir(parents=True)
    proc = tmp_path / "proc_cgroup"
    proc.write_text("0::/system.slice/job.scope\n")
    assert parallel.cgroup_cpu_limit(v2, proc) is None  # no cpu.max anywhere
    (v2 / "system.slice" / "cpu.max").write_text("150000 100000\n")
    (v2 / "system.slice" / "job.scope" / "cpu.max").write_text("max 100000\n")
    assert parallel.cgroup_cpu_limit(v2, proc) == 1.5  # the parent's quota binds the child
    (v2 / "system.slice" / "job.scope" / "cpu.max").write_text("50000 100000\n")
    assert parallel.cgroup_cpu_limit(v2, proc) == 0.5
    (v2 / "cpu.max").write_text("400000 100000\n")
    assert parallel.cgroup_cpu_limit(v2, tmp_path / "no_proc_file") == 4.0  # only the root, as mounted
    v1 = tmp_path / "v1"
    (v1 / "cpu,cpuacct" / "docker" / "abc").mkdir(parents=True)
    proc.write_text("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    (v1 / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us").write_text("100000\n")
    assert parallel.cgroup_cpu_limit(v1, proc) == 3.0
    (v1 / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("-1\n")
    assert parallel.cgroup_cpu_limit(v1, proc) is None
    monkeypatch.setattr(parallel, "cgroup_cpu_limit", lambda: 1.5)
    assert parallel.available_cores() == min(2, len(parallel.os.sched_getaffinity(0)))  # rounded up, not above affinity
    monkeypatch.setattr(parallel, "cgroup_cpu_limit", lambda: 0.2)
    assert parallel.available_cores() == 1


@pytest.mark.parametrize("bad", [dict(n_jobs=0), dict(n_jobs=2, workers=0), dict(n_jobs=2, workers=-1)])
def test_plan_refuses(bad):
    with pytest.raises(ValueError, match="at least 1"):
        parallel.plan_workers(**bad)


def test_run_jobs_order_and_here():
    jobs = [(n,) for n in (5, 3, 7, 1)]
    want = [math.factorial(n) for n in (5, 3, 7, 1)]
    assert parallel.run_jobs(math.factorial, jobs, workers=2, progress=False) == want
    assert parallel.run_jobs(math.factorial, jobs, workers=1, progress=False) == want


def test_run_jobs_raises_the_jobs_error():
    with pytest.raises(ValueError, match="not defined for negative"):
        parallel.run_jobs(math.factorial, [(3,), (-1,)], workers=2, progress=False)


def test_a_failing_job_stops_the_others_at_once():
    """time.sleep(-1) raises at once; the 60-s sleeper beside it is terminated, not waited for."""
    import time

    t0 = time.monotonic()
    with pytest.raises(ValueError, match="non-negative"):
        parallel.run_jobs(time.sleep, [(60,), (-1,)], workers=2, progress=False, poll_s=0.05)
    assert time.monotonic() - t0 < 30


def test_workers_end_with_their_caller(tmp_path):
    """A caller killed outright (a kernel restarted): its workers end themselves, they do not train on."""
    import signal
    import subprocess
    import sys
    import time

    import psutil

    code = ("import time\nfrom ctad_core import parallel\n"
            "parallel.run_jobs(time.sleep, [(120,), (120,)], workers=2, progress=False)\n")
    caller = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        workers = []
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.2)
            workers = [c for c in psutil.Process(caller.pid).children() if "resource_tracker" not in " ".join(
                c.cmdline())]
        assert len(workers) >= 2, "the workers never started"
        caller.send_signal(signal.SIGKILL)
        caller.wait(timeout=10)
        gone, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, f"workers outlived their caller: {[p.pid for p in alive]}"
    finally:
        if caller.poll() is None:
            caller.kill()


def test_isolated_and_no_pools_in_pools():
    import os

    assert parallel.run_jobs(os.getpid, [()], workers=1, progress=False) == [os.getpid()]
    assert parallel.run_jobs(os.getpid, [()], workers=1, progress=False, isolate=True) != [os.getpid()]
    inside = parallel.run_jobs(parallel.plan_workers, [(3, "cpu"), (4, "cpu")], workers=2, progress=False)
    assert [w for w, _ in inside] == [1, 1]  # a worker runs its own jobs one after another


def test_tick_reaches_the_bar(capsys):
    """Workers' ticks add up in the caller's bar (text bar on stderr when headless)."""
    parallel.run_jobs(parallel.tick, [(4,), (6,)], workers=2, desc="ticks", total_steps=10, poll_s=0.05)
    err = capsys.readouterr().err
    assert "ticks: 100%" in err and "10/10" in err
    parallel.tick(3)  # in the caller: nothing to count, nothing raised


def _slices(n=24, size=64, seed=0):
    g = np.random.default_rng(seed)
    return np.clip(g.normal(0, 0.5, (n, size, size)), -1, 1).astype(np.float32)


def _same_weights(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_members_side_by_side_equal_one_after_another(tmp_path):
    """Two FastGAN members and their encoders, trained in two worker processes and here, one after another,
    with the workers' thread count: the same weights, bit for bit."""
    cfg = FastGANConfig(image_size=64, nz=8, ngf=2, ndf=2, steps=3, batch_size=4, sample_every=3, ckpt_every=3)
    ecfg = EncoderConfig(image_size=64, nz=8, width=4, steps=2, batch_size=4, ckpt_every=2)
    x = _slices()
    workers, threads = parallel.plan_workers(2, "cpu", workers=2)
    assert workers == 2
    par = gan2d.train_fastgan_ensemble(x, cfg, tmp_path / "par", 2, "cpu", seed=3, progress=False, workers=2)
    gan2d.train_encoder_ensemble(x, tmp_path / "par", ecfg, tmp_path / "epar", 2, "cpu", 3, progress=False,
                                 workers=2)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        seq = gan2d.train_fastgan_ensemble(x, cfg, tmp_path / "seq", 2, "cpu", seed=3, progress=False, workers=1)
        gan2d.train_encoder_ensemble(x, tmp_path / "seq", ecfg, tmp_path / "eseq", 2, "cpu", 3, progress=False,
                                     workers=1)
    finally:
        torch.set_num_threads(before)
    assert [r.out_dir.name for r in par] == [r.out_dir.name for r in seq] == ["member_0", "member_1"]
    assert [r.steps_run for r in par] == [3, 3]
    for k in range(2):
        a, b = (load_checkpoint(tmp_path / d / f"member_{k}" / "checkpoint.pt") for d in ("par", "seq"))
        assert a["seed"] == b["seed"] == gan2d.member_seed(3, k)
        assert _same_weights(a["G_ema"], b["G_ema"]) and _same_weights(a["D"], b["D"])
        ea, eb = (load_checkpoint(tmp_path / d / f"member_{k}" / "checkpoint.pt") for d in ("epar", "eseq"))
        assert _same_weights(ea["E"], eb["E"])
    m0, m1 = (load_checkpoint(tmp_path / "par" / f"member_{k}" / "checkpoint.pt")["G_ema"] for k in (0, 1))
    assert not _same_weights(m0, m1)  # two members, not one twice

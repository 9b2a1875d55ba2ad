"""DDP: the volumetric trainers under ``torchrun`` (2 CPU processes, gloo) end with identical replicas."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from ctad_core import distributed as ddp

sys.path.insert(0, str(Path(__file__).parent))
from _volumetric_fake import make_fake_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_single_process_defaults(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = ddp.init_from_env("cpu")
    assert info.world_size == 1 and info.is_main and not info.enabled
    m = torch.nn.Linear(2, 2)
    assert ddp.wrap(m, info) is m and ddp.unwrap(m) is m
    loader = ddp.make_loader(TensorDataset(torch.arange(5.0)), 8, info, seed=1)
    assert loader.batch_size == 5  # capped by the data set
    ddp.set_epoch(loader, 0)
    a = torch.cat([b[0] for b in loader])
    ddp.set_epoch(loader, 0)
    assert torch.equal(a, torch.cat([b[0] for b in loader]))  # the same order for the same epoch


def test_sharded_loader():
    info = ddp.DistInfo(rank=1, world_size=2)
    loader = ddp.make_loader(TensorDataset(torch.arange(6.0)), 2, info, seed=0, drop_last=False)
    assert sum(len(b[0]) for b in loader) == 3  # rank 1's half of the data


def test_torchrun_two_cpu_ranks_agree(tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to the interpreter")
    run = make_fake_run(tmp_path, size=16, n_train=4, n_val=3, n_test=3)
    tiny = {
        "fanogan_latent_dim": 8, "fanogan_base_channels": 2, "fanogan_max_channels": 8, "fanogan_gan_steps": 2,
        "fanogan_n_critic": 2, "fanogan_encoder_steps": 2, "fanogan_finetune_steps": 2,
        "ctfsh_channels": "[2,4]", "ctfsh_latent_dim": 6, "ctfsh_steps": 3, "ctfsh_win_size": 3,
        "resae_channels": "[2,2,4,4]", "resae_latent_dim": 8, "resae_steps": 3,
        "fanogan_downsample": 1, "ctfsh_downsample": 1, "resae_downsample": 1,
    }
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "ctad_core.methods", "train",
           "--run-dir", str(run), "--quiet", "--rank-digest", "--evaluate"]
    methods = ("fanogan3d", "ctfsh_ae_acai", "resae")
    for m in methods:
        cmd += ["--method", m]
    for k, v in tiny.items():
        cmd += ["--set", f"{k}={v}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    # own process group: on a timeout the workers go too, not only the torchrun launcher
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail("torchrun timed out:\n" + stdout[-2000:] + stderr[-2000:])
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    out = run / "volumetric"
    for m in methods:
        d = [json.loads((out / "ddp" / f"{m}.rank{r}.json").read_text()) for r in (0, 1)]
        assert d[0]["world_size"] == 2
        assert d[0]["digest"] == d[1]["digest"], m  # parameters and BatchNorm buffers identical
        assert (out / "models" / f"{m}.pt").is_file() and (out / "methods" / f"{m}.npz").is_file()
    # the model written by rank 0 is the replica both ranks hold
    from ctad_core.methods import load_trained, method_spec
    from ctad_core.methods.inputs import VolumeCache
    from ctad_core.run import Run

    spec = method_spec("resae", VolumeCache(Run(run)).shape, {k: (json.loads(v) if isinstance(v, str) else v) for k, v in tiny.items()})
    tm = load_trained(out / "models" / "resae.pt", spec)
    assert ddp.parameter_digest(tm.model) == json.loads((out / "ddp" / "resae.rank1.json").read_text())["digest"]

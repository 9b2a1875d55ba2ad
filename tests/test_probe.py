"""Loop probes (ctad_core.probe): the dry-run step cap, timings and the memory accounting by hand."""

from __future__ import annotations

import json

import pytest
import torch

from ctad_core import probe as P


def test_outside_a_dry_run_the_probe_changes_nothing(monkeypatch, tmp_path):
    monkeypatch.delenv(P.DRY_STEPS_ENV, raising=False)
    monkeypatch.delenv(P.PROBE_DIR_ENV, raising=False)
    pr = P.LoopProbe("x", 50, start=7)
    assert pr.stop == 50
    with pr.step():
        pass
    assert pr.close() is None and not list(tmp_path.iterdir())


@pytest.mark.parametrize("value", ["0", "-3", "two", "1.5"])
def test_bad_dry_run_step_counts_are_refused(monkeypatch, value):
    monkeypatch.setenv(P.DRY_STEPS_ENV, value)
    with pytest.raises(ValueError, match=P.DRY_STEPS_ENV):
        P.dry_run_steps()


def test_dry_run_caps_from_the_resume_point_and_never_past_the_total(monkeypatch):
    monkeypatch.setenv(P.DRY_STEPS_ENV, "3")
    assert P.LoopProbe("a", 1000, start=10).stop == 13
    assert P.LoopProbe("b", 11, start=10).stop == 11


def test_record_counts_saved_activations_and_parameters_by_hand(monkeypatch, tmp_path):
    """a * b saves both factors for backward (2 × 100 float32 = 800 B); sum() saves no tensor.
    Linear(10, 5): 55 parameters; estimate = 4 B × 55 (weights) + 12 B × 55 (grad + Adam m, v)
    + activations + the CUDA overhead."""
    monkeypatch.setenv(P.PROBE_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(P.DRY_STEPS_ENV, "2")
    net = torch.nn.Linear(10, 5)
    pr = P.LoopProbe("mul", 100, modules={"net": net}, batch_size=4)
    a = torch.randn(100, requires_grad=True)
    b = torch.randn(100, requires_grad=True)
    step = 0
    while step < pr.stop:
        with pr.step():
            (a * b).sum().backward()
        step += 1
    rec = pr.close()
    assert step == 2 and rec["steps_run"] == 2
    assert rec["saved_activation_bytes"] == 800
    assert rec["parameters"] == {"net": 55} and rec["trainable_parameters"] == 55
    assert rec["estimated_gpu_bytes"] == 4 * 55 + 12 * 55 + 800 + P.CUDA_OVERHEAD_BYTES
    assert rec["seconds_per_step"] == pytest.approx(pr.step_seconds[1])
    assert json.loads((tmp_path / "mul.json").read_text())["total_steps"] == 100
    # a second loop of the same name gets its own record
    P.LoopProbe("mul", 10).close()
    assert (tmp_path / "mul_2.json").is_file()


def test_frozen_networks_count_weights_only_and_bf16_halves_float32_activations(monkeypatch, tmp_path):
    monkeypatch.setenv(P.PROBE_DIR_ENV, str(tmp_path))
    net = torch.nn.Linear(10, 5).requires_grad_(False)
    pr = P.LoopProbe("frozen", 5, modules={"G": net}, bf16_on_gpu=True)
    a = torch.randn(100, requires_grad=True)
    with pr.step():
        (a * a).sum().backward()  # saves a once (the same storage twice)
    rec = pr.summary()
    assert rec["saved_activation_bytes"] == 400 and rec["trainable_parameters"] == 0
    assert rec["estimated_gpu_bytes"] == 4 * 55 + 400 // 2 + P.CUDA_OVERHEAD_BYTES


def test_max_batch_caps_loaders_only_inside_a_dry_run(monkeypatch):
    from torch.utils.data import TensorDataset

    from ctad_core import distributed as ddp

    ds, info = TensorDataset(torch.zeros(10, 1)), ddp.DistInfo(device=torch.device("cpu"))
    monkeypatch.delenv(P.DRY_STEPS_ENV, raising=False)
    monkeypatch.setenv(P.MAX_BATCH_ENV, "2")
    assert P.dry_run_max_batch() is None and P.cap_batch(4) == 4  # a real run is never capped
    assert ddp.make_loader(ds, 4, info).batch_size == 4
    monkeypatch.setenv(P.DRY_STEPS_ENV, "2")
    assert P.cap_batch(4) == 2 and P.cap_batch(1) == 1
    assert ddp.make_loader(ds, 4, info).batch_size == 2
    assert ddp.make_loader(TensorDataset(torch.zeros(1, 1)), 4, info).batch_size == 1  # data still caps
    for bad in ("0", "x"):
        monkeypatch.setenv(P.MAX_BATCH_ENV, bad)
        with pytest.raises(ValueError, match=P.MAX_BATCH_ENV):
            P.cap_batch(4)


def test_a_capped_batch_is_projected_to_the_profile_batch(monkeypatch, tmp_path):
    """Saved activations grow with the batch: measured at 2 items, the estimate is scaled to the nominal 4."""
    monkeypatch.setenv(P.PROBE_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(P.DRY_STEPS_ENV, "2")
    monkeypatch.setenv(P.MAX_BATCH_ENV, "2")
    net = torch.nn.Linear(10, 5, bias=False)
    pr = P.LoopProbe("capped", 100, modules={"net": net}, batch_size=P.cap_batch(4), nominal_batch_size=4)
    for _ in range(pr.stop):
        with pr.step():
            net(torch.randn(2, 10)).square().sum().backward()  # saves the input (80 B) and the output (40 B)
    rec = pr.close()
    assert rec["batch_size"] == 2 and rec["nominal_batch_size"] == 4
    assert rec["saved_activation_bytes"] == 120
    assert rec["estimated_gpu_bytes"] == 16 * 50 + 2 * 120 + P.CUDA_OVERHEAD_BYTES
    assert rec["seconds_per_step_nominal"] == pytest.approx(2 * rec["seconds_per_step"])


def test_max_batch_needs_a_dry_run(tmp_path):
    from ctad_core.workbook import main

    run = ["run", "--profile", "smoke", "--run-dir", str(tmp_path / "r")]
    for bad in (["--max-batch", "2"], ["--dry-run", "--max-batch", "0"]):
        with pytest.raises(SystemExit, match="--max-batch"):
            main([*run, *bad])
    assert not (tmp_path / "r").exists()


def test_release_host_memory_returns_and_the_record_notes_the_rss_at_start(monkeypatch, tmp_path):
    monkeypatch.setenv(P.PROBE_DIR_ENV, str(tmp_path))
    rss = P.host_rss_bytes()
    assert rss is None or rss > 0
    big = torch.ones(64 * 2**20 // 4)  # 64 MiB
    del big
    P.release_host_memory()  # must not raise, whatever the C library
    rec = P.LoopProbe("r", 3).summary()
    assert "host_rss_at_start_bytes" in rec
    if rss is not None:  # Linux: a positive size of the same order as this process
        assert 0 < rec["host_rss_at_start_bytes"] < 100 * rss

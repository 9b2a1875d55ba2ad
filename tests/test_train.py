"""Checkpoints: atomic writes, weights_only loading, resume of models, optimisers and random states."""

from __future__ import annotations

import pickle

import pytest
import torch

from ctad_core.train import EMA, load_checkpoint, restore_training, save_checkpoint


class NotAWeight:
    """An arbitrary object: ``weights_only=True`` must refuse to unpickle it."""


def _step(model, opt, gen):
    x = torch.randn(4, 3, generator=gen)
    loss = model(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_restore_training_resumes_exactly(tmp_path):
    path = tmp_path / "ck.pt"
    assert restore_training(path, {}) is None  # nothing to resume yet

    def run(n_steps, resume_after=None):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        opt = torch.optim.Adam(model.parameters(), lr=0.1)
        ema = EMA(model, decay=0.9)
        gen = torch.Generator().manual_seed(1)
        start = 0
        ck = restore_training(path, {"model": model, "opt": opt, "ema": ema}, gen) if resume_after else None
        if ck is not None:
            start = ck["step"]
        for s in range(start, n_steps):
            _step(model, opt, gen)
            ema.update(model)
            if resume_after is not None and s + 1 == resume_after and ck is None:
                save_checkpoint(path, {"model": model.state_dict(), "opt": opt.state_dict(), "ema": ema.state_dict(),
                                       "gen_state": gen.get_state(), "torch_rng": torch.get_rng_state(), "step": s + 1})
                return None
        return model.state_dict(), ema.state_dict()

    full = run(6)
    assert run(6, resume_after=3) is None  # first half, then "crash"
    resumed = run(6, resume_after=3)
    for a, b in zip(full, resumed):
        for k in a:
            torch.testing.assert_close(a[k], b[k])


def test_checkpoint_is_atomic_and_weights_only(tmp_path):
    path = tmp_path / "sub" / "ck.pt"
    save_checkpoint(path, {"w": torch.ones(2), "step": 3, "cfg": {"lr": 0.1}})
    assert [p.name for p in path.parent.iterdir()] == ["ck.pt"]  # no temp file left behind
    assert load_checkpoint(path)["step"] == 3
    torch.save({"obj": NotAWeight()}, tmp_path / "bad.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_checkpoint(tmp_path / "bad.pt")  # weights_only refuses arbitrary objects
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def _phase(tmp_path, steps: int, resume: bool = True):
    """One PhaseRunner phase of a linear model on noise drawn from the global RNG (restored on resume)."""
    from ctad_core.distributed import DistInfo
    from ctad_core.train import PhaseRunner

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)

    def step_fn(step: int) -> dict[str, float]:
        loss = model(torch.randn(4, 3)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    runner = PhaseRunner(tmp_path, DistInfo(device=torch.device("cpu")), ckpt_every=2, resume=resume, progress=False)
    runner.run("fit", steps, {"model": model}, {"opt": opt}, step_fn, "fit")
    return model, runner.history["fit"]


def test_phase_runner_resumes_exactly(tmp_path):
    full_model, full_hist = _phase(tmp_path / "a", 4)
    _phase(tmp_path / "b", 2)  # interrupted after 2 steps (its checkpoint holds step 2)
    assert load_checkpoint(tmp_path / "b" / "fit.pt")["step"] == 2
    model, hist = _phase(tmp_path / "b", 4)  # resumed: steps 2 and 3 only, history carried over
    assert [h["loss"] for h in hist] == [h["loss"] for h in full_hist] and len(hist) == 4
    for a, b in zip(full_model.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    _, fresh = _phase(tmp_path / "b", 4, resume=False)  # resume off: starts again from step 0
    assert len(fresh) == 4 and fresh[0]["loss"] == full_hist[0]["loss"]

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

"""ctad_core.utils.atomic_write: a full disk is named as such, other failures propagate, nothing is left behind."""

from __future__ import annotations

import errno
import shutil
from collections import namedtuple

import pytest
import torch

from ctad_core import utils
from ctad_core.train import save_checkpoint

Usage = namedtuple("Usage", "total used free")


def _fail_like_torch(p):
    p.write_bytes(b"x" * 1000)
    raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 246073472 vs 246073360")


def test_a_write_that_fails_on_a_full_disk_is_reported_as_enospc_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 10, 10))
    dest = tmp_path / "models" / "ae.pt"
    with pytest.raises(OSError) as info:
        utils.atomic_write(dest, _fail_like_torch)
    assert info.value.errno == errno.ENOSPC
    assert str(dest) in str(info.value) and "unexpected pos" in str(info.value)
    assert not dest.exists() and list(dest.parent.iterdir()) == []  # no truncated file, no temp file


def test_with_room_on_the_disk_the_writer_s_own_error_propagates(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**12, 0, 10**12))
    with pytest.raises(RuntimeError, match="unexpected pos"):
        utils.atomic_write(tmp_path / "ae.pt", _fail_like_torch)
    assert list(tmp_path.iterdir()) == []


def test_an_enospc_from_the_writer_is_reported_with_the_path_even_if_space_came_back(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**12, 0, 10**12))

    def enospc(p):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="while writing .*ckpt.pt"):
        utils.atomic_write(tmp_path / "ckpt.pt", enospc)


def test_a_checkpoint_still_round_trips(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", {"model": {"w": torch.ones(3)}, "step": 7})
    state = torch.load(path, weights_only=True)
    assert state["step"] == 7 and torch.equal(state["model"]["w"], torch.ones(3))

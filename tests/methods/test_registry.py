"""The registry: every registered name builds; unknown names fail clearly; the defaults have one source."""

from __future__ import annotations

import pytest
import torch

from ctad_core import methods as M
from ctad_core.methods.spec import default_params

SHAPE = (16, 16, 16)
TINY = {
    "fanogan_latent_dim": 8,
    "fanogan_base_channels": 2,
    "fanogan_max_channels": 8,
    "fanogan_downsample": 1,
    "ctfsh_channels": [2, 4],
    "ctfsh_latent_dim": 6,
    "ctfsh_downsample": 1,
    "resae_channels": [2, 2, 4, 4],
    "resae_latent_dim": 8,
    "resae_spatial_channels": 2,
    "resae_downsample": 1,
}


def test_names_are_unique_and_carry_their_folder():
    names = M.method_names()
    assert len(names) == len(set(names)) == 26  # 18 seed methods, 8 baselines (issue 11)
    for n, d in M.REGISTRY.items():
        assert (
            d.name == n
            and n.startswith(d.family)
            and d.level in ("2d", "3d")
            and d.model_dims in ("2d", "3d")
        )
    assert M.get("fanogan2d").level == "3d" and M.get("fanogan2d").model_dims == "2d"
    assert M.get("fanogan2d").counterpart == "fanogan3d"
    assert not any(n.startswith("luo") for n in names)


@pytest.mark.parametrize("name", [n for n, d in M.REGISTRY.items() if d.family in M.FAMILIES])
def test_every_volumetric_name_builds_and_runs_forward(name):
    shape = SHAPE[1:] if M.get(name).level == "2d" else SHAPE  # the 2D baselines take slices
    spec = M.method_spec(name, shape, TINY)
    assert spec.name == name and spec.family == M.get(name).family
    family = M.FAMILIES[spec.family]
    model, critic = family.build(spec)
    model.eval()
    x = torch.zeros(2, 1, *spec.model.image_shape)
    out = model.reconstruct(x) if hasattr(model, "reconstruct") else model(x)
    rec = out[0] if isinstance(out, tuple) else out
    assert rec.shape == x.shape
    if spec.family == "ctfsh":
        assert (critic is not None) == ("_acai" in name)
    else:
        assert critic is None


def test_fastgan_names_take_notebook_04_defaults():
    p = M.method_params("fastgan_restoration")
    assert p == default_params("04_latent_restoration")
    assert p["restoration_init"] in ("zero", "encoder") and "closing_radius" in p


def test_unknown_name_lists_the_registered_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown method 'luo_resae'.*fanogan3d.*resae_spatial"):
        M.get("luo_resae")
    with pytest.raises(ValueError, match="registered methods"):
        M.run_method("nope", tmp_path)
    with pytest.raises(ValueError, match="no volumetric spec"):
        M.method_spec("fastgan_encoder", SHAPE)


def test_defaults_come_from_the_parameters_cell_and_params_override():
    nb = default_params("05_volumetric_3d")
    spec = M.method_spec("resae", (64, 64, 64))
    assert spec.train.steps == nb["resae_steps"] and list(spec.model.channels) == nb["resae_channels"]
    spec = M.method_spec("resae", (64, 64, 64), {"resae_steps": 7})
    assert spec.train.steps == 7 and spec.post["min_size"] == nb["resae_min_size"]
    with pytest.raises(ValueError, match="does not divide"):
        M.method_spec("resae", (30, 30, 30), {"resae_downsample": 4})


@pytest.mark.parametrize("name", [n for n, d in M.REGISTRY.items() if d.family == "fastgan"])
def test_fastgan_names_need_the_trained_ensembles(name, tmp_path):
    with pytest.raises(FileNotFoundError, match="gan/ensemble.json not found: run notebook 02_gan_training"):
        M.run_method(name, tmp_path, progress=False)
    with pytest.raises(ValueError, match="restoration_init must be one of"):
        M.run_method(name, tmp_path, {"restoration_init": "random"}, progress=False)

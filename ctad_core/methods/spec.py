"""A method run's full definition (:class:`MethodSpec`) and the flat parameters it is built from.

Parameters are the notebook's (``05_volumetric_3d`` for the 3D methods, ``04_latent_restoration`` for seed
000): their defaults have one source, the notebook's parameters cell (:func:`default_params`), with a
profile YAML (``parameters/<profile>/<notebook>.yaml``) and the caller's own values on top. Each method's
parameters carry its folder's name as prefix (``fanogan_*``, ``ctfsh_*``, ``resae_*``).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class MethodSpec:
    """Everything that defines one method run: family, model and training configs, input preparation."""

    name: str
    family: str
    model: Any  # the family's model config (FAnoGANConfig, CTFSHConfig, ResAEConfig)
    train: Any  # the family's training config (FAnoGANTrain, CTFSHTrain, ResAETrain)
    window: str | tuple[float, float]
    skull_strip: bool
    mid_fraction: float | None = None  # fanogan2d: the central share of axial slices
    downsample: int = 1  # the model runs on volumes average-pooled by this factor (maps come back upsampled)
    post: dict[str, Any] = field(default_factory=dict)  # resae: median / erode / min_size
    amp: bool = True
    ckpt_every: int = 100

    @property
    def spatial_dims(self) -> int:
        return len(self.model.image_shape)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (for checkpoints and ``MethodResults.info``)."""
        return {
            "name": self.name,
            "family": self.family,
            "model": self.model.to_dict(),
            "train": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.train).items()},
            "window": list(self.window) if isinstance(self.window, tuple) else self.window,
            "skull_strip": self.skull_strip,
            "mid_fraction": self.mid_fraction,
            "downsample": self.downsample,
            "post": dict(self.post),
            "amp": self.amp,
        }


@functools.cache
def _notebook_defaults(notebook: str) -> tuple[tuple[str, Any], ...]:
    from ctad_core.workbook import notebook_parameters, repo_root

    path = repo_root() / "notebooks" / f"{notebook}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the notebook whose parameters cell holds the defaults is missing")
    return tuple(notebook_parameters(path).items())


def default_params(notebook: str) -> dict[str, Any]:
    """The parameters cell of ``notebooks/<notebook>.ipynb``: the one source of every default.

    Args:
        notebook: e.g. ``"05_volumetric_3d"``.

    Raises:
        FileNotFoundError: naming the notebook when it is not there.
    """
    return {k: (list(v) if isinstance(v, list) else v) for k, v in _notebook_defaults(notebook)}


def pooled_shape(shape: tuple[int, ...], p: dict[str, Any], key: str) -> tuple[int, tuple[int, ...]]:
    """The pooling factor ``p[key]`` and the shape a model sees (``shape`` divided by it).

    Raises:
        ValueError: if the factor is < 1 or does not divide every side.
    """
    f = int(p[key])
    if f < 1 or any(s % f for s in shape):
        raise ValueError(f"{key}={f} does not divide the volume shape {shape}")
    return f, tuple(s // f for s in shape)


def window_param(w: Any) -> str | tuple[float, float]:
    """A window parameter: a preset name, or (lower, upper) HU as floats."""
    return w if isinstance(w, str) else (float(w[0]), float(w[1]))

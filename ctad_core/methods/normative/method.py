"""The voxel-wise normative model as a registered method: ``normative`` (volumes) and ``normative2d`` (slices).

Parameters ``normative_window`` and ``normative_floor`` (notebook 05 for the volumes, notebook 04 for the
slices). The "training" fits :class:`~ctad_core.methods.normative.model.NormativeModel` on the healthy
training inputs (skull-stripped, on the data grid: the phantoms are aligned, real scans through the
preprocessing's atlas alignment); the signed map is z = (x − median) / spread, so ``maps`` = |z| and
``maps_haemorrhage`` = max(z, 0) (brighter than healthy: haemorrhage). The 2D model is per pixel over every
training slice (the slices are aligned in-plane; their axial levels are pooled). Scan score: the mean of the
top 1 % of |z| inside the brain. No segmentation step beyond the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ctad_core.methods.base import Family, NoTraining, top_fraction_postprocess
from ctad_core.methods.normative.model import NormativeModel
from ctad_core.methods.spec import MethodSpec, window_param


@dataclass
class NormativeConfig:
    """The grid the model is fitted on and its spread floor (model-range units)."""

    image_shape: tuple[int, ...]
    floor: float = 0.02

    def to_dict(self) -> dict[str, Any]:
        return {"image_shape": list(self.image_shape), "floor": self.floor}


class NormativeNet(nn.Module):
    """The fitted median and spread as buffers (so the model is saved and loaded like any network).

    ``forward`` returns the healthy centre, the median, for every item: the method's "reconstruction".
    """

    def __init__(self, cfg: NormativeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("median", torch.zeros(cfg.image_shape))
        self.register_buffer("spread", torch.ones(cfg.image_shape))
        self.register_buffer("n_train", torch.zeros((), dtype=torch.int64))

    def model(self) -> NormativeModel:
        """The fitted :class:`NormativeModel`."""
        return NormativeModel(
            self.median.cpu().numpy(), self.spread.cpu().numpy(), self.cfg.floor, int(self.n_train)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.median.to(x.dtype).expand_as(x[:, 0]).unsqueeze(1)


def normative_spec(name: str, shape: tuple[int, ...], p: dict[str, Any]) -> MethodSpec:
    """``normative`` / ``normative2d`` from ``normative_window`` and ``normative_floor``."""
    cfg = NormativeConfig(tuple(int(s) for s in shape), float(p["normative_floor"]))
    return MethodSpec(
        name,
        "normative",
        cfg,
        NoTraining(),
        window_param(p["normative_window"]),
        True,
        amp=False,
        ckpt_every=1,
    )


def fit(
    model: NormativeNet, x: np.ndarray, spec: MethodSpec, runner: Any, seed: int = 0, critic: Any = None
) -> None:
    """Fit median and spread on (N, *spatial) healthy inputs (every rank fits the same, whole set)."""
    nm = NormativeModel.fit(x, floor=spec.model.floor)
    model.median.copy_(torch.from_numpy(nm.median))
    model.spread.copy_(torch.from_numpy(nm.spread))
    model.n_train.fill_(nm.n_train)
    model.to(runner.info.device)


def infer(tm: Any, xb: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """The median as reconstruction; score = mean |z| (replaced by the top-1 % score in post-processing)."""
    rec = tm.model(xb).float()
    return rec, ((xb - rec).abs() / tm.model.spread).flatten(1).mean(1), {}


def residual(tm: Any, x: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """The signed deviation z = (x − median) / spread (:meth:`NormativeModel.deviation`)."""
    return tm.model.model().deviation(x)


FAMILY = Family(
    name="normative",
    spec=normative_spec,
    build=lambda spec: (NormativeNet(spec.model), None),
    train=fit,
    infer=infer,
    scan_score="top-1% mean of |z| inside the brain",
    postprocess=top_fraction_postprocess,
    residual=residual,
    baseline=True,
    trains_network=False,
    map="|z| = |x - median| / (1.4826 MAD) of the healthy training scans per voxel (haemorrhage: max(z, 0))",
)

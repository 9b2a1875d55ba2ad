"""The 3D methods of notebook 05: Viana's 3D f-AnoGAN (seed 001), CTFSH AE/VAE (seed 002), Luo's residual
AE (seed 004) — training (one process or ``torchrun``), scoring and the files notebook 07 reads.

Networks live in :mod:`ctad_core.models` (``fanogan``, ``ctfsh``, ``resae``); this package prepares inputs
(:mod:`.data`), names the methods and maps parameters to configs (:mod:`.methods`), trains
(:mod:`.training`), scores (:mod:`.evaluation`) and ties them together per method (:mod:`.pipeline`).
Command line: ``python -m ctad_core.volumetric train --method luo_resae --run-dir runs/quick``.
"""

from ctad_core.volumetric.data import EvalItems, axial_slices, mid_axial_range, model_volumes
from ctad_core.volumetric.evaluation import (
    ScoredMethod,
    score_method,
    scores_frame,
    write_method,
    write_scores_csv,
)
from ctad_core.volumetric.methods import DEFAULT_PARAMS, MethodSpec, method_names, method_spec
from ctad_core.volumetric.pipeline import VolumeCache, run_method, write_summary
from ctad_core.volumetric.training import TrainedMethod, load_trained, train_method

__all__ = [
    "DEFAULT_PARAMS",
    "EvalItems",
    "MethodSpec",
    "ScoredMethod",
    "TrainedMethod",
    "VolumeCache",
    "axial_slices",
    "load_trained",
    "method_names",
    "method_spec",
    "mid_axial_range",
    "model_volumes",
    "run_method",
    "score_method",
    "scores_frame",
    "train_method",
    "write_method",
    "write_scores_csv",
    "write_summary",
]

"""Every anomaly-detection method of the workbook, one folder each, and the one call that runs any of them.

The registry below is the only place that lists method names. Each name is used for its folder's results
(``<stage>/methods/<name>.npz|json``) and belongs to one folder (its family), whose name is also the prefix of
its parameters:

======================  ========  =====  =====  ==============================================================
name                    folder    items  model  seed
======================  ========  =====  =====  ==============================================================
fastgan_encoder         fastgan   2d     2d     000 Walluscheck: FastGAN ensemble, z = E(x)
fastgan_restoration     fastgan   2d     2d     000 Walluscheck: FastGAN ensemble, latent restoration (Eq. 4)
fanogan3d               fanogan   3d     3d     001 Viana: 3D f-AnoGAN with fine-tuning
fanogan2d               fanogan   3d     2d     001 Viana: the same networks on mid-axial slices
ctfsh_*  (12)           ctfsh     3d     3d     002 CTFSH: AE/VAE × L1/MS-SSIM/ACAI × full head/skull-stripped
resae, resae_spatial    resae     3d     3d     004 Luo: residual AE, dense latent / spatial-latent ablation
intensity               intensity 3d     3d     baseline: the windowed image inside the brain (hyperdense)
intensity_hypo          intensity 3d     3d     baseline: its negative (hypodense)
normative               normative 3d     3d     baseline: voxel-wise robust z against the healthy scans
dae                     dae       3d     3d     baseline: coarse-noise denoising U-Net (Kascenas 2023)
intensity2d, …, dae2d   (same)    2d     2d     the four baselines on notebook 04's slices
======================  ========  =====  =====  ==============================================================

The baselines (issue 11; :attr:`MethodDef.baseline`) are the floor every method must beat: the 3D ones run
in notebook 05 beside seeds 001–004, the 2D ones (``*2d``) in notebook 04 on the slices seed 000 scores.

:func:`run_method` trains or loads and scores any of them and returns (and saves) its
:class:`~ctad_core.results.MethodResults`. Adding a method means adding a folder and registry entries.
The command line (``python -m ctad_core.methods``) calls the same function.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ctad_core import distributed as ddp
from ctad_core.methods.base import Family, TrainedMethod, load_history, load_trained, spec_json, train_method
from ctad_core.methods.ctfsh.method import FAMILY as CTFSH
from ctad_core.methods.ctfsh.method import NAMES as CTFSH_NAMES
from ctad_core.methods.dae.method import FAMILY as DAE
from ctad_core.methods.fanogan.method import FAMILY as FANOGAN
from ctad_core.methods.fastgan import method as fastgan_method
from ctad_core.methods.inputs import EvalItems, VolumeCache
from ctad_core.methods.intensity.method import FAMILY as INTENSITY
from ctad_core.methods.normative.method import FAMILY as NORMATIVE
from ctad_core.methods.resae.method import FAMILY as RESAE
from ctad_core.methods.scoring import ScoredMethod, score_method, score_slices, write_method, write_summary
from ctad_core.methods.spec import MethodSpec, default_params
from ctad_core.probe import release_host_memory
from ctad_core.results import MethodResults
from ctad_core.run import Run
from ctad_core.train import load_checkpoint
from ctad_core.utils import resolve_device

#: The folders whose methods share the train / score path (:mod:`ctad_core.methods.base`).
FAMILIES: dict[str, Family] = {f.name: f for f in (FANOGAN, CTFSH, RESAE, INTENSITY, NORMATIVE, DAE)}


@dataclass(frozen=True)
class MethodDef:
    """A registered method.

    Attributes:
        name: the method's one name (results, registry key).
        family: its folder under ``ctad_core/methods`` (and parameter prefix).
        level: what an item of its results is: ``"2d"`` slices or ``"3d"`` volumes.
        model_dims: the model's dimensionality, ``"2d"`` or ``"3d"``.
        stage: the run stage its results go to (``restoration`` for notebook 04, ``volumetric`` for 05).
        notebook: the notebook whose parameters cell holds its defaults.
        run: ``(definition, run, params, device, seed, resume, progress, **options) -> MethodResults``.
        counterpart: for a 2D variant, the 3D method it is compared with (Viana's 2D-vs-3D table).
        description: one line for listings.
        baseline: a simple baseline (issue 11), the floor every method must beat, not a seed method.
        score: ``(definition, run, params, device, volumes, slices, progress) -> MethodResults``: the trained
            method (never retrained) on other scans of the run's kind, by the same inference path as
            ``run`` (see :func:`score_scans`).
    """

    name: str
    family: str
    level: str
    model_dims: str
    stage: str
    notebook: str
    run: Callable[..., MethodResults]
    counterpart: str | None = None
    description: str = ""
    baseline: bool = False
    score: Callable[..., MethodResults] | None = None


# ---------------------------------------------------------------------------------- the three run paths


def _run_fastgan(
    d: MethodDef,
    run: Run,
    params: dict[str, Any],
    device: torch.device | str = "cpu",
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
    *,
    restoration: bool,
    **_: Any,
) -> MethodResults:
    """Seed 000: score with the trained ensembles (notebooks 02/03 train them) and save the results."""
    res = fastgan_method.score(d.name, run, params, restoration, device, seed, progress)
    run.save_method_results(d.stage, res)
    return res


def _run_volume(
    d: MethodDef,
    run: Run,
    params: dict[str, Any],
    device: torch.device | str = "cpu",
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
    *,
    nifti_splits: tuple[str, ...] = ("test",),
    evaluate: bool = True,
    info: ddp.DistInfo | None = None,
    **_: Any,
) -> MethodResults | TrainedMethod:
    """Seeds 001, 002, 004: train (or reload) on the run's healthy volumes, score val + test, write."""
    cache = VolumeCache.of(run)
    spec = method_spec(d.name, cache.shape, params)
    info = info or ddp.DistInfo(device=torch.device(device))
    out = run.stage(d.stage)
    tm = train_method(spec, cache.train_x(spec), out, seed=seed, resume=resume, progress=progress, info=info)
    if not evaluate:
        return tm
    ev = score_method(tm, cache.items(spec), info.device, int(params["eval_batch_size"]), progress)
    if info.is_main:
        write_method(out, ev, cache.items(spec), nifti_splits)
    return ev.results


def _load_trained(d: MethodDef, run: Run, spec: MethodSpec, device: torch.device) -> TrainedMethod:
    """The method's finished model (``<stage>/models/<name>.pt``), checked against ``spec``; never trains.

    Raises:
        FileNotFoundError: naming the file when the method has not been trained in this run.
        ValueError: naming the file when it was trained with another configuration than ``spec``.
    """
    path = run.stage(d.stage) / "models" / f"{d.name}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: method {d.name!r} has not been trained in {run.root}")
    if load_checkpoint(path).get("spec") != spec_json(spec):
        raise ValueError(
            f"{path} was trained with another configuration than the parameters given for {d.name!r}: pass "
            "the parameters (profile) the run was made with"
        )
    return load_trained(path, spec, device)


def _score_volume(
    d: MethodDef,
    run: Run,
    params: dict[str, Any],
    device: torch.device,
    volumes: Any,
    slices: Any,
    progress: bool,
) -> MethodResults:
    """A trained 3D-path method on ``volumes`` (a :class:`~ctad_core.data.manifest.VolumeSet`), as
    :func:`_run_volume` scores the run's val/test volumes (nothing written)."""
    spec = method_spec(d.name, tuple(volumes.image.shape[1:]), params)
    tm = _load_trained(d, run, spec, device)
    items = EvalItems.from_volumes(volumes, spec.window, spec.skull_strip)
    return score_method(tm, items, device, int(params["eval_batch_size"]), progress).results


def _run_slices(
    d: MethodDef,
    run: Run,
    params: dict[str, Any],
    device: torch.device | str = "cpu",
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
    *,
    evaluate: bool = True,
    info: ddp.DistInfo | None = None,
    **_: Any,
) -> MethodResults | TrainedMethod:
    """The 2D baselines: train (or reload) on the run's healthy training slices, score the val/test slices
    seed 000 scores (same selection, same size), write under ``restoration/``."""
    size = fastgan_method.slice_size(run)
    spec = method_spec(d.name, (size, size), params)
    info = info or ddp.DistInfo(device=torch.device(device))
    x_train = fastgan_method.model_slices(run.slices("train"), size, spec.window, spec.skull_strip)[0][:, 0]
    out = run.stage(d.stage, create=True)
    tm = train_method(spec, x_train.numpy(), out, seed=seed, resume=resume, progress=progress, info=info)
    if not evaluate:
        return tm
    items = fastgan_method.eval_slices(
        run, size, int(params["max_slices_per_split"]), seed, spec.window, spec.skull_strip
    )
    per_scan = float(np.mean(np.unique(run.slices().scan_id, return_counts=True)[1]))
    res = score_slices(tm, items, info.device, int(params["batch_size"]), per_scan, progress)
    if info.is_main:
        run.save_method_results(d.stage, res)
    return res


def _score_slices(
    d: MethodDef,
    run: Run,
    params: dict[str, Any],
    device: torch.device,
    volumes: Any,
    slices: Any,
    progress: bool,
) -> MethodResults:
    """A trained 2D baseline on ``slices`` (a :class:`~ctad_core.data.manifest.SliceSet`, all scored), as
    :func:`_run_slices` scores the run's val/test slices (nothing written)."""
    size = fastgan_method.slice_size(run)
    spec = method_spec(d.name, (size, size), params)
    tm = _load_trained(d, run, spec, device)
    items = fastgan_method.slice_items(slices, size, spec.window, spec.skull_strip)
    per_scan = float(np.mean(np.unique(slices.scan_id, return_counts=True)[1]))
    return score_slices(tm, items, device, int(params["batch_size"]), per_scan, progress)


def _score_fastgan(
    d: MethodDef,
    run: Run,
    params: dict[str, Any],
    device: torch.device,
    volumes: Any,
    slices: Any,
    progress: bool,
    *,
    restoration: bool,
) -> MethodResults:
    """Seed 000's ensemble on ``slices`` (all scored), as :func:`_run_fastgan` scores the run's (nothing written)."""
    return fastgan_method.score(d.name, run, params, restoration, device, 0, progress, slices=slices)


def _volume(
    name: str,
    family: str,
    model_dims: str = "3d",
    counterpart: str | None = None,
    desc: str = "",
    baseline: bool = False,
) -> MethodDef:
    return MethodDef(
        name,
        family,
        "3d",
        model_dims,
        "volumetric",
        "05_volumetric_3d",
        _run_volume,
        counterpart,
        desc,
        baseline,
        _score_volume,
    )


def _slices(name: str, family: str, desc: str) -> MethodDef:
    return MethodDef(
        name,
        family,
        "2d",
        "2d",
        "restoration",
        "04_latent_restoration",
        _run_slices,
        None,
        desc,
        True,
        _score_slices,
    )


def _fastgan(name: str, restoration: bool, desc: str) -> MethodDef:
    run = functools.partial(_run_fastgan, restoration=restoration)
    score = functools.partial(_score_fastgan, restoration=restoration)
    return MethodDef(
        name, "fastgan", "2d", "2d", "restoration", "04_latent_restoration", run, None, desc, score=score
    )


#: name → definition, the only list of method names.
REGISTRY: dict[str, MethodDef] = {
    d.name: d
    for d in (
        _fastgan("fastgan_encoder", False, "seed 000: FastGAN ensemble, z = E(x), majority vote"),
        _fastgan(
            "fastgan_restoration", True, "seed 000: FastGAN ensemble, latent restoration, majority vote"
        ),
        _volume("fanogan3d", "fanogan", desc="seed 001: 3D f-AnoGAN with fine-tuning"),
        _volume("fanogan2d", "fanogan", "2d", "fanogan3d", "seed 001: the same networks on mid-axial slices"),
        *(_volume(n, "ctfsh", desc="seed 002: CTFSH AE/VAE") for n in CTFSH_NAMES),
        _volume("resae", "resae", desc="seed 004: Luo's residual AE, dense latent"),
        _volume("resae_spatial", "resae", desc="seed 004: Luo's residual AE, spatial latent (ablation)"),
        _volume("intensity", "intensity", desc="baseline: windowed image inside the brain (hyperdense)", baseline=True),
        _volume("intensity_hypo", "intensity", desc="baseline: negative windowed image (hypodense)", baseline=True),
        _volume("normative", "normative", desc="baseline: voxel-wise robust z of the healthy scans", baseline=True),
        _volume("dae", "dae", desc="baseline: coarse-noise denoising 3D U-Net (Kascenas 2023)", baseline=True),
        _slices("intensity2d", "intensity", "baseline: windowed slice inside the brain (hyperdense)"),
        _slices("intensity_hypo2d", "intensity", "baseline: negative windowed slice (hypodense)"),
        _slices("normative2d", "normative", "baseline: pixel-wise robust z of the healthy slices"),
        _slices("dae2d", "dae", "baseline: coarse-noise denoising 2D U-Net (Kascenas 2023)"),
    )
}


def baseline_names(level: str | None = None) -> list[str]:
    """The registered baselines (issue 11), optionally of one item level (``"2d"`` slices, ``"3d"`` volumes)."""
    return [n for n, d in REGISTRY.items() if d.baseline and (level is None or d.level == level)]


def method_names() -> list[str]:
    """Every registered method name."""
    return list(REGISTRY)


def get(name: str) -> MethodDef:
    """The definition of a registered method.

    Raises:
        ValueError: for an unknown name, listing the registered ones.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; registered methods: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def method_params(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A method's parameters: its notebook's parameters cell, overridden by ``params``."""
    return {**default_params(get(name).notebook), **(params or {})}


def method_spec(
    name: str, volume_shape: tuple[int, int, int], params: dict[str, Any] | None = None
) -> MethodSpec:
    """The :class:`~ctad_core.methods.spec.MethodSpec` of a method of :data:`FAMILIES` from flat parameters.

    Args:
        name: a registered name of the fanogan, ctfsh, resae or a baseline's folder.
        volume_shape: (D, H, W) of the prepared volumes (read from the data, not assumed), or (S, S) of the
            slices for a 2D baseline.
        params: flat parameters (notebook / YAML); missing keys come from notebook 05's parameters cell.

    Raises:
        ValueError: for an unknown name, or one whose folder does not build specs (seed 000).
    """
    d = get(name)
    if d.family not in FAMILIES:
        raise ValueError(f"method {name!r} ({d.family}) has no volumetric spec")
    p = method_params(name, params)
    return FAMILIES[d.family].spec(name, tuple(int(s) for s in volume_shape), p)


def training_history(name: str, run: Run | str) -> dict[str, list[dict[str, float]]]:
    """The loss history per phase of a trained 3D-path method (from ``models/<name>.pt``).

    Raises:
        FileNotFoundError: naming the file when the method has not been trained in this run.
    """
    d = get(name)
    run = run if isinstance(run, Run) else Run(run)
    path = run.stage(d.stage) / "models" / f"{name}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: method {name!r} has not been trained in {run.root}")
    return load_history(path)


def run_method(
    name: str,
    run: Run | str,
    params: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
    **options: Any,
) -> MethodResults:
    """Train (or load) and score any registered method, 2D or 3D; save and return its results.

    Args:
        name: a registered method name (:data:`REGISTRY`).
        run: the run (or its directory).
        params: flat parameters (the method's notebook's, e.g. from a profile YAML); missing keys take the
            notebook's parameters cell's defaults.
        device: torch device or ``"auto"``.
        seed: the run's seed.
        resume: reuse finished models and resume checkpoints (3D methods).
        progress: progress bars.
        options: per-path extras: ``nifti_splits`` (3D: splits whose maps are also written as NIfTI),
            ``evaluate`` (3D: False trains only and returns the trained method), ``info`` (a DDP context).

    Returns:
        The method's :class:`~ctad_core.results.MethodResults`, as written under ``<stage>/methods/``.

    Raises:
        ValueError: for an unknown name (listing the registered ones).
    """
    d = get(name)
    run = run if isinstance(run, Run) else Run(run)
    dev = resolve_device(device) if str(device) == "auto" else torch.device(device)
    try:
        return d.run(d, run, method_params(name, params), dev, seed, resume, progress, **options)
    finally:
        release_host_memory()  # a notebook runs many methods in one process: return their freed memory


def run_methods(
    names: list[str],
    run: Run | str,
    params: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
    workers: int | None = None,
    evaluation_kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> dict[str, dict[str, Any]]:
    """:func:`run_method` for several methods; on the CPU side by side in processes, on a GPU one after another.

    Each method trains, scores and writes its results as :func:`run_method` does; in a worker it computes what
    it computes here with the worker's thread count (:mod:`ctad_core.parallel`). Only each method's ``info``
    comes back: its arrays are on disk (:meth:`~ctad_core.run.Run.load_method_results`). Memory holds, per
    worker, the run's volumes (each worker reads them once, for all its methods) and one method's arrays.

    The methods that train a network start first, in the order of ``names``, and those that only compute
    statistics of the healthy scans or nothing (:attr:`~ctad_core.methods.base.Family.trains_network`) last:
    a free worker takes the next method, so the short ones fill the end instead of one long method running
    alone after them. Give all the methods of a notebook in one call, the longest first: a call per family
    waits for its slowest method before the next family starts.

    Args:
        names: registered method names.
        run, params, device, seed, resume, options: as :func:`run_method`.
        progress: a bar over the methods (one method at a time here: its own bars).
        workers: processes on the CPU (None: one per core, at most one per method; 1: here, in order, sharing
            ``run``'s volume cache).
        evaluation_kwargs: also evaluate each method as soon as it is written, with these arguments of
            :func:`~ctad_core.evaluation.evaluator.evaluate`, and save the evaluation for reuse
            (:func:`~ctad_core.evaluation.report.evaluate_files`): one method is evaluated while the next
            trains. None: no evaluation.

    Returns:
        name → the method's ``info``, in the order of ``names``.

    Raises:
        ValueError: for an unknown name (before anything runs).
    """
    from ctad_core.parallel import plan_workers, run_jobs

    for name in names:
        get(name)
    run = run if isinstance(run, Run) else Run(run)
    dev = resolve_device(device) if str(device) == "auto" else torch.device(device)
    n, threads = plan_workers(len(names), dev, workers, equal_jobs=False) if names else (1, 1)
    # here: this Run (its volume cache is shared by the methods); in a worker: its own, kept for its next method
    target = run if n == 1 else str(run.root)
    order = sorted(names, key=lambda name: not _trains_network(name))  # stable: names' order within each group
    jobs = [(name, target, params, dev, seed, resume, progress and n == 1, options, evaluation_kwargs)
            for name in order]
    infos = dict(zip(order, run_jobs(_method_info, jobs, n, threads, "methods", None, progress and n > 1),
                     strict=True))
    return {name: infos[name] for name in names}


def _trains_network(name: str) -> bool:
    family = FAMILIES.get(get(name).family)
    return family is None or family.trains_network  # FastGAN's ensembles: scoring runs restorations


_worker_runs: dict[str, Run] = {}  # in a worker of run_methods: the Run (and its volume cache) of its jobs


def _method_info(
    name: str, run: Run | str, params: dict[str, Any] | None, device: torch.device, seed: int, resume: bool,
    progress: bool, options: dict[str, Any], evaluation_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    import warnings

    if not isinstance(run, Run):  # a worker lives for one run_methods call: its Run cannot go stale
        run = _worker_runs.setdefault(run, Run(run))
    with warnings.catch_warnings():
        warnings.simplefilter("once")  # e.g. the MS-SSIM scale warning once, not per step
        info = run_method(name, run, params, device, seed, resume, progress, **options).info
    if evaluation_kwargs is not None:
        from ctad_core.evaluation.report import evaluate_files

        evaluate_files({name: run.find_method_results()[name]}, evaluation_kwargs, workers=1)
        release_host_memory()
    return info


def score_scans(
    name: str,
    run: Run | str,
    volumes: Any = None,
    slices: Any = None,
    params: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> MethodResults:
    """Score other scans with a method trained in ``run``, by the path :func:`run_method` scores the test set.

    The model is loaded, never (re)trained; the scans are prepared as the method prepares the run's (window,
    skull strip, slice size), scored and post-processed the same way. Nothing is written. Used for the
    acquisition-shift test (:mod:`ctad_core.evaluation.shift`): the run's healthy test patients re-rendered.

    Args:
        name: a registered method name.
        run: the run whose trained models are used.
        volumes: a :class:`~ctad_core.data.manifest.VolumeSet` of the scans (3D methods, level ``"3d"``).
        slices: a :class:`~ctad_core.data.manifest.SliceSet` of the same scans (2D methods, all slices scored).
        params: the method's notebook's parameters as the run was made with them (profile YAML); missing
            keys take the parameters cell's defaults.
        device: torch device or ``"auto"``.
        progress: progress bars.

    Returns:
        The method's :class:`~ctad_core.results.MethodResults` on those scans (their own split labels).

    Raises:
        ValueError: an unknown name, the scans the method's level needs missing, or a model trained with
            other parameters than ``params``.
        FileNotFoundError: the method has no trained model in ``run`` (naming the file).
    """
    d = get(name)
    run = run if isinstance(run, Run) else Run(run)
    need = "volumes" if d.level == "3d" else "slices"
    if (volumes if need == "volumes" else slices) is None:
        raise ValueError(f"method {name!r} scores {d.level} items: pass {need}")
    if d.score is None:
        raise ValueError(f"method {name!r} cannot score other scans")
    dev = resolve_device(device) if str(device) == "auto" else torch.device(device)
    return d.score(d, run, method_params(name, params), dev, volumes, slices, progress)


__all__ = [
    "FAMILIES",
    "REGISTRY",
    "MethodDef",
    "MethodSpec",
    "ScoredMethod",
    "TrainedMethod",
    "baseline_names",
    "get",
    "load_trained",
    "method_names",
    "method_params",
    "method_spec",
    "run_method",
    "score_scans",
    "training_history",
    "write_summary",
]

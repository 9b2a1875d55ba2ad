"""Coursework: the computations and self-checks behind the "Exercises" section of every notebook.

Each exercise makes a learner *predict*, change one parameter and look. A notebook only calls and shows:

1. the learner writes a prediction into a variable (``None`` until answered);
2. a computation from this module reads what the run already wrote (``run_dir``: slices, volumes, trained
   networks, the methods' results, the Turing-test scores) — seconds on the smoke profile, never training;
3. a ``check_*`` function compares the prediction with what the computation found and returns a
   :class:`CheckResult` (``ok`` and a ``message``). An unanswered (``None``) prediction gives ``ok=False``
   and says how to answer; it never raises, so the headless chain (``ctad run``) passes. A malformed
   answer (a word that is none of the choices, a number outside [0, 1]) raises ``ValueError`` naming
   the variable and what is allowed.

The thresholds of the segmentation exercises follow the report's rule (:mod:`ctad_core.evaluation.thresholds`:
chosen on validation items with a lesion, applied unchanged to test), so the numbers agree with notebook 07.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ctad_core.data.windows import to_display
from ctad_core.evaluation import metrics as M
from ctad_core.evaluation.evaluator import item_labels, scan_table
from ctad_core.evaluation.segmentation import segment
from ctad_core.evaluation.thresholds import DICE_GRID, sweep
from ctad_core.kinds import HEALTHY, is_haemorrhage, kind_parts
from ctad_core.results import MethodResults


class CheckResult(NamedTuple):
    """What a self-check found.

    Attributes:
        ok: True when the learner's answer agrees with what the computation found; False when it does not
            or when there is no answer yet.
        message: what to tell the learner (how to answer, or right / wrong and why, with the numbers).
    """

    ok: bool
    message: str

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------------------------------------- answers


def _unanswered(name: str, how: str) -> CheckResult:
    return CheckResult(
        False, f"Not answered yet: set `{name}` in the cell above ({how}) and run the cells again."
    )


def _choice(answer: Any, options: Sequence[str], name: str) -> str | None:
    """``None``, or the answer as one of ``options`` (case-insensitive); ValueError otherwise."""
    if answer is None:
        return None
    if isinstance(answer, (bool, np.bool_)) and not any(isinstance(o, bool) for o in options):
        raise ValueError(f"`{name}` must be one of {list(options)}, got {answer!r}")
    key = str(answer).strip().lower()
    for o in options:
        if key == str(o).lower():
            return o
    raise ValueError(f"`{name}` must be one of {list(options)}, got {answer!r}")


def _yes_no(answer: Any, name: str) -> bool | None:
    """``None``, or the answer as a bool (True/False); ValueError for anything else."""
    if answer is None:
        return None
    if isinstance(answer, (bool, np.bool_)):
        return bool(answer)
    raise ValueError(f"`{name}` must be True or False, got {answer!r}")


def _fraction(answer: Any, name: str) -> float | None:
    """``None``, or the answer as a number in [0, 1]; ValueError otherwise."""
    if answer is None:
        return None
    if isinstance(answer, (bool, np.bool_)) or not isinstance(answer, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{name}` must be a number between 0 and 1, got {answer!r}")
    v = float(answer)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"`{name}` must be a number between 0 and 1, got {answer!r}")
    return v


def _verdict(ok: bool, text: str) -> CheckResult:
    return CheckResult(ok, ("Right. " if ok else "Not quite. ") + text)


def _best(values: Mapping[str, float]) -> list[str]:
    """The keys with the largest finite value (several on a tie); [] when none is finite."""
    finite = {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}
    if not finite:
        return []
    top = max(finite.values())
    return [k for k, v in finite.items() if math.isclose(v, top, rel_tol=0, abs_tol=1e-12)]


def _check_best(answer: Any, values: Mapping[str, float], name: str, what: str) -> CheckResult:
    """Is ``answer`` (one of ``values``' keys) the one with the largest value of ``what``?"""
    a = _choice(answer, list(values), name)
    if a is None:
        return _unanswered(name, f"one of {list(values)}")
    best = _best(values)
    shown = ", ".join(f"{k}: {float(v):.3f}" for k, v in values.items())
    if not best:
        return CheckResult(False, f"Cannot tell: no {what} could be computed here ({shown}).")
    if len(best) > 1 and a in best:
        return _verdict(True, f"{' and '.join(best)} tie on {what} ({shown}).")
    return _verdict(a in best, f"The highest {what} is {best[0]} ({shown}).")


# ------------------------------------------------------------------------------- notebook 01: HU, windows


def window_contrast(hu_a: float, hu_b: float, windows: Sequence[str]) -> dict[str, float]:
    """Grey levels (of 256) between two tissues of ``hu_a`` and ``hu_b`` HU in each display window.

    A window [L, U] maps HU linearly to 0…255 and clips outside (:func:`ctad_core.data.windows.to_display`);
    the narrower the window around the two values, the more grey levels separate them.

    Args:
        hu_a, hu_b: the two tissues' attenuation in HU (e.g. grey matter 40, fresh blood 65; REFERENCE.md).
        windows: window preset names (:data:`ctad_core.data.windows.WINDOWS`).

    Returns:
        ``{window: |grey(a) − grey(b)|}`` on the 0…255 scale.

    Raises:
        ValueError: an unknown window name.
    """
    return {
        w: float(abs(to_display(np.float32(hu_a), w) - to_display(np.float32(hu_b), w)) * 255.0)
        for w in windows
    }


def check_window(answer: Any, contrast: Mapping[str, float]) -> CheckResult:
    """Did the learner pick the window that separates the two tissues by the most grey levels?

    Args:
        answer: a window name from ``contrast`` (or None).
        contrast: :func:`window_contrast`'s result.
    """
    return _check_best(answer, contrast, "best_window", "grey-level difference")


def lesion_hu(
    image: np.ndarray,
    lesion: np.ndarray,
    brain: np.ndarray,
    kinds: Sequence[str],
    kind: str,
    scan_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Median HU inside each lesion of ``kind`` and in the rest of the brain of the same scan.

    Args:
        image: (N, *spatial) volumes in HU.
        lesion: (N, *spatial) lesion label maps (nonzero = lesion).
        brain: (N, *spatial) brain masks.
        kinds: (N,) each scan's kind (``"sdh+fracture"`` counts for ``sdh`` and ``fracture``).
        kind: the lesion kind to look at.
        scan_ids: (N,) names for the rows (default the indices).

    Returns:
        One row per scan of that kind with a non-empty lesion: ``lesion HU`` (median in the lesion),
        ``brain HU`` (median in the brain outside the lesion), ``difference`` (lesion − brain).

    Raises:
        ValueError: arrays of different shapes.
    """
    image, lesion, brain = np.asarray(image), np.asarray(lesion), np.asarray(brain)
    if not (image.shape == lesion.shape == brain.shape):
        raise ValueError(
            f"image {image.shape}, lesion {lesion.shape} and brain {brain.shape} differ in shape"
        )
    if len(kinds) != len(image):
        raise ValueError(f"{len(kinds)} kinds for {len(image)} volumes")
    ids = [str(i) for i in (scan_ids if scan_ids is not None else range(len(image)))]
    rows = {}
    for i, k in enumerate(np.asarray(kinds).astype(str)):
        les = lesion[i] != 0
        rest = (brain[i] != 0) & ~les
        if kind not in kind_parts(k) or not les.any() or not rest.any():
            continue
        a, b = float(np.median(image[i][les])), float(np.median(image[i][rest]))
        rows[ids[i]] = {"kind": k, "lesion HU": a, "brain HU": b, "difference": a - b}
    return pd.DataFrame.from_dict(
        rows, orient="index", columns=["kind", "lesion HU", "brain HU", "difference"]
    )


def check_lesion_brighter(answer: Any, table: pd.DataFrame) -> CheckResult:
    """Is the lesion brighter or darker than the brain around it (the median over the scans in ``table``)?

    Args:
        answer: ``"brighter"`` or ``"darker"`` (or None).
        table: :func:`lesion_hu`'s result.
    """
    a = _choice(answer, ["brighter", "darker"], "lesion_looks")
    if a is None:
        return _unanswered("lesion_looks", "'brighter' or 'darker'")
    if table.empty:
        return CheckResult(
            False, "Cannot tell: no scan of this kind with a lesion in this run; pick another `kind`."
        )
    d = float(np.median(table["difference"]))
    truth = "brighter" if d > 0 else "darker"
    return _verdict(
        a == truth,
        f"Median over {len(table)} scan(s): the lesion is {abs(d):.1f} HU {truth} than the brain around it.",
    )


# -------------------------------------------------------------------------------- notebook 02: the GAN


def memorisation(samples: np.ndarray, train: np.ndarray) -> dict[str, float]:
    """How close generated slices lie to the training set, against how close real slices lie to each other.

    Args:
        samples: (n, H, W) generated slices in model range.
        train: (N, H, W) training slices at the same size, N ≥ 2.

    Returns:
        ``sample_to_train``: median RMSE of a sample to its nearest training slice; ``train_to_train``: median
        RMSE of a training slice to its nearest *other* training slice; ``closer``: the first is smaller (the
        generator draws nearer copies of its training slices than the slices are to each other).

    Raises:
        ValueError: shapes that differ or fewer than two training slices.
    """
    s = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    t = np.asarray(train, dtype=np.float64).reshape(len(train), -1)
    if s.shape[1] != t.shape[1] or len(t) < 2 or len(s) < 1:
        raise ValueError(
            f"need samples (n, H, W) and ≥ 2 training slices of one size, got {np.shape(samples)} "
            f"and {np.shape(train)}"
        )

    def sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0) / a.shape[1]

    d_st = np.sqrt(sq_dist(s, t).min(1))
    d_tt = sq_dist(t, t)
    np.fill_diagonal(d_tt, np.inf)
    d_tt = np.sqrt(d_tt.min(1))
    a, b = float(np.median(d_st)), float(np.median(d_tt))
    return {"sample_to_train": a, "train_to_train": b, "closer": a < b}


def check_memorisation(answer: Any, result: Mapping[str, Any]) -> CheckResult:
    """Did the learner predict whether samples lie closer to the training set than real slices to each other?

    Args:
        answer: True (closer: the GAN copies) or False (farther: it draws new heads), or None.
        result: :func:`memorisation`'s result.
    """
    a = _yes_no(answer, "samples_closer")
    if a is None:
        return _unanswered("samples_closer", "True or False")
    word = "closer" if result["closer"] else "farther"
    return _verdict(
        a == bool(result["closer"]),
        f"A sample lies {result['sample_to_train']:.3f} (median RMSE) from its nearest training slice, a "
        f"training slice {result['train_to_train']:.3f} from its nearest other one: samples are {word}.",
    )


def intensity_distance(snapshots: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Wasserstein-1 distance between each snapshot's pixel values and the real slices' pixel values.

    Args:
        snapshots: (T, n, H, W) samples at T training checkpoints (``gan/member_k/samples.npz``), model range.
        real: (N, H, W) real training slices, model range.

    Returns:
        (T,) distances in model-range units (0: the same intensity histogram).
    """
    from scipy.stats import wasserstein_distance

    snaps = np.asarray(snapshots, dtype=np.float64)
    if snaps.ndim < 2:
        raise ValueError(f"snapshots must be (T, n, ...), got shape {snaps.shape}")
    r = np.asarray(real, dtype=np.float64).ravel()
    return np.array([wasserstein_distance(snaps[i].ravel(), r) for i in range(len(snaps))])


def check_progress(answer: Any, distances: np.ndarray) -> CheckResult:
    """Did the learner predict whether the last snapshot is closer to the real intensities than the first?

    Args:
        answer: True (the last is closer) or False, or None.
        distances: :func:`intensity_distance`'s result.
    """
    a = _yes_no(answer, "last_closer")
    if a is None:
        return _unanswered("last_closer", "True or False")
    d = np.asarray(distances, dtype=float)
    if d.size < 2:
        return CheckResult(False, "Cannot tell: fewer than two snapshots were saved in this run.")
    truth = bool(d[-1] < d[0])
    return _verdict(
        a == truth,
        f"distance to the real intensities: first snapshot {d[0]:.3f}, last {d[-1]:.3f} — "
        f"the last is {'closer' if truth else 'not closer'}.",
    )


# ------------------------------------------------------------------------------ notebook 03: the encoder


def _rmse(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def encoder_vs_restoration(
    encoder: Any, generator: Any, x: Any, steps: int, lr: float = 0.05
) -> dict[str, float]:
    """One encoder pass against ``steps`` of latent restoration from z = 0, on the same slices (MSE loss only).

    Args:
        encoder: (B, 1, H, W) → (B, nz).
        generator: (B, nz) → (B, 1, H, W), frozen.
        x: (B, 1, H, W) torch tensor in model range.
        steps: Adam steps of restoration (seed 000 Eq. 4, here with the MSE term alone).
        lr: Adam's learning rate.

    Returns:
        ``encoder_s``, ``restoration_s`` (wall seconds), ``encoder_rmse``, ``restoration_rmse`` (model range),
        ``steps``.

    Raises:
        ValueError: ``steps`` < 1.
    """
    import torch

    from ctad_core.methods.fastgan.restore import encode_reconstruct, restore

    if int(steps) < 1:
        raise ValueError(f"restoration needs at least one step, got steps={steps}")
    _, rec_e, t_e = encode_reconstruct(encoder, generator, x)
    t0 = time.perf_counter()
    out = restore(generator, x, lambda a, b: ((a - b) ** 2).flatten(1).mean(1), steps=int(steps), lr=lr)
    t_r = time.perf_counter() - t0
    with torch.no_grad():
        rec_r = out.recon.detach().cpu()
    xc = x.detach().cpu()
    return {
        "encoder_s": float(t_e),
        "restoration_s": float(t_r),
        "encoder_rmse": _rmse(rec_e, xc),
        "restoration_rmse": _rmse(rec_r, xc),
        "steps": int(steps),
    }


def check_restoration_better(answer: Any, result: Mapping[str, Any]) -> CheckResult:
    """Did the learner predict whether restoration (from z = 0) reconstructs closer than the encoder?

    Args:
        answer: True (restoration's RMSE is lower) or False, or None.
        result: :func:`encoder_vs_restoration`'s result.
    """
    a = _yes_no(answer, "restoration_better")
    if a is None:
        return _unanswered("restoration_better", "True or False")
    truth = result["restoration_rmse"] < result["encoder_rmse"]
    ratio = result["restoration_s"] / max(result["encoder_s"], 1e-9)
    return _verdict(
        a == truth,
        f"RMSE: encoder {result['encoder_rmse']:.4f}, {result['steps']} restoration steps "
        f"{result['restoration_rmse']:.4f}; restoration took {ratio:.0f}× the encoder's time.",
    )


def erased_box_fill(encoder: Any, generator: Any, x: Any, box_fraction: float = 0.3) -> dict[str, float]:
    """Blank a central box (to air, −1) and see what ``G(E(x))`` draws there: the anatomy or the blank?

    Args:
        encoder, generator: as in :func:`encoder_vs_restoration`.
        x: (B, 1, H, W) torch tensor in model range.
        box_fraction: side of the square box as a fraction of the image side, in (0, 1).

    Returns:
        ``to_anatomy``: RMSE inside the box between the reconstruction and the original slice;
        ``to_air``: RMSE inside the box between the reconstruction and the blank (−1); ``fills_with``:
        ``"anatomy"`` when the first is smaller, else ``"air"``; ``erased`` and ``recon``: (B, H, W) the
        blanked inputs and their reconstructions, for a figure.

    Raises:
        ValueError: ``box_fraction`` outside (0, 1).
    """
    from ctad_core.methods.fastgan.restore import encode_reconstruct

    if not 0.0 < float(box_fraction) < 1.0:
        raise ValueError(f"box_fraction must lie in (0, 1), got {box_fraction}")
    h, w = x.shape[-2:]
    bh, bw = max(1, round(h * box_fraction)), max(1, round(w * box_fraction))
    y0, x0 = (h - bh) // 2, (w - bw) // 2
    erased = x.clone()
    erased[..., y0 : y0 + bh, x0 : x0 + bw] = -1.0
    _, rec, _ = encode_reconstruct(encoder, generator, erased)
    box = np.s_[..., y0 : y0 + bh, x0 : x0 + bw]
    r = rec.numpy()[box]
    a, b = _rmse(r, x.detach().cpu().numpy()[box]), _rmse(r, -1.0)
    return {
        "to_anatomy": a,
        "to_air": b,
        "fills_with": "anatomy" if a < b else "air",
        "erased": erased[:, 0].detach().cpu().numpy(),
        "recon": rec[:, 0].numpy(),
    }


def check_fill(answer: Any, result: Mapping[str, Any]) -> CheckResult:
    """Did the learner predict what the encoder-generator draws into a blanked box?

    Args:
        answer: ``"anatomy"`` or ``"air"`` (or None).
        result: :func:`erased_box_fill`'s result.
    """
    a = _choice(answer, ["anatomy", "air"], "box_filled_with")
    if a is None:
        return _unanswered("box_filled_with", "'anatomy' or 'air'")
    return _verdict(
        a == result["fills_with"],
        f"Inside the box the reconstruction is {result['to_anatomy']:.3f} "
        f"(RMSE) from the original anatomy and {result['to_air']:.3f} from "
        f"the blank: it draws {result['fills_with']}.",
    )


# ----------------------------------------------------------------------- notebooks 04, 07: thresholds, Dice


def _lesion_items(res: MethodResults, split: str, subset: np.ndarray | None = None) -> np.ndarray:
    sel = (np.asarray(res.split).astype(str) == split) & (item_labels(res) == 1)
    return sel if subset is None else sel & subset


def val_test_dice(
    res: MethodResults, subset: np.ndarray | None = None, reduce: str = "mean"
) -> dict[str, Any]:
    """Seed 000's threshold rule on one subset (the report's ``val_lesion_mean``; ``val_lesion_pooled`` with
    ``reduce="pooled"``): threshold by best validation Dice, Dice on test at that threshold.

    Args:
        res: a method's results (its declared segmentation step is applied, as in the report).
        subset: (N,) bool items to use (e.g. haemorrhages); None: all items with a lesion.
        reduce: ``"mean"`` (mean per-item Dice, seed 000) or ``"pooled"`` (one Dice over all voxels, seed 004).

    Returns:
        ``threshold`` (chosen on val), ``val_dice``, ``test_dice`` (at that threshold), ``oracle_dice`` (the
        best Dice of the same grid on test — an upper bound), ``n_val``, ``n_test``.

    Raises:
        ValueError: no validation or no test items with a lesion in the subset.
    """
    vsel, tsel = _lesion_items(res, "val", subset), _lesion_items(res, "test", subset)
    if not vsel.any() or not tsel.any():
        raise ValueError(
            f"{res.name}: needs validation and test items with a lesion in the subset "
            f"(found {int(vsel.sum())} and {int(tsel.sum())})"
        )
    sv = sweep(res, vsel, DICE_GRID, reduce)
    pred = segment(res, sv.best_threshold, tsel)
    les = res.lesion[tsel] != 0
    test = float(np.mean(M.dice_per_item(pred, les))) if reduce == "mean" else float(M.dice(pred, les))
    oracle = sweep(res, tsel, DICE_GRID, reduce).best_dice
    return {
        "threshold": sv.best_threshold,
        "val_dice": sv.best_dice,
        "test_dice": test,
        "oracle_dice": oracle,
        "n_val": int(vsel.sum()),
        "n_test": int(tsel.sum()),
    }


def with_residual(res: MethodResults, rho: str) -> MethodResults:
    """The method's results with its maps replaced by the residual ρ = ``"abs"`` (|x − x̂|) or ``"pos"`` (max(·, 0)).

    Seed 000 scores its haemorrhage set on ρ = max(x − x̂, 0): only tissue brighter than its healthy
    reconstruction. A method that wrote both (``maps`` and ``maps_haemorrhage``, or the members' versions)
    can be scored either way with the same segmentation step.

    Raises:
        ValueError: an unknown ρ, or ``"pos"`` for results without ρ = max(·, 0) maps.
    """
    if rho not in ("abs", "pos"):
        raise ValueError(f"rho must be 'abs' or 'pos', got {rho!r}")
    if rho == "abs":
        return dataclasses.replace(res, maps_haemorrhage=None, member_maps_haemorrhage=None)
    if res.maps_haemorrhage is None and res.member_maps_haemorrhage is None:
        raise ValueError(f"{res.name}: wrote no max(x - x_hat, 0) maps (maps_haemorrhage)")
    members = res.member_maps_haemorrhage
    maps = res.maps_haemorrhage if res.maps_haemorrhage is not None else members.mean(0)
    return dataclasses.replace(
        res,
        maps=maps,
        member_maps=members if members is not None else res.member_maps,
        maps_haemorrhage=None,
        member_maps_haemorrhage=None,
    )


def residual_dice(res: MethodResults) -> dict[str, dict[str, Any]]:
    """Haemorrhage Dice with ρ = |·| and with ρ = max(·, 0), each with its own validation threshold.

    Returns:
        ``{"abs": val_test_dice(...), "pos": val_test_dice(...)}`` on the haemorrhage items.
    """
    haem = is_haemorrhage(res.kind)
    return {rho: val_test_dice(with_residual(res, rho), haem) for rho in ("abs", "pos")}


def check_residual(answer: Any, result: Mapping[str, Mapping[str, Any]]) -> CheckResult:
    """Did the learner predict which residual gives the higher test Dice on haemorrhages?

    Args:
        answer: ``"abs"`` or ``"pos"`` (or None).
        result: :func:`residual_dice`'s result.
    """
    return _check_best(
        answer, {k: v["test_dice"] for k, v in result.items()}, "better_rho", "mean test Dice on haemorrhages"
    )


def one_member(res: MethodResults, member: int) -> MethodResults:
    """The results of ensemble member ``member`` alone (a "vote" of one, so its own threshold and closing).

    Raises:
        ValueError: a method without members, or a member index out of range.
    """
    if res.member_maps is None:
        raise ValueError(f"{res.name}: has no ensemble members (member_maps)")
    m = int(member)
    if not 0 <= m < len(res.member_maps):
        raise ValueError(f"{res.name}: member must be 0 … {len(res.member_maps) - 1}, got {member}")
    pos = res.member_maps_haemorrhage
    return dataclasses.replace(
        res,
        maps=res.member_maps[m],
        member_maps=res.member_maps[m : m + 1],
        maps_haemorrhage=None if pos is None else pos[m],
        member_maps_haemorrhage=None if pos is None else pos[m : m + 1],
    )


def vote_vs_member(res: MethodResults, member: int = 0) -> dict[str, dict[str, Any]]:
    """Test Dice (all lesions) of the members' majority vote and of one member alone, each at its val threshold.

    Returns:
        ``{"vote": val_test_dice(...), "member": val_test_dice(...)}``.
    """
    return {"vote": val_test_dice(res), "member": val_test_dice(one_member(res, member))}


def check_vote(answer: Any, result: Mapping[str, Mapping[str, Any]]) -> CheckResult:
    """Did the learner predict whether the vote beats the single member on mean test Dice?

    Args:
        answer: ``"vote"`` or ``"member"`` (or None).
        result: :func:`vote_vs_member`'s result.
    """
    return _check_best(answer, {k: v["test_dice"] for k, v in result.items()}, "better", "mean test Dice")


def check_oracle_share(answer: Any, result: Mapping[str, Any], tolerance: float = 0.1) -> CheckResult:
    """Did the learner estimate how much of the oracle's test Dice the validation threshold keeps?

    Args:
        answer: a number in [0, 1] (test Dice at the validation threshold ÷ the oracle's), or None.
        result: :func:`val_test_dice`'s result.
        tolerance: how far the estimate may be off and still count as right.
    """
    a = _fraction(answer, "share_of_oracle")
    if a is None:
        return _unanswered("share_of_oracle", "a number between 0 and 1")
    if not result["oracle_dice"] > 0:
        return CheckResult(
            False, "Cannot tell: the oracle Dice is 0 (no threshold finds any lesion on test)."
        )
    share = result["test_dice"] / result["oracle_dice"]
    return _verdict(
        abs(a - share) <= tolerance,
        f"The validation threshold {result['threshold']:.4g} gives test Dice {result['test_dice']:.3f}; the "
        f"oracle (best threshold on test) {result['oracle_dice']:.3f}: a share of {share:.2f} "
        f"(you said {a:.2f}; within {tolerance:g} counts).",
    )


# ---------------------------------------------------------------------------- notebook 05: volumetric


def kind_auroc(res: MethodResults, kind: str | None = None) -> dict[str, float]:
    """Test scan AUROC of the method's own score: scans with ``kind`` (all lesions when None) vs healthy scans.

    Also the share of that kind's lesion voxels inside the method's evaluation mask (``res.brain``): what a
    skull-stripped model cannot see shows here.

    Returns:
        ``auroc``, ``n_lesion``, ``n_healthy`` (test scans) and ``mask_coverage`` (nan without masks).
    """
    st = scan_table(res, "test")
    lesioned = np.array([kind in kind_parts(k) if kind else k != HEALTHY for k in st["kind"]], bool)
    healthy = st["kind"] == HEALTHY
    sel = lesioned | healthy
    y = lesioned[sel].astype(int)
    auroc = M.roc_auc(st["score"][sel], y) if 0 < y.sum() < y.size else float("nan")
    cover = float("nan")
    if res.lesion is not None and res.brain is not None:
        items = np.array(
            [(kind in kind_parts(k)) if kind else k != HEALTHY for k in np.asarray(res.kind).astype(str)]
        )
        les = res.lesion[items] != 0
        if les.any():
            cover = float((les & (res.brain[items] != 0)).sum() / les.sum())
    return {
        "auroc": auroc,
        "n_lesion": int(lesioned.sum()),
        "n_healthy": int(healthy.sum()),
        "mask_coverage": cover,
    }


def compare_auroc(results: Mapping[str, MethodResults], kind: str | None = None) -> pd.DataFrame:
    """:func:`kind_auroc` for several methods, one row each."""
    return pd.DataFrame({n: kind_auroc(r, kind) for n, r in results.items()}).T


def check_better_method(
    answer: Any, table: pd.DataFrame, column: str = "auroc", name: str = "better_method"
) -> CheckResult:
    """Did the learner pick the method with the highest ``column`` in :func:`compare_auroc`'s table?

    Args:
        answer: a method name of the table's index (or None).
        table: :func:`compare_auroc`'s result.
        column: the column compared.
        name: the answer variable's name, for the messages.
    """
    if table.empty:
        return CheckResult(False, "Cannot tell: none of the methods compared has results in this run.")
    return _check_best(answer, table[column].to_dict(), name, column)


def pick_method(found: Sequence[str], wanted: str) -> str:
    """``wanted`` when the run has results of that method, else the first found (and says so).

    Raises:
        ValueError: when the run has no method results at all.
    """
    names = list(found)
    if wanted in names:
        return wanted
    if not names:
        raise ValueError("this run has no method results; run notebooks 04 and 05 first")
    print(f"{wanted!r} has no results in this run; using {names[0]!r} (found: {', '.join(names)})")
    return names[0]


# ---------------------------------------------------------------------------- notebook 06: Turing test


def human_vs_machine(scores: Mapping[str, Any]) -> dict[str, Any]:
    """The readers' accuracies on the gallery and the machine observer's, from ``turing/scores.json``.

    The machine observer (:func:`ctad_core.turing.machine_observer`) saves its out-of-fold answers as one
    more reader; it is taken out of the people and compared on the same gallery images (its accuracy over
    the larger cross-validation pool, ``cv_accuracy``, is used only when its gallery answers are missing).

    Args:
        scores: the dict :func:`ctad_core.turing.score_gallery` returns, with ``machine_observer`` added as
            notebook 06 adds it.

    Returns:
        ``readers`` ({name: accuracy} of the people), ``reader_mean`` (nan without people), ``machine`` (the
        machine observer's accuracy on the gallery; nan when it did not run).
    """
    mo = scores.get("machine_observer") or {}
    machine_name = mo.get("reader", "machine")
    all_readers = scores.get("readers") or {}
    readers = {
        n: float(r["accuracy"])
        for n, r in all_readers.items()
        if n != machine_name and r.get("group") != "machine observer"
    }
    if machine_name in all_readers:
        machine = float(all_readers[machine_name]["accuracy"])
    else:
        machine = float(mo.get("cv_accuracy", float("nan")))
    return {
        "readers": readers,
        "reader_mean": float(np.mean(list(readers.values()))) if readers else float("nan"),
        "machine": machine,
    }


def check_machine_beats(answer: Any, result: Mapping[str, Any]) -> CheckResult:
    """Did the learner predict whether the machine observer is more accurate than the readers on average?

    Args:
        answer: True (the machine is more accurate) or False, or None.
        result: :func:`human_vs_machine`'s result.
    """
    a = _yes_no(answer, "machine_beats_readers")
    if a is None:
        return _unanswered("machine_beats_readers", "True or False")
    h, m = result["reader_mean"], result["machine"]
    if not (math.isfinite(h) and math.isfinite(m)):
        return CheckResult(
            False,
            "Cannot tell yet: no reader has answered (set `reader` in the parameters cell and "
            "rate) or the machine observer did not run.",
        )
    return _verdict(
        a == (m > h),
        f"readers' mean accuracy {h:.3f} ({len(result['readers'])} reader(s)), machine observer {m:.3f}.",
    )


def score_guesses(guesses: Any, names: Sequence[str], key: pd.DataFrame) -> pd.DataFrame:
    """The learner's own real/generated guesses for the first gallery images, against the answer key.

    Args:
        guesses: a string of ``R`` (real) and ``G`` (generated), one letter per image in the order shown
            (spaces ignored), e.g. ``"RGGR RGRG"``.
        names: the gallery file names in the order shown.
        key: the answer key (:meth:`ctad_core.turing.Gallery.key`).

    Returns:
        One row per guessed image: ``image``, ``guess``, ``truth``, ``right``.

    Raises:
        ValueError: letters other than R/G, or more guesses than images.
    """
    letters = str(guesses).replace(" ", "").upper()
    bad = sorted(set(letters) - {"R", "G"})
    if bad:
        raise ValueError(f"`my_guesses` may hold only R (real) and G (generated), found {bad}")
    if len(letters) > len(names):
        raise ValueError(f"`my_guesses` has {len(letters)} letters for {len(names)} images shown")
    truth = dict(zip(key["image"].astype(str), key["truth"].astype(str)))
    words = {"R": "real", "G": "generated"}
    rows = [{"image": n, "guess": words[g], "truth": truth[n]} for n, g in zip(names, letters)]
    df = pd.DataFrame(rows, columns=["image", "guess", "truth"])
    df["right"] = df["guess"] == df["truth"]
    return df


def check_guesses(guesses: Any, names: Sequence[str], key: pd.DataFrame) -> CheckResult:
    """Score the learner's guesses (:func:`score_guesses`); ``ok`` when more than half are right.

    With ``n`` guesses a coin is right n/2 times on average; the message gives the count and which were wrong.
    """
    if guesses is None:
        return _unanswered("my_guesses", f"a string of R/G, one letter per image shown, e.g. {'RG' * 4!r}")
    df = score_guesses(guesses, names, key)
    if df.empty:
        return _unanswered("my_guesses", "at least one letter R or G")
    k, n = int(df["right"].sum()), len(df)
    wrong = [i + 1 for i, r in enumerate(df["right"]) if not r]
    return _verdict(
        2 * k > n,
        f"{k} of {n} right (a coin: {n / 2:g} on average)"
        + (f"; wrong: image(s) {wrong}." if wrong else "."),
    )


# ---------------------------------------------------------------------------- notebook 07: AUROC vs AUPRC


def pixel_auroc_auprc(res: MethodResults, seed: int = 0) -> pd.DataFrame:
    """Pixel AUROC and AUPRC of the method's test maps inside the evaluation mask, and of a random map.

    A random map scores AUROC ≈ 0.5 whatever the class balance, but AUPRC ≈ the share of lesion pixels
    (the prevalence): with rare lesions the two tell different stories.

    Returns:
        Rows ``method`` and ``random map``, columns ``AUROC``, ``AUPRC``, ``prevalence``.

    Raises:
        ValueError: results without maps or lesion masks.
    """
    if res.maps is None or res.lesion is None:
        raise ValueError(f"{res.name}: needs maps and lesion masks for pixel metrics")
    test = np.asarray(res.split).astype(str) == "test"
    inside = np.ones(res.maps[test].shape, bool) if res.brain is None else res.brain[test] != 0
    s = np.asarray(res.maps[test], dtype=np.float64)[inside]
    y = (res.lesion[test] != 0)[inside].astype(int)
    rnd = np.random.default_rng(seed).random(s.size)
    prev = float(y.mean()) if y.size else float("nan")
    return pd.DataFrame(
        {
            "AUROC": [M.roc_auc(s, y), M.roc_auc(rnd, y)],
            "AUPRC": [M.average_precision(s, y), M.average_precision(rnd, y)],
            "prevalence": [prev, prev],
        },
        index=["method", "random map"],
    )


def check_higher_metric(answer: Any, table: pd.DataFrame) -> CheckResult:
    """Did the learner predict whether the method's pixel AUROC or AUPRC is the higher number?

    Args:
        answer: ``"AUROC"`` or ``"AUPRC"`` (or None).
        table: :func:`pixel_auroc_auprc`'s result.
    """
    row = table.loc["method"]
    res = _check_best(answer, {"AUROC": row["AUROC"], "AUPRC": row["AUPRC"]}, "higher_metric", "value")
    if answer is None:
        return res
    return CheckResult(
        res.ok,
        res.message + f" Lesion pixels are {row['prevalence']:.2%} of the mask; a random map "
        f"scores AUROC {table.loc['random map', 'AUROC']:.2f}, AUPRC "
        f"{table.loc['random map', 'AUPRC']:.3f}.",
    )


#: every public name, for ``from ctad_core.exercises import *`` in a notebook.
__all__ = [
    "CheckResult",
    "check_better_method",
    "check_fill",
    "check_guesses",
    "check_higher_metric",
    "check_lesion_brighter",
    "check_machine_beats",
    "check_memorisation",
    "check_oracle_share",
    "check_progress",
    "check_residual",
    "check_restoration_better",
    "check_vote",
    "check_window",
    "compare_auroc",
    "encoder_vs_restoration",
    "erased_box_fill",
    "human_vs_machine",
    "intensity_distance",
    "kind_auroc",
    "lesion_hu",
    "memorisation",
    "one_member",
    "pick_method",
    "pixel_auroc_auprc",
    "residual_dice",
    "score_guesses",
    "val_test_dice",
    "vote_vs_member",
    "window_contrast",
    "with_residual",
]

"""How far an intensity rule gets on a phantom set, and how long the set takes to build.

The rule has no model: the anomaly map is the HU itself inside an intracranial mask without bone, and a
scan's score is the mean of the top 1 % of that map (3D: the volume; 2D: each slice, then the maximum
over the scan's slices, as notebook 07 scores 2D maps). A phantom set on which this rule separates a
lesion kind from healthy scans (scan AUROC near 1) tests nothing a learned model adds.

- intracranial mask: the phantom's brain mask, minus bone (HU > 300, dilated by one voxel, in-plane for
  2D slices), as a bone-threshold skull strip would give on a real scan;
- scan AUROC per kind: healthy test scans against the test scans of that kind (sklearn);
- haemorrhage pixel AUPRC: every mask pixel of the healthy and haemorrhage-kind test scans, positives the
  haemorrhage label codes (IPH, SDH, EDH, SAH, IVH; oedema is not a positive) (sklearn);
- per variant (when the manifest has a ``variant`` column): the same scan AUROC per ``kind/variant``.

Run it on any checkout (it only uses APIs that exist since the phantom set was introduced)::

    PYTHONPATH=<checkout> .venv/bin/python <checkout>/benchmarks/bench_phantom_rule.py --profile quick

A benchmark prints figures; timings depend on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from scipy import ndimage as ndi
from sklearn.metrics import average_precision_score, roc_auc_score

from ctad_core.data.manifest import load_slices, load_volumes, read_manifest
from ctad_core.data.phantom import HAEMORRHAGE_KINDS, LESION_CODES
from ctad_core.data.phantom_set import PhantomSetSpec, prepare_phantoms
from ctad_core.data.template import load_template

BONE_HU = 300.0
TOP_FRACTION = 0.01
HAEM_CODES = [LESION_CODES[k] for k in HAEMORRHAGE_KINDS]


def rule_mask(hu: np.ndarray, brain: np.ndarray, spatial_dims: int) -> np.ndarray:
    """Intracranial mask without bone: ``brain`` minus HU > 300 grown by one voxel (in-plane for 2D)."""
    struct = ndi.generate_binary_structure(3, 1)
    if spatial_dims == 2:
        struct[0] = struct[2] = False  # (N, H, W) stacks: grow within each slice only
    bone = ndi.binary_dilation(hu > BONE_HU, structure=struct)
    return (brain > 0) & ~bone


def top_mean(values: np.ndarray) -> float:
    """Mean of the top 1 % of ``values`` (at least one value); 0.0 for none."""
    if values.size == 0:
        return 0.0
    k = max(1, int(np.ceil(TOP_FRACTION * values.size)))
    return float(np.partition(values, values.size - k)[values.size - k :].mean())


def auroc(healthy: np.ndarray, lesioned: np.ndarray) -> float:
    if not len(healthy) or not len(lesioned):
        return float("nan")
    y = np.r_[np.zeros(len(healthy)), np.ones(len(lesioned))]
    return float(roc_auc_score(y, np.r_[healthy, lesioned]))


def spec_from_profile(profile: str, overrides: list[str] | None = None) -> PhantomSetSpec:
    """The notebook-01 phantom set of a parameter profile (keys that :class:`PhantomSetSpec` knows).

    ``overrides`` are ``key=value`` strings (YAML values), e.g. ``n_test_per_kind=20``.
    """
    path = Path(__file__).parents[1] / "parameters" / profile / "01_data_prep.yaml"
    params = yaml.safe_load(path.read_text()) or {}
    for item in overrides or []:
        key, _, value = item.partition("=")
        params[key.strip()] = yaml.safe_load(value)
    names = {f.name for f in dataclasses.fields(PhantomSetSpec)}
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items() if k in names}
    return PhantomSetSpec(**kw)


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the build's workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument(
        "--workers", type=int, default=None, help="build processes (default: one per core, at most 8)"
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="change the profile's set, e.g. n_test_per_kind=20 n_test_healthy=40",
    )
    args = ap.parse_args()
    spec = spec_from_profile(args.profile, args.set)
    t0 = time.perf_counter()
    load_template()
    t_tpl = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        t1, c1 = time.perf_counter(), cpu_seconds()
        prepare_phantoms(run / "data", spec, [0.0, 80.0], workers=args.workers, progress=False)
        t_set, c_set = time.perf_counter() - t1, cpu_seconds() - c1
        df = read_manifest(run)
        vols = load_volumes(run, "test")
        sl = load_slices(run, "test")
    test = df[df.split == "test"].set_index("scan_id")
    variant = test["variant"] if "variant" in test.columns else None

    # 3D: one score per volume; pixel AUPRC over the healthy + haemorrhage volumes.
    s3, px3, lab3 = {}, [], []
    for i, sid in enumerate(vols.scan_id):
        m = rule_mask(vols.image[i], vols.brain[i], 3)
        s3[sid] = top_mean(vols.image[i][m])
        if vols.kind[i] == "healthy" or vols.kind[i] in HAEMORRHAGE_KINDS:
            px3.append(vols.image[i][m])
            lab3.append(np.isin(vols.lesion[i][m], HAEM_CODES))
    # 2D: one score per slice, the scan's score is the maximum over its slices.
    m2 = rule_mask(sl.image, sl.brain, 2)
    s2: dict[str, float] = {}
    px2, lab2 = [], []
    for j in range(len(sl)):
        v = sl.image[j][m2[j]]
        s2[sl.scan_id[j]] = max(s2.get(sl.scan_id[j], -np.inf), top_mean(v))
        if sl.kind[j] == "healthy" or sl.kind[j] in HAEMORRHAGE_KINDS:
            px2.append(v)
            lab2.append(np.isin(sl.lesion[j][m2[j]], HAEM_CODES))

    def scores(table: dict[str, float], ids) -> np.ndarray:
        return np.array([table[i] for i in ids])

    healthy_ids = test.index[test.kind == "healthy"]
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores "
        f"(other jobs may share it)"
    )
    print(
        f"profile {args.profile} {' '.join(args.set)}: {len(df)} scans, 3D {tuple(spec.shape_3d)}, "
        f"2D {spec.slices_2d}x{spec.size_2d}^2"
    )
    print(
        f"template load: {t_tpl:.1f} s; phantom set build + write: {t_set:.1f} s "
        f"({t_set / len(df):.2f} s per scan)  goal: < 120 s"
    )
    print(
        f"CPU time of the build (all processes): {c_set:.1f} s; on {args.workers or min(8, os.cpu_count() or 1)} "
        f"otherwise idle cores that is about {c_set / (args.workers or min(8, os.cpu_count() or 1)):.1f} s wall"
    )
    print()
    print("| kind | test scans | scan AUROC 3D | scan AUROC 2D |")
    print("|---|---|---|---|")
    kinds = [k for k in dict.fromkeys(test.kind) if k != "healthy"]
    for k in kinds:
        ids = test.index[test.kind == k]
        print(
            f"| {k} | {len(ids)} | {auroc(scores(s3, healthy_ids), scores(s3, ids)):.2f} "
            f"| {auroc(scores(s2, healthy_ids), scores(s2, ids)):.2f} |"
        )
    ids = test.index[test.kind.isin(HAEMORRHAGE_KINDS)]
    print(
        f"| all haemorrhage | {len(ids)} | {auroc(scores(s3, healthy_ids), scores(s3, ids)):.2f} "
        f"| {auroc(scores(s2, healthy_ids), scores(s2, ids)):.2f} |"
    )
    ap3 = average_precision_score(np.concatenate(lab3), np.concatenate(px3))
    ap2 = average_precision_score(np.concatenate(lab2), np.concatenate(px2))
    prev3 = np.concatenate(lab3).mean()
    prev2 = np.concatenate(lab2).mean()
    print(
        f"| haemorrhage pixel AUPRC | | {ap3:.3f} (prevalence {prev3:.4f}) | {ap2:.3f} (prevalence {prev2:.4f}) |"
    )
    if variant is not None:
        print()
        print("| kind / variant | test scans | scan AUROC 3D | scan AUROC 2D |")
        print("|---|---|---|---|")
        for (k, v), grp in test[test.kind != "healthy"].groupby(["kind", "variant"], sort=True):
            print(
                f"| {k} / {v} | {len(grp)} | {auroc(scores(s3, healthy_ids), scores(s3, grp.index)):.2f} "
                f"| {auroc(scores(s2, healthy_ids), scores(s2, grp.index)):.2f} |"
            )


if __name__ == "__main__":
    main()

"""Per-method results on the validation and test sets: the contract between notebooks 04/05 and 07.

Each method writes ``<stage_dir>/methods/<name>.npz`` (arrays) and ``<name>.json`` (scalars):

- items are slices for a 2D method and volumes for a 3D one;
- ``maps`` are voxel/pixel anomaly maps (higher = more anomalous), ``lesion`` the ground-truth label map
  (0 = normal) and ``brain`` the mask inside which pixel metrics are computed;
- ``scan_score`` is the method's own per-item anomaly score (e.g. the seed's score, I or F score).

Notebook 07 gathers every method it finds with :func:`find_method_results`.
"""

from __future__ import annotations

import os
import uuid
import zipfile
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ctad_core.utils import read_json, save_npz, write_json

#: The segmentation step of a method that declares none: threshold ``maps``, nothing else.
NO_SEGMENTATION: dict[str, Any] = {"closing_radius": 0, "vote": None, "min_component_size": 0}


@dataclass
class MethodResults:
    """Anomaly maps and scores of one method on val + test items.

    Attributes:
        name: method name, e.g. ``"fastgan_restoration"``.
        level: what an item is: ``"2d"`` (items are slices) or ``"3d"`` (items are volumes). This is not
            the model's dimensionality (:attr:`model_dims`): ``fanogan2d`` runs a 2D model on a volume's
            mid-axial slices and scores the volume, so its level is ``"3d"`` and its model ``"2d"``.
        scan_id: (N,) scan of each item; split: (N,) ``val``/``test``; kind: (N,) lesion kind or ``healthy``.
        scan_score: (N,) float anomaly score per item.
        maps: (N, *spatial) float32 anomaly maps, or None for score-only methods.
        lesion: (N, *spatial) uint8 ground truth, or None.
        brain: (N, *spatial) uint8 evaluation mask, or None (whole image).
        head: (N, *spatial) uint8 head mask of a full-head method (its maps cover the head), or None; the
            evaluator scores the kinds outside the brain (:data:`ctad_core.kinds.OUTSIDE_BRAIN_KINDS`) inside it
            as extra figures (``metrics["head_mask"]``).
        recon: (N, *spatial) float32 reconstructions in model range [-1, 1], or None.
        maps_haemorrhage: (N, *spatial) float32 maps made with ρ = max(·, 0) (only tissue brighter than its
            reconstruction), which seed 000 uses for its haemorrhage test set; None: ``maps`` serve there too.
        member_maps: (M, N, *spatial) float32 maps of each of M ensemble members, where members vote (seed
            000); ``maps`` is then their mean. None for single models.
        member_maps_haemorrhage: (M, N, *spatial) float32, the members' ρ = max(·, 0) maps, or None.
        inputs: (N, *spatial) float32 the items' inputs in model range [-1, 1] as the model saw them, so that
            no later stage re-derives them (reconstruction-error statistics need them with ``recon``).
        info: JSON-able extras: ``seconds_per_scan``, ``device``, ``feature_space``, parameters used,
            ``model_dims`` (see :attr:`model_dims`), and ``segmentation``: the method's own segmentation
            step, which the evaluator applies after thresholding — a dict with ``closing_radius`` (int, 0 =
            none; seed 000), ``vote`` (``"majority"``: a strict majority of ``member_maps`` must agree, seed
            000; None: threshold ``maps``), ``min_component_size`` (int voxels, 0 = none; seed 004) — see
            :data:`NO_SEGMENTATION`.
    """

    name: str
    level: str
    scan_id: np.ndarray
    split: np.ndarray
    kind: np.ndarray
    scan_score: np.ndarray
    maps: np.ndarray | None = None
    lesion: np.ndarray | None = None
    brain: np.ndarray | None = None
    recon: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    maps_haemorrhage: np.ndarray | None = None
    member_maps: np.ndarray | None = None
    member_maps_haemorrhage: np.ndarray | None = None
    inputs: np.ndarray | None = None
    head: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.level not in ("2d", "3d"):
            raise ValueError(f"level must be '2d' or '3d', got {self.level!r}")
        n = len(self.scan_id)
        for k in ("split", "kind", "scan_score"):
            if len(getattr(self, k)) != n:
                raise ValueError(f"{self.name}: {k} has {len(getattr(self, k))} items, scan_id has {n}")
        for k in ("maps", "lesion", "brain", "recon", "maps_haemorrhage", "inputs", "head"):
            a = getattr(self, k)
            if a is not None and a.shape[0] != n:
                raise ValueError(f"{self.name}: {k} has shape {a.shape}, expected {n} items first")
        for k in ("member_maps", "member_maps_haemorrhage"):
            a = getattr(self, k)
            if a is not None and (a.ndim < 2 or a.shape[1] != n):
                raise ValueError(f"{self.name}: {k} has shape {a.shape}, expected (members, {n}, ...)")
        seg = self.info.get("segmentation")
        if seg is not None:
            unknown = set(seg) - set(NO_SEGMENTATION)
            if unknown:
                raise ValueError(f"{self.name}: unknown segmentation keys {sorted(unknown)}")
            if seg.get("vote") not in (None, "majority"):
                raise ValueError(
                    f"{self.name}: segmentation vote must be None or 'majority', got {seg['vote']!r}"
                )
            if seg.get("vote") and self.member_maps is None:
                raise ValueError(f"{self.name}: a majority vote needs member_maps")

    _ARRAYS = (
        "scan_id",
        "split",
        "kind",
        "scan_score",
        "maps",
        "lesion",
        "brain",
        "recon",
        "maps_haemorrhage",
        "member_maps",
        "member_maps_haemorrhage",
        "inputs",
        "head",
    )

    @property
    def segmentation(self) -> dict[str, Any]:
        """The method's segmentation step (``info["segmentation"]`` over :data:`NO_SEGMENTATION`)."""
        return {**NO_SEGMENTATION, **(self.info.get("segmentation") or {})}

    @property
    def model_dims(self) -> str:
        """The model's dimensionality, ``"2d"`` or ``"3d"``: ``info["model_dims"]``, else the items' ``level``."""
        return str(self.info.get("model_dims", self.level))


def save_method_results(stage_dir: str | os.PathLike, res: MethodResults) -> Path:
    """Write ``stage_dir/methods/<name>.npz`` and ``.json`` atomically; returns the npz path.

    The ``.json`` carries a token (``saved``) drawn anew at every save, so that a saved evaluation
    (:mod:`ctad_core.evaluation.store`) can tell a rewritten file from the old one even where the file
    system's modification times are coarse."""
    out = Path(stage_dir) / "methods"
    arrays = {k: getattr(res, k) for k in MethodResults._ARRAYS if getattr(res, k) is not None}
    arrays["scan_id"] = np.asarray(arrays["scan_id"]).astype(str)
    arrays["split"] = np.asarray(arrays["split"]).astype(str)
    arrays["kind"] = np.asarray(arrays["kind"]).astype(str)
    npz = save_npz(out / f"{res.name}.npz", **arrays)
    write_json(out / f"{res.name}.json",
               {"name": res.name, "level": res.level, "info": res.info, "saved": uuid.uuid4().hex})
    return npz


def load_method_results(npz_path: str | os.PathLike, exclude: Collection[str] = ()) -> MethodResults:
    """Read one method's results written by :func:`save_method_results`.

    Args:
        npz_path: the ``.npz`` file (its ``.json`` beside it).
        exclude: optional arrays not to read (e.g. ``("recon", "inputs")`` where only maps and scores are
            needed); they come back as None. The required ones (``scan_id``, ``split``, ``kind``,
            ``scan_score``) cannot be excluded.

    Raises:
        ValueError: excluding a required array. TypeError: ``exclude`` given as one string.
    """
    if isinstance(exclude, str):
        raise TypeError(f"{npz_path}: exclude is a collection of array names, got the string {exclude!r}")
    required = {"scan_id", "split", "kind", "scan_score"}
    if required & set(exclude):
        raise ValueError(f"{npz_path}: cannot exclude the required arrays {sorted(required & set(exclude))}")
    npz_path = Path(npz_path)
    meta = read_json(npz_path.with_suffix(".json"))
    with np.load(npz_path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in exclude}
    return MethodResults(name=meta["name"], level=meta["level"], info=meta.get("info", {}), **arrays)


def result_shapes(npz_path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """The shape of every array in a results file, read from the ``.npy`` headers inside the ``.npz`` (no
    array data is read or decompressed beyond each header).

    Raises:
        ValueError: a member that is not an ``.npy`` array (naming the file and the member).
    """
    shapes = {}
    with zipfile.ZipFile(npz_path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                raise ValueError(f"{npz_path}: member {info.filename!r} is not a .npy array")
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shapes[info.filename[: -len(".npy")]] = tuple(read(f)[0])
    return shapes


@dataclass(frozen=True)
class ResultsHeader:
    """What a results file holds, without its arrays: ``name``, ``level``, ``info`` and ``shapes`` (array name →
    shape, only the arrays present)."""

    name: str
    level: str
    info: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]

    @property
    def n_items(self) -> int:
        return int(self.shapes["scan_id"][0])


def results_header(npz_path: str | os.PathLike) -> ResultsHeader:
    """:class:`ResultsHeader` of a file written by :func:`save_method_results` (its ``.json`` and array headers)."""
    meta = read_json(Path(npz_path).with_suffix(".json"))
    return ResultsHeader(meta["name"], meta["level"], meta.get("info", {}), result_shapes(npz_path))


def header_of(res: MethodResults) -> ResultsHeader:
    """:class:`ResultsHeader` of results in memory (the same fields as :func:`results_header`)."""
    shapes = {k: tuple(np.shape(getattr(res, k))) for k in MethodResults._ARRAYS if getattr(res, k) is not None}
    return ResultsHeader(res.name, res.level, dict(res.info), shapes)


def find_method_results(run_dir: str | os.PathLike) -> dict[str, Path]:
    """All methods' result files under ``run_dir/*/methods/``, by name (sorted)."""
    found = sorted(Path(run_dir).glob("*/methods/*.npz"))
    return {p.stem: p for p in found}


class LazyResults(Mapping):
    """Methods' results by name, read from disk when asked for and not kept: a read-only mapping over
    :func:`find_method_results`' files that holds at most ``keep`` methods' arrays at a time.

    Notebook 07 shows every method's figures; holding all of them at once needs ~7 GB per method at the
    ``gpu`` profile's 158 validation and test volumes of 128³ (its dry run's 07 kernel reached 12 GB on 8
    volumes per method and was killed). Iterating, ``len`` and ``in`` read no arrays.

    Args:
        paths: method name → ``.npz`` written by :func:`save_method_results`.
        keep: how many most recently read methods stay in memory (≥ 1).

    Raises:
        KeyError: for a name without a file. ValueError: if ``keep`` < 1.
    """

    def __init__(self, paths: Mapping[str, str | os.PathLike], keep: int = 1) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self._paths = {n: Path(p) for n, p in paths.items()}
        self._keep = keep
        self._cache: dict[str, MethodResults] = {}

    def __getitem__(self, name: str) -> MethodResults:
        if name not in self._paths:
            raise KeyError(f"no results for method {name!r}; have {sorted(self._paths)}")
        if name in self._cache:
            self._cache[name] = self._cache.pop(name)  # most recent last
            return self._cache[name]
        res = load_method_results(self._paths[name])
        self._cache[name] = res
        while len(self._cache) > self._keep:
            self._cache.pop(next(iter(self._cache)))
        return res

    def header(self, name: str) -> ResultsHeader:
        """Name, level, info and array shapes of one method, read without its arrays (:func:`results_header`)."""
        if name not in self._paths:
            raise KeyError(f"no results for method {name!r}; have {sorted(self._paths)}")
        if name in self._cache:
            return header_of(self._cache[name])
        return results_header(self._paths[name])

    def array(self, name: str, key: str) -> np.ndarray | None:
        """One array of one method (e.g. ``"split"``), reading only that member of its file; None if absent."""
        if name not in self._paths:
            raise KeyError(f"no results for method {name!r}; have {sorted(self._paths)}")
        if name in self._cache:
            return getattr(self._cache[name], key)
        with np.load(self._paths[name], allow_pickle=False) as z:
            return z[key] if key in z.files else None

    def __contains__(self, name: object) -> bool:
        return name in self._paths

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

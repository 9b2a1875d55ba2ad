"""The run directory as one contract: every stage's folder and every artifact one stage hands to another.

Layout of ``run_dir`` (notebook → folder)::

    data/          01  manifest.csv, config.json, volumes/, slices.npz  (:mod:`ctad_core.data.manifest`)
    gan/           02  member_k/ checkpoints + ensemble.json            (:mod:`ctad_core.methods.fastgan.train`)
    encoder/       03  member_k/ checkpoints + ensemble.json
    restoration/   04  methods/<name>.npz|json of the 2D methods        (:mod:`ctad_core.results`)
    volumetric/    05  models/, maps/, methods/<name>.npz|json of the 3D methods
    turing/        06  the reader study
    report/        07  metrics.json, report.md, figures

No module or notebook spells a stage's folder or globs what another stage wrote: they ask a :class:`Run`.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctad_core.data.manifest import SliceSet, VolumeSet, load_slices, load_volumes, read_config
from ctad_core.results import MethodResults, load_method_results, save_method_results
from ctad_core.utils import read_json, write_json

#: The stages of a run, in notebook order.
STAGES = ("data", "gan", "encoder", "restoration", "volumetric", "turing", "report")

#: The file a trained ensemble (seed 000's GANs or encoders) is described by.
ENSEMBLE_FILE = "ensemble.json"


@dataclass(frozen=True)
class Ensemble:
    """A trained ensemble of seed 000 (``gan`` or ``encoder``), as :func:`Run.ensemble` reads it.

    Attributes:
        kind: ``"gan"`` or ``"encoder"``.
        members: the members' folders, member 0 first.
        config: the training configuration (``FastGANConfig`` / ``EncoderConfig`` as a dict).
        info: everything else ``ensemble.json`` holds (seed, device, timing, …).
    """

    kind: str
    members: tuple[Path, ...]
    config: dict[str, Any]
    info: dict[str, Any]

    @property
    def n_members(self) -> int:
        return len(self.members)


class Run:
    """One run directory: stage folders, the prepared data, the ensembles and the methods' results.

    Args:
        root: the run directory (``runs/quick``); it need not exist yet.

    Attributes:
        root: the run directory.
        cache: an in-memory memo for loaders that prepare the run's data once per process (e.g. the 3D
            methods' volumes); never written to disk.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Run({str(self.root)!r})"

    # ------------------------------------------------------------------------------------------ folders
    def stage(self, name: str, create: bool = False) -> Path:
        """The folder of stage ``name`` (one of :data:`STAGES`), created when ``create``.

        Raises:
            ValueError: for an unknown stage (lists the stages).
        """
        if name not in STAGES:
            raise ValueError(f"unknown stage {name!r}; the stages of a run are {', '.join(STAGES)}")
        path = self.root / name
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def data(self) -> Path:
        return self.stage("data")

    @property
    def gan(self) -> Path:
        return self.stage("gan")

    @property
    def encoder(self) -> Path:
        return self.stage("encoder")

    @property
    def restoration(self) -> Path:
        return self.stage("restoration")

    @property
    def volumetric(self) -> Path:
        return self.stage("volumetric")

    @property
    def turing(self) -> Path:
        return self.stage("turing")

    @property
    def report(self) -> Path:
        return self.stage("report")

    # --------------------------------------------------------------------------------------------- data
    def config(self) -> dict[str, Any]:
        """``data/config.json`` (how notebook 01 prepared the data).

        Raises:
            FileNotFoundError: naming the file, when notebook 01 has not run for this run.
        """
        path = self.data / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run notebook 01_data_prep first for this run_dir")
        return read_config(self.root)

    def window(self) -> str | tuple[float, float]:
        """The display window the data were prepared with (a preset name or (lower, upper) HU).

        Raises:
            ValueError: naming ``config.json`` when it has no window.
        """
        cfg = self.config()
        if "window" not in cfg:
            raise ValueError(f"{self.data / 'config.json'} has no 'window'")
        w = cfg["window"]
        return w if isinstance(w, str) else (float(w[0]), float(w[1]))

    def slices(self, split: str | None = None) -> SliceSet:
        """The 2D slice set (``data/slices.npz``), optionally one split."""
        return load_slices(self.root, split)

    def volumes(self, splits: str | tuple[str, ...] | None = None) -> VolumeSet:
        """The prepared volumes (``data/volumes``) of some splits (all when None)."""
        return load_volumes(self.root, splits)

    # ---------------------------------------------------------------------------------------- ensembles
    def write_ensemble(self, kind: str, config: dict[str, Any], n_members: int, **info: Any) -> Path:
        """Describe a trained ensemble in ``<kind>/ensemble.json`` (written by seed 000's trainers).

        Args:
            kind: ``"gan"`` or ``"encoder"``.
            config: the members' training configuration as a dict.
            n_members: number of members (folders ``member_0`` … ``member_{n-1}``).
            info: JSON-able extras (seed, device, timing, …).
        """
        folder = self._ensemble_stage(kind)
        return write_json(folder / ENSEMBLE_FILE, {"config": config, "n_members": int(n_members), **info})

    def ensemble(self, kind: str = "gan") -> Ensemble:
        """The trained ensemble of ``kind`` (``"gan"``: notebook 02, ``"encoder"``: notebook 03).

        Raises:
            FileNotFoundError: naming ``ensemble.json`` or a member folder that is missing.
        """
        folder = self._ensemble_stage(kind)
        path = folder / ENSEMBLE_FILE
        if not path.is_file():
            nb = "02_gan_training" if kind == "gan" else "03_encoder_training"
            raise FileNotFoundError(f"{path} not found: run notebook {nb} first for this run_dir")
        meta = read_json(path)
        members = tuple(member_dirs(folder, int(meta["n_members"])))
        missing = [str(m) for m in members if not m.is_dir()]
        if missing:
            raise FileNotFoundError(f"{path} lists members that are missing: {missing}")
        info = {k: v for k, v in meta.items() if k not in ("config", "n_members")}
        return Ensemble(kind, members, dict(meta["config"]), info)

    def _ensemble_stage(self, kind: str) -> Path:
        if kind not in ("gan", "encoder"):
            raise ValueError(f"an ensemble is 'gan' or 'encoder', got {kind!r}")
        return self.stage(kind)

    # ---------------------------------------------------------------------------------- method results
    def save_method_results(self, stage: str, res: MethodResults) -> Path:
        """Write one method's results under ``<stage>/methods/`` (:func:`ctad_core.results.save_method_results`)."""
        return save_method_results(self.stage(stage), res)

    def find_method_results(self) -> dict[str, Path]:
        """Every method's results file of this run, by method name (sorted by name).

        Raises:
            ValueError: when two stages hold results of the same name.
        """
        found: dict[str, Path] = {}
        for stage in STAGES:
            for p in sorted((self.root / stage / "methods").glob("*.npz")):
                if p.stem in found:
                    raise ValueError(f"method {p.stem!r} has results in two stages: {found[p.stem]} and {p}")
                found[p.stem] = p
        return dict(sorted(found.items()))

    def load_method_results(self, name: str, exclude: Collection[str] = ()) -> MethodResults:
        """One method's results by name (``exclude``: arrays not to read, see
        :func:`ctad_core.results.load_method_results`).

        Raises:
            FileNotFoundError: naming the method and the run, listing the methods found.
        """
        found = self.find_method_results()
        if name not in found:
            raise FileNotFoundError(
                f"{self.root}: no results of method {name!r}; found {sorted(found) or 'none'}"
            )
        return load_method_results(found[name], exclude)


def member_dirs(folder: str | os.PathLike, n_members: int) -> list[Path]:
    """``folder/member_k`` for k < n_members (seed 000's ensemble members)."""
    return [Path(folder) / f"member_{k}" for k in range(int(n_members))]

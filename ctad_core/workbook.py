"""The papermill chain and the ``ctad`` command.

    ctad run --profile {smoke,quick,gpu,paper} --run-dir DIR [--only 01,02] [--device cuda] [--set key=value]
    ctad list

Each notebook ``notebooks/NN_name.ipynb`` runs with ``parameters/<profile>/NN_name.yaml`` plus
``run_dir`` (and ``profile``/``device``/``seed`` where its parameters cell declares them); the executed
copy lands in ``DIR/NN_name.ipynb`` and wall times in ``DIR/chain.json``. A failing cell stops the chain
with the notebook and cell named.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ctad_core.utils import read_json, write_json

PROFILES = ("smoke", "quick", "gpu", "paper")
_NB = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.ipynb$")


class ChainError(RuntimeError):
    """A notebook of the chain failed; the message names the notebook and the cell."""


def repo_root() -> Path:
    """The checkout holding ``notebooks/`` and ``parameters/`` (the package is installed editable)."""
    env = os.environ.get("CTAD_ROOT")
    root = Path(env) if env else Path(__file__).resolve().parents[1]
    if not (root / "notebooks").is_dir():
        raise FileNotFoundError(
            f"no notebooks/ under {root}: run from a checkout (pip install -e .) or set CTAD_ROOT"
        )
    return root


def list_notebooks(root: Path | None = None) -> list[Path]:
    """The chain's notebooks in order (``NN_name.ipynb``)."""
    root = root or repo_root()
    return sorted(p for p in (root / "notebooks").iterdir() if _NB.match(p.name))


def notebook_parameters(nb_path: Path) -> dict[str, Any]:
    """Names and default values of a notebook's ``parameters`` cell (literals only)."""
    import papermill as pm

    return {name: info.get("default") for name, info in pm.inspect_notebook(str(nb_path)).items()}


def load_profile(profile: str, nb_path: Path, root: Path | None = None) -> dict[str, Any]:
    """Parameters of ``nb_path`` for ``profile`` (empty when the profile has no file for it)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    root = root or repo_root()
    path = root / "parameters" / profile / (nb_path.stem + ".yaml")
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of parameter names to values")
    return data


def _select(notebooks: list[Path], only: Sequence[str] | None) -> list[Path]:
    if not only:
        return notebooks
    wanted = {o.strip().zfill(2)[:2] for o in only if o.strip()}
    chosen = [p for p in notebooks if p.name[:2] in wanted]
    missing = wanted - {p.name[:2] for p in chosen}
    if missing:
        raise ValueError(f"--only names notebooks that do not exist: {sorted(missing)}")
    return chosen


def run_chain(
    profile: str,
    run_dir: str | os.PathLike,
    only: Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    kernel_name: str | None = None,
    cell_timeout: int | None = None,
) -> dict[str, float]:
    """Execute the notebooks in order with papermill.

    Args:
        profile: one of :data:`PROFILES`.
        run_dir: where every notebook reads and writes (created).
        only: notebook numbers to run (e.g. ``["01", "02"]``); default all.
        overrides: parameter values applied to every notebook that declares them (e.g. ``device``).
        progress: papermill's cell progress bar.
        kernel_name: Jupyter kernel (default: the notebook's, i.e. ``python3`` of this environment).
        cell_timeout: seconds a cell may run before the chain fails (default: no limit).

    Returns:
        Wall seconds per notebook.

    Raises:
        ChainError: a cell failed (message names notebook, cell and error).
    """
    import papermill as pm

    root = repo_root()
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    chain_file = run_dir / "chain.json"
    record = read_json(chain_file) if chain_file.is_file() else {}
    for nb in _select(list_notebooks(root), only):
        declared = notebook_parameters(nb)
        params = load_profile(profile, nb, root)
        unknown = sorted(set(params) - set(declared))
        if unknown:
            raise ValueError(f"parameters/{profile}/{nb.stem}.yaml sets {unknown}, not in {nb.name}'s parameters cell")
        params["run_dir"] = str(run_dir)
        if "profile" in declared:
            params["profile"] = profile
        for k, v in (overrides or {}).items():
            if k in declared:
                params[k] = v
        out = run_dir / nb.name
        print(f"[ctad] {profile}: {nb.name} -> {out}", flush=True)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(nb),
                str(out),
                parameters=params,
                cwd=str(root),
                progress_bar=progress,
                kernel_name=kernel_name,
                request_save_on_cell_execute=True,
                execution_timeout=cell_timeout,
            )
        except TimeoutError as e:
            raise ChainError(f"{nb.name}: a cell ran longer than {cell_timeout} s ({e})\n"
                             f"executed notebook so far: {out}") from None
        except pm.PapermillExecutionError as e:
            raise ChainError(
                f"{nb.name} failed at cell {e.cell_index} (execution count {e.exec_count}): {e.ename}: {e.evalue}\n"
                f"executed notebook with the traceback: {out}"
            ) from None
        times[nb.stem] = round(time.perf_counter() - t0, 1)
        record.setdefault(profile, {})[nb.stem] = times[nb.stem]
        write_json(chain_file, record)
    return times


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for it in items:
        if "=" not in it:
            raise SystemExit(f"--set expects key=value, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ctad`` console script."""
    ap = argparse.ArgumentParser(prog="ctad", description="ctad workbook: run the notebook chain with papermill")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute the notebooks in order")
    r.add_argument("--profile", choices=PROFILES, default="quick")
    r.add_argument("--run-dir", required=True, help="directory every notebook reads from and writes to")
    r.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 01,02")
    r.add_argument("--device", default=None, help="override the device parameter (auto, cpu, cuda, cuda:1)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a parameter in every notebook that declares it (YAML value)")
    r.add_argument("--no-progress", action="store_true")
    sub.add_parser("list", help="list the notebooks of the chain")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        for nb in list_notebooks():
            print(nb.name)
        return 0
    overrides = _parse_set(args.set)
    if args.device:
        overrides["device"] = args.device
    only = [o for o in args.only.split(",") if o.strip()]
    t0 = time.perf_counter()
    try:
        times = run_chain(args.profile, args.run_dir, only, overrides, progress=not args.no_progress)
    except ChainError as e:
        print(f"[ctad] chain stopped: {e}", file=sys.stderr)
        return 1
    for k, v in times.items():
        print(f"[ctad] {k}: {v:.1f} s")
    print(f"[ctad] chain done in {time.perf_counter() - t0:.1f} s; outputs in {Path(args.run_dir).resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

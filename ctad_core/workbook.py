"""The papermill chain and the ``ctad`` command.

    ctad run --profile {smoke,quick,gpu,paper} --run-dir DIR [--only 01,02] [--device cuda] [--set key=value]
             [--resume] [--notebook-timeout S] [--cell-timeout S] [--dry-run [--speed H100=40]]
    ctad lab [--profile quick] [--run-dir runs/quick] [--port N] [--no-browser] [--fresh] [-- JUPYTER ARGS]
    ctad list

Each notebook ``notebooks/NN_name.ipynb`` runs with ``parameters/<profile>/NN_name.yaml`` plus
``run_dir`` (and ``profile``/``device``/``seed`` where its parameters cell declares them); the executed
copy lands in ``DIR/NN_name.ipynb`` and wall times in ``DIR/chain.json``. A failing cell stops the chain
with the notebook and cell named.

An unattended run must never hang. Each notebook therefore runs in a child process (papermill inside)
watched by a wall-clock limit (``--notebook-timeout``, default from ``parameters/<profile>/chain.yaml``):
past it, the child and its kernel are killed and the chain fails naming the notebook and the running cell.
Notebooks run headless (``CTAD_HEADLESS=1``): viewers are static figures and progress bars text, so no
widget traffic can stall the kernel's messages (:mod:`ctad_core.frontend`).

Executed notebooks are signed (nbformat's :class:`~nbformat.sign.NotebookNotary`), so JupyterLab opens
them trusted and shows their outputs as they ran.

``ctad lab`` is the interactive route to the same run directory: it puts working copies of the notebooks
there (the profile's parameters and the absolute ``run_dir`` injected, as ``ctad run`` does; a notebook
already in the directory, e.g. executed by ``ctad run``, is kept) and starts JupyterLab with the run
directory as its root. JupyterLab's autosave then writes outputs into those copies, never into the tracked,
output-free ``notebooks/*.ipynb``, and both routes read and write one ``run_dir`` (:func:`prepare_lab`).

``--resume`` skips the notebooks already finished in ``DIR`` with the same profile and parameters and
restarts at the first that is not (training inside a notebook resumes from its own checkpoints).
``--dry-run`` runs the profile at its real sizes with a few scans and steps, and projects memory and time
(:func:`dry_run_report`).
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

from ctad_core.kinds import LESION_KINDS
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
    """Names and default values of a notebook's ``parameters`` cell (literals only, evaluated)."""
    import ast

    import papermill as pm

    out: dict[str, Any] = {}
    for name, info in pm.inspect_notebook(str(nb_path)).items():
        default = info.get("default")
        try:
            out[name] = ast.literal_eval(default) if isinstance(default, str) else default
        except (ValueError, SyntaxError):
            out[name] = default
    return out


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


def chain_parameters(
    nb: Path,
    profile: str,
    run_dir: Path,
    overrides: dict[str, Any] | None = None,
    root: Path | None = None,
    declared: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What ``ctad run`` and ``ctad lab`` inject into ``nb``: the profile's parameters, ``run_dir`` (absolute),
    ``profile`` where the notebook declares it, and the ``overrides`` the notebook declares.

    Raises:
        ValueError: the profile's file sets a name that ``nb``'s parameters cell lacks.
    """
    declared = notebook_parameters(nb) if declared is None else declared
    params = load_profile(profile, nb, root)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ValueError(
            f"parameters/{profile}/{nb.stem}.yaml sets {unknown}, not in {nb.name}'s parameters cell"
        )
    params["run_dir"] = str(Path(run_dir).resolve())
    if "profile" in declared:
        params["profile"] = profile
    params.update({k: v for k, v in (overrides or {}).items() if k in declared})
    return params


def resolve_run_dir(run_dir: str | os.PathLike) -> Path:
    """``run_dir`` as an absolute path; a relative one is taken from the checkout's root (:func:`repo_root`).

    A notebook opened in place (``jupyter lab notebooks/``) runs with its kernel in ``notebooks/``, where
    ``"runs/quick"`` would name ``notebooks/runs/quick``; ``ctad run --run-dir runs/quick`` started at the
    checkout's root writes to ``runs/quick`` there. Resolved here, both name the same directory. ``ctad run``
    and ``ctad lab`` inject absolute paths, which are returned unchanged.

    In a kernel JupyterLab started for a tracked ``notebooks/NN_x.ipynb`` (``JPY_SESSION_NAME``, set by
    jupyter_server), it also warns that autosave will write outputs into the repository and names
    ``ctad lab``.
    """
    import warnings

    root = repo_root()
    session = os.environ.get("JPY_SESSION_NAME")
    if session and Path(session).resolve().parent == (root / "notebooks").resolve():
        warnings.warn(
            f"{Path(session).name} is the tracked notebook: JupyterLab saves its outputs into the "
            "repository. Work on copies instead: `ctad lab` (see the README, 'In JupyterLab').",
            UserWarning,
            stacklevel=2,
        )
    path = Path(run_dir).expanduser()
    return path if path.is_absolute() else (root / path).resolve()


def unpair(path: str | os.PathLike) -> bool:
    """Drop the jupytext pairing (``metadata.jupytext.formats``) that a copy of a tracked notebook inherits.

    The tracked ``notebooks/NN_x.ipynb`` are paired with ``NN_x.py``; a working or executed copy in a run
    directory keeps that pairing, and JupyterLab (with jupytext's contents manager) would write a ``.py``
    beside it on every save. Rewritten atomically; returns whether anything changed.
    """
    import nbformat

    from ctad_core.utils import atomic_write

    nb = nbformat.read(str(path), as_version=4)
    if nb.metadata.get("jupytext", {}).pop("formats", None) is None:
        return False
    atomic_write(path, lambda p: nbformat.write(nb, str(p)))
    return True


def sign_notebook(path: str | os.PathLike) -> None:
    """Mark a notebook's outputs as trusted for this user's Jupyter (nbformat's :class:`NotebookNotary`).

    The signature (an HMAC of the notebook under the user's secret, ``jupyter --data-dir``) goes into the
    notary's database, not into the file, so the file is not rewritten. Used on the notebooks ``ctad run``
    executed: their outputs are what this machine computed.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    import nbformat
    from nbformat.sign import NotebookNotary

    nb = nbformat.read(str(path), as_version=4)
    notary = NotebookNotary()
    try:
        notary.sign(nb)
    finally:
        notary.store.close()


#: Where ``ctad lab`` moves a working copy that ``--fresh`` replaces.
LAB_PREVIOUS = "previous"


def prepare_lab(
    profile: str,
    run_dir: str | os.PathLike,
    overrides: dict[str, Any] | None = None,
    fresh: bool = False,
    root: Path | None = None,
) -> dict[str, str]:
    """Working copies of the chain's notebooks in ``run_dir``, for JupyterLab (``ctad lab``).

    Each missing ``run_dir/NN_name.ipynb`` is written from ``notebooks/NN_name.ipynb`` with the parameters
    ``ctad run`` would inject (:func:`chain_parameters`, papermill's ``prepare_only``: an ``injected-parameters``
    cell, nothing executed; unpaired as by :func:`unpair`; marked ``metadata.ctad.working_copy``). A
    notebook already there (executed by ``ctad run``, or worked on earlier) is kept; with ``fresh`` it is
    moved to ``run_dir/previous/`` and replaced by a new copy. A later ``ctad run`` into the same directory
    moves a working copy to ``previous/`` before it writes the executed notebook. The tracked notebooks are
    only read.

    Returns:
        Notebook file name → ``"new"``, ``"kept"`` or ``"replaced"``.

    Raises:
        ValueError: unknown profile; ``run_dir`` is the checkout's ``notebooks/`` (the tracked sources).
    """
    import nbformat
    import papermill as pm

    root = root or repo_root()
    run_dir = Path(run_dir).resolve()
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    if run_dir == (root / "notebooks").resolve():
        raise ValueError(
            f"{run_dir} holds the tracked notebooks; choose a run directory (e.g. runs/{profile})"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    done: dict[str, str] = {}
    for nb in list_notebooks(root):
        target = run_dir / nb.name
        state = "new"
        if target.exists():
            if not fresh:
                done[nb.name] = "kept"
                continue
            _move_to_previous(target)
            state = "replaced"
        params = chain_parameters(nb, profile, run_dir, overrides, root)
        tmp = target.with_name(f".{target.stem}.tmp.ipynb")
        pm.execute_notebook(
            str(nb), str(tmp), parameters=params, prepare_only=True, progress_bar=False, log_output=False
        )
        copy = nbformat.read(str(tmp), as_version=4)
        copy.metadata.get("jupytext", {}).pop("formats", None)  # unpaired (see unpair)
        copy.metadata["ctad"] = {"working_copy": True, "profile": profile}  # ctad run moves it aside
        nbformat.write(copy, str(tmp))
        os.replace(tmp, target)
        done[nb.name] = state
    return done


def _move_to_previous(path: Path) -> Path:
    """Move a notebook of a run directory to ``previous/NN_name-<time>.ipynb`` there; returns the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = path.parent / LAB_PREVIOUS / f"{path.stem}-{stamp}.ipynb"
    n = 1
    while dest.exists():  # moved twice within a second: never overwrite an earlier one
        dest, n = dest.with_name(f"{path.stem}-{stamp}-{n}.ipynb"), n + 1
    dest.parent.mkdir(exist_ok=True)
    os.replace(path, dest)
    return dest


def _keep_working_copy(out: Path) -> Path | None:
    """Before ``ctad run`` writes ``out``: a ``ctad lab`` working copy there (a student's work) moves to
    ``previous/``; returns where, or None when ``out`` is absent or an earlier ``ctad run`` output."""
    import json

    try:
        meta = json.loads(out.read_text()).get("metadata", {})
    except (OSError, ValueError):
        return None
    return _move_to_previous(out) if meta.get("ctad", {}).get("working_copy") else None


def lab_command(
    run_dir: Path, port: int | None = None, open_browser: bool = True, extra: Sequence[str] = ()
) -> list[str]:
    """The JupyterLab command line of ``ctad lab``: this environment's JupyterLab rooted at ``run_dir``."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={Path(run_dir).resolve()}"]
    if port is not None:
        cmd.append(f"--ServerApp.port={port}")
    if not open_browser:
        cmd.append("--no-browser")
    return cmd + list(extra)


def _select(notebooks: list[Path], only: Sequence[str] | None) -> list[Path]:
    if not only:
        return notebooks
    wanted = {o.strip().zfill(2)[:2] for o in only if o.strip()}
    chosen = [p for p in notebooks if p.name[:2] in wanted]
    missing = wanted - {p.name[:2] for p in chosen}
    if missing:
        raise ValueError(f"--only names notebooks that do not exist: {sorted(missing)}")
    return chosen


#: Executed notebook outputs that mark a stage as done (``--resume``), by notebook number.
STAGE_OUTPUTS = {
    "01": "data/manifest.csv",
    "02": "gan",
    "03": "encoder",
    "04": "restoration",
    "05": "volumetric",
    "06": "turing",
    "07": "report/metrics.json",
}

#: What a dry run changes, by notebook number: few scans (two lesion kinds, one 2D slice each), small
#: galleries, no widgets. Image, model, batch
#: and latent sizes stay the profile's; every training loop stops after ``dry_steps`` steps
#: (:mod:`ctad_core.probe`).
DRY_RUN_OVERRIDES: dict[str, dict[str, Any]] = {
    "01": {
        "n_train": 6,
        "n_val_healthy": 2,
        "n_test_healthy": 2,
        "n_val_per_kind": 1,
        "n_test_per_kind": 1,
        "slices_2d": 1,
        "kinds": ["iph", "sdh"],
    },
    # the dry data hold n_test_healthy × slices_2d = 2 real healthy test slices: the gallery's real half
    "06": {"n_per_class": 2, "machine_extra": 10, "machine_folds": 2},
    "07": {"n_fid_generated": 32, "fid_num_points": 5, "interactive": False},
}
_SCAN_COUNTS = ("n_train", "n_val_healthy", "n_test_healthy", "n_val_per_kind", "n_test_per_kind")


def _file_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _params_digest(profile: str, params: dict[str, Any]) -> str:
    """A stable digest of what a notebook ran with (for ``--resume``)."""
    import hashlib
    import json

    text = json.dumps({"profile": profile, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _running_cell(executed: Path) -> str:
    """Describe the cell papermill marked as running in a partly executed notebook (or the last one started)."""
    import json

    try:
        cells = json.loads(executed.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return "cell unknown (the executed notebook could not be read)"
    started = [
        (i, c)
        for i, c in enumerate(cells)
        if c.get("cell_type") == "code"
        and c.get("metadata", {}).get("papermill", {}).get("status") == "running"
    ]
    if not started:
        return "no cell had started (kernel start-up or between cells)"
    i, cell = started[-1]
    src = "".join(cell.get("source", "")).strip().splitlines()
    first = next(
        (line for line in src if line.strip() and not line.lstrip().startswith("#")), src[0] if src else ""
    )
    return f"cell {i} ({first[:80]!r})"


def _kill_tree(proc: Any) -> list[int]:
    """Kill a process and every descendant (the Jupyter kernel runs in its own session).

    Returns:
        PIDs still alive 10 s after the kill (e.g. stuck in a driver call), for the error message.
    """
    import psutil

    try:
        parent = psutil.Process(proc.pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        procs = []
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=10)
    return [p.pid for p in alive]


def _tree_rss(proc: Any) -> int:
    """Resident memory of a process and its descendants (bytes; 0 when it is gone)."""
    import psutil

    try:
        parent = psutil.Process(proc.pid)
        total = 0
        for p in [parent, *parent.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total
    except psutil.NoSuchProcess:
        return 0


def _execute_in_child(spec: dict[str, Any], notebook_timeout: float | None, env: dict[str, str]) -> int:
    """Run one notebook in a child process under a wall-clock watchdog.

    The child (``python -m ctad_core.workbook _execute SPEC``) runs papermill; on timeout the child and its
    kernel are killed and :class:`ChainError` names the notebook and the cell that was running.

    Returns:
        Peak resident memory of the child and its kernel, sampled every second (bytes).
    """
    import subprocess
    import tempfile

    nb, out = Path(spec["notebook"]), Path(spec["output"])
    peak = 0
    with tempfile.TemporaryDirectory(prefix="ctad-exec-") as tmp:
        spec_file, result_file = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        write_json(spec_file, {**spec, "result": str(result_file)})
        proc = subprocess.Popen([sys.executable, "-m", "ctad_core.workbook", "_execute", str(spec_file)], env=env)
        deadline = None if notebook_timeout is None else time.monotonic() + notebook_timeout
        try:
            while True:
                try:
                    proc.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    peak = max(peak, _tree_rss(proc))
                    if deadline is not None and time.monotonic() > deadline:
                        cell = _running_cell(out)
                        alive = _kill_tree(proc)
                        stuck = f"; processes still alive after the kill: {alive}" if alive else ""
                        raise ChainError(
                            f"{nb.name}: stopped by the watchdog after {notebook_timeout:g} s at {cell}{stuck}\n"
                            f"executed notebook so far: {out}"
                        ) from None
        except BaseException as e:  # Ctrl-C, SIGTERM (see main): leave no kernel behind
            if not isinstance(e, ChainError):
                _kill_tree(proc)
            raise
        result = read_json(result_file) if result_file.is_file() else None
    if proc.returncode != 0 or result is None or result.get("status") != "ok":
        message = (result or {}).get("message") or (
            f"{nb.name}: the notebook process exited with status {proc.returncode} at {_running_cell(out)}"
        )
        raise ChainError(f"{message}\nexecuted notebook: {out}")
    return peak


def _exit_with_parent() -> None:
    """In the child: exit (and so end the kernel, which watches its own parent) when ``ctad run`` is gone,
    even if it was killed with SIGKILL and could not clean up."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True, name="ctad-parent-watch").start()


def _execute_child(spec_file: str) -> int:
    """The child side of :func:`_execute_in_child`: execute one notebook with papermill, write the outcome."""
    import tempfile

    import papermill as pm
    from traitlets.config import Config

    _exit_with_parent()
    spec = read_json(spec_file)
    nb, out, timeout = Path(spec["notebook"]), Path(spec["output"]), spec.get("cell_timeout")
    result: dict[str, Any] = {"status": "ok"}
    # The kernel talks over Unix sockets in a private directory, not TCP ports: TCP ports are picked free,
    # released and only then bound by the kernel, so two kernels (or a torchrun store) starting at the same
    # moment can race for one port.
    sockets = tempfile.mkdtemp(prefix="ctad-k-")
    config = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(sockets) / "k")}})
    try:
        pm.execute_notebook(
            str(nb),
            str(out),
            parameters=spec["parameters"],
            cwd=spec["cwd"],
            progress_bar=spec.get("progress", True),
            kernel_name=spec.get("kernel_name"),
            request_save_on_cell_execute=True,
            execution_timeout=timeout,
            # no Output-widget emulation: nbclient would send comm messages on the shell socket while it
            # waits there for the execute reply (see ctad_core.frontend)
            widget_registry={},
            config=config,
        )
    except TimeoutError as e:
        result = {"status": "error", "message": f"{nb.name}: a cell ran longer than {timeout} s ({e})"}
    except pm.PapermillExecutionError as e:
        result = {
            "status": "error",
            "message": f"{nb.name} failed at cell {e.cell_index} (execution count {e.exec_count}): {e.ename}: {e.evalue}",
        }
    except Exception as e:  # noqa: BLE001 — a dead kernel, a bad notebook: report it to the parent
        result = {"status": "error", "message": f"{nb.name}: {type(e).__name__}: {e}"}
    finally:
        import shutil

        shutil.rmtree(sockets, ignore_errors=True)
    if out.is_file():  # what ran here, a failed cell included: JupyterLab shows it as it ran
        try:
            unpair(out)
            sign_notebook(out)
        except Exception as e:  # noqa: BLE001 — an unsigned notebook still holds every output
            print(
                f"[ctad] {out.name}: not signed ({type(e).__name__}: {e}); JupyterLab opens it untrusted",
                file=sys.stderr,
            )
    write_json(spec["result"], result)
    return 0 if result["status"] == "ok" else 1


def _stage_complete(run_dir: Path, nb: Path, profile: str, digest: str, record: dict[str, Any]) -> bool:
    """Whether ``--resume`` may skip ``nb``: it finished with the same profile and parameters, and its
    executed copy and its stage's outputs are still there."""
    done = record.get("completed", {}).get(nb.stem)
    if not done or done.get("profile") != profile or done.get("params") != digest:
        return False
    stage = STAGE_OUTPUTS.get(nb.name[:2])
    return (run_dir / nb.name).is_file() and (stage is None or (run_dir / stage).exists())


def run_chain(
    profile: str,
    run_dir: str | os.PathLike,
    only: Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    kernel_name: str | None = None,
    cell_timeout: int | None = None,
    notebook_timeout: float | None = None,
    resume: bool = False,
    dry_run: bool = False,
    dry_steps: int = 2,
    speed: dict[str, float] | None = None,
    max_batch: int | None = None,
) -> dict[str, float]:
    """Execute the notebooks in order with papermill, each in a child process under a watchdog.

    Every notebook runs headless (``CTAD_HEADLESS=1``: static viewers, text progress bars; see
    :mod:`ctad_core.frontend`).

    Args:
        profile: one of :data:`PROFILES`.
        run_dir: where every notebook reads and writes (created).
        only: notebook numbers to run (e.g. ``["01", "02"]``); default all.
        overrides: parameter values applied to every notebook that declares them (e.g. ``device``).
        progress: papermill's cell progress bar.
        kernel_name: Jupyter kernel (default: the notebook's, i.e. ``python3`` of this environment).
        cell_timeout: seconds a cell may run before the chain fails (default: no limit).
        notebook_timeout: wall-clock seconds a whole notebook may take, kernel start included; past it the
            notebook's process and kernel are killed and the chain fails naming the running cell. Default:
            the profile's ``parameters/<profile>/chain.yaml`` (``notebook_timeout_s``), else no limit.
        resume: skip the notebooks that already finished in ``run_dir`` with the same profile and
            parameters (their outputs still there), up to the first that did not; run the rest.
        dry_run: the profile's image, model, batch and latent sizes with a few scans and ``dry_steps``
            steps per training loop; ends with :func:`dry_run_report` (``run_dir/dry_run.md``).
        dry_steps: steps per loop in a dry run (the first is warm-up; seconds per step come from the rest).
        speed: for the dry-run report: device name → assumed speed-up over the measuring device.
        max_batch: dry run only: at most this many items per training batch (``CTAD_DRY_RUN_MAX_BATCH``), for
            a measuring machine with less memory than a step at the profile's batch needs; the report scales
            memory estimates and times to the profile's batch and shows both batches.

    Returns:
        Wall seconds per notebook that ran.

    Raises:
        ChainError: a cell failed or the watchdog fired (message names notebook, cell and error).
        ValueError: unknown profile or notebook, or a parameter file sets a name the notebook lacks.
    """
    root = repo_root()
    run_dir = Path(run_dir).resolve()
    chosen = _select(list_notebooks(root), only)
    chain_cfg = load_chain_config(profile, root)
    if notebook_timeout is None:
        notebook_timeout = chain_cfg.get("notebook_timeout_s")
    run_dir.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    chain_file = run_dir / "chain.json"
    record = read_json(chain_file) if chain_file.is_file() else {}
    if record.get("dry_run", dry_run) != dry_run:
        kind = "a dry run" if record["dry_run"] else "a real run"
        raise ValueError(
            f"{run_dir} holds {kind}: its checkpoints would be taken as finished by the other kind "
            "(a dry run's 2-step models as trained ones). Use another --run-dir."
        )
    record["dry_run"] = dry_run
    order = [p.stem for p in list_notebooks(root)]
    skipping = resume
    for nb in chosen:
        declared = notebook_parameters(nb)
        # what a real run uses (the dry run's data counts are projected back to it)
        real = chain_parameters(nb, profile, run_dir, overrides, root, declared)
        params = dict(real)
        if dry_run:  # the dry run's sizes, under the user's --set
            params.update({k: v for k, v in DRY_RUN_OVERRIDES.get(nb.name[:2], {}).items() if k in declared})
            params.update({k: v for k, v in (overrides or {}).items() if k in declared})
        digest = _params_digest(
            profile,
            {
                **params,
                "dry_run": dry_steps if dry_run else 0,
                **({"dry_run_max_batch": int(max_batch)} if dry_run and max_batch else {}),
                "source_sha": _file_digest(nb),
            },
        )
        if skipping and _stage_complete(run_dir, nb, profile, digest, record):
            print(
                f"[ctad] {profile}: {nb.name} already complete in {run_dir} — skipped (--resume)", flush=True
            )
            continue
        skipping = False
        out = run_dir / nb.name
        print(f"[ctad] {profile}: {nb.name} -> {out}", flush=True)
        kept = _keep_working_copy(out)
        if kept:
            print(f"[ctad] {nb.name}: the `ctad lab` working copy there moved to {kept}", flush=True)
        # this notebook and every later one: their inputs are about to change
        for later in order[order.index(nb.stem) :]:
            record.setdefault("completed", {}).pop(later, None)
        if dry_run and nb.name.startswith("01"):
            record["dry_run_data"] = {
                "real": _data_counts({**declared, **real}),
                "dry": _data_counts({**declared, **params}),
            }
        write_json(chain_file, record)
        env = {**os.environ, "CTAD_HEADLESS": "1", "CTAD_ROOT": str(root)}
        env.pop("CTAD_DRY_RUN_STEPS", None)
        env.pop("CTAD_PROBE_DIR", None)
        env.pop("CTAD_DRY_RUN_MAX_BATCH", None)
        if dry_run:
            probe_dir = run_dir / "dry_run" / nb.stem
            if probe_dir.is_dir():
                for old in probe_dir.glob("*.json"):
                    old.unlink()
            env.update({"CTAD_DRY_RUN_STEPS": str(dry_steps), "CTAD_PROBE_DIR": str(probe_dir)})
            if max_batch:
                env["CTAD_DRY_RUN_MAX_BATCH"] = str(int(max_batch))
        spec = {
            "notebook": str(nb),
            "output": str(out),
            "parameters": params,
            "cwd": str(root),
            "progress": progress,
            "kernel_name": kernel_name,
            "cell_timeout": cell_timeout,
        }
        t0 = time.perf_counter()
        peak = _execute_in_child(spec, notebook_timeout, env)
        times[nb.stem] = round(time.perf_counter() - t0, 1)
        record.setdefault("peak_rss_bytes", {})[nb.stem] = peak
        record.setdefault(profile if not dry_run else f"{profile}-dry-run", {})[nb.stem] = times[nb.stem]
        record.setdefault("completed", {})[nb.stem] = {
            "profile": profile,
            "params": digest,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        write_json(chain_file, record)
    if dry_run:
        dry_run_report(run_dir, profile, speed, root=root)
    return times


def load_chain_config(profile: str, root: Path | None = None) -> dict[str, Any]:
    """``parameters/<profile>/chain.yaml``: settings of the chain itself (``notebook_timeout_s``), or {}."""
    root = root or repo_root()
    path = root / "parameters" / profile / "chain.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or set(data) - {"notebook_timeout_s"}:
        raise ValueError(f"{path}: expected a mapping with notebook_timeout_s only, got {data!r}")
    return data


def _data_counts(params: dict[str, Any]) -> tuple[int, int] | None:
    """(scans, 2D validation + test slices) that a notebook-01 parameter set asks for (phantoms), or None
    when the scans come from real data."""
    if params.get("source", "phantom") != "phantom" or not all(
        k in params for k in (*_SCAN_COUNTS, "slices_2d")
    ):
        return None
    kinds = len(params.get("kinds") or LESION_KINDS)
    evaluated = (
        params["n_val_healthy"]
        + params["n_test_healthy"]
        + kinds * (params["n_val_per_kind"] + params["n_test_per_kind"])
    )
    return int(params["n_train"] + evaluated), int(evaluated * params["slices_2d"])


def _gib(n: float | None) -> str:
    return "—" if n is None else f"{n / 2**30:.2f}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def dry_run_report(
    run_dir: str | os.PathLike, profile: str, speed: dict[str, float] | None = None, root: Path | None = None
) -> dict[str, Any]:
    """Tables of a dry run: per notebook and loop, parameters, memory, seconds per step, projected time.

    Projection: each loop's measured seconds per step × the profile's step count (× the ratio of validation
    and test slices for loops that run once per batch of them: restoration); the rest of the notebook's wall
    time × the ratio of the profile's scans to the dry run's. ``speed`` maps a device name to how many times
    faster than the measuring device it is assumed to be (e.g. ``{"H100": 40}``); the projected times are
    divided by it. The factor is the user's assumption, stated beside the result.

    Writes ``run_dir/dry_run.json`` and ``run_dir/dry_run.md`` and returns the JSON.
    """
    root = root or repo_root()
    run_dir = Path(run_dir)
    record = read_json(run_dir / "chain.json")
    walls = record.get(f"{profile}-dry-run", {})
    scale, eval_scale = 1.0, 1.0
    counts = record.get("dry_run_data")
    if counts and counts.get("real") and counts.get("dry"):  # what the run used, --set included
        (n_real, e_real), (n_dry, e_dry) = counts["real"], counts["dry"]
    else:  # an older run: the profile's files
        nb01 = next((nb for nb in list_notebooks(root) if nb.name.startswith("01")), None)
        real = {**notebook_parameters(nb01), **load_profile(profile, nb01, root)} if nb01 else {}
        both = (_data_counts(real), _data_counts({**real, **DRY_RUN_OVERRIDES["01"]})) if nb01 else (None, None)
        (n_real, e_real), (n_dry, e_dry) = both if all(both) else ((1, 1), (1, 1))
    scale, eval_scale = n_real / n_dry, e_real / e_dry
    nb04 = next((nb for nb in list_notebooks(root) if nb.name.startswith("04")), None)
    cap = {**notebook_parameters(nb04), **load_profile(profile, nb04, root)}.get("max_slices_per_split") if nb04 else 0
    if cap:  # notebook 04 restores at most `cap` slices of each split (val, test): at most 2 × cap
        eval_scale = min(e_real, 2 * cap) / min(e_dry, 2 * cap)
    speed = dict(speed or {})
    report: dict[str, Any] = {
        "profile": profile,
        "scan_scale": scale,
        "eval_slice_scale": eval_scale,
        "speed": speed,
        "notebooks": {},
    }
    lines = [
        f"# Dry run of the `{profile}` profile",
        "",
        f"Data: the profile asks for {scale:.1f}× the dry run's scans and {eval_scale:.1f}× its validation and "
        "test slices (restoration scales with those). Times are projected for the profile's step counts and "
        "data on the device that measured them"
        + ("".join(f"; `{k}` assumes {v:g}× that speed" for k, v in speed.items()))
        + ".",
        "",
    ]
    header = (
        "| notebook | loop | parameters (M) | batch | s/step | steps | peak memory (GiB) | "
        "est. GPU memory (GiB) | projected |" + "".join(f" on {k} |" for k in speed)
    )
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    total = 0.0
    for stem, wall in walls.items():
        loops = [read_json(p) for p in sorted((run_dir / "dry_run" / stem).glob("*.json"))]
        measured = sum(
            (lp["first_step_seconds"] or 0) + (lp["seconds_per_step"] or 0) * max(0, lp["steps_run"] - 1)
            for lp in loops
        )
        projected_loops = 0.0
        rows = []
        for lp in loops:
            left = lp["total_steps"] - lp["start"]
            if lp["scales_with_data"]:  # time per step of the images it ran × the ratio of images
                t = (lp["seconds_per_step"] or 0) * left * eval_scale
            else:  # a fixed number of steps at the profile's batch
                t = (lp.get("seconds_per_step_nominal") or lp["seconds_per_step"] or 0) * left
            projected_loops += t
            rows.append((lp, t))
        projected = projected_loops + max(0.0, wall - measured) * scale
        total += projected
        peak = max(
            [lp["peak_cuda_bytes"] or lp["peak_host_bytes"] for lp in loops]
            + [record.get("peak_rss_bytes", {}).get(stem) or 0],
            default=None,
        ) or None
        gpu = max([lp["estimated_gpu_bytes"] for lp in loops], default=None)
        report["notebooks"][stem] = {
            "wall_seconds": wall,
            "projected_seconds": projected,
            "loops": loops,
            "peak_bytes": peak,
            "estimated_gpu_bytes": gpu,
        }
        extra = "".join(f" {_duration(projected / f)} |" for f in speed.values())
        lines.append(
            f"| **{stem}** | (whole notebook, dry run {wall:.0f} s) | | | | | {_gib(peak)} | {_gib(gpu)} | "
            f"**{_duration(projected)}** |{extra}"
        )
        for lp, t in rows:
            nparams = sum(lp["parameters"].values()) / 1e6
            extra = "".join(f" {_duration(t / f)} |" for f in speed.values())
            lines.append(
                f"| | {lp['name']} | {nparams:.2f} | {lp['batch_size'] or '—'} | "
                f"{(lp['seconds_per_step'] or 0):.3g} | {lp['total_steps'] - lp['start']} | "
                f"{_gib(lp['peak_cuda_bytes'] or lp['peak_host_bytes'])} | "
                f"{_gib(lp['estimated_gpu_bytes'])} | {_duration(t)} |{extra}"
            )
    report["projected_seconds"] = total
    extra = "".join(f" **{_duration(total / f)}** |" for f in speed.values())
    lines.append(f"| **chain** | | | | | | | | **{_duration(total)}** |{extra}")
    lines += [
        "",
        "Peak memory: resident memory of the notebook's process and kernel, sampled each second (a loop's "
        "row: its process's peak so far; `torch.cuda.max_memory_allocated` on CUDA). The GPU estimate is weights + gradients + Adam moments + activations saved for backward "
        "in one step + 1 GiB of CUDA context (`ctad_core.probe`).",
    ]
    write_json(run_dir / "dry_run.json", report)
    from ctad_core.utils import atomic_write

    atomic_write(run_dir / "dry_run.md", lambda p: p.write_text("\n".join(lines) + "\n"))
    return report


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for it in items:
        if "=" not in it:
            raise SystemExit(f"--set expects key=value, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def _parse_speed(items: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for it in items:
        name, _, factor = it.partition("=")
        try:
            out[name.strip()] = float(factor)
        except ValueError:
            raise SystemExit(f"--speed expects NAME=FACTOR (e.g. H100=40), got {it!r}") from None
        if not name.strip() or out[name.strip()] <= 0:
            raise SystemExit(f"--speed expects NAME=FACTOR with a positive factor, got {it!r}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ctad`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_execute"] and len(argv) == 2:  # the watchdog's child process
        return _execute_child(argv[1])
    import signal

    def terminate(signum: int, _frame: Any) -> None:  # kill, timeout, a scheduler's stop, a closed terminal
        raise SystemExit(128 + signum)  # unwinds through run_chain, which kills the notebook and its kernel

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, terminate)
    ap = argparse.ArgumentParser(
        prog="ctad", description="ctad workbook: run the notebook chain with papermill"
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute the notebooks in order")
    r.add_argument("--profile", choices=PROFILES, default="quick")
    r.add_argument("--run-dir", required=True, help="directory every notebook reads from and writes to")
    r.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 01,02")
    r.add_argument("--device", default=None, help="override the device parameter (auto, cpu, cuda, cuda:1)")
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter in every notebook that declares it (YAML value)",
    )
    r.add_argument(
        "--resume",
        action="store_true",
        help="skip notebooks that already finished in --run-dir with the same parameters",
    )
    r.add_argument(
        "--notebook-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wall-clock limit per notebook (default: parameters/<profile>/chain.yaml)",
    )
    r.add_argument("--cell-timeout", type=int, default=None, metavar="SECONDS", help="limit per cell")
    r.add_argument(
        "--dry-run",
        action="store_true",
        help="the profile's sizes with a few scans and --dry-steps steps per training loop; "
        "prints parameters, memory, seconds per step and projected wall time",
    )
    r.add_argument(
        "--dry-steps", type=int, default=2, help="steps per training loop in a dry run (default 2)"
    )
    r.add_argument(
        "--max-batch",
        type=int,
        default=None,
        metavar="N",
        help="dry run: at most N items per training batch, for a machine with less memory than one step at the "
        "profile's batch needs; memory and time are still projected to the profile's batch",
    )
    r.add_argument(
        "--speed",
        action="append",
        default=[],
        metavar="NAME=FACTOR",
        help="dry run: also project for a device NAME assumed FACTOR times faster than this one",
    )
    r.add_argument("--no-progress", action="store_true")
    lab = sub.add_parser(
        "lab",
        help="JupyterLab on working copies of the notebooks in a run directory (never the tracked ones)",
        description="Put working copies of the notebooks into RUN_DIR (the profile's parameters and RUN_DIR "
        "injected; notebooks already there, e.g. from `ctad run`, are kept) and start JupyterLab there. "
        "Arguments after `--` go to JupyterLab.",
    )
    lab.add_argument("--profile", choices=PROFILES, default="quick")
    lab.add_argument("--run-dir", default=None, help="default: runs/<profile> under the current directory")
    lab.add_argument("--device", default=None, help="override the device parameter (auto, cpu, cuda, cuda:1)")
    lab.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="as for `ctad run`")
    lab.add_argument("--port", type=int, default=None)
    lab.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    lab.add_argument(
        "--fresh",
        action="store_true",
        help=f"replace the notebooks already in RUN_DIR by new copies (the old ones move to RUN_DIR/{LAB_PREVIOUS}/)",
    )
    sub.add_parser("list", help="list the notebooks of the chain")
    split = argv.index("--") if "--" in argv else len(argv)
    argv, jupyter_args = argv[:split], argv[split + 1 :]
    args = ap.parse_args(argv)
    if jupyter_args and args.cmd != "lab":
        ap.error("arguments after `--` are for `ctad lab` only")
    if args.cmd == "list":
        for nb in list_notebooks():
            print(nb.name)
        return 0
    if args.cmd == "lab":
        overrides = _parse_set(args.set)
        if args.device:
            overrides["device"] = args.device
        run_dir = Path(args.run_dir or f"runs/{args.profile}").resolve()
        for name, state in prepare_lab(args.profile, run_dir, overrides, fresh=args.fresh).items():
            print(f"[ctad] {run_dir / name}: {state}", flush=True)
        env = {**os.environ, "CTAD_HEADLESS": "0", "CTAD_ROOT": str(repo_root())}
        cmd = lab_command(run_dir, args.port, not args.no_browser, jupyter_args)
        os.execve(sys.executable, cmd, env)  # JupyterLab takes over this process (Ctrl-C stops it)
        return 0  # not reached: execve does not return
    overrides = _parse_set(args.set)
    if args.device:
        overrides["device"] = args.device
    speed = _parse_speed(args.speed)
    if args.dry_steps < 1:
        raise SystemExit("--dry-steps must be >= 1")
    if args.max_batch is not None and (args.max_batch < 1 or not args.dry_run):
        raise SystemExit("--max-batch N needs --dry-run and N >= 1")
    only = [o for o in args.only.split(",") if o.strip()]
    t0 = time.perf_counter()
    try:
        times = run_chain(
            args.profile,
            args.run_dir,
            only,
            overrides,
            progress=not args.no_progress,
            cell_timeout=args.cell_timeout,
            notebook_timeout=args.notebook_timeout,
            resume=args.resume,
            dry_run=args.dry_run,
            dry_steps=args.dry_steps,
            speed=speed,
            max_batch=args.max_batch,
        )
    except ChainError as e:
        print(f"[ctad] chain stopped: {e}", file=sys.stderr)
        return 1
    for k, v in times.items():
        print(f"[ctad] {k}: {v:.1f} s")
    print(f"[ctad] chain done in {time.perf_counter() - t0:.1f} s; outputs in {Path(args.run_dir).resolve()}")
    if args.dry_run:
        print((Path(args.run_dir) / "dry_run.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The chain runner (``ctad run``): watchdog, headless execution, --resume and --dry-run, on tiny notebooks.

Each test builds a throw-away checkout (``notebooks/`` + ``parameters/``) and points ``CTAD_ROOT`` at it,
so the real chain is not involved. Kernels talk over private Unix sockets (no TCP ports), so these tests may
start kernels while the smoke chain runs on another xdist worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.sign import NotebookNotary

from ctad_core import workbook
from ctad_core.workbook import ChainError, run_chain

PARAMS = 'run_dir = "runs/x"\nseed = 0\ndevice = "auto"\nsteps = 3\n'


def _notebook(path: Path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}  # as the tracked notebooks are paired
    first = nbformat.v4.new_code_cell(PARAMS)
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first, *(nbformat.v4.new_code_cell(c) for c in cells)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    root = tmp_path / "checkout"
    for profile in workbook.PROFILES:
        (root / "parameters" / profile).mkdir(parents=True)
    monkeypatch.setenv("CTAD_ROOT", str(root))
    return root


def _kernels_for(root: Path) -> list[psutil.Process]:
    """Kernels started for this test's checkout (other tests' kernels may run beside them under xdist)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if "ipykernel" in " ".join(p.info["cmdline"] or []) and p.environ().get("CTAD_ROOT") == str(root):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def _kernels_of(pid: int) -> list[psutil.Process]:
    try:
        procs = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in procs if "ipykernel" in " ".join(p.cmdline())]


def test_watchdog_stops_a_cell_that_never_returns(fake_root, tmp_path):
    _notebook(fake_root / "notebooks" / "01_hang.ipynb", "x = 1", "import time\nwhile True:\n    time.sleep(0.5)")
    t0 = time.monotonic()
    with pytest.raises(ChainError) as err:
        run_chain("smoke", tmp_path / "run", progress=False, notebook_timeout=25)
    elapsed = time.monotonic() - t0
    assert elapsed < 25 + 30, f"the watchdog fired after {elapsed:.0f} s"
    msg = str(err.value)
    assert "01_hang.ipynb" in msg and "watchdog" in msg and "cell 3 (" in msg and "import time" in msg
    time.sleep(1)
    assert not _kernels_for(fake_root), "kernels left running"


def test_failing_cell_is_named_and_later_notebooks_do_not_run(fake_root, tmp_path):
    _notebook(fake_root / "notebooks" / "01_fail.ipynb", "y = 2", "raise ValueError('bad scan xyz')")
    _notebook(fake_root / "notebooks" / "02_next.ipynb", "z = 3")
    with pytest.raises(ChainError, match=r"01_fail.ipynb failed at cell 3 .*ValueError: bad scan xyz"):
        run_chain("smoke", tmp_path / "run", progress=False, notebook_timeout=120)
    assert not (tmp_path / "run" / "02_next.ipynb").exists()


def test_notebooks_run_headless_over_ipc_with_text_progress_and_static_viewers(
    fake_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))  # the notary's secret and database
    code = (
        "import os, numpy as np\n"
        "from ctad_core import viz\n"
        "from ctad_core.frontend import headless, tqdm\n"
        "assert headless() and os.environ['CTAD_HEADLESS'] == '1'\n"
        "import json\nfrom ipykernel.connect import get_connection_info\n"
        "assert json.loads(get_connection_info())['transport'] == 'ipc'  # no TCP ports to race for\n"
        "for _ in tqdm(range(3)):\n    pass\n"
        "viz.slice_viewer(np.zeros((4, 8, 8), np.float32))"
    )
    _notebook(fake_root / "notebooks" / "01_view.ipynb", code)
    run_chain("smoke", tmp_path / "run", progress=False, notebook_timeout=120)
    cells = json.loads((tmp_path / "run" / "01_view.ipynb").read_text())["cells"]
    outputs = [o for c in cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the static viewer figure is missing"
    assert any("3/3" in "".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
    # signed after execution: JupyterLab (this user's notary) opens it trusted, outputs as they ran
    nb = nbformat.read(tmp_path / "run" / "01_view.ipynb", as_version=4)
    assert NotebookNotary().check_signature(nb)
    assert "formats" not in nb.metadata.get("jupytext", {}), "saving it in JupyterLab would write a .py"


def test_resume_after_a_killed_chain(fake_root, tmp_path):
    """Kill ``ctad run`` (SIGKILL to its process group) inside notebook 02, then ``--resume``: 01 is skipped,
    02 and 03 run; a changed parameter makes 01 run again."""
    block = tmp_path / "block"
    block.write_text("")
    count = (
        "from pathlib import Path\n"
        "def bump(name):\n"
        "    p = Path(run_dir) / f'{name}.count'\n"
        "    p.write_text(str(int(p.read_text()) + 1 if p.exists() else 1))\n"
    )
    nbdir = fake_root / "notebooks"
    _notebook(nbdir / "01_data.ipynb", count + "bump('01')\n(Path(run_dir) / 'data').mkdir(exist_ok=True)\n"
              "(Path(run_dir) / 'data' / 'manifest.csv').write_text('scan\\n')")
    _notebook(nbdir / "02_gan.ipynb", count + "bump('02')\nimport time\n"
              f"while Path({str(block)!r}).exists():\n    time.sleep(0.2)\n(Path(run_dir) / 'gan').mkdir()")
    _notebook(nbdir / "03_encoder.ipynb", count + "bump('03')\n(Path(run_dir) / 'encoder').mkdir()")
    run = tmp_path / "run"
    env = {**os.environ, "CTAD_ROOT": str(fake_root)}
    cmd = [sys.executable, "-m", "ctad_core.workbook", "run", "--profile", "smoke", "--run-dir", str(run),
           "--no-progress", "--notebook-timeout", "120"]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "02.count").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "notebook 02 never started"
            time.sleep(0.2)
        kernels = _kernels_of(proc.pid)
        assert kernels, "notebook 02's kernel should be running"
        os.killpg(proc.pid, signal.SIGKILL)  # a crash or a scheduler's kill: no clean-up at all
        proc.wait(timeout=30)
        # the kernel runs in its own session, out of reach of the kill; it must notice its parent is gone
        _, alive = psutil.wait_procs(kernels, timeout=30)
        assert not alive, f"kernels outlived the killed chain: {[k.pid for k in alive]}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    chain = json.loads((run / "chain.json").read_text())
    assert set(chain["completed"]) == {"01_data"}
    block.unlink()
    first_01 = (run / "01_data.ipynb").stat().st_mtime_ns
    out = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "01_data.ipynb already complete" in out.stdout
    assert (run / "01.count").read_text() == "1" and (run / "02.count").read_text() == "2"
    assert (run / "03.count").read_text() == "1"
    assert (run / "01_data.ipynb").stat().st_mtime_ns == first_01
    assert set(json.loads((run / "chain.json").read_text())["completed"]) == {"01_data", "02_gan", "03_encoder"}
    # another parameter value: nothing is complete for it, so 01 runs again (and everything after it)
    out = subprocess.run([*cmd, "--resume", "--set", "steps=5", "--only", "01"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (run / "01.count").read_text() == "2"


def test_resume_reruns_a_stage_whose_outputs_are_gone(fake_root, tmp_path):
    _notebook(fake_root / "notebooks" / "01_data.ipynb",
              "from pathlib import Path\n(Path(run_dir) / 'data').mkdir(exist_ok=True)\n"
              "(Path(run_dir) / 'data' / 'manifest.csv').write_text('scan\\n')")
    run = tmp_path / "run"
    assert set(run_chain("smoke", run, progress=False, notebook_timeout=120)) == {"01_data"}
    assert run_chain("smoke", run, progress=False, notebook_timeout=120, resume=True) == {}
    (run / "data" / "manifest.csv").unlink()
    assert set(run_chain("smoke", run, progress=False, notebook_timeout=120, resume=True)) == {"01_data"}


def test_dry_run_caps_loops_and_projects_the_profile(fake_root, tmp_path):
    loop = (
        "import torch\n"
        "from ctad_core.probe import LoopProbe\n"
        "net = torch.nn.Linear(10, 5)\n"
        "probe = LoopProbe('train', 1000, 0, {'net': net}, batch_size=4)\n"
        "step = 0\n"
        "while step < probe.stop:\n"
        "    with probe.step():\n"
        "        net(torch.randn(4, 10)).sum().backward()\n"
        "    step += 1\n"
        "probe.close()\n"
        "print('steps run', step)"
    )
    _notebook(fake_root / "notebooks" / "02_train.ipynb", loop)
    run = tmp_path / "run"
    run_chain("gpu", run, progress=False, notebook_timeout=120, dry_run=True, dry_steps=3, speed={"fast": 10})
    rec = json.loads((run / "dry_run" / "02_train" / "train.json").read_text())
    assert rec["steps_run"] == 3 and rec["total_steps"] == 1000 and rec["parameters"] == {"net": 55}
    report = json.loads((run / "dry_run.json").read_text())
    nb = report["notebooks"]["02_train"]
    measured = rec["first_step_seconds"] + 2 * rec["seconds_per_step"]
    # no notebook 01 here, so no data scaling: 1000 steps at the measured rate + the rest of the wall time
    assert nb["projected_seconds"] == pytest.approx(rec["seconds_per_step"] * 1000 + nb["wall_seconds"] - measured)
    assert nb["peak_bytes"] >= rec["peak_host_bytes"] > 0
    md = (run / "dry_run.md").read_text()
    assert "02_train" in md and "| 1000 |" in md and "on fast" in md
    executed = json.loads((run / "02_train.ipynb").read_text())
    assert any("steps run 3" in "".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))


def test_chain_config_and_cli_arguments_are_checked(fake_root, tmp_path):
    (fake_root / "parameters" / "smoke" / "chain.yaml").write_text("notebook_timeout_s: 5\nsurprise: 1\n")
    with pytest.raises(ValueError, match="notebook_timeout_s only"):
        workbook.load_chain_config("smoke", fake_root)
    with pytest.raises(SystemExit, match="NAME=FACTOR"):
        workbook.main(["run", "--profile", "smoke", "--run-dir", str(tmp_path), "--dry-run", "--speed", "H100"])
    with pytest.raises(SystemExit, match="positive"):
        workbook.main(["run", "--profile", "smoke", "--run-dir", str(tmp_path), "--dry-run", "--speed", "H100=0"])


def test_every_profile_has_a_notebook_watchdog():
    root = Path(__file__).resolve().parents[1]
    for profile in workbook.PROFILES:
        limit = workbook.load_chain_config(profile, root).get("notebook_timeout_s")
        assert isinstance(limit, int) and limit > 0, f"parameters/{profile}/chain.yaml: no notebook_timeout_s"


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["gpu", "paper"])
def test_profile_dry_run_completes(profile, tmp_path, repo_root):
    """The real chain at the profile's sizes, a few scans and 2 steps per loop (tens of minutes on 2 CPU cores,
    so not in CI): ``CTAD_TEST_DRY_RUN=gpu`` (or ``paper``, or ``gpu,paper``) runs it."""
    if profile not in os.environ.get("CTAD_TEST_DRY_RUN", "").split(","):
        pytest.skip(f"set CTAD_TEST_DRY_RUN={profile} to run the {profile} dry run (README: 'Before booking a GPU')")
    run = tmp_path / "run"
    run_chain(profile, run, progress=False, dry_run=True, dry_steps=2)
    report = json.loads((run / "dry_run.json").read_text())
    names = sorted(p.stem for p in (repo_root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(report["notebooks"]) == names
    loops = [lp for nb in report["notebooks"].values() for lp in nb["loops"]]
    assert loops and all(lp["steps_run"] == min(2, lp["total_steps"] - lp["start"]) for lp in loops)
    assert report["projected_seconds"] > sum(nb["wall_seconds"] for nb in report["notebooks"].values())


def test_dry_run_projection_by_hand(fake_root, tmp_path):
    """Scans: the profile 20 + 4 + 4 + 2 kinds × (2 + 2) = 36 against the dry run's 6 + 2 + 2 + 2 × (1 + 1) = 14;
    validation + test slices: (4 + 4 + 8) × 3 = 48 against (2 + 2 + 4) × 1 = 8."""
    counts = ("n_train = 10\nn_val_healthy = 2\nn_test_healthy = 2\nn_val_per_kind = 1\nn_test_per_kind = 1\n"
              "slices_2d = 5\nkinds = ['iph', 'sdh']\n")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(PARAMS + counts)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (fake_root / "notebooks").mkdir()
    nbformat.write(nb, fake_root / "notebooks" / "01_data.ipynb")
    (fake_root / "parameters" / "gpu" / "01_data.yaml").write_text(
        "n_train: 20\nn_val_healthy: 4\nn_test_healthy: 4\nn_val_per_kind: 2\nn_test_per_kind: 2\nslices_2d: 3\n")
    run = tmp_path / "run"
    (run / "dry_run" / "04_restore").mkdir(parents=True)
    (run / "chain.json").write_text(json.dumps({"gpu-dry-run": {"04_restore": 100.0}}))
    base = {"device": "cpu", "batch_size": 8, "start": 0, "steps_run": 2, "first_step_seconds": 3.0,
            "parameters": {"G": 10}, "trainable_parameters": 0, "saved_activation_bytes": 0,
            "estimated_gpu_bytes": 2**30, "peak_host_bytes": 2**31, "peak_cuda_bytes": None}
    (run / "dry_run" / "04_restore" / "train.json").write_text(json.dumps(
        {**base, "name": "train", "total_steps": 1000, "seconds_per_step": 2.0, "scales_with_data": False,
         "seconds_per_step_nominal": 2.5}))  # a partial batch ran: the profile's full batch takes longer
    (run / "dry_run" / "04_restore" / "restoration.json").write_text(json.dumps(
        {**base, "name": "restoration", "total_steps": 500, "seconds_per_step": 1.0, "scales_with_data": True,
         "seconds_per_step_nominal": 8.0}))  # ignored: the image ratio already scales restoration
    report = workbook.dry_run_report(run, "gpu", {"X": 4.0}, root=fake_root)
    assert report["scan_scale"] == pytest.approx(36 / 14) and report["eval_slice_scale"] == pytest.approx(48 / 8)
    measured = (3.0 + 2.0) + (3.0 + 1.0)  # first step + one steady step, for each loop
    expected = 2.5 * 1000 + 1.0 * 500 * 48 / 8 + (100.0 - measured) * 36 / 14
    assert report["notebooks"]["04_restore"]["projected_seconds"] == pytest.approx(expected)
    assert report["projected_seconds"] == pytest.approx(expected)
    md = (run / "dry_run.md").read_text()
    assert "on X" in md and "**95.6 min**" in md and "**23.9 min**" in md  # 5734 s, and / 4


def test_dry_and_real_runs_never_share_a_run_dir(fake_root, tmp_path):
    _notebook(fake_root / "notebooks" / "01_a.ipynb", "x = 1")
    run = tmp_path / "run"
    run_chain("smoke", run, progress=False, notebook_timeout=120, dry_run=True)
    with pytest.raises(ValueError, match="holds a dry run"):
        run_chain("smoke", run, progress=False, notebook_timeout=120)
    other = tmp_path / "real"
    run_chain("smoke", other, progress=False, notebook_timeout=120)
    with pytest.raises(ValueError, match="holds a real run"):
        run_chain("smoke", other, progress=False, notebook_timeout=120, dry_run=True)


def test_resume_reruns_everything_after_a_notebook_that_ran_again(fake_root, tmp_path):
    nbdir = fake_root / "notebooks"
    bump = ("from pathlib import Path\np = Path(run_dir) / '{0}.count'\n"
            "p.write_text(str(int(p.read_text()) + 1 if p.exists() else 1))")
    _notebook(nbdir / "01_data.ipynb", bump.format("01") + "\n(Path(run_dir) / 'data').mkdir(exist_ok=True)\n"
              "(Path(run_dir) / 'data' / 'manifest.csv').write_text('scan\\n')")
    _notebook(nbdir / "02_gan.ipynb", bump.format("02") + "\n(Path(run_dir) / 'gan').mkdir(exist_ok=True)")
    run = tmp_path / "run"
    run_chain("smoke", run, progress=False, notebook_timeout=120)
    run_chain("smoke", run, only=["01"], overrides={"steps": 7}, progress=False, notebook_timeout=120)
    # 02 was built on the old 01: --resume must not skip it, although its own parameters did not change
    ran = run_chain("smoke", run, overrides={"steps": 7}, progress=False, notebook_timeout=120, resume=True)
    assert set(ran) == {"02_gan"} and (run / "02.count").read_text() == "2"
    # an edited notebook is not "complete" either
    _notebook(nbdir / "02_gan.ipynb", "# edited\n" + bump.format("02") + "\n(Path(run_dir) / 'gan').mkdir(exist_ok=True)")
    ran = run_chain("smoke", run, overrides={"steps": 7}, progress=False, notebook_timeout=120, resume=True)
    assert set(ran) == {"02_gan"} and (run / "01.count").read_text() == "2"


@pytest.mark.parametrize("how", ["sigterm_ctad", "sigkill_ctad_only"])
def test_a_stopped_ctad_run_leaves_no_kernel(fake_root, tmp_path, how):
    """SIGTERM (kill, timeout, a scheduler) unwinds and kills the notebook's process tree; SIGKILL of ctad alone
    (no clean-up possible) makes its notebook process exit, and the kernel follows its parent."""
    _notebook(fake_root / "notebooks" / "01_sleep.ipynb", "import time\nwhile True:\n    time.sleep(0.2)")
    env = {**os.environ, "CTAD_ROOT": str(fake_root)}
    cmd = [sys.executable, "-m", "ctad_core.workbook", "run", "--profile", "smoke", "--run-dir",
           str(tmp_path / "run"), "--no-progress", "--notebook-timeout", "300"]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _kernels_for(fake_root):
            assert proc.poll() is None and time.monotonic() < deadline, "the kernel never started"
            time.sleep(0.2)
        time.sleep(2)  # the cell is running
        proc.send_signal(signal.SIGTERM if how == "sigterm_ctad" else signal.SIGKILL)
        assert proc.wait(timeout=60) != 0
        deadline = time.monotonic() + 30
        while _kernels_for(fake_root) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _kernels_for(fake_root), f"a kernel outlived ctad ({how})"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_signing_trusts_exactly_the_outputs_signed(tmp_path, monkeypatch):
    """nbformat's notary: a signed notebook is trusted; changing an output afterwards voids the trust; the
    signature lives in the notary's database (the data directory), the file is not rewritten."""
    import hashlib

    jupyter_data = tmp_path / "jupyter-data"  # the notary's secret and signature database
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(jupyter_data))
    path = tmp_path / "executed.ipynb"
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": "<b>ran</b>"})]
    nb.cells = [cell]
    nbformat.write(nb, path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert not NotebookNotary().check_signature(nbformat.read(path, as_version=4))
    workbook.sign_notebook(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    signed = nbformat.read(path, as_version=4)
    assert NotebookNotary().check_signature(signed)
    assert any(jupyter_data.glob("nbsignatures.db*"))
    signed.cells[0].outputs[0]["data"]["text/html"] = "<b>edited</b>"
    assert not NotebookNotary().check_signature(signed)
    with pytest.raises(FileNotFoundError):
        workbook.sign_notebook(tmp_path / "missing.ipynb")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True, timeout=60
    ).stdout


def test_lab_works_on_copies_and_autosave_leaves_tracked_notebooks_clean(fake_root, tmp_path, monkeypatch):
    """``ctad lab``: working copies in the run directory carry the profile's parameters and the absolute
    run_dir; outputs saved into them (JupyterLab's autosave) leave ``git status`` clean; notebooks already
    there are kept, ``--fresh`` moves them aside; the tracked notebooks are never written."""
    _notebook(fake_root / "notebooks" / "01_a.ipynb", "print(steps)")
    _notebook(fake_root / "notebooks" / "02_b.ipynb", "print(seed)")
    (fake_root / "parameters" / "smoke" / "01_a.yaml").write_text("steps: 7\n")
    (fake_root / ".gitignore").write_text("runs/\n")
    _git(fake_root, "init", "-q")
    _git(fake_root, "add", "notebooks", "parameters", ".gitignore")
    _git(fake_root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "notebooks")
    import hashlib

    tracked = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (fake_root / "notebooks").iterdir()}
    monkeypatch.chdir(fake_root)
    run_dir = fake_root / "runs" / "smoke"

    assert workbook.prepare_lab("smoke", "runs/smoke", {"seed": 3, "absent": 1}) == {
        "01_a.ipynb": "new",
        "02_b.ipynb": "new",
    }
    copy = nbformat.read(run_dir / "01_a.ipynb", as_version=4)
    injected = next(c for c in copy.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert (
        "steps = 7" in injected.source and "seed = 3" in injected.source and "absent" not in injected.source
    )
    assert f'run_dir = "{run_dir}"' in injected.source
    assert not [c for c in copy.cells if c.get("outputs")], "a prepared copy executes nothing"
    assert "formats" not in copy.metadata.get("jupytext", {}), "a saved copy would write a paired .py"

    copy.cells[-1].outputs = [nbformat.v4.new_output("stream", text="7\n")]  # what autosave writes
    nbformat.write(copy, run_dir / "01_a.ipynb")
    assert _git(fake_root, "status", "--porcelain") == ""
    assert {
        p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (fake_root / "notebooks").iterdir()
    } == tracked

    assert workbook.prepare_lab("smoke", run_dir)["01_a.ipynb"] == "kept"
    assert nbformat.read(run_dir / "01_a.ipynb", as_version=4).cells[-1].outputs, "worked copy overwritten"
    assert workbook.prepare_lab("smoke", run_dir, fresh=True) == {
        "01_a.ipynb": "replaced",
        "02_b.ipynb": "replaced",
    }
    assert not nbformat.read(run_dir / "01_a.ipynb", as_version=4).cells[-1].outputs
    moved = sorted((run_dir / workbook.LAB_PREVIOUS).glob("01_a-*.ipynb"))
    assert len(moved) == 1 and nbformat.read(moved[0], as_version=4).cells[-1].outputs

    assert nbformat.read(run_dir / "01_a.ipynb", as_version=4).metadata["ctad"]["working_copy"]

    with pytest.raises(ValueError, match="tracked notebooks"):
        workbook.prepare_lab("smoke", fake_root / "notebooks")
    with pytest.raises(ValueError, match="unknown profile"):
        workbook.prepare_lab("nope", run_dir)
    (fake_root / "parameters" / "smoke" / "02_b.yaml").write_text("nosuch: 1\n")
    with pytest.raises(ValueError, match=r"02_b.yaml sets \['nosuch'\]"):
        workbook.prepare_lab("smoke", tmp_path / "other")


def test_one_run_dir_for_ctad_run_ctad_lab_and_a_notebook_opened_in_place(fake_root, monkeypatch):
    """``runs/x`` names one directory whichever way a notebook runs: ``ctad run``/``ctad lab`` started at the
    checkout's root inject it absolute; a kernel started in ``notebooks/`` resolves it from the root."""
    _notebook(fake_root / "notebooks" / "01_a.ipynb", "pass")
    monkeypatch.chdir(fake_root)
    injected = workbook.chain_parameters(fake_root / "notebooks" / "01_a.ipynb", "smoke", Path("runs/x"))[
        "run_dir"
    ]
    assert injected == str(fake_root.resolve() / "runs" / "x")
    monkeypatch.chdir(fake_root / "notebooks")  # JupyterLab opened on notebooks/: the kernel's cwd
    assert Path("runs/x").resolve() != Path(injected)  # the mismatch of issue 15
    assert workbook.resolve_run_dir("runs/x") == Path(injected)
    assert workbook.resolve_run_dir(injected) == Path(injected)
    # a kernel JupyterLab started for the tracked notebook (jupyter_server sets JPY_SESSION_NAME): a warning
    monkeypatch.setenv("JPY_SESSION_NAME", str(fake_root / "notebooks" / "01_a.ipynb"))
    with pytest.warns(UserWarning, match="01_a.ipynb is the tracked notebook.*ctad lab"):
        workbook.resolve_run_dir("runs/x")
    monkeypatch.setenv("JPY_SESSION_NAME", str(fake_root / "runs" / "x" / "01_a.ipynb"))  # a ctad lab copy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert workbook.resolve_run_dir("runs/x") == Path(injected)


def test_lab_command_line(fake_root, tmp_path, monkeypatch):
    """``ctad lab`` prepares the copies and hands over to JupyterLab rooted at the run directory, interactive
    (``CTAD_HEADLESS=0``), with the arguments after ``--``."""
    _notebook(fake_root / "notebooks" / "01_a.ipynb", "pass")
    seen = {}
    monkeypatch.setattr(os, "execve", lambda exe, cmd, env: seen.update(exe=exe, cmd=cmd, env=env))
    monkeypatch.setenv("CTAD_HEADLESS", "1")
    run_dir = tmp_path / "lab"
    args = "lab --profile smoke --port 8899 --no-browser -- --IdentityProvider.token=abc".split()
    workbook.main([*args[:-2], "--run-dir", str(run_dir), *args[-2:]])
    assert (run_dir / "01_a.ipynb").is_file()
    assert seen["cmd"][:3] == [sys.executable, "-m", "jupyterlab"]
    assert (
        f"--ServerApp.root_dir={run_dir.resolve()}" in seen["cmd"] and "--ServerApp.port=8899" in seen["cmd"]
    )
    assert seen["cmd"][-2:] == ["--no-browser", "--IdentityProvider.token=abc"]
    assert seen["env"]["CTAD_HEADLESS"] == "0" and seen["env"]["CTAD_ROOT"] == str(fake_root)
    with pytest.raises(SystemExit):
        workbook.main(["list", "--", "--x"])


def test_ctad_run_moves_a_lab_working_copy_aside(fake_root, tmp_path):
    """A student's working copy from ``ctad lab`` is not overwritten by a later ``ctad run`` into the same
    run directory: it moves to ``previous/``; an earlier ``ctad run`` output is simply replaced."""
    _notebook(fake_root / "notebooks" / "01_a.ipynb", "print('ran', steps)")
    run = tmp_path / "run"
    workbook.prepare_lab("smoke", run)
    worked = nbformat.read(run / "01_a.ipynb", as_version=4)
    worked.cells[-1].source += "  # my answer to exercise 1"
    nbformat.write(worked, run / "01_a.ipynb")
    run_chain("smoke", run, progress=False, notebook_timeout=120)
    moved = list((run / workbook.LAB_PREVIOUS).glob("01_a-*.ipynb"))
    assert len(moved) == 1 and "my answer" in moved[0].read_text()
    executed = nbformat.read(run / "01_a.ipynb", as_version=4)
    assert "ctad" not in executed.metadata and any(c.get("outputs") for c in executed.cells)
    run_chain("smoke", run, progress=False, notebook_timeout=120)  # over its own output: nothing moves
    assert len(list((run / workbook.LAB_PREVIOUS).glob("01_a-*.ipynb"))) == 1


def test_the_dry_turing_gallery_fits_the_dry_data():
    """Notebook 06 draws n_per_class real healthy test slices: a dry run's data must hold that many (the gpu and
    paper dry runs once stopped there with 'only 2 real healthy test slices')."""
    from ctad_core.workbook import DRY_RUN_OVERRIDES

    data, gallery = DRY_RUN_OVERRIDES["01"], DRY_RUN_OVERRIDES["06"]
    assert gallery["n_per_class"] <= data["n_test_healthy"] * data["slices_2d"]
    assert 2 <= gallery["machine_folds"] <= gallery["n_per_class"]

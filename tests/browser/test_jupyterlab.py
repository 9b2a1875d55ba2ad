"""JupyterLab in a real browser: what a student sees (issue 15).

Playwright for Python drives Debian's ``chromium`` (``/usr/bin/chromium``, or ``$CTAD_CHROMIUM``; Playwright's
own browsers are never downloaded; set-up: ``scripts/setup_browser.sh``). Opt-in: ``pytest -m browser
tests/browser``. Every step has a hard time limit and the JupyterLab server's process tree is killed at the
end, whatever happened.

1. ``ctad run --profile smoke --only 01`` writes an executed notebook 01;
2. ``ctad lab --profile smoke`` starts JupyterLab on a temporary run directory (working copies with the smoke
   parameters injected; the ``ctad run`` output lies in a sub-folder of it);
3. the executed notebook opens trusted, its figures render (images with a non-zero natural size), no widget
   shows as text (``VBox(children=``) and no progress bar is frozen at 0 %;
4. the working copy of notebook 01 runs with Run All, without errors; the slice viewer's slider moves and
   the image it shows changes;
5. the tracked ``notebooks/*.ipynb`` are byte for byte what they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CTAD_CHROMIUM", "/usr/bin/chromium")
SERVER_START_S = 120  # JupyterLab answering /api/status
CHAIN_S = 600  # ctad run of the smoke notebook 01
RUN_ALL_S = 600  # Run All of notebook 01 in the browser
STEP_MS = 60_000  # one page load, one element to appear
SHOTS = os.environ.get("CTAD_BROWSER_SHOTS")  # a folder: screenshots of each step land there
FROZEN = re.compile(r"(?<![0-9])0%\|")  # a tqdm bar at 0 % ("100%|" does not match)


def _requirements() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright for Python is not installed: run scripts/setup_browser.sh")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no Chromium at {CHROMIUM}: run scripts/setup_browser.sh (or set CTAD_CHROMIUM)")
    if shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("JupyterLab is not installed in this environment (pip install -e '.[browser]')")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_tree(pid: int) -> None:
    try:
        parent = psutil.Process(pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=15)


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"JupyterLab did not answer within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


def _shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.ipynb"))}


# JupyterLab's application object (exposed with --LabApp.expose_app_in_browser) and its current notebook
_CELLS = "window.jupyterapp.shell.currentWidget.content.widgets"


def _open(page, base: str, token: str, path: str) -> None:
    page.goto(f"{base}/lab/tree/{path}?token={token}", timeout=STEP_MS)
    page.wait_for_function(
        "(p) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return w && w.context && w.context.path === p && w.content.widgets.length > 0"
        " && w.sessionContext.session && w.sessionContext.session.kernel"
        " && w.sessionContext.session.kernel.status === 'idle'; }",
        arg=path,
        timeout=STEP_MS * 2,
    )


def _images(page) -> list[dict]:
    """Every image in the current notebook's outputs, decoded: natural width and height."""
    return page.evaluate(
        """async () => {
        const imgs = Array.from(window.jupyterapp.shell.currentWidget.node.querySelectorAll(
            '.jp-OutputArea-output img'));
        await Promise.all(imgs.map((i) => i.decode().catch(() => null)));
        return imgs.map((i) => ({w: i.naturalWidth, h: i.naturalHeight}));
    }"""
    )


def _output_text(page) -> str:
    return page.evaluate(
        "() => Array.from(window.jupyterapp.shell.currentWidget.node.querySelectorAll('.jp-OutputArea-output'))"
        ".map((o) => o.innerText).join('\\n')"
    )


def _model_errors(page) -> list[str]:
    return page.evaluate(
        f"() => Array.from({_CELLS}).filter((c) => c.model.type === 'code')"
        ".flatMap((c) => c.model.outputs.toJSON()).filter((o) => o.output_type === 'error')"
        ".map((o) => o.ename + ': ' + o.evalue)"
    )


def _viewer_image(page) -> str:
    """The image the slice viewer shows now (its data URI), '' while it has none."""
    return page.evaluate(
        f"""() => {{
        const cells = Array.from({_CELLS});
        const last = cells[cells.length - 1].node;
        const img = last.querySelector('.widget-vbox .jp-OutputArea-output img');
        return img && img.complete && img.naturalWidth > 0 ? img.src : '';
    }}"""
    )


def test_jupyterlab_runs_notebook_01_and_shows_executed_notebooks(tmp_path, repo_root):
    _requirements()
    from playwright.sync_api import sync_playwright

    tracked_before = _digests(repo_root / "notebooks")
    run_dir, executed_dir = tmp_path / "lab", tmp_path / "lab" / "executed"
    home = tmp_path / "jupyter"
    env = {
        **os.environ,
        "CTAD_ROOT": str(repo_root),
        # a private Jupyter: the notary's secret and database (ctad run signs, JupyterLab checks), settings
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
    }
    env.pop("CTAD_HEADLESS", None)
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}\n')  # no "Jupyter news?" toast over the outputs
    ctad = [sys.executable, "-m", "ctad_core.workbook"]
    t0 = time.monotonic()
    chain = subprocess.run(
        [*ctad, "run", "--profile", "smoke", "--only", "01", "--run-dir", str(executed_dir), "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=CHAIN_S,
    )
    assert chain.returncode == 0, chain.stderr[-3000:]
    t_chain = time.monotonic() - t0
    # as stored: headless, so no widget views and every progress bar is text that reached its end
    stored = json.loads((executed_dir / "01_data_prep.ipynb").read_text())
    outputs = [o for c in stored["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    # a cell's stream outputs of one name read as one text (as JupyterLab joins them); each of its lines shows
    # what a terminal would, its last non-blank carriage-return segment
    streams = [
        "".join("".join(o["text"]) for o in c.get("outputs", []) if o.get("name") == name)
        for c in stored["cells"]
        for name in ("stdout", "stderr")
    ]
    shown = [
        ([s for s in line.split("\r") if s.strip()] or [""])[-1] for t in streams for line in t.split("\n")
    ]
    bars = [b for b in shown if "%|" in b]
    assert all(re.search(r"(?<![0-9])100%\|", b) for b in bars), (
        f"progress bars stored short of their end: {bars}"
    )

    token, port = secrets.token_hex(16), _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "jupyterlab.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen(
            [
                *ctad,
                *f"lab --profile smoke --port {port} --no-browser --run-dir".split(),
                str(run_dir),
                "--",
                "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={token}",
                "--LabApp.expose_app_in_browser=True",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                *(["--allow-root"] if os.geteuid() == 0 else []),  # CI containers run as root
            ],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    times = {"ctad run 01 (s)": round(t_chain, 1)}
    try:
        _wait_for_server(f"{base}/api/status?token={token}", server, log)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(STEP_MS)

                # the notebook ctad run executed: trusted, figures drawn, no widget or frozen bar as text
                t0 = time.monotonic()
                _open(page, base, token, "executed/01_data_prep.ipynb")
                trusted = page.evaluate(
                    f"() => Array.from({_CELLS}).filter((c) => c.model.type === 'code'"
                    " && c.model.outputs.length > 0).map((c) => c.model.trusted)"
                )
                assert trusted and all(trusted), "the executed notebook does not open trusted"
                expected = page.evaluate(
                    f"() => Array.from({_CELLS}).filter((c) => c.model.type === 'code')"
                    ".flatMap((c) => c.model.outputs.toJSON()).filter((o) => o.data && o.data['image/png']).length"
                )
                assert expected >= 5, f"only {expected} figures stored in the executed notebook 01"
                page.wait_for_function(  # outputs render asynchronously after the notebook opens
                    "(n) => window.jupyterapp.shell.currentWidget.node.querySelectorAll("
                    "'.jp-OutputArea-output img').length >= n",
                    arg=expected,
                )
                images = _images(page)
                assert all(i["w"] > 0 and i["h"] > 0 for i in images), f"figures that do not render: {images}"
                text = _output_text(page)
                assert "VBox(children=" not in text and "HBox(children=" not in text, "a widget shown as text"
                assert not FROZEN.search(text), "a progress bar frozen at 0 %"
                assert not _model_errors(page)
                _shot(page, "1-executed")
                times["figures in the executed notebook"] = len(images)
                times["executed notebook checks (s)"] = round(time.monotonic() - t0, 1)

                # the working copy of notebook 01 (smoke parameters injected): Run All, then the slider
                t0 = time.monotonic()
                _open(page, base, token, "01_data_prep.ipynb")
                source = page.evaluate(
                    f"() => Array.from({_CELLS}).map((c) => c.model.sharedModel.getSource())"
                )
                injected = next(s for s in source if s.startswith("# Parameters"))
                assert f'run_dir = "{run_dir.resolve()}"' in injected and "n_train = 6" in injected
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                page.wait_for_function(
                    f"""() => {{
                    const cells = Array.from({_CELLS});
                    const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
                    const running = cells.some((c) => c.model.type === 'code'
                        && (c.promptNode && c.promptNode.innerText.includes('*')));
                    const errors = cells.some((c) => c.model.type === 'code'
                        && c.model.outputs.toJSON().some((o) => o.output_type === 'error'));
                    return errors || (!running && k.status === 'idle'
                        && cells[cells.length - 1].node.querySelector('.widget-slider .noUi-handle'));
                }}""",
                    timeout=RUN_ALL_S * 1000,
                    polling=1000,
                )
                assert not _model_errors(page), _model_errors(page)
                times["Run All of notebook 01 (s)"] = round(time.monotonic() - t0, 1)
                assert not FROZEN.search(_output_text(page)), "a live progress bar stayed at 0 %"
                t0 = time.monotonic()

                viewer = page.locator(".jp-Notebook .jp-Cell").last
                readout = viewer.locator(".widget-slider .widget-readout").first
                page.wait_for_function(
                    f"""() => {{ const cells = Array.from({_CELLS});
                    const img = cells[cells.length - 1].node.querySelector('.widget-vbox .jp-OutputArea-output img');
                    return img && img.complete && img.naturalWidth > 0; }}"""
                )
                before_value, before_image = readout.inner_text(), _viewer_image(page)
                viewer.scroll_into_view_if_needed()
                _shot(page, "2-viewer")
                before_shot = viewer.locator(".widget-vbox .jp-OutputArea-output img").first.screenshot()
                handle = viewer.locator(".widget-slider .noUi-handle").first
                handle.scroll_into_view_if_needed()
                box = handle.bounding_box()
                assert box, "the slice slider's handle is not visible"
                page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                page.mouse.down()
                # a short drag, as a student would: a few slices on, still inside the head
                page.mouse.move(box["x"] + box["width"] / 2 + 12, box["y"] + box["height"] / 2, steps=6)
                page.mouse.up()
                page.wait_for_function(
                    "(v) => document.querySelectorAll('.jp-Notebook .jp-Cell')[document.querySelectorAll("
                    "'.jp-Notebook .jp-Cell').length - 1].querySelector('.widget-slider .widget-readout')"
                    ".innerText !== v",
                    arg=before_value,
                )
                after_value = readout.inner_text()
                assert 0 < abs(int(after_value) - int(before_value)) < 10, (before_value, after_value)
                deadline = time.monotonic() + STEP_MS / 1000
                after_image = before_image
                while time.monotonic() < deadline and after_image in ("", before_image):
                    time.sleep(0.5)
                    after_image = _viewer_image(page)
                assert after_image and after_image != before_image, (
                    f"the slider moved ({before_value} -> {after_value}) but the image did not change"
                )
                _shot(page, "3-slider-moved")
                after_shot = viewer.locator(".widget-vbox .jp-OutputArea-output img").first.screenshot()
                assert after_shot != before_shot
                times["slider check (s)"] = round(time.monotonic() - t0, 1)
                times["slider"] = f"{before_value} -> {after_value}"
                page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            finally:
                browser.close()
    finally:
        _kill_tree(server.pid)
        print(json.dumps(times))
    # the saved copy in the run directory holds what ran, with no jupytext .py beside it; the tracked
    # notebooks are untouched
    saved = json.loads((run_dir / "01_data_prep.ipynb").read_text())
    assert any(c.get("outputs") for c in saved["cells"]), "JupyterLab's save did not reach the working copy"
    assert not (run_dir / "01_data_prep.py").exists()
    assert _digests(repo_root / "notebooks") == tracked_before

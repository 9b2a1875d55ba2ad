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

A second test opens notebooks 06 and 07 executed by a whole ``smoke`` chain (the ``smoke_run_dir`` fixture:
set ``CTAD_SMOKE_RUN_DIR`` to a finished smoke run to reuse it — it is copied, never written — or the chain
runs first, several minutes). With the parameters cell pointed at the copy, as a student would edit it:

6. 06 (``reader`` set) runs with Run All; each click of the rater's *Real* saves a row to
   ``turing/responses/<reader>.csv``; once every image is answered the rater shows its message and no
   broken image;
7. 07 (``interactive = True``, one method, no FID) runs with Run All; moving the map viewer's threshold slider changes
   its text that reports the item's Dice.
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


#: JS: the node of the slice viewer's cell in notebook 01 (the first cell whose output holds a slider; the
#: notebook's Exercises come after it), or undefined before it has rendered
_VIEWER = f"(Array.from({_CELLS}).find((c) => c.node.querySelector('.widget-slider .noUi-handle')) || {{}}).node"


def _viewer_image(page) -> str:
    """The image the slice viewer shows now (its data URI), '' while it has none."""
    return page.evaluate(
        f"""() => {{
        const last = {_VIEWER};
        if (!last) return '';
        const img = last.querySelector('.widget-vbox .jp-OutputArea-output img');
        return img && img.complete && img.naturalWidth > 0 ? img.src : '';
    }}"""
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory, repo_root):
    """JupyterLab (``ctad lab --profile smoke``) on a temporary run directory, killed at the end whatever happened;
    yields a dict with ``base``, ``token``, ``run_dir``, ``env`` and ``times`` (printed at the end)."""
    _requirements()
    tmp = tmp_path_factory.mktemp("browser")
    run_dir, home = tmp / "lab", tmp / "jupyter"
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
    token, port = secrets.token_hex(16), _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / "jupyterlab.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen(
            [
                *CTAD,
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
    times: dict[str, object] = {}
    try:
        _wait_for_server(f"{base}/api/status?token={token}", server, log)
        yield {"base": base, "token": token, "run_dir": run_dir, "env": env, "times": times}
    finally:
        _kill_tree(server.pid)
        print(json.dumps(times))


@pytest.fixture(scope="module")
def page(lab):
    """One Chromium page for the module's tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 1000})
            pg.set_default_timeout(STEP_MS)
            yield pg
        finally:
            browser.close()


CTAD = [sys.executable, "-m", "ctad_core.workbook"]


def _shutdown_kernels(page) -> None:
    """End every kernel of the server (each notebook's kernel holds its arrays; the next starts afresh)."""
    page.evaluate("() => window.jupyterapp.serviceManager.sessions.shutdownAll()")


def _edit_parameters(page, assignments: dict[str, str]) -> None:
    """Append assignments to the notebook's injected parameters cell (later assignments win), as a student
    edits the parameters before running."""
    extra = "\n".join(f"{k} = {v}" for k, v in assignments.items())
    page.evaluate(
        f"""(extra) => {{
        const c = Array.from({_CELLS}).find((c) => c.model.type === 'code'
            && c.model.sharedModel.getSource().startsWith('# Parameters'));
        if (!c) throw new Error('no injected parameters cell');
        c.model.sharedModel.setSource(c.model.sharedModel.getSource() + '\\n' + extra);
    }}""",
        extra,
    )


def _run_all(page, done: str, timeout_s: float) -> None:
    """Run All, then wait until no cell runs, the kernel is idle and ``done`` (a JS expression over ``cells``,
    the notebook's cell widgets) holds — or a cell failed."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        f"""() => {{
        const cells = Array.from({_CELLS});
        const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
        const running = cells.some((c) => c.model.type === 'code'
            && (c.promptNode && c.promptNode.innerText.includes('*')));
        const errors = cells.some((c) => c.model.type === 'code'
            && c.model.outputs.toJSON().some((o) => o.output_type === 'error'));
        return errors || (!running && k.status === 'idle' && ({done}));
    }}""",
        timeout=timeout_s * 1000,
        polling=1000,
    )
    assert not _model_errors(page), _model_errors(page)


def _drag(page, handle, dx: float) -> None:
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    assert box, "the slider's handle is not visible"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y, steps=6)
    page.mouse.up()


def test_jupyterlab_runs_notebook_01_and_shows_executed_notebooks(lab, page, repo_root):
    tracked_before = _digests(repo_root / "notebooks")
    run_dir, executed_dir = lab["run_dir"], lab["run_dir"] / "executed"
    base, token, times = lab["base"], lab["token"], lab["times"]
    t0 = time.monotonic()
    chain = subprocess.run(
        [*CTAD, "run", "--profile", "smoke", "--only", "01", "--run-dir", str(executed_dir), "--no-progress"],
        env=lab["env"],
        capture_output=True,
        text=True,
        timeout=CHAIN_S,
    )
    assert chain.returncode == 0, chain.stderr[-3000:]
    times["ctad run 01 (s)"] = round(time.monotonic() - t0, 1)
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
    source = page.evaluate(f"() => Array.from({_CELLS}).map((c) => c.model.sharedModel.getSource())")
    injected = next(s for s in source if s.startswith("# Parameters"))
    assert f'run_dir = "{run_dir.resolve()}"' in injected and "n_train = 6" in injected
    _run_all(page, f"!!{_VIEWER}", RUN_ALL_S)
    times["Run All of notebook 01 (s)"] = round(time.monotonic() - t0, 1)
    assert not FROZEN.search(_output_text(page)), "a live progress bar stayed at 0 %"
    t0 = time.monotonic()

    viewer = page.locator(".jp-Notebook .jp-Cell").filter(has=page.locator(".widget-slider .noUi-handle")).first
    readout = viewer.locator(".widget-slider .widget-readout").first
    page.wait_for_function(
        f"""() => {{ const node = {_VIEWER};
        const img = node && node.querySelector('.widget-vbox .jp-OutputArea-output img');
        return img && img.complete && img.naturalWidth > 0; }}"""
    )
    before_value, before_image = readout.inner_text(), _viewer_image(page)
    viewer.scroll_into_view_if_needed()
    _shot(page, "2-viewer")
    before_shot = viewer.locator(".widget-vbox .jp-OutputArea-output img").first.screenshot()
    # a short drag, as a student would: a few slices on, still inside the head
    _drag(page, viewer.locator(".widget-slider .noUi-handle").first, 12)
    page.wait_for_function(
        f"(v) => {_VIEWER}.querySelector('.widget-slider .widget-readout').innerText !== v",
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
    _shutdown_kernels(page)
    # the saved copy in the run directory holds what ran, with no jupytext .py beside it; the tracked
    # notebooks are untouched
    deadline = time.monotonic() + 30
    saved: dict = {"cells": []}
    while time.monotonic() < deadline and not any(c.get("outputs") for c in saved["cells"]):
        time.sleep(0.5)
        saved = json.loads((run_dir / "01_data_prep.ipynb").read_text())
    assert any(c.get("outputs") for c in saved["cells"]), "JupyterLab's save did not reach the working copy"
    assert not (run_dir / "01_data_prep.py").exists()
    assert _digests(repo_root / "notebooks") == tracked_before


# the rater's buttons and text, and the map viewer's Dice text (stable across viewer layouts: an
# ipywidgets HTML/label whose text names the Dice)
_RATER_REAL = ".jp-OutputArea-output .widget-button:has-text('Real')"
_RATER_SHOWN = (
    "Array.from(window.jupyterapp.shell.currentWidget.node.querySelectorAll('.jp-OutputArea-output .widget-button'))"
    ".some((b) => b.innerText.trim() === 'Real')"
)
_DICE_TEXT = f"""() => {{
    for (const c of Array.from({_CELLS})) {{
        if (!c.node.querySelector('.jp-OutputArea-output .widget-slider')) continue;
        const t = Array.from(c.node.querySelectorAll(
            '.jp-OutputArea-output .widget-html-content, .jp-OutputArea-output .widget-label'))
            .map((e) => e.innerText).find((s) => s.includes('Dice'));
        if (t) return t;
    }}
    return '';
}}"""


def test_rater_and_map_viewer_in_executed_notebooks_06_07(lab, page, repo_root, smoke_run_dir):
    tracked_before = _digests(repo_root / "notebooks")
    base, token, times = lab["base"], lab["token"], lab["times"]
    missing = [
        n for n in ("06_turing_test.ipynb", "07_evaluation.ipynb") if not (smoke_run_dir / n).is_file()
    ]
    assert not missing, f"{smoke_run_dir} is not a finished smoke run: no {missing}"
    smoke = lab["run_dir"] / "smoke"  # a copy: the smoke run is never written
    shutil.copytree(smoke_run_dir, smoke, ignore=shutil.ignore_patterns("previous", "*.lock"))
    reader, responses = "browser", smoke / "turing" / "responses" / "browser.csv"
    responses.unlink(missing_ok=True)

    # 06: the executed notebook, with `reader` set, Run All; each click on Real saves a row
    t0 = time.monotonic()
    _open(page, base, token, "smoke/06_turing_test.ipynb")
    _edit_parameters(page, {"run_dir": json.dumps(str(smoke)), "reader": json.dumps(reader)})
    _run_all(page, _RATER_SHOWN, RUN_ALL_S)
    times["Run All of notebook 06 (s)"] = round(time.monotonic() - t0, 1)
    real = page.locator(_RATER_REAL).first
    real.scroll_into_view_if_needed()
    _shot(page, "4-rater")
    n_images = len(list((smoke / "turing" / "gallery").glob("*.png")))
    assert n_images >= 2
    real.click()
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.node.innerText.includes('image 2 of')"
    )
    rows = _rows_when_written(responses, 1)
    assert len(rows) == 1 and rows[0]["answer"] == "real" and rows[0]["reader"] == reader, rows
    for k in range(2, n_images + 1):  # answer the rest: the finished rater shows its message, no broken image
        real.click()
        _rows_when_written(responses, k)
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.node.innerText.includes('images answered')"
    )
    rater_images = page.evaluate(
        """() => Array.from(window.jupyterapp.shell.currentWidget.node.querySelectorAll(
            '.jp-OutputArea-output .widget-vbox img')).filter((i) => i.offsetParent !== null)
            .map((i) => ({src: i.getAttribute('src') || '', w: i.naturalWidth}))"""
    )
    assert all(i["w"] > 0 for i in rater_images), f"a broken image in the finished rater: {rater_images}"
    assert page.locator(".jp-OutputArea-output .widget-html-content", has_text="Done.").count() >= 1
    _shot(page, "5-rater-done")
    times["rater check (s)"] = round(time.monotonic() - t0, 1)
    _shutdown_kernels(page)

    # 07: the executed notebook with the viewer on (the smoke profile turns it off), one method and no FID,
    # Run All; moving the threshold slider changes the text that reports the Dice
    t0 = time.monotonic()
    _open(page, base, token, "smoke/07_evaluation.ipynb")
    from ctad_core.results import find_method_results

    method = next(iter(find_method_results(smoke)))  # one method keeps the evaluation short
    _edit_parameters(
        page,
        {
            "run_dir": json.dumps(str(smoke)),
            "interactive": "True",
            "compute_fid": "False",
            "methods": json.dumps([method]),
            "qualitative_items": "1",
        },
    )
    _run_all(page, f"({_DICE_TEXT})() !== ''", RUN_ALL_S)
    times["Run All of notebook 07 (s)"] = round(time.monotonic() - t0, 1)
    before = page.evaluate(_DICE_TEXT)
    sliders = page.locator(".jp-OutputArea-output .widget-slider")
    threshold = sliders.filter(has_text="threshold")
    slider = threshold.first if threshold.count() else sliders.last
    _shot(page, "6-map-viewer")
    _drag(page, slider.locator(".noUi-handle").first, 60)
    page.wait_for_function(f"(b) => ({_DICE_TEXT})() !== b", arg=before)
    after = page.evaluate(_DICE_TEXT)
    assert "Dice" in after and after != before, (before, after)
    _shot(page, "7-threshold-moved")
    times["map viewer check (s)"] = round(time.monotonic() - t0, 1)
    times["Dice text"] = f"{before!r} -> {after!r}"
    _shutdown_kernels(page)
    assert _digests(repo_root / "notebooks") == tracked_before


def _rows_when_written(path: Path, n: int, timeout_s: float = 30) -> list[dict]:
    """The rows of a responses CSV once it holds ``n`` of them (the rater writes after each click)."""
    import csv

    deadline, rows = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline:
        if path.is_file():
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            if len(rows) >= n:
                return rows
        time.sleep(0.3)
    raise AssertionError(f"{path} holds {len(rows)} rows, not {n}, {timeout_s} s after the click")

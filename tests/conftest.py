"""Shared fixtures.

``smoke_run_dir``: a run directory where the whole notebook chain ran with the ``smoke`` profile, once per
test run even under xdist (a shared directory and a file lock; tests using it are also grouped on one
worker where ``--dist loadgroup`` honours the group). Set ``CTAD_SMOKE_RUN_DIR`` to reuse a run
directory where the chain already ran (development only).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

#: A smoke cell that runs this long is stuck (they take seconds): fail instead of hanging CI.
CELL_TIMEOUT = 600


@pytest.hookimpl(tryfirst=True)  # before xdist's loadgroup reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "smoke_run_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("chain"))
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def smoke_run_dir(tmp_path_factory) -> Path:
    """Run the notebook chain (smoke profile, CPU) once and return its run_dir.

    Under xdist every worker has its own session, so the run lives in a directory shared by the workers
    and a file lock lets exactly one of them execute the chain; the others wait and reuse it.
    """
    from ctad_core.workbook import run_chain

    reuse = os.environ.get("CTAD_SMOKE_RUN_DIR")
    if reuse:
        path = Path(reuse)
        if not (path / "chain.json").is_file():
            run_chain("smoke", path, overrides={"device": "cpu"}, progress=False, cell_timeout=CELL_TIMEOUT)
        return path
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by all workers of this run
    path, done = root / "smoke_run", root / "smoke_run.done"
    with open(root / "smoke_run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.is_file():
                run_chain("smoke", path, overrides={"device": "cpu"}, progress=False, cell_timeout=CELL_TIMEOUT)
                done.write_text("ok\n")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return path


@pytest.fixture(scope="session")
def cell_timeout() -> int:
    """Seconds a notebook cell may run in tests before the chain fails."""
    return CELL_TIMEOUT


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]

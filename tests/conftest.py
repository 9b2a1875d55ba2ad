"""Shared fixtures.

``smoke_run_dir``: a run directory where the whole notebook chain ran with the ``smoke`` profile (once per
test session). Every test that uses it is pinned to one xdist worker (group "chain"), so under
``pytest -n 2 --dist loadgroup`` the chain still runs once. Set ``CTAD_SMOKE_RUN_DIR`` to reuse a run
directory where the chain already ran (development only).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)  # before xdist's loadgroup reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "smoke_run_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("chain"))
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def smoke_run_dir(tmp_path_factory) -> Path:
    """Run the notebook chain (smoke profile, CPU) once and return its run_dir."""
    reuse = os.environ.get("CTAD_SMOKE_RUN_DIR")
    if reuse:
        path = Path(reuse)
        if not (path / "chain.json").is_file():
            from ctad_core.workbook import run_chain

            run_chain("smoke", path, overrides={"device": "cpu"}, progress=False)
        return path
    from ctad_core.workbook import run_chain

    path = tmp_path_factory.mktemp("smoke_run")
    run_chain("smoke", path, overrides={"device": "cpu"}, progress=False)
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]

"""The browser test is opt-in: it runs only when ``-m browser`` selects it (it takes minutes and needs
Chromium and Playwright, see ``scripts/setup_browser.sh``), so the suite's default selection skips it."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    if "browser" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="browser test: opt-in, run `pytest -m browser tests/browser` (README)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)

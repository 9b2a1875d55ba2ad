"""Headless vs interactive: viewers and progress bars (ctad_core.frontend)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from ctad_core import frontend, viz


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("0", False), ("no", False)])
def test_the_environment_variable_decides(monkeypatch, value, expected):
    monkeypatch.setenv(frontend.HEADLESS_ENV, value)
    assert frontend.headless() is expected


def test_a_plain_process_without_a_kernel_is_headless(monkeypatch):
    monkeypatch.delenv(frontend.HEADLESS_ENV, raising=False)
    assert frontend.headless() is True


def test_progress_bar_is_text_when_headless_and_a_widget_in_jupyterlab(monkeypatch):
    import tqdm.std

    monkeypatch.setenv(frontend.HEADLESS_ENV, "1")
    bar = frontend.tqdm(range(2), disable=True)
    assert type(bar) is tqdm.std.tqdm
    monkeypatch.setenv(frontend.HEADLESS_ENV, "0")
    bar = frontend.tqdm(range(2), disable=True)
    from tqdm.auto import tqdm as auto

    assert isinstance(bar, auto)


def test_slice_viewer_is_a_static_strip_headless_and_a_widget_otherwise(monkeypatch):
    vol = np.full((10, 16, 16), 30.0, np.float32)
    mask = np.zeros(vol.shape, np.uint8)
    mask[6:9, 4:8, 4:8] = 1
    monkeypatch.setenv(frontend.HEADLESS_ENV, "1")
    fig = viz.slice_viewer(vol, mask=mask)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles and all(t.startswith("slice ") for t in titles)
    assert {int(t.split()[1]) for t in titles} <= {6, 7, 8}, "slices should go through the lesion"
    monkeypatch.setenv(frontend.HEADLESS_ENV, "0")
    import ipywidgets

    assert isinstance(viz.slice_viewer(vol, mask=mask), ipywidgets.VBox)

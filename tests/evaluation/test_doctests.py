"""Every docstring example of the evaluation package runs and holds."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "ctad_core.evaluation.metrics.classification",
    "ctad_core.evaluation.metrics.segmentation",
    "ctad_core.evaluation.metrics.stats",
    "ctad_core.evaluation.metrics.generative",
    "ctad_core.evaluation.slices",
    "ctad_core.turing",
]


@pytest.mark.parametrize("module", MODULES)
def test_doctests(module):
    res = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted > 0

"""The fake run (16³ ellipsoid heads) the seed-001 tests train on, one per test module."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))
from _volumetric_fake import fake_run_fixture  # noqa: E402

fake_run = fake_run_fixture()

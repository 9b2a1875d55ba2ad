"""The run directory contract (:class:`ctad_core.run.Run`) on a small phantom run, and inputs that must fail."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from ctad_core.results import MethodResults
from ctad_core.run import STAGES, Run
from ctad_core.utils import write_json

sys.path.insert(0, str(Path(__file__).parent))
from _volumetric_fake import make_fake_run  # noqa: E402


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    return Run(make_fake_run(tmp_path_factory.mktemp("run"), size=8, n_train=2, n_val=3, n_test=3))


def test_stage_folders(tmp_path):
    r = Run(tmp_path / "r")
    assert [r.stage(s) for s in STAGES] == [tmp_path / "r" / s for s in STAGES]
    assert r.gan == tmp_path / "r" / "gan" and r.report == tmp_path / "r" / "report"
    assert not (tmp_path / "r").exists()  # nothing is created by asking
    assert r.stage("turing", create=True).is_dir()
    with pytest.raises(ValueError, match="unknown stage 'models'.*data, gan"):
        r.stage("models")


def test_config_window_and_volumes_read_without_changing_inputs(run):
    before = _digest(run.data)
    assert run.config()["source"] == "fake" and run.window() == "brain"
    vs = run.volumes(("val", "test"))
    assert len(vs) == 6 and set(vs.split) == {"val", "test"}
    assert len(run.volumes("train")) == 2
    assert _digest(run.data) == before


def test_window_as_hu_pair(tmp_path):
    write_json(tmp_path / "data" / "config.json", {"window": [-20, 100]})
    assert Run(tmp_path).window() == (-20.0, 100.0)
    write_json(tmp_path / "data" / "config.json", {"source": "x"})
    with pytest.raises(ValueError, match="config.json has no 'window'"):
        Run(tmp_path).window()


def test_missing_data_names_the_notebook(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json not found: run notebook 01_data_prep"):
        Run(tmp_path).config()
    with pytest.raises(FileNotFoundError, match="slices.npz not found"):
        Run(tmp_path).slices()


def test_ensemble_round_trip_and_failures(tmp_path):
    r = Run(tmp_path)
    with pytest.raises(FileNotFoundError, match="ensemble.json not found: run notebook 02_gan_training"):
        r.ensemble("gan")
    with pytest.raises(ValueError, match="'gan' or 'encoder'"):
        r.ensemble("volumetric")
    r.write_ensemble("gan", {"image_size": 32, "nz": 8}, 2, seed=3)
    with pytest.raises(FileNotFoundError, match="lists members that are missing"):
        r.ensemble("gan")
    for k in range(2):
        (r.gan / f"member_{k}").mkdir()
    e = r.ensemble("gan")
    assert e.n_members == 2 and e.members == (r.gan / "member_0", r.gan / "member_1")
    assert e.config == {"image_size": 32, "nz": 8} and e.info == {"seed": 3}


def _res(name: str, n: int = 3) -> MethodResults:
    return MethodResults(
        name=name,
        level="2d",
        scan_id=np.array([f"s{i}" for i in range(n)]),
        split=np.array(["val"] * n),
        kind=np.array(["healthy"] * n),
        scan_score=np.arange(n, dtype=float),
        maps=np.zeros((n, 4, 4), np.float32),
    )


def test_method_results_save_find_load(tmp_path):
    r = Run(tmp_path)
    assert r.find_method_results() == {}
    with pytest.raises(FileNotFoundError, match="no results of method 'a'; found none"):
        r.load_method_results("a")
    r.save_method_results("restoration", _res("b"))
    r.save_method_results("volumetric", _res("a"))
    assert list(r.find_method_results()) == ["a", "b"]
    got = r.load_method_results("b")
    assert got.name == "b" and np.array_equal(got.scan_score, [0.0, 1.0, 2.0])
    r.save_method_results("volumetric", _res("b"))
    with pytest.raises(ValueError, match="results in two stages"):
        r.find_method_results()

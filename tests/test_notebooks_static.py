"""Static checks of the notebooks: pairs in sync, no outputs, a literal parameters cell that the profiles match."""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PY = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
PROFILES = ("smoke", "quick", "gpu", "paper")


def _parameters_cell(nb) -> tuple[int, object]:
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    assert code, "notebook has no code cell"
    return code[0]


def _parameter_names(source: str) -> dict[str, object]:
    names = {}
    for node in ast.parse(source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name), (
            f"parameters cell must hold plain assignments, got: {ast.unparse(node)}"
        )
        names[node.targets[0].id] = ast.literal_eval(node.value)  # literals only
    return names


def test_there_are_notebooks():
    assert len(PY) >= 1
    assert PY[0].name.startswith("01_")


@pytest.mark.parametrize("py", PY, ids=lambda p: p.stem)
def test_pair_in_sync_and_clean(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.name} missing: run jupytext --sync {py.name}"
    a = [c.source.strip() for c in jupytext.read(py).cells]
    nb = jupytext.read(ipynb)
    b = [c.source.strip() for c in nb.cells]
    assert a == b, f"{py.name} and {ipynb.name} differ: run jupytext --sync"
    for c in nb.cells:
        if c.cell_type == "code":
            assert not c.get("outputs"), f"{ipynb.name} is committed with outputs"
            assert c.get("execution_count") is None


@pytest.mark.parametrize("py", PY, ids=lambda p: p.stem)
def test_first_code_cell_is_a_literal_parameters_cell(py):
    nb = jupytext.read(py)
    _, cell = _parameters_cell(nb)
    assert "parameters" in cell.metadata.get("tags", []), f"{py.name}: first code cell must be tagged 'parameters'"
    names = _parameter_names(cell.source)
    for required in ("run_dir", "seed", "device"):
        assert required in names, f"{py.name}: parameters cell lacks {required}"
    assert names["device"] == "auto"


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("py", PY, ids=lambda p: p.stem)
def test_every_profile_key_exists_in_the_parameters_cell(py, profile):
    path = ROOT / "parameters" / profile / f"{py.stem}.yaml"
    assert path.is_file(), f"{path.relative_to(ROOT)} missing"
    params = yaml.safe_load(path.read_text()) or {}
    names = _parameter_names(_parameters_cell(jupytext.read(py))[1].source)
    unknown = sorted(set(params) - set(names))
    assert not unknown, f"{path.relative_to(ROOT)} sets {unknown}, absent from {py.name}'s parameters cell"


def test_parameter_check_rejects_non_literals():
    with pytest.raises(AssertionError):
        _parameter_names("x = 1\nprint(x)")
    with pytest.raises(ValueError):
        _parameter_names("x = len([1])")

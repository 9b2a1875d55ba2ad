"""Evaluations on disk: a method's :class:`~.evaluator.MethodEvaluation` saved where its results are, and
read back instead of evaluated again while neither the results, the settings nor the code have changed.

Notebooks 04 and 05 evaluate each method as they train it (to show its figures beside the baselines') and
notebook 07 builds the report from the very same call (:func:`~.evaluator.evaluate`); the report's
evaluation of the ``quick`` run took 2.5 min of its chain for figures 04 and 05 had just computed. Both now go
through :func:`ctad_core.evaluation.report.evaluate_files`, which saves each evaluation here and reads it
back when it is still valid. A saved evaluation is valid for exactly one

- results file: the size and modification time (ns) of the method's ``.npz``, and a SHA-256 of its ``.json``,
  which holds a token drawn anew at every save (:func:`ctad_core.results.save_method_results`): a method
  re-run and rewritten within a file system's mtime resolution (1–2 s on some) is still a new file;
- set of :func:`~.evaluator.evaluate` arguments (thresholds' targets, bootstrap size and seed, the patient
  map, …) with its defaults filled in, so that passing a default or leaving it out is the same key, except
  ``keep_segmentations`` — a saved evaluation always holds the test segmentations;
- version of the package's code: a SHA-256 of every ``ctad_core`` source file (:func:`code_digest`, taken
  when this module is imported, which ``ctad_core.evaluation`` does as it loads the evaluator), so an edited
  evaluator (or anything it calls) never serves an old figure; and the versions of numpy, scipy,
  scikit-learn and torch. (A module first imported later in the process, after an edit, is the edge this
  cannot see.)

Layout: ``<stage>/evaluations/<method>.json`` (the key, and the evaluation's structure with its JSON
values) beside ``<stage>/evaluations/<method>.npz`` (its arrays), next to ``<stage>/methods/``. The format
is JSON and ``.npy`` only — no pickle — and is read with ``allow_pickle=False``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ctad_core.evaluation.evaluator import MethodEvaluation
from ctad_core.evaluation.metrics.segmentation import DiceSweep
from ctad_core.utils import read_json, save_npz, write_json

#: bumped when the stored layout changes (older files are then evaluated again)
FORMAT = 3

_DATACLASSES = {"DiceSweep": DiceSweep}


def _digest_sources() -> str:
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


_CODE_DIGEST = _digest_sources()  # at import, beside the evaluator's own import: the code this process runs


def code_digest() -> str:
    """SHA-256 over the paths and contents of every ``.py`` file of the ``ctad_core`` package, as they were when
    this module was imported (an edit after that does not change what this process computes, nor its key)."""
    return _CODE_DIGEST


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """The versions of the numerical libraries whose results the figures depend on."""
    import scipy
    import sklearn
    import torch

    return {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__,
            "torch": torch.__version__}


def normalised_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` of :func:`~.evaluator.evaluate` with its defaults filled in, ``keep_segmentations`` left out.

    Raises:
        TypeError: an argument ``evaluate`` does not take (naming it).
    """
    import inspect

    from ctad_core.evaluation.evaluator import evaluate

    sig = inspect.signature(evaluate)
    first = next(iter(sig.parameters))
    bound = sig.bind(None, **kwargs)
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items() if k not in (first, "keep_segmentations")}


def evaluation_path(results_path: str | os.PathLike) -> Path:
    """Where the evaluation of ``<stage>/methods/<name>.npz`` is saved: ``<stage>/evaluations/<name>.json``."""
    p = Path(results_path)
    return p.parent.parent / "evaluations" / f"{p.stem}.json"


def _stat(p: Path) -> list[int]:
    s = p.stat()
    return [int(s.st_size), int(s.st_mtime_ns)]


def _canonical(obj: Any) -> Any:
    """``obj`` as plain JSON values, mappings with sorted keys (for comparing keys)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=lambda o: o.item() if isinstance(o, np.generic)
                                 else o.tolist() if isinstance(o, np.ndarray) else str(o)))


def evaluation_key(results_path: str | os.PathLike, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The key a saved evaluation of ``results_path`` evaluated with ``kwargs`` is valid for (module doc).

    Raises:
        FileNotFoundError: the results file or its ``.json`` is missing.
        TypeError: an argument :func:`~.evaluator.evaluate` does not take.
    """
    p = Path(results_path)
    return {
        "format": FORMAT,
        "results": {"npz": _stat(p), "json": hashlib.sha256(p.with_suffix(".json").read_bytes()).hexdigest()},
        "kwargs": _canonical(normalised_kwargs(kwargs)),
        "code": code_digest(),
        "libraries": library_versions(),
    }


def _encode(obj: Any, arrays: dict[str, np.ndarray], path: str) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"{path}: object array cannot be stored without pickle")
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, np.generic):
        return {"__scalar__": obj.dtype.str, "v": obj.item()}
    if dataclasses.is_dataclass(obj) and type(obj).__name__ in _DATACLASSES:
        fields = {f.name: _encode(getattr(obj, f.name), arrays, f"{path}.{f.name}") for f in dataclasses.fields(obj)}
        return {"__dataclass__": type(obj).__name__, "fields": fields}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{path}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, arrays, f"{path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError(f"{path}: only string keys can be stored, got {sorted(map(repr, obj))[:5]}")
        return {"__dict__": {k: _encode(v, arrays, f"{path}.{k}") for k, v in obj.items()}}
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"{path}: cannot store a {type(obj).__name__}")


def _decode(node: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if not isinstance(node, dict):
        return node
    if "__array__" in node:
        return arrays[node["__array__"]]
    if "__scalar__" in node:
        return np.dtype(node["__scalar__"]).type(node["v"])
    if "__dataclass__" in node:
        return _DATACLASSES[node["__dataclass__"]](**{k: _decode(v, arrays) for k, v in node["fields"].items()})
    if "__tuple__" in node:
        return tuple(_decode(v, arrays) for v in node["__tuple__"])
    return {k: _decode(v, arrays) for k, v in node["__dict__"].items()}


def save_evaluation(
    ev: MethodEvaluation,
    results_path: str | os.PathLike,
    kwargs: Mapping[str, Any],
    key: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``ev`` (evaluated from ``results_path`` with ``kwargs``) under its :func:`evaluation_key`.

    Pass the ``key`` taken *before* the results were read: if they are rewritten meanwhile, the saved key
    then names the old file and is never served for the new one. The arrays and the JSON share a random
    token, so a reader never pairs one save's JSON with another save's arrays.

    Returns:
        The ``.json`` path.

    Raises:
        TypeError: a value that cannot be stored without pickle (naming where it sits in ``ev``).
    """
    arrays: dict[str, np.ndarray] = {}
    tree = {f.name: _encode(getattr(ev, f.name), arrays, f.name) for f in dataclasses.fields(ev)}
    out = evaluation_path(results_path)
    token = uuid.uuid4().hex
    save_npz(out.with_suffix(".npz"), __token__=np.array(token), **arrays)
    key = dict(key) if key is not None else evaluation_key(results_path, kwargs)
    write_json(out, {"key": key, "token": token, "evaluation": tree})
    return out


def load_evaluation(results_path: str | os.PathLike, kwargs: Mapping[str, Any]) -> MethodEvaluation | None:
    """The saved evaluation of ``results_path`` with ``kwargs``, or None when there is none that is valid
    (no file, another key, arrays of another save, an unreadable or foreign file)."""
    out = evaluation_path(results_path)
    try:
        saved = read_json(out)
        if not isinstance(saved, dict) or saved.get("key") != evaluation_key(results_path, kwargs):
            return None
        with np.load(out.with_suffix(".npz"), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if str(arrays.pop("__token__", "")) != saved.get("token"):
            return None
        fields = {k: _decode(v, arrays) for k, v in saved["evaluation"].items()}
        return MethodEvaluation(**fields)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile):  # absent, damaged, not ours
        return None


__all__ = [
    "FORMAT", "code_digest", "evaluation_key", "evaluation_path", "library_versions", "load_evaluation",
    "normalised_kwargs", "save_evaluation",
]

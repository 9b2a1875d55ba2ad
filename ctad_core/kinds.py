"""Lesion kinds: the one home of their names, codes and groups.

A scan's ``kind`` is ``"healthy"`` or one or more lesion kinds joined by ``"+"`` (``"sdh+fracture"``).
Phantoms (:mod:`ctad_core.data.phantom`), real-data manifests (:mod:`ctad_core.data.datasets`) and the
evaluation all use the names below.

>>> sorted(kind_parts("sdh+fracture"))
['fracture', 'sdh']
>>> is_haemorrhage(["healthy", "iph", "fracture", "sdh+fracture"]).tolist()
[False, True, False, True]
>>> join_kinds(["fracture", "sdh", "sdh"])
'sdh+fracture'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

#: The label of a scan without lesion.
HEALTHY = "healthy"
#: Lesion kinds a phantom can carry, in report order.
LESION_KINDS = ("iph", "sdh", "edh", "sah", "ivh", "infarct", "tumour", "fracture", "atrophy")
#: The intracranial haemorrhage kinds (seed 000's haemorrhage test set; ρ = max(·, 0) maps).
HAEMORRHAGE_KINDS = ("iph", "sdh", "edh", "sah", "ivh")
#: Kinds that lie outside the brain (evaluation) mask: a skull fracture is bone. Full-head methods are also
#: scored on them inside the head mask (``metrics["head_mask"]``, :func:`ctad_core.data.masks.head_mask`).
OUTSIDE_BRAIN_KINDS = ("fracture",)
#: Codes of the phantoms' lesion label map (0 = none). ``oedema`` is the rim of a tumour, not a kind.
LESION_CODES = {
    "iph": 1,
    "sdh": 2,
    "edh": 3,
    "sah": 4,
    "ivh": 5,
    "infarct": 6,
    "tumour": 7,
    "oedema": 8,
    "fracture": 9,
    "atrophy": 10,
}
#: Order of kind tokens when joined; real-data labels that are no phantom kind come after the phantom ones
#: (``ich`` = haemorrhage of unknown subtype, ``mass``; CTFSH groups ``aty``, ``frac``, ``isch``, ``other``).
KIND_ORDER = ("iph", "sdh", "edh", "sah", "ivh", "ich", "infarct", "tumour", "mass", "fracture", "atrophy",
              "aty", "frac", "isch", "other")


def kind_parts(kind: str) -> set[str]:
    """``"sdh+fracture"`` → ``{"sdh", "fracture"}``; ``"healthy"`` or empty → empty set."""
    return set() if kind == HEALTHY or not kind else set(str(kind).split("+"))


def join_kinds(tokens: Iterable[str]) -> str:
    """Kind tokens → one ``kind`` string in :data:`KIND_ORDER` (unknown tokens last, sorted); none → healthy."""
    toks = sorted(set(tokens), key=lambda t: (KIND_ORDER.index(t) if t in KIND_ORDER else len(KIND_ORDER), t))
    return "+".join(toks) if toks else HEALTHY


def is_haemorrhage(kinds: Sequence[str] | np.ndarray) -> np.ndarray:
    """(N,) bool: does each kind include a haemorrhage kind (``ich`` counts: haemorrhage of unknown type)?"""
    haem = set(HAEMORRHAGE_KINDS) | {"ich"}
    return np.array([bool(kind_parts(k) & haem) for k in np.asarray(kinds).astype(str)], bool)

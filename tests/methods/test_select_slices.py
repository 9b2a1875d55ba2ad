"""The evaluation subset of 2D slices (quick profile): capped, half lesioned, lesions spread over kinds."""

from __future__ import annotations

import numpy as np
import pytest

from ctad_core.methods.fastgan.ensemble import select_slices


def _slices():
    # test split: 100 healthy slices, lesioned slices of three kinds with very unequal counts; val: 10 of each
    kind = np.array(
        ["healthy"] * 100 + ["sdh"] * 120 + ["edh"] * 40 + ["iph"] * 5 + ["healthy"] * 10 + ["sdh"] * 10
    )
    split = np.array(["test"] * 265 + ["val"] * 20)
    has_lesion = kind != "healthy"
    return split, has_lesion, kind


def test_the_lesioned_pick_is_spread_evenly_over_kinds():
    split, has_lesion, kind = _slices()
    idx = select_slices(split, has_lesion, 60, seed=3, kind=kind)
    test = idx[split[idx] == "test"]
    assert len(test) == 60 and len(np.unique(idx)) == len(idx)
    counts = {k: int((kind[test] == k).sum()) for k in ("healthy", "sdh", "edh", "iph")}
    # 30 lesioned: iph has only 5, the other two share the remaining 25 (12 and 13)
    assert counts["healthy"] == 30 and counts["iph"] == 5
    assert sorted((counts["sdh"], counts["edh"])) == [12, 13]
    assert set(idx[split[idx] == "val"]) == set(np.flatnonzero(split == "val"))  # 20 <= cap: all of val


def test_without_kinds_the_pick_follows_the_counts_and_is_reproducible():
    split, has_lesion, kind = _slices()
    a = select_slices(split, has_lesion, 60, seed=3)
    assert np.array_equal(a, select_slices(split, has_lesion, 60, seed=3))
    assert int(has_lesion[a[split[a] == "test"]].sum()) == 30
    assert select_slices(split, has_lesion, 0).tolist() == list(range(len(split)))


def test_a_kind_array_of_the_wrong_length_is_refused():
    split, has_lesion, kind = _slices()
    with pytest.raises(ValueError, match="kind has 3 entries"):
        select_slices(split, has_lesion, 60, kind=kind[:3])

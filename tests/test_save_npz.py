"""ctad_core.utils.save_npz: files numpy reads back exactly, deflated or stored, written atomically."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from ctad_core.utils import save_npz


def _arrays():
    rng = np.random.default_rng(0)
    maps = np.zeros((3, 8, 9, 10), np.float32)
    maps[:, 2:6, 2:7, 3:8] = rng.random((3, 4, 5, 5))
    return {
        "maps": maps,
        "lesion": (maps > 0.8).astype(np.uint8),
        "scan_id": np.array(["a", "bb", "ccc"]),
        "scan_score": rng.random(3),
        "fortran": np.asfortranarray(rng.random((4, 5))),
        "empty": np.zeros((0, 3), np.int64),
    }


@pytest.mark.parametrize("compress", [True, False])
def test_numpy_reads_back_every_array_exactly(tmp_path, compress):
    arrays = _arrays()
    out = save_npz(tmp_path / "r.npz", compress=compress, **arrays)
    with np.load(out, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(arrays)
        for k, a in arrays.items():
            assert z[k].dtype == a.dtype and z[k].shape == a.shape
            np.testing.assert_array_equal(z[k], a)
    with zipfile.ZipFile(out) as zf:
        kinds = {i.compress_type for i in zf.infolist()}
        assert kinds == ({zipfile.ZIP_DEFLATED} if compress else {zipfile.ZIP_STORED})
        if compress:  # the masks and the zero background deflate
            assert sum(i.compress_size for i in zf.infolist()) < sum(i.file_size for i in zf.infolist()) / 2


def test_an_object_array_is_refused_and_the_old_file_is_kept(tmp_path):
    dest = save_npz(tmp_path / "r.npz", x=np.arange(3))
    before = dest.read_bytes()
    with pytest.raises(ValueError):
        save_npz(dest, x=np.array([{"a": 1}], dtype=object))
    assert dest.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npz"]  # no temporary left behind


def test_noise_is_stored_and_zero_backgrounds_deflate_in_one_file(tmp_path):
    """A member that would not shrink (noise-like float data, as a reconstruction is) is stored rather than
    deflated; one that would (zero background) is deflated; numpy reads both back exactly."""
    from ctad_core.utils import NPZ_STORE_ABOVE_RATIO, deflate_ratio

    rng = np.random.default_rng(1)
    noise = rng.standard_normal((8, 64, 64, 64)).astype(np.float32)  # 8 MiB
    sparse = np.zeros_like(noise)
    sparse[:, 20:40, 20:40, 20:40] = noise[:, 20:40, 20:40, 20:40]
    assert deflate_ratio(noise) > NPZ_STORE_ABOVE_RATIO > deflate_ratio(sparse)
    out = save_npz(tmp_path / "r.npz", recon=noise, maps=sparse, small=noise[0, 0])
    with zipfile.ZipFile(out) as zf:
        kind = {i.filename: i.compress_type for i in zf.infolist()}
    assert kind == {"recon.npy": zipfile.ZIP_STORED, "maps.npy": zipfile.ZIP_DEFLATED,
                    "small.npy": zipfile.ZIP_DEFLATED}  # below 4 MiB: deflated without sampling
    with np.load(out, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["recon"], noise)
        np.testing.assert_array_equal(z["maps"], sparse)
        np.testing.assert_array_equal(z["small"], noise[0, 0])


def test_deflate_ratio_matches_the_whole_array_on_uniform_data():
    from ctad_core.utils import deflate_ratio

    zeros = np.zeros(2**22, np.uint8)
    assert deflate_ratio(zeros) < 0.01
    rand = np.random.default_rng(2).integers(0, 256, 2**22, dtype=np.uint8)
    assert deflate_ratio(rand) > 0.99

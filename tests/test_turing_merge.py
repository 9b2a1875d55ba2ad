"""Merging a class's Turing-test answer files (ctad_core.turing.merge_responses)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from ctad_core import turing


@pytest.fixture
def gallery(tmp_path):
    rng = np.random.default_rng(0)
    real, gen = rng.random((4, 16, 16)), rng.random((4, 16, 16))
    return turing.build_gallery(real, gen, tmp_path / "turing", n=3, seed=1, size=16)


def _write(path, reader, group, images, answers):
    df = pd.DataFrame(
        {"image": images, "answer": answers, "seconds": 1.5, "answered_at": "2026-11-30T10:00:00"}
    )
    df["reader"], df["group"] = reader, group
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


def _sha(paths):
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def test_merge_two_students_and_score_them(gallery, tmp_path):
    key = gallery.key()
    imgs, truth = key["image"].tolist(), key["truth"].tolist()
    flip = {"real": "generated", "generated": "real"}
    inbox = tmp_path / "inbox"
    a = _write(inbox / "a" / "Ann.csv", "Ann", "students", imgs, truth)  # all right
    b = _write(
        inbox / "b" / "Bo.csv", "Bo", "students", imgs[:4], [flip[t] for t in truth[:4]]
    )  # 4 answers, wrong
    before = _sha([a, b])
    merged = turing.merge_responses(gallery, [a, b])
    assert _sha([a, b]) == before  # the collected files are not modified
    assert len(merged) == len(imgs) + 4
    assert sorted(merged["reader"].unique()) == ["Ann", "Bo"]
    assert set(merged["group"]) == {"students"} and merged["seconds"].eq(1.5).all()
    assert not any(gallery.responses_dir.glob("*.csv"))  # nothing imported unless asked
    turing.merge_responses(gallery, [a, b], import_answers=True)
    scores = turing.score_gallery(gallery)
    assert scores["readers"]["Ann"]["accuracy"] == pytest.approx(1.0)
    assert scores["readers"]["Bo"]["accuracy"] == pytest.approx(0.0)
    assert scores["readers"]["Bo"]["n_answered"] == 4
    assert scores["groups"]["students"]["accuracy"] == pytest.approx(0.5)


def test_reader_name_from_file_stem_and_last_answer_kept(gallery, tmp_path):
    imgs = gallery.key()["image"].tolist()
    p = tmp_path / "carl.csv"
    pd.DataFrame({"image": [imgs[0], imgs[0]], "answer": ["real", "generated"]}).to_csv(p, index=False)
    merged = turing.merge_responses(gallery, [p])
    assert merged["reader"].tolist() == ["carl"] and merged["answer"].tolist() == ["generated"]
    assert merged["group"].tolist() == [""] and merged["seconds"].isna().all()


def test_bad_files_are_named(gallery, tmp_path):
    imgs = gallery.key()["image"].tolist()
    other = _write(tmp_path / "x" / "Dee.csv", "Dee", "", ["0123456789abcdef.png"], ["real"])
    with pytest.raises(ValueError, match=r"Dee\.csv.*another gallery"):
        turing.merge_responses(gallery, [other])
    odd = _write(tmp_path / "y" / "Eve.csv", "Eve", "", imgs[:1], ["fake"])
    with pytest.raises(ValueError, match=r"Eve\.csv.*'real' or 'generated'"):
        turing.merge_responses(gallery, [odd])
    a1 = _write(tmp_path / "p" / "Ann.csv", "Ann", "", imgs[:1], ["real"])
    a2 = _write(tmp_path / "q" / "Ann.csv", "Ann", "", imgs[:1], ["real"])
    with pytest.raises(ValueError, match="also answered in"):
        turing.merge_responses(gallery, [a1, a2], import_answers=True)
    assert not any(gallery.responses_dir.glob("*.csv"))  # a bad batch writes nothing
    cols = tmp_path / "cols.csv"
    pd.DataFrame({"img": imgs[:1]}).to_csv(cols, index=False)
    with pytest.raises(ValueError, match=r"cols\.csv.*no column"):
        turing.merge_responses(gallery, [cols])
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        turing.merge_responses(gallery, [tmp_path / "missing.csv"])
    with pytest.raises(FileNotFoundError, match="no PNGs"):
        turing.merge_responses(turing.Gallery(tmp_path / "empty"), [a1])

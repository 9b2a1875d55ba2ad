"""Visual Turing test: blinded gallery, answer key, scoring as seed 000 Table 2, machine observer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ctad_core import turing


def _images(n: int, size: int, seed: int, smooth: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size)).astype(np.float32)
    if smooth:  # "generated": blurrier images, so a machine can tell them apart
        x = (x + np.roll(x, 1, 1) + np.roll(x, 1, 2) + np.roll(x, (1, 1), (1, 2))) / 4
    return x


@pytest.fixture()
def gallery(tmp_path):
    real = _images(30, 48, 0, smooth=False)
    gen = _images(30, 32, 1, smooth=True)  # a different size on purpose: the gallery equalises it
    return turing.build_gallery(real, gen, tmp_path / "turing", n=10, seed=3, size=40, sources={"real": "test"})


def test_gallery_is_blind_and_key_is_apart(gallery):
    paths = gallery.images
    assert len(paths) == 20
    turing.check_blind(gallery)  # chunks, size, mode, mtime, names
    assert turing.png_chunks(paths[0]) == ["IHDR", "IDAT", "IEND"]
    key = gallery.key()
    assert sorted(key["image"]) == [p.name for p in paths]
    assert (key["truth"] == "generated").sum() == 10 and (key["truth"] == "real").sum() == 10
    assert not any(p.suffix == ".csv" for p in gallery.gallery_dir.iterdir())
    assert gallery.key_dir != gallery.gallery_dir and (gallery.key_dir / "answer_key.csv").is_file()
    names, imgs = turing.load_gallery_images(gallery)
    assert imgs.shape == (20, 40, 40)


def test_gallery_is_reproducible_and_protects_answers(tmp_path, gallery):
    real = _images(30, 48, 0, smooth=False)
    gen = _images(30, 32, 1, smooth=True)
    key1 = gallery.key()
    again = turing.build_gallery(real, gen, gallery.root, n=10, seed=3, size=40)
    pd.testing.assert_frame_equal(key1, again.key())
    turing.simulate_reader(gallery, "A", 0.8, seed=0)
    with pytest.raises(FileExistsError):
        turing.build_gallery(real, gen, gallery.root, n=10, seed=4, size=40)
    with pytest.raises(ValueError, match="need 40 real"):
        turing.build_gallery(real, gen, tmp_path / "t2", n=40)


def _paper_reader(tp: int, tn: int, n: int = 25) -> tuple[pd.DataFrame, pd.DataFrame]:
    imgs = [f"g{i}" for i in range(n)] + [f"r{i}" for i in range(n)]
    truth = ["generated"] * n + ["real"] * n
    ans = ["generated"] * tp + ["real"] * (n - tp) + ["real"] * tn + ["generated"] * (n - tn)
    return pd.DataFrame({"image": imgs, "answer": ans}), pd.DataFrame({"image": imgs, "truth": truth})


@pytest.mark.parametrize(
    "tp,tn,paper_recall_row,paper_precision_row,acc",
    [(7, 13, 0.37, 0.28, 0.40), (11, 12, 0.46, 0.44, 0.46), (22, 17, 0.73, 0.88, 0.78), (19, 21, 0.83, 0.76, 0.80)],
)
def test_scoring_reproduces_seed000_table2(tp, tn, paper_recall_row, paper_precision_row, acc):
    ans, key = _paper_reader(tp, tn)
    s = turing.score_reader(ans, key)
    assert (s["TP"], s["TN"]) == (tp, tn)
    assert s["accuracy"] == pytest.approx(acc, abs=0.005)
    # the published rows are swapped relative to their formulas (see ctad_core.turing docstring)
    assert s["precision"] == pytest.approx(paper_recall_row, abs=0.005)
    assert s["recall"] == pytest.approx(paper_precision_row, abs=0.005)


def test_score_table_group_means():
    resp = {}
    key = None
    for name, (tp, tn), grp in [("A", (7, 13), "scientists"), ("B", (11, 12), "scientists"),
                                ("C", (22, 17), "radiologists"), ("D", (19, 21), "radiologists")]:
        ans, key = _paper_reader(tp, tn)
        ans["group"] = grp
        resp[name] = ans
    t = turing.score_table(resp, key)
    sci = t[("scientists", "mean(A, B)")]
    assert sci["TP"] == 9 and sci["TN"] == 12.5
    assert sci["accuracy"] == pytest.approx(0.43, abs=0.005)
    rad = t[("radiologists", "mean(C, D)")]
    assert rad["TP"] == 20.5  # printed 21.5 in the paper: (22 + 19) / 2 = 20.5
    assert rad["TN"] == 19 and rad["accuracy"] == pytest.approx(0.79, abs=0.005)
    md = turing.table_markdown(t)
    assert "radiologists / mean(C, D)" in md and md.count("\n") == 6


def test_responses_validation_and_scores_files(gallery):
    with pytest.raises(ValueError, match="answers must be"):
        turing.save_responses(gallery, "X", pd.DataFrame({"image": [gallery.images[0].name], "answer": ["fake"]}))
    with pytest.raises(ValueError, match="not in"):
        turing.save_responses(gallery, "X", pd.DataFrame({"image": ["nope.png"], "answer": ["real"]}))
    turing.simulate_reader(gallery, "A", 1.0, seed=0, group="sim")
    turing.simulate_reader(gallery, "B/../x", 0.0, seed=0, group="sim")  # odd names stay inside responses/
    out = turing.score_gallery(gallery)
    assert out["readers"]["A"]["accuracy"] == 1.0
    assert out["readers"]["B/../x"]["accuracy"] == 0.0
    assert out["groups"]["sim"]["accuracy"] == 0.5
    assert all(p.parent == gallery.responses_dir for p in gallery.responses_dir.iterdir())
    assert (gallery.root / "scores.md").is_file() and (gallery.root / "scores.json").is_file()


def test_machine_observer_cross_validated(gallery):
    extra_r = _images(20, 48, 5, smooth=False)
    extra_g = _images(20, 32, 6, smooth=True)
    out = turing.machine_observer(gallery, extra_r, extra_g, n_splits=5, seed=0)
    assert out["n_pool"] == 60 and out["n_splits"] == 5
    assert out["cv_accuracy"] > 0.9  # blur is easy to see
    s = turing.score_gallery(gallery)
    assert s["readers"]["machine"]["n_answered"] == 20
    assert s["readers"]["machine"]["group"] == "machine observer"


def test_rater_widget_saves_each_answer(gallery):
    pytest.importorskip("ipywidgets")
    w = turing.rater(gallery, "R1", group="test")
    real_btn, gen_btn, _ = w.children[2].children
    real_btn.click()
    gen_btn.click()
    df = turing.load_responses(gallery)["R1"]
    assert len(df) == 2 and list(df["answer"]) == ["real", "generated"]
    # resumes at the first unanswered image
    w2 = turing.rater(gallery, "R1", group="test")
    assert "image 3 of 20" in w2.children[0].value
    assert w2.children[3].value == 2

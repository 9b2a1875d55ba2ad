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


def _widgets(w):
    """Every widget in a widget tree."""
    yield w
    for c in getattr(w, "children", ()):
        yield from _widgets(c)


def test_finished_rater_shows_a_message_not_an_empty_image(gallery):
    W = pytest.importorskip("ipywidgets")
    w = turing.rater(gallery, "R2")
    real_btn = w.children[2].children[0]
    for _ in gallery.images:
        real_btn.click()
    assert len(turing.load_responses(gallery)["R2"]) == len(gallery.images)
    shown = list(_widgets(w))
    assert not [x for x in shown if isinstance(x, W.Image) and not x.value], "an Image widget with no bytes"
    assert any(isinstance(x, W.HTML) and "Re-run the <i>Scores</i> cell" in x.value for x in shown)
    assert real_btn.disabled
    back = w.children[2].children[2]
    back.click()  # Back from the finished state shows the last image again, with its bytes
    images = [x for x in _widgets(w) if isinstance(x, W.Image)]
    assert len(images) == 1 and images[0].value == gallery.images[-1].read_bytes()
    assert not real_btn.disabled
    # resumed after finishing: the message again, still no empty image
    again = list(_widgets(turing.rater(gallery, "R2")))
    assert not [x for x in again if isinstance(x, W.Image)]


def test_scoring_without_human_ratings_gives_the_message(gallery):
    extra_r, extra_g = _images(10, 48, 5, smooth=False), _images(10, 32, 6, smooth=True)
    turing.machine_observer(gallery, extra_r, extra_g, n_splits=3, seed=0)  # the machine alone is no person
    s = turing.score_gallery(gallery, complete_only=True)
    msg = turing.scores_message(s)
    assert msg and "No human ratings yet" in msg and "re-run this cell" in msg
    assert not any(ch.isdigit() for ch in msg), "numbers where there are no ratings"
    assert "machine" in s["readers"]  # the machine is still scored (scores.json, the report)


def test_scoring_only_completed_ratings(gallery):
    half = gallery.key().iloc[:7]
    turing.save_responses(gallery, "P", pd.DataFrame({"image": half["image"], "answer": half["truth"]}), "people")
    (gallery.root / "scores.md").write_text("stale table\n")
    s = turing.score_gallery(gallery, complete_only=True)
    assert s["readers"] == {} and s["incomplete"] == {"P": 7}
    msg = turing.scores_message(s)
    assert "P (7 of 20)" in msg and "No human ratings yet" in msg
    assert not (gallery.root / "scores.md").exists(), "a stale table would be shown"
    progress = turing.rating_progress(gallery).set_index("reader")
    assert progress.loc["P", ["answered", "total", "complete", "human"]].tolist() == [7, 20, False, True]
    # headless, as before: every reader scored on what they answered
    s_all = turing.score_gallery(gallery)
    assert s_all["readers"]["P"]["n_answered"] == 7 and s_all["readers"]["P"]["accuracy"] == 1.0
    assert turing.scores_message(s_all) is None
    turing.simulate_reader(gallery, "P", 1.0, seed=0, group="people")  # P finishes
    s_done = turing.score_gallery(gallery, complete_only=True)
    assert s_done["readers"]["P"]["n_answered"] == 20 and turing.scores_message(s_done) is None
    assert (gallery.root / "scores.md").is_file()

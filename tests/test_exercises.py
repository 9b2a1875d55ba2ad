"""The coursework's computations against independent computations, and every self-check with a right answer,
a wrong answer, no answer (None) and a malformed answer."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.metrics import average_precision_score, roc_auc_score

from ctad_core import exercises as ex
from ctad_core.data.windows import WINDOWS
from ctad_core.results import MethodResults

VOTE = {"closing_radius": 0, "vote": "majority", "min_component_size": 0}


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _check_protocol(check, right, wrong, bad, *args):
    """right → ok, wrong → not ok, None → not ok with how to answer (no raise), bad → ValueError."""
    r = check(right, *args)
    assert r.ok and r.message.startswith("Right")
    w = check(wrong, *args)
    assert not w.ok and w.message.startswith("Not quite")
    n = check(None, *args)
    assert not n.ok and "Not answered yet" in n.message
    assert str(n) == n.message
    with pytest.raises(ValueError):
        check(bad, *args)


# ------------------------------------------------------------------------------------------------ 01


def test_window_contrast_matches_hand_computation():
    out = ex.window_contrast(40.0, 65.0, ["brain", "bone", "subdural"])
    for w, got in out.items():
        lo, hi = WINDOWS[w]
        grey = [min(max((v - lo) / (hi - lo), 0.0), 1.0) * 255 for v in (40.0, 65.0)]
        assert got == pytest.approx(abs(grey[0] - grey[1]), abs=1e-3)
    assert out["brain"] > out["bone"]
    with pytest.raises(ValueError):
        ex.window_contrast(40.0, 65.0, ["no-such-window"])


def test_check_window():
    contrast = ex.window_contrast(40.0, 65.0, ["brain", "bone"])
    _check_protocol(ex.check_window, "brain", "bone", "brian", contrast)
    assert ex.check_window("BRAIN", contrast).ok  # case does not matter
    with pytest.raises(ValueError):
        ex.check_window(True, contrast)


def _volumes():
    rng = np.random.default_rng(0)
    img = rng.normal(30.0, 3.0, (3, 4, 6, 6)).astype(np.float32)
    brain = np.zeros(img.shape, np.uint8)
    brain[:, :, 1:5, 1:5] = 1
    lesion = np.zeros(img.shape, np.uint8)
    lesion[0, 1:3, 2:4, 2:4] = 1
    img[0][lesion[0] > 0] = 70.0  # a bright bleed
    lesion[2, 0, 1:3, 1:3] = 6
    img[2][lesion[2] > 0] = 12.0  # a dark infarct
    return img, lesion, brain, ["iph", "healthy", "infarct+fracture"]


def test_lesion_hu_matches_numpy_and_keeps_inputs():
    img, lesion, brain, kinds = _volumes()
    before = _digest(img, lesion, brain)
    t = ex.lesion_hu(img, lesion, brain, kinds, "infarct", ["a", "b", "c"])
    assert _digest(img, lesion, brain) == before
    assert list(t.index) == ["c"]
    rest = (brain[2] > 0) & (lesion[2] == 0)
    assert t.loc["c", "lesion HU"] == pytest.approx(12.0)
    assert t.loc["c", "brain HU"] == pytest.approx(float(np.median(img[2][rest])))
    assert t.loc["c", "difference"] == pytest.approx(12.0 - float(np.median(img[2][rest])))
    assert ex.lesion_hu(img, lesion, brain, kinds, "sdh").empty
    with pytest.raises(ValueError, match="shape"):
        ex.lesion_hu(img, lesion[:, :2], brain, kinds, "iph")
    with pytest.raises(ValueError, match="kinds"):
        ex.lesion_hu(img, lesion, brain, kinds[:2], "iph")


def test_check_lesion_brighter():
    img, lesion, brain, kinds = _volumes()
    bleed = ex.lesion_hu(img, lesion, brain, kinds, "iph")
    _check_protocol(ex.check_lesion_brighter, "brighter", "darker", "bright", bleed)
    infarct = ex.lesion_hu(img, lesion, brain, kinds, "infarct")
    assert ex.check_lesion_brighter("darker", infarct).ok
    empty = ex.check_lesion_brighter("darker", ex.lesion_hu(img, lesion, brain, kinds, "sdh"))
    assert not empty.ok and "Cannot tell" in empty.message


# ------------------------------------------------------------------------------------------------ 02


def test_memorisation_matches_scipy():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(7, 5, 5))
    samples = np.concatenate([train[:2] + 1e-3, rng.normal(size=(3, 5, 5))])
    out = ex.memorisation(samples, train)
    d_st = cdist(samples.reshape(5, -1), train.reshape(7, -1), "sqeuclidean") / 25
    d_tt = cdist(train.reshape(7, -1), train.reshape(7, -1), "sqeuclidean") / 25
    np.fill_diagonal(d_tt, np.inf)
    assert out["sample_to_train"] == pytest.approx(float(np.median(np.sqrt(d_st.min(1)))), rel=1e-6)
    assert out["train_to_train"] == pytest.approx(float(np.median(np.sqrt(d_tt.min(1)))), rel=1e-6)
    assert ex.memorisation(train + 1e-3, train)["closer"]  # copies lie closer than real slices to each other
    with pytest.raises(ValueError):
        ex.memorisation(samples, train[:1])
    with pytest.raises(ValueError):
        ex.memorisation(samples[:, :4], train)


def test_check_memorisation():
    rng = np.random.default_rng(2)
    train = rng.normal(size=(6, 4, 4))
    copies = ex.memorisation(train + 1e-3, train)
    _check_protocol(ex.check_memorisation, True, False, "yes", copies)
    new = ex.memorisation(rng.normal(5.0, 1.0, (4, 4, 4)), train)
    assert ex.check_memorisation(False, new).ok


def test_intensity_distance_is_sorted_difference_for_equal_sizes():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(2, 4, 4))
    snaps = np.stack([rng.normal(2.0, 1.0, (2, 4, 4)), real + 0.1])
    d = ex.intensity_distance(snaps, real)
    for i in range(2):
        ref = np.mean(np.abs(np.sort(snaps[i].ravel()) - np.sort(real.ravel())))
        assert d[i] == pytest.approx(ref, rel=1e-9)
    with pytest.raises(ValueError):
        ex.intensity_distance(np.zeros(3), real)


def test_check_progress():
    d = np.array([0.9, 0.5, 0.2])
    _check_protocol(ex.check_progress, True, False, 1, d)
    assert ex.check_progress(False, d[::-1]).ok
    assert "Cannot tell" in ex.check_progress(True, np.array([0.3])).message


# ------------------------------------------------------------------------------------------------ 03


class _LinearG(torch.nn.Module):
    """G(z) = W z as a (B, 1, 4, 4) image: restore reads ``cfg.nz``."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(w, requires_grad=False)
        self.cfg = SimpleNamespace(nz=w.shape[1])

    def forward(self, z):
        return (z @ self.w.T).reshape(-1, 1, 4, 4)


class _PinvE(torch.nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.linalg.pinv(w), requires_grad=False)

    def forward(self, x):
        return x.flatten(1) @ self.p.T


def test_encoder_vs_restoration_against_numpy():
    torch.manual_seed(0)
    w = torch.linalg.qr(torch.randn(16, 3))[0]
    g, e = _LinearG(w), _PinvE(w)
    z = torch.rand(5, 3) * 0.5
    x = g(z).detach() + 0.01 * torch.randn(5, 1, 4, 4)
    before = _digest(x.numpy())
    out = ex.encoder_vs_restoration(e, g, x, steps=3, lr=0.01)
    assert _digest(x.numpy()) == before
    wn, xn = w.numpy().astype(np.float64), x.numpy().reshape(5, -1).astype(np.float64)
    # the encoder's exact reconstruction: the projection onto G's range
    proj = xn @ np.linalg.pinv(wn).T @ wn.T
    assert out["encoder_rmse"] == pytest.approx(float(np.sqrt(np.mean((proj - xn) ** 2))), rel=1e-4)
    assert out["restoration_rmse"] > out["encoder_rmse"]  # three small steps from z = 0 do not get there
    assert out["steps"] == 3 and out["encoder_s"] >= 0 and out["restoration_s"] > 0
    assert not ex.check_restoration_better(True, out).ok
    with pytest.raises(ValueError):
        ex.encoder_vs_restoration(e, g, x, steps=0)


def test_check_restoration_better():
    res = {"encoder_rmse": 0.2, "restoration_rmse": 0.1, "encoder_s": 0.01, "restoration_s": 1.0, "steps": 50}
    _check_protocol(ex.check_restoration_better, True, False, "True", res)


class _ConstG(torch.nn.Module):
    def __init__(self, image: torch.Tensor) -> None:
        super().__init__()
        self.image = torch.nn.Parameter(image, requires_grad=False)

    def forward(self, z):
        return self.image.expand(z.shape[0], -1, -1, -1)


def test_erased_box_fill():
    x = torch.linspace(-0.5, 0.5, 64).reshape(1, 1, 8, 8)
    flat = torch.nn.Flatten()
    # a generator that draws the learned head whatever z is
    anatomy = ex.erased_box_fill(flat, _ConstG(x[0]), x, box_fraction=0.5)
    assert anatomy["fills_with"] == "anatomy" and anatomy["to_anatomy"] == pytest.approx(0.0, abs=1e-7)
    box = x[0, 0, 2:6, 2:6].numpy().astype(np.float64)
    assert anatomy["to_air"] == pytest.approx(float(np.sqrt(np.mean((box + 1.0) ** 2))), rel=1e-6)

    class Reshape(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # encode_reconstruct reads G's device from its parameters
            self.unused = torch.nn.Parameter(torch.zeros(1), requires_grad=False)

        def forward(self, z):
            return z.reshape(-1, 1, 8, 8)

    copy = ex.erased_box_fill(flat, Reshape(), x, box_fraction=0.5)  # an identity copies the blank
    assert copy["fills_with"] == "air" and copy["to_air"] == pytest.approx(0.0, abs=1e-7)
    assert copy["to_anatomy"] == pytest.approx(float(np.sqrt(np.mean((box + 1.0) ** 2))), rel=1e-6)
    assert copy["erased"].shape == (1, 8, 8) and (copy["erased"][0, 2:6, 2:6] == -1).all()
    assert x.min() > -1  # the input is untouched
    with pytest.raises(ValueError):
        ex.erased_box_fill(flat, Reshape(), x, box_fraction=1.0)


def test_check_fill():
    res = {"to_anatomy": 0.1, "to_air": 0.5, "fills_with": "anatomy"}
    _check_protocol(ex.check_fill, "anatomy", "air", "brain", res)


# ----------------------------------------------------------------------------------------- 04 and 07


def _square(r0, c0, k=2, size=8):
    m = np.zeros((size, size), np.float32)
    m[r0 : r0 + k, c0 : c0 + k] = 1
    return m


def _toy(member_maps, lesion, split, kind, pos=None):
    n = len(lesion)
    return MethodResults(
        name="toy", level="2d", scan_id=np.array([f"s{i}" for i in range(n)]), split=np.array(split),
        kind=np.array(kind), scan_score=np.zeros(n), maps=member_maps.mean(0), lesion=lesion.astype(np.uint8),
        brain=np.ones(lesion.shape, np.uint8), member_maps=member_maps, member_maps_haemorrhage=pos,
        maps_haemorrhage=None if pos is None else pos.mean(0), info={"segmentation": VOTE},
    )  # fmt: skip


def _haemorrhage_case():
    les = np.stack([_square(1, 1), _square(1, 1)])
    pos = np.stack([les] * 3)  # ρ = max(·, 0): only the bright bleed
    dark = _square(5, 5)
    absm = np.stack([les + dark] * 3)  # ρ = |·|: the bleed and a dark region
    return _toy(absm, les, ["val", "test"], ["iph", "iph"], pos)


def test_residual_dice_by_hand():
    res = _haemorrhage_case()
    before = _digest(res.member_maps, res.member_maps_haemorrhage)
    out = ex.residual_dice(res)
    assert _digest(res.member_maps, res.member_maps_haemorrhage) == before
    assert out["pos"]["test_dice"] == pytest.approx(1.0)
    assert out["abs"]["test_dice"] == pytest.approx(2 * 4 / (8 + 4))  # 4 lesion pixels, 8 predicted
    assert out["abs"]["n_val"] == out["abs"]["n_test"] == 1
    _check_protocol(ex.check_residual, "pos", "abs", "max", out)
    with pytest.raises(ValueError, match="max"):
        ex.with_residual(dataclasses_replace(res, maps_haemorrhage=None, member_maps_haemorrhage=None), "pos")
    with pytest.raises(ValueError):
        ex.with_residual(res, "square")


def dataclasses_replace(res, **kw):
    import dataclasses

    return dataclasses.replace(res, **kw)


def test_vote_vs_member_by_hand():
    les = np.stack([_square(1, 1), _square(1, 1)])
    fp = _square(5, 5)
    members = np.stack([les + fp, les, les])  # member 0 adds a false positive the others outvote
    res = _toy(members, les, ["val", "test"], ["tumour", "tumour"])
    out = ex.vote_vs_member(res, 0)
    assert out["vote"]["test_dice"] == pytest.approx(1.0)
    assert out["member"]["test_dice"] == pytest.approx(2 * 4 / (8 + 4))
    _check_protocol(ex.check_vote, "vote", "member", "majority", out)
    tie = ex.vote_vs_member(res, 1)
    assert ex.check_vote("member", tie).ok and "tie" in ex.check_vote("member", tie).message
    with pytest.raises(ValueError, match="member"):
        ex.one_member(res, 3)
    with pytest.raises(ValueError):
        ex.one_member(dataclasses_replace(res, member_maps=None, info={}), 0)


def test_val_threshold_vs_oracle_by_hand():
    val = _square(1, 1)  # lesion 1.0, background 0: the val threshold is the grid's second value (~0.005)
    test = 0.6 * _square(1, 1) + 0.4 * _square(5, 5)  # on test a 0.4 patch lies beside a 0.6 lesion
    les = np.stack([_square(1, 1), _square(1, 1)])
    res = _toy(np.stack([np.stack([val, test])] * 3), les, ["val", "test"], ["iph", "iph"])
    out = ex.val_test_dice(res, reduce="pooled")
    assert out["threshold"] == pytest.approx(1 / 199)
    assert out["test_dice"] == pytest.approx(2 * 4 / (8 + 4))  # lesion and patch
    assert out["oracle_dice"] == pytest.approx(1.0)  # any threshold in (0.4, 0.6] keeps the lesion only
    _check_protocol(ex.check_oracle_share, 0.7, 0.2, 1.5, out)
    with pytest.raises(ValueError):
        ex.check_oracle_share("most", out)
    zero = {**out, "oracle_dice": 0.0}
    assert "Cannot tell" in ex.check_oracle_share(0.5, zero).message
    with pytest.raises(ValueError, match="validation and test"):
        ex.val_test_dice(res, subset=np.array([False, False]))


# ------------------------------------------------------------------------------------------------ 05


def _scans():
    kinds = np.array(["healthy", "healthy", "healthy", "fracture", "iph", "sdh+fracture", "fracture"])
    split = np.array(["test"] * 6 + ["val"])
    score = np.array([0.1, 0.5, 0.3, 0.4, 0.9, 0.6, 0.8])
    lesion = np.zeros((7, 2, 4, 4), np.uint8)
    brain = np.zeros((7, 2, 4, 4), np.uint8)
    brain[:, :, 1:3, 1:3] = 1
    lesion[3, 0, 0, 0:2] = 9  # outside the mask
    lesion[3, 1, 1, 1] = 9  # inside
    lesion[5, 0, 2, 2] = 9  # inside
    return MethodResults(name="m", level="3d", scan_id=np.array([f"v{i}" for i in range(7)]), split=split,
                         kind=kinds, scan_score=score, lesion=lesion, brain=brain)  # fmt: skip


def test_kind_auroc_matches_sklearn():
    res = _scans()
    out = ex.kind_auroc(res, "fracture")
    sel = [0, 1, 2, 3, 5]
    y = [0, 0, 0, 1, 1]
    assert out["auroc"] == pytest.approx(roc_auc_score(y, res.scan_score[sel]))
    assert (out["n_lesion"], out["n_healthy"]) == (2, 3)
    assert out["mask_coverage"] == pytest.approx(2 / 4)  # fracture voxels: 2 of 4 inside the mask
    every = ex.kind_auroc(res)
    assert every["auroc"] == pytest.approx(roc_auc_score([0, 0, 0, 1, 1, 1], res.scan_score[:6]))
    assert np.isnan(ex.kind_auroc(res, "edh")["auroc"])


def test_check_better_method():
    res = _scans()
    other = dataclasses_replace(res, name="n", scan_score=res.scan_score[::-1].copy())
    table = ex.compare_auroc({"m": res, "n": other}, "fracture")
    best = table["auroc"].idxmax()
    worst = table["auroc"].idxmin()
    assert best != worst
    _check_protocol(ex.check_better_method, best, worst, "neither", table)
    assert "Cannot tell" in ex.check_better_method("m", pd.DataFrame()).message
    assert "`pair_winner`" in ex.check_better_method(None, table, name="pair_winner").message


def test_pick_method(capsys):
    assert ex.pick_method(["a", "b"], "b") == "b"
    assert ex.pick_method(["a", "b"], "z") == "a" and "'z' has no results" in capsys.readouterr().out
    with pytest.raises(ValueError):
        ex.pick_method([], "a")


# ------------------------------------------------------------------------------------------------ 06


def test_human_vs_machine_and_check():
    scores = {
        "readers": {
            "A": {"accuracy": 0.5, "group": "students"},
            "B": {"accuracy": 0.8, "group": "students"},
            "machine": {"accuracy": 0.9, "group": "machine observer"},
        },
        "machine_observer": {"reader": "machine", "cv_accuracy": 0.7},
    }
    out = ex.human_vs_machine(scores)
    assert out["readers"] == {"A": 0.5, "B": 0.8}  # the machine is not one of the people
    assert out["reader_mean"] == pytest.approx(0.65)
    assert out["machine"] == pytest.approx(0.9)  # on the gallery, as the people; not the CV pool's 0.7
    _check_protocol(ex.check_machine_beats, True, False, "machine", out)
    only_cv = ex.human_vs_machine(
        {"readers": {"A": {"accuracy": 0.5}}, "machine_observer": {"cv_accuracy": 0.4}}
    )
    assert only_cv["machine"] == pytest.approx(0.4) and ex.check_machine_beats(False, only_cv).ok
    none = ex.human_vs_machine({"machine_observer": {"cv_accuracy": 0.7}})
    assert np.isnan(none["reader_mean"]) and "Cannot tell" in ex.check_machine_beats(True, none).message


def test_score_and_check_guesses():
    key = pd.DataFrame({"image": ["a.png", "b.png", "c.png", "d.png"],
                        "truth": ["real", "generated", "generated", "real"]})  # fmt: skip
    names = ["a.png", "b.png", "c.png", "d.png"]
    df = ex.score_guesses("rg g", names, key)
    assert df["right"].tolist() == [True, True, True]
    _check_protocol(ex.check_guesses, "RGGR", "GRRG", "RXG", names, key)
    assert "wrong: image(s) [1, 2]" in ex.check_guesses("GRGR", names, key).message
    with pytest.raises(ValueError, match="letters"):
        ex.check_guesses("RGGRR", names, key)
    assert not ex.check_guesses("", names, key).ok


# ------------------------------------------------------------------------------------------------ 07


def test_pixel_auroc_auprc_matches_sklearn():
    rng = np.random.default_rng(4)
    n = 6
    lesion = (rng.random((n, 8, 8)) < 0.1).astype(np.uint8)
    maps = (lesion * 0.5 + rng.random((n, 8, 8))).astype(np.float32)
    brain = np.zeros((n, 8, 8), np.uint8)
    brain[:, 1:7, 1:7] = 1
    split = np.array(["val", "test"] * 3)
    res = MethodResults(name="p", level="2d", scan_id=np.arange(n).astype(str), split=split,
                        kind=np.array(["iph"] * n), scan_score=np.zeros(n), maps=maps, lesion=lesion, brain=brain)  # fmt: skip
    t = ex.pixel_auroc_auprc(res, seed=0)
    sel = (split == "test")[:, None, None] & (brain > 0)
    y, s = lesion[sel], maps[sel]
    assert t.loc["method", "AUROC"] == pytest.approx(roc_auc_score(y, s))
    assert t.loc["method", "AUPRC"] == pytest.approx(average_precision_score(y, s))
    assert t.loc["method", "prevalence"] == pytest.approx(y.mean())
    _check_protocol(ex.check_higher_metric, "AUROC", "AUPRC", "Dice", t)
    assert "random map" in ex.check_higher_metric("auroc", t).message
    with pytest.raises(ValueError, match="maps"):
        ex.pixel_auroc_auprc(dataclasses_replace(res, maps=None))

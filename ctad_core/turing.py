"""A visual Turing test of generated images (seed 000, Sec. 3 and Table 2).

Layout under ``run_dir/turing/``::

    gallery/<16 hex>.png     the blinded images: real and generated look alike on disk (same size, 8-bit
                             gray, same windowing, no text/time chunks, same file time, random names)
    key/answer_key.csv       image, truth (real | generated), source index — keep this folder from raters
    key/gallery.json         how the gallery was drawn (seed, n, size, sources)
    responses/<reader>.csv   one file per reader: image, answer, seconds, answered_at
    scores.csv / scores.json the Table-2 scores per reader and group

Scoring follows seed 000 Table 2, whose footnote fixes the positive class: **positive = generated**
(TP = generated images called generated, TN = real images called real); recall = TP / (TP + FN),
precision = TP / (TP + FP), accuracy = (TP + TN) / (P + N); a group's column is the mean of its readers'.

Note: the published Table 2's "Recall" and "Precision" rows are swapped relative to their own formulas
(reader A: TP = 7, TN = 13 of 25 + 25 gives TP/(TP+FN) = 0.28 and TP/(TP+FP) = 0.37, printed the other
way round), and the radiologists' mean TP is printed 21.5 where (22 + 19) / 2 = 20.5. We compute the
formulas as written; ``tests/test_turing.py`` reproduces the published numbers with this in mind.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ctad_core.utils import atomic_write, read_json, write_json

REAL = "real"
GENERATED = "generated"
_FIXED_MTIME = 946684800  # 2000-01-01: every gallery file gets the same time stamp (no write-order leak)
_ROWS = ("TP", "TN", "recall", "precision", "accuracy")
#: The group of the machine observer's answers (:func:`machine_observer`); every other group is people.
MACHINE_GROUP = "machine observer"


@dataclass
class Gallery:
    """Where a gallery lies and what it holds.

    Attributes:
        root: ``run_dir/turing``.
        images: the gallery PNG paths in presentation order (sorted random names).
        key: the answer key (image, truth, source_index).
    """

    root: Path

    @property
    def gallery_dir(self) -> Path:
        """The folder shown to raters."""
        return self.root / "gallery"

    @property
    def key_dir(self) -> Path:
        """The folder kept from raters."""
        return self.root / "key"

    @property
    def responses_dir(self) -> Path:
        """One CSV per reader."""
        return self.root / "responses"

    @property
    def images(self) -> list[Path]:
        """Gallery images in presentation order."""
        return sorted(self.gallery_dir.glob("*.png"))

    def key(self) -> pd.DataFrame:
        """The answer key (image, truth, source_index)."""
        path = self.key_dir / "answer_key.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: build the gallery first (build_gallery)")
        return pd.read_csv(path, dtype={"image": str, "truth": str})


# -------------------------------------------------------------------------------------------- images


def to_gallery_image(image: np.ndarray, size: int) -> np.ndarray:
    """One display image in [0, 1] → the uint8 (size, size) array every gallery file holds.

    Real and generated images go through exactly this function, so they share size, interpolation and
    quantisation.

    Args:
        image: (H, W) display intensities in [0, 1] (values outside are clipped).
        size: the side of the square output.

    Returns:
        (size, size) uint8.

    >>> to_gallery_image(np.ones((4, 4)), 8).shape
    (8, 8)
    """
    a = np.asarray(image, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"a gallery image must be (H, W), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("a gallery image contains NaN or inf")
    img = Image.fromarray(np.clip(a, 0.0, 1.0).astype(np.float32))
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.clip(np.rint(np.asarray(img) * 255.0), 0, 255).astype(np.uint8)


def _write_png(path: Path, arr: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        # no pnginfo, no dpi, no gamma: only IHDR/IDAT/IEND chunks are written
        Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(tmp, format="PNG", optimize=False, compress_level=6)

    atomic_write(path, write)
    os.utime(path, (_FIXED_MTIME, _FIXED_MTIME))


def png_chunks(path: str | os.PathLike) -> list[str]:
    """The chunk types of a PNG file, in order (to check that nothing but pixels is stored)."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    out, i = [], 8
    while i + 8 <= len(data):
        n = int.from_bytes(data[i : i + 4], "big")
        out.append(data[i + 4 : i + 8].decode("ascii"))
        i += 12 + n
    return out


def build_gallery(
    real: np.ndarray,
    generated: np.ndarray,
    root: str | os.PathLike,
    n: int = 25,
    seed: int = 0,
    size: int = 256,
    sources: Mapping[str, Any] | None = None,
) -> Gallery:
    """Draw ``n`` real and ``n`` generated images with ``seed``, shuffle them and write a blinded gallery.

    Re-running with the same inputs writes the same gallery. If readers have already answered and the
    gallery would change, this refuses (their answers would no longer match the key).

    Args:
        real: (N_real, H, W) real display images in [0, 1] (same windowing as the generated ones).
        generated: (N_gen, H', W') generated display images in [0, 1].
        root: ``run_dir/turing``.
        n: images per class (seed 000: 25 + 25).
        seed: draws the images and the random file names.
        size: side of every gallery PNG.
        sources: JSON-able notes stored with the key (where the images came from).

    Returns:
        The :class:`Gallery`.

    Raises:
        ValueError: if a class has fewer than ``n`` images or the arrays are malformed.
        FileExistsError: if responses exist for a different gallery.
    """
    real = np.asarray(real)
    generated = np.asarray(generated)
    for name, a in (("real", real), ("generated", generated)):
        if a.ndim != 3:
            raise ValueError(f"{name} images must be (N, H, W), got shape {a.shape}")
        if a.shape[0] < n:
            raise ValueError(f"need {n} {name} images for the gallery, got {a.shape[0]} (shape {a.shape})")
    rng = np.random.default_rng(seed)
    pick_r = np.sort(rng.choice(real.shape[0], n, replace=False))
    pick_g = np.sort(rng.choice(generated.shape[0], n, replace=False))
    truth = np.array([REAL] * n + [GENERATED] * n)
    src = np.r_[pick_r, pick_g]
    names = set()
    while len(names) < 2 * n:  # 64-bit random names; collisions are astronomically unlikely but checked
        names.add(rng.bytes(8).hex())
    names_arr = np.array(sorted(names))
    rng.shuffle(names_arr)
    key = pd.DataFrame({"image": [f"{h}.png" for h in names_arr], "truth": truth, "source_index": src})
    key = key.sort_values("image").reset_index(drop=True)

    g = Gallery(Path(root))
    old_key = g.key_dir / "answer_key.csv"
    if old_key.is_file():
        old = pd.read_csv(old_key, dtype={"image": str, "truth": str})
        same = old[["image", "truth", "source_index"]].equals(key[["image", "truth", "source_index"]])
        if not same and any(g.responses_dir.glob("*.csv")):
            raise FileExistsError(
                f"{g.responses_dir} holds answers for a different gallery; move them away or use another run_dir"
            )
    g.gallery_dir.mkdir(parents=True, exist_ok=True)
    for old_png in g.gallery_dir.glob("*.png"):
        old_png.unlink()
    # write in presentation (name) order so nothing about the class leaks through the write order
    for row in key.itertuples():
        img = real[row.source_index] if row.truth == REAL else generated[row.source_index]
        _write_png(g.gallery_dir / row.image, to_gallery_image(img, size))
    atomic_write(old_key, lambda p: key.to_csv(p, index=False))
    write_json(g.key_dir / "gallery.json", {"n_per_class": n, "seed": seed, "size": size, "sources": dict(sources or {})})
    g.responses_dir.mkdir(parents=True, exist_ok=True)
    return g


def load_gallery_images(gallery: Gallery) -> tuple[list[str], np.ndarray]:
    """The gallery's images as raters see them: (names, (2n, size, size) float32 in [0, 1])."""
    paths = gallery.images
    if not paths:
        raise FileNotFoundError(f"no PNGs in {gallery.gallery_dir}")
    arr = np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.float32) / 255.0 for p in paths])
    return [p.name for p in paths], arr


# ------------------------------------------------------------------------------------------ responses


def _reader_file(gallery: Gallery, reader: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", reader.strip())
    if not safe:
        raise ValueError(f"reader name {reader!r} has no usable characters")
    return gallery.responses_dir / f"{safe}.csv"


def save_responses(gallery: Gallery, reader: str, answers: pd.DataFrame, group: str = "") -> Path:
    """Atomically write one reader's answers (columns image, answer[, seconds, answered_at]).

    Args:
        gallery: the gallery answered.
        reader: the reader's name (file-name safe characters kept).
        answers: one row per answered image; ``answer`` is ``real`` or ``generated``.
        group: e.g. ``"radiologists"``; stored in every row.

    Raises:
        ValueError: for an unknown image or answer.
    """
    df = answers.copy()
    bad = sorted(set(df["answer"]) - {REAL, GENERATED})
    if bad:
        raise ValueError(f"answers must be {REAL!r} or {GENERATED!r}, got {bad}")
    known = {p.name for p in gallery.images}
    unknown = sorted(set(df["image"]) - known)
    if unknown:
        raise ValueError(f"answers name images not in {gallery.gallery_dir}: {unknown[:3]}")
    df["reader"] = reader
    df["group"] = group
    path = _reader_file(gallery, reader)
    return atomic_write(path, lambda p: df.to_csv(p, index=False))


def load_responses(gallery: Gallery) -> dict[str, pd.DataFrame]:
    """Every reader's answers, by reader name."""
    out = {}
    for p in sorted(gallery.responses_dir.glob("*.csv")):
        df = pd.read_csv(p, dtype={"image": str, "answer": str, "reader": str, "group": str}, keep_default_na=False)
        name = df["reader"].iloc[0] if len(df) and "reader" in df else p.stem
        out[name] = df
    return out


# ------------------------------------------------------------------------------------------- scoring


def score_reader(answers: pd.DataFrame, key: pd.DataFrame) -> dict[str, float]:
    """Seed 000 Table 2 for one reader (positive = generated).

    Args:
        answers: columns image, answer (``real``/``generated``); unanswered images are left out.
        key: the answer key (image, truth).

    Returns:
        ``TP, TN, FP, FN, P, N, recall, precision, accuracy, n_answered`` (``nan`` where undefined).

    >>> key = pd.DataFrame({"image": ["a", "b", "c", "d"], "truth": ["generated", "generated", "real", "real"]})
    >>> ans = pd.DataFrame({"image": ["a", "b", "c", "d"], "answer": ["generated", "real", "generated", "real"]})
    >>> s = score_reader(ans, key)
    >>> s["TP"], s["TN"], s["recall"], s["precision"], s["accuracy"]
    (1, 1, 0.5, 0.5, 0.5)
    """
    m = answers[["image", "answer"]].drop_duplicates("image", keep="last").merge(key[["image", "truth"]], on="image", how="inner")
    if len(m) < len(answers[["image"]].drop_duplicates()):
        missing = sorted(set(answers["image"]) - set(key["image"]))
        raise ValueError(f"answers name images not in the key: {missing[:3]}")
    t, a = m["truth"].to_numpy(), m["answer"].to_numpy()
    tp = int(np.sum((t == GENERATED) & (a == GENERATED)))
    tn = int(np.sum((t == REAL) & (a == REAL)))
    fp = int(np.sum((t == REAL) & (a == GENERATED)))
    fn = int(np.sum((t == GENERATED) & (a == REAL)))
    nan = float("nan")
    return {
        "TP": tp,
        "TN": tn,
        "FP": fp,
        "FN": fn,
        "P": tp + fn,
        "N": tn + fp,
        "recall": tp / (tp + fn) if tp + fn else nan,
        "precision": tp / (tp + fp) if tp + fp else nan,
        "accuracy": (tp + tn) / len(m) if len(m) else nan,
        "n_answered": int(len(m)),
    }


def score_table(
    responses: Mapping[str, pd.DataFrame], key: pd.DataFrame, groups: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Table 2 of seed 000: one column per reader, then one ``mean`` column per group.

    Args:
        responses: answers by reader (as :func:`load_responses` returns).
        key: the answer key.
        groups: reader → group; default the ``group`` column of each reader's answers ("" = ungrouped).

    Returns:
        A DataFrame with rows TP, TN, recall, precision, accuracy and MultiIndex columns (group, reader);
        a group's mean column is named ``mean(A, B)``.
    """
    cols: dict[tuple[str, str], dict[str, float]] = {}
    by_group: dict[str, list[str]] = {}
    for reader, df in responses.items():
        g = (groups or {}).get(reader)
        if g is None:
            g = str(df["group"].iloc[0]) if "group" in df and len(df) else ""
        by_group.setdefault(g, []).append(reader)
        s = score_reader(df, key)
        cols[(g, reader)] = {r: s[r] for r in _ROWS}
    ordered: dict[tuple[str, str], dict[str, float]] = {}
    for g in sorted(by_group):
        readers = by_group[g]
        for r in readers:
            ordered[(g, r)] = cols[(g, r)]
        if len(readers) > 1:
            ordered[(g, f"mean({', '.join(readers)})")] = {
                row: float(np.mean([cols[(g, r)][row] for r in readers])) for row in _ROWS
            }
    df = pd.DataFrame(ordered, index=list(_ROWS))
    df.columns = pd.MultiIndex.from_tuples(list(ordered), names=["group", "reader"])
    return df


def table_markdown(table: pd.DataFrame) -> str:
    """Table 2 as Markdown (reader columns headed ``group / reader``)."""
    header = ["", *[f"{g} / {r}" if g else r for g, r in table.columns]]
    labels = {"TP": "TP (generated called generated)", "TN": "TN (real called real)",
              "recall": "Recall TP/(TP+FN)", "precision": "Precision TP/(TP+FP)", "accuracy": "Accuracy (TP+TN)/(P+N)"}
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.index:
        vals = [f"{v:g}" if row in ("TP", "TN") else f"{v:.2f}" for v in table.loc[row]]
        lines.append("| " + " | ".join([labels.get(row, row), *vals]) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- machine observer


def image_features(images: np.ndarray, thumb: int = 16, bins: int = 32) -> np.ndarray:
    """Simple hand-made features of (N, H, W) images in [0, 1] for the machine observer.

    Intensity histogram, a ``thumb``×``thumb`` thumbnail, gradient-magnitude statistics and the radially
    averaged log power spectrum (GAN up-sampling leaves traces at high spatial frequencies).

    Returns:
        (N, F) float64.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got shape {x.shape}")
    n, h, w = x.shape
    hist = np.stack([np.histogram(im, bins=bins, range=(0, 1))[0] / im.size for im in x])
    th = np.stack([np.asarray(Image.fromarray(im.astype(np.float32)).resize((thumb, thumb), Image.Resampling.BOX))
                   for im in x]).reshape(n, -1)
    gy, gx = np.gradient(x, axis=(1, 2))
    g = np.hypot(gx, gy).reshape(n, -1)
    grad = np.stack([g.mean(1), g.std(1), np.percentile(g, 90, axis=1), np.percentile(g, 99, axis=1)], 1)
    f = np.abs(np.fft.fftshift(np.fft.fft2(x - x.mean(axis=(1, 2), keepdims=True)), axes=(1, 2))) ** 2
    yy, xx = np.indices((h, w))
    r = np.hypot(yy - h / 2, xx - w / 2)
    nb = 16
    ridx = np.minimum((r / (r.max() + 1e-9) * nb).astype(int), nb - 1).ravel()
    counts = np.bincount(ridx, minlength=nb)
    spec = np.stack([np.bincount(ridx, weights=fi.ravel(), minlength=nb) / np.maximum(counts, 1) for fi in f])
    return np.concatenate([hist, th, grad, np.log1p(spec)], 1)


def machine_observer(
    gallery: Gallery,
    extra_real: np.ndarray | None = None,
    extra_generated: np.ndarray | None = None,
    n_splits: int = 5,
    seed: int = 0,
    size: int | None = None,
    reader: str = "machine",
    group: str = MACHINE_GROUP,
) -> dict[str, Any]:
    """A logistic-regression reader on simple image features, cross-validated, saved as one more reader.

    The pool is the gallery's images (read back from the PNGs) plus optional extra real / generated
    display images (processed exactly like gallery images). With :class:`~sklearn.model_selection.
    StratifiedKFold`, every image is classified by a model that never saw it; the gallery images'
    out-of-fold answers are the machine's responses.

    Args:
        gallery: the gallery (key needed: this reader is trained on labels).
        extra_real: (N, H, W) extra real display images in [0, 1] not in the gallery, or None.
        extra_generated: (M, H, W) extra generated display images in [0, 1], or None.
        n_splits: folds (reduced to the smallest class size if needed).
        seed: fold shuffling.
        size: gallery image size (default: read from the gallery).
        reader: the name the answers are saved under.
        group: its group.

    Returns:
        ``{"reader", "cv_accuracy", "cv_auroc", "n_pool", "n_splits", "features"}``; answers are saved with
        :func:`save_responses`.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ctad_core.evaluation.metrics import roc_auc

    key = gallery.key().set_index("image")
    names, imgs = load_gallery_images(gallery)
    if size is None:
        size = imgs.shape[-1]
    labels = [int(key.loc[nm, "truth"] == GENERATED) for nm in names]
    pool = [imgs]
    for extra, lab in ((extra_real, 0), (extra_generated, 1)):
        if extra is not None and len(extra):
            pool.append(np.stack([to_gallery_image(e, size) for e in extra]).astype(np.float32) / 255.0)
            labels += [lab] * len(extra)
    x = image_features(np.concatenate(pool))
    y = np.asarray(labels)
    k = int(min(n_splits, np.bincount(y, minlength=2).min()))
    if k < 2:
        raise ValueError(f"need at least 2 images per class for cross-validation, got counts {np.bincount(y).tolist()}")
    prob = np.zeros(len(y))
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        clf.fit(x[tr], y[tr])
        prob[te] = clf.predict_proba(x[te])[:, 1]
    pred = prob >= 0.5
    n_gal = len(names)
    answers = pd.DataFrame({"image": names, "answer": np.where(pred[:n_gal], GENERATED, REAL), "seconds": np.nan,
                            "answered_at": ""})
    save_responses(gallery, reader, answers, group)
    return {
        "reader": reader,
        "cv_accuracy": float(np.mean(pred == y)),
        "cv_auroc": roc_auc(prob, y),
        "n_pool": int(len(y)),
        "n_splits": k,
        "features": "histogram + 16x16 thumbnail + gradient stats + radial power spectrum; logistic regression",
    }


# -------------------------------------------------------------------------------------------- rater UI


def rater(gallery: Gallery, reader: str, group: str = "", image_width: int = 384) -> Any:
    """An ipywidgets rater for JupyterLab: one image at a time, Real / Generated, progress, saved per answer.

    Answers are written to ``responses/<reader>.csv`` after every click, so closing the notebook loses
    nothing; calling this again for the same reader resumes at the first unanswered image. The reader
    sees only the gallery (never the key).

    Args:
        gallery: the gallery to rate.
        reader: the reader's name (e.g. ``"A"``).
        group: e.g. ``"scientists"`` or ``"radiologists"``.
        image_width: display width in pixels.

    Returns:
        The widget (display it as the last expression of a cell).
    """
    import ipywidgets as W

    paths = gallery.images
    if not paths:
        raise FileNotFoundError(f"no PNGs in {gallery.gallery_dir}: build the gallery first")
    path = _reader_file(gallery, reader)
    rows: dict[str, dict[str, Any]] = {}
    if path.is_file():
        prev = pd.read_csv(path, dtype={"image": str, "answer": str}, keep_default_na=False)
        rows = {r["image"]: dict(r) for r in prev.to_dict("records")}
    state = {"i": next((i for i, p in enumerate(paths) if p.name not in rows), len(paths)), "t0": time.monotonic()}

    img = W.Image(format="png", width=image_width)
    # the image's place: the image while there is one to answer, a message once all are answered (an
    # Image widget holding no bytes shows the browser's broken-image icon)
    done = W.HTML(layout=W.Layout(width=f"{image_width}px", padding="2em 0"))
    frame = W.Box([img])
    title = W.HTML()
    progress = W.IntProgress(min=0, max=len(paths), description="answered")
    b_real = W.Button(description="Real", button_style="success", icon="check")
    b_gen = W.Button(description="Generated", button_style="warning", icon="magic")
    b_back = W.Button(description="Back", icon="arrow-left")
    status = W.HTML()

    def show() -> None:
        i = state["i"]
        progress.value = len(rows)
        if i >= len(paths):
            title.value = f"<b>{reader}</b>: all {len(paths)} images answered — thank you."
            done.value = (
                f"<p><b>Done.</b> All {len(paths)} answers are saved. Re-run the <i>Scores</i> cell below to "
                "score them; <i>Back</i> shows your answers again.</p>"
            )
            frame.children = (done,)
            b_real.disabled = b_gen.disabled = True
            status.value = f"saved to <code>{path}</code>"
            return
        frame.children = (img,)
        b_real.disabled = b_gen.disabled = False
        title.value = f"<b>{reader}</b>: image {i + 1} of {len(paths)} — real CT or generated?"
        img.value = paths[i].read_bytes()
        prior = rows.get(paths[i].name, {}).get("answer")
        status.value = f"your earlier answer: {prior}" if prior else ""
        state["t0"] = time.monotonic()

    def answer(value: str) -> None:
        i = state["i"]
        if i >= len(paths):
            return
        rows[paths[i].name] = {"image": paths[i].name, "answer": value,
                               "seconds": round(time.monotonic() - state["t0"], 2),
                               "answered_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        save_responses(gallery, reader, pd.DataFrame(list(rows.values())), group)
        state["i"] = next((j for j in range(i + 1, len(paths)) if paths[j].name not in rows), len(paths))
        show()

    def back(_: Any) -> None:
        state["i"] = max(0, min(state["i"], len(paths)) - 1)
        show()

    b_real.on_click(lambda _: answer(REAL))
    b_gen.on_click(lambda _: answer(GENERATED))
    b_back.on_click(back)
    show()
    return W.VBox([title, frame, W.HBox([b_real, b_gen, b_back]), progress, status])


# -------------------------------------------------------------------------------------------- results


def rating_progress(gallery: Gallery) -> pd.DataFrame:
    """How far every reader got: one row per reader with ``group``, ``answered``, ``total``, ``complete``
    (every gallery image answered) and ``human`` (not the machine observer's group)."""
    total = len(gallery.images)
    rows = []
    for name, df in load_responses(gallery).items():
        group = str(df["group"].iloc[0]) if "group" in df and len(df) else ""
        answered = int(df["image"].nunique()) if len(df) else 0
        rows.append({"reader": name, "group": group, "answered": answered, "total": total,
                     "complete": answered >= total, "human": group != MACHINE_GROUP})
    cols = ["reader", "group", "answered", "total", "complete", "human"]
    return pd.DataFrame(rows, columns=cols)


def score_gallery(gallery: Gallery, complete_only: bool = False) -> dict[str, Any]:
    """Score the readers found, write ``scores.csv`` / ``scores.json`` / ``scores.md``; return the JSON dict.

    Args:
        gallery: the gallery.
        complete_only: score only readers who answered every image (a rater still at work is listed under
            ``incomplete`` instead); by default every reader is scored on the images they answered.

    Returns:
        ``{"readers": {reader: {group, TP, TN, …}}, "groups": {group: {TP, TN, recall, precision, accuracy}},
        "n_per_class", "positive": "generated", "n_images", "incomplete": {reader: answered}}``. With no reader
        scored, ``scores.csv`` / ``scores.md`` of an earlier call are removed, so no stale table is shown.
    """
    key = gallery.key()
    responses = load_responses(gallery)
    incomplete: dict[str, int] = {}
    if complete_only:
        progress = rating_progress(gallery)
        incomplete = {r.reader: int(r.answered) for r in progress.itertuples() if not r.complete}
        responses = {k: v for k, v in responses.items() if k not in incomplete}
    meta = read_json(gallery.key_dir / "gallery.json") if (gallery.key_dir / "gallery.json").is_file() else {}
    readers: dict[str, Any] = {}
    for name, df in responses.items():
        s = score_reader(df, key)
        s["group"] = str(df["group"].iloc[0]) if "group" in df and len(df) else ""
        readers[name] = s
    groups: dict[str, Any] = {}
    for g in sorted({r["group"] for r in readers.values()}):
        members = [r for r in readers.values() if r["group"] == g]
        groups[g] = {row: float(np.mean([m[row] for m in members])) for row in _ROWS}
        groups[g]["n_readers"] = len(members)
    out = {"positive": GENERATED, "n_per_class": meta.get("n_per_class"), "n_images": len(key),
           "readers": readers, "groups": groups, "incomplete": incomplete}
    write_json(gallery.root / "scores.json", out)
    if responses:
        table = score_table(responses, key)
        flat = table.copy()
        flat.columns = [f"{g}/{r}" if g else r for g, r in table.columns]
        atomic_write(gallery.root / "scores.csv", lambda p: flat.to_csv(p))
        atomic_write(gallery.root / "scores.md", lambda p: p.write_text(table_markdown(table) + "\n"))
    else:
        for name in ("scores.csv", "scores.md"):
            (gallery.root / name).unlink(missing_ok=True)
    return out


def scores_message(scores: dict[str, Any]) -> str | None:
    """What the scoring cell says instead of a table when no person's ratings were scored.

    Args:
        scores: :func:`score_gallery`'s result.

    Returns:
        Markdown telling the reader that no human ratings exist yet (or which are unfinished) and what to do
        — rate in the rater above, then re-run the scoring cell — or None when at least one human reader was
        scored (then show the table).
    """
    humans = [r for r, s in scores.get("readers", {}).items() if s.get("group") != MACHINE_GROUP]
    if humans:
        return None
    unfinished = scores.get("incomplete", {})
    total = scores.get("n_images")
    lines = ["**No human ratings yet**, so there is nothing to score for people (the machine observer's result "
             "is printed above)."]
    if unfinished:
        lines.append("Unfinished: " + ", ".join(f"{r} ({n} of {total})" for r, n in sorted(unfinished.items()))
                     + "; a reader is scored once every image is answered.")
    lines.append("To rate: set `reader` (and `reader_group`) in the parameters cell, run the rater cell, answer "
                 "every image, then **re-run this cell**.")
    return "\n\n".join(lines)


def simulate_reader(gallery: Gallery, reader: str, accuracy: float, seed: int, group: str = "simulated") -> Path:
    """Answers of a simulated reader who is right with probability ``accuracy`` (for demos and tests only)."""
    key = gallery.key()
    rng = np.random.default_rng(seed)
    right = rng.random(len(key)) < accuracy
    flip = {REAL: GENERATED, GENERATED: REAL}
    ans = [t if ok else flip[t] for t, ok in zip(key["truth"], right)]
    return save_responses(gallery, reader, pd.DataFrame({"image": key["image"], "answer": ans}), group)


def check_blind(gallery: Gallery, allowed_chunks: Sequence[str] = ("IHDR", "IDAT", "IEND")) -> None:
    """Raise if a gallery file carries anything beyond pixels or if the files differ in format/size/time.

    Raises:
        ValueError: naming the file and what leaks.
    """
    ref = None
    for p in gallery.images:
        chunks = set(png_chunks(p))
        extra = chunks - set(allowed_chunks)
        if extra:
            raise ValueError(f"{p} carries PNG chunks {sorted(extra)} besides the pixels")
        with Image.open(p) as im:
            sig = (im.mode, im.size, int(p.stat().st_mtime))
        if ref is None:
            ref = sig
        elif sig != ref:
            raise ValueError(f"{p} differs from the other gallery images in (mode, size, mtime): {sig} vs {ref}")
        if not re.fullmatch(r"[0-9a-f]{16}\.png", p.name):
            raise ValueError(f"{p.name} is not a random hex name")


# ------------------------------------------------------------------------------------------ a class's answers


def merge_responses(
    gallery: Gallery, files: Sequence[str | os.PathLike], import_answers: bool = False
) -> pd.DataFrame:
    """Merge answer files collected from several readers (e.g. a class) into one table for this gallery.

    Every student rates the *same* gallery (the lecturer's ``turing/gallery/``, shared without ``key/``) with
    :func:`rater`, which writes ``responses/<reader>.csv``; the lecturer collects those files into one folder
    and merges them here. Each file is checked against this gallery before anything is written.

    Args:
        gallery: the gallery the readers rated (its images; the key is not needed to merge).
        files: the readers' CSV files (columns ``image``, ``answer``; ``reader``, ``group``, ``seconds``,
            ``answered_at`` when the rater wrote them). The reader's name is the ``reader`` column, else the
            file's stem.
        import_answers: also write each reader's answers into ``gallery.responses_dir`` (atomically, with
            :func:`save_responses`), so that :func:`score_gallery` and notebook 06 score the class.

    Returns:
        One row per answer: ``reader``, ``group``, ``image``, ``answer``, ``seconds``, ``answered_at``,
        ``file``; an image answered twice by a reader keeps the last answer.

    Raises:
        ValueError: naming the file: no ``image``/``answer`` column, an answer other than ``real`` /
            ``generated``, images that are not in this gallery (a reader rated another gallery), or a reader
            name that two files share.
        FileNotFoundError: a file that does not exist, or a gallery without images.
    """
    known = {p.name for p in gallery.images}
    if not known:
        raise FileNotFoundError(f"no PNGs in {gallery.gallery_dir}: build or copy the gallery first")
    parts, seen = [], {}
    for f in files:
        path = Path(f)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such answer file")
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        missing = {"image", "answer"} - set(df.columns)
        if missing:
            raise ValueError(f"{path}: not an answer file, it has no column(s) {sorted(missing)}")
        bad = sorted(set(df["answer"]) - {REAL, GENERATED})
        if bad:
            raise ValueError(f"{path}: answers must be {REAL!r} or {GENERATED!r}, got {bad[:3]}")
        unknown = sorted(set(df["image"]) - known)
        if unknown:
            raise ValueError(
                f"{path}: {len(unknown)} image(s) not in {gallery.gallery_dir}, e.g. {unknown[:2]} — "
                "this reader rated another gallery"
            )
        names = {r for r in df.get("reader", pd.Series(dtype=str)) if r}
        reader = names.pop() if len(names) == 1 else path.stem
        if reader in seen:
            raise ValueError(f"{path}: reader {reader!r} also answered in {seen[reader]}; rename one of them")
        seen[reader] = path
        groups = {g for g in df.get("group", pd.Series(dtype=str)) if g}
        df = df.drop_duplicates("image", keep="last")
        parts.append(
            pd.DataFrame(
                {
                    "reader": reader,
                    "group": groups.pop() if len(groups) == 1 else "",
                    "image": df["image"],
                    "answer": df["answer"],
                    "seconds": pd.to_numeric(df["seconds"], errors="coerce") if "seconds" in df else np.nan,
                    "answered_at": df["answered_at"] if "answered_at" in df else "",
                    "file": str(path),
                }
            )
        )
    cols = ["reader", "group", "image", "answer", "seconds", "answered_at", "file"]
    merged = pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
    if import_answers:
        for reader, df in merged.groupby("reader", sort=True):
            save_responses(
                gallery,
                reader,
                df[["image", "answer", "seconds", "answered_at"]].reset_index(drop=True),
                group=str(df["group"].iloc[0]),
            )
    return merged

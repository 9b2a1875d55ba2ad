"""Images for the generative checks of seed 000: FastGAN samples and real slices, and FID's feature space.

Used by notebook 06 (the visual Turing test) and by the report's FID (:func:`ctad_core.evaluation.report.compute_fid`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ctad_core.kinds import HEALTHY
from ctad_core.run import Run


def gan_member_dirs(run_dir: str | os.PathLike) -> list[Path]:
    """The FastGAN member folders notebook 02 wrote (``gan/ensemble.json``), or [] when there is no ensemble."""
    try:
        return list(Run(run_dir).ensemble("gan").members)
    except FileNotFoundError:
        return []


def generated_images(
    run_dir: str | os.PathLike, n: int, seed: int = 0, member: int = 0, device: str = "cpu"
) -> np.ndarray:
    """``n`` generator samples of a FastGAN member as display images (n, S, S) in [0, 1].

    Raises:
        FileNotFoundError: if notebook 02 has not written ``run_dir/gan/member_<member>/checkpoint.pt``.
    """
    from ctad_core.methods.fastgan.train import generate, load_generator

    members = Run(run_dir).ensemble("gan").members
    if not 0 <= member < len(members):
        raise ValueError(f"member {member} does not exist: the GAN ensemble has {len(members)} members")
    path = members[member] / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run notebook 02_gan_training first for this run_dir")
    G = load_generator(path, device=device)
    return np.clip((generate(G, n, seed=seed) + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)


def real_images(
    run_dir: str | os.PathLike, split: str = "test", which: str = "healthy", size: int | None = None
) -> np.ndarray:
    """Real slices of a split as display images (N, H, W) in [0, 1], windowed as the models see them.

    Args:
        run_dir: the run.
        split: ``train``, ``val`` or ``test``.
        which: ``"healthy"`` (slices of healthy scans), ``"lesioned"`` (slices whose lesion mask is
            non-empty) or ``"all"``.
        size: resize to (size, size) (area averaging) to match a generator, or None.
    """
    import torch
    import torch.nn.functional as F

    from ctad_core.data.windows import to_display

    run = Run(run_dir)
    s = run.slices(split)
    window = run.window()
    if which == "healthy":
        sel = s.kind.astype(str) == HEALTHY
    elif which == "lesioned":
        sel = (s.lesion.reshape(len(s), -1) != 0).any(1)
    elif which == "all":
        sel = np.ones(len(s), bool)
    else:
        raise ValueError(f"which must be 'healthy', 'lesioned' or 'all', got {which!r}")
    img = to_display(s.image[sel], window)
    if size is not None and img.shape[0] and img.shape[-1] != size:
        t = torch.as_tensor(img)[:, None]
        mode = "area" if img.shape[-1] > size else "bilinear"
        img = F.interpolate(
            t, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False})
        )
        img = img[:, 0].numpy()
    return img.astype(np.float32)


def default_extractor(
    run_dir: str | os.PathLike, inception_weights: str = "", seed: int = 0, device: str = "cpu"
) -> Any:
    """The FID feature space: Inception-v3 if a local weights file is given, else the trained FastGAN
    discriminator of member 0, else (no GAN) a seeded random CNN. ``.name`` says which."""
    from ctad_core.nn import features

    if inception_weights:
        return features.inception_extractor(inception_weights, device=device)
    members = gan_member_dirs(run_dir)
    if members:
        from ctad_core.methods.fastgan.train import load_discriminator

        D = load_discriminator(members[0] / "checkpoint.pt", device=device)
        return features.discriminator_extractor(
            D, f"fastgan-discriminator ({members[0].name}, trained in this run)"
        )
    return features.random_cnn_extractor(seed=seed, device=device)

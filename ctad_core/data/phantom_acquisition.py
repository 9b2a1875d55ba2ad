"""How a phantom head is scanned: reconstruction kernel, noise level, slice thickness and artefact strength.

Each phantom patient gets one acquisition, drawn from its seed within clinical ranges
(:func:`sample_acquisition`) and recorded per scan (the manifest columns ``kernel``, ``slice_mm``,
``noise_sd_5mm``), so that a model meets the variety a real set has and an evaluation can hold some
acquisitions out to test a shift. :func:`resolve_acquisition` renders the same patient under a chosen
acquisition (e.g. every test scan with a sharp kernel and thin slices).

What the acquisition controls (all in :func:`ctad_core.data.phantom.make_phantom`):

- **kernel** (``smooth`` | ``standard`` | ``sharp``): the reconstruction filter trades resolution for noise
  (a soft-tissue kernel suppresses high frequencies: low noise, low resolution; a bone kernel the reverse
  [K1]). Each kernel sets the in-plane blur (Gaussian PSF, SD ``blur_mm``), an edge enhancement
  (unsharp mask, ``sharpen``) and the noise texture: filtered back-projection noise has a band-pass
  noise power spectrum (ramp-shaped at low frequencies, rolled off by the kernel at high ones; pixel
  sampling keeps it above zero at zero frequency [K2]), which we shape with a difference of Gaussians
  whose grain (``grain_mm``) is coarse for smooth and fine for sharp kernels;
- **noise level**: SD at 5 mm slices, drawn per patient in the kernel's range (3–5 HU for a standard
  brain kernel at 5 mm, REFERENCE.md; smooth kernels less, sharp more, our choice) and scaled as
  1/√thickness (so 0.625 mm slices carry ≈ 2.8× the 5 mm noise, 9–14 HU, REFERENCE.md);
- **slice thickness** (``slice_mm``): the width of the slice sensitivity profile. Routine axial brain
  series are 4–5 mm; thin 0.625–1.25 mm series come with the same studies (CQ500 ships both, REFERENCE.md).
  Thin slices are sharper along z and noisier; the 3D volumes resample them to their own grid (profile
  ``max(slice_mm, spacing)``), the 2D slices keep the native thickness;
- **beam hardening** (``beam_hardening_hu``, ``cupping_hu``, ``cupping_mm``): the strength of the dark
  interpetrous band and streaks and of the bright cupping rim under the inner table
  (:mod:`ctad_core.data.phantom_anatomy`), which depend on the scanner's beam-hardening correction.

Sources:

- [K1] Bushberg et al., *The Essential Physics of Medical Imaging* (kernel: resolution–noise trade-off),
  as summarised at https://dosesave.com/en/makale-kernel
- [K2] Kijewski MF, Judy PF. The noise power spectrum of CT images. Phys Med Biol 1987;32(5):565–575
  (noise power spectra of filtered back-projection images, measured and derived, including aliasing).

The ranges in :data:`KERNELS` and the frequencies in :data:`ACQUISITION_DEFAULTS` are our choices within
these descriptions; the notebook's ``acquisition`` parameter overrides the frequencies and ranges.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

#: Per kernel: in-plane blur SD (mm), noise SD at 5 mm (HU), noise grain (mm) and edge enhancement.
KERNELS: dict[str, dict[str, Any]] = {
    "smooth": {"blur_mm": (0.9, 1.3), "noise_sd_5mm": (2.5, 4.0), "grain_mm": 1.1, "sharpen": 0.0},
    "standard": {"blur_mm": (0.6, 1.0), "noise_sd_5mm": (3.0, 5.0), "grain_mm": 0.8, "sharpen": 0.0},
    "sharp": {"blur_mm": (0.35, 0.6), "noise_sd_5mm": (4.5, 7.5), "grain_mm": 0.5, "sharpen": 0.15},
}
#: Sampling frequencies and ranges of acquisitions (override any key through ``sample_acquisition``).
ACQUISITION_DEFAULTS: dict[str, Any] = {
    "kernels": {"smooth": 0.3, "standard": 0.5, "sharp": 0.2},  # probability of each kernel
    "slice_mm": {5.0: 0.55, 3.0: 0.15, 2.5: 0.15, 1.25: 0.1, 0.625: 0.05},  # probability of each thickness
    "noise_scale": 1.0,  # multiplies every kernel's noise range (dose)
    "beam_hardening_hu": (8.0, 30.0),  # depth of the interpetrous dark band (HU)
    "cupping_hu": (3.0, 10.0),  # brightening just under the inner table (HU)
    "cupping_mm": (2.0, 4.0),  # its decay length (mm)
}
_ACQ_KEYS = (
    "kernel",
    "slice_mm",
    "noise_q",
    "blur_q",
    "noise_scale",
    "noise_sd_5mm",
    "blur_mm",
    "grain_mm",
    "sharpen",
    "beam_hardening_hu",
    "cupping_hu",
    "cupping_mm",
    "streak_seed",
)


def acquisition_ranges(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """:data:`ACQUISITION_DEFAULTS` with ``overrides`` applied and checked.

    Args:
        overrides: any of the keys of :data:`ACQUISITION_DEFAULTS`. ``kernels`` and ``slice_mm`` are
            ``{value: probability}`` maps (probabilities are normalised; keys may be strings, as YAML or
            JSON give them); the others are numbers or ``(low, high)`` pairs.

    Raises:
        ValueError: an unknown key or kernel, a thickness that is not positive, probabilities that are
            negative or all zero, a range with low > high.
    """
    r = copy.deepcopy(ACQUISITION_DEFAULTS)
    for k, v in (overrides or {}).items():
        if k not in r:
            raise ValueError(f"unknown acquisition setting {k!r}; choose from {sorted(r)}")
        r[k] = v
    kern = {str(k): float(p) for k, p in dict(r["kernels"]).items()}
    bad = sorted(set(kern) - set(KERNELS))
    if bad:
        raise ValueError(f"unknown kernels {bad}; choose from {sorted(KERNELS)}")
    thick = {float(k): float(p) for k, p in dict(r["slice_mm"]).items()}
    if any(t <= 0 for t in thick):
        raise ValueError(f"slice thicknesses must be positive mm, got {sorted(thick)}")
    for name, probs in (("kernels", kern), ("slice_mm", thick)):
        if not probs or min(probs.values()) < 0 or sum(probs.values()) <= 0:
            raise ValueError(f"acquisition {name}: probabilities must be >= 0 and not all zero, got {probs}")
    r["kernels"], r["slice_mm"] = kern, thick
    if float(r["noise_scale"]) <= 0:
        raise ValueError(f"acquisition noise_scale must be > 0, got {r['noise_scale']}")
    for name in ("beam_hardening_hu", "cupping_hu", "cupping_mm"):
        lo, hi = (float(x) for x in r[name])
        if lo > hi or lo < 0:
            raise ValueError(f"acquisition {name} must be a range 0 <= low <= high, got {r[name]}")
        r[name] = (lo, hi)
    return r


def _choice(rng: np.random.Generator, probs: dict) -> Any:
    keys = list(probs)
    p = np.asarray([probs[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def sample_acquisition(rng: np.random.Generator, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Draw one scan's acquisition (see the module docstring).

    The noise level and blur are stored as quantiles (``noise_q``, ``blur_q``) of the kernel's range as well
    as values, so that :func:`resolve_acquisition` can render the same patient with another kernel at the
    same relative dose.

    Args:
        rng: the patient's acquisition stream.
        overrides: changes to :data:`ACQUISITION_DEFAULTS` (see :func:`acquisition_ranges`).

    Returns:
        ``{kernel, slice_mm, noise_q, blur_q, noise_sd_5mm, blur_mm, grain_mm, sharpen, beam_hardening_hu,
        cupping_hu, cupping_mm, streak_seed}``.
    """
    r = acquisition_ranges(overrides)
    a: dict[str, Any] = {
        "kernel": _choice(rng, r["kernels"]),
        "slice_mm": float(_choice(rng, r["slice_mm"])),
        "noise_q": float(rng.uniform()),
        "blur_q": float(rng.uniform()),
        "noise_scale": float(r["noise_scale"]),
        "beam_hardening_hu": float(rng.uniform(*r["beam_hardening_hu"])),
        "cupping_hu": float(rng.uniform(*r["cupping_hu"])),
        "cupping_mm": float(rng.uniform(*r["cupping_mm"])),
        "streak_seed": int(rng.integers(2**31)),
    }
    return resolve_acquisition(a)


def resolve_acquisition(acq: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The acquisition ``acq`` with ``changes`` applied and the derived values recomputed.

    Changing the kernel keeps the patient's relative dose (``noise_q``) and blur quantile, so the noise
    and blur move to the new kernel's range; an explicit ``noise_sd_5mm`` or ``blur_mm`` wins.

    Args:
        acq: an acquisition from :func:`sample_acquisition`.
        **changes: any of ``kernel``, ``slice_mm``, ``noise_sd_5mm``, ``blur_mm``, ``noise_q``, ``blur_q``,
            ``beam_hardening_hu``, ``cupping_hu``, ``cupping_mm``.

    Raises:
        ValueError: an unknown key or kernel, a non-positive thickness or noise.

    >>> a = resolve_acquisition({"kernel": "standard", "slice_mm": 5.0, "noise_q": 0.5, "blur_q": 0.5})
    >>> a["noise_sd_5mm"], resolve_acquisition(a, kernel="sharp")["noise_sd_5mm"]
    (4.0, 6.0)
    """
    bad = sorted(set(changes) - set(_ACQ_KEYS))
    if bad:
        raise ValueError(f"unknown acquisition settings {bad}; choose from {sorted(_ACQ_KEYS)}")
    a = dict(acq)
    explicit = {k: changes.pop(k) for k in ("noise_sd_5mm", "blur_mm") if k in changes}
    a.update(changes)
    if a["kernel"] not in KERNELS:
        raise ValueError(f"unknown kernel {a['kernel']!r}; choose from {sorted(KERNELS)}")
    if float(a["slice_mm"]) <= 0:
        raise ValueError(f"slice_mm must be positive, got {a['slice_mm']}")
    kd = KERNELS[a["kernel"]]
    lo, hi = kd["noise_sd_5mm"]
    a["noise_sd_5mm"] = float(a.get("noise_scale", 1.0)) * (lo + float(a["noise_q"]) * (hi - lo))
    lo, hi = kd["blur_mm"]
    a["blur_mm"] = lo + float(a["blur_q"]) * (hi - lo)
    a["grain_mm"], a["sharpen"] = float(kd["grain_mm"]), float(kd["sharpen"])
    a.setdefault("beam_hardening_hu", float(np.mean(ACQUISITION_DEFAULTS["beam_hardening_hu"])))
    a.setdefault("cupping_hu", float(np.mean(ACQUISITION_DEFAULTS["cupping_hu"])))
    a.setdefault("cupping_mm", float(np.mean(ACQUISITION_DEFAULTS["cupping_mm"])))
    a.setdefault("streak_seed", 0)
    a.update(explicit)
    if a["noise_sd_5mm"] < 0 or a["blur_mm"] < 0:
        raise ValueError(f"noise_sd_5mm and blur_mm must be >= 0, got {a['noise_sd_5mm']}, {a['blur_mm']}")
    a["slice_mm"] = float(a["slice_mm"])
    return a

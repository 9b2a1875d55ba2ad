"""Small shared helpers: device resolution, seeding, atomic file writes.

``device="auto"`` is resolved here and nowhere else.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device parameter into a ``torch.device``.

    Args:
        device: ``"auto"`` (CUDA if available, else MPS, else CPU) or anything ``torch.device`` accepts.

    Returns:
        The resolved device.

    Raises:
        ValueError: if a CUDA device is requested but none is available.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but torch sees no CUDA device")
    return dev


def describe_device(device: torch.device) -> str:
    """A human-readable device name for reports, e.g. ``'cuda (NVIDIA H100 80GB HBM3)'`` or ``'cpu (2 threads)'``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) from one integer.

    Args:
        seed: the workbook's single ``seed`` parameter.
        deterministic: ask torch for deterministic algorithms where it can (warn-only).

    Returns:
        A CPU ``torch.Generator`` seeded with ``seed`` for code that wants its own stream.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Write a file atomically: ``write(tmp_path)`` then ``os.replace(tmp_path, path)``.

    A crash mid-write never leaves a truncated file at ``path``.

    Args:
        path: the destination.
        write: a callable that writes the whole file to the temporary path it is given.

    Returns:
        The destination path.

    Raises:
        OSError: ``ENOSPC`` naming ``path`` and the space left, when the write failed on a (nearly) full
            file system — writers such as ``torch.save`` report that only as an obscure ``RuntimeError``
            ("unexpected pos …"); any other failure of ``write`` propagates unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    except Exception as e:
        _raise_if_disk_full(path, tmp_path, e)
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return path


#: below this many free bytes a failed write is reported as a full disk
DISK_FULL_BYTES = 64 * 2**20


def _raise_if_disk_full(path: Path, tmp_path: Path, error: BaseException) -> None:
    import errno
    import shutil

    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        free = 0
    else:
        try:
            free = shutil.disk_usage(path.parent).free
        except OSError:
            return
        if free >= DISK_FULL_BYTES:
            return
    written = tmp_path.stat().st_size if tmp_path.exists() else 0
    raise OSError(
        errno.ENOSPC,
        f"no space left on the device while writing {path} ({written / 2**20:.0f} MiB written, "
        f"{free / 2**20:.0f} MiB free on its file system); free space or choose another run directory, "
        f"then resume ({type(error).__name__}: {error})",
    ) from error


#: zlib level of :func:`save_npz`: level 1 writes a method's results (1 GB of 64³ maps at ``quick``) in 16 s
#: instead of 23 s at ``np.savez_compressed``'s level 6, for files 3 % larger (measured on the project's CPU).
NPZ_COMPRESSLEVEL = 1

#: :func:`save_npz` stores (does not deflate) an array whose sample deflates to more than this fraction of
#: its size: a reconstruction is noise-like float data (measured at ``quick``: 0.82-0.86 of its size), which
#: zlib spends ~5 s per 222 MB on and which takes as long again to inflate at every read; maps and inputs
#: (zero outside the head: 0.07-0.31) and masks (< 0.01) deflate.
NPZ_STORE_ABOVE_RATIO = 0.75

#: arrays smaller than this many bytes are deflated without sampling
_NPZ_SAMPLE_MIN_BYTES = 4 * 2**20


def deflate_ratio(a: np.ndarray, n_chunks: int = 8, chunk_bytes: int = 2**18) -> float:
    """Estimate the fraction of its size ``a`` deflates to at :data:`NPZ_COMPRESSLEVEL`, from ``n_chunks``
    evenly spaced chunks of ``chunk_bytes`` of its bytes (the whole array when it is smaller).

    On the ``quick`` run's results the estimate is within 0.005 of the whole array's ratio.
    """
    b = memoryview(np.ascontiguousarray(a)).cast("B")
    n = len(b)
    if n <= n_chunks * chunk_bytes:
        sample = bytes(b)
    else:
        starts = np.linspace(0, n - chunk_bytes, n_chunks).astype(np.int64)
        sample = b"".join(bytes(b[int(i) : int(i) + chunk_bytes]) for i in starts)
    return len(zlib.compress(sample, NPZ_COMPRESSLEVEL)) / max(len(sample), 1)


def save_npz(path: str | os.PathLike, compress: bool = True, **arrays: np.ndarray) -> Path:
    """Write arrays to an ``.npz`` file atomically (:func:`atomic_write`); the one array writer of the package.

    The file is what ``np.savez_compressed`` / ``np.savez`` write (read it with ``np.load``): with
    ``compress``, each member is deflated at :data:`NPZ_COMPRESSLEVEL` unless a sample of it would shrink to
    no less than :data:`NPZ_STORE_ABOVE_RATIO` of its size (:func:`deflate_ratio`; arrays of 4 MiB or more),
    which is then stored — a zip may mix both, and ``np.load`` reads either. Object arrays are refused
    (``np.load(..., allow_pickle=False)`` reads the file back).

    Args:
        path: the destination, written as given (no ``.npz`` suffix is added).
        compress: deflate the members that deflate (default) or store them all (faster to read, for caches).
        **arrays: the arrays, by name.

    Returns:
        The destination path.

    Raises:
        ValueError: an object array (it would need pickle).
    """
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    level = NPZ_COMPRESSLEVEL if compress else None

    def member(zf: zipfile.ZipFile, name: str, a: np.ndarray) -> str | zipfile.ZipInfo:
        if not compress or a.dtype.hasobject or a.nbytes < _NPZ_SAMPLE_MIN_BYTES:
            return name
        if deflate_ratio(a) <= NPZ_STORE_ABOVE_RATIO:
            return name
        info = zipfile.ZipInfo(name, date_time=time.localtime(time.time())[:6])
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = 0o600 << 16
        return info

    def write(p: Path) -> None:
        with zipfile.ZipFile(p, "w", compression=mode, compresslevel=level, allowZip64=True) as zf:
            for name, a in arrays.items():
                a = np.asanyarray(a)
                with zf.open(member(zf, f"{name}.npy", a), "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, a, allow_pickle=False)

    return atomic_write(path, write)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (NumPy scalars and arrays converted)."""

    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    text = json.dumps(obj, indent=2, default=default, allow_nan=True)
    return atomic_write(path, lambda p: p.write_text(text + "\n"))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text())

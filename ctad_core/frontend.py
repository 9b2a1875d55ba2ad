"""What the person running a notebook is looking at: a live JupyterLab, or nobody (a headless batch).

Headless runs (``ctad run``, papermill batches, CI) set ``CTAD_HEADLESS=1`` in the kernel's environment.
Then:

* viewers (:func:`ctad_core.viz.slice_viewer`, the report viewer, the Turing rater) render a static
  figure instead of ipywidgets — no widget comm traffic, nothing that waits for a browser;
* progress bars are plain text (:func:`tqdm`) rather than widget bars, which under papermill are stored
  frozen at "0%" in the executed notebook.

Why this matters beyond looks: with an ``Output`` widget, nbclient (papermill's executor) mimics a
frontend and sends comm messages to the kernel on the *shell* socket while it is itself waiting on that
socket for the cell's ``execute_reply``; a chain run stalled for good in such a cell, with the kernel idle
and the client waiting, past its execution timeout (issue 13). Headless runs create no such widget, and
``ctad run`` also turns nbclient's Output-widget emulation off and watches every notebook with a wall-clock
limit (:mod:`ctad_core.workbook`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

HEADLESS_ENV = "CTAD_HEADLESS"


def headless() -> bool:
    """True when no interactive frontend is attached.

    ``CTAD_HEADLESS`` set to ``1``/``true``/``yes`` means headless; ``0``/``false``/``no`` means interactive.
    Unset, a process that is not an IPython kernel (a script, a test) is headless and a kernel is taken to
    have a frontend (JupyterLab).
    """
    value = os.environ.get(HEADLESS_ENV, "").strip().lower()
    if value in {"1", "true", "yes"}:
        return True
    if value in {"0", "false", "no"}:
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is None or "IPKernelApp" not in getattr(shell, "config", {})


def tqdm(*args: Any, **kwargs: Any) -> Any:
    """A progress bar: a widget bar in JupyterLab, a text bar when headless (same arguments as ``tqdm``)."""
    if headless():
        from tqdm.std import tqdm as bar
    else:
        from tqdm.auto import tqdm as bar
    return bar(*args, **kwargs)

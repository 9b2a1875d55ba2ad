"""Draw docs/figures/phantoms.png: one healthy phantom and each lesion kind (brain window, masks in red).

    .venv/bin/python benchmarks/make_readme_figure.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ctad_core import viz
from ctad_core.data import phantom as ph

kinds = ["healthy", *ph.LESION_KINDS]
window = {"sdh": "subdural", "edh": "subdural", "fracture": "bone"}
fig, axes = plt.subplots(2, 5, figsize=(12.5, 5.4))
for ax, (j, kind) in zip(axes.flat, enumerate(kinds)):
    p = ph.make_phantom(300 + j, kind, shape=(9, 224, 224), spacing=(5.0, 1.0, 1.0))
    z = int(np.argmax((p.lesion > 0).sum(axis=(1, 2)))) if kind != "healthy" else 4
    viz.show_ct(ax, p.hu[z], window.get(kind, "brain"), f"{kind} ({window.get(kind, 'brain')} window)",
                mask=p.lesion[z] if kind != "healthy" else None)
fig.suptitle("ctad phantoms: synthetic head CT from the ICBM152 template, with voxel masks", fontsize=11)
fig.tight_layout()
out = Path(__file__).resolve().parents[1] / "docs" / "figures" / "phantoms.png"
fig.savefig(out, dpi=80)
print(out)

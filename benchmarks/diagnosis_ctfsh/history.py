"""Training curves of the quick run's CTFSH models (models/<name>.pt) and of the 1000-step retrain."""

import os

from ctad_core.methods import training_history

for run, names in (
    (
        os.environ.get("CTAD_DIAG_RUN", "runs/quick"),
        ["ctfsh_ae_l1", "ctfsh_ae_msssim", "ctfsh_vae_msssim", "ctfsh_ae_msssim_strip"],
    ),
    ("/tmp/diag-quick-s2000", ["ctfsh_ae_l1"]),
):
    for n in names:
        for ph, rows in training_history(n, run).items():
            r = [x["rec"] for x in rows]
            print(
                run,
                n,
                ph,
                "steps",
                len(r),
                f"rec at 1/25/50/100 %: {r[0]:.3f} {r[len(r) // 4]:.3f} {r[len(r) // 2]:.3f} {r[-1]:.3f}",
                " mean of last 20 steps %.4f" % (sum(r[-20:]) / 20),
            )

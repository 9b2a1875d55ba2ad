"""Paired test: each haemorrhage test patient rendered again WITHOUT its lesion (same seed: same head, tissue
HU, acquisition), both versions scored by the trained quick-run models. Does the lesion raise the score?
usage: paired.py RUN_COPY OUT_DIR METHOD..."""

import sys
import warnings
from pathlib import Path

import pandas as pd
import yaml

from ctad_core.data.manifest import load_volumes, read_config, read_manifest
from ctad_core.data.phantom_set import render_phantom_scan, spec_from_config
from ctad_core.data.prepare import write_prepared
from ctad_core.methods import method_params, score_scans

warnings.simplefilter("ignore")
run, out, names = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
HAEM = ["edh", "sah", "sdh", "iph", "ivh"]
cfg = read_config(run)
spec = spec_from_config(cfg)
df = read_manifest(run)
rows = df[(df.split == "test") & df.kind.isin(HAEM)]
if not (out / "data" / "manifest.csv").is_file():
    items = []
    for (
        r
    ) in rows.itertuples():  # the lesioned scan as rendered by data prep, and the same patient without lesion
        items.append(
            {"scan_id": r.scan_id, "patient_id": r.patient_id, "seed": int(r.phantom_seed), "kind": r.kind}
        )
        items.append(
            {
                "scan_id": r.scan_id + "h",
                "patient_id": r.patient_id + "-h",
                "seed": int(r.phantom_seed),
                "kind": "healthy",
            }
        )
    scans = (render_phantom_scan(it, spec) for it in items)
    write_prepared(out / "data", scans, {it["patient_id"]: "test" for it in items}, cfg)
vs = load_volumes(out)
p = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "parameters/quick/05_volumetric_3d.yaml").read_text()
)
p.pop("methods")
res = []
for name in names:
    r = score_scans(name, run, volumes=vs, params=method_params(name, p), device="cpu")
    s = dict(zip(r.scan_id, r.scan_score))
    for x in rows.itertuples():
        res.append(
            {
                "method": name,
                "scan_id": x.scan_id,
                "kind": x.kind,
                "with_lesion": s[x.scan_id],
                "without": s[x.scan_id + "h"],
            }
        )
d = pd.DataFrame(res)
d["delta"] = d.with_lesion - d.without
d.to_csv(out / "paired.csv", index=False)
pd.set_option("display.width", 200)
print(
    d.groupby(["method", "kind"])
    .apply(
        lambda g: pd.Series(
            {"lesion_raises": f"{(g.delta > 0).sum()}/{len(g)}", "mean_delta": g.delta.mean()}
        )
    )
    .to_string()
)
print(
    d.groupby("method")
    .apply(
        lambda g: pd.Series(
            {
                "lesion_raises": f"{(g.delta > 0).sum()}/{len(g)}",
                "mean_delta": g.delta.mean(),
                "sd_between_patients_without": g.without.std(),
            }
        )
    )
    .to_string()
)

#!/usr/bin/env bash
# Create .venv and install ctad_core with its test and lab extras.
# CPU machine: torch==2.13.0 (the local CPU wheel). A GPU server: set TORCH_SPEC, e.g.
#   TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu124" bash scripts/setup.sh
# or use environment.yml with conda.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch first, so the package's own `torch>=2.2` is already satisfied and pulls nothing more.
# shellcheck disable=SC2086
.venv/bin/python -m pip install -q $TORCH_SPEC
.venv/bin/python -m pip install -q -e ".[dev,lab]"
.venv/bin/python -c "import torch, ctad_core; print('ctad_core', ctad_core.__version__, '| torch', torch.__version__, '| cuda', torch.cuda.is_available())"

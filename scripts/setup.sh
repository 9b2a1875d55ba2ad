#!/usr/bin/env bash
# Create .venv and install ctad_core with its test and lab extras.
# torch==2.13.0 is pinned: on this project's CPU machines pip finds a local CPU wheel; on a Linux GPU server
# PyPI's torch 2.13.0 wheel is the CUDA 13.0 build (driver >= 580), so the same command sets up a GPU server.
# Another build: TORCH_SPEC="torch==2.13.0 --index-url <PyTorch wheel index for your CUDA>" bash scripts/setup.sh,
# or use environment.yml with conda. Check: .venv/bin/python -c "import torch; print(torch.cuda.is_available())"
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

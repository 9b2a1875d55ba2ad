#!/usr/bin/env bash
# Install what the browser test (tests/browser/) needs, idempotently: Debian's chromium package and
# Playwright for Python in .venv (the `browser` extra). Playwright never downloads a browser of its own:
# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 here, and the test launches /usr/bin/chromium (or $CTAD_CHROMIUM).
# Run after scripts/setup.sh; apt-get needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
CHROMIUM=${CTAD_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium
fi
[ -x .venv/bin/python ] || { echo "no .venv: run scripts/setup.sh first" >&2; exit 1; }
.venv/bin/python -c "import playwright" 2>/dev/null || .venv/bin/python -m pip install -q -e ".[browser]"
"$CHROMIUM" --version
.venv/bin/python -c "from importlib.metadata import version; print('playwright', version('playwright'))"

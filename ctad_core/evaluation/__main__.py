"""``python -m ctad_core.evaluation``: record or check a regression baseline (see :mod:`.baseline`)."""

import sys

from ctad_core.evaluation.baseline import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m unisparse.fidelity``: the harness's command line."""

import sys

from .report import main

sys.exit(main())

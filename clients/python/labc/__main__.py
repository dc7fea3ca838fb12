"""``python -m labc``: the command line (labc/cli.py)."""

import sys

from .cli import main

sys.exit(main())

"""Entry point for ``python -m vending.sts``."""

import sys

from .cli import main

sys.exit(main())

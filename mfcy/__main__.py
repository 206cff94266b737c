"""``python -m mfcy``: the same as the ``mfcy`` command."""

import sys

from .cli import main

sys.exit(main())

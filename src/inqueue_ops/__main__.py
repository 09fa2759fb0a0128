"""``python -m inqueue_ops``: the same as the ``inqueue`` command."""

import sys

from inqueue_ops.cli import main

sys.exit(main())

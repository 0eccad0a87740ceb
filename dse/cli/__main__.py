"""``python -m dse.cli ...``: the ``dse`` command (how helper workers and tests start it)."""

from __future__ import annotations

import sys

from dse.cli import main

sys.exit(main())

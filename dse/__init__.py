"""dse: design-space exploration for split computing, early exits and predefined sparsity."""

from __future__ import annotations

__version__ = "0.1.0"

"""Deployment: the chosen split exported as an edge program and a server program, and run
across both to check the prediction. Nothing is here yet.
"""

from __future__ import annotations

__all__: list[str] = []

"""How large an exhaustive grid may be: each candidate of a grid is scored and held in
memory, so a grid of millions (``thresholds.step = 1e-6``) is refused before anything is
scored or trained, in one line naming its size."""

from __future__ import annotations

import os
from pathlib import Path

from dse.errors import InputError, echo

#: Candidates a grid may hold (``dse study grid``, ``dse compare``, ``sampler = "grid"``):
#: each is scored and kept in memory, so a grid of millions (``thresholds.step = 1e-6``)
#: would exhaust it. ``DSE_GRID_LIMIT`` sets another limit.
GRID_LIMIT = 200_000


def grid_limit() -> int:
    """The most candidates a grid may hold: ``DSE_GRID_LIMIT`` or :data:`GRID_LIMIT`."""
    raw = os.environ.get("DSE_GRID_LIMIT", "")
    if not raw:
        return GRID_LIMIT
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(
            "environment",
            "DSE_GRID_LIMIT",
            f"must be a whole number >= 1, got {echo(raw)}",
            f"unset it for the default ({GRID_LIMIT:,})",
        )
    return value


def check_grid_size(
    size: int, *, where: str | Path, field: str = "space", at_least: bool = False
) -> None:
    """Refuse, in one line naming its size, a grid of more than :func:`grid_limit`
    candidates (``at_least``: ``size`` is a lower bound, the knobs the model decides
    not yet counted)."""
    limit = grid_limit()
    if size > limit:
        raise InputError(
            where,
            field,
            f"the grid has {'at least ' if at_least else ''}{size:,} candidates, over the "
            f"limit of {limit:,} (each is scored and held in memory)",
            "coarsen space.thresholds.step or drop knob values, use another sampler, or "
            "raise DSE_GRID_LIMIT",
        )

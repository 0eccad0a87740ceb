"""Pareto fronts, hypervolume against one written-down reference, and the knee point.

Objectives are first put in a common *loss* form: each metric is scaled to [0, 1] by
fixed bounds (``lo``, ``hi``) and flipped where it is maximised, so 0 is best. The
reference point is 1.1 in every dimension. The bounds are chosen once per study (from
its exhaustive grid when there is one) and stored with it, so every hypervolume of the
study, sampler, grid and baselines alike, is measured on the same ruler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dse.search.optuna_compat import compute_hypervolume, is_pareto_front

REFERENCE = 1.1


@dataclass(frozen=True)
class Ruler:
    """Per objective: name, direction and the bounds used to scale it to [0, 1]."""

    names: tuple[str, ...]
    directions: tuple[str, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]

    @classmethod
    def fit(cls, objectives: Mapping[str, str], values: np.ndarray) -> Ruler:
        """Bounds from the finite observed ``values`` [n, m] (the grid's, ideally); an
        objective with no finite value gets the bounds (0, 1)."""
        m = len(objectives)
        values = np.asarray(values, dtype=float).reshape(-1, m)
        finite = np.isfinite(values)
        lo, hi = np.zeros(m), np.ones(m)
        for j in range(m):
            column = values[finite[:, j], j]
            if len(column):
                lo[j], hi[j] = column.min(), column.max()
        return cls(
            tuple(objectives),
            tuple(objectives.values()),
            tuple(float(x) for x in lo),
            tuple(float(x) for x in hi),
        )

    def to_dict(self) -> dict[str, list]:
        return {
            "names": list(self.names),
            "directions": list(self.directions),
            "lo": list(self.lo),
            "hi": list(self.hi),
            "reference": REFERENCE,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Sequence]) -> Ruler:
        return cls(tuple(d["names"]), tuple(d["directions"]), tuple(d["lo"]), tuple(d["hi"]))

    def loss(self, values: np.ndarray) -> np.ndarray:
        """Scale ``values`` [n, m] to losses in [0, 1] (0 best); outside the bounds clips.

        Any stored value is read: halves are subtracted so that no finite pair overflows,
        and a NaN (or a non-finite bound) scores the reference point, the worst loss.
        """
        v = np.asarray(values, dtype=float).reshape(-1, len(self.names))
        lo, hi = np.array(self.lo, dtype=float), np.array(self.hi, dtype=float)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            span = np.where(hi > lo, hi / 2 - lo / 2, 0.5)
            scaled = (v / 2 - lo / 2) / span
        flip = np.array([d == "maximize" for d in self.directions])
        scaled[:, flip] = 1.0 - scaled[:, flip]
        return np.clip(np.nan_to_num(scaled, nan=REFERENCE), 0.0, REFERENCE)


def pareto_mask(losses: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``losses`` [n, m] (all minimised)."""
    losses = np.asarray(losses, dtype=float)
    if len(losses) == 0:
        return np.zeros(0, dtype=bool)
    return is_pareto_front(losses)  # duplicates both kept


def hypervolume(losses: np.ndarray) -> float:
    """Hypervolume dominated by ``losses`` (already scaled) up to the reference point."""
    losses = np.asarray(losses, dtype=float)
    if len(losses) == 0:
        return 0.0
    # Optuna drops duplicates and dominated points itself
    return compute_hypervolume(losses, np.full(losses.shape[1], REFERENCE))


def knee(losses: np.ndarray) -> int:
    """Index of the front point closest to the ideal point (0, ..., 0) in scaled units."""
    losses = np.asarray(losses, dtype=float)
    mask = pareto_mask(losses)
    idx = np.flatnonzero(mask)
    return int(idx[np.argmin(np.linalg.norm(losses[idx], axis=1))])

"""The exhaustive grid of a study's discretised space, and the neighbours as subsets of it.

Scoring is post hoc, so every candidate of the space can be scored once its networks are
trained: that gives the reference front that a sampler's front is measured against. The
neighbouring methods are restricted spaces of the same search, scored exhaustively on the
same trained networks and measured with the same ruler:

- ``edge-only`` / ``server-only``: dense, the last / first cut, no exit;
- ``neurosurgeon``: dense, any cut, no exit (Kang et al., ASPLOS 2017);
- ``edgent``: dense, any cut, at most one exit taken by every sample (threshold 0:
  the model is right-sized at that exit) (Li et al., 2018);
- ``spinn``: dense, any cut, all exits, any threshold (Laskaridis et al., MobiCom 2020);
- ``auto-split``: dense, any cut, any codec of the space, no exit (Banitalebi-Dehkordi et
  al., KDD 2021, who search the split with the bit widths); only in a space with codecs.

With codecs in the space, the other baselines send what they were published with, float32
(the ``fp32`` codec, which a spec with codecs must list).

The ``joint`` row is what the study itself found: its completed, feasible trials only,
never the grid. So a baseline can beat it (a short study against a full sweep), and the
comparison says so. A spec whose thresholds start at 0 holds Edgent's right-sized points
in its own space; otherwise they are scored beside the space and the Edgent row is marked
as lying outside what the study can sample.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dse.search.explorer import Explorer
from dse.search.frames import csv_text, flat_row
from dse.search.grid_limit import check_grid_size
from dse.search.pareto import Ruler, hypervolume, pareto_mask
from dse.search.space import Candidate
from dse.search.spec import StudySpec
from dse.search.storage import STUDIES_DIR

BASELINES = ("edge-only", "server-only", "neurosurgeon", "edgent", "spinn", "auto-split", "joint")


def _rows(explorer: Explorer, cands: list[Candidate], source: str) -> list[dict[str, Any]]:
    rows = []
    for c in cands:
        row = flat_row(c.as_dict(), explorer.evaluate(c).as_dict())
        row["source"] = source
        rows.append(row)
    return rows


def edgent_in_space(spec: StudySpec) -> bool:
    """Whether the study can sample Edgent's right-sized points (threshold 0 in its range)."""
    return 0.0 in spec.thresholds


def edgent_candidates(explorer: Explorer) -> list[Candidate]:
    """Right-sized networks: every sample leaves at one exit (threshold 0)."""
    sp = explorer.space
    codec = "fp32" if sp.codecs else None
    return [
        Candidate(
            "dense",
            1.0,
            cut,
            (j,),
            0.0,
            sp.criterion,
            task_thresholds=(0.0,) * len(sp.threshold_tasks),
            codec=codec,
        )
        for cut in sp.cuts
        for j in sp.allowed_exits
    ]


@dataclass(frozen=True, eq=False)
class Grid:
    """Every candidate of the space scored, with feasibility and the fitted ruler."""

    frame: pd.DataFrame
    ruler: Ruler
    seconds: float
    spec_digest: str = ""  # of the spec text and the scoring version it was computed with

    def feasible(self) -> pd.DataFrame:
        return self.frame[self.frame.feasible]

    def own_feasible(self) -> pd.DataFrame:
        """The feasible candidates of the study's own space: the edgent right-sizing points
        (threshold 0) lie outside what the study samples."""
        feas = self.feasible()
        return feas[feas.source == "space"]

    @cached_property
    def hypervolume(self) -> float:
        """Hypervolume of the study's own space on the grid's ruler (its best possible)."""
        own = self.own_feasible()
        return hypervolume(self.ruler.loss(own[list(self.ruler.names)].to_numpy()))


def run_grid(explorer: Explorer) -> Grid:
    """Score the whole discretised space (plus the edgent right-sizing points)."""
    spec = explorer.spec
    check_grid_size(explorer.space.size(), where=spec.path or spec.name)
    start = time.perf_counter()
    cands = list(explorer.space.enumerate())
    rows = _rows(explorer, cands, "space")
    if not edgent_in_space(spec):  # the right-sized points, scored beside the space
        rows += _rows(explorer, edgent_candidates(explorer), "edgent")
    df = pd.DataFrame(rows)
    df["feasible"] = _feasible(df, spec)
    names = list(spec.objectives)
    feas = df[df.feasible]
    ruler = Ruler.fit(spec.objectives, (feas if len(feas) else df)[names].to_numpy())
    # The reference front is the space's own: the edgent points (threshold 0) lie outside
    # what the sampler can draw unless the spec's thresholds start at 0.
    df["pareto"] = False
    own = feas[feas.source == "space"]
    if len(own):
        mask = pareto_mask(ruler.loss(own[names].to_numpy()))
        df.loc[own.index[mask], "pareto"] = True
    return Grid(df, ruler, time.perf_counter() - start, spec_digest(spec))


GRID_VERSION = 5  # bump when scoring or the cost model changes what a grid holds


def spec_digest(spec: StudySpec) -> str:
    import hashlib

    return hashlib.sha256(f"{GRID_VERSION}\n{spec.text}".encode()).hexdigest()


def _feasible(df: pd.DataFrame, spec: StudySpec) -> np.ndarray:
    ok = np.ones(len(df), dtype=bool)
    for c in spec.constraints:
        ok &= np.array([c.violation(v) <= 0 for v in df[c.metric]])
    return ok


def grid_paths(name: str) -> tuple[Path, Path]:
    return STUDIES_DIR / f"{name}.grid.csv", STUDIES_DIR / f"{name}.grid.json"


def save_grid(grid: Grid, name: str) -> Path:
    csv, meta = grid_paths(name)
    STUDIES_DIR.mkdir(exist_ok=True)
    from dse.nets import atomic_write_bytes

    atomic_write_bytes(csv, csv_text(grid.frame).encode())
    atomic_write_bytes(
        meta,
        json.dumps(
            {
                "ruler": grid.ruler.to_dict(),
                "rows": len(grid.frame),
                "spec_digest": grid.spec_digest,
                "seconds": grid.seconds,
                "hypervolume": grid_hypervolume(grid),
            }
        ).encode(),
    )
    return csv


def load_grid(name: str, spec: StudySpec | None = None) -> Grid | None:
    """The saved grid of study ``name``; None if absent or (given ``spec``) stale."""
    csv, meta = grid_paths(name)
    if not (csv.exists() and meta.exists()):
        return None
    info = json.loads(meta.read_text())
    if spec is not None and info.get("spec_digest") != spec_digest(spec):
        return None  # computed for another spec text or an older scoring version
    df = pd.read_csv(csv)
    for col in (
        "knob_exits",
        "exit_rates",
        "test_exit_rates",
        "knob_task_thresholds",
        "tasks",
        "task_accuracy",
        "test_task_accuracy",
        "task_exit_rate",
    ):
        if col in df:
            df[col] = df[col].map(lambda s: tuple(json.loads(s)) if isinstance(s, str) else ())
    return Grid(
        df, Ruler.from_dict(info["ruler"]), float(info["seconds"]), info.get("spec_digest", "")
    )


def ensure_grid(
    study: Any,
    explorer: Explorer,
    *,
    rescore: bool = False,
    say: Callable[[str], None] | None = None,
) -> Grid:
    """The spec's grid: the saved one, or (if absent, stale or ``rescore``) scored and
    saved now. Its ruler becomes the study's when scored now or when the study has none.

    The study is created (its name checked against the spec) before anything is written.
    """
    spec = explorer.spec
    grid = None if rescore else load_grid(spec.name, spec)
    scored = grid is None
    if grid is None:
        if say is not None:
            say(f"scoring the exhaustive grid ({explorer.space.size()} candidates)")
        grid = run_grid(explorer)
        save_grid(grid, spec.name)
    if scored or "ruler" not in study.user_attrs:  # one ruler per study: the grid's
        record_grid(study, grid)
    return grid


def record_grid(study: Any, grid: Grid) -> float:
    """Write the grid's ruler and hypervolume into the study: its one ruler from now on."""
    hv = grid_hypervolume(grid)
    study.set_user_attr("ruler", grid.ruler.to_dict())
    study.set_user_attr("grid_hypervolume", hv)
    return hv


def grid_hypervolume(grid: Grid) -> float:
    """Hypervolume of the feasible candidates of the study's own space (its best possible)."""
    return grid.hypervolume


def restrict(df: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The rows of the grid that a baseline may choose (None for ``auto-split`` on a grid
    without codecs: it would be ``neurosurgeon``)."""
    coded = "knob_codec" in df and df.knob_codec.notna().any()
    if baseline == "auto-split":
        if not coded:
            return df.iloc[:0]
        return df[
            (df.knob_method == "dense") & (df.knob_exits.map(len) == 0) & (df.source == "space")
        ]
    if coded and baseline != "joint":  # float32 (a cut that sends nothing has fp32 too)
        df = df[df.knob_codec == "fp32"]
    dense = df.knob_method == "dense"
    n_exits = df.knob_exits.map(len)
    last_cut = df.knob_split.max()
    if baseline == "edge-only":
        return df[dense & (n_exits == 0) & (df.knob_split == last_cut)]
    if baseline == "server-only":
        return df[dense & (n_exits == 0) & (df.knob_split == 0)]
    if baseline == "neurosurgeon":
        return df[dense & (n_exits == 0)]
    if baseline == "edgent":
        right_sized = (n_exits == 1) & (df.knob_threshold == 0.0)
        return df[dense & ((n_exits == 0) | right_sized)]
    if baseline == "spinn":
        all_exits = n_exits == n_exits.max()
        return df[dense & (df.source == "space") & (all_exits | (n_exits == 0))]
    if baseline == "joint":
        return df
    raise ValueError(baseline)


RATIO_COLUMNS = ("latency_s", "bytes", "edge_energy_j")


def _summary(sub: pd.DataFrame, names: list[str], ruler: Ruler, reference: float) -> dict[str, Any]:
    """Candidates, hypervolume and, at matched accuracy, the best of each cost (with the
    test accuracy of the point that has the best latency)."""
    matched = sub[sub.accuracy >= reference - 0.01]
    best = matched.loc[matched.latency_mean.idxmin()] if len(matched) else None
    return {
        "candidates": len(sub),
        "hv": hypervolume(ruler.loss(sub[names].to_numpy(dtype=float))) if len(sub) else 0.0,
        "matched": len(matched),
        "latency_s": float(best.latency_mean) if best is not None else float("nan"),
        "test_accuracy": float(best.test_accuracy) if best is not None else float("nan"),
        "bytes": float(matched.bandwidth.min()) if len(matched) else float("nan"),
        "edge_energy_j": float(matched.edge_energy.min()) if len(matched) else float("nan"),
    }


def compare(grid: Grid, spec: StudySpec, trials: pd.DataFrame | None) -> pd.DataFrame:
    """Each baseline's exhaustive front against the study's own trials (the ``joint`` row).

    A baseline row holds its feasible candidates of the grid (all of them: its best
    possible); the joint row holds the study's completed feasible ``trials`` (a
    :func:`~dse.search.study.trials_frame`; None or empty: no trials yet). Matched
    accuracy: validation accuracy within 1 point of the dense server-only configuration
    (the unmodified network); at it, each cost is the best found and ``test_accuracy`` is
    the test accuracy of the lowest-latency point. Ratios are baseline / joint as they
    come out: above 1 the joint search found better, below 1 the baseline is better.
    ``in_space``: every candidate of the baseline can be sampled by the study.
    """
    names = list(spec.objectives)
    ref_rows = restrict(grid.frame, "server-only")
    reference = float(ref_rows.accuracy.iloc[0]) if len(ref_rows) else float("nan")
    rows = []
    coded = "knob_codec" in grid.frame and grid.frame.knob_codec.notna().any()
    for b in BASELINES[:-1]:
        if b == "auto-split" and not coded:
            continue  # no codec in the space: it would be neurosurgeon
        # Restrict the whole grid, then drop infeasible rows: restricting the feasible rows
        # would make "the last cut" (edge-only) or "all exits" (spinn) mean whatever the
        # constraints happen to leave.
        sub = restrict(grid.frame, b)
        sub = sub[sub.feasible]
        in_space = b != "edgent" or edgent_in_space(spec)
        rows.append(
            {"baseline": b, **_summary(sub, names, grid.ruler, reference), "in_space": in_space}
        )
    own = trials if trials is not None and len(trials) else None
    own = own[own.feasible] if own is not None else grid.frame.iloc[:0]
    rows.append(
        {"baseline": "joint", **_summary(own, names, grid.ruler, reference), "in_space": True}
    )
    out = pd.DataFrame(rows).set_index("baseline")
    joint = out.loc["joint"]
    for col in RATIO_COLUMNS:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{col}_ratio"] = out[col] / joint[col]
    out.attrs["reference_accuracy"] = reference
    out.attrs["trials"] = 0 if trials is None else len(trials)
    return out


_WHAT = {"latency_s": "mean latency", "bytes": "bytes sent", "edge_energy_j": "edge energy"}


def verdicts(table: pd.DataFrame) -> list[str]:
    """Sentences for every place a baseline does better than the study's trials, and for a
    joint row with nothing to compare; empty when the study's trials win everywhere."""
    joint = table.loc["joint"]
    if table.attrs.get("trials", 0) == 0:
        return [
            "The study has no completed trials yet: the joint row is empty "
            "(run `dse study run SPEC`)."
        ]
    out = []
    if joint.matched == 0:
        out.append(
            "No feasible trial of the study reaches matched accuracy, so no cost "
            "ratio can be formed."
        )
    for b, row in table.drop(index="joint").iterrows():
        if row.candidates == 0:
            continue
        if row.hv > joint.hv + 1e-12:
            fix = (
                "run more trials"
                if row.in_space
                else "its points lie outside the study's space: start the thresholds at 0"
            )
            out.append(
                f"{b} covers more of the objective space than the study's trials "
                f"(hypervolume {row.hv:.4f} against {joint.hv:.4f}): {fix}."
            )
        for col in RATIO_COLUMNS:
            r = row[f"{col}_ratio"]
            if not (np.isfinite(r) and r < 1.0):
                continue
            by = f"{1 / r:.3g}x lower" if r > 0 else f"0 against {joint[col]:.4g}"
            out.append(
                f"{b} beats the study's trials on {_WHAT[col]} at matched accuracy "
                f"(ratio {r:.3g}: {by})."
            )
    return out

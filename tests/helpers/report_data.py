"""A :class:`ReportData` made by hand from tiny values, so that a section is laid out without
running a study: an MLP with cuts 0 (the 4 kB input), 1 (after fc1, 64 B) and 2
(edge-only), one exit (after fc1), three trials of which two are feasible, a grid of four
candidates."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from dse.report import ReportData, plots
from dse.search import Candidate, Grid, Ruler

NAMES = ("accuracy", "latency_mean")
DIRECTIONS = ("maximize", "minimize")
RULER = Ruler(NAMES, DIRECTIONS, (0.5, 0.0), (1.0, 0.01))


def trial(
    number: int,
    accuracy: float,
    latency: float,
    *,
    split: int = 1,
    exits: tuple[int, ...] = (0,),
    feasible: bool = True,
) -> dict[str, Any]:
    """One trial row: a dense network cut at ``split``, threshold 0.5, 64 B sent."""
    return {
        "trial": number,
        "knob_method": "dense",
        "knob_density": 1.0,
        "knob_split": split,
        "knob_exits": exits,
        "knob_threshold": 0.5,
        "knob_criterion": "max_prob",
        "accuracy": accuracy,
        "test_accuracy": accuracy - 0.01,
        "latency_mean": latency,
        "bandwidth": 64.0 if 0 < split < 2 else 4000.0 * (split == 0),
        "edge_energy": 1e-3,
        "feasible": feasible,
    }


def spec(**fields: Any) -> SimpleNamespace:
    """The spec's fields the sections read."""
    values: dict[str, Any] = dict(
        name="tiny",
        objectives=dict(zip(NAMES, DIRECTIONS, strict=True)),
        directions=DIRECTIONS,
        constraints=(),
        codecs=(),
        path=None,
        text='name = "tiny"\n',
        sampler="random",
        seed=0,
    )
    values.update(fields)
    return SimpleNamespace(**values)


def report_data(**fields: Any) -> ReportData:
    """The report's numbers for the tiny study; override any field by keyword."""
    cuts = (("input", 4000.0), ("fc1", 64.0), ("fc2", 0.0))
    graph = SimpleNamespace(cuts=[SimpleNamespace(after=a, bytes=b) for a, b in cuts])
    explorer = SimpleNamespace(
        edge=SimpleNamespace(name="board"),
        link=SimpleNamespace(name="radio"),
        server=SimpleNamespace(name="gpu"),
        exit_names=("fc1",),
        reference_graph=graph,
    )
    trials = pd.DataFrame(
        [trial(0, 0.90, 0.002), trial(1, 0.95, 0.004), trial(2, 0.99, 0.001, feasible=False)]
    )
    info = plots.front_info(
        trials[list(NAMES)].to_numpy(dtype=float),
        NAMES,
        DIRECTIONS,
        feasible=trials["feasible"].to_numpy(dtype=bool),
        trials=trials["trial"].to_numpy(dtype=int),
        ruler=RULER,
    )
    knee = trials.iloc[info.knee]
    grid = Grid(
        frame=pd.DataFrame(
            {
                "accuracy": [0.9, 0.95, 0.7, 0.99],
                "latency_mean": [0.002, 0.004, 0.003, 0.001],
                "feasible": [True, True, True, False],
                "pareto": [True, True, False, False],
                "source": ["space"] * 4,
            }
        ),
        ruler=RULER,
        seconds=0.5,
    )
    values: dict[str, Any] = dict(
        spec=spec(),
        explorer=explorer,
        grid=grid,
        trials=trials,
        states={"COMPLETE": 3, "FAIL": 1},
        ruler=RULER,
        ruler_source="grid",
        front_info=info,
        front=trials[info.on_front],
        recommended=knee,
        configuration=Candidate.from_row(knee),
        recommended_scorer=None,
        rescored=None,
        dense=None,
        baseline_bests={},
        comparison=pd.DataFrame(),
        study_hypervolume=0.2,
        grid_hypervolume=0.4,
    )
    values.update(fields)
    return ReportData(**values)


def no_trial_feasible(**fields: Any) -> ReportData:
    """The tiny study where no trial is feasible."""
    data = report_data()
    trials = data.trials.assign(feasible=False)
    return report_data(
        trials=trials,
        front=trials.iloc[:0],
        front_info=data.front_info._replace(
            feasible=np.zeros(len(trials), bool), on_front=np.zeros(len(trials), bool), knee=None
        ),
        recommended=None,
        configuration=None,
        **fields,
    )

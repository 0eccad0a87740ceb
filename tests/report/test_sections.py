"""Sections of the report laid out from a ReportData made by hand (tests/report/hand_data.py),
without running a study: what each says, in which words and numbers."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

import pandas as pd
import pytest
from helpers.report_data import RULER, no_trial_feasible, report_data
from helpers.report_data import spec as spec_fields

from dse.report.data import ReportData
from dse.report.doc import Doc
from dse.report.figures import Figures
from dse.report.sections import reproduce, search, spec, summary, verification, what_to_do
from dse.report.sections.deployment_map import deployment_map
from dse.search import Choice, DeploymentResult, Grid, Sweep


def _text(part: Any) -> str:
    return part if isinstance(part, str) else part.text


def lines(section: Any, data: ReportData) -> list[str]:
    """What ``section`` writes, as plain lines: a heading, a paragraph or a list item per
    line, a table row as ``cell | cell``, a code block as it is."""
    doc = Doc("t")
    section(data, doc)
    out = []
    for kind, block in doc.blocks:
        if kind == "h":
            out.append(f"# {block[1]}")
        elif kind == "p":
            out.append("".join(_text(p) for p in block))
        elif kind == "ul":
            out += ["- " + "".join(_text(p) for p in row) for row in block]
        elif kind == "table":
            headers, rows = block
            out.append(" | ".join(headers))
            out += [" | ".join("".join(_text(p) for p in cell) for cell in row) for row in rows]
        elif kind == "code":
            out.append(block)
        elif kind == "figure":
            out.append(f"[figure {block[0]}]")
    return out


def test_summary_counts_the_trials_and_names_the_recommendation() -> None:
    said = lines(summary, report_data())
    assert said == [
        "# Summary",
        "- Trials: 3 complete, 1 fail; 2 of 3 complete trials feasible; 2 on the feasible "
        "Pareto front.",
        "- Recommended: trial 0: dense, cut 1 (after fc1), exits fc1 at threshold 0.5; "
        "accuracy 90.0% (test 89.0%), latency 2 ms, sent 64 B, edge energy 1 mJ.",
        "- The study's feasible front reaches 50.0% of the exhaustive grid's hypervolume "
        "(0.2000 of 0.4000, on the grid ruler).",
    ]


def test_summary_without_a_feasible_trial_says_the_sampler_missed_the_grids() -> None:
    said = lines(summary, no_trial_feasible(grid_hypervolume=0.0))
    assert said[1].startswith("- Trials: 3 complete, 1 fail; 0 of 3 complete trials feasible")
    assert said[2] == (
        "- No trial is feasible: there is no recommended configuration. The exhaustive grid "
        "has 3 feasible candidates of 4; the sampler missed them: run more trials."
    )
    assert said[3] == (
        "- The exhaustive grid has no feasible candidate, so there is no hypervolume to "
        "compare with."
    )


def test_what_to_do_with_nothing_feasible_anywhere_names_the_constraints() -> None:
    nothing = Grid(frame=report_data().grid.frame.assign(feasible=False), ruler=RULER, seconds=0.5)
    data = no_trial_feasible(grid=nothing, spec=spec_fields(constraints=("latency_mean <= 1e-09",)))
    assert lines(what_to_do, data) == [
        "# What to do",
        "Nothing to deploy yet: no trial is feasible. The exhaustive grid has 0 feasible "
        "candidates of 4 on board -> radio -> gpu; the constraints (latency_mean <= 1e-09) "
        "exclude the whole space: relax them, or pick another device or link (see the "
        "deployment map).",
    ]


def test_search_shows_the_grid_the_ruler_and_what_importance_could_not_say() -> None:
    data = report_data(
        importance={"accuracy": {"split": 1.0}, "latency_mean": "RuntimeError: too few trials"},
        figures=Figures(missing={"hypervolume": "The study has no complete trial yet."}),
    )
    assert lines(search, data) == [
        "# The search",
        "Sampler random (seed 0); the exhaustive grid scored 4 candidates in 0.5 s "
        "(3 feasible, 2 on its front).",
        "Hypervolume of the study's feasible trials: 0.2000, 50.0% of the grid's 0.4000 (on "
        "the grid ruler; reference point 1.1 in every scaled objective).",
        "The ruler: every objective scaled to [0, 1] between these bounds (fitted to the "
        "exhaustive grid's feasible candidates), 0 best:",
        "objective | direction | best end | worst end",
        "accuracy | maximize | 100.0% | 50.0%",
        "latency_mean | minimize | 0 s | 10 ms",
        "Figure not drawn. The study has no complete trial yet.",
        "Importance for latency_mean could not be computed: RuntimeError: too few trials",
    ]


def test_verification_shows_each_retrained_configuration_or_how_to_retrain() -> None:
    said = lines(verification, report_data())
    assert "Not verified yet: dse verify tiny retrains the top front" in said[1]
    records = [
        {
            "trial": 0,
            "knobs": {
                "method": "dense",
                "density": 1.0,
                "split": 1,
                "exits": [0],
                "threshold": 0.5,
                "criterion": "max_prob",
            },
            "old_test_accuracy": 0.9,
            "new_test_accuracy": 0.85,
            "delta": -0.05,
            "old_latency_mean": 0.002,
            "new_latency_mean": 0.0021,
        },
        {"trial": 1, "knobs": {"split": 1}},  # unreadable knobs: no configuration shown
    ]
    said = lines(verification, report_data(verified=records))
    assert said[3] == "0 | dense, cut 1, fc1 @ 0.5 | 90.0% | 85.0% | -5.0 points | 2 ms | 2.1 ms"
    assert said[4].startswith("1 | - | - | - | ")


def _result(edge: str, split: int | None, sent: float = 64.0) -> DeploymentResult:
    knobs = {"method": "dense", "density": 1.0, "split": split, "exits": [0], "threshold": 0.5}
    metrics = {"accuracy": 0.9, "latency_mean": 2e-3, "edge_energy": 1e-3, "bandwidth": sent}
    best = None if split is None else Choice({**knobs, "criterion": "max_prob"}, metrics)
    return DeploymentResult(edge, "lte", "a100", 10, 5, 2, 0, best, None, None, 2, 0.01)


def test_deployment_map_has_a_row_per_deployment_or_says_why_there_is_none() -> None:
    assert lines(deployment_map, report_data(sweep_note="Not scored here.")) == [
        "# Deployment map",
        "Not scored here.",
    ]
    sweep = Sweep(
        "tiny",
        {"accuracy": "maximize"},
        (),
        (_result("pi", 1), _result("nano", 2, sent=0.0), _result("esp", None)),
        1.0,
    )
    said = lines(deployment_map, report_data(sweep=sweep, sweep_note="from a file"))
    assert "combination, from a file. Per combination" in said[1]
    assert said[3:] == [
        "pi | lte | a100 | dense, cut 1, fc1 @ 0.5 | split ★ | 90.0% | 2 ms | 1 mJ | 64 B",
        "nano | lte | a100 | dense, cut 2, fc1 @ 0.5 | edge-only | 90.0% | 2 ms | 1 mJ | 0 B",
        "esp | lte | a100 | nothing feasible |  |  |  |  | ",
    ]


def test_spec_and_reproduce_never_show_a_path_of_the_machine() -> None:
    data = report_data(spec=spec_fields(text='name = "tiny"\nn_trials = 3\n'))
    assert lines(spec, data) == [
        "# Study spec",
        "As stored with the study; written at (stored with the study):",
        'name = "tiny"\nn_trials = 3\n',
    ]
    code = lines(reproduce, data)[1].splitlines()
    assert code[0].startswith("dse study run studies/tiny.toml ")
    assert [c.split()[:3] for c in code[1:]] == [
        ["dse", "study", "grid"],
        ["dse", "compare", "tiny"],
        ["dse", "verify", "tiny"],
        ["dse", "report", "tiny"],
    ]


def test_a_frozen_report_data_holds_what_it_was_given() -> None:
    data = report_data()
    assert data.names == ["accuracy", "latency_mean"] and data.last_cut == 2
    assert data.configuration is not None and data.configuration.split == 1
    assert data.own_deployment() is None  # no sweep
    assert isinstance(data.trials, pd.DataFrame) and data.figures == Figures()
    with pytest.raises(FrozenInstanceError):
        data.tasks = ("a",)  # type: ignore[misc]

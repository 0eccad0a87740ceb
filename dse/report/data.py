"""Everything the report shows, computed once from the stored study (:class:`ReportData`).

:func:`gather` reads the study's trials, finds the feasible front and its knee (the
recommendation), scores the baselines' best points on the exhaustive grid, measures the
hypervolumes on the study's ruler, and scores the deployment map; the figures are drawn
from it afterwards (:func:`dse.report.figures.draw_figures`). The sections only read it.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from dse.costmodel import LayerGraph, list_devices, list_links, load_device
from dse.errors import InputError
from dse.report import plots
from dse.report.figures import Figures
from dse.report.text import spec_shown
from dse.search import (
    BASELINES,
    Candidate,
    Decision,
    DeploymentResult,
    Explorer,
    Grid,
    Metrics,
    Ruler,
    Scorer,
    StudySpec,
    Sweep,
    TaskComparison,
    answer_choice,
    compare,
    compare_tasks,
    decide,
    hypervolume,
    importances,
    place,
    points_frame,
    recommend,
    restrict,
    run_sweep,
    single_task_spec,
    study_ruler,
    trials_frame,
)

#: The deployment map is scored in the report when the shipped edge devices x links x the
#: space's candidates come to at most this many scorings (about 1 s per 40 000 on 2 cores);
#: above it, the report asks for ``dse sweep --json`` and ``dse report --sweep``.
MAP_BUDGET = 2_000_000
CODEC_NETWORKS = 4  # at most this many networks in the codec figure (dense first)
log = logging.getLogger(__name__)


class TasksSection(NamedTuple):
    """The multi-task comparison the report shows (a spec with several tasks)."""

    comparison: TaskComparison | None  # None: it could not be computed (``error`` says why)
    networks: int  # single-task networks it needs: one per task
    trained_now: int  # of them, trained for this report; the others came from the cache
    error: str | None


@dataclass(frozen=True, eq=False)
class ReportData:
    """Everything the report shows about one study, computed once (SI units throughout).

    The recommendation is the decision's (``decision``, :func:`dse.search.recommend`):
    ``recommended`` (its point's row: a trial's, or the grid's with ``trial`` NaN) and
    ``configuration`` (its canonical knobs) are None when nothing is recommended. Two of
    them are never compared (their frames have no single truth value): ``==`` is
    identity.
    """

    spec: StudySpec
    explorer: Explorer  # the study's networks, space and profiles (loaded, not trained)
    grid: Grid  # the exhaustive grid of the space: the reference front
    trials: pd.DataFrame  # every complete trial, by trial number
    states: Mapping[str, int]  # how many trials are in each state (COMPLETE, FAIL, ...)
    ruler: Ruler  # every hypervolume of the report is measured on it
    ruler_source: str  # "grid" or "trials": what the ruler was fitted to
    front_info: plots.FrontInfo  # the trials, the decision's front points and its star
    front: pd.DataFrame  # the decision's distinct front points, as front.csv holds them
    recommended: pd.Series | None  # the answer's row
    configuration: Candidate | None  # the answer's canonical configuration
    recommended_scorer: Scorer | None  # the answer's network, scored at its cut
    rescored: Metrics | None  # the answer's configuration scored again now
    dense: Scorer  # the dense network
    baseline_bests: Mapping[str, pd.Series]  # baseline -> its space decided by the rule
    comparison: pd.DataFrame  # each baseline against the study's trials (compare)
    study_hypervolume: float  # of the feasible trials
    grid_hypervolume: float  # of the grid's own feasible candidates; 0: none feasible
    verified: Sequence[Mapping[str, Any]] | None = None  # what `dse verify` recorded
    learning_warnings: tuple[str, ...] = ()  # reasons to distrust the dense network
    tasks: tuple[str, ...] = ()  # the spec's tasks where it has several
    task_comparison: TasksSection | None = None  # several tasks only
    codec_networks: tuple[tuple[str, float], ...] = ()  # (method, density) shown per codec
    sweep: Sweep | None = None  # the deployment map's sweep
    sweep_note: str = ""  # where the sweep came from, or why there is none
    importance: Mapping[str, Mapping[str, float] | str] | None = None  # None: no trial
    figures: Figures = field(default_factory=Figures)
    decision: Decision | None = None  # the answer every view shows (None: made by hand)
    grid_scored: bool = True  # False: the space was too large to score its grid here

    @property
    def names(self) -> list[str]:
        """The objectives, in the spec's order."""
        return list(self.spec.objectives)

    @property
    def exit_names(self) -> Sequence[str]:
        """The exits' names, by index."""
        return self.explorer.exit_names

    @property
    def graph(self) -> LayerGraph:
        """The dense network's layer graph: its cuts and what each sends."""
        return self.explorer.reference_graph

    @property
    def last_cut(self) -> int:
        """The edge-only cut (cut 0 is server-only)."""
        return len(self.graph.cuts) - 1

    def own_deployment(self) -> DeploymentResult | None:
        """The deployment sweep's result for the study's own edge, link and server (its
        best configuration is the answer itself, see :func:`gather`)."""
        if self.sweep is None:
            return None
        explorer = self.explorer
        own = (explorer.edge.name, explorer.link.name, explorer.server.name)
        return next((r for r in self.sweep.results if (r.edge, r.link, r.server) == own), None)

    def standard_error(self, accuracy: float) -> float:
        """An accuracy's standard error on the validation split (NaN without a decision)."""
        return self.decision.standard_error(accuracy) if self.decision else float("nan")


def gather(
    study: Any,
    spec: StudySpec,
    explorer: Explorer,
    grid: Grid,
    *,
    sweep: Sweep | None = None,
    decision: Decision | None = None,
    say: Callable[[str], None] = lambda _msg: None,
) -> ReportData:
    """Compute everything the report shows for ``study`` (no figure is drawn).

    ``decision``: the answer (default: :func:`dse.search.recommend` on ``grid``, or on the
    trials alone when ``grid`` has no row). ``sweep``: the deployment map's (from ``dse
    report --sweep``); without one, the space is scored here over the shipped edge devices
    and links when that is small enough.
    """
    names = list(spec.objectives)
    states: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    trials = trials_frame(study)
    if trials.empty:
        trials = pd.DataFrame(columns=["trial", *names, "feasible"])
    trials = trials.sort_values("trial").reset_index(drop=True)
    if decision is None:
        decision = recommend(study, spec, explorer, grid=grid if len(grid.frame) else None)
    ruler, ruler_source = study_ruler(study, spec)
    bests = baseline_bests(grid, decision)
    front_info = _front_info(trials, spec, explorer, decision, grid, ruler, bests)
    point = decision.recommended
    recommended = pd.Series(dict(point.row)) if point is not None else None
    configuration = point.config if point is not None else None
    scorer = rescored = None
    if configuration is not None:
        scorer = explorer.scorer(configuration.method, configuration.density, configuration.split)
        rescored = scorer.score(configuration)
    study_hv, grid_hv = _hypervolumes(trials, grid, ruler, names)
    tasks = tuple(spec.tasks) if len(spec.tasks) > 1 else ()
    front = points_frame(decision.front, decision)
    shown_sweep, sweep_note = deployment_sweep(spec, explorer, given=sweep, say=say)
    return ReportData(
        spec=spec,
        explorer=explorer,
        grid=grid,
        trials=trials,
        states=states,
        ruler=ruler,
        ruler_source=ruler_source,
        front_info=front_info,
        front=front,
        recommended=recommended,
        configuration=configuration,
        recommended_scorer=scorer,
        rescored=rescored,
        dense=explorer.scorer("dense", 1.0),
        baseline_bests=bests,
        comparison=compare(grid, spec, trials),
        study_hypervolume=study_hv,
        grid_hypervolume=grid_hv,
        verified=study.user_attrs.get("verify"),
        learning_warnings=tuple(explorer.learning_warnings()),
        tasks=tasks,
        task_comparison=tasks_section_info(explorer) if tasks else None,
        codec_networks=codec_networks(spec, front),
        sweep=with_answer(shown_sweep, explorer, decision, spec),
        sweep_note=sweep_note,
        importance=importances(study, names, seed=spec.seed) if len(trials) else None,
        decision=decision,
        grid_scored=bool(len(grid.frame)),
    )


def with_answer(
    sweep: Sweep | None, explorer: Explorer, decision: Decision, spec: StudySpec
) -> Sweep | None:
    """``sweep`` with its cell for the study's own deployment made the answer itself, so
    the deployment map and the first section tell one story."""
    if sweep is None:
        return None
    own = (explorer.edge.name, explorer.link.name, explorer.server.name)
    best = answer_choice(decision, spec)
    results = tuple(
        replace(
            r,
            best=best,
            front=len(decision.front),
            splits_on_front=sum(
                place(p.config.split, float(p.row["bandwidth"])) == "split" for p in decision.front
            ),
            reason=decision.reason,
        )
        if (r.edge, r.link, r.server) == own
        else r
        for r in sweep.results
    )
    return replace(sweep, results=results)


def empty_grid(spec: StudySpec, ruler: Ruler) -> Grid:
    """A grid of no row: what the report holds when the space is too large to score its
    exhaustive grid here (see :data:`dse.search.GRID_BUDGET`)."""
    columns = [
        *dict.fromkeys([*spec.objectives, *GRID_COLUMNS]),
        "feasible",
        "pareto",
        "source",
        *KNOB_COLUMNS,
    ]
    return Grid(pd.DataFrame(columns=columns), ruler, 0.0)


#: The columns an empty grid carries, so that comparisons read it as one with no row.
GRID_COLUMNS = ("accuracy", "test_accuracy", "latency_mean", "bandwidth", "edge_energy")
KNOB_COLUMNS = (
    "knob_method",
    "knob_density",
    "knob_split",
    "knob_exits",
    "knob_threshold",
    "knob_criterion",
)


def _front_info(
    trials: pd.DataFrame,
    spec: StudySpec,
    explorer: Explorer,
    decision: Decision,
    grid: Grid,
    ruler: Ruler,
    bests: Mapping[str, pd.Series],
) -> plots.FrontInfo:
    """The front figure's numbers: every trial (those under the learned floor marked),
    the decision's distinct front points and its answer, each baseline's point and the
    grid's front."""
    names = list(spec.objectives)
    values = trials[names].to_numpy(dtype=float) if len(trials) else np.zeros((0, len(names)))
    grid_frame = grid.frame
    reference = None
    if "pareto" in grid_frame and len(grid_frame):
        # the grid's front above the learned floor (a point under it is no front point;
        # removing it leaves every other point's place on the front as it was)
        on = grid_frame["pareto"].astype(bool).to_numpy().copy()
        for f in decision.floors:
            if f.column in grid_frame:
                on &= grid_frame[f.column].to_numpy(dtype=float) >= f.floor - 1e-12
        reference = grid_frame[on][names].to_numpy(dtype=float)
    below = np.zeros(len(trials), dtype=bool)
    for f in decision.floors:
        if f.column in trials:
            below |= ~(trials[f.column].to_numpy(dtype=float) >= f.floor - 1e-12)
    front_trials = {t for p in decision.front for t in p.trials}
    point = decision.recommended
    return plots.front_info(
        values,
        names,
        spec.directions,
        feasible=trials["feasible"].to_numpy(dtype=bool),
        trials=trials["trial"].to_numpy(dtype=int),
        ruler=ruler,
        baselines={b: row[names].to_numpy(dtype=float) for b, row in bests.items()},
        reference=reference,
        title=f"Pareto front of {spec.name}: {spec.model} on {spec.data['name']}, "
        f"{explorer.edge.name} -> {explorer.link.name} -> {explorer.server.name}",
        decided=plots.Decided(
            on_front=trials["trial"].isin(front_trials).to_numpy(dtype=bool),
            below=below,
            points=np.array(
                [[p.metrics[n] for n in names] for p in decision.front], dtype=float
            ).reshape(-1, len(names)),
            by_grid=np.array([p.source != "study" for p in decision.front], dtype=bool),
            configurations=decision.configurations,
            star=None
            if point is None
            else np.array([point.metrics[n] for n in names], dtype=float),
            star_label=_star_label(point),
        ),
    )


def _star_label(point: Any) -> str:
    """The answer's legend entry: its trial, or that only the grid found it."""
    if point is None:
        return "recommended: none"
    if point.trial is not None:
        return f"recommended: trial {point.trial}"
    return "recommended: found by the exhaustive grid"


def _hypervolumes(
    trials: pd.DataFrame, grid: Grid, ruler: Ruler, names: Sequence[str]
) -> tuple[float, float]:
    """The hypervolume of the study's feasible trials and of the grid's, on ``ruler``.

    The grid's is its own space's, as ``dse study status`` measures it: the edgent
    right-sizing points (threshold 0) lie outside what the study can sample.
    """
    values = trials[names].to_numpy(dtype=float) if len(trials) else np.zeros((0, len(names)))
    feasible = trials["feasible"].to_numpy(dtype=bool)
    study_hv = hypervolume(ruler.loss(values[feasible])) if feasible.any() else 0.0
    own = grid.own_feasible()
    grid_hv = hypervolume(ruler.loss(own[list(names)].to_numpy(dtype=float))) if len(own) else 0.0
    return study_hv, grid_hv


def baseline_bests(grid: Grid, decision: Decision) -> dict[str, pd.Series]:
    """Each baseline's restricted space of the grid (its feasible rows, as in
    ``compare``) decided by the answer's own rule (the learned floor, ties within the
    noise, the knee in standard errors): the configuration that baseline would deploy.

    The joint search is the study's own answer, already on the figure: no grid point
    stands in. A baseline none of whose points clears the floor has none.
    """
    out: dict[str, pd.Series] = {}
    for b in BASELINES:
        if b == "joint":
            continue
        sub = restrict(grid.frame, b)
        sub = sub[sub["feasible"].astype(bool)] if len(sub) else sub
        if not len(sub):
            continue
        found = decide(
            sub,
            objectives=decision.objectives,
            floors=decision.floors,
            validation_samples=decision.validation_samples,
        ).recommended
        if found is not None:
            out[b] = pd.Series(dict(found.row))
    return out


def tasks_section_info(explorer: Explorer) -> TasksSection:
    """One backbone against one network per task (:func:`dse.search.compare_tasks`) for
    ``explorer``'s spec, and how many single-task networks had to be trained for it.

    A comparison that cannot be computed never stops the report: the section says why.
    """
    tasks = explorer.tasks or ()
    base = explorer.network_spec("dense", 1.0)
    missing = sum(not explorer.cache.path(single_task_spec(base, t).key).exists() for t in tasks)
    try:
        comparison = compare_tasks(explorer)
    except Exception as exc:  # the rest of the report still comes out
        log.warning("the multi-task comparison could not be computed", exc_info=True)
        detail = "".join(traceback.format_exception_only(exc)).strip()
        return TasksSection(None, len(tasks), 0, detail)
    return TasksSection(comparison, len(tasks), missing, None)


def codec_networks(spec: StudySpec, front: pd.DataFrame) -> tuple[tuple[str, float], ...]:
    """The networks whose codecs the report shows (a spec with codecs): the dense one,
    then each other network on the front, at most :data:`CODEC_NETWORKS` in all."""
    if not spec.codecs:
        return ()
    networks = [("dense", 1.0)]
    for _, row in front.iterrows():
        candidate = Candidate.from_row(row)
        network = ("dense", 1.0) if candidate.network[0] == "dense" else candidate.network
        if network not in networks:
            networks.append(network)
    return tuple(networks[:CODEC_NETWORKS])


def deployment_sweep(
    spec: StudySpec,
    explorer: Explorer,
    *,
    given: Sweep | None = None,
    say: Callable[[str], None] = lambda _msg: None,
) -> tuple[Sweep | None, str]:
    """The sweep the deployment map shows and a sentence saying where it came from: the
    ``given`` one, or the space scored now over the shipped edge devices and links (server:
    the spec's) when that comes to at most :data:`MAP_BUDGET` scorings."""
    if given is not None:
        return given, "from the sweep file given to dse report --sweep"
    shipped = [d for d in list_devices() if _device_kind(d) == "edge"]
    # an int8-only board cannot run a float32 edge part (see check_runs_float)
    integer = [d for d in shipped if load_device(d).integer_only]
    edges = [d for d in shipped if d not in integer]
    links = list_links()
    for mine, names in ((explorer.edge.name, edges), (explorer.link.name, links)):
        if mine not in names:
            names.append(mine)
    edges = [e if e in list_devices() else spec.edge for e in edges]
    links = [x if x in list_links() else spec.link for x in links]
    size = explorer.space.size()
    how = (
        f"dse sweep {spec_shown(spec)} --edge {','.join(edges)} --link "
        f"{','.join(links)} --json sweep.json, then dse report {spec.name} --sweep "
        "sweep.json"
    )
    if len(edges) * len(links) * size > MAP_BUDGET:
        return None, (
            f"The deployment map was not scored here: {len(edges)} edge devices x "
            f"{len(links)} links x {size} candidates is more than "
            f"{MAP_BUDGET:,} scorings. Run {how}."
        )
    say(f"scoring the space on {len(edges)} edge devices x {len(links)} links")
    try:
        scored = run_sweep(spec, edges, links, explorer=explorer)
    except InputError as exc:
        return None, f"The deployment map could not be scored: {exc}"
    left = (
        f"; left out: {', '.join(integer)} (int8 only, and the networks are float32)"
        if integer
        else ""
    )
    return scored, (
        f"scored for this report over the shipped edge devices and links (server "
        f"{explorer.server.name}){left}; for other profiles run {how}"
    )


def _device_kind(name: str) -> str:
    """A shipped device profile's kind (``edge`` or ``server``); ``""`` if unreadable."""
    try:
        return load_device(name).kind
    except InputError:
        return ""

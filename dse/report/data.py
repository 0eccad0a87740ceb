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
from dataclasses import dataclass, field
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
    DeploymentResult,
    Explorer,
    Grid,
    Metrics,
    Ruler,
    Scorer,
    StudySpec,
    Sweep,
    TaskComparison,
    compare,
    compare_tasks,
    hypervolume,
    importances,
    restrict,
    run_sweep,
    single_task_spec,
    study_ruler,
    tidy_front,
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

    The recommendation is the knee of the feasible front: ``recommended`` (its trial row)
    and ``configuration`` (its knobs) are None when no trial is feasible. Two of them are
    never compared (their frames have no single truth value): ``==`` is identity.
    """

    spec: StudySpec
    explorer: Explorer  # the study's networks, space and profiles (loaded, not trained)
    grid: Grid  # the exhaustive grid of the space: the reference front
    trials: pd.DataFrame  # every complete trial, by trial number
    states: Mapping[str, int]  # how many trials are in each state (COMPLETE, FAIL, ...)
    ruler: Ruler  # every hypervolume of the report is measured on it
    ruler_source: str  # "grid" or "trials": what the ruler was fitted to
    front_info: plots.FrontInfo  # which trials are on the feasible front, and the knee
    front: pd.DataFrame  # the feasible front's trials, as front.csv holds them
    recommended: pd.Series | None  # the knee's trial row
    configuration: Candidate | None  # the knee's configuration
    recommended_scorer: Scorer | None  # the knee's network, scored at its cut
    rescored: Metrics | None  # the knee's configuration scored again now
    dense: Scorer  # the dense network
    baseline_bests: Mapping[str, pd.Series]  # baseline -> its grid point closest to ideal
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
        """The deployment sweep's result for the study's own edge, link and server."""
        if self.sweep is None:
            return None
        explorer = self.explorer
        own = (explorer.edge.name, explorer.link.name, explorer.server.name)
        return next((r for r in self.sweep.results if (r.edge, r.link, r.server) == own), None)


def gather(
    study: Any,
    spec: StudySpec,
    explorer: Explorer,
    grid: Grid,
    *,
    sweep: Sweep | None = None,
    say: Callable[[str], None] = lambda _msg: None,
) -> ReportData:
    """Compute everything the report shows for ``study`` (no figure is drawn).

    ``sweep``: the deployment map's (from ``dse report --sweep``); without one, the space
    is scored here over the shipped edge devices and links when that is small enough.
    """
    names = list(spec.objectives)
    states: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    trials = trials_frame(study)
    if trials.empty:
        trials = pd.DataFrame(columns=["trial", *names, "feasible"])
    trials = trials.sort_values("trial").reset_index(drop=True)
    ruler, ruler_source = study_ruler(study, spec)
    bests = baseline_bests(grid, ruler)
    front_info = _front_info(trials, spec, explorer, grid, ruler, bests)
    front = tidy_front(trials[front_info.on_front], spec)
    recommended = trials.iloc[front_info.knee] if front_info.knee is not None else None
    configuration = Candidate.from_row(recommended) if recommended is not None else None
    scorer = rescored = None
    if configuration is not None:
        scorer = explorer.scorer(configuration.method, configuration.density, configuration.split)
        rescored = scorer.score(configuration)
    study_hv, grid_hv = _hypervolumes(trials, grid, ruler, names)
    tasks = tuple(spec.tasks) if len(spec.tasks) > 1 else ()
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
        sweep=shown_sweep,
        sweep_note=sweep_note,
        importance=importances(study, names, seed=spec.seed) if len(trials) else None,
    )


def _front_info(
    trials: pd.DataFrame,
    spec: StudySpec,
    explorer: Explorer,
    grid: Grid,
    ruler: Ruler,
    bests: Mapping[str, pd.Series],
) -> plots.FrontInfo:
    """The front figure's numbers: every trial, the feasible front, the knee on ``ruler``,
    each baseline's best point and the grid's front."""
    names = list(spec.objectives)
    values = trials[names].to_numpy(dtype=float) if len(trials) else np.zeros((0, len(names)))
    grid_frame = grid.frame
    reference = (
        grid_frame[grid_frame["pareto"].astype(bool)][names].to_numpy(dtype=float)
        if ("pareto" in grid_frame)
        else None
    )
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
    )


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


def baseline_bests(grid: Grid, ruler: Ruler) -> dict[str, pd.Series]:
    """Each baseline's feasible grid point closest to the ideal point on ``ruler``.

    As in ``compare``: the baseline's rows of the whole grid, then the feasible ones. The
    joint search is the study's own trials, already on the figure: no grid point stands in.
    """
    names = list(ruler.names)
    out: dict[str, pd.Series] = {}
    for b in BASELINES:
        if b == "joint":
            continue
        sub = restrict(grid.frame, b)
        sub = sub[sub["feasible"].astype(bool)]
        if not len(sub):
            continue
        losses = ruler.loss(sub[names].to_numpy())
        out[b] = sub.iloc[int(np.argmin(np.linalg.norm(losses, axis=1)))]
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

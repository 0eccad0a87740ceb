"""Everything the report shows, computed once from the stored study."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from dse.costmodel import list_devices, list_links
from dse.errors import InputError
from dse.report import plots
from dse.report.figures import FigureDrawing, Figures
from dse.report.sections import Document
from dse.report.text import Phrases, candidate_of
from dse.search import (
    BASELINES,
    Explorer,
    Grid,
    Ruler,
    StudySpec,
    Sweep,
    TaskComparison,
    compare,
    compare_tasks,
    hypervolume,
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


class TasksSection(NamedTuple):
    """The multi-task comparison the report shows (a spec with several tasks)."""

    comparison: TaskComparison | None  # None: it could not be computed (``error`` says why)
    networks: int  # single-task networks it needs: one per task
    trained_now: int  # of them, trained for this report; the others came from the cache
    error: str | None


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


class _Report(Document, FigureDrawing, Phrases):
    """Everything the report shows, computed once, then laid out by ``document``."""

    def __init__(
        self, study: Any, spec: StudySpec, explorer: Explorer, grid: Grid, figures: Figures
    ):
        self.study, self.spec, self.ex, self.grid, self.fig = study, spec, explorer, grid, figures
        self.names = list(spec.objectives)
        #: the spec's tasks where it has several (per-task columns, thresholds, section)
        self.tasks: tuple[str, ...] = tuple(spec.tasks) if len(spec.tasks) > 1 else ()
        self.given_sweep: Sweep | None = None  # a sweep file's (dse report --sweep)
        self.say: Callable[[str], None] = lambda _msg: None

    # ---- numbers --------------------------------------------------------------------

    def compute(self) -> None:
        spec, names = self.spec, self.names
        self.counts: dict[str, int] = {}
        for t in self.study.get_trials(deepcopy=False):
            self.counts[t.state.name] = self.counts.get(t.state.name, 0) + 1
        df = trials_frame(self.study)
        if df.empty:
            df = pd.DataFrame(columns=["trial", *names, "feasible"])
        self.df = df.sort_values("trial").reset_index(drop=True)
        self.ruler, self.ruler_source = study_ruler(self.study, spec)
        values = self.df[names].to_numpy(dtype=float) if len(self.df) else np.zeros((0, len(names)))
        feasible = self.df["feasible"].to_numpy(dtype=bool)
        self.bests = baseline_bests(self.grid, self.ruler)
        gf = self.grid.frame
        reference = (
            gf[gf["pareto"].astype(bool)][names].to_numpy(dtype=float) if ("pareto" in gf) else None
        )
        title = (
            f"Pareto front of {spec.name}: {spec.model} on {spec.data['name']}, "
            f"{self.ex.edge.name} -> {self.ex.link.name} -> {self.ex.server.name}"
        )
        self.front_info = plots.front_info(
            values,
            names,
            spec.directions,
            feasible=feasible,
            trials=self.df["trial"].to_numpy(dtype=int),
            ruler=self.ruler,
            baselines={b: row[names].to_numpy(dtype=float) for b, row in self.bests.items()},
            reference=reference,
            title=title,
        )
        fi = self.front_info
        self.front = tidy_front(self.df[fi.on_front], spec)
        self.rec = self.df.iloc[fi.knee] if fi.knee is not None else None
        self.rec_cand = candidate_of(self.rec) if self.rec is not None else None

        self.comparison = compare(self.grid, spec, self.df)
        self.hv_study = hypervolume(self.ruler.loss(values[feasible])) if feasible.any() else 0.0
        # the grid's best is its own space's, as `dse study status` measures it: the edgent
        # right-sizing points (threshold 0) lie outside what the study can sample
        own = self.grid.own_feasible()
        self.hv_grid = (
            hypervolume(self.ruler.loss(own[names].to_numpy(dtype=float))) if (len(own)) else 0.0
        )
        self.verify = self.study.user_attrs.get("verify")

        self.rec_scorer = None
        self.rescored = None
        if self.rec_cand is not None:
            self.rec_scorer = self.ex.scorer(
                self.rec_cand.method, self.rec_cand.density, self.rec_cand.split
            )
            self.rescored = self.rec_scorer.score(self.rec_cand)
        self.dense = self.ex.scorer("dense", 1.0)
        self.learning = self.ex.learning_warnings()
        self.task_section = tasks_section_info(self.ex) if self.tasks else None
        self.codec_networks = self._codec_networks()
        self.sweep, self.sweep_note = self._deployment_sweep()
        self._figures()

    def _deployment_sweep(self) -> tuple[Sweep | None, str]:
        """The sweep the deployment map shows and a sentence saying where it came from."""
        if self.given_sweep is not None:
            return self.given_sweep, "from the sweep file given to dse report --sweep"
        ex, spec = self.ex, self.spec
        shipped = [d for d in list_devices() if _device_kind(d) == "edge"]
        # an int8-only board cannot run a float32 edge part (see check_runs_float)
        integer = [d for d in shipped if _integer_only(d)]
        edges = [d for d in shipped if d not in integer]
        links = list_links()
        for mine, names in ((ex.edge.name, edges), (ex.link.name, links)):
            if mine not in names:
                names.append(mine)
        edges = [e if e in list_devices() else spec.edge for e in edges]
        links = [x if x in list_links() else spec.link for x in links]
        work = len(edges) * len(links) * ex.space.size()
        how = (
            f"dse sweep {self._spec_shown()} --edge {','.join(edges)} --link "
            f"{','.join(links)} --json sweep.json, then dse report {spec.name} --sweep "
            "sweep.json"
        )
        if work > MAP_BUDGET:
            return None, (
                f"The deployment map was not scored here: {len(edges)} edge devices x "
                f"{len(links)} links x {ex.space.size()} candidates is more than "
                f"{MAP_BUDGET:,} scorings. Run {how}."
            )
        self.say(f"scoring the space on {len(edges)} edge devices x {len(links)} links")
        try:
            sw = run_sweep(spec, edges, links, explorer=ex)
        except InputError as exc:
            return None, f"The deployment map could not be scored: {exc}"
        left = (
            f"; left out: {', '.join(integer)} (int8 only, and the networks are float32)"
            if integer
            else ""
        )
        return sw, (
            f"scored for this report over the shipped edge devices and links (server "
            f"{ex.server.name}){left}; for other profiles run {how}"
        )

    def _codec_networks(self) -> list[tuple[str, float]]:
        """The networks whose codecs the report shows (a spec with codecs): the dense one,
        then each other network on the front, at most :data:`CODEC_NETWORKS` in all."""
        if not self.spec.codecs:
            return []
        nets = [("dense", 1.0)]
        for _, r in self.front.iterrows():
            c = candidate_of(r)
            net = ("dense", 1.0) if c.network[0] == "dense" else c.network
            if net not in nets:
                nets.append(net)
        return nets[:CODEC_NETWORKS]


def _device_kind(name: str) -> str:
    """A shipped device profile's kind (``edge`` or ``server``); ``""`` if unreadable."""
    from dse.costmodel import load_device

    try:
        return load_device(name).kind
    except InputError:
        return ""


def _integer_only(name: str) -> bool:
    """Whether a shipped device profile computes in integers only."""
    from dse.costmodel import load_device

    return load_device(name).integer_only

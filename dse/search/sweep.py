"""A sweep over deployments: one spec's space scored on every (edge, link, server).

Trained networks depend on no device and no link, so once the spec's networks are in the
cache every deployment is scored without training: per network, which exit answers each
sample and whether it is right is decided once (:func:`~dse.search.evaluate.batch`), and
each deployment only prices the paths (one cost table per network and deployment).

Per deployment the sweep keeps the spec's constraints and adds one of its own: the edge
part must fit the edge device's memory (``edge_memory <= mem_capacity`` of its profile),
since a board that cannot hold the network cannot run it. Every deployment is decided as
a study's answer is (:func:`~dse.search.decision.decide`, on the same points the study's
exhaustive grid holds: the space and, where the spec's thresholds do not start at 0,
Edgent's right-sized points): the learned floor, accuracy ties within one standard error
going to the cheaper point, the knee with accuracy counted in standard errors. The same
rule, on the edge-only candidates alone (nothing is ever sent: the last cut, or every
sample answered by an exit on the edge) and on the server-only ones (cut 0), gives the best
of either end; *a split wins* where the answer itself is a split, a cut inside the network
that sends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dse.costmodel import load_device, load_link
from dse.errors import InputError
from dse.search.baselines import edgent_candidates, edgent_in_space
from dse.search.decision import Decision, Floor, Point, alternatives, decide, place
from dse.search.evaluate import Batch, batch
from dse.search.explorer import Explorer
from dse.search.frames import flat_row
from dse.search.grid_limit import check_grid_size
from dse.search.recommendation import task_floors, validation_size
from dse.search.space import Candidate
from dse.search.spec import Constraint, StudySpec, with_capacity

SWEEP_VERSION = 2  # bump when a sweep file's fields change
#: the metrics each chosen configuration keeps (besides the spec's objectives)
SHOWN = (
    "accuracy",
    "test_accuracy",
    "latency_mean",
    "latency_p95",
    "bandwidth",
    "edge_energy",
    "edge_memory",
    "storage",
    "edge_s",
    "transfer_s",
    "server_s",
)


@dataclass(frozen=True)
class Choice:
    """One chosen configuration: its knobs and metrics (SI units)."""

    knobs: dict[str, Any]
    metrics: dict[str, float]

    @property
    def split(self) -> int:
        return int(self.knobs["split"])


@dataclass(frozen=True)
class DeploymentResult:
    """The best configuration of the space on one (edge, link, server)."""

    edge: str
    link: str
    server: str
    candidates: int
    feasible: int
    front: int  # distinct Pareto points above the learned floor
    splits_on_front: int  # of them, cuts inside the network that send
    best: Choice | None  # the answer (None: nothing feasible, or nothing learned)
    edge_only: Choice | None  # the answer among the edge-only candidates
    server_only: Choice | None  # the answer among the server-only candidates
    last_cut: int  # the edge-only cut (nothing sent)
    seconds: float  # scoring this deployment
    reason: str = ""  # why nothing is recommended (empty when something is)

    @property
    def split_wins(self) -> bool:
        """Whether the answer is a split: a cut inside the network that sends (so the rule
        preferred it to every edge-only and server-only configuration)."""
        return self.where == "split"

    @property
    def where(self) -> str:
        """``edge-only``, ``server-only``, ``split`` or ``none`` (nothing recommended)."""
        return (
            "none" if self.best is None else place(self.best.split, self.best.metrics["bandwidth"])
        )


@dataclass(frozen=True)
class Sweep:
    """A spec's space scored on every combination of edges, links and servers."""

    spec: str  # the spec's name
    objectives: dict[str, str]
    constraints: tuple[str, ...]
    results: tuple[DeploymentResult, ...]
    setup_seconds: float  # loading networks and deciding every candidate, once
    cut_names: tuple[str, ...] = ()  # per cut index: the layer it follows ('' for cut 0)
    exit_names: tuple[str, ...] = ()
    trained: tuple[str, ...] = field(default=())  # networks trained by this sweep (--train)

    @property
    def edges(self) -> list[str]:
        return list(dict.fromkeys(r.edge for r in self.results))

    @property
    def links(self) -> list[str]:
        return list(dict.fromkeys(r.link for r in self.results))

    def as_dict(self) -> dict[str, Any]:
        def choice(c: Choice | None) -> dict[str, Any] | None:
            return None if c is None else {"knobs": c.knobs, "metrics": c.metrics}

        return {
            "version": SWEEP_VERSION,
            "spec": self.spec,
            "objectives": self.objectives,
            "constraints": list(self.constraints),
            "setup_seconds": self.setup_seconds,
            "cut_names": list(self.cut_names),
            "exit_names": list(self.exit_names),
            "trained": list(self.trained),
            "results": [
                {
                    "edge": r.edge,
                    "link": r.link,
                    "server": r.server,
                    "candidates": r.candidates,
                    "feasible": r.feasible,
                    "front": r.front,
                    "splits_on_front": r.splits_on_front,
                    "last_cut": r.last_cut,
                    "seconds": r.seconds,
                    "where": r.where,
                    "split_wins": r.split_wins,
                    "best": choice(r.best),
                    "edge_only": choice(r.edge_only),
                    "server_only": choice(r.server_only),
                    "reason": r.reason,
                }
                for r in self.results
            ],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "<sweep>") -> Sweep:
        if d.get("version") != SWEEP_VERSION:
            raise InputError(
                where,
                "version",
                f"sweep file version {d.get('version')!r}, this dse reads {SWEEP_VERSION}",
                "run `dse sweep` again",
            )

        def choice(c: dict[str, Any] | None) -> Choice | None:
            return None if c is None else Choice(dict(c["knobs"]), dict(c["metrics"]))

        results = tuple(
            DeploymentResult(
                r["edge"],
                r["link"],
                r["server"],
                int(r["candidates"]),
                int(r["feasible"]),
                int(r["front"]),
                int(r["splits_on_front"]),
                choice(r["best"]),
                choice(r["edge_only"]),
                choice(r["server_only"]),
                int(r["last_cut"]),
                float(r["seconds"]),
                str(r.get("reason", "")),
            )
            for r in d["results"]
        )
        return cls(
            d["spec"],
            dict(d["objectives"]),
            tuple(d["constraints"]),
            results,
            float(d["setup_seconds"]),
            tuple(d.get("cut_names", ())),
            tuple(d.get("exit_names", ())),
            tuple(d.get("trained", ())),
        )


def load_sweep(path: str | Path) -> Sweep:
    """A sweep written by ``dse sweep --json``."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(
            p, "<file>", f"cannot read: {exc.strerror}", "give the file `dse sweep --json` wrote"
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            p, "<file>", f"not JSON: {exc.msg}", "give the file `dse sweep --json` wrote"
        ) from None
    if not isinstance(data, dict) or "results" not in data:
        raise InputError(p, "results", "missing", "give the file `dse sweep --json` wrote")
    return Sweep.from_dict(data, where=str(p))


def missing_networks(explorer: Explorer) -> list[str]:
    """The space's networks not in the cache (``dense``, ``METHOD@DENSITY``)."""
    out = []
    for method, density in explorer.space.networks():
        if not explorer.cache.path(explorer.network_spec(method, density).key).exists():
            out.append("dense" if method == "dense" or density >= 1 else f"{method}@{density:g}")
    return out


def profile_names(text: str | Sequence[str], *, option: str) -> list[str]:
    """A comma-separated list of profile names (or .toml paths), each named once."""
    items = [x.strip() for x in text.split(",")] if isinstance(text, str) else list(text)
    items = [x for x in items if x]
    if not items:
        raise InputError(
            "command line", option, "names no profile", "give one or more names separated by commas"
        )
    return list(dict.fromkeys(items))


def run_sweep(
    spec: StudySpec,
    edges: Sequence[str],
    links: Sequence[str],
    servers: Sequence[str] | None = None,
    *,
    explorer: Explorer | None = None,
    train: bool = False,
    progress: bool = False,
    say: Callable[[str], None] | None = None,
) -> Sweep:
    """Score ``spec``'s space on every (edge, link, server) and pick each one's best.

    ``servers`` defaults to the spec's. Networks come from the cache; one that is missing
    is an InputError naming it, unless ``train`` (then it is trained once and cached).
    Profiles are checked before anything is scored.
    """
    edge_p = [load_device(e) for e in edges]
    link_p = [load_link(x) for x in links]
    server_p = [load_device(s) for s in (servers or [spec.server])]
    start = time.perf_counter()
    ex = explorer or Explorer(spec, progress=progress)
    where = spec.path or spec.name
    mode = spec.training.get("mode", "central")
    if mode != "central":
        raise InputError(
            where,
            "training.mode",
            f"a {mode} network depends on its cut, and a sweep scores one network per sparsity",
            'sweep the spec with mode = "central"',
        )
    check_grid_size(ex.space.size(), where=where)
    missing = missing_networks(ex)
    if missing and not train:
        raise InputError(
            where,
            "networks",
            f"{len(missing)} of {len(ex.space.networks())} "
            f"networks are not trained: {', '.join(missing)}",
            f"run `dse study run {where}` (or `dse study grid`) first, or pass "
            "--train to train them now (once; cached)",
        )
    if missing and say is not None:
        say(f"training {len(missing)} network(s): {', '.join(missing)}")
    by_net: dict[tuple[str, float], list[Candidate]] = {}
    scored = list(ex.space.enumerate())
    if not edgent_in_space(spec):  # as the exhaustive grid holds them (dse.search.baselines)
        scored += edgent_candidates(ex)
    for c in scored:
        by_net.setdefault(c.network, []).append(c)
    batches: list[tuple[Any, Batch]] = []
    for net, cands in by_net.items():
        scorer = ex.scorer(*net)
        batches.append((scorer, batch(scorer, cands)))
    knobs = pd.DataFrame(
        [flat_row(c.as_dict(), {}) for _, b in batches for c in b.candidates]
    ).assign(source="grid", trial=np.nan)
    answer = Answer(task_floors(spec, ex), validation_size(ex), knobs)
    setup = time.perf_counter() - start
    cuts = ex.reference_graph.cuts
    last = len(cuts) - 1
    results = []
    for e in edge_p:
        for x in link_p:
            for s in server_p:
                results.append(_deployment_result(spec, batches, answer, e, x, s, last))
                if say is not None:
                    r = results[-1]
                    say(f"{e.name} / {x.name} / {s.name}: {r.where} ({r.seconds:.2f} s)")
    return Sweep(
        spec.name,
        dict(spec.objectives),
        tuple(str(c) for c in _spec_constraints(spec.constraints)),
        tuple(results),
        setup,
        tuple("" if c.index == 0 else str(c.after) for c in cuts),
        tuple(ex.exit_names),
        tuple(missing),
    )


@dataclass(frozen=True, eq=False)
class Answer:
    """What deciding a deployment needs besides its costs: the floors, the validation
    size and the candidates' knobs (one row each, in the batches' order)."""

    floors: tuple[Floor, ...]
    validation_samples: int
    knobs: pd.DataFrame


def _spec_constraints(constraints: Sequence[Constraint]) -> tuple[Constraint, ...]:
    """The spec's own constraints, without the one its edge's memory capacity added."""
    return tuple(c for c in constraints if not c.origin)


def _deployment_result(
    spec: StudySpec,
    batches: Sequence[tuple[Any, Batch]],
    answer: Answer,
    edge: Any,
    link: Any,
    server: Any,
    last: int,
) -> DeploymentResult:
    start = time.perf_counter()
    cols: dict[str, list[np.ndarray]] = {}
    for scorer, b in batches:
        costs = b.costs(scorer.redeployed(edge, server, link))
        for name, v in [*b.fixed.items(), *costs.items()]:
            cols.setdefault(name, []).append(v)
    m = {k: np.concatenate(v) for k, v in cols.items()}
    ok = np.ones(len(answer.knobs), dtype=bool)
    # this edge's capacity, not the spec's
    for c in with_capacity(_spec_constraints(spec.constraints), edge):
        ok &= np.array([c.violation(v) <= 0 for v in m[c.metric]])
    rows = answer.knobs.assign(**m, feasible=ok)
    decision = decide(
        rows,
        objectives=spec.objectives,
        floors=answer.floors,
        validation_samples=answer.validation_samples,
    )
    ends = {label: a.point for a in alternatives(decision) for label in a.labels}
    splits = sum(
        place(p.config.split, float(p.row["bandwidth"])) == "split" for p in decision.front
    )
    return DeploymentResult(
        edge.name,
        link.name,
        server.name,
        len(rows),
        int(ok.sum()),
        len(decision.front),
        splits,
        _choice(decision.recommended, spec),
        _choice(ends.get("edge-only"), spec),
        _choice(ends.get("server-only"), spec),
        last,
        time.perf_counter() - start,
        decision.reason,
    )


def _choice(point: Point | None, spec: StudySpec) -> Choice | None:
    """A decided point as the sweep keeps it: its canonical knobs, the objectives and the
    :data:`SHOWN` metrics."""
    if point is None:
        return None
    shown = dict.fromkeys([*spec.objectives, *SHOWN])
    return Choice(point.config.as_dict(), {k: float(point.row[k]) for k in shown if k in point.row})


def answer_choice(decision: Decision, spec: StudySpec) -> Choice | None:
    """A study's answer as a deployment's best configuration (the deployment map's cell
    for the study's own deployment)."""
    return _choice(decision.recommended, spec)

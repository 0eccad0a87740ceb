"""A sweep over deployments: one spec's space scored on every (edge, link, server).

Trained networks depend on no device and no link, so once the spec's networks are in the
cache every deployment is scored without training: per network, which exit answers each
sample and whether it is right is decided once (:func:`~dse.search.evaluate.batch`), and
each deployment only prices the paths (one cost table per network and deployment).

Per deployment the sweep keeps the spec's constraints and adds one of its own: the edge
part must fit the edge device's memory (``edge_memory <= mem_capacity`` of its profile),
since a board that cannot hold the network cannot run it. Among the feasible candidates
it picks the one a study's report recommends: the knee of the feasible front, the point
closest to the ideal when every objective is scaled to [0, 1] over that deployment's
feasible candidates. The same rule picks the best edge-only candidate (nothing is ever
sent: the last cut, or every sample answered by an exit on the edge) and the best
server-only one (cut 0); *a split wins* where the knee is neither, a cut inside the network
that sends, i.e. a split is closer to the ideal than the best of either end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dse.costmodel import load_device, load_link
from dse.errors import InputError
from dse.search.evaluate import Batch, batch
from dse.search.explorer import Explorer
from dse.search.pareto import Ruler, knee, pareto_mask
from dse.search.space import Candidate
from dse.search.spec import Constraint, StudySpec, check_grid_size, with_capacity

SWEEP_VERSION = 1  # bump when a sweep file's fields change
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
    front: int  # feasible Pareto points
    splits_on_front: int  # of them, cuts inside the network
    best: Choice | None  # the knee of the feasible front (None: nothing feasible)
    edge_only: Choice | None  # the knee of the feasible edge-only candidates
    server_only: Choice | None  # the knee of the feasible server-only candidates
    last_cut: int  # the edge-only cut (nothing sent)
    seconds: float  # scoring this deployment

    @property
    def split_wins(self) -> bool:
        """Whether the best configuration is a split: a cut inside the network that sends
        (closer to the ideal than the best edge-only and server-only configurations)."""
        return self.where == "split"

    @property
    def where(self) -> str:
        """``edge-only``, ``server-only``, ``split`` or ``none`` (nothing feasible)."""
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


def place(split: int, bandwidth: float) -> str:
    """Where a configuration runs: ``server-only`` (cut 0), ``edge-only`` (nothing sent:
    the last cut, or every sample answered on the edge) or ``split``."""
    return "server-only" if split == 0 else "edge-only" if bandwidth <= 0 else "split"


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
    for c in ex.space.enumerate():
        by_net.setdefault(c.network, []).append(c)
    batches: list[tuple[Any, Batch]] = []
    for net, cands in by_net.items():
        scorer = ex.scorer(*net)
        batches.append((scorer, batch(scorer, cands)))
    setup = time.perf_counter() - start
    cuts = ex.reference_graph.cuts
    last = len(cuts) - 1
    results = []
    for e in edge_p:
        for x in link_p:
            for s in server_p:
                results.append(_deployment_result(spec, batches, e, x, s, last))
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


def _spec_constraints(constraints: Sequence[Constraint]) -> tuple[Constraint, ...]:
    """The spec's own constraints, without the one its edge's memory capacity added."""
    return tuple(c for c in constraints if not c.origin)


def _deployment_result(
    spec: StudySpec,
    batches: Sequence[tuple[Any, Batch]],
    edge: Any,
    link: Any,
    server: Any,
    last: int,
) -> DeploymentResult:
    start = time.perf_counter()
    names = list(spec.objectives)
    cols: dict[str, list[np.ndarray]] = {}
    knobs: list[Candidate] = []
    for scorer, b in batches:
        costs = b.costs(scorer.redeployed(edge, server, link))
        for name, v in [*b.fixed.items(), *costs.items()]:
            cols.setdefault(name, []).append(v)
        knobs.extend(b.candidates)
    m = {k: np.concatenate(v) for k, v in cols.items()}
    ok = np.ones(len(knobs), dtype=bool)
    # this edge's capacity, not the spec's
    for c in with_capacity(_spec_constraints(spec.constraints), edge):
        ok &= np.array([c.violation(v) <= 0 for v in m[c.metric]])
    splits = np.array([c.split for c in knobs])
    values = np.column_stack([m[n] for n in names])
    feas = np.flatnonzero(ok)
    best = edge_only = server_only = None
    front = on_front_splits = 0
    if len(feas):
        ruler = Ruler.fit(spec.objectives, values[feas])
        losses = ruler.loss(values[feas])
        mask = pareto_mask(losses)
        front = int(mask.sum())
        on_server = splits[feas] == 0  # the input is sent: server-only
        on_edge = ~on_server & (m["bandwidth"][feas] <= 0)  # nothing is sent: edge-only
        on_front_splits = int((mask & ~on_server & ~on_edge).sum())

        def pick(sel: np.ndarray) -> Choice | None:
            if not sel.any():
                return None
            rows = feas[sel]
            i = int(rows[knee(losses[sel])])
            shown = dict.fromkeys([*names, *SHOWN])
            return Choice(knobs[i].as_dict(), {k: float(m[k][i]) for k in shown})

        best = pick(np.ones(len(feas), dtype=bool))
        edge_only = pick(on_edge)
        server_only = pick(on_server)
    return DeploymentResult(
        edge.name,
        link.name,
        server.name,
        len(knobs),
        len(feas),
        front,
        on_front_splits,
        best,
        edge_only,
        server_only,
        last,
        time.perf_counter() - start,
    )

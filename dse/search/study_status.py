"""What a stored study holds now: trials per state, networks used and trainings run,
hypervolume, the workers running it, any trial no table can read, and (given the
decision) the answer and the front's distinct points, counted as every view counts them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from dse.search.decision import Decision
from dse.search.explorer import CODED_PREFIX, TRAINED_PREFIX
from dse.search.frames import study_hypervolume, study_ruler, trials_frame, unreadable_trials
from dse.search.spec import StudySpec
from dse.search.storage import WORKER_ATTR, fail_reason
from dse.search.workers import live_workers


def status(
    study: optuna.Study,
    spec: StudySpec,
    storage: str | None = None,
    *,
    decision: Decision | None = None,
    exit_names: Sequence[str] = (),
) -> dict[str, Any]:
    """Trials per state, networks used and trainings run, hypervolume, the workers
    running it now and, given ``decision`` (:func:`~dse.search.recommendation.recommend`'s),
    the answer and its front: ``front`` (distinct points, their configurations, the
    points under the floor) and ``recommended`` (its label, source and trial; None with
    ``reason``).

    ``networks_used`` counts the distinct networks (method, density) the complete trials
    were scored on; ``trainings_run`` counts the trainings this study's own processes ran
    (``dse study run``/``resume``/``grid``, ``dse compare``, ``dse verify``), as each wrote
    them to the study, one per worker that trained a network (``trainings_by_worker``;
    ``trained_twice``: the networks more than one worker trained, e.g. workers with caches
    of their own). A network used but not trained by the study came from the cache,
    trained earlier by another study, ``dse train``, or a dse version that kept no record.
    ``storage`` is no longer read: the workers are registered in the study itself.
    """
    counts = {s.name: 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] += 1
    df = trials_frame(study)
    networks = set()
    if not df.empty:
        networks = set(zip(df.knob_method, df.knob_density, strict=True))
    records = {k: v for k, v in study.user_attrs.items() if k.startswith(TRAINED_PREFIX)}
    trained = sorted(records.values(), key=lambda v: (v["network"], str(v.get("worker", ""))))
    by_worker: dict[str, int] = {}
    per_key: dict[str, int] = {}
    for k, v in records.items():
        worker = str(v.get("worker", "(not recorded)"))
        by_worker[worker] = by_worker.get(worker, 0) + 1
        key = k[len(TRAINED_PREFIX) :].split(":", 1)[0]
        per_key[key] = per_key.get(key, 0) + 1
    ruler, source = study_ruler(study, spec)
    hv = study_hypervolume(study, spec, ruler)
    coded = [v for k, v in study.user_attrs.items() if k.startswith(CODED_PREFIX)]
    failed = [fail_reason(t) for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))]
    out: dict[str, Any] = {
        "feasible": int(df.feasible.sum()) if not df.empty else 0,
        "first_failure": failed[0] if failed else None,
        "coded": coded,
        "name": spec.name,
        "trials": {k: v for k, v in counts.items() if v},
        "networks_used": len(networks),
        "networks": sorted(networks),
        "trainings_run": len(trained),
        "trained": trained,
        "trainings_by_worker": dict(sorted(by_worker.items())),
        "trained_twice": sum(1 for n in per_key.values() if n > 1),
        "training_seconds": float(sum(v["seconds"] for v in trained)),
        "hypervolume": hv,
        "ruler": source,
        # the live workers registered in the study, and any worker with a trial running
        "workers": len(
            set(live_workers(study))
            | {
                t.system_attrs[WORKER_ATTR]
                for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if WORKER_ATTR in t.system_attrs
            }
        ),
    }
    unreadable = unreadable_trials(study)
    if unreadable:
        number, why = next(iter(unreadable.items()))
        out["unreadable"] = len(unreadable)
        out["first_unreadable"] = f"trial {number}: {why}"
    if decision is not None:
        out.update(_answer(decision, exit_names, spec))
    grid_hv = study.user_attrs.get("grid_hypervolume")
    if isinstance(grid_hv, int | float) and math.isfinite(grid_hv) and grid_hv > 0:
        out["hv_fraction_of_grid"] = hv / grid_hv
    return out


def _answer(decision: Decision, exit_names: Sequence[str], spec: StudySpec) -> dict[str, Any]:
    """The decision as the status holds it."""
    rec = decision.recommended
    tasks = spec.tasks if len(spec.tasks) > 1 else ()
    return {
        "front": {
            "points": len(decision.front),
            "configurations": decision.configurations,
            "below_floor": len(decision.below_floor),
        },
        "recommended": None
        if rec is None
        else {
            "trial": rec.trial,
            "source": rec.source,
            "label": rec.config.label(
                exit_names, tasks, sends=float(rec.row.get("bandwidth", 1.0)) > 0
            ),
        },
        "reason": decision.reason or None,
        "grid": decision.grid_note,
    }

"""``dse verify``: the answer and the next points of a study's front retrained alone (only
their exits attached), their test accuracy measured again against the shared training's."""

from __future__ import annotations

import time
from typing import Any

import optuna

from dse.search.decision import Decision
from dse.search.explorer import Explorer
from dse.search.frames import plain
from dse.search.recommendation import recommend
from dse.search.spec import StudySpec


def verify(
    study: optuna.Study,
    spec: StudySpec,
    *,
    top: int = 3,
    progress: bool = True,
    explorer: Explorer | None = None,
    decision: Decision | None = None,
) -> list[dict[str, Any]]:
    """Retrain the answer and the next front points with only their exits; compare test
    accuracy.

    ``top`` distinct networks are retrained: the recommended point first, then the
    front's points by accuracy (:func:`~dse.search.recommendation.recommend`'s, or
    ``decision``'s), one per (sparsity, exits used), since points differing only in cut
    or threshold share one retraining. With nothing above the learned floor, the points
    under it are retrained instead (does training alone lift them?).

    The study scored every exit subset from one network trained with all exits attached;
    here each chosen configuration is trained as it would be deployed, and its test
    accuracy under the same exit policy is measured again.
    """
    explorer = explorer or Explorer(spec, progress=progress)
    explorer.study = study  # its retrainings are the study's
    decision = decision or recommend(study, spec, explorer)
    first = [decision.recommended] if decision.recommended is not None else []
    points = [*first, *(p for p in decision.front if p is not decision.recommended)]
    if not points:  # nothing learned: whether training a configuration alone changes that
        points = list(decision.below_floor)
    results = []
    seen: set[tuple[Any, ...]] = set()
    for point in points:
        cand, row = point.config, point.row
        # one retraining per deployed network: points that differ only in the cut or
        # the threshold would retrain the same network with the same exits
        if (cand.network, cand.exits) in seen:
            continue
        if len(seen) == top:
            break
        seen.add((cand.network, cand.exits))
        start = time.perf_counter()
        m, cached = explorer.evaluate_alone(cand, cache=explorer.cache)
        results.append(
            {
                "trial": point.trial,
                "source": point.source,
                "recommended": point is decision.recommended,
                "knobs": cand.as_dict(),
                "old_test_accuracy": float(row["test_accuracy"]),
                "new_test_accuracy": m.test_accuracy,
                "delta": m.test_accuracy - float(row["test_accuracy"]),
                "old_latency_mean": float(row["latency_mean"]),
                "new_latency_mean": m.latency_mean,
                "seconds": time.perf_counter() - start,
                "cached": cached,
                # several tasks: each one's test accuracy before and after
                **(
                    {
                        "tasks": {
                            t: [float(row[f"test_accuracy.{t}"]), b]
                            for t, b in zip(m.tasks, m.test_task_accuracy, strict=True)
                        }
                    }
                    if len(m.tasks) > 1
                    else {}
                ),
            }
        )
    study.set_user_attr("verify", plain(results))
    return results

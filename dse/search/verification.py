"""``dse verify``: the chosen configurations of a study's front retrained alone (only
their exits attached), their test accuracy measured again against the shared training's."""

from __future__ import annotations

import time
from typing import Any

import optuna

from dse.search.explorer import Explorer
from dse.search.frames import front_frame, plain
from dse.search.space import Candidate
from dse.search.spec import StudySpec


def verify(
    study: optuna.Study,
    spec: StudySpec,
    *,
    top: int = 3,
    progress: bool = True,
    explorer: Explorer | None = None,
) -> list[dict[str, Any]]:
    """Retrain the top front configurations with only their exits; compare test accuracy.

    ``top`` distinct networks are retrained: the best front rows, one per (sparsity,
    exits used), since rows differing only in cut or threshold share one retraining.

    The study scored every exit subset from one network trained with all exits attached;
    here each chosen configuration is trained as it would be deployed, and its test
    accuracy under the same exit policy is measured again.
    """
    explorer = explorer or Explorer(spec, progress=progress)
    explorer.study = study  # its retrainings are the study's
    results = []
    seen: set[tuple[Any, ...]] = set()
    for _, row in front_frame(study, spec).iterrows():
        cand = Candidate.from_row(row)
        # one retraining per deployed network: front rows that differ only in the cut or
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
                "trial": int(row.trial),
                "knobs": {k[5:]: row[k] for k in row.index if k.startswith("knob_")},
                "old_test_accuracy": float(row.test_accuracy),
                "new_test_accuracy": m.test_accuracy,
                "delta": m.test_accuracy - float(row.test_accuracy),
                "old_latency_mean": float(row.latency_mean),
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

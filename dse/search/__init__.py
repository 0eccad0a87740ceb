"""The search: a study spec, its space of candidates, scoring a candidate from a cached
network and the cost model (no training), the Optuna study, Pareto fronts, the exhaustive
grid and the baselines as restricted spaces, and the registry of parallel workers.

Entry points: :func:`load_spec` -> :class:`StudySpec`; :class:`Candidate`;
:class:`Explorer`; :func:`run_study`, :func:`load_study`, :func:`status`, :func:`verify`;
:func:`compare`, :func:`ensure_grid`; :func:`compare_tasks` (one backbone for several
tasks against one network per task); :func:`hypervolume`, :func:`pareto_mask`;
:func:`run_sweep` -> :class:`Sweep` (the space scored on every edge x link x server from
cached networks, :func:`batch` deciding each candidate once) and :func:`load_sweep`.
"""

from __future__ import annotations

from dse.lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "METRICS": "spec",
        "StudySpec": "spec",
        "load_spec": "spec",
        "parse_spec": "spec",
        "Candidate": "space",
        "exit_label": "space",
        "Space": "space",
        "Metrics": "evaluate",
        "Scorer": "evaluate",
        "make_scorer": "evaluate",
        "Explorer": "explorer",
        "create_study": "study",
        "csv_text": "frames",
        "front_frame": "frames",
        "importances": "frames",
        "load_study": "study",
        "run_study": "study",
        "status": "study_status",
        "study_hypervolume": "frames",
        "study_ruler": "frames",
        "tidy_front": "frames",
        "trials_frame": "frames",
        "verify": "verification",
        "record_of": "frames",
        "stored_study": "study",
        "BASELINES": "baselines",
        "Grid": "baselines",
        "compare": "baselines",
        "ensure_grid": "baselines",
        "grid_paths": "baselines",
        "load_grid": "baselines",
        "restrict": "baselines",
        "verdicts": "baselines",
        "edgent_in_space": "baselines",
        "TaskComparison": "tasks",
        "compare_tasks": "tasks",
        "single_task_spec": "tasks",
        "Ruler": "pareto",
        "hypervolume": "pareto",
        "knee": "pareto",
        "pareto_mask": "pareto",
        "die_with_parent": "workers",
        "plain": "frames",
        "data_of": "explorer",
        "check_data": "spec",
        "check_name": "spec",
        "storage_for": "storage",
        "Constraint": "spec",
        "capacity_constraint": "spec",
        "with_capacity": "spec",
        "Batch": "evaluate",
        "batch": "evaluate",
        "COST_FIELDS": "evaluate",
        "Sweep": "sweep",
        "DeploymentResult": "sweep",
        "Choice": "sweep",
        "run_sweep": "sweep",
        "load_sweep": "sweep",
        "missing_networks": "sweep",
        "profile_names": "sweep",
    },
)

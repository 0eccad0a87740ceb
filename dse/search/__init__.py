"""The search: a study spec, its space of candidates, scoring a candidate from a cached
network and the cost model (no training), the Optuna study, Pareto fronts, the exhaustive
grid and the baselines as restricted spaces, and the registry of parallel workers.

What other stages and users call, by module:

- a spec: :func:`load_spec`, :func:`parse_spec` -> :class:`StudySpec` (:data:`METRICS`
  it may name); :func:`check_study_name`, :func:`check_data_table` (a study's name, a
  ``[data]`` table, checked as a spec's are);
- a candidate and its score: :class:`Candidate`, :func:`exit_label`; :class:`Explorer`
  (a spec's networks and scorers; :func:`load_data_table`), :class:`Scorer`,
  :class:`Metrics`; :func:`batch` -> :class:`Batch` (many candidates at once,
  :data:`COST_FIELDS`);
- the study: :func:`create_study`, :func:`load_study`, :func:`stored_study`,
  :func:`run_study`; :func:`storage_for`, :func:`storage_place`, :func:`stored_elsewhere`;
  :func:`status`; :func:`verify`; :func:`die_with_parent` (for helper worker processes);
- a study read back: :func:`trials_frame`, :func:`front_frame`, :func:`tidy_front`,
  :func:`csv_text`, :func:`record_of`, :func:`importances`, :func:`study_ruler`,
  :func:`study_hypervolume`; :func:`plain` (any of it as JSON can store it);
- fronts: :class:`Ruler`, :func:`hypervolume`, :func:`pareto_mask`, :func:`knee`;
- the grid and baselines: :data:`BASELINES`, :class:`Grid`, :func:`ensure_grid`,
  :func:`load_grid`, :func:`grid_paths`, :func:`compare`, :func:`restrict`,
  :func:`verdicts`;
- several tasks: :func:`compare_tasks` -> :class:`TaskComparison`,
  :func:`single_task_spec`;
- deployments: :func:`run_sweep` -> :class:`Sweep` (of :class:`DeploymentResult`, each
  with its :class:`Choice`), :func:`load_sweep`, :func:`profile_names`,
  :func:`answer_choice` (a study's answer as its own deployment's cell);
- the answer, the same in every view: :func:`recommend` -> :class:`Decision` (of
  :class:`Point`, with its :class:`Floor` s and the :class:`Unlearned` outputs;
  :func:`decision_grid`, :data:`GRID_BUDGET`, :func:`untrained_networks`,
  :func:`task_floors`), :func:`decide` on any
  scored points, :func:`alternatives` (each an :class:`Alternative`), :func:`place`,
  :func:`standard_error`; as tables and JSON: :func:`points_frame`, :func:`rows_frame`,
  :func:`decision_record`, :func:`point_record` (:data:`POINT_COLUMNS` first).

Everything else is the modules' own; tests import it from the module that defines it.
"""

from __future__ import annotations

from dse.lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        # spec
        "METRICS": "spec",
        "StudySpec": "spec",
        "load_spec": "spec",
        "parse_spec": "spec",
        "check_study_name": "spec",
        "check_data_table": "spec",
        "check_grid_size": "grid_limit",
        # a candidate and its score
        "Candidate": "space",
        "exit_label": "space",
        "Explorer": "explorer",
        "load_data_table": "explorer",
        "Scorer": "evaluate",
        "Metrics": "evaluate",
        "Batch": "evaluate",
        "batch": "evaluate",
        "COST_FIELDS": "evaluate",
        # the study
        "create_study": "study",
        "load_study": "study",
        "stored_study": "study",
        "run_study": "study",
        "storage_for": "storage",
        "storage_place": "study",
        "stored_elsewhere": "study",
        "status": "study_status",
        "verify": "verification",
        "die_with_parent": "workers",
        # a study read back
        "trials_frame": "frames",
        "front_frame": "frames",
        "tidy_front": "frames",
        "csv_text": "frames",
        "record_of": "frames",
        "importances": "frames",
        "study_ruler": "frames",
        "study_hypervolume": "frames",
        "plain": "frames",
        # fronts
        "Ruler": "pareto",
        "hypervolume": "pareto",
        "pareto_mask": "pareto",
        "knee": "pareto",
        # the grid and baselines
        "BASELINES": "baselines",
        "Grid": "baselines",
        "ensure_grid": "baselines",
        "load_grid": "baselines",
        "grid_paths": "baselines",
        "compare": "baselines",
        "restrict": "baselines",
        "verdicts": "baselines",
        # several tasks
        "TaskComparison": "tasks",
        "compare_tasks": "tasks",
        "single_task_spec": "tasks",
        # deployments
        "Sweep": "sweep",
        "DeploymentResult": "sweep",
        "Choice": "sweep",
        "run_sweep": "sweep",
        "load_sweep": "sweep",
        "profile_names": "sweep",
        "answer_choice": "sweep",
        # the answer
        "Decision": "decision",
        "Floor": "decision",
        "Point": "decision",
        "Unlearned": "decision",
        "Alternative": "decision",
        "decide": "decision",
        "alternatives": "decision",
        "place": "decision",
        "standard_error": "decision",
        "recommend": "recommendation",
        "decision_grid": "recommendation",
        "untrained_networks": "recommendation",
        "task_floors": "recommendation",
        "points_frame": "recommendation",
        "rows_frame": "recommendation",
        "decision_record": "recommendation",
        "point_record": "recommendation",
        "GRID_BUDGET": "recommendation",
        "POINT_COLUMNS": "recommendation",
    },
)

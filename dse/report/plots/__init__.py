"""Figures of a study: compute the data first (``*_info(...) -> NamedTuple``), then render.

Every figure has a pure compute function returning a NamedTuple of plain numbers (which
trials are on the front, the best cut per bandwidth, ...), which tests check, and a
``render_*(info, path)`` that draws it with matplotlib and writes ``path`` as PNG and SVG
(``formats`` and ``dpi`` choose, for tests: PNG alone at a low resolution is far faster).
Info tuples hold SI units (s, bytes, J, FLOP, fractions); renderers show human units
(ms, kB, mJ, %), picked per axis so that the numbers read well.

One module per figure family (front, costs per layer and cut, exits, bandwidth, density,
the search, tasks, codecs, deployments, training); they alone in dse import matplotlib,
and never touch pyplot's global state: figures are made with ``matplotlib.figure.Figure``
directly.
"""

from __future__ import annotations

from dse.lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "metric_axis": "draw",
        "FORMATS": "draw",
        "DPI": "draw",
        "BASELINE_STYLE": "front",
        "FrontInfo": "front",
        "front_mask": "front",
        "knee_row": "front",
        "front_info": "front",
        "render_front": "front",
        "LayerProfileInfo": "costs",
        "layer_profile_info": "costs",
        "render_layer_profile": "costs",
        "SplitSweepInfo": "costs",
        "split_sweep_info": "costs",
        "render_split_sweep": "costs",
        "ExitInfo": "exits",
        "exit_info": "exits",
        "render_exits": "exits",
        "REGIMES": "bandwidth",
        "REGIME_C": "bandwidth",
        "BandwidthInfo": "bandwidth",
        "bandwidth_info": "bandwidth",
        "regime_spans": "bandwidth",
        "render_bandwidth": "bandwidth",
        "DensityInfo": "density",
        "density_info": "density",
        "render_density": "density",
        "HypervolumeInfo": "search",
        "hypervolume_info": "search",
        "render_hypervolume": "search",
        "ImportanceInfo": "search",
        "importance_info": "search",
        "render_importance": "search",
        "TasksInfo": "tasks",
        "tasks_info": "tasks",
        "render_tasks": "tasks",
        "REFERENCE_CODEC": "codecs",
        "RateAccuracyInfo": "codecs",
        "rate_accuracy_info": "codecs",
        "render_rate_accuracy": "codecs",
        "DeploymentMapInfo": "deployments",
        "deployment_map_info": "deployments",
        "render_deployment_map": "deployments",
        "TrainingInfo": "training",
        "training_info": "training",
        "render_training": "training",
    },
)

"""The cost model: a network's layer graph (torch.fx + fvcore), device and link profiles,
per-layer latency, energy and memory on a device, a cut's transfer, stored bytes of sparse
weights, and the calibration that fits a profile to a measured machine.

Entry points: :func:`build_graph` -> :class:`LayerGraph`; :func:`load_device` /
:func:`load_link` -> :class:`DeviceProfile` / :class:`LinkProfile`; :func:`cost_table`;
:func:`profile_model`; :func:`codec_seconds` (coding the tensors at a cut, with the
:data:`CODEC_RATES` throughputs of a profile's ``[codec]`` table); :func:`training_cost`
-> :class:`TrainingCost` (training a network centrally, split or hierarchically); the modules
``devices``, ``packing`` (the packed sparse format), ``calibrate``, ``measure`` (timing
layers, kernels and programs; the measurement CSV), ``predictor`` (kernel latency
predictors) and ``coverage`` (the layer configurations a calibration timed).
"""

from __future__ import annotations

from dse.lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "LayerGraph": "graph",
        "Node": "graph",
        "build_graph": "graph",
        "site_nodes": "graph",
        "server_nodes": "graph",
        "trace": "shapes",
        "propagate_shapes": "shapes",
        "DeviceProfile": "devices",
        "LinkProfile": "devices",
        "load_device": "devices",
        "load_link": "devices",
        "list_devices": "devices",
        "list_links": "devices",
        "check_runs_float": "devices",
        "FLOAT_DTYPES": "devices",
        "CostTable": "costs",
        "FREE_KINDS": "costs",
        "cost_table": "costs",
        "layer_latency": "costs",
        "profile_model": "profiler",
        "profile_graph": "profiler",
        "to_json": "profiler",
        "sparse_kernel_summary": "profiler",
        "execution": "costs",
        "payload_bytes": "packing",
        "codec_seconds": "costs",
        "CODEC_BODY_FRACTION": "costs",
        "CODEC_LOSSLESS": "costs",
        "radio_parts": "costs",
        "transfer_time": "costs",
        "CODEC_RATES": "devices",
        "default_codec_rate": "devices",
        "OP_KINDS": "kinds",
        "parse_quantity": "units",
        "devices": "devices",
        "packing": "packing",
        "calibrate": "calibrate",
        "measure": "measure",
        "predictor": "predictor",
        "coverage": "coverage",
        "RUNTIMES": "devices",
        "pinned_threads": "measure",
        "TIMED_RUNTIMES": "devices",
        "MIN_SAMPLES": "predictor",
        "TrainingCost": "training",
        "training_cost": "training",
        "training_costs": "training",
        "training_exit": "training",
        "TRAINING_MODES": "training",
        "forward_seconds": "training",
    },
)

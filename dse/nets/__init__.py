"""The networks: the model zoo and loaders for the user's own models, predefined sparsity,
early-exit heads, data sets, and training, each distinct network trained once and cached.

Entry points: :func:`load_model` / :func:`list_models`; :func:`load_data` and
:func:`normalise` (what a data set's ``mean`` and ``std`` do to [0, 1] pixels);
:func:`train_network` -> :class:`TrainedNetwork` (through a :class:`Cache`), or
:class:`TrainingDiverged`;
:func:`attach_exits`, :func:`confidence`; :class:`HeadConfig` and
:func:`attach_task_heads` (one head per task on a shared backbone); :class:`Codec` (how
the tensors at a cut are coded: the payload's bytes, encode, decode); the modules
``sparsity`` and ``codecs``; :func:`split_trainer` -> :class:`SplitTrainer` (split and
hierarchical training: the network trained as an edge part and a server part);
:func:`sampled_networks` / :func:`draw_networks` (the zoo's families at drawn widths and
sizes, to calibrate on).
"""

from __future__ import annotations

from dse.lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "load_model": "models",
        "list_models": "models",
        "default_input": "models",
        "model_entry": "models",
        "DataSet": "data",
        "load_data": "data",
        "list_data": "data",
        "normalise": "data",
        "Cache": "cache",
        "atomic_write_bytes": "cache",
        "check_writable": "cache",
        "key_of": "cache",
        "NetworkSpec": "training",
        "TrainConfig": "training",
        "BACKBONES": "training",
        "DEVICES": "training",
        "TrainedNetwork": "training",
        "build_network": "build",
        "example_input": "build",
        "train_network": "training",
        "learning_problem": "training",
        "chance_accuracy": "training",
        "learning_floor": "training",
        "TrainingDiverged": "training",
        "CRITERIA": "exits",
        "attach_exits": "exits",
        "confidence": "exits",
        "HeadConfig": "heads",
        "attach_task_heads": "heads",
        "sparsity": "sparsity",
        "CodecView": "split",
        "CodecWork": "split",
        "codec_outputs": "split",
        "sides": "split",
        "Codec": "codecs",
        "CODEC_DTYPES": "codecs",
        "LOSSLESS": "codecs",
        "PayloadError": "codecs",
        "decode_payload": "codecs",
        "payload_header_bytes": "codecs",
        "Quantized": "codecs",
        "dequantize": "codecs",
        "read_payload": "codecs",
        "codecs": "codecs",
        "SplitTrainer": "hierarchical",
        "split_trainer": "hierarchical",
        "sampled_networks": "variants",
        "draw_networks": "variants",
    },
)

"""Deployment: the chosen split exported as an edge program and a server program, and run
across both to check the prediction.

Entry points: :func:`export_bundle` (``dse export``: one trial of a study as a bundle
folder: ``torch.export`` programs for the edge and the server, the manifest, the study's
reference answers); :func:`load_bundle` -> :class:`Bundle` (``edge``: one sample to its
payload; ``server``: a payload to the answers), :class:`EdgeResult`, :class:`ServerResult`;
:func:`run_server` (``dse serve``: the server program behind a TCP port); :func:`run_split`
-> :class:`SplitRun` (``dse run-split``: the test split through both programs, measured
against the study's predictions); :func:`train_loopback` -> :class:`LoopbackRun` (split or
hierarchical training as two processes over loopback, the link paced to a profile).
"""

from __future__ import annotations

from dse.lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "export_bundle": "export",
        "Exported": "export",
        "choose_trial": "export",
        "Bundle": "bundle",
        "EdgeResult": "bundle",
        "ServerResult": "bundle",
        "load_bundle": "bundle",
        "read_manifest": "bundle",
        "FORMAT": "bundle",
        "run_server": "serve",
        "limits": "limits",
        "serve_bundle": "serve",
        "run_split": "runsplit",
        "SplitRun": "runsplit",
        "train_loopback": "trainloop",
        "LoopbackRun": "trainloop",
    },
)

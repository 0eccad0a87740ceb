"""Deployment: the chosen split exported as an edge program and a server program, and run
across both to check the prediction.

Entry points: :func:`export_bundle` (``dse export``: one trial of a study as a bundle
folder: ``torch.export`` programs for the edge and the server, the manifest, the study's
reference answers); :func:`load_bundle` -> :class:`Bundle` (``edge``: one sample to its
payload; ``server``: a payload to the answers), :class:`EdgeResult`, :class:`ServerResult`.
"""

from __future__ import annotations

from dse.lazy import exports

__all__, __getattr__ = exports(__name__, {
    "export_bundle": "export", "Exported": "export", "choose_trial": "export",
    "Bundle": "bundle", "EdgeResult": "bundle", "ServerResult": "bundle",
    "load_bundle": "bundle", "read_manifest": "bundle", "FORMAT": "bundle",
})

"""Words the report's sections share: a configuration's exits, cut and codec, and files
shown without a path of the machine that wrote the report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dse.nets import Codec
from dse.search import Candidate, StudySpec, exit_label

if TYPE_CHECKING:
    from dse.report.data import ReportData


def shown_path(path: str | Path) -> str:
    """A file as a report may show it: relative to the working folder, else relative to
    the shipped profiles' folder's parent (``profiles/devices/x.toml``), else its name
    alone: never an absolute path of the machine that wrote the report."""
    from dse.costmodel import devices

    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    for base in (Path.cwd(), devices.profiles_dir().parent):
        try:
            return p.resolve().relative_to(base.resolve()).as_posix()
        except (ValueError, OSError):
            continue
    return p.name


def spec_shown(spec: StudySpec) -> str:
    """The spec's file as the report shows it: relative to the working folder, or its
    name alone (never a path of the machine that wrote the report)."""
    if spec.path is None:
        return f"studies/{spec.name}.toml"
    shown = shown_path(spec.path)
    # a spec kept under another checkout's studies/ folder: where it lives here
    return (
        f"studies/{shown}"
        if "/" not in shown and Path(spec.path).parent.name == "studies"
        else shown
    )


def as_tuple(value: Any) -> tuple:
    """A list column of a trials frame (a tuple, a list or JSON text) as a tuple."""
    if isinstance(value, tuple | list):
        return tuple(value)
    if isinstance(value, str):
        return tuple(json.loads(value))
    return ()


def realised(row: Any) -> str:
    """The realised density of a trial row (weights kept over the dense network's)."""
    value = row.get("realised_density") if hasattr(row, "get") else None
    return "-" if value is None or value != value else f"{float(value):.3g}"


def lossy(codec: str) -> bool:
    """Whether a codec (canonical name) may change the tensors: anything but float32."""
    return Codec.parse(codec).lossy


def exits_text(
    candidate: Candidate,
    exit_names: Sequence[str],
    *,
    short: bool = False,
    tasks: Sequence[str] = (),
) -> str:
    """The exits a candidate uses and its threshold; with ``tasks`` (a spec with several)
    each task's threshold and the exit policy. ``short``: as every view writes it
    (:meth:`Candidate.exits_text`, ``e1+e2 @ 0.8``); else in words (``exits e1+e2 at
    threshold 0.8``)."""
    if short or not candidate.exits:
        return candidate.exits_text(exit_names, tasks)
    used = "+".join(exit_label(exit_names, j) for j in candidate.exits)
    if len(tasks) > 1:
        per = ", ".join(
            f"{t} {x:g}" for t, x in zip(tasks, candidate.thresholds(len(tasks)), strict=True)
        )
        return f"exits {used} at thresholds {per} (policy {candidate.policy})"
    return f"exits {used} at threshold {candidate.threshold:g}"


def exits_of(data: ReportData, candidate: Candidate, *, short: bool = False) -> str:
    """:func:`exits_text` with the study's exit names and tasks."""
    return exits_text(candidate, data.exit_names, short=short, tasks=data.tasks)


def cut_text(data: ReportData, k: int) -> str:
    """Cut ``k`` in words: server-only, edge-only, or the layer it follows."""
    if k == 0:
        return "cut 0 (server-only: the input is sent)"
    if k == data.last_cut:
        return f"cut {k} (edge-only: nothing is sent)"
    return f"cut {k} (after {data.graph.cuts[k].after})"


def sends(data: ReportData, candidate: Candidate, row: Mapping[str, Any] | None = None) -> bool:
    """Whether ``candidate`` sends anything: its cut does, and (given its scored ``row``)
    some sample reaches the server."""
    if float(data.graph.cuts[candidate.split].bytes) <= 0:
        return False
    return row is None or not float(row.get("bandwidth", 1.0)) == 0


def codec_text(
    data: ReportData,
    candidate: Candidate,
    row: Mapping[str, Any] | None = None,
    *,
    long: bool = False,
) -> str:
    """The codec knob of a candidate: its name, or that nothing is sent (then the codec
    decides nothing)."""
    if candidate.codec is None:
        return "-"
    if not sends(data, candidate):
        return "- (nothing sent)" if long else "-"
    if not sends(data, candidate, row):
        return (
            f"{candidate.codec}, unused: every sample leaves at an edge exit, nothing is sent"
            if long
            else "-"
        )
    return candidate.codec


def task_columns(data: ReportData) -> list[str]:
    """Each task's validation and test accuracy columns (several tasks only)."""
    return [f"{split}.{t}" for t in data.tasks for split in ("accuracy", "test_accuracy")]

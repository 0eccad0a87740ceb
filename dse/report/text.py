"""Words the report's sections share: a candidate's exits, cut and codec in words, and
files shown without a path of the machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dse.nets import Codec
from dse.search import Candidate


def _tuple(v: Any) -> tuple:
    if isinstance(v, tuple | list):
        return tuple(v)
    if isinstance(v, str):
        return tuple(json.loads(v))
    return ()


def candidate_of(row: Mapping[str, Any]) -> Candidate:
    """The Candidate of a trials/grid frame row."""
    return Candidate.from_row(row)


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


def _realised(row: Any) -> str:
    """The realised density of a trial row (weights kept over the dense network's)."""
    value = row.get("realised_density") if hasattr(row, "get") else None
    return "-" if value is None or value != value else f"{float(value):.3g}"


def _lossy(codec: str) -> bool:
    """Whether a codec (canonical name) may change the tensors: anything but float32."""
    return Codec.parse(codec).lossy


def _exits_text(
    c: Candidate, names: Sequence[str], *, short: bool = False, tasks: Sequence[str] = ()
) -> str:
    """The exits a candidate uses and its threshold; with ``tasks`` (a spec with several)
    each task's threshold and the exit policy."""
    if not c.exits:
        return "no exit"
    used = "+".join(names[j] if j < len(names) else str(j) for j in c.exits)
    if len(tasks) > 1:
        per = ", ".join(f"{t} {x:g}" for t, x in zip(tasks, c.thresholds(len(tasks)), strict=True))
        policy = f"policy {c.policy}"
        return (
            f"{used} @ {per}; {policy}" if short else f"exits {used} at thresholds {per} ({policy})"
        )
    return f"{used} @ {c.threshold:g}" if short else f"exits {used} at threshold {c.threshold:g}"


class Phrases:
    """What a configuration's cut, exits and codec are called in the report."""

    def _exits(self, c: Candidate, short: bool = False) -> str:
        return _exits_text(c, self.ex.exit_names, short=short, tasks=self.tasks)

    def _spec_shown(self) -> str:
        """The spec's file as the report shows it: relative to the working folder, or its
        name alone (never a path of the machine that wrote the report)."""
        if self.spec.path is None:
            return f"studies/{self.spec.name}.toml"
        shown = shown_path(self.spec.path)
        # a spec kept under another checkout's studies/ folder: where it lives here
        return (
            f"studies/{shown}"
            if "/" not in shown and Path(self.spec.path).parent.name == "studies"
            else shown
        )

    def _task_columns(self) -> list[str]:
        """Each task's validation and test accuracy columns (several tasks only)."""
        return [f"{split}.{t}" for t in self.tasks for split in ("accuracy", "test_accuracy")]

    def _cut_text(self, k: int) -> str:
        g = self.ex.reference_graph
        last = len(g.cuts) - 1
        if k == 0:
            return "cut 0 (server-only: the input is sent)"
        if k == last:
            return f"cut {k} (edge-only: nothing is sent)"
        return f"cut {k} (after {g.cuts[k].after})"

    def _sends(self, c: Candidate, row: Mapping[str, Any] | None = None) -> bool:
        """Whether ``c`` sends anything: its cut does, and (given its scored ``row``) some
        sample reaches the server."""
        if float(self.ex.reference_graph.cuts[c.split].bytes) <= 0:
            return False
        return row is None or not float(row.get("bandwidth", 1.0)) == 0

    def _codec_text(
        self, c: Candidate, row: Mapping[str, Any] | None = None, *, long: bool = False
    ) -> str:
        """The codec knob of a candidate: its name, or that nothing is sent (then the codec
        decides nothing)."""
        if c.codec is None:
            return "-"
        if not self._sends(c):
            return "- (nothing sent)" if long else "-"
        if not self._sends(c, row):
            return (
                f"{c.codec}, unused: every sample leaves at an edge exit, nothing is sent"
                if long
                else "-"
            )
        return c.codec

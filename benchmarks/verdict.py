"""What a benchmark concludes: one PASS, FAIL or SKIP line per target, and its exit status.

Every benchmark turns its figures into checks through a pure ``verdict`` function (figures
in, :class:`Check` lines out, no I/O), prints them, and exits with :func:`exit_code`:

- 0: every target was measured and holds;
- 1: a target was measured and does not hold (FAIL), whatever else happened;
- 3: no target failed, but one could not be measured here (SKIP: PostgreSQL absent, a
  part left out with a ``--skip`` option, too few seeds to tell a gain from noise);
- 2 stays what it is everywhere in dse: bad input (argparse's own exit status).

A benchmark that judged nothing exits 3, never 0: a run that checked nothing has not
passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
#: The exit status of a benchmark whose worst check has this status.
EXIT_CODES: dict[str, int] = {PASS: 0, FAIL: 1, SKIP: 3}


@dataclass(frozen=True)
class Check:
    """One target's outcome: ``status`` (PASS, FAIL or SKIP) and what was judged, with the
    figure and the target in the text."""

    status: str
    text: str

    def __post_init__(self) -> None:
        if self.status not in EXIT_CODES:
            raise ValueError(f"status must be one of {', '.join(EXIT_CODES)}, not {self.status!r}")

    def __str__(self) -> str:
        return f"{self.status}: {self.text}"


def judge(holds: bool | None, text: str, *, why_skipped: str = "not measured") -> Check:
    """PASS or FAIL as ``holds`` says; SKIP (with ``why_skipped``) when it is None."""
    if holds is None:
        return Check(SKIP, f"{text} ({why_skipped})")
    return Check(PASS if holds else FAIL, text)


def skipped(text: str) -> Check:
    """A target that could not be measured in this run; ``text`` says which and why."""
    return Check(SKIP, text)


def overall(checks: Sequence[Check]) -> str:
    """FAIL if any check failed, else SKIP if any was skipped or there is none, else PASS."""
    statuses = {c.status for c in checks}
    if FAIL in statuses:
        return FAIL
    if SKIP in statuses or not checks:
        return SKIP
    return PASS


def exit_code(checks: Sequence[Check]) -> int:
    """The process's exit status for ``checks``: 1 on any FAIL, 3 on any SKIP (or none at
    all), else 0."""
    return EXIT_CODES[overall(checks)]


def conclude(
    checks: Iterable[Check], *, note: str = "", say: Callable[[str], object] = print
) -> int:
    """Print every check and the overall line (``note`` appended, e.g. "quick run: not
    the target"); return the exit status."""
    checks = list(checks)
    for c in checks:
        say(str(c))
    say(f"OVERALL: {overall(checks)}{f' ({note})' if note else ''}")
    return exit_code(checks)

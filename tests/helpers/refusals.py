"""Bad input refused the project's way: one :class:`InputError` whose one line names the
file and the dotted field (``FILE: FIELD: reason (fix)``), and from the command line that
line on stderr after ``dse: error:``, nothing on stdout, exit code 2."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from dse.errors import InputError


def assert_refused(
    call: Callable[[], Any],
    *,
    field: str,
    where: str | Path | None = None,
    words: Iterable[str] = (),
) -> InputError:
    """``call()`` raises an InputError on ``field`` (and of ``where``, when given: its line
    starts ``WHERE: FIELD: ``), one line holding each of ``words``; returns the error."""
    with pytest.raises(InputError) as info:
        call()
    err = info.value
    msg = str(err)
    assert err.field == field, (err.field, msg)
    if where is not None:
        assert err.where == str(where), (err.where, msg)
        assert msg.startswith(f"{where}: {field}: "), msg
    else:
        assert f": {field}: " in msg, msg
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    return err


def assert_cli_refused(
    argv: Sequence[str],
    capsys: pytest.CaptureFixture[str],
    *,
    words: Iterable[str] = (),
    where: str | Path | None = None,
) -> str:
    """``dse ARGV`` exits 2 with one line on stderr, ``dse: error: `` then (where given)
    ``WHERE: ``, holding each of ``words``, and prints nothing on stdout; returns the line."""
    from dse.cli import main

    capsys.readouterr()  # what came before is not this command's
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert rc == 2, (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and err.count("\n") == 1, err
    line = lines[0]
    prefix = "dse: error: " + (f"{where}: " if where is not None else "")
    assert line.startswith(prefix), (prefix, line)
    assert out == "", out
    for w in words:
        assert w in line, (w, line)
    return line

"""TOML text from Python values, for the files the tests write (specs, profiles, fuzz).

Two layouts: :func:`toml_text` writes each table of the document under its own
``[header]`` (what a person writes), :func:`inline_text` writes every table inline (any
document at all, whatever its keys). A key that is a plain dotted name (``accuracy.wall_hue``)
is written bare, so TOML reads it as the nested key it names.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_BARE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def string(s: str) -> str:
    """A TOML basic string: JSON's escapes, and DEL escaped too (TOML forbids it raw)."""
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def key(k: str, *, dotted: bool = True) -> str:
    """``k`` bare where TOML allows it (dotted names too when ``dotted``), else quoted."""
    return k if dotted and _BARE.fullmatch(k) else string(k)


def value(v: Any, *, dotted: bool = True) -> str:
    """One TOML value: tables inline (``{ a = 1, b = 2 }``), arrays on one line."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x, dotted=dotted) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = ", ".join(
            f"{key(k, dotted=dotted)} = {value(x, dotted=dotted)}" for k, x in v.items()
        )
        return "{ " + items + " }"
    raise TypeError(f"no TOML value for {type(v).__name__}: {v!r}")


def toml_text(doc: dict[str, Any]) -> str:
    """``doc`` as TOML: its plain keys first, then each table under its ``[header]``, in
    the order given; tables inside a table are written inline."""
    plain = [(k, v) for k, v in doc.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in doc.items() if isinstance(v, dict)]
    lines = [f"{key(k)} = {value(v)}" for k, v in plain]
    for name, table in tables:
        lines.append(f"[{key(name)}]")
        lines += [f"{key(k)} = {value(v)}" for k, v in table.items()]
    return "".join(line + "\n" for line in lines)


def inline_text(doc: dict[str, Any]) -> str:
    """TOML for any document of TOML values: every key quoted, every table inline (a key
    the fuzzer draws may be anything, a dot included, and stays one key)."""
    return "".join(f"{string(k)} = {value(v, dotted=False)}\n" for k, v in doc.items())

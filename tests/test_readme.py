"""The README's demo lines are written by ``make docs`` from what the demo printed
(docs/readme_demo.py), between two markers, so they cannot drift from a run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("readme_demo", ROOT / "docs" / "readme_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


OUTPUT = """\
== dse demo: the tiny-esp32 study (studies/tiny-esp32.toml) ==
study tiny-esp32: storage studies/tiny-esp32.journal; ...
report written: reports/tiny-esp32/index.html

== what to do ==
Deploy dense with no exit and run it all on the server (a100): ...
Why: Chosen among 9 distinct configurations ...

== what the front spans ==
front of tiny-esp32: 9 distinct point(s) (74 configuration(s)); cuts 0 (server-only)

"""


def test_make_docs_copies_the_demos_last_lines_between_the_markers() -> None:
    docs = _script()
    lines = docs.demo_lines(OUTPUT)
    assert lines[0] == "== what to do ==" and lines[-1].startswith("front of tiny-esp32: 9")
    readme = f"intro\n{docs.BEGIN}\nold text\n{docs.END}\nafter\n"
    new = docs.with_demo(readme, lines)
    assert new.startswith(f"intro\n{docs.BEGIN}\n```text\n== what to do ==\nDeploy dense")
    assert new.endswith(f"cuts 0 (server-only)\n```\n{docs.END}\nafter\n")
    assert "old text" not in new and docs.with_demo(new, lines) == new
    with pytest.raises(ValueError, match="did the demo finish"):
        docs.demo_lines("== dse demo ==\ninterrupted\n")


def test_the_readme_holds_the_markers_and_the_makefile_writes_them() -> None:
    docs = _script()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(docs.BEGIN) == 1 and readme.count(docs.END) == 1
    block = readme.split(docs.BEGIN)[1].split(docs.END)[0]
    assert block.startswith("\n```text\n== what to do ==\n")
    make = (ROOT / "Makefile").read_text()
    assert "docs/readme_demo.py README.md reports/demo.out" in make

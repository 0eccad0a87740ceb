"""Copy what ``dse demo`` printed at its end into README.md, between its markers.

``make docs`` runs the demo with its output in a file, then this script: the README's demo
lines (what to do, what the front spans) are then what that run printed, never text
written by hand that a fresh clone would not print.

    python docs/readme_demo.py README.md demo.out
"""

from __future__ import annotations

import sys
from pathlib import Path

BEGIN = "<!-- demo:begin (make docs writes these lines) -->"
END = "<!-- demo:end -->"
FIRST = "== what to do =="


def demo_lines(output: str) -> list[str]:
    """The lines the demo ends with: from ``== what to do ==`` to the end, trailing
    blanks dropped."""
    lines = output.splitlines()
    if FIRST not in lines:
        raise ValueError(f"the demo's output has no {FIRST!r} line: did the demo finish?")
    block = lines[lines.index(FIRST) :]
    while block and not block[-1].strip():
        block.pop()
    return block


def with_demo(readme: str, lines: list[str]) -> str:
    """``readme`` with the text between its markers replaced by ``lines`` in a text block."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise ValueError(f"the README must hold {BEGIN!r} and {END!r} once each")
    head, rest = readme.split(BEGIN)
    _, tail = rest.split(END)
    return head + BEGIN + "\n```text\n" + "\n".join(lines) + "\n```\n" + END + tail


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    readme, output = Path(argv[0]), Path(argv[1])
    text = with_demo(readme.read_text(encoding="utf-8"), demo_lines(output.read_text()))
    readme.write_text(text, encoding="utf-8")
    print(f"{readme}: the demo's lines written from {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

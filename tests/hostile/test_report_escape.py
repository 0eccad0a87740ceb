"""Every string of a study shown in its report is escaped: a hostile description, task
names and spec text put no markup of their own into the HTML (or the Markdown)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from helpers.fast_report import FAST

from dse.report.doc import Code, Doc
from dse.report.write import write_report
from dse.search.explorer import Explorer
from dse.search.spec import load_spec
from dse.search.study import run_study

pytestmark = pytest.mark.usefixtures("one_thread")

SCRIPT = "<script>alert(1)</script>"
TASKS = (SCRIPT, "q\"uo'te&amp;<b>")
DESCRIPTION = f"{SCRIPT} \"quoted\" 'single' & <img src=x onerror=alert(2)>\n````\n<i>x</i>"


class _Tags(HTMLParser):
    """Every start tag and attribute the page really holds."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs


def _check_page(page: str) -> None:
    parser = _Tags()
    parser.feed(page)
    assert "script" not in parser.tags and "b" not in parser.tags and "i" not in parser.tags
    assert not [a for a in parser.attrs if a[0].startswith("on")]
    for raw in (SCRIPT, "<img src=x", "<b>", "<i>"):
        assert raw not in page


def _outside_code(md: str) -> str:
    """The Markdown without its fenced blocks and code spans (CommonMark: a fence closes at
    a line of at least as many backticks; a span at the next run of exactly as many)."""
    lines, out, fence = md.split("\n"), [], 0
    for line in lines:
        run = len(line) - len(line.lstrip("`"))
        if fence:
            if run >= fence and not line.strip("`").strip():
                fence = 0
        elif run >= 3:
            fence = run
        else:
            out.append(line)
    text, kept, i = "\n".join(out), [], 0
    while i < len(text):
        if text[i] == "`":
            n = len(text[i:]) - len(text[i:].lstrip("`"))
            close = re.compile(r"(?<!`)" + "`" * n + r"(?!`)").search(text, i + n)
            if close:
                i = close.end()
                continue
            kept.append(text[i : i + n])
            i += n
        else:
            kept.append(text[i])
            i += 1
    return "".join(kept)


def _check_markdown(md: str) -> None:
    """No raw HTML in the Markdown outside code (where it is shown as text)."""
    outside = _outside_code(md)
    assert not re.search(r"(?<!\\)<(script|img|b|i)\b", outside), outside


def test_doc_escapes_a_fence_and_backticks_in_code() -> None:
    doc = Doc("t")
    doc.code(DESCRIPTION)
    doc.p(Code("a ``` b ` c"))
    md = doc.markdown()
    _check_markdown(md)
    _check_page(doc.html())


@pytest.mark.slow
def test_a_hostile_study_renders_an_escaped_report(isolated: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((60, 8, 8)).astype(np.float32)
    arrays = {"x": x, **{f"y_{t}": rng.integers(0, 2, 60) for t in TASKS}}
    np.savez(isolated / "hostile.npz", **arrays)
    text = f"""\
name = "hostile"
description = {json.dumps(DESCRIPTION)}
n_trials = 4
sampler = "random"
[model]
name = "mlp"
[data]
name = "npz"
root = "hostile.npz"
tasks = {json.dumps(list(TASKS))}
[training]
epochs = 1
[space]
densities = [1.0]
methods = ["predefined"]
[objectives]
accuracy = "maximize"
latency_mean = "minimize"
"""
    (isolated / "studies").mkdir()
    path = isolated / "studies" / "hostile.toml"
    path.write_text(text)
    spec = load_spec(path)
    run_study(spec, progress=False, explorer=Explorer(spec, progress=False))
    index = write_report("hostile", progress=False, **FAST)
    page = index.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, as text
    _check_page(page)
    _check_markdown((index.parent / "report.md").read_text())

"""The report as a reader meets it: what to do first, then the front, the deployment map
and the training curves, every image it references on disk, and no path of the machine
that wrote it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers.fast_report import FAST
from tiny_study import spec_text

from dse.cli import main
from dse.costmodel import devices, list_devices, list_links, load_device
from dse.errors import InputError
from dse.report.text import shown_path
from dse.report.write import write_report

pytestmark = pytest.mark.usefixtures("one_thread")


class _Page(HTMLParser):
    """Images and links, the ids of the sections and the text of the first paragraph
    after each h2."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.ids: list[str] = []
        self.order: list[str] = []  # h2 ids and img srcs, in document order
        self._p: list[str] | None = None
        self.paragraphs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img" and a.get("src"):
            self.images.append(a["src"] or "")
            self.order.append(a["src"] or "")
        if tag == "a" and a.get("href") and not (a["href"] or "").startswith("#"):
            self.links.append(a["href"] or "")
        if tag == "h2" and a.get("id"):
            self.ids.append(a["id"] or "")
            self.order.append("#" + (a["id"] or ""))
        if tag == "p":
            self._p = []

    def handle_data(self, data: str) -> None:
        if self._p is not None:
            self._p.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._p is not None:
            self.paragraphs.append("".join(self._p))
            self._p = None


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("screen")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("DSE_CACHE", str(shared_cache))
        (root / "studies").mkdir()
        yield root


@pytest.fixture(scope="module")
def report(folder: Path) -> Path:
    from dse.search import Explorer, load_spec, run_study

    path = folder / "studies" / "screen.toml"
    path.write_text(
        spec_text("screen", n_trials=16, sampler="random", constraints='edge_memory = "<= 1e9"')
    )
    spec = load_spec(path)
    run_study(spec, explorer=Explorer(spec, progress=False), progress=False)
    return write_report("screen", progress=False, **FAST)


def _page(index: Path) -> _Page:
    page = _Page()
    page.feed(index.read_text(encoding="utf-8"))
    return page


@pytest.mark.slow
def test_first_screen_then_front_map_and_curves(report: Path) -> None:
    page = _page(report)
    for ref in page.images + page.links:
        assert "://" not in ref and (report.parent / ref).is_file(), ref
    for key in ("front", "deployments", "training"):
        assert f"figures/{key}.png" in page.images
    assert {"recommendation", "front", "deployments", "training"} <= set(page.ids)
    # the first section is what to do, in one paragraph, and the front comes right after
    assert page.ids[:2] == ["recommendation", "front"]
    assert (
        page.order.index("#front")
        < page.order.index("figures/front.png")
        < min(page.order.index(f"#{k}") for k in page.ids[2:])
    )
    first = page.paragraphs[0]
    assert first.startswith("Deploy ")
    for words in (
        "Expected per inference: accuracy",
        "Why: ",
        "It gives up ",
        "What would change it: ",
    ):
        assert words in first
    md = (report.parent / "report.md").read_text()
    assert md.index("## What to do") < md.index("## Pareto front") < md.index("## The study")


@pytest.mark.slow
def test_deployment_map_covers_the_shipped_edges_and_links(report: Path) -> None:
    md = (report.parent / "report.md").read_text()
    section = md[md.index("## Deployment map") : md.index("## Training curves")]
    shipped = [load_device(d) for d in list_devices()]
    edges = [d.name for d in shipped if d.kind == "edge" and not d.integer_only]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == len(edges) * len(list_links())
    assert {r.split(" | ")[0][2:] for r in rows} == set(edges)
    # an int8-only board cannot be an edge of float32 networks: named as left out
    integer = [d.name for d in shipped if d.kind == "edge" and d.integer_only]
    assert integer and all(name in section for name in integer) and "left out" in section
    training = md[md.index("## Training curves") :]
    assert "| dense | 1 |" in training and "| predefined@0.5 | 1 |" in training


@pytest.mark.slow
def test_no_path_of_the_machine_in_the_report(report: Path, folder: Path) -> None:
    for name in ("index.html", "report.md"):
        text = (report.parent / name).read_text()
        assert str(folder) not in text and str(folder.resolve()) not in text
        assert str(devices.profiles_dir().resolve()) not in text
        assert "File: `profiles/devices/raspberry-pi-4.toml`" in text or name != "report.md"
        assert "studies/screen.toml" in text


def test_shown_path_is_never_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    assert shown_path(tmp_path / "studies" / "a.toml") == "studies/a.toml"
    shipped = devices.profiles_dir().resolve() / "devices" / "a100.toml"
    assert shown_path(shipped) == "profiles/devices/a100.toml"
    assert shown_path("/somewhere/else/mine.toml") == "mine.toml"
    assert shown_path("studies/b.toml") == "studies/b.toml"


@pytest.mark.slow
def test_report_reads_the_deployment_map_from_a_sweep_file(report: Path, folder: Path) -> None:
    assert (
        main(
            [
                "sweep",
                "studies/screen.toml",
                "--edge",
                "jetson-nano,raspberry-pi-4",
                "--link",
                "wifi",
                "--json",
                "sweep.json",
                "--quiet",
            ]
        )
        == 0
    )
    index = write_report("screen", folder / "from-file", progress=False, sweep="sweep.json", **FAST)
    md = (index.parent / "report.md").read_text()
    section = md[md.index("## Deployment map") : md.index("## Training curves")]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert [r.split(" | ")[:2] for r in rows] == [
        ["| jetson-nano", "wifi"],
        ["| raspberry-pi-4", "wifi"],
    ]
    assert "from the sweep file given to dse report --sweep" in section
    other = json.loads(Path("sweep.json").read_text())
    other["spec"] = "another"
    Path("other.json").write_text(json.dumps(other))
    with pytest.raises(InputError, match=re.escape("not of 'screen'")):
        write_report("screen", folder / "refused", progress=False, sweep="other.json", **FAST)

"""Tests for the report: the document model, and whole reports of two tiny studies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers.fast_report import FAST

from dse.report.doc import Bold, Code, Doc, Link
from dse.report.fmt import human
from dse.report.write import write_report

# --------------------------------------------------------------------------------------
# the document model
# --------------------------------------------------------------------------------------


def test_doc_escapes_text_in_html_and_markdown() -> None:
    doc = Doc("<i>t</i>")
    doc.h(1, "a <h> & b", "sec")
    doc.p("<b>x</b> ", Bold("bold "), Code("<code>"), Link("<l>", "f.csv"))
    doc.table(["<hd>"], [["<cell>|"]])
    doc.code("<script>alert(1)</script>")
    doc.figure("figures/x", "<cap>")
    page = doc.html()
    for raw in (
        "<b>x</b>",
        "<i>t</i>",
        "<h>",
        "<hd>",
        "<cell>",
        "<script>",
        "<cap>",
        "<l>",
        "<code><code>",
    ):
        assert raw not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "&lt;script&gt;" in page
    md = doc.markdown()
    assert "<b>" not in md and "\\<b\\>x\\</b\\>" in md
    assert "**bold** " in md  # no space inside the markers: CommonMark would not bold it
    assert "\\|" in md  # a pipe in a cell does not split the table


def test_doc_shows_the_png_and_links_the_svg_only_where_it_was_written() -> None:
    both, png = Doc("t"), Doc("t")
    both.figure("figures/x", "cap")
    png.figure("figures/x", "cap", formats=("png",))
    assert "[SVG](figures/x.svg)" in both.markdown() and 'href="figures/x.svg"' in both.html()
    assert "![cap](figures/x.png)" in png.markdown() and "*cap*" in png.markdown()
    assert "svg" not in png.markdown().lower() and "svg" not in png.html().lower()
    assert '<img src="figures/x.png" alt="cap">' in png.html()
    svg = Doc("t")
    svg.figure("figures/x", "cap", formats=("svg",))
    assert "![cap](figures/x.svg)" in svg.markdown() and "[SVG]" not in svg.markdown()


def test_write_report_refuses_figure_formats_it_cannot_write() -> None:
    for formats in ((), ("png", "jpg")):
        with pytest.raises(ValueError, match="give one or more of"):
            write_report("no-such-study", figure_formats=formats)


def test_human_units() -> None:
    assert human("accuracy", 0.9963) == "99.6%"
    assert human("latency_mean", 0.00106) == "1.06 ms"
    assert human("bandwidth", 16384.0) == "16.4 kB"
    assert human("edge_energy", 0.0053) == "5.3 mJ"
    assert human("transfer_s", 0.0) == "0 s" and human("bandwidth", 0) == "0 B"
    assert human("latency_mean", float("nan")) == "-"


# --------------------------------------------------------------------------------------
# whole reports of tiny studies (an MLP on digits, one epoch)
# --------------------------------------------------------------------------------------

SPEC = """
name = "{name}"
description = "<b>x</b> & a \\"tiny\\" study"
n_trials = 14
sampler = "random"
seed = 0

[model]
name = "mlp"

[data]
name = "digits"

[training]
epochs = 1

[deployment]
tail_energy = false

[space]
densities = [1.0, 0.5]
methods = ["predefined"]
thresholds = {{ low = 0.5, high = 1.0, step = 0.25 }}

[objectives]
accuracy = "maximize"
latency_mean = "minimize"

[constraints]
{constraint}
"""


@pytest.fixture(scope="module")
def workdir(
    tmp_path_factory: pytest.TempPathFactory, shared_cache: Path, one_thread: None
) -> Iterator[Path]:
    """A folder of the module's own, with the session's training cache (tiny networks:
    one thread each, threads only contend)."""
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("DSE_CACHE", str(shared_cache))
        (root / "studies").mkdir()
        yield root


def _study(workdir: Path, name: str, constraint: str, **report: Any) -> Path:
    from dse.search.spec import load_spec
    from dse.search.study import Explorer, run_study

    path = workdir / "studies" / f"{name}.toml"
    path.write_text(SPEC.format(name=name, constraint=constraint))
    spec = load_spec(path)
    run_study(spec, explorer=Explorer(spec, progress=False), progress=False)
    return write_report(name, progress=False, **report)


@pytest.fixture(scope="module")
def feasible(workdir: Path) -> Path:
    """The one report of the tests written as by default: every figure as PNG and SVG."""
    return _study(workdir, "tiny", 'edge_memory = "<= 1e9"')


@pytest.fixture(scope="module")
def infeasible(workdir: Path) -> Path:
    return _study(workdir, "never", 'latency_mean = "<= 1e-9"', **FAST)


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("src", "href") and value and not value.startswith("#"):
                self.refs.append(value)


def _references(index: Path) -> tuple[list[str], list[str]]:
    parser = _Refs()
    parser.feed(index.read_text())
    md = (index.parent / "report.md").read_text()
    return parser.refs, re.findall(r"\]\(([^)\s]+)\)", md)


@pytest.mark.slow
def test_report_files_exist_and_every_reference_resolves(feasible: Path) -> None:
    out = feasible.parent
    assert feasible.name == "index.html" and out == Path("reports/tiny")
    assert (out / "report.md").exists() and (out / "front.csv").exists()
    html_refs, md_refs = _references(feasible)
    assert any(r.endswith(".png") for r in html_refs) and "front.csv" in md_refs
    for ref in html_refs + md_refs:
        assert "://" not in ref, f"{ref} would be fetched from the network"
        assert (out / ref).is_file(), f"{ref} is referenced but missing"
    for key in (
        "front",
        "layers",
        "split",
        "exits",
        "bandwidth",
        "density",
        "hypervolume",
        "importance",
    ):
        assert (out / "figures" / f"{key}.png").is_file()
        assert (out / "figures" / f"{key}.svg").is_file()
    assert set(html_refs) == set(md_refs)  # the same content in both


@pytest.mark.slow
def test_report_escapes_the_spec_and_shows_the_recommendation(feasible: Path) -> None:
    page = feasible.read_text()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    md = (feasible.parent / "report.md").read_text()
    assert "Recommended configuration" in md and "No trial is feasible" not in md
    for cmd in ("dse study run", "dse verify tiny", "dse report tiny", "dse compare tiny"):
        assert cmd in md
    assert "Not verified yet" in md  # and the command to do it, checked above
    # the objectives are described, and the recommended point's edge energy is broken into
    # every part it sums, the edge idling while it waits included
    assert "(minimize): expected end-to-end latency per inference, s" in md
    assert "· idle while waiting" in md
    # one task: no multi-task section, figure, per-task rows or exit policy
    assert "One backbone or one network per task" not in md
    assert not (feasible.parent / "figures" / "tasks.png").exists()
    assert "| accuracy, mean over the tasks |" not in md and "| exit policy |" not in md
    assert "; policy " not in md and "| threshold | " in md
    # no codecs in the space: no codec section, figure, column or knob, no auto-split
    assert "The tensor at the cut: codecs" not in md and "auto-split" not in md
    assert not (feasible.parent / "figures" / "codecs.png").exists()
    assert "| codec" not in md and "Codecs on the front" not in md


@pytest.mark.slow
def test_report_front_csv_and_grid_ruler(feasible: Path) -> None:
    from dse.search.baselines import load_grid
    from dse.search.pareto import Ruler
    from dse.search.study import load_study
    from dse.search.study_status import status

    front = pd.read_csv(feasible.parent / "front.csv")
    assert len(front) >= 1 and front["feasible"].all()
    assert {"trial", "knob_split", "knob_exits", "accuracy", "latency_mean"} <= set(front)
    # the grid was computed for the report and its ruler written to the study
    grid = load_grid("tiny")
    assert grid is not None
    study, spec = load_study("tiny")
    assert Ruler.from_dict(study.user_attrs["ruler"]) == grid.ruler
    assert study.user_attrs["grid_hypervolume"] > 0
    # the report's share of the grid's hypervolume is the one `dse study status` prints
    share = status(study, spec)["hv_fraction_of_grid"]
    md = (feasible.parent / "report.md").read_text()
    assert f"reaches {100 * share:.1f}% of the exhaustive grid's hypervolume" in md


@pytest.mark.slow
def test_report_without_a_feasible_trial_says_so(infeasible: Path) -> None:
    md = (infeasible.parent / "report.md").read_text()
    page = infeasible.read_text()
    assert "No trial is feasible" in md and "No trial is feasible" in page
    # the figures drawn for a recommendation are replaced by a sentence
    assert "no recommended configuration to draw" in md
    assert not (infeasible.parent / "figures" / "split.png").exists()
    front = (
        pd.read_csv(infeasible.parent / "front.csv")
        if (infeasible.parent / "front.csv").stat().st_size
        else pd.DataFrame()
    )
    assert len(front) == 0
    html_refs, md_refs = _references(infeasible)
    for ref in html_refs + md_refs:
        assert (infeasible.parent / ref).is_file()


@pytest.mark.slow
def test_the_fast_mode_writes_each_figure_as_a_png_alone(infeasible: Path) -> None:
    figures = infeasible.parent / "figures"
    assert {p.suffix for p in figures.iterdir()} == {".png"}
    html_refs, md_refs = _references(infeasible)
    assert not [r for r in html_refs + md_refs if r.endswith(".svg")]


@pytest.mark.slow
def test_report_warns_at_the_top_when_the_reference_has_not_learned(
    workdir: Path, feasible: Path
) -> None:
    from dse.search.spec import load_spec
    from dse.search.study import Explorer, run_study

    path = workdir / "studies" / "unlearned.toml"
    path.write_text(
        SPEC.format(name="unlearned", constraint="").replace(
            "epochs = 1", 'epochs = "auto"\nmax_epochs = 2\nlr = 1e-5'
        )
    )
    spec = load_spec(path)
    run_study(spec, n_trials=4, explorer=Explorer(spec, progress=False), progress=False)
    md = (write_report("unlearned", progress=False, **FAST).parent / "report.md").read_text()
    warning = md.index("**Warning:** The reference network (mlp, dense, epoch ")
    assert warning < md.index("# Summary")
    line = md[warning:].splitlines()[0]
    assert "it has not learned" in line and "raise max_epochs (2)" in line
    # which epoch each network kept, of how many it ran
    assert 'Training: epochs "auto" (patience 5, at most 2, best validation epoch kept); ' in md
    assert re.search(
        r"dense epoch [12] kept of 2 run \(auto\) \(stopped at the cap\); "
        r"predefined@0\.5 epoch [12] kept of 2 run",
        md,
    ), md
    # a study whose networks learned has no warning
    assert "**Warning:**" not in (feasible.parent / "report.md").read_text()

"""The report of a study with codecs at the cut: the rate-accuracy figure and its numbers
(those of the scorer's codec views), the per-cut table, the codec in the knobs, which codecs
the front uses, and the auto-split baseline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.fast_report import FAST

from dse.report import fmt, plots
from dse.report.write import write_report
from tests.tiny_study import spec_text

CODECS = ("fp32", "int8", "int4+zstd")
NAME = "codec-report"


@pytest.fixture(scope="module")
def study(
    tmp_path_factory: pytest.TempPathFactory, shared_cache: Path, one_thread: None
) -> Iterator[tuple[Path, Any]]:
    """A tiny study with three codecs, its report, and its explorer (the session's
    training cache; one thread)."""
    from dse.search.spec import parse_spec
    from dse.search.study import Explorer, run_study

    root = tmp_path_factory.mktemp("codec-report")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("DSE_CACHE", str(shared_cache))
        (root / "studies").mkdir()
        text = spec_text(NAME, n_trials=12).replace(
            "[space]\n", '[space]\ncodecs = ["fp32", "int8", "int4+zstd"]\n'
        )
        path = root / "studies" / f"{NAME}.toml"
        path.write_text(text)
        spec = parse_spec(text, where=str(path), path=path)
        explorer = Explorer(spec, progress=False)
        run_study(spec, explorer=explorer, progress=False)
        index = write_report(NAME, progress=False, **FAST)
        yield index, explorer


def _table(md: str, header: str) -> list[list[str]]:
    """The header and rows (cells) of the Markdown table whose header line starts with
    ``header``."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return [[c.strip() for c in lines[start].strip("|").split(" | ")], *rows]


@pytest.mark.slow
def test_rate_accuracy_info_is_the_scorers_codec_views(study: tuple[Path, Any]) -> None:
    _, explorer = study
    scorer = explorer.scorer("dense", 1.0)
    info = plots.rate_accuracy_info(scorer)
    views = scorer.codec_views
    assert info.codecs == CODECS and info.reference == "fp32"
    graph = scorer.graph
    # every cut that sends something, none that does not (the edge-only cut)
    sending = [k for k in explorer.space.cuts if graph.cuts[k].bytes > 0]
    assert list(info.cuts) == sending and len(info.cuts) >= 2
    for c in CODECS:
        for j, k in enumerate(info.cuts):
            val, test = views[c][k]
            assert info.bytes[c][j] == pytest.approx(val.sizes.mean())
            assert info.test_bytes[c][j] == pytest.approx(test.sizes.mean())
            assert info.accuracy[c][j] == pytest.approx(val.correct[0, -1].mean())
            assert info.test_accuracy[c][j] == pytest.approx(test.correct[0, -1].mean())
            assert info.after[j] == graph.cuts[k].after
            assert info.raw_bytes[j] == graph.cuts[k].bytes
    # fp32 decodes to the very tensors: its accuracy is the network's own final head's
    assert np.allclose(info.accuracy["fp32"], scorer.trained.accuracy("val")[-1])
    # int8 sends about a quarter of fp32 where the tensors are large; the header is counted
    assert np.all(info.bytes["fp32"] > info.raw_bytes)
    big = info.raw_bytes >= 1000
    assert big.any() and np.all(info.ratio("int8")[big] < 0.3)
    assert np.allclose(info.change("fp32"), 0.0)
    assert np.allclose(
        info.change("int8", split="test"),
        100 * (info.test_accuracy["int8"] - info.test_accuracy["fp32"]),
    )
    # the renderer draws it (one network, or several in rows)
    out = plots.render_rate_accuracy([info, info], Path("rate.png"))
    assert [p.suffix for p in out] == [".png", ".svg"] and all(p.stat().st_size for p in out)
    # no codec views: a clear error, not an empty figure
    with pytest.raises(ValueError, match="no codec outputs"):
        plots.rate_accuracy_info(type("S", (), {"codec_views": {}})())


@pytest.mark.slow
def test_report_has_the_codec_figure_and_its_per_cut_table(study: tuple[Path, Any]) -> None:
    index, explorer = study
    out = index.parent
    for ext in FAST["figure_formats"]:
        assert (out / "figures" / f"codecs.{ext}").is_file()
    md = (out / "report.md").read_text()
    page = index.read_text()
    assert "## The tensor at the cut: codecs" in md and 'id="codecs"' in page
    assert "figures/codecs.png" in md and "figures/codecs.png" in page
    info = plots.rate_accuracy_info(explorer.scorer("dense", 1.0))
    head, *rows = _table(md, "| cut | fastest codec")
    assert head[1:4] == ["fastest codec (latency)", "fp32 bytes", "fp32 accuracy (val; test)"]
    assert head[4:] == [
        h
        for c in ("int8", "int4+zstd")
        for h in (f"{c}: bytes / fp32", f"{c}: accuracy change (points)")
    ]
    assert [int(r[0].split()[0]) for r in rows] == list(info.cuts)
    views = explorer.scorer("dense", 1.0).codec_views
    # the fastest codec per cut: the dense no-exit grid rows within 1 point of server-only
    from dse.report.fmt import human
    from dse.search.baselines import compare, load_grid

    grid = load_grid(NAME)
    assert grid is not None
    ref = compare(grid, explorer.spec, None).attrs["reference_accuracy"]
    gf = grid.frame
    plain = gf[
        (gf.knob_method == "dense")
        & (gf.knob_exits.map(len) == 0)
        & (gf.source == "space")
        & (gf.accuracy >= ref - 0.01)
    ]
    for r, k in zip(rows, info.cuts, strict=True):
        here = plain[plain.knob_split == k]
        if not len(here):
            assert r[1] == "-"
            continue
        best = here.sort_values("latency_mean").iloc[0]
        assert r[1] == f"{best.knob_codec} ({human('latency_mean', best.latency_mean)})"
    for r, k in zip(rows, info.cuts, strict=True):
        (v32, t32), (v8, t8) = views["fp32"][k], views["int8"][k]
        assert r[2] == fmt.nbytes(v32.sizes.mean())
        assert (
            r[3] == f"{fmt.percent(v32.correct[0, -1].mean())}; "
            f"{fmt.percent(t32.correct[0, -1].mean())}"
        )
        assert r[4] == (
            f"{v8.sizes.mean() / v32.sizes.mean():.3g}x; {t8.sizes.mean() / t32.sizes.mean():.3g}x"
        )
        dv = 100 * (v8.correct[0, -1].mean() - v32.correct[0, -1].mean())
        dt = 100 * (t8.correct[0, -1].mean() - t32.correct[0, -1].mean())
        assert r[5] == f"{dv:+.1f}; {dt:+.1f}"


@pytest.mark.slow
def test_report_names_the_codec_of_each_front_point_and_the_auto_split_baseline(
    study: tuple[Path, Any],
) -> None:
    import pandas as pd

    index, _ = study
    md = (index.parent / "report.md").read_text()
    front = pd.read_csv(index.parent / "front.csv")
    assert "knob_codec" in front and set(front.knob_codec) <= set(CODECS)
    head, *rows = _table(md, "| trial | network |")
    assert "codec" in head
    col = head.index("codec")
    for r, (_, f) in zip(rows, front.iterrows(), strict=False):
        assert r[col] == (f.knob_codec if f.bandwidth > 0 else "-")
    # the counts of the codecs that send on the front
    sends = front[front.bandwidth > 0]
    m = re.search(r"Codecs on the front \((\d+) points; [^)]*\): ([^.]*)\.", md)
    assert m is not None and int(m.group(1)) == len(front)
    for codec, n in sends.knob_codec.value_counts().items():
        assert f"{codec} {n}" in m.group(2)
    lossy = sends[sends.knob_codec != "fp32"]
    if len(lossy):
        assert "A lossy codec puts these cuts on the front" in md
        for _, f in lossy.iterrows():
            assert f"{f.knob_codec} at cut {int(f.knob_split)} of " in md
    elif len(sends):
        assert "No front point sends a lossily coded tensor" in md
    # the recommendation's knobs show its codec
    assert re.search(r"\| codec at the cut \| (fp32|int8|int4\+zstd|- \(nothing sent\))", md)
    # the baselines: auto-split in the comparison and (with its codec) among the best points
    assert re.search(r"^\| auto-split \| \d+ \| ", md, re.M)
    bests = _table(md, "| baseline | network |")
    assert bests[0][:5] == ["baseline", "network", "cut", "exits @ threshold", "codec"]

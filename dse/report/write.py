"""The study report: one HTML page and one Markdown file with the same content.

``write_report(name)`` reads a stored study, makes sure its exhaustive grid exists (so
every hypervolume is on one ruler), draws the figures of :mod:`dse.report.plots` and writes::

    reports/NAME/index.html   opens from disk: images are files beside it, nothing fetched
    reports/NAME/report.md    the same text, tables and figures in Markdown
    reports/NAME/front.csv    every trial of the feasible front: knobs and metrics (SI units)
    reports/NAME/figures/     every figure as PNG and SVG (or as ``figure_formats`` say)

The text is built once as a list of blocks and written out twice, so the two files
cannot drift apart; every string that comes from the spec or the profiles is escaped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from dse.errors import InputError, write_refused
from dse.report import plots
from dse.report.data import gather
from dse.report.figures import draw_figures
from dse.report.sections import document
from dse.search import Explorer, StudySpec, Sweep, csv_text, ensure_grid, load_study, load_sweep

REPORTS_DIR = Path("reports")
FIGURES = "figures"
FILES = ("front.csv", "report.md", "index.html")


def write_report(
    name: str,
    out: Path | str | None = None,
    *,
    storage: str | None = None,
    progress: bool = True,
    sweep: Path | str | None = None,
    figure_formats: Sequence[str] = plots.FORMATS,
    dpi: float = plots.DPI,
) -> Path:
    """Write the report of study ``name`` under ``out`` (default reports/NAME); return
    the path of its index.html.

    The deployment map comes from ``sweep`` (a file ``dse sweep --json`` wrote for this
    study's spec) or, without one, from a sweep of the space over the shipped edge devices
    and links (server: the spec's) scored now, when that is small enough
    (:data:`~dse.report.data.MAP_BUDGET` scorings).

    If the study's exhaustive grid has not been computed it is computed and saved, and
    its ruler and hypervolume are written to the study (when absent) so that every
    hypervolume of the report is measured on the same ruler.

    Each figure is written in ``figure_formats`` (``png``, ``svg`` or both), the PNG at
    ``dpi`` dots per inch; PNG alone at a low resolution writes a report far faster.
    """
    if not figure_formats or set(figure_formats) - set(plots.FORMATS):
        raise ValueError(
            f"figure_formats {list(figure_formats)}: give one or more of {list(plots.FORMATS)}"
        )
    say = _say(progress)
    study, spec = load_study(name, storage=storage)
    given = _given_sweep(sweep, spec)
    out = REPORTS_DIR / name if out is None else Path(out)
    new = not out.exists()
    stage = _stage(out)
    try:
        folder = stage / FIGURES
        folder.mkdir()
        say(f"loading the networks of {name}")
        explorer = Explorer(spec, progress=progress)
        grid = ensure_grid(study, explorer, say=say)

        say("computing the figures")
        data = gather(study, spec, explorer, grid, sweep=given, say=say)
        figures = draw_figures(data, folder, formats=figure_formats, dpi=dpi)
        data = replace(data, figures=figures)
        doc = document(data)
        say(f"writing {out}")
        (stage / "front.csv").write_text(csv_text(data.front))
        (stage / "report.md").write_text(doc.markdown(), encoding="utf-8")
        (stage / "index.html").write_text(doc.html(), encoding="utf-8")
        # whole: the old report gives way (renames only; a figure not drawn this time
        # does not linger, since the figures folder is replaced whole)
        if (out / FIGURES).is_dir():
            os.replace(out / FIGURES, stage / f"{FIGURES}.old")
        os.replace(folder, out / FIGURES)
        for file in FILES:
            os.replace(stage / file, out / file)
    except OSError as exc:  # a figure, a file or the grid: the disk refused a write
        shutil.rmtree(stage, ignore_errors=True)
        if new:
            with contextlib.suppress(OSError):
                out.rmdir()  # as it was: absent
        raise (write_refused(out, exc) or exc) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out / "index.html"


def _say(progress: bool) -> Callable[[str], None]:
    def say(msg: str) -> None:
        if progress:
            print(f"report: {msg}", file=sys.stderr, flush=True)

    return say


def _given_sweep(path: Path | str | None, spec: StudySpec) -> Sweep | None:
    """The sweep file given for the deployment map, refused unless it is of ``spec``."""
    given = load_sweep(path) if path is not None else None
    if given is not None and given.spec != spec.name:
        raise InputError(
            path,
            "spec",
            f"a sweep of spec {given.spec!r}, not of {spec.name!r}",
            f"run `dse sweep` on the spec of study {spec.name}",
        )
    return given


def _stage(out: Path) -> Path:
    """A fresh folder inside ``out`` (created when missing) where the report is written
    first, and moved into place once whole: a write the disk refuses leaves the previous
    report as it was."""
    if out.exists() and not out.is_dir():
        raise InputError(
            out,
            "--out",
            "is a file, not a folder",
            "give a folder for the report (created when missing)",
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=out, prefix=".report-", suffix=".tmp"))
    except OSError as exc:
        raise write_refused(out, exc) or InputError(
            out,
            "--out",
            f"cannot create the report folder: {exc.strerror}",
            "give a folder you can write to",
        ) from None

"""The study report: one HTML page and one Markdown file with the same content.

``write_report(name)`` reads a stored study, makes sure its exhaustive grid exists (so
every hypervolume is on one ruler), draws the figures of :mod:`dse.report.plots` and writes::

    reports/NAME/index.html   opens from disk: images are files beside it, nothing fetched
    reports/NAME/report.md    the same text, tables and figures in Markdown
    reports/NAME/front.csv    every trial of the feasible front: knobs and metrics (SI units)
    reports/NAME/figures/     every figure as PNG and SVG

The text is built once as a list of blocks and written out twice, so the two files
cannot drift apart; every string that comes from the spec or the profiles is escaped.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from dse.costmodel import FREE_KINDS, DeviceProfile, LinkProfile, list_devices, list_links
from dse.errors import InputError, write_refused
from dse.nets import Codec
from dse.report import fmt, plots
from dse.search import (
    BASELINES,
    METRICS,
    Candidate,
    Explorer,
    Grid,
    Ruler,
    StudySpec,
    Sweep,
    TaskComparison,
    compare,
    compare_tasks,
    csv_text,
    ensure_grid,
    hypervolume,
    importances,
    load_study,
    load_sweep,
    restrict,
    run_sweep,
    single_task_spec,
    study_ruler,
    tidy_front,
    trials_frame,
    verdicts,
)

REPORTS_DIR = Path("reports")
#: The deployment map is scored in the report when the shipped edge devices x links x the
#: space's candidates come to at most this many scorings (about 1 s per 40 000 on 2 cores);
#: above it, the report asks for ``dse sweep --json`` and ``dse report --sweep``.
MAP_BUDGET = 2_000_000
CODEC_NETWORKS = 4  # at most this many networks in the codec figure (dense first)
log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# a tiny document model, written as Markdown and as HTML
# --------------------------------------------------------------------------------------


class Code(NamedTuple):
    text: str


class Bold(NamedTuple):
    text: str


class Link(NamedTuple):
    text: str
    href: str


Inline = str | Code | Bold | Link


def _md_text(s: str) -> str:
    out = s.replace("\\", "\\\\")
    for ch in "<>*[]`|":
        out = out.replace(ch, "\\" + ch)
    return out


def _longest_tick_run(s: str) -> int:
    """The longest run of backticks in ``s`` (0 for none)."""
    return max((len(m) for m in re.findall(r"`+", s)), default=0)


def _md_inline(parts: Sequence[Inline]) -> str:
    out = []
    for p in parts:
        if isinstance(p, Code):
            tick = "`" * (_longest_tick_run(p.text) + 1)  # no run inside can close it
            pad = " " if p.text.startswith("`") or p.text.endswith("`") else ""
            out.append(f"{tick}{pad}{p.text.replace('|', '¦')}{pad}{tick}")
        elif isinstance(p, Bold):
            core = p.text.strip()
            lead = p.text[: len(p.text) - len(p.text.lstrip())]
            trail = p.text[len(p.text.rstrip()) :]
            out.append(f"{lead}**{_md_text(core)}**{trail}")
        elif isinstance(p, Link):
            out.append(f"[{_md_text(p.text)}]({p.href})")
        else:
            out.append(_md_text(p))
    return "".join(out)


def _html_inline(parts: Sequence[Inline]) -> str:
    out = []
    for p in parts:
        if isinstance(p, Code):
            out.append(f"<code>{html.escape(p.text)}</code>")
        elif isinstance(p, Bold):
            out.append(f"<strong>{html.escape(p.text)}</strong>")
        elif isinstance(p, Link):
            out.append(f'<a href="{html.escape(p.href, quote=True)}">{html.escape(p.text)}</a>')
        else:
            out.append(html.escape(p))
    return "".join(out)


def _parts(x: Inline | Sequence[Inline]) -> list[Inline]:
    return [x] if isinstance(x, str | Code | Bold | Link) else list(x)


@dataclass
class Doc:
    """Blocks of a report: headings, paragraphs, lists, tables, code, figures."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def h(self, level: int, text: str, anchor: str | None = None) -> None:
        self.blocks.append(("h", (level, text, anchor)))

    def p(self, *parts: Inline) -> None:
        self.blocks.append(("p", list(parts)))

    def items(self, rows: Sequence[Inline | Sequence[Inline]]) -> None:
        self.blocks.append(("ul", [_parts(r) for r in rows]))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Inline]]) -> None:
        self.blocks.append(("table", (list(headers), [[_parts(c) for c in r] for r in rows])))

    def code(self, text: str) -> None:
        self.blocks.append(("code", text))

    def figure(self, stem: str, caption: str) -> None:
        """``stem``: path of the figure without suffix, relative to the report folder."""
        self.blocks.append(("figure", (stem, caption)))

    def markdown(self) -> str:
        out = [f"# {_md_text(self.title)}", ""]
        for kind, b in self.blocks:
            if kind == "h":
                level, text, _ = b
                out += ["#" * (level + 1) + " " + _md_text(text), ""]
            elif kind == "p":
                out += [_md_inline(b), ""]
            elif kind == "ul":
                out += [f"- {_md_inline(r)}" for r in b] + [""]
            elif kind == "table":
                headers, rows = b
                out.append("| " + " | ".join(_md_text(h) for h in headers) + " |")
                out.append("|" + "---|" * len(headers))
                out += [
                    "| " + " | ".join(_md_inline(c).replace("\n", " ") for c in r) + " |"
                    for r in rows
                ]
                out.append("")
            elif kind == "code":
                fence = "`" * max(3, _longest_tick_run(b) + 1)  # no line inside closes it
                out += [fence, b.rstrip("\n"), fence, ""]
            elif kind == "figure":
                stem, caption = b
                out += [
                    f"![{_md_text(caption)}]({stem}.png)",
                    "",
                    f"*{_md_text(caption)}* ([SVG]({stem}.svg))",
                    "",
                ]
        return "\n".join(out)

    def html(self) -> str:
        body = []
        toc = []
        for kind, b in self.blocks:
            if kind == "h":
                level, text, anchor = b
                tag = f"h{level + 1}"
                aid = f' id="{html.escape(anchor, quote=True)}"' if anchor else ""
                body.append(f"<{tag}{aid}>{html.escape(text)}</{tag}>")
                if anchor and level == 1:
                    toc.append(
                        f'<li><a href="#{html.escape(anchor, quote=True)}">'
                        f"{html.escape(text)}</a></li>"
                    )
            elif kind == "p":
                body.append(f"<p>{_html_inline(b)}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{_html_inline(r)}</li>" for r in b) + "</ul>")
            elif kind == "table":
                headers, rows = b
                head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
                trs = "".join(
                    "<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in r) + "</tr>"
                    for r in rows
                )
                body.append(
                    f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
                    f"<tbody>{trs}</tbody></table></div>"
                )
            elif kind == "code":
                body.append(f"<pre><code>{html.escape(b)}</code></pre>")
            elif kind == "figure":
                stem, caption = b
                src = html.escape(f"{stem}.png", quote=True)
                svg = html.escape(f"{stem}.svg", quote=True)
                cap = html.escape(caption)
                body.append(
                    f'<figure><a href="{svg}"><img src="{src}" alt="{cap}"></a>'
                    f'<figcaption>{cap} (<a href="{svg}">SVG</a>)</figcaption>'
                    "</figure>"
                )
        nav = f"<nav><ul>{''.join(toc)}</ul></nav>" if toc else ""
        title = html.escape(self.title)
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{title}</h1>\n{nav}\n" + "\n".join(body) + "\n</body>\n</html>\n"
        )


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f3f3f3}tbody tr:nth-child(even){background:#fafafa}
.scroll{overflow-x:auto}pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}
code{background:#f3f3f3;padding:0 .2em}figure{margin:1em 0}
img{max-width:100%;border:1px solid #eee}figcaption{font-size:.9em;color:#555}
nav ul{columns:2;font-size:.92em}
""".replace("\n", "")

# --------------------------------------------------------------------------------------
# numbers shown in human units
# --------------------------------------------------------------------------------------


def _kind(metric: str) -> str:
    if metric in ("accuracy", "test_accuracy") or metric.endswith("_rate"):
        return "%"
    if metric.startswith(("accuracy.", "test_accuracy.", "accuracy_min", "test_accuracy_min")):
        return "%"  # a task's accuracy, or the lowest task's
    if metric.startswith(("latency", "test_latency")) or metric.endswith("_s"):
        return "s"
    if metric in ("bandwidth", "test_bandwidth", "edge_memory", "storage", "bytes"):
        return "B"
    if "energy" in metric or metric.endswith("_j"):
        return "J"
    return ""


def human(metric: str, value: Any) -> str:
    """One metric value in human units (fmt); "-" for a missing one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    kind = _kind(metric)
    if kind == "%":
        return fmt.percent(float(value))
    if kind and float(value) == 0:
        return f"0 {kind}"
    if kind == "s":
        return fmt.seconds(float(value))
    if kind == "B":
        return fmt.nbytes(float(value))
    if kind == "J":
        return fmt.joules(float(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _ratio(x: float) -> str:
    if x is None or math.isnan(x):
        return "-"
    if math.isinf(x):
        return "∞"
    return f"{x:.2f}x"


def _mbps(bps: float) -> str:
    if bps >= 1e9:
        return f"{bps / 1e9:.3g} Gbit/s"
    return f"{bps / 1e6:.3g} Mbit/s"


# --------------------------------------------------------------------------------------
# what the report is made of
# --------------------------------------------------------------------------------------


@dataclass
class Figures:
    """Key -> caption of the figures drawn, or the sentence standing in for one."""

    folder: Path
    drawn: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    infos: dict[str, Any] = field(default_factory=dict)

    def draw(
        self,
        key: str,
        caption: str,
        make: Callable[[], Any],
        render: Callable[[Any, Path], list[Path]],
        *,
        what: str,
    ) -> Any:
        try:
            info = make()
            render(info, self.folder / key)
        except Exception as exc:  # a figure that cannot be drawn never stops the report
            if write_refused(self.folder, exc) is not None:
                raise  # ... but a full disk does: the report as a whole is not written
            detail = "".join(traceback.format_exception_only(exc)).strip()
            log.warning("the %s could not be drawn", what, exc_info=True)
            self.missing[key] = f"The {what} could not be drawn: {detail}"
            return None
        self.drawn[key] = caption
        self.infos[key] = info
        return info

    def skip(self, key: str, sentence: str) -> None:
        self.missing[key] = sentence

    def put(self, doc: Doc, key: str) -> None:
        if key in self.drawn:
            doc.figure(f"figures/{key}", self.drawn[key])
        elif key in self.missing:
            doc.p(Bold("Figure not drawn. "), self.missing[key])


def _say(progress: bool) -> Callable[[str], None]:
    def say(msg: str) -> None:
        if progress:
            print(f"report: {msg}", file=sys.stderr, flush=True)

    return say


def _tuple(v: Any) -> tuple:
    if isinstance(v, tuple | list):
        return tuple(v)
    if isinstance(v, str):
        return tuple(json.loads(v))
    return ()


def candidate_of(row: Mapping[str, Any]) -> Candidate:
    """The Candidate of a trials/grid frame row."""
    return Candidate.from_row(row)


def baseline_bests(grid: Grid, ruler: Ruler) -> dict[str, pd.Series]:
    """Each baseline's feasible grid point closest to the ideal point on ``ruler``.

    As in ``compare``: the baseline's rows of the whole grid, then the feasible ones. The
    joint search is the study's own trials, already on the figure: no grid point stands in.
    """
    names = list(ruler.names)
    out: dict[str, pd.Series] = {}
    for b in BASELINES:
        if b == "joint":
            continue
        sub = restrict(grid.frame, b)
        sub = sub[sub["feasible"].astype(bool)]
        if not len(sub):
            continue
        losses = ruler.loss(sub[names].to_numpy())
        out[b] = sub.iloc[int(np.argmin(np.linalg.norm(losses, axis=1)))]
    return out


class TasksSection(NamedTuple):
    """The multi-task comparison the report shows (a spec with several tasks)."""

    comparison: TaskComparison | None  # None: it could not be computed (``error`` says why)
    networks: int  # single-task networks it needs: one per task
    trained_now: int  # of them, trained for this report; the others came from the cache
    error: str | None


def tasks_section_info(explorer: Explorer) -> TasksSection:
    """One backbone against one network per task (:func:`dse.search.compare_tasks`) for
    ``explorer``'s spec, and how many single-task networks had to be trained for it.

    A comparison that cannot be computed never stops the report: the section says why.
    """
    tasks = explorer.tasks or ()
    base = explorer.network_spec("dense", 1.0)
    missing = sum(not explorer.cache.path(single_task_spec(base, t).key).exists() for t in tasks)
    try:
        comparison = compare_tasks(explorer)
    except Exception as exc:  # the rest of the report still comes out
        log.warning("the multi-task comparison could not be computed", exc_info=True)
        detail = "".join(traceback.format_exception_only(exc)).strip()
        return TasksSection(None, len(tasks), 0, detail)
    return TasksSection(comparison, len(tasks), missing, None)


# --------------------------------------------------------------------------------------
# write_report
# --------------------------------------------------------------------------------------


def write_report(
    name: str,
    out: Path | str | None = None,
    *,
    storage: str | None = None,
    progress: bool = True,
    sweep: Path | str | None = None,
) -> Path:
    """Write the report of study ``name`` under ``out`` (default reports/NAME); return
    the path of its index.html.

    The deployment map comes from ``sweep`` (a file ``dse sweep --json`` wrote for this
    study's spec) or, without one, from a sweep of the space over the shipped edge devices
    and links (server: the spec's) scored now, when that is small enough
    (:data:`MAP_BUDGET`).

    If the study's exhaustive grid has not been computed it is computed and saved, and
    its ruler and hypervolume are written to the study (when absent) so that every
    hypervolume of the report is measured on the same ruler.
    """
    say = _say(progress)
    study, spec = load_study(name, storage=storage)
    given = load_sweep(sweep) if sweep is not None else None
    if given is not None and given.spec != spec.name:
        raise InputError(
            sweep,
            "spec",
            f"a sweep of spec {given.spec!r}, not of {spec.name!r}",
            f"run `dse sweep` on the spec of study {spec.name}",
        )
    out = REPORTS_DIR / name if out is None else Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(
            out,
            "--out",
            "is a file, not a folder",
            "give a folder for the report (created when missing)",
        )
    new = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        # written here first, moved into place once whole: a write the disk refuses
        # leaves the previous report as it was
        stage = Path(tempfile.mkdtemp(dir=out, prefix=".report-", suffix=".tmp"))
    except OSError as exc:
        raise write_refused(out, exc) or InputError(
            out,
            "--out",
            f"cannot create the report folder: {exc.strerror}",
            "give a folder you can write to",
        ) from None
    try:
        figdir = stage / FIGURES
        figdir.mkdir()
        say(f"loading the networks of {name}")
        explorer = Explorer(spec, progress=progress)
        grid = ensure_grid(study, explorer, say=say)

        say("computing the figures")
        r = _Report(study, spec, explorer, grid, Figures(figdir))
        r.given_sweep = given
        r.say = say
        r.compute()
        doc = r.document()
        say(f"writing {out}")
        (stage / "front.csv").write_text(csv_text(r.front))
        (stage / "report.md").write_text(doc.markdown(), encoding="utf-8")
        (stage / "index.html").write_text(doc.html(), encoding="utf-8")
        # whole: the old report gives way (renames only; a figure not drawn this time
        # does not linger, since the figures folder is replaced whole)
        if (out / FIGURES).is_dir():
            os.replace(out / FIGURES, stage / f"{FIGURES}.old")
        os.replace(figdir, out / FIGURES)
        for file in ("front.csv", "report.md", "index.html"):
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


FIGURES = "figures"


class _Report:
    """Everything the report shows, computed once, then laid out by ``document``."""

    def __init__(
        self, study: Any, spec: StudySpec, explorer: Explorer, grid: Grid, figures: Figures
    ):
        self.study, self.spec, self.ex, self.grid, self.fig = study, spec, explorer, grid, figures
        self.names = list(spec.objectives)
        #: the spec's tasks where it has several (per-task columns, thresholds, section)
        self.tasks: tuple[str, ...] = tuple(spec.tasks) if len(spec.tasks) > 1 else ()
        self.given_sweep: Sweep | None = None  # a sweep file's (dse report --sweep)
        self.say: Callable[[str], None] = lambda _msg: None

    def _exits(self, c: Candidate, short: bool = False) -> str:
        return _exits_text(c, self.ex.exit_names, short=short, tasks=self.tasks)

    # ---- numbers --------------------------------------------------------------------

    def compute(self) -> None:
        spec, names = self.spec, self.names
        self.counts: dict[str, int] = {}
        for t in self.study.get_trials(deepcopy=False):
            self.counts[t.state.name] = self.counts.get(t.state.name, 0) + 1
        df = trials_frame(self.study)
        if df.empty:
            df = pd.DataFrame(columns=["trial", *names, "feasible"])
        self.df = df.sort_values("trial").reset_index(drop=True)
        self.ruler, self.ruler_source = study_ruler(self.study, spec)
        values = self.df[names].to_numpy(dtype=float) if len(self.df) else np.zeros((0, len(names)))
        feasible = self.df["feasible"].to_numpy(dtype=bool)
        self.bests = baseline_bests(self.grid, self.ruler)
        gf = self.grid.frame
        reference = (
            gf[gf["pareto"].astype(bool)][names].to_numpy(dtype=float) if ("pareto" in gf) else None
        )
        title = (
            f"Pareto front of {spec.name}: {spec.model} on {spec.data['name']}, "
            f"{self.ex.edge.name} -> {self.ex.link.name} -> {self.ex.server.name}"
        )
        self.front_info = plots.front_info(
            values,
            names,
            spec.directions,
            feasible=feasible,
            trials=self.df["trial"].to_numpy(dtype=int),
            ruler=self.ruler,
            baselines={b: row[names].to_numpy(dtype=float) for b, row in self.bests.items()},
            reference=reference,
            title=title,
        )
        fi = self.front_info
        self.front = tidy_front(self.df[fi.on_front], spec)
        self.rec = self.df.iloc[fi.knee] if fi.knee is not None else None
        self.rec_cand = candidate_of(self.rec) if self.rec is not None else None

        self.comparison = compare(self.grid, spec, self.df)
        self.hv_study = hypervolume(self.ruler.loss(values[feasible])) if feasible.any() else 0.0
        # the grid's best is its own space's, as `dse study status` measures it: the edgent
        # right-sizing points (threshold 0) lie outside what the study can sample
        own = self.grid.own_feasible()
        self.hv_grid = (
            hypervolume(self.ruler.loss(own[names].to_numpy(dtype=float))) if (len(own)) else 0.0
        )
        self.verify = self.study.user_attrs.get("verify")

        self.rec_scorer = None
        self.rescored = None
        if self.rec_cand is not None:
            self.rec_scorer = self.ex.scorer(
                self.rec_cand.method, self.rec_cand.density, self.rec_cand.split
            )
            self.rescored = self.rec_scorer.score(self.rec_cand)
        self.dense = self.ex.scorer("dense", 1.0)
        self.learning = self.ex.learning_warnings()
        self.task_section = tasks_section_info(self.ex) if self.tasks else None
        self.codec_networks = self._codec_networks()
        self.sweep, self.sweep_note = self._deployment_sweep()
        self._figures()

    def _deployment_sweep(self) -> tuple[Sweep | None, str]:
        """The sweep the deployment map shows and a sentence saying where it came from."""
        if self.given_sweep is not None:
            return self.given_sweep, "from the sweep file given to dse report --sweep"
        ex, spec = self.ex, self.spec
        shipped = [d for d in list_devices() if _device_kind(d) == "edge"]
        # an int8-only board cannot run a float32 edge part (see check_runs_float)
        integer = [d for d in shipped if _integer_only(d)]
        edges = [d for d in shipped if d not in integer]
        links = list_links()
        for mine, names in ((ex.edge.name, edges), (ex.link.name, links)):
            if mine not in names:
                names.append(mine)
        edges = [e if e in list_devices() else spec.edge for e in edges]
        links = [x if x in list_links() else spec.link for x in links]
        work = len(edges) * len(links) * ex.space.size()
        how = (
            f"dse sweep {self._spec_shown()} --edge {','.join(edges)} --link "
            f"{','.join(links)} --json sweep.json, then dse report {spec.name} --sweep "
            "sweep.json"
        )
        if work > MAP_BUDGET:
            return None, (
                f"The deployment map was not scored here: {len(edges)} edge devices x "
                f"{len(links)} links x {ex.space.size()} candidates is more than "
                f"{MAP_BUDGET:,} scorings. Run {how}."
            )
        self.say(f"scoring the space on {len(edges)} edge devices x {len(links)} links")
        try:
            sw = run_sweep(spec, edges, links, explorer=ex)
        except InputError as exc:
            return None, f"The deployment map could not be scored: {exc}"
        left = (
            f"; left out: {', '.join(integer)} (int8 only, and the networks are float32)"
            if integer
            else ""
        )
        return sw, (
            f"scored for this report over the shipped edge devices and links (server "
            f"{ex.server.name}){left}; for other profiles run {how}"
        )

    def _spec_shown(self) -> str:
        """The spec's file as the report shows it: relative to the working folder, or its
        name alone (never a path of the machine that wrote the report)."""
        if self.spec.path is None:
            return f"studies/{self.spec.name}.toml"
        shown = shown_path(self.spec.path)
        # a spec kept under another checkout's studies/ folder: where it lives here
        return (
            f"studies/{shown}"
            if "/" not in shown and Path(self.spec.path).parent.name == "studies"
            else shown
        )

    def _codec_networks(self) -> list[tuple[str, float]]:
        """The networks whose codecs the report shows (a spec with codecs): the dense one,
        then each other network on the front, at most :data:`CODEC_NETWORKS` in all."""
        if not self.spec.codecs:
            return []
        nets = [("dense", 1.0)]
        for _, r in self.front.iterrows():
            c = candidate_of(r)
            net = ("dense", 1.0) if c.network[0] == "dense" else c.network
            if net not in nets:
                nets.append(net)
        return nets[:CODEC_NETWORKS]

    def _figures(self) -> None:
        f, spec, ex = self.fig, self.spec, self.ex
        deploy = f"{ex.edge.name} -> {ex.link.name} -> {ex.server.name}"
        f.draw(
            "front",
            "Pareto front: every complete trial, the feasible front highlighted, "
            "the recommended (knee) point and each baseline's best point",
            lambda: self.front_info,
            plots.render_front,
            what="Pareto front",
        )
        dense_table = self.dense.table
        f.draw(
            "layers",
            "Per-layer latency on the edge and the server (bars) and the bytes a "
            "cut after each layer sends (line, log scale), for the dense network",
            lambda: plots.layer_profile_info(
                dense_table,
                exit_names=ex.exit_names,
                title=f"Per-layer cost of {spec.model} (dense) on {deploy}",
            ),
            plots.render_layer_profile,
            what="per-layer profile",
        )
        rc, sc = self.rec_cand, self.rec_scorer
        none = "No trial is feasible, so there is no recommended configuration to draw the {} for."
        if rc is None or sc is None:
            for key, what in (
                ("split", "split sweep"),
                ("exits", "exit analysis"),
                ("bandwidth", "bandwidth regime map"),
            ):
                f.skip(key, none.format(what))
        else:
            net = _network_name(rc)
            f.draw(
                "split",
                "Latency per cut point with no early exit, stacked edge / "
                "transfer / server, for the recommended network; the line is the expected "
                "latency with the recommended exits and threshold",
                lambda: plots.split_sweep_info(
                    sc.table,
                    allowed=ex.space.cuts,
                    chosen=rc.split,
                    policy_s=[
                        sc.score(replace(rc, split=int(k))).latency_mean
                        for k in range(sc.table.n_cuts)
                    ]
                    if rc.exits
                    else None,
                    title=f"Latency per cut of {spec.model} ({net}) on {deploy}",
                ),
                plots.render_split_sweep,
                what="split sweep",
            )
            if not ex.space.allowed_exits:
                f.skip(
                    "exits",
                    "The model has no early-exit sites in this study's space, so "
                    "there is no exit analysis.",
                )
            else:
                f.draw(
                    "exits",
                    "Accuracy, early-exit rate and expected latency against the "
                    "confidence threshold, per exit subset, for the recommended network at "
                    "its cut",
                    lambda: plots.exit_info(
                        sc.score,
                        rc,
                        ex.space.exit_subsets(),
                        spec.thresholds,
                        exit_names=ex.exit_names,
                        title=f"Early exits of {spec.model} ({net}) at cut {rc.split} on {deploy}",
                    ),
                    plots.render_exits,
                    what="exit analysis",
                )
            fam = self._exits(rc)
            f.draw(
                "bandwidth",
                "The fastest cut and its expected latency as the uplink "
                "sweeps from 0.1 Mbit/s to 1 Gbit/s (cost model; RTT, downlink and radio "
                "kept), for the recommended network, exits and threshold",
                lambda: plots.bandwidth_info(
                    sc.graph,
                    ex.edge,
                    ex.server,
                    ex.link,
                    cuts=ex.space.cuts,
                    score=lambda table, c: replace(sc, table=table).score(c).latency_mean,
                    candidate=rc,
                    tail=spec.tail_energy,
                    title=f"Best cut of {spec.model} ({net}, {fam}) vs uplink: "
                    f"{ex.edge.name} -> {ex.server.name}, {ex.link.name} RTT "
                    f"{fmt.seconds(ex.link.rtt_s)}",
                ),
                plots.render_bandwidth,
                what="bandwidth regime map",
            )
        if self.sweep is None:
            f.skip("deployments", self.sweep_note)
        else:
            sw = self.sweep
            f.draw(
                "deployments",
                "The best configuration (the knee of each deployment's "
                "feasible front) per edge device and link: where it runs, its cut, mean "
                "latency, edge energy and accuracy; ★ marks a split that beats both ends",
                lambda: plots.deployment_map_info(
                    sw,
                    server=ex.server.name
                    if any(r.server == ex.server.name for r in sw.results)
                    else None,
                    current=(ex.edge.name, ex.link.name),
                    title=f"Best configuration of {spec.name} per edge device and link",
                ),
                plots.render_deployment_map,
                what="deployment map",
            )
        trained = {_net_label(*n): ex.scorer(*n).trained for n in ex.space.networks()}
        f.draw(
            "training",
            "Training loss and validation accuracy (final classifier) per "
            "epoch of every network of the space; the dot marks the best validation "
            "epoch, the square the epoch whose weights were kept where it differs",
            lambda: plots.training_info(
                trained,
                title=f"Training curves of {spec.model} on {spec.data['name']} "
                f"({ex.train_config.describe()})",
            ),
            plots.render_training,
            what="training curves",
        )
        f.draw(
            "density",
            "Final-classifier accuracy, stored size, FLOPs and edge-only latency "
            "against density, per sparsity method",
            lambda: plots.density_info(
                {n: ex.scorer(*n) for n in ex.space.networks()},
                spec.methods,
                title=f"Density of {spec.model} on {spec.data['name']}: accuracy and cost "
                f"({ex.edge.name})",
            ),
            plots.render_density,
            what="density figure",
        )
        vals = (
            self.df[self.names].to_numpy(dtype=float)
            if len(self.df)
            else np.zeros((0, len(self.names)))
        )
        if not len(self.df):
            f.skip("hypervolume", "The study has no complete trial yet.")
            f.skip("importance", "The study has no complete trial yet.")
            return
        f.draw(
            "hypervolume",
            "Hypervolume of the feasible trials so far against the trial "
            "number, as a share of the exhaustive grid's (same ruler)",
            lambda: plots.hypervolume_info(
                vals,
                self.df["trial"].to_numpy(dtype=int),
                self.df["feasible"].to_numpy(dtype=bool),
                self.ruler,
                grid_hv=self.hv_grid or None,
                ruler_source=self.ruler_source,
                title=f"Hypervolume of {spec.name} ({spec.sampler}) against trial number",
            ),
            plots.render_hypervolume,
            what="hypervolume history",
        )
        self._task_figure()
        self._codec_figure()
        self.importance = importances(self.study, self.names, seed=spec.seed)
        f.draw(
            "importance",
            "How much each knob explains each objective across the trials (fANOVA)",
            lambda: plots.importance_info(
                self.importance, title=f"Knob importance (fANOVA) in {spec.name}"
            ),
            plots.render_importance,
            what="knob importance",
        )

    def _codec_figure(self) -> None:
        if not self.codec_networks:
            return
        ex, spec = self.ex, self.spec

        def infos() -> tuple[plots.RateAccuracyInfo, ...]:
            return tuple(
                plots.rate_accuracy_info(
                    ex.scorer(m, d),
                    network=_net_label(m, d),
                    title=f"Codecs at the cut: {spec.model} on {spec.data['name']}, bytes sent "
                    f"over {ex.link.name} against final-classifier accuracy",
                )
                for m, d in self.codec_networks
            )

        self.fig.draw(
            "codecs",
            "Per cut that sends something, the mean payload of each codec "
            "(header included, validation samples) against the final classifier's "
            "validation accuracy on the decoded tensors (left; grey lines join one "
            "cut's codecs), and each codec's accuracy change against fp32 per cut "
            "(right)"
            + (
                ", for the dense network and each network on the front"
                if len(self.codec_networks) > 1
                else ", for the dense network"
            ),
            infos,
            plots.render_rate_accuracy,
            what="rate-accuracy figure",
        )

    def _task_figure(self) -> None:
        ts = self.task_section
        if ts is None:
            return
        if ts.comparison is None:
            self.fig.skip("tasks", "The multi-task comparison could not be computed.")
            return
        cmp, ex = ts.comparison, self.ex
        self.fig.draw(
            "tasks",
            "One backbone for all tasks (MTL) against one network per task (STL): "
            "mean latency, edge energy and bytes sent at each design's best cut, at MTL-Split's "
            "cut (where the comparison has it), all on the edge and all on the server, and "
            "each task's test accuracy",
            lambda: plots.tasks_info(
                cmp,
                title=f"{self.spec.model} on {self.spec.data['name']}: one backbone for "
                f"{len(cmp.tasks)} tasks or one network per task "
                f"({ex.edge.name} -> {ex.link.name} -> {ex.server.name})",
            ),
            plots.render_tasks,
            what="multi-task comparison figure",
        )

    # ---- the document ---------------------------------------------------------------

    def document(self) -> Doc:
        spec, ex = self.spec, self.ex
        doc = Doc(f"dse report: {spec.name}")
        self._what_to_do(doc)
        for line in self.learning:
            doc.p(Bold("Warning: "), line[0].upper() + line[1:] + ".")
        self._front(doc)
        doc.h(1, "The study", "study")
        if spec.description:
            doc.p(spec.description)
        doc.p(
            f"Model {spec.model} on {spec.data['name']}; edge {ex.edge.name}, server "
            f"{ex.server.name}, link {ex.link.name}. Constraints: ",
            ", ".join(str(c) for c in spec.constraints) or "none",
            f". Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Objectives:",
        )
        doc.items([[Code(m), f" ({d}): {_metric_text(m)}"] for m, d in spec.objectives.items()])
        self._summary(doc)
        self._recommended(doc)
        self._deployment_map(doc)
        self._training(doc)
        self._baselines(doc)
        self._tasks_section(doc)
        self._why(doc)
        self._codecs(doc)
        self._density(doc)
        self._search(doc)
        self._verification(doc)
        self._notes(doc)
        self._deployment(doc)
        self._spec(doc)
        self._reproduce(doc)
        return doc

    # ---- the first screen: what to do, why, what it gives up, what would change it -----

    def _what_to_do(self, doc: Doc) -> None:
        """One paragraph: the recommendation, why, what it gives up, what would change it."""
        doc.h(1, "What to do", "recommendation")
        ex = self.ex
        if self.rec is None or self.rec_cand is None:
            doc.p(
                Bold("Nothing to deploy yet: no trial is feasible. "),
                f"The exhaustive grid has {len(self.grid.feasible())} feasible candidates of "
                f"{len(self.grid.frame)} on {ex.edge.name} -> {ex.link.name} -> "
                f"{ex.server.name}; "
                + (
                    "run more trials."
                    if len(self.grid.feasible())
                    else "the constraints ("
                    + ", ".join(str(c) for c in self.spec.constraints)
                    + ") exclude the whole space: relax them, or pick another device or "
                    "link (see the deployment map)."
                )
                + self._map_sentence(),
            )
            return
        row, c = self.rec, self.rec_cand
        sends = self._sends(c, row)
        k, last = c.split, len(ex.reference_graph.cuts) - 1
        if k == 0:
            where = (
                f"run it all on the server ({ex.server.name}): {ex.edge.name} sends its "
                f"input over {ex.link.name} ({human('bandwidth', row['bandwidth'])})"
            )
        elif not sends:
            where = (
                f"run it all on {ex.edge.name} ("
                + ("edge-only" if k == last else "every sample is answered by an exit on the edge")
                + ": nothing is sent)"
            )
        else:
            where = (
                f"split it at cut {k} (after {ex.reference_graph.cuts[k].after}): "
                f"{ex.edge.name} runs the first part and sends "
                f"{human('bandwidth', row['bandwidth'])} per inference over "
                f"{ex.link.name} to {ex.server.name}"
            )
        parts: list[Inline] = [
            Bold(f"Deploy {_network_name(c)} with {self._exits(c)}"),
            f" and {where}. ",
            f"Expected per inference: accuracy {human('accuracy', row['accuracy'])} "
            f"(test {human('accuracy', row['test_accuracy'])}), latency "
            f"{human('latency_mean', row['latency_mean'])}, edge energy "
            f"{human('edge_energy', row['edge_energy'])}. ",
            f"Why: of the {len(self.front)} feasible front trials it is the closest to the "
            "ideal point with every objective scaled to [0, 1] (the knee)"
            + self._ends_text()
            + ". ",
            "It gives up " + self._gives_up() + ". ",
            "What would change it: " + self._would_change() + ".",
        ]
        doc.p(*parts)

    def _ends_text(self) -> str:
        """How the recommendation compares with the best edge-only and server-only
        configurations on the study's own deployment (from the deployment sweep)."""
        r = self._own_cell()
        if r is None:
            return ""
        out = []
        mine = self.rec_cand.as_dict() if self.rec_cand is not None else None
        for label, end in (("edge-only", r.edge_only), ("server-only", r.server_only)):
            if end is None:
                out.append(f"no {label} configuration is feasible")
            elif end.knobs == mine:
                out.append(f"it is itself the best {label} configuration")
            else:
                m = end.metrics
                out.append(
                    f"the best {label} one has accuracy {human('accuracy', m['accuracy'])}"
                    f", latency {human('latency_mean', m['latency_mean'])} and edge "
                    f"energy {human('edge_energy', m['edge_energy'])}"
                )
        return "; " + "; ".join(out)

    def _own_cell(self) -> Any:
        """The deployment sweep's result for the study's own edge, link and server."""
        if self.sweep is None:
            return None
        ex = self.ex
        return next(
            (
                r
                for r in self.sweep.results
                if (r.edge, r.link, r.server) == (ex.edge.name, ex.link.name, ex.server.name)
            ),
            None,
        )

    def _gives_up(self) -> str:
        """Per objective, how far the recommendation is from the front's best on it."""
        row, front = self.rec, self.front
        out = []
        for m, d in self.spec.objectives.items():
            if m not in front or not len(front):
                continue
            i = front[m].idxmax() if d == "maximize" else front[m].idxmin()
            best, mine = float(front.loc[i, m]), float(row[m])
            trial = int(front.loc[i, "trial"])
            if d == "maximize" and best > mine + 1e-12:
                gap = (
                    f"{100 * (best - mine):.2g} points"
                    if _kind(m) == "%"
                    else human(m, best - mine)
                )
                out.append(f"{gap} of {_short(m)} (trial {trial} reaches {human(m, best)})")
            elif d == "minimize" and mine > best * (1 + 1e-9) + 1e-300:
                ratio = mine / best if best > 0 else float("inf")
                out.append(f"{_short(m)}: {ratio:.3g}x that of trial {trial} ({human(m, best)})")
        return (
            "; ".join(out) + " (each the best of the feasible front on that objective)"
            if out
            else "nothing: no feasible trial does better on any objective"
        )

    def _would_change(self) -> str:
        """What would move the recommendation: the link's bandwidth, another device or
        link, and the constraints."""
        out = []
        bw = self.fig.infos.get("bandwidth")
        if bw is not None:
            spans = plots.regime_spans(bw)
            here = next(
                (
                    r
                    for r, lo, hi in spans
                    if lo <= bw.link_bps * 1.0001 and bw.link_bps <= hi * 1.0001
                ),
                None,
            )
            other = [
                f"{r} below {_mbps(hi)}"
                if lo <= bw.uplink_bps[0]
                else f"{r} above {_mbps(lo)}"
                if hi >= bw.uplink_bps[-1]
                else f"{r} from {_mbps(lo)} to {_mbps(hi)}"
                for r, lo, hi in spans
                if r != here
            ]
            if other:
                out.append(
                    "the uplink: with these exits the fastest is "
                    + ", ".join(other)
                    + " (bandwidth map)"
                )
            else:
                out.append(
                    f"not the uplink alone: {spans[0][0]} is fastest from "
                    f"{_mbps(bw.uplink_bps[0])} to {_mbps(bw.uplink_bps[-1])}"
                )
        out.append(
            self._map_sentence().strip().rstrip(".") or "another device or link (run dse sweep)"
        )
        binding = []
        gf = self.grid.frame
        for con in self.spec.constraints:
            if con.metric in gf:
                cut = int(sum(con.violation(v) > 0 for v in gf[con.metric]))
                if cut:
                    binding.append(f"{con} (it excludes {100 * cut / len(gf):.0f}% of the space)")
        if binding:
            out.append("relaxing " + ", ".join(binding))
        return "; ".join(x for x in out if x)

    def _map_sentence(self) -> str:
        """What the deployment map says in a sentence (empty without one)."""
        sw = self.sweep
        if sw is None:
            return ""
        own = self._own_cell()
        mine = own.where if own is not None else None
        others = [r for r in sw.results if r is not own and r.where != mine]
        wins = [r for r in sw.results if r.split_wins]
        text = (
            f" a split wins on {len(wins)} of the {len(sw.results)} deployments of the "
            "deployment map"
        )
        if not others and mine is not None:
            return (
                f" no edge device or link of the deployment map ({len(sw.edges)} x "
                f"{len(sw.links)}) changes where it runs: {mine} on every one."
            )
        if others:
            ex = others[:3]
            text += (
                " (elsewhere: "
                + ", ".join(
                    f"{r.edge} over {r.link}: {r.where}"
                    + (f" at cut {r.best.split}" if r.best is not None else "")
                    for r in ex
                )
                + (", ..." if len(others) > 3 else "")
                + ")"
            )
        return text + "."

    # ---- deployment map and training ------------------------------------------------

    def _deployment_map(self, doc: Doc) -> None:
        doc.h(1, "Deployment map", "deployments")
        sw = self.sweep
        if sw is None:
            doc.p(self.sweep_note)
            return
        doc.p(
            "Which edge device and which link suit this model: the study's space (the same "
            "networks, cuts, exits and thresholds, no training) scored on every "
            "combination, ",
            self.sweep_note,
            ". Per combination, the best configuration "
            "is the knee of its feasible front, under the spec's constraints and the edge "
            "device's memory; a split wins where that knee cuts inside the network and "
            "sends, i.e. it beats the best edge-only and the best server-only "
            "configurations.",
        )
        self.fig.put(doc, "deployments")
        rows = []
        for r in sw.results:
            b = r.best
            if b is None:
                rows.append([r.edge, r.link, r.server, "nothing feasible", "", "", "", "", ""])
                continue
            c = Candidate.from_row({f"knob_{k}": v for k, v in b.knobs.items()})
            rows.append(
                [
                    r.edge,
                    r.link,
                    r.server,
                    f"{_net_label(*c.network)}, cut {c.split}, {self._exits(c, short=True)}",
                    r.where + (" ★" if r.split_wins else ""),
                    human("accuracy", b.metrics["accuracy"]),
                    human("latency_mean", b.metrics["latency_mean"]),
                    human("edge_energy", b.metrics["edge_energy"]),
                    human("bandwidth", b.metrics["bandwidth"]),
                ]
            )
        doc.table(
            [
                "edge",
                "link",
                "server",
                "best configuration",
                "where",
                "accuracy",
                "latency",
                "edge energy",
                "sent",
            ],
            rows,
        )

    def _training(self, doc: Doc) -> None:
        doc.h(1, "Training curves", "training")
        self.fig.put(doc, "training")
        info = self.fig.infos.get("training")
        if info is None:
            return
        doc.table(
            [
                "network",
                "epochs run",
                "best validation epoch",
                "epoch kept",
                "validation accuracy there",
                "final training loss",
            ],
            [
                [
                    n,
                    str(len(info.epochs[i])),
                    str(info.best_epoch[i]),
                    str(info.kept_epoch[i]),
                    fmt.percent(
                        float(info.val_accuracy[i][list(info.epochs[i]).index(info.kept_epoch[i])])
                    )
                    if info.kept_epoch[i] in list(info.epochs[i])
                    else "-",
                    f"{float(info.loss[i][-1]):.4g}",
                ]
                for i, n in enumerate(info.networks)
            ],
        )

    def _summary(self, doc: Doc) -> None:
        doc.h(1, "Summary", "summary")
        n = len(self.df)
        n_feas = int(self.df["feasible"].sum()) if n else 0
        states = ", ".join(f"{v} {k.lower()}" for k, v in sorted(self.counts.items())) or "none"
        items: list[Inline | Sequence[Inline]] = [
            f"Trials: {states}; {n_feas} of {n} complete trials feasible; "
            f"{len(self.front)} on the feasible Pareto front.",
        ]
        if self.rec is None:
            items.append(
                [
                    Bold("No trial is feasible: there is no recommended configuration. "),
                    f"The exhaustive grid has {len(self.grid.feasible())} feasible "
                    f"candidates of {len(self.grid.frame)}; "
                    + (
                        "the sampler missed them: run more trials."
                        if len(self.grid.feasible())
                        else "the constraints exclude the whole space: relax them."
                    ),
                ]
            )
        else:
            items.append([Bold("Recommended: "), self._one_line(self.rec)])
        if self.hv_grid > 0:
            items.append(
                f"The study's feasible front reaches "
                f"{100 * self.hv_study / self.hv_grid:.1f}% of the exhaustive grid's "
                f"hypervolume ({self.hv_study:.4f} of {self.hv_grid:.4f}, on the "
                f"{self.ruler_source} ruler)."
            )
        else:
            items.append(
                "The exhaustive grid has no feasible candidate, so there is no "
                "hypervolume to compare with."
            )
        doc.items(items)

    def _one_line(self, row: pd.Series) -> str:
        c = candidate_of(row)
        codec = f", codec {c.codec}" if c.codec is not None and self._sends(c, row) else ""
        return (
            f"trial {int(row['trial'])}: {_network_name(c)}, {self._cut_text(c.split)}"
            f"{codec}, {self._exits(c)}; accuracy "
            f"{human('accuracy', row['accuracy'])}"
            f" (test {human('accuracy', row['test_accuracy'])})"
            + "".join(
                f"; {t} {human('accuracy', row.get(f'accuracy.{t}'))} (test "
                f"{human('accuracy', row.get(f'test_accuracy.{t}'))})"
                for t in self.tasks
            )
            + ", latency "
            f"{human('latency_mean', row['latency_mean'])}, sent "
            f"{human('bandwidth', row['bandwidth'])}, edge energy "
            f"{human('edge_energy', row['edge_energy'])}."
        )

    def _task_columns(self) -> list[str]:
        """Each task's validation and test accuracy columns (several tasks only)."""
        return [f"{split}.{t}" for t in self.tasks for split in ("accuracy", "test_accuracy")]

    def _cut_text(self, k: int) -> str:
        g = self.ex.reference_graph
        last = len(g.cuts) - 1
        if k == 0:
            return "cut 0 (server-only: the input is sent)"
        if k == last:
            return f"cut {k} (edge-only: nothing is sent)"
        return f"cut {k} (after {g.cuts[k].after})"

    def _recommended(self, doc: Doc) -> None:
        doc.h(1, "Recommended configuration", "recommended")
        if self.rec is None:
            doc.p(
                Bold("No trial is feasible"),
                ", so nothing is recommended. Constraints: ",
                ", ".join(str(c) for c in self.spec.constraints) or "none",
                ".",
            )
            return
        row, c, ex = self.rec, self.rec_cand, self.ex
        assert c is not None
        doc.p(
            "The knee of the feasible front: the front trial closest to the ideal point "
            f"when every objective is scaled to [0, 1] on the study's ruler "
            f"({self.ruler_source})."
        )
        exits = [ex.exit_names[j] if j < len(ex.exit_names) else str(j) for j in c.exits]
        doc.table(
            ["knob", "value"],
            [
                ["trial", str(int(row["trial"]))],
                ["network", _network_name(c)],
                ["cut", self._cut_text(c.split)],
                ["exits used", ", ".join(exits) or "none"],
                *self._threshold_rows(c),
                *(
                    [["codec at the cut", self._codec_text(c, row, long=True)]]
                    if c.codec is not None
                    else []
                ),
            ],
        )
        cap = ex.edge.mem_capacity_bytes
        rows = [
            [
                "accuracy" + (", mean over the tasks" if self.tasks else ""),
                human("accuracy", row["accuracy"]),
                human("accuracy", row["test_accuracy"]),
            ],
            *[
                [
                    f"· accuracy, {t}",
                    human("accuracy", row.get(f"accuracy.{t}")),
                    human("accuracy", row.get(f"test_accuracy.{t}")),
                ]
                for t in self.tasks
            ],
            [
                "latency, mean",
                human("latency_mean", row["latency_mean"]),
                human("latency_mean", row["test_latency_mean"]),
            ],
            ["· edge compute", human("edge_s", row["edge_s"]), ""],
            ["· transfer", human("transfer_s", row["transfer_s"]), ""],
            ["· server compute", human("server_s", row["server_s"]), ""],
            [
                "latency, p95",
                human("latency_p95", row["latency_p95"]),
                human("latency_p95", row["test_latency_p95"]),
            ],
            [
                "bytes sent per inference",
                human("bandwidth", row["bandwidth"]),
                human("bandwidth", row["test_bandwidth"]),
            ],
            [
                "edge energy per inference",
                human("edge_energy", row["edge_energy"]),
                human("edge_energy", row["test_edge_energy"]),
            ],
            ["· compute", human("edge_energy", row["compute_energy"]), ""],
            ["· radio (whole exchange)", human("edge_energy", row["radio_energy"]), ""],
            *[
                [f"  · radio, {label}", human("edge_energy", row[key]), ""]
                for key, label in (
                    ("radio_up_energy", "sending"),
                    ("radio_down_energy", "receiving the result"),
                    ("radio_wait_energy", "connected through RTT and server"),
                    ("radio_tail_energy", "tail"),
                )
                if key in row and row[key] == row[key]
            ],
            [
                "· idle while waiting for the link and the server",
                human("edge_energy", row.get("idle_energy", float("nan"))),
                "",
            ],
            [
                "edge memory (weights + peak activations)",
                human("edge_memory", row["edge_memory"])
                + f" ({100 * row['edge_memory'] / cap:.2g}% of {fmt.nbytes(cap)})",
                "",
            ],
            ["storage (edge and server parts)", human("storage", row["storage"]), ""],
        ]
        rates, trates = _tuple(row["exit_rates"]), _tuple(row["test_exit_rates"])
        labels = [f"leave at exit {e}" for e in exits] + ["run to the final classifier"]
        for lab, v, t in zip(labels, rates, trates, strict=False):
            rows.append([lab, fmt.percent(v), fmt.percent(t)])
        doc.table(["metric", "validation", "test"], rows)
        better = self.grid_better()
        if better is not None:
            c2 = candidate_of(better)
            vals = ", ".join(
                f"{m} {human(m, better[m])} (vs {human(m, row[m])})" for m in self.names
            )
            doc.p(
                Bold("The exhaustive grid has better: "),
                "the study did not find "
                f"{_network_name(c2)}, {self._cut_text(c2.split)}, "
                f"{self._exits(c2)}, which dominates the recommendation: "
                f"{vals}. Run more trials, or deploy that candidate.",
            )
        if self.rescored is not None:
            drift = abs(self.rescored.accuracy - float(row["accuracy"])) + abs(
                self.rescored.latency_mean - float(row["latency_mean"])
            ) / max(float(row["latency_mean"]), 1e-12)
            if drift > 1e-6:
                doc.p(
                    Bold("Warning: "),
                    "scoring this configuration again now gives accuracy "
                    f"{human('accuracy', self.rescored.accuracy)} and latency "
                    f"{human('latency_mean', self.rescored.latency_mean)}: the cached "
                    "networks or the profiles changed since the study ran.",
                )

    def _threshold_rows(self, c: Candidate) -> list[list[Inline]]:
        """The threshold row of the knob table; with several tasks, one per task and the
        exit policy."""
        if not c.exits:
            return [["threshold", "- (no exit)"]]
        if not self.tasks:
            return [["threshold", f"{c.threshold:g} ({c.criterion})"]]
        per = c.thresholds(len(self.tasks))
        return [
            *[
                [f"threshold, {t}", f"{x:g} ({c.criterion})"]
                for t, x in zip(self.tasks, per, strict=True)
            ],
            [
                "exit policy",
                c.policy
                + (
                    " (a sample leaves where every task is confident)"
                    if c.policy == "all"
                    else " (each task answered at its first confident exit)"
                ),
            ],
        ]

    def grid_better(self) -> pd.Series | None:
        """The feasible candidate of the study's own space closest to ideal among those
        that dominate the recommendation (None if nothing does). The edgent right-sizing
        points lie outside the space the sampler draws from, so they are not counted."""
        if self.rec is None:
            return None
        feas = self.grid.feasible()
        feas = feas[feas.source == "space"]
        if not len(feas):
            return None
        sign = np.array([-1.0 if d == "maximize" else 1.0 for d in self.spec.directions])
        g = feas[self.names].to_numpy(dtype=float) * sign
        r = self.rec[self.names].to_numpy(dtype=float) * sign
        dom = np.all(g <= r + 1e-15, axis=1) & np.any(g < r - 1e-12 * np.abs(r), axis=1)
        if not dom.any():
            return None
        sub = feas[dom]
        losses = self.ruler.loss(sub[self.names].to_numpy(dtype=float))
        return sub.iloc[int(np.argmin(np.linalg.norm(losses, axis=1)))]

    def _front(self, doc: Doc) -> None:
        doc.h(1, "Pareto front", "front")
        self.fig.put(doc, "front")
        if not len(self.front):
            doc.p("No feasible trial, so the front is empty (front.csv has only its header).")
            return
        shown = self.front.head(40)
        knee = int(self.rec["trial"]) if self.rec is not None else -1
        per_task = self._task_columns()  # grouped by task, after the mean accuracy
        metrics = list(
            dict.fromkeys(
                [
                    *[m for m in self.names if m not in per_task],
                    "accuracy",
                    "test_accuracy",
                    *per_task,
                    "latency_mean",
                    "latency_p95",
                    "bandwidth",
                    "edge_energy",
                    "edge_memory",
                    "storage",
                ]
            )
        )
        metrics = [m for m in metrics if m in shown]
        coded = bool(self.spec.codecs)
        rows = []
        for _, r in shown.iterrows():
            c = candidate_of(r)
            rows.append(
                [
                    f"{int(r['trial'])}{' ★' if int(r['trial']) == knee else ''}",
                    _network_name(c),
                    _realised(r),
                    str(c.split),
                    self._exits(c, short=True),
                    *([self._codec_text(c, r)] if coded else []),
                    *[human(m, r[m]) for m in metrics],
                ]
            )
        doc.table(
            [
                "trial",
                "network",
                "realised density",
                "cut",
                "exits @ threshold",
                *(["codec"] if coded else []),
                *metrics,
            ],
            rows,
        )
        rest = len(self.front) - len(shown)
        more = f" ({rest} more rows)" if rest > 0 else ""
        doc.p(
            f"{len(self.front)} feasible front trials{more}; ★ marks the recommended one. "
            "All of them, with every knob and metric in SI units, are in ",
            Link("front.csv", "front.csv"),
            ".",
        )
        if coded:
            said, lossy = self.codec_usage()
            for line in said:
                doc.p(line)
            if lossy:
                doc.items(lossy)

    def _sends(self, c: Candidate, row: Mapping[str, Any] | None = None) -> bool:
        """Whether ``c`` sends anything: its cut does, and (given its scored ``row``) some
        sample reaches the server."""
        if float(self.ex.reference_graph.cuts[c.split].bytes) <= 0:
            return False
        return row is None or not float(row.get("bandwidth", 1.0)) == 0

    def _codec_text(
        self, c: Candidate, row: Mapping[str, Any] | None = None, *, long: bool = False
    ) -> str:
        """The codec knob of a candidate: its name, or that nothing is sent (then the codec
        decides nothing)."""
        if c.codec is None:
            return "-"
        if not self._sends(c):
            return "- (nothing sent)" if long else "-"
        if not self._sends(c, row):
            return (
                f"{c.codec}, unused: every sample leaves at an edge exit, nothing is sent"
                if long
                else "-"
            )
        return c.codec

    def codec_usage(self) -> tuple[list[str], list[str]]:
        """Which codecs the front's points use (counts) in sentences, and, one item each,
        every (lossy codec, network, cut) that sends on the front, with its payload as a
        share of fp32's there."""
        if not self.spec.codecs or not len(self.front):
            return [], []
        counts: dict[str, int] = {}
        lossy: dict[tuple[str, str], dict[int, list[int]]] = {}
        silent = 0
        for _, r in self.front.iterrows():
            c = candidate_of(r)
            if c.codec is None:
                continue
            if not self._sends(c, r):
                silent += 1
                continue
            counts[c.codec] = counts.get(c.codec, 0) + 1
            if _lossy(c.codec):
                net = _net_label(*c.network)
                lossy.setdefault((c.codec, net), {}).setdefault(c.split, []).append(int(r["trial"]))
        n = len(self.front)
        used = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        said = [
            f"Codecs on the front ({n} points; - in the codec column: nothing is sent): "
            + (
                used
                if used
                else "none, no front point sends anything, so the codec decides nothing on it"
            )
            + (
                f"; {silent} send nothing (edge-only, or every sample leaves at an edge "
                "exit), so the codec decides nothing there"
                if silent and used
                else ""
            )
            + "."
        ]
        if not lossy:
            if used:
                said.append(
                    "No front point sends a lossily coded tensor: no codec that "
                    "reduces precision made a cut better here."
                )
            return said, []
        said.append(
            "A lossy codec puts these cuts on the front (payload, validation mean, "
            "against fp32's at the same cut; final-classifier accuracy change):"
        )
        items = []
        for (codec, net), cuts in sorted(lossy.items()):
            info = self._codec_info(net)
            for k, trials in sorted(cuts.items()):
                where = ""
                if info is not None and k in info.cuts:
                    j = info.cuts.index(k)
                    where = (
                        f": {fmt.nbytes(info.bytes[codec][j])} instead of "
                        f"{fmt.nbytes(info.bytes[info.reference][j])} "
                        f"({info.ratio(codec)[j]:.3g}x), accuracy "
                        f"{info.change(codec)[j]:+.1f} points"
                    )
                ts = ", ".join(map(str, trials[:5])) + (", ..." if len(trials) > 5 else "")
                items.append(
                    f"{codec} at cut {k} of {net}{where} "
                    f"(trial{'s' if len(trials) > 1 else ''} {ts})"
                )
        return said, items

    def _codec_info(self, net: str) -> Any:
        """The rate-accuracy numbers of the network labelled ``net`` (None: not computed)."""
        for i in self.fig.infos.get("codecs") or ():
            if i.network == net:
                return i
        for m, d in self.ex.space.networks():
            if _net_label(m, d) == net:
                try:
                    return plots.rate_accuracy_info(self.ex.scorer(m, d), network=net)
                except ValueError:
                    return None
        return None

    def _baselines(self, doc: Doc) -> None:
        doc.h(1, "Against the baselines", "baselines")
        cmp = self.comparison
        ref = cmp.attrs.get("reference_accuracy", float("nan"))
        doc.p(
            "Each baseline is a restricted space of the same search, scored exhaustively on "
            "the same trained networks (its best possible) and measured with the same ruler. "
            "The joint row is what the study's own feasible trials found, not the grid. "
            "Matched accuracy: validation accuracy within 1 point of the dense server-only "
            f"network's ({human('accuracy', ref)}). Ratios are baseline / joint as measured: "
            "above 1 the study's trials are better, below 1 the baseline is. Test accuracy "
            "is that of the lowest-latency matched point."
        )
        if not len(self.grid.feasible()):
            doc.p(
                Bold("No candidate of the exhaustive grid is feasible"),
                ", so no baseline has anything to compare.",
            )
            return
        joint_hv = float(cmp.loc["joint", "hv"]) if "joint" in cmp.index else float("nan")
        rows = []
        for b, r in cmp.iterrows():
            name = str(b) if r["in_space"] else f"{b} (outside the space)"
            rows.append(
                [
                    name,
                    str(int(r["candidates"])),
                    f"{r['hv']:.4f}",
                    f"{100 * r['hv'] / joint_hv:.1f}%" if joint_hv > 0 else "-",
                    str(int(r["matched"])),
                    human("latency_mean", r["latency_s"]),
                    human("accuracy", r["test_accuracy"]),
                    _ratio(r["latency_s_ratio"]),
                    human("bandwidth", r["bytes"]),
                    _ratio(r["bytes_ratio"]),
                    human("edge_energy", r["edge_energy_j"]),
                    _ratio(r["edge_energy_j_ratio"]),
                ]
            )
        doc.table(
            [
                "baseline",
                "candidates",
                "hypervolume",
                "% of joint",
                "matched",
                "best latency",
                "its test accuracy",
                "ratio",
                "fewest bytes",
                "ratio",
                "least edge energy",
                "ratio",
            ],
            rows,
        )
        said = verdicts(cmp)
        if said:
            doc.p(Bold("Where a baseline does better: "), " ".join(said))
        else:
            doc.p(
                "The study's trials match or beat every baseline on hypervolume and on each "
                "cost at matched accuracy."
            )
        if (cmp["bytes"] == 0).any():
            doc.p(
                "A ratio of ∞ or - in the bytes column: the joint search (or both) sends "
                "nothing at matched accuracy, so the ratio has no finite value."
            )
        if self.bests:
            doc.p(
                "Each baseline's feasible candidate closest to the ideal point on the "
                "ruler (the hollow markers of the front figure):"
            )
            rows = []
            coded = bool(self.spec.codecs)
            for b, r in self.bests.items():
                c = candidate_of(r)
                rows.append(
                    [
                        b,
                        _network_name(c),
                        str(c.split),
                        self._exits(c, short=True),
                        *([self._codec_text(c, r)] if coded else []),
                        *[human(m, r[m]) for m in self.names],
                    ]
                )
            doc.table(
                [
                    "baseline",
                    "network",
                    "cut",
                    "exits @ threshold",
                    *(["codec"] if coded else []),
                    *self.names,
                ],
                rows,
            )

    def _tasks_section(self, doc: Doc) -> None:
        ts = self.task_section
        if ts is None:
            return
        doc.h(1, "One backbone or one network per task", "tasks")
        t = len(self.tasks)
        cached = ts.networks - ts.trained_now
        doc.p(
            f"The study's dense network, one backbone shared by its {t} tasks with one head "
            f"per task (MTL), against {ts.networks} single-task networks (STL), one per "
            "task, built from the same backbone, head kind, exit sites and training "
            "settings. Those "
            f"{ts.networks} networks are trained for this comparison only the first time and "
            "cached: "
            + (
                f"{ts.trained_now} trained for this report, {cached} from the cache."
                if ts.trained_now
                else "all of them came from the cache this time."
            )
            + " Both sides are scored dense, with no exit taken, at every cut; each "
            "design is shown at its best cut (the lowest mean latency), at MTL-Split's cut "
            "where the comparison has it (the shared layers on the edge, every head on the "
            "server; the single-task networks cut at the same layer), all on the edge and all "
            "on the server."
        )
        if ts.comparison is None:
            doc.p(
                Bold("Not computed: "),
                f"the comparison failed ({ts.error}). ",
                Code(f"dse compare {self.spec.name}"),
                " runs it alone.",
            )
            return
        c = ts.comparison
        f = c.frame()
        rows = []
        for name, r in f.iterrows():
            rows.append(
                [
                    str(name),
                    str(r["cuts"]),
                    _flop(float(r["edge_flops"])),
                    human("bandwidth", r["bytes"]),
                    human("latency_mean", r["latency_mean"]),
                    human("edge_energy", r["edge_energy"]),
                    human("edge_memory", r["edge_memory"]),
                    *[human("accuracy", r[f"test_accuracy.{task}"]) for task in c.tasks],
                ]
            )
        doc.table(
            [
                "design",
                "cuts",
                "edge FLOPs",
                "bytes sent",
                "mean latency",
                "edge energy",
                "edge memory",
                *[f"test accuracy, {task}" for task in c.tasks],
            ],
            rows,
        )
        doc.p(
            "Cuts: the multi-task network's one cut; the single-task networks' cuts in task "
            f"order ({', '.join(c.tasks)}). Edge FLOPs, bytes sent, edge energy and edge "
            "memory of the single-task side are sums over its networks (every edge part "
            "resident at once); accuracy is that of the final heads."
        )
        self.fig.put(doc, "tasks")
        doc.p(Bold("What the numbers say: "))
        doc.items([v[0].upper() + v[1:] + "." for v in c.verdicts()])
        if c.schedule == "parallel":
            sched = (
                'The single-task side runs in parallel ([deployment] stl = "parallel"): '
                "as if the edge device ran every network at once (as many cores as "
                "tasks), so its latency is the slowest network's. This is an optimistic "
                'bound; stl = "sequential" runs them one after another.'
            )
        else:
            sched = (
                "The single-task side runs sequentially ([deployment] stl = "
                '"sequential"): the edge parts run one after another on the one edge '
                "device, each sends as soon as its own edge part is done, the link "
                "carries one transfer at a time and the server runs the server parts as "
                "they arrive; the latency is when the last answer is back. stl = "
                '"parallel" gives the optimistic bound of one core per network.'
            )
        doc.p(sched)
        doc.p(
            f"At a cut inside the shared layers, one backbone computes and sends 1/{t} of "
            f"what {t} single-task networks do, by construction (one backbone instead of "
            f"{t}): that saving needs no measuring. The comparison that matters is each "
            "design at its own best cut, and the accuracy each task keeps."
        )

    def _why(self, doc: Doc) -> None:
        doc.h(1, "Why this cut", "why")
        tbl = self.dense.table
        nodes = self.ex.reference_graph.backbone_nodes()
        doc.p(
            f"The dense network has {len(nodes)} backbone layers and "
            f"{len(tbl.cut_bytes)} cuts ({len(self.ex.reference_graph.clean_cuts())} clean). "
            f"Run whole on the edge it takes {fmt.seconds(tbl.total_s[-1])}; sent whole to the "
            f"server it takes {fmt.seconds(tbl.total_s[0])} (the input is "
            f"{fmt.nbytes(tbl.cut_bytes[0])}; the link's RTT alone is "
            f"{fmt.seconds(self.ex.link.rtt_s)})."
        )
        self.fig.put(doc, "layers")
        self.fig.put(doc, "split")
        sp = self.fig.infos.get("split")
        if sp is not None:
            doc.p(
                f"With no early exit the fastest allowed cut of the recommended network is "
                f"{self._cut_text(sp.best)} at {fmt.seconds(sp.total_s[sp.best])}; "
                f"server-only takes {fmt.seconds(sp.total_s[0])}, edge-only "
                f"{fmt.seconds(sp.total_s[-1])}."
            )
        self.fig.put(doc, "bandwidth")
        bw = self.fig.infos.get("bandwidth")
        if bw is not None:
            spans = plots.regime_spans(bw)
            doc.items([f"{r} wins from {_mbps(lo)} to {_mbps(hi)}" for r, lo, hi in spans])
            if len(spans) == 1:
                doc.p(
                    f"{spans[0][0]} wins at every uplink bandwidth from 0.1 Mbit/s to "
                    "1 Gbit/s: the bandwidth is not what decides this cut"
                    + (
                        " — the link's RTT alone exceeds the edge-only latency."
                        if spans[0][0] == "edge-only" and self.ex.link.rtt_s >= bw.latency_s[-1, -1]
                        else "."
                    )
                )
        doc.h(1, "Early exits", "exits")
        self.fig.put(doc, "exits")
        ei = self.fig.infos.get("exits")
        if ei is not None and self.rec_cand is not None and self.rec_cand.exits:
            doc.p(
                f"At its cut, the recommended network without any exit is "
                f"{human('accuracy', ei.final_accuracy)} accurate in "
                f"{fmt.seconds(ei.final_latency_s)}; with "
                f"{self._exits(self.rec_cand)} it is "
                f"{human('accuracy', self.rec['accuracy'])} accurate in "
                f"{fmt.seconds(self.rec['latency_mean'])}."
            )

    def _codecs(self, doc: Doc) -> None:
        if not self.spec.codecs:
            return
        doc.h(1, "The tensor at the cut: codecs", "codecs")
        doc.p(
            "Codecs of the space: ",
            ", ".join(self.spec.codecs),
            ". A codec changes no "
            "weight: at each cut, the server part of each trained network ran once on the "
            "decoded tensors of every validation and test sample, and each sample's payload "
            "is the length of its real encoding (header, scales and CRC included, batch "
            "size one). Edge exits read the tensors before coding. The edge-only cut sends "
            "nothing and is left out.",
        )
        self.fig.put(doc, "codecs")
        infos = self.fig.infos.get("codecs")
        if not infos:
            return
        info = infos[0]
        ref = info.reference
        others = [c for c in info.codecs if c != ref]
        fastest = self._fastest_codecs(info.cuts)
        rows = []
        for j, k in enumerate(info.cuts):
            rows.append(
                [
                    f"{k} (after {info.after[j]})" if k else "0 (input)",
                    fastest.get(k, "-"),
                    fmt.nbytes(info.bytes[ref][j]),
                    f"{fmt.percent(info.accuracy[ref][j])}; "
                    f"{fmt.percent(info.test_accuracy[ref][j])}",
                    *[
                        x
                        for c in others
                        for x in (
                            f"{info.ratio(c)[j]:.3g}x; {info.ratio(c, split='test')[j]:.3g}x",
                            f"{info.change(c)[j]:+.1f}; {info.change(c, split='test')[j]:+.1f}",
                        )
                    ],
                ]
            )
        doc.p(
            f"Per cut of the {info.network} network: the {ref} payload (validation mean), "
            f"the final classifier's accuracy with it, and for each other codec its payload "
            f"as a share of {ref}'s and its accuracy change in points (each cell: "
            "validation; test). The fastest codec at a cut is the one with the lowest mean "
            "latency, with no exit, among those within 1 point of the dense server-only "
            "network's validation accuracy (the matched accuracy of the baselines)."
        )
        doc.table(
            [
                "cut",
                "fastest codec (latency)",
                f"{ref} bytes",
                f"{ref} accuracy (val; test)",
                *[
                    h
                    for c in others
                    for h in (f"{c}: bytes / {ref}", f"{c}: accuracy change (points)")
                ],
            ],
            rows,
        )
        said = self._codec_verdict()
        if said:
            doc.p(said)
        big = info.raw_bytes >= 4000
        for c in others:
            if not big.any():
                break
            lo, hi = (f"{float(f((1 / info.ratio(c))[big])):.3g}x" for f in (np.min, np.max))
            doc.p(
                f"{c}: at the cuts whose float32 tensors take at least 4 kB, its payload is "
                + (lo if lo == hi else f"{lo} to {hi}")
                + f" smaller than {ref}'s; its "
                f"worst accuracy change over all cuts is {info.change(c).min():+.1f} "
                f"points on validation, {info.change(c, split='test').min():+.1f} on test."
            )
        if len(infos) > 1:
            doc.p(
                "The figure also shows the front's other networks (",
                ", ".join(i.network for i in infos[1:]),
                "); the table is the dense network's.",
            )

    def _matched(self) -> pd.DataFrame:
        """The dense, no-exit grid rows with a codec (auto-split's), at matched accuracy."""
        gf = restrict(self.grid.frame, "auto-split")
        ref = float(self.comparison.attrs.get("reference_accuracy", float("nan")))
        return gf[gf.accuracy >= ref - 0.01] if ref == ref else gf.iloc[:0]

    def _fastest_codecs(self, cuts: Sequence[int]) -> dict[int, str]:
        """Per cut: the codec of the dense network with no exit that is fastest at matched
        accuracy, and its mean latency."""
        m = self._matched()
        out = {}
        for k in cuts:
            sub = m[m.knob_split == k]
            if len(sub):
                best = sub.loc[sub.latency_mean.idxmin()]
                out[k] = f"{best.knob_codec} ({human('latency_mean', best.latency_mean)})"
        return out

    def _codec_verdict(self) -> str:
        """Whether a codec moves the fastest feasible cut of the dense network with no exit
        at matched accuracy (fp32 only, against every codec of the space)."""
        m = self._matched()
        m = m[m.feasible.astype(bool)]
        plain = m[(m.knob_codec == "fp32") | (m.bandwidth == 0)]
        if not len(m) or not len(plain):
            return ""
        a, b = plain.loc[plain.latency_mean.idxmin()], m.loc[m.latency_mean.idxmin()]
        ka, kb = int(a.knob_split), int(b.knob_split)
        head = "Dense, with no exit, feasible and at matched accuracy: the fastest cut "
        if b.latency_mean >= a.latency_mean or (ka == kb and b.knob_codec == a.knob_codec):
            return (
                head + f"with float32 is {self._cut_text(ka)}, at "
                f"{human('latency_mean', a.latency_mean)}, and no codec beats it."
            )
        return (
            head + f"with float32 is {self._cut_text(ka)}, at "
            f"{human('latency_mean', a.latency_mean)}; with the codecs it is "
            f"{self._cut_text(kb)} with {b.knob_codec}, at "
            f"{human('latency_mean', b.latency_mean)} sending "
            f"{human('bandwidth', b.bandwidth)}: the codec made that cut the best."
        )

    def _density(self, doc: Doc) -> None:
        doc.h(1, "Sparsity", "sparsity")
        self.fig.put(doc, "density")
        info = self.fig.infos.get("density")
        if info is None:
            return
        rows = []
        for m in info.methods:
            for i, d in enumerate(info.densities[m]):
                rows.append(
                    [
                        m if d < 1 else "dense",
                        f"{d:g}",
                        f"{info.realised[m][i]:.3g}",
                        fmt.percent(info.accuracy[m][i]),
                        fmt.percent(info.test_accuracy[m][i]),
                        fmt.nbytes(info.stored_bytes[m][i]),
                        fmt.count(info.flops[m][i]),
                        fmt.seconds(info.edge_only_s[m][i]),
                    ]
                )
        seen: set[tuple[str, ...]] = set()
        uniq = [r for r in rows if not (tuple(r) in seen or seen.add(tuple(r)))]
        doc.table(
            [
                "method",
                "density",
                "realised density",
                "accuracy (val)",
                "accuracy (test)",
                "stored",
                "backbone FLOP (sparse kernels)",
                "edge-only latency",
            ],
            uniq,
        )
        ex = self.ex
        trained = [
            (n, ex.scorer(*n).trained)
            for n in ex.space.networks()
            if ex.cache.path(ex.network_spec(*n).key).exists()
        ]
        doc.p(
            f"Training: {ex.train_config.describe()}; ",
            "; ".join(
                f"{'dense' if d >= 1 else f'{m}@{d:g}'} {t.epochs_text()}" for (m, d), t in trained
            )
            + ".",
        )
        for line in self.sparse_notes():
            doc.p(line)

    def sparse_notes(self) -> list[str]:
        """How each device runs the sparse layers: which patterns its kernels accelerate,
        which layers of the recommended (or a sparse) network got one, and what the edge
        holds when it has none."""
        out = []
        ex = self.ex
        for dev in (ex.edge, ex.server):
            kernels = "; ".join(
                f"{pat} for {', '.join(t)}" for pat, t in dev.sparse_efficiency.items()
            )
            out.append(
                f"{dev.name} ({dev.kind}): "
                + (
                    f"sparse kernels for {kernels} only."
                    if kernels
                    else "no sparse kernels in its profile."
                )
            )
        out.append(
            f"Without a kernel for a layer's pattern, the edge ({ex.edge.name}) holds "
            "its weights compressed (values + indices) and expands each sparse layer "
            "into a dense buffer just before running it: edge memory counts the "
            "compressed weights plus the largest expanded layer, and latency and "
            "energy pay each expansion (reading the compressed bytes, writing the "
            "dense ones). The server holds its weights dense. Channel pruning shrinks "
            "the layers themselves."
        )
        sc = self.rec_scorer if (self.rec_cand is not None and self.rec_cand.density < 1) else None
        if sc is not None:
            from dse.costmodel import execution

            for side, dev, expand in (("edge", ex.edge, True), ("server", ex.server, False)):
                sparse = [n for n in sc.graph.nodes.values() if n.pattern != "dense"]
                got = [
                    f"{n.name} ({execution(n, dev, expand=expand).kernel})"
                    for n in sparse
                    if execution(n, dev, expand=expand).kernel not in ("dense", "expand")
                ]
                out.append(
                    f"Recommended network on the {side}: "
                    + (
                        f"sparse kernels for {', '.join(got)}"
                        if got
                        else "no layer gets a sparse kernel"
                    )
                    + f" (of {len(sparse)} sparse layers)."
                )
        return out

    def _search(self, doc: Doc) -> None:
        doc.h(1, "The search", "search")
        g = self.grid
        on_front = int(g.frame["pareto"].sum()) if "pareto" in g.frame else 0
        doc.p(
            f"Sampler {self.spec.sampler} (seed {self.spec.seed}); the exhaustive grid "
            f"scored {len(g.frame)} candidates in {g.seconds:.1f} s "
            f"({len(g.feasible())} feasible, {on_front} on its front)."
        )
        if self.hv_grid > 0:
            doc.p(
                f"Hypervolume of the study's feasible trials: {self.hv_study:.4f}, "
                f"{100 * self.hv_study / self.hv_grid:.1f}% of the grid's {self.hv_grid:.4f} "
                f"(on the {self.ruler_source} ruler; reference point 1.1 in every scaled "
                "objective)."
            )
        r = self.ruler
        doc.p(
            "The ruler: every objective scaled to [0, 1] between these bounds (fitted to "
            + (
                "the exhaustive grid's feasible candidates"
                if self.ruler_source == "grid"
                else "the study's own trials"
            )
            + "), 0 best:"
        )
        doc.table(
            ["objective", "direction", "best end", "worst end"],
            [
                [
                    m,
                    d,
                    human(m, r.hi[i] if d == "maximize" else r.lo[i]),
                    human(m, r.lo[i] if d == "maximize" else r.hi[i]),
                ]
                for i, (m, d) in enumerate(zip(r.names, r.directions, strict=True))
            ],
        )
        self.fig.put(doc, "hypervolume")
        self.fig.put(doc, "importance")
        imp = getattr(self, "importance", None)
        if imp:
            failed = {k: v for k, v in imp.items() if isinstance(v, str)}
            for k, v in failed.items():
                doc.p(f"Importance for {k} could not be computed: {v}")

    def _verification(self, doc: Doc) -> None:
        doc.h(1, "Verification", "verification")
        v = self.verify
        if not v:
            doc.p(
                "Every trial was scored from one network per (method, density) trained with "
                "all exits attached. Not verified yet: ",
                Code(f"dse verify {self.spec.name}"),
                " retrains the top front "
                "configurations with only their own exits and measures their test accuracy "
                "again; run it and then this report again.",
            )
            return
        doc.p(
            "The top front configurations retrained alone, with only their own exits (test split):"
        )
        rows = []
        for r in v:
            try:
                c = candidate_of({f"knob_{k}": x for k, x in r.get("knobs", {}).items()})
                what = f"{_network_name(c)}, cut {c.split}, {self._exits(c, short=True)}"
            except (KeyError, TypeError, ValueError):
                what = "-"
            rows.append(
                [
                    str(r.get("trial")),
                    what,
                    human("accuracy", r.get("old_test_accuracy")),
                    human("accuracy", r.get("new_test_accuracy")),
                    f"{100 * float(r.get('delta', float('nan'))):+.1f} points",
                    human("latency_mean", r.get("old_latency_mean")),
                    human("latency_mean", r.get("new_latency_mean")),
                ]
            )
        doc.table(
            [
                "trial",
                "configuration",
                "test accuracy (study)",
                "test accuracy (retrained)",
                "change",
                "latency (study)",
                "latency (retrained)",
            ],
            rows,
        )

    def _notes(self, doc: Doc) -> None:
        notes = self.notes()
        if notes:
            doc.h(1, "Read the numbers with care", "notes")
            doc.items(notes)

    def notes(self) -> list[str]:
        """Plain warnings about where the numbers come from and where they saturate."""
        out = []
        ex, tbl = self.ex, self.dense.table
        n_val = self.dense.correct["val"].shape[-1]
        n_test = self.dense.correct["test"].shape[-1]
        out.append(
            f"Accuracy is measured on {n_val} validation and {n_test} test samples: one "
            f"sample is {100 / max(n_val, 1):.2g} points, so smaller differences are "
            "noise."
        )
        if len(self.df) and "accuracy" in self.df and float(self.df["accuracy"].max()) >= 1.0:
            out.append(
                "Some trials reach 100% validation accuracy: accuracy saturates, so the "
                "front trades the other objectives among equally accurate points."
            )
        edge_only = float(tbl.total_s[-1])
        # layers that pay the overhead: not views, not fused into their producer's kernel
        n_layers = int(
            sum(
                1
                for x in ex.reference_graph.backbone_nodes()
                if x.kind not in FREE_KINDS and not x.fused
            )
        )
        overhead = n_layers * ex.edge.overhead_s
        if edge_only > 0 and overhead / edge_only > 0.3:
            src = ex.edge.sources.get("compute.overhead", "")
            out.append(
                f"{100 * overhead / edge_only:.0f}% of the dense edge-only latency "
                f"({fmt.seconds(edge_only)}) is the per-layer overhead of "
                f"{ex.edge.name} ({fmt.seconds(ex.edge.overhead_s)} x {n_layers} "
                f"layers{'; ' + src.split(':')[0] + ' in its sources' if src else ''}): "
                "the cut is decided by that estimate more than by FLOPs."
            )
        if ex.link.rtt_s >= edge_only:
            out.append(
                f"The link's RTT ({fmt.seconds(ex.link.rtt_s)}) alone exceeds the "
                f"dense edge-only latency ({fmt.seconds(edge_only)}): offloading cannot "
                "be faster at any bandwidth."
            )
        if tbl.cut_bytes[0] > 0:
            air = 8.0 * tbl.cut_bytes[0] / ex.link.uplink_bps
            wait = float(tbl.transfer_s[0] + tbl.server_s[0])
            out.append(
                f"Offloading is not free for the edge: server-only (dense) spends "
                f"{fmt.joules(tbl.radio_j[0])} on the radio ("
                f"{fmt.joules(tbl.radio_up_j[0])} sending in {fmt.seconds(air)}, "
                f"{fmt.joules(tbl.radio_down_j[0])} receiving the result, "
                f"{fmt.joules(tbl.radio_wait_j[0])} connected through the RTT and the "
                f"server, {fmt.joules(tbl.radio_tail_j[0])} tail) "
                f"and {fmt.joules(tbl.wait_j[0])} idling ({ex.edge.idle_power_w:g} W) "
                f"through the {fmt.seconds(wait)} it waits for the link and the server; "
                "the idle power is the profile's whole-board figure, so a device that "
                "sleeps while it waits spends less."
            )
        out.extend(self._exit_notes())
        out.extend(self._knee_notes())
        if not self.spec.tail_energy:
            out.append(
                "The radio's tail energy is not charged (tail_energy = false: "
                "back-to-back inferences); an isolated request would pay "
                f"{fmt.joules(ex.link.tail_energy_j)} more whenever it sends."
            )
        return out

    def _exit_notes(self) -> list[str]:
        spec, ex = self.spec, self.ex
        sc = self.rec_scorer or self.dense
        conf = sc.confidence["val"][spec.criterion]
        lowest = min(spec.thresholds)
        out = []
        for j in ex.space.allowed_exits:
            # [tasks, outputs, N]: a sample leaves when every task is confident (with a
            # per-task policy, when one is): the tasks' highest confidences decide
            tops = conf[:, j].max(axis=1) if conf.shape[-1] else np.zeros(1)
            top = float(tops.max() if "per_task" in ex.space.policies else tops.min())
            if top < lowest:
                name = ex.exit_names[j] if j < len(ex.exit_names) else str(j)
                out.append(
                    f"Exit {name} is never taken at any threshold of the space: its "
                    f"highest validation confidence ({spec.criterion}) is {top:.3g}, "
                    f"below the lowest threshold {lowest:g}. Using it only adds its "
                    "head's cost; the space could start lower, or the head needs "
                    "more training weight."
                )
        return out

    def _knee_notes(self) -> list[str]:
        out: list[str] = []
        if self.rec is None:
            return out
        names, rec = self.names, self.rec
        if "accuracy" in names and len(self.front) > 1:
            top = self.front.iloc[0]
            if float(top["accuracy"]) > float(rec["accuracy"]):
                i = names.index("accuracy")
                lo, hi = self.ruler.lo[i], self.ruler.hi[i]
                n_val = self.dense.correct["val"].shape[-1]
                lost = float(top["accuracy"]) - float(rec["accuracy"])
                others = ", ".join(
                    f"{m} {human(m, top[m])} -> {human(m, rec[m])}"
                    for m in names
                    if m != "accuracy"
                )
                out.append(
                    f"The knee gives up {100 * lost:.2g} points of validation accuracy "
                    f"({round(lost * n_val)} of {n_val} samples) against trial "
                    f"{int(top['trial'])}, the most accurate front trial, for {others}. "
                    f"The ruler scales accuracy over {fmt.percent(lo)} to "
                    f"{fmt.percent(hi)}, so such a loss weighs little; if it matters, "
                    "pick that trial from the front table."
                )
        if self.hv_grid > 0:
            alone = hypervolume(self.ruler.loss(rec[names].to_numpy(dtype=float)))
            share = alone / self.hv_grid
            if share > 0.9:
                out.append(
                    f"The recommended point alone covers {100 * share:.0f}% of the "
                    "grid's hypervolume: on this ruler every fraction (the sampler's, "
                    "the baselines') sits near 100% and says little; compare the fronts "
                    "and the matched-accuracy columns instead."
                )
        return out

    def _deployment(self, doc: Doc) -> None:
        doc.h(1, "Devices and link", "deployment")
        ex = self.ex
        for role, prof in (("edge", ex.edge), ("server", ex.server), ("link", ex.link)):
            doc.h(2, f"{role}: {prof.name} (v{prof.version})")
            doc.p(prof.description)
            doc.p(Bold("Source: "), prof.source)
            if prof.path is not None:
                doc.p("File: ", Code(shown_path(prof.path)))
            doc.table(["field", "value"], [[k, v] for k, v in _profile_fields(prof)])
            if prof.sources:
                doc.table(["field", "source"], [[Code(k), v] for k, v in prof.sources.items()])

    def _spec(self, doc: Doc) -> None:
        doc.h(1, "Study spec", "spec")
        where = self._spec_shown() if self.spec.path else "(stored with the study)"
        doc.p("As stored with the study; written at ", Code(where), ":")
        doc.code(self.spec.text)

    def _reproduce(self, doc: Doc) -> None:
        doc.h(1, "Reproduce", "reproduce")
        name = self.spec.name
        shown = self._spec_shown()
        doc.code(
            "\n".join(
                [
                    f"dse study run {shown}      # the study (resumes where it stopped)",
                    f"dse study grid {name}      # the exhaustive grid: the reference front",
                    f"dse compare {name}         # the baselines table",
                    f"dse verify {name}          # retrain the top front configurations alone",
                    f"dse report {name}          # this report",
                ]
            )
        )


def shown_path(path: str | Path) -> str:
    """A file as a report may show it: relative to the working folder, else relative to
    the shipped profiles' folder's parent (``profiles/devices/x.toml``), else its name
    alone: never an absolute path of the machine that wrote the report."""
    from dse.costmodel import devices

    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    for base in (Path.cwd(), devices.profiles_dir().parent):
        try:
            return p.resolve().relative_to(base.resolve()).as_posix()
        except (ValueError, OSError):
            continue
    return p.name


def _device_kind(name: str) -> str:
    """A shipped device profile's kind (``edge`` or ``server``); ``""`` if unreadable."""
    from dse.costmodel import load_device

    try:
        return load_device(name).kind
    except InputError:
        return ""


def _integer_only(name: str) -> bool:
    """Whether a shipped device profile computes in integers only."""
    from dse.costmodel import load_device

    return load_device(name).integer_only


def _flop(n: float) -> str:
    """FLOPs in human units: 0 FLOP, 640 FLOP, 5.05 MFLOP."""
    text = fmt.count(n)
    return f"{text}FLOP" if text[-1:].isalpha() else f"{text} FLOP"


def _short(metric: str) -> str:
    """A metric in a few words (``accuracy``, ``mean latency``, ``edge energy``)."""
    return {
        "latency_mean": "mean latency",
        "latency_p95": "p95 latency",
        "bandwidth": "bytes sent",
        "edge_energy": "edge energy",
        "edge_memory": "edge memory",
        "accuracy_min": "lowest task accuracy",
    }.get(metric, metric.replace("accuracy.", "accuracy of "))


def _metric_text(metric: str) -> str:
    """What a metric of the spec measures (a task's accuracy: ``accuracy.TASK``)."""
    if metric in METRICS:
        return METRICS[metric]
    task = metric.removeprefix("accuracy.")
    return f"fraction of validation samples classified right for task {task} (exit policy applied)"


def _realised(row: Any) -> str:
    """The realised density of a trial row (weights kept over the dense network's)."""
    value = row.get("realised_density") if hasattr(row, "get") else None
    return "-" if value is None or value != value else f"{float(value):.3g}"


def _lossy(codec: str) -> bool:
    """Whether a codec (canonical name) may change the tensors: anything but float32."""
    return Codec.parse(codec).lossy


def _net_label(method: str, density: float) -> str:
    """A network in short: ``dense`` or ``method@density``."""
    return "dense" if method == "dense" or density >= 1 else f"{method}@{density:g}"


def _network_name(c: Candidate) -> str:
    method, density = c.network
    return "dense" if method == "dense" else f"{method} sparsity, density {density:g}"


def _exits_text(
    c: Candidate, names: Sequence[str], *, short: bool = False, tasks: Sequence[str] = ()
) -> str:
    """The exits a candidate uses and its threshold; with ``tasks`` (a spec with several)
    each task's threshold and the exit policy."""
    if not c.exits:
        return "no exit"
    used = "+".join(names[j] if j < len(names) else str(j) for j in c.exits)
    if len(tasks) > 1:
        per = ", ".join(f"{t} {x:g}" for t, x in zip(tasks, c.thresholds(len(tasks)), strict=True))
        policy = f"policy {c.policy}"
        return (
            f"{used} @ {per}; {policy}" if short else f"exits {used} at thresholds {per} ({policy})"
        )
    return f"{used} @ {c.threshold:g}" if short else f"exits {used} at threshold {c.threshold:g}"


def _profile_fields(p: DeviceProfile | LinkProfile) -> list[tuple[str, str]]:
    if isinstance(p, LinkProfile):
        return [
            ("uplink", _mbps(p.uplink_bps)),
            ("downlink", _mbps(p.downlink_bps)),
            ("RTT", fmt.seconds(p.rtt_s)),
            (
                "radio power, sending",
                f"{p.alpha_w_per_mbps * 1e3:.4g} mW per Mbit/s x "
                f"uplink + {p.beta_w * 1e3:.4g} mW = "
                f"{p.uplink_power_w():.3g} W",
            ),
            (
                "radio power, receiving",
                f"{p.alpha_down_w_per_mbps * 1e3:.4g} mW per Mbit/s x "
                f"downlink + {p.beta_w * 1e3:.4g} mW = "
                f"{p.downlink_power_w():.3g} W",
            ),
            ("radio power, connected and waiting", f"{p.connected_power_w:.3g} W"),
            ("tail energy", fmt.joules(p.tail_energy_j)),
        ]
    eff = ", ".join(f"{k} {v:g}" for k, v in p.efficiency.items())
    sparse = (
        "; ".join(
            f"{pat}: " + ", ".join(f"{k} {v:g}" for k, v in t.items())
            for pat, t in p.sparse_efficiency.items()
        )
        or "none"
    )
    rows = [
        ("kind", p.kind),
        (
            "peak",
            ", ".join(f"{k} {fmt.count(v)}FLOP/s" for k, v in p.peak_flops.items())
            + f" (model uses {p.dtype})",
        ),
        ("efficiency (fraction of peak)", eff),
        ("sparse kernels by pattern (fraction of peak)", sparse),
        ("per-layer overhead", fmt.seconds(p.overhead_s)),
        ("memory bandwidth", f"{fmt.nbytes(p.mem_bandwidth_Bps)}/s"),
        ("memory capacity", fmt.nbytes(p.mem_capacity_bytes)),
        ("power idle / active", f"{p.idle_power_w:g} W / {p.active_power_w:g} W"),
    ]
    if p.energy_per_flop_j is not None:
        rows.append(
            ("energy per FLOP / byte", f"{p.energy_per_flop_j:g} J / {p.energy_per_byte_j:g} J")
        )
    return rows


__all__ = [
    "write_report",
    "Doc",
    "human",
    "baseline_bests",
    "candidate_of",
]

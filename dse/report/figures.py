"""The report's figures: each drawn from the report's numbers into ``figures/``, or a
sentence saying why it is not (:func:`draw_figures` -> :class:`Figures`).

A figure that cannot be drawn never stops the report: its section says why instead. A
write the disk refuses does stop it, so that the report is written whole or not at all.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dse import vocab
from dse.errors import write_refused
from dse.report import fmt, plots
from dse.report.doc import Bold, Doc
from dse.report.text import exits_of

if TYPE_CHECKING:
    from dse.report.data import ReportData

log = logging.getLogger(__name__)
NO_TRIAL = "The study has no complete trial yet."


@dataclass(frozen=True)
class Figures:
    """The report's figures by key (the file's name under ``figures/``, less its suffix):
    the caption of each drawn, the sentence standing in for each not drawn, and the
    numbers (the info) each was drawn from."""

    drawn: Mapping[str, str] = field(default_factory=dict)
    missing: Mapping[str, str] = field(default_factory=dict)
    infos: Mapping[str, Any] = field(default_factory=dict)
    formats: tuple[str, ...] = plots.FORMATS  # the files written of each figure drawn

    def info(self, key: str) -> Any:
        """The numbers figure ``key`` was drawn from; None if it was not drawn."""
        return self.infos.get(key)

    def put(self, doc: Doc, key: str) -> None:
        """Figure ``key`` into ``doc``, or the sentence saying why it was not drawn."""
        if key in self.drawn:
            doc.figure(f"figures/{key}", self.drawn[key], formats=self.formats)
        elif key in self.missing:
            doc.p(Bold("Figure not drawn. "), self.missing[key])


class _Drawing:
    """The figures as they are drawn into one folder, each written in ``formats`` (PNG at
    ``dpi``)."""

    def __init__(self, folder: Path, formats: Sequence[str], dpi: float) -> None:
        self.folder = folder
        self.formats = tuple(formats)
        self.dpi = dpi
        self.drawn: dict[str, str] = {}
        self.missing: dict[str, str] = {}
        self.infos: dict[str, Any] = {}

    def draw(
        self,
        key: str,
        caption: str,
        make: Callable[[], Any],
        render: Callable[..., list[Path]],
        *,
        what: str,
    ) -> Any:
        """Compute figure ``key``'s info with ``make`` and draw it with ``render``; on
        failure, a sentence naming ``what`` could not be drawn and why."""
        try:
            info = make()
            render(info, self.folder / key, formats=self.formats, dpi=self.dpi)
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
        """Figure ``key`` is not drawn: ``sentence`` says why."""
        self.missing[key] = sentence

    def figures(self) -> Figures:
        """The figures drawn so far, frozen."""
        return Figures(dict(self.drawn), dict(self.missing), dict(self.infos), self.formats)


def draw_figures(
    data: ReportData,
    folder: Path,
    *,
    formats: Sequence[str] = plots.FORMATS,
    dpi: float = plots.DPI,
) -> Figures:
    """Every figure of the report, drawn into ``folder`` from ``data``, each written in
    ``formats`` (PNG at ``dpi`` dots per inch)."""
    drawing = _Drawing(folder, formats, dpi)
    _front_and_layers(data, drawing)
    _recommended(data, drawing)
    _deployments(data, drawing)
    _networks(data, drawing)
    if not len(data.trials):
        drawing.skip("hypervolume", NO_TRIAL)
        drawing.skip("importance", NO_TRIAL)
        return drawing.figures()
    _hypervolume(data, drawing)
    _tasks(data, drawing)
    _codecs(data, drawing)
    drawing.draw(
        "importance",
        "How much each knob explains each objective across the trials (fANOVA)",
        lambda: plots.importance_info(
            data.importance or {}, title=f"Knob importance (fANOVA) in {data.spec.name}"
        ),
        plots.render_importance,
        what="knob importance",
    )
    return drawing.figures()


def _deployment(data: ReportData) -> str:
    explorer = data.explorer
    return f"{explorer.edge.name} -> {explorer.link.name} -> {explorer.server.name}"


def _front_and_layers(data: ReportData, drawing: _Drawing) -> None:
    """The Pareto front, and the dense network's cost per layer."""
    spec, explorer = data.spec, data.explorer
    drawing.draw(
        "front",
        "Pareto front: every complete trial, the feasible front highlighted, "
        "the recommended (knee) point and each baseline's best point",
        lambda: data.front_info,
        plots.render_front,
        what="Pareto front",
    )
    dense_table = data.dense.table
    drawing.draw(
        "layers",
        "Per-layer latency on the edge and the server (bars) and the bytes a "
        "cut after each layer sends (line, log scale), for the dense network",
        lambda: plots.layer_profile_info(
            dense_table,
            exit_names=explorer.exit_names,
            title=f"Per-layer cost of {spec.model} (dense) on {_deployment(data)}",
        ),
        plots.render_layer_profile,
        what="per-layer profile",
    )


def _recommended(data: ReportData, drawing: _Drawing) -> None:
    """The recommended network's latency per cut, its exits and its bandwidth map."""
    spec, explorer = data.spec, data.explorer
    candidate, scorer = data.configuration, data.recommended_scorer
    none = "No trial is feasible, so there is no recommended configuration to draw the {} for."
    if candidate is None or scorer is None:
        for key, what in (
            ("split", "split sweep"),
            ("exits", "exit analysis"),
            ("bandwidth", "bandwidth regime map"),
        ):
            drawing.skip(key, none.format(what))
        return
    network = vocab.network_name(*candidate.network)
    deployment = _deployment(data)
    drawing.draw(
        "split",
        "Latency per cut point with no early exit, stacked edge / "
        "transfer / server, for the recommended network; the line is the expected "
        "latency with the recommended exits and threshold",
        lambda: plots.split_sweep_info(
            scorer.table,
            allowed=explorer.space.cuts,
            chosen=candidate.split,
            policy_s=[
                scorer.score(replace(candidate, split=int(k))).latency_mean
                for k in range(scorer.table.n_cuts)
            ]
            if candidate.exits
            else None,
            title=f"Latency per cut of {spec.model} ({network}) on {deployment}",
        ),
        plots.render_split_sweep,
        what="split sweep",
    )
    if not explorer.space.allowed_exits:
        drawing.skip(
            "exits",
            "The model has no early-exit sites in this study's space, so "
            "there is no exit analysis.",
        )
    else:
        drawing.draw(
            "exits",
            "Accuracy, early-exit rate and expected latency against the "
            "confidence threshold, per exit subset, for the recommended network at "
            "its cut",
            lambda: plots.exit_info(
                scorer.score,
                candidate,
                explorer.space.exit_subsets(),
                spec.thresholds,
                exit_names=explorer.exit_names,
                title=f"Early exits of {spec.model} ({network}) at cut {candidate.split} "
                f"on {deployment}",
            ),
            plots.render_exits,
            what="exit analysis",
        )
    exits = exits_of(data, candidate)
    drawing.draw(
        "bandwidth",
        "The fastest cut and its expected latency as the uplink "
        "sweeps from 0.1 Mbit/s to 1 Gbit/s (cost model; RTT, downlink and radio "
        "kept), for the recommended network, exits and threshold",
        lambda: plots.bandwidth_info(
            scorer.graph,
            explorer.edge,
            explorer.server,
            explorer.link,
            cuts=explorer.space.cuts,
            score=lambda table, c: replace(scorer, table=table).score(c).latency_mean,
            candidate=candidate,
            tail=spec.tail_energy,
            title=f"Best cut of {spec.model} ({network}, {exits}) vs uplink: "
            f"{explorer.edge.name} -> {explorer.server.name}, {explorer.link.name} RTT "
            f"{fmt.seconds(explorer.link.rtt_s)}",
        ),
        plots.render_bandwidth,
        what="bandwidth regime map",
    )


def _deployments(data: ReportData, drawing: _Drawing) -> None:
    """The deployment map: the best configuration per edge device and link."""
    sweep, explorer = data.sweep, data.explorer
    if sweep is None:
        drawing.skip("deployments", data.sweep_note)
        return
    server = explorer.server.name
    drawing.draw(
        "deployments",
        "The best configuration (the knee of each deployment's "
        "feasible front) per edge device and link: where it runs, its cut, mean "
        "latency, edge energy and accuracy; ★ marks a split that beats both ends",
        lambda: plots.deployment_map_info(
            sweep,
            server=server if any(r.server == server for r in sweep.results) else None,
            current=(explorer.edge.name, explorer.link.name),
            title=f"Best configuration of {data.spec.name} per edge device and link",
        ),
        plots.render_deployment_map,
        what="deployment map",
    )


def _networks(data: ReportData, drawing: _Drawing) -> None:
    """The training curves and the density figure of every network of the space."""
    spec, explorer = data.spec, data.explorer
    networks = explorer.space.networks()
    trained = {vocab.network_label(*n): explorer.scorer(*n).trained for n in networks}
    drawing.draw(
        "training",
        "Training loss and validation accuracy (final classifier) per "
        "epoch of every network of the space; the dot marks the best validation "
        "epoch, the square the epoch whose weights were kept where it differs",
        lambda: plots.training_info(
            trained,
            title=f"Training curves of {spec.model} on {spec.data['name']} "
            f"({explorer.train_config.describe()})",
        ),
        plots.render_training,
        what="training curves",
    )
    drawing.draw(
        "density",
        "Final-classifier accuracy, stored size, FLOPs and edge-only latency "
        "against density, per sparsity method",
        lambda: plots.density_info(
            {n: explorer.scorer(*n) for n in networks},
            spec.methods,
            title=f"Density of {spec.model} on {spec.data['name']}: accuracy and cost "
            f"({explorer.edge.name})",
        ),
        plots.render_density,
        what="density figure",
    )


def _hypervolume(data: ReportData, drawing: _Drawing) -> None:
    """The hypervolume of the feasible trials so far, against the trial number."""
    spec, trials = data.spec, data.trials
    drawing.draw(
        "hypervolume",
        "Hypervolume of the feasible trials so far against the trial "
        "number, as a share of the exhaustive grid's (same ruler)",
        lambda: plots.hypervolume_info(
            trials[data.names].to_numpy(dtype=float),
            trials["trial"].to_numpy(dtype=int),
            trials["feasible"].to_numpy(dtype=bool),
            data.ruler,
            grid_hv=data.grid_hypervolume or None,
            ruler_source=data.ruler_source,
            title=f"Hypervolume of {spec.name} ({spec.sampler}) against trial number",
        ),
        plots.render_hypervolume,
        what="hypervolume history",
    )


def _tasks(data: ReportData, drawing: _Drawing) -> None:
    """One backbone for every task against one network per task (several tasks only)."""
    section = data.task_comparison
    if section is None:
        return
    comparison = section.comparison
    if comparison is None:
        drawing.skip("tasks", "The multi-task comparison could not be computed.")
        return
    spec = data.spec
    drawing.draw(
        "tasks",
        "One backbone for all tasks (MTL) against one network per task (STL): "
        "mean latency, edge energy and bytes sent at each design's best cut, at MTL-Split's "
        "cut (where the comparison has it), all on the edge and all on the server, and "
        "each task's test accuracy",
        lambda: plots.tasks_info(
            comparison,
            title=f"{spec.model} on {spec.data['name']}: one backbone for "
            f"{len(comparison.tasks)} tasks or one network per task ({_deployment(data)})",
        ),
        plots.render_tasks,
        what="multi-task comparison figure",
    )


def _codecs(data: ReportData, drawing: _Drawing) -> None:
    """Bytes sent against accuracy per codec and cut (a spec with codecs only)."""
    if not data.codec_networks:
        return
    spec, explorer = data.spec, data.explorer

    def infos() -> tuple[plots.RateAccuracyInfo, ...]:
        return tuple(
            plots.rate_accuracy_info(
                explorer.scorer(method, density),
                network=vocab.network_label(method, density),
                title=f"Codecs at the cut: {spec.model} on {spec.data['name']}, bytes sent "
                f"over {explorer.link.name} against final-classifier accuracy",
            )
            for method, density in data.codec_networks
        )

    drawing.draw(
        "codecs",
        "Per cut that sends something, the mean payload of each codec "
        "(header included, validation samples) against the final classifier's "
        "validation accuracy on the decoded tensors (left; grey lines join one "
        "cut's codecs), and each codec's accuracy change against fp32 per cut "
        "(right)"
        + (
            ", for the dense network and each network on the front"
            if len(data.codec_networks) > 1
            else ", for the dense network"
        ),
        infos,
        plots.render_rate_accuracy,
        what="rate-accuracy figure",
    )

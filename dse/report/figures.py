"""The report's figures: each drawn from its info, or a sentence saying why it is not."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dse import vocab
from dse.errors import write_refused
from dse.report import fmt, plots
from dse.report.doc import Bold, Doc
from dse.search import importances

log = logging.getLogger(__name__)


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


class FigureDrawing:
    """Every figure of the report, drawn from the numbers computed for it."""

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
            net = vocab.network_name(*rc.network)
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
        trained = {vocab.network_label(*n): ex.scorer(*n).trained for n in ex.space.networks()}
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
                    network=vocab.network_label(m, d),
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

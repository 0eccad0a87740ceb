"""The first section: what to deploy, why, what it gives up and what would change it."""

from __future__ import annotations

from typing import Any

from dse import vocab
from dse.report import fmt, plots
from dse.report.doc import Bold, Doc, Inline


class WhatToDo:
    """The first section: what to deploy, why, what it gives up and what would change it."""

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
                f"input over {ex.link.name} ({fmt.human('bandwidth', row['bandwidth'])})"
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
                f"{fmt.human('bandwidth', row['bandwidth'])} per inference over "
                f"{ex.link.name} to {ex.server.name}"
            )
        parts: list[Inline] = [
            Bold(f"Deploy {vocab.network_name(*c.network)} with {self._exits(c)}"),
            f" and {where}. ",
            f"Expected per inference: accuracy {fmt.human('accuracy', row['accuracy'])} "
            f"(test {fmt.human('accuracy', row['test_accuracy'])}), latency "
            f"{fmt.human('latency_mean', row['latency_mean'])}, edge energy "
            f"{fmt.human('edge_energy', row['edge_energy'])}. ",
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
                    f"the best {label} one has accuracy {fmt.human('accuracy', m['accuracy'])}"
                    f", latency {fmt.human('latency_mean', m['latency_mean'])} and edge "
                    f"energy {fmt.human('edge_energy', m['edge_energy'])}"
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
                    if vocab.metric(m).quantity == "%"
                    else fmt.human(m, best - mine)
                )
                out.append(
                    f"{gap} of {vocab.metric(m).words} (trial {trial} reaches {fmt.human(m, best)})"
                )
            elif d == "minimize" and mine > best * (1 + 1e-9) + 1e-300:
                ratio = mine / best if best > 0 else float("inf")
                out.append(
                    f"{vocab.metric(m).words}: {fmt.ratio(ratio)} that of trial {trial} "
                    f"({fmt.human(m, best)})"
                )
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
                f"{r} below {fmt.mbps(hi)}"
                if lo <= bw.uplink_bps[0]
                else f"{r} above {fmt.mbps(lo)}"
                if hi >= bw.uplink_bps[-1]
                else f"{r} from {fmt.mbps(lo)} to {fmt.mbps(hi)}"
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
                    f"{fmt.mbps(bw.uplink_bps[0])} to {fmt.mbps(bw.uplink_bps[-1])}"
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

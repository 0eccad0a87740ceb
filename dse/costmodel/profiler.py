"""Per-layer and per-cut tables of one model on one (edge, server, link)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from dse.costmodel.costs import CostTable, cost_table, execution, layer_latency
from dse.costmodel.devices import DeviceProfile, LinkProfile
from dse.costmodel.graph import LayerGraph, build_graph


@dataclass(frozen=True, eq=False)
class Profile:
    """A model's layer graph, its cost table, and both as pandas tables."""

    graph: LayerGraph
    table: CostTable
    layers: pd.DataFrame
    cuts: pd.DataFrame
    best_cut: int  # minimum total latency (ties: the later cut, which sends less)

    @property
    def edge_only(self) -> pd.Series:
        return self.cuts.iloc[-1]

    @property
    def server_only(self) -> pd.Series:
        return self.cuts.iloc[0]


def sparse_kernel_summary(p: Profile) -> list[str]:
    """One line per device on how its sparse layers run: which got a sparse kernel (and
    for which pattern), which run dense (expanded on the edge)."""
    sparse = p.layers[p.layers.pattern != "dense"]
    if sparse.empty:
        return []
    lines = []
    for side, device in (("edge", p.table.edge), ("server", p.table.server)):
        kernels = sparse[f"{side}_kernel"]
        parts = []
        for kernel, names in sparse.groupby(kernels).name:
            what = {
                "expand": "expanded from compressed weights, then dense",
                "dense": "dense (weights held dense)",
            }.get(kernel, f"{kernel} sparse kernel")
            parts.append(f"{what}: {', '.join(names)}")
        lines.append(f"{side} {device.name}: " + "; ".join(parts))
    return lines


def profile_graph(
    graph: LayerGraph,
    edge: DeviceProfile,
    server: DeviceProfile,
    link: LinkProfile,
    *,
    tail: bool = True,
) -> Profile:
    table = cost_table(graph, edge, server, link, tail=tail)
    layers = pd.DataFrame(
        [
            {
                "name": n.name,
                "kind": n.kind,
                "exit": n.exit,
                "fused": n.fused,
                "output_shape": list(n.output_shape),
                "output_bytes": n.output_bytes,
                "params": n.params,
                "nonzero_params": n.nonzero_params,
                "stored_bytes": n.stored_bytes,
                "flops": n.flops,
                "macs": n.macs,
                "pattern": n.pattern,
                "edge_kernel": execution(n, edge, expand=True).kernel,
                "server_kernel": execution(n, server, expand=False).kernel,
                "edge_latency_s": layer_latency(n, edge, expand=True),
                "server_latency_s": layer_latency(n, server, expand=False),
            }
            for n in graph.nodes.values()
        ]
    )
    # object dtype keeps exit indices as ints and backbone layers as None (JSON null), where
    # pandas would otherwise make the column float with NaN
    layers["exit"] = pd.Series(
        [n.exit for n in graph.nodes.values()], index=layers.index, dtype=object
    )
    cuts = pd.DataFrame(
        {
            "index": np.arange(table.n_cuts),
            "after": [c.after for c in graph.cuts],
            "tensors": [list(c.tensors) for c in graph.cuts],
            "clean": [c.clean for c in graph.cuts],
            "bytes": table.cut_bytes.astype(int),
            "edge_s": table.edge_s,
            "transfer_s": table.transfer_s,
            "server_s": table.server_s,
            "total_s": table.total_s,
            "edge_energy_j": table.edge_energy_j,
            "compute_j": table.edge_compute_j,
            "radio_up_j": table.radio_up_j,
            "radio_down_j": table.radio_down_j,
            "radio_wait_j": table.radio_wait_j,
            "radio_tail_j": table.radio_tail_j,
            "idle_j": table.wait_j,
            "edge_memory_bytes": table.edge_memory_bytes.astype(int),
        }
    )
    total = table.total_s
    best = int(np.flatnonzero(total <= total.min() * (1 + 1e-12))[-1])
    return Profile(graph, table, layers, cuts, best)


def profile_model(
    model: nn.Module,
    example: torch.Tensor,
    edge: DeviceProfile,
    server: DeviceProfile,
    link: LinkProfile,
    *,
    name: str | None = None,
    tail: bool = True,
) -> Profile:
    """Build the layer graph of ``model`` and cost it."""
    return profile_graph(build_graph(model, example, name=name), edge, server, link, tail=tail)


def to_json(p: Profile) -> dict[str, Any]:
    """The machine-readable profile (``dse profile --json``)."""
    g = p.graph
    return {
        "model": g.model_name,
        "input_shape": list(g.input_shape),
        "edge": p.table.edge.name,
        "server": p.table.server.name,
        "link": p.table.link.name,
        "layers": p.layers.to_dict(orient="records"),
        "cuts": [
            {**row, "tensors": list(row["tensors"])} for row in p.cuts.to_dict(orient="records")
        ],
        "totals": {"params": g.params, "flops": g.flops, "macs": g.macs},
        "best_cut": p.best_cut,
        "edge_only_s": float(p.edge_only["total_s"]),
        "server_only_s": float(p.server_only["total_s"]),
        "unsupported_ops": dict(g.unsupported),
    }

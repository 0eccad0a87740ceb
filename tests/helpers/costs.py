"""The toy cost model many cost and scoring tests build: a device, a link and a per-cut
cost table with round numbers, so that expectations are closed forms."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from dse.costmodel import CostTable, DeviceProfile, LinkProfile
from dse.search import Scorer


def toy_device(**overrides: Any) -> DeviceProfile:
    """1 GFLOP/s peak, conv at 50% and everything else at 25% of it, 100 MB/s memory,
    100 us per layer, 2 W active, no sparse kernels; override any field by keyword."""
    fields: dict[str, Any] = dict(
        name="test-device",
        version=1,
        kind="edge",
        description="made in a test",
        source="tests/helpers/costs.py",
        path=None,
        peak_flops={"fp32": 1e9},
        dtype="fp32",
        efficiency={"default": 0.25, "conv": 0.5},
        sparse_efficiency={},
        overhead_s=1e-4,
        mem_bandwidth_Bps=1e8,
        mem_capacity_bytes=1e9,
        idle_power_w=1.0,
        active_power_w=2.0,
    )
    fields.update(overrides)
    return DeviceProfile(**fields)


def toy_link(**overrides: Any) -> LinkProfile:
    """8 Mbit/s (1 MB/s) up, 16 Mbit/s down, 20 ms RTT, radio 0.5 W/(Mbit/s) + 1 W, 3 J tail."""
    fields: dict[str, Any] = dict(
        name="test-link",
        version=1,
        description="made in a test",
        source="tests/helpers/costs.py",
        path=None,
        uplink_bps=8e6,
        downlink_bps=16e6,
        rtt_s=0.02,
        alpha_w_per_mbps=0.5,
        beta_w=1.0,
        tail_energy_j=3.0,
    )
    fields.update(overrides)
    return LinkProfile(**fields)


#: Per exit of the toy table, in order: its weight bytes, its peak live bytes while it
#: runs on the edge, the same when nothing runs after it, and its stored bytes.
_EXIT_WEIGHTS = (7.0, 3.0, 2.0)
_EXIT_ACTIVATIONS = (4.0, 6.0, 2.0)  # below the backbone's peak
_EXIT_ALONE = (3.0, 5.0, 1.0)
EXIT_STORAGE = (30.0, 20.0, 10.0)


def toy_table(
    exit_position: tuple[int, ...] = (1, 3), *, idle_w: float = 0.0, connected_w: float = 0.0
) -> CostTable:
    """Four backbone layers (cuts 0..4) and an exit at each of ``exit_position`` (at most
    three): exit j costs 0.5 / 2**j s and 1 / 2**j J on the edge, 0.05 / 2**j s on the
    server. The link takes 5 s of RTT; the edge draws ``idle_w`` while it waits for the
    link and the server, its radio ``connected_w`` while it waits out the RTT and the
    server (0: nothing). Radio up + down + tail per cut: 5, 4, 4.5, 3 J, then nothing."""
    n = len(exit_position)
    assert n <= len(_EXIT_WEIGHTS), exit_position
    halves = 0.5 ** np.arange(n)
    edge_s = np.array([0.0, 1.0, 3.0, 6.0, 10.0])
    return CostTable(
        graph=None,  # type: ignore[arg-type]
        edge=SimpleNamespace(idle_power_w=idle_w),  # type: ignore[arg-type]
        server=None,  # type: ignore[arg-type]
        link=SimpleNamespace(connected_power_w=connected_w, rtt_s=5.0),  # type: ignore[arg-type]
        edge_layer_s=np.diff(edge_s),
        server_layer_s=np.array([0.1, 0.2, 0.3, 0.4]),
        edge_layer_j=np.array([2.0, 4.0, 6.0, 8.0]),
        edge_s=edge_s,
        server_s=np.array([1.0, 0.9, 0.7, 0.4, 0.0]),
        edge_compute_j=np.array([0.0, 2.0, 6.0, 12.0, 20.0]),
        cut_bytes=np.array([100.0, 40.0, 60.0, 20.0, 0.0]),
        transfer_s=np.array([50.0, 20.0, 30.0, 10.0, 0.0]),
        radio_up_j=np.array([3.0, 2.5, 3.0, 1.5, 0.0]),
        radio_down_j=np.array([0.5, 0.5, 0.5, 0.5, 0.0]),
        radio_tail_j=np.array([1.5, 1.0, 1.0, 1.0, 0.0]),
        edge_weight_bytes=np.array([0.0, 10.0, 30.0, 60.0, 100.0]),
        edge_expand_bytes=np.zeros(5),
        edge_peak_activation_bytes=np.array([0.0, 8.0, 8.0, 16.0, 16.0]),
        exit_position=np.array(exit_position),
        exit_edge_s=0.5 * halves,
        exit_server_s=0.05 * halves,
        exit_edge_j=1.0 * halves,
        exit_weight_bytes=np.array(_EXIT_WEIGHTS[:n]),
        exit_expand_bytes=np.zeros(n),
        exit_activation_bytes=np.array(_EXIT_ACTIVATIONS[:n]),
        exit_alone_activation_bytes=np.array(_EXIT_ALONE[:n]),
    )


def toy_scorer(
    table: CostTable,
    conf: np.ndarray,
    correct: np.ndarray,
    *,
    test_conf: np.ndarray | None = None,
    test_correct: np.ndarray | None = None,
) -> Scorer:
    """A scorer on ``table`` (no network): max-prob confidences and correctness per output
    (each exit, then the final) and sample, [outputs, N] or [tasks, outputs, N]; the test
    split equals validation where not given. Stored bytes: 1000 for the backbone, 30, 20
    and 10 for the exits."""
    n = len(table.exit_position)
    return Scorer(
        trained=None,  # type: ignore[arg-type]
        graph=None,  # type: ignore[arg-type]
        table=table,
        confidence={
            "val": {"max_prob": conf},
            "test": {"max_prob": conf if test_conf is None else test_conf},
        },
        correct={"val": correct, "test": correct if test_correct is None else test_correct},
        storage_backbone=1000.0,
        storage_exits=np.array(EXIT_STORAGE[:n]),
    )

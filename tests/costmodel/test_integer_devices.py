"""Integer-only hardware (an int8 accelerator): declared by its profile's peak_flops, and
refused as either end of a split of the float32 networks dse trains."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from dse.costmodel import build_graph, check_runs_float, cost_table, load_device, load_link
from dse.costmodel.devices import FLOAT_DTYPES, DeviceProfile
from dse.errors import InputError


def test_the_int8_board_declares_int8_only() -> None:
    coral = load_device("coral-dev-board-micro")
    assert coral.dtypes == ("int8",) and coral.integer_only
    # a float device that also has an int8 peak is not integer-only
    orin = load_device("jetson-orin-nano")
    assert "int8" in orin.dtypes and not orin.integer_only
    assert not any(load_device(n).integer_only for n in ("stm32h7", "esp32-s3"))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_any_float_peak_makes_a_device_run_float(
    make_device: Callable[..., DeviceProfile], dtype: str
) -> None:
    device = make_device(peak_flops={"int8": 4e12, dtype: 1e9}, dtype="int8")
    assert not device.integer_only
    check_runs_float(device, "edge")  # no error


def test_an_integer_only_device_is_refused_by_the_cost_model(
    make_device: Callable[..., DeviceProfile],
) -> None:
    graph = build_graph(
        nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), torch.zeros(1, 4)
    )
    link = load_link("wifi-mcu")
    coral = load_device("coral-dev-board-micro")
    with pytest.raises(InputError) as err:
        cost_table(graph, coral, load_device("a100"), link)
    assert err.value.field == "compute.peak_flops"
    assert err.value.where == str(coral.path)
    assert "int8 only" in err.value.reason and "edge" in err.value.reason
    server = make_device(name="int-server", kind="server", peak_flops={"int4": 1e12}, dtype="int4")
    with pytest.raises(InputError, match="server"):
        cost_table(graph, load_device("esp32-s3"), server, link)
    # the same table on float devices is priced
    assert cost_table(graph, load_device("esp32-s3"), load_device("a100"), link).n_cuts > 1

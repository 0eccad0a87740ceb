"""Split and hierarchical training as two processes over loopback, the link paced."""

from __future__ import annotations

import pytest

from dse.costmodel import build_graph
from dse.deploy import train_loopback
from dse.errors import InputError
from dse.nets import NetworkSpec, TrainConfig, build_network, example_input, load_data


def spec_of(mode: str, cut: int | None = None) -> NetworkSpec:
    data = load_data("digits", n=300)
    spec = NetworkSpec(model="mlp", data=data, train=TrainConfig(epochs=1, batch_size=16))
    if cut is None:
        cut = build_graph(build_network(spec), example_input(data)).exits[0].position
    return NetworkSpec(
        model="mlp", data=data, cut=cut, train=TrainConfig(epochs=1, batch_size=16, mode=mode)
    )


@pytest.mark.parametrize("mode", ["hierarchical", "split"])
def test_a_paced_epoch_over_loopback(mode: str, make_link) -> None:  # noqa: ANN001
    link = make_link(uplink_bps=4e6, downlink_bps=4e6, rtt_s=0.01)
    run = train_loopback(spec_of(mode), link=link, samples=64)
    assert run.batches == 4 and run.batch_size == 16 and run.mode == mode
    # 16 samples x 256 float32 at the cut, 16 int64 labels, and the frame's header
    assert run.up_bytes > 4 * 16 * (256 * 4 + 8)
    assert (run.down_bytes > 4 * 16 * 256 * 4) if mode == "split" else run.down_bytes == 0
    assert run.link_s == pytest.approx(8 * run.up_bytes / 4 / 4e6 + 8 * run.down_bytes / 4 / 4e6)
    # the paced link is the floor: every batch's airtime (and the RTT) was waited for
    assert run.measured_s >= 4 * run.link_s + 0.01
    assert run.modelled_s >= 4 * run.link_s + 0.01
    assert "measured epoch" in run.text() and "modelled" in run.text()


def test_central_has_no_loopback_run() -> None:
    data = load_data("digits", n=300)
    with pytest.raises(InputError) as err:
        train_loopback(NetworkSpec(model="mlp", data=data), samples=32)
    assert err.value.field == "mode"

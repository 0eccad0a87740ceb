"""Running an exported split: per-sample measurement, its checks against the reference and
the prediction (and that they can fail), link pacing, over TCP and in process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from fake_bundle import FakeBundle

from dse.costmodel import LinkProfile
from dse.deploy import runsplit as rs
from dse.deploy import serve as sv

N = 40


@pytest.fixture
def fake() -> tuple[FakeBundle, torch.Tensor, dict[str, np.ndarray], list[np.ndarray]]:
    """A two-task fake bundle answering some samples on the edge and sending the rest,
    its inputs, reference and labels, and its predicted test accuracy in the manifest."""
    bundle = FakeBundle(n_tasks=2, threshold=0.9, policy="per_task")
    x = torch.randn(N, 4, generator=torch.Generator().manual_seed(3))
    ref = bundle.reference(x)
    rng = np.random.default_rng(0)
    labels = [rng.integers(0, 3, N) for _ in range(2)]
    for t, y in enumerate(labels):
        bundle.manifest["predicted"][f"test_accuracy.task{t}"] = float(
            np.count_nonzero(ref["predicted"][t] == y) / N)
    assert 0 < np.count_nonzero(ref["payload_bytes"]) < N  # both kinds of sample
    assert (ref["answered"][0] != ref["answered"][1]).any()  # tasks decided apart
    return bundle, x, ref, labels


@pytest.fixture
def tcp(fake: tuple) -> Iterator[sv.SplitServer]:
    srv = sv.make_server(fake[0], "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=10)


def checks_of(bundle: FakeBundle, m: rs.Measured, ref: dict, labels: list,
              full: bool = True) -> dict[str, rs.Check]:
    _, checks = rs.evaluate(bundle.manifest, m, ref, labels, full=full)
    return {c.name.split(" =")[0]: c for c in checks}


def test_in_process_run_passes_every_check(fake: tuple) -> None:
    bundle, x, ref, labels = fake
    m = rs.measure(bundle, x, rs.in_process(bundle))
    figures, checks = rs.evaluate(bundle.manifest, m, ref, labels, full=True)
    assert all(c.passed for c in checks), checks
    names = [c.name for c in checks]
    assert len(names) == 3 + 2 + 2  # decisions, classes, bytes; accuracy, logits per task
    assert np.array_equal(m.payload_bytes, ref["payload_bytes"])
    sent = m.payload_bytes > 0
    assert (m.wire_up[sent] == 32 + sv.REQUEST.size).all() and (m.wire_up[~sent] == 0).all()
    assert (m.server_s[sent] > 0).all() and (m.server_s[~sent] == 0).all()
    assert (m.total_s >= m.edge_s + m.transfer_s + m.server_s - 1e-9).all()
    # exit rates: the sample's path is its latest task's answer
    path = ref["answered"].max(axis=0)
    assert figures["exit rate exit0"][0] == np.mean(path == 0)
    assert figures["exit rate final"][0] == np.mean(path == 1)
    assert figures["payload bytes/input (mean)"][0] == ref["payload_bytes"].mean()


def test_over_tcp_gives_the_same_answers(fake: tuple, tcp: sv.SplitServer) -> None:
    bundle, x, ref, labels = fake
    with sv.Client(*tcp.address, 2) as client:
        m = rs.measure(bundle, x, rs.over_tcp(client))
    local = rs.measure(bundle, x, rs.in_process(bundle))
    assert np.array_equal(m.answered, local.answered)
    assert np.array_equal(m.predicted, local.predicted)
    assert np.array_equal(m.wire_up, local.wire_up)
    assert np.array_equal(m.wire_down, local.wire_down)
    assert all(c.passed for c in checks_of(bundle, m, ref, labels).values())
    assert tcp.served == np.count_nonzero(ref["payload_bytes"])


@pytest.mark.parametrize("tamper", ["answered", "predicted", "payload_bytes", "whole_logits",
                                    "accuracy"])
def test_a_tampered_reference_fails_its_check(fake: tuple, tamper: str) -> None:
    bundle, x, ref, labels = fake
    m = rs.measure(bundle, x, rs.in_process(bundle))
    ref = {k: v.copy() for k, v in ref.items()}
    final = np.flatnonzero(ref["answered"][1] == 1)[0]  # a sample the final head answers
    if tamper == "answered":
        ref["answered"][1, final] = 0
        name = "exit decisions"
    elif tamper == "predicted":
        ref["predicted"][0, 5] = (ref["predicted"][0, 5] + 1) % 3
        name = "predicted classes"
    elif tamper == "payload_bytes":
        ref["payload_bytes"][final] += 1
        name = "payload bytes"
    elif tamper == "whole_logits":
        ref["whole_logits_task1"][final, 2] += 2e-4  # just past the tolerance
        name = "final logits task1"
    else:
        bundle.manifest["predicted"]["test_accuracy.task0"] += 1 / N
        name = "accuracy task0"
    checks = checks_of(bundle, m, ref, labels)
    assert not checks[name].passed
    assert [k for k, c in checks.items() if not c.passed] == [name]


def test_logits_within_the_tolerance_pass(fake: tuple) -> None:
    bundle, x, ref, labels = fake
    m = rs.measure(bundle, x, rs.in_process(bundle))
    ref = dict(ref, whole_logits_task0=ref["whole_logits_task0"] + 5e-5)
    assert checks_of(bundle, m, ref, labels)["final logits task0"].passed


def test_a_limited_run_checks_accuracy_on_its_own_samples(fake: tuple) -> None:
    bundle, x, ref, labels = fake
    m = rs.measure(bundle, x[:7], rs.in_process(bundle))
    figures, checks = rs.evaluate(bundle.manifest, m, ref, labels, full=False)
    assert all(c.passed for c in checks)
    assert figures["accuracy task0"][1] == np.mean(ref["predicted"][0, :7] == labels[0][:7])


def test_link_pacing_makes_transfer_at_least_the_links_time(
    fake: tuple, tcp: sv.SplitServer, make_link: Callable[..., LinkProfile]
) -> None:
    bundle, x, _, _ = fake
    link = make_link(uplink_bps=8e4, rtt_s=0.01)  # 10 kB/s: 32 bytes take 3.2 ms
    floor = 32 * 8 / link.uplink_bps + link.rtt_s
    for ask in (rs.in_process(bundle), None):
        if ask is None:
            client = sv.Client(*tcp.address, 2)
            ask = rs.over_tcp(client)
        m = rs.measure(bundle, x[:12], ask, link=link)
        sent = m.payload_bytes > 0
        assert sent.any()
        assert (m.transfer_s[sent] >= floor).all()
        assert (m.transfer_s[~sent] == 0).all()
        assert (m.total_s[sent] >= floor).all()
    client.close()


def test_pacing_sleeps_the_links_time_less_what_the_exchange_took(
    fake: tuple, make_link: Callable[..., LinkProfile]
) -> None:
    bundle, x, _, _ = fake
    link = make_link()  # 8 Mbit/s up, 16 down, 20 ms
    slept: list[float] = []
    m = rs.measure(bundle, x[:10], rs.in_process(bundle), link=link, sleep=slept.append)
    sent = m.payload_bytes > 0
    target = 32 * 8 / 8e6 + 0.02 + 2 * 3 * 4 * 8 / 16e6  # payload up, rtt, 2x3 logits down
    assert len(slept) == np.count_nonzero(sent)
    assert all(target - 0.005 < s <= target for s in slept)


@pytest.mark.parametrize(("argv", "words"), [
    (["run-split", "DIR", "--server", "localhost"], "--server: bad address 'localhost'"),
    (["run-split", "DIR", "--server", "127.0.0.1:99999"], "--server: bad address"),
    (["run-split", "DIR", "--link", "no-such-link"], "no-such-link"),
    (["run-split", "DIR", "--limit", "0"], "--limit"),
    (["serve", "DIR", "--port", "70000"], "--port: 70000 is not a port"),
])
def test_bad_command_lines_exit_2_with_one_line(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    from dse.cli import main

    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("dse: error: ") and words in err, err
    assert out == ""

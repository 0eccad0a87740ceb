"""Running an exported split: per-sample measurement, its checks against the reference and
the prediction (and that they can fail), link pacing, over TCP and in process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_bundle import FakeBundle, serving
from helpers import HUE, assert_cli_refused, only, spec, study_folder_at, toml_text

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
        bundle.manifest["predicted"].setdefault("task_accuracy", {})[f"task{t}"] = float(
            np.count_nonzero(ref["predicted"][t] == y) / N
        )
    assert 0 < np.count_nonzero(ref["payload_bytes"]) < N  # both kinds of sample
    assert (ref["answered"][0] != ref["answered"][1]).any()  # tasks decided apart
    return bundle, x, ref, labels


@pytest.fixture
def tcp(fake: tuple) -> Iterator[sv.SplitServer]:
    with serving(sv.make_server(fake[0], "127.0.0.1", 0)) as srv:
        yield srv


def checks_of(
    bundle: FakeBundle, m: rs.Measured, ref: dict, labels: list, full: bool = True
) -> dict[str, rs.Check]:
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


@pytest.mark.parametrize(
    "tamper", ["answered", "predicted", "payload_bytes", "whole_logits", "accuracy"]
)
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
        bundle.manifest["predicted"]["task_accuracy"]["task0"] += 1 / N
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


class SteppedClock:
    """A clock that moves ``step`` seconds at each reading and by what is slept: the
    time an exchange takes is then known exactly, whatever the machine's load."""

    def __init__(self, step: float) -> None:
        self.now, self.step, self.slept = 0.0, step, []

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacing_sleeps_the_links_time_less_what_the_exchange_took(
    fake: tuple, make_link: Callable[..., LinkProfile]
) -> None:
    bundle, x, _, _ = fake
    link = make_link()  # 8 Mbit/s up, 16 down, 20 ms
    clock = SteppedClock(0.003)  # each exchange takes 3 ms, 1 ms of it on the server
    local = rs.in_process(bundle)

    def ask(payload: bytes, open_tasks: tuple[bool, ...]) -> tuple:
        got, logits, _, up, down = local(payload, open_tasks)
        return got, logits, 0.001, up, down

    m = rs.measure(bundle, x[:10], ask, link=link, sleep=clock.sleep, clock=clock)
    slept = clock.slept
    sent = m.payload_bytes > 0
    target = 32 * 8 / 8e6 + 0.02 + 2 * 3 * 4 * 8 / 16e6  # payload up, rtt, 2x3 logits down
    assert len(slept) == np.count_nonzero(sent)
    assert all(target - 0.005 < s <= target for s in slept)
    # exactly the link's time less the 2 ms the exchange took off the server
    assert slept == pytest.approx([target - 0.002] * len(slept), abs=1e-12)
    # and the transfer measured is the link's time, plus the reading after the sleep
    assert m.transfer_s[sent] == pytest.approx(target + 0.003, abs=1e-12)
    assert (m.server_s[sent] == 0.001).all() and (m.transfer_s[~sent] == 0).all()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["run-split", "DIR", "--server", "localhost"], "--server: bad address 'localhost'"),
        (["run-split", "DIR", "--server", "127.0.0.1:99999"], "--server: bad address"),
        (["run-split", "DIR", "--link", "no-such-link"], "no-such-link"),
        (["run-split", "DIR", "--limit", "0"], "--limit"),
        (["serve", "DIR", "--port", "70000"], "--port: 70000 is not a port"),
    ],
)
def test_bad_command_lines_exit_2_with_one_line(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    assert_cli_refused(argv, capsys, words=[words])


# ---------------------------------------------------------------- a real exported bundle


RUNSPLIT = spec("runsplit", n_trials=2)


@pytest.fixture(scope="module")
def real_bundle(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Path:
    """A tiny study's trial exported: the digits MLP cut at 3 with exit 0 on the edge and
    exit 1 on the server at threshold 0.5 (some samples leave at each, most run on)."""
    from dse.deploy import export_bundle
    from dse.search.spec import parse_spec
    from dse.search.study import Explorer, create_study, run_study

    root = tmp_path_factory.mktemp("run-split")
    with study_folder_at(root, shared_cache):
        spec = parse_spec(RUNSPLIT, where="runsplit.toml")
        explorer = Explorer(spec, progress=False)
        study, _ = create_study(spec, explorer=explorer)
        study.enqueue_trial(
            {"density": 1.0, "split": 3, "exit_0": True, "exit_1": True, "threshold": 0.5}
        )
        study.enqueue_trial(
            {"density": 1.0, "split": 6, "exit_0": True, "exit_1": False, "threshold": 0.5}
        )  # edge only
        run_study(spec, n_trials=2, progress=False, explorer=explorer)
        done = export_bundle("runsplit", root / "bundle", trial=0)
        assert export_bundle("runsplit", root / "edge-only", trial=1).manifest["edge_only"]
    man = done.manifest
    assert [e["side"] for e in man["exits"]] == ["edge", "server"] and man["codec"] is None
    rates = man["predicted"]["exit_rates"]
    assert all(r > 0 for r in rates), rates  # every path taken by some sample
    return done.folder


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from dse.cli import main

    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def tampered(bundle: Path, dest: Path, change: Callable[[dict], None]) -> Path:
    """A copy of ``bundle`` whose reference.npz ``change`` edited (its sha256 updated in
    the manifest, so the bundle loads: the reference disagrees, nothing is damaged)."""
    import hashlib
    import io
    import json
    import shutil

    shutil.copytree(bundle, dest)
    with np.load(dest / "reference.npz") as z:
        ref = {k: z[k].copy() for k in z.files}
    change(ref)
    buf = io.BytesIO()
    np.savez(buf, **ref)
    (dest / "reference.npz").write_bytes(buf.getvalue())
    man = json.loads((dest / "manifest.json").read_text())
    man["files"]["reference.npz"] = hashlib.sha256(buf.getvalue()).hexdigest()
    (dest / "manifest.json").write_text(json.dumps(man))
    return dest


@pytest.mark.slow
def test_run_split_in_process_passes_its_checks(
    real_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    rc, out, err = run_cli(
        ["run-split", str(real_bundle), "--json", str(tmp_path / "run.json")], capsys
    )
    assert rc == 0, out + err
    assert "5 of 5 checks passed" in out and "FAIL" not in out
    assert "server in-process" in out
    got = json.loads((tmp_path / "run.json").read_text())
    man = json.loads((real_bundle / "manifest.json").read_text())
    ref = np.load(real_bundle / "reference.npz")
    assert got["passed"] and got["n"] == ref["answered"].shape[1]
    figures = got["figures"]
    assert figures["accuracy digit"]["measured"] == man["predicted"]["accuracy"]
    for name, rate in zip(
        ["layers.0", "layers.1", "final"], man["predicted"]["exit_rates"], strict=True
    ):
        assert figures[f"exit rate {name}"]["measured"] == pytest.approx(rate, abs=1e-12)
    assert figures["payload bytes/input (mean)"]["measured"] == pytest.approx(
        man["predicted"]["bytes"], rel=1e-12
    )
    sent = np.array(got["samples"]["payload_bytes"]) > 0
    wire = np.array(got["samples"]["wire_up"])
    assert (wire[sent] == np.array(got["samples"]["payload_bytes"])[sent] + 16).all()
    assert figures["end-to-end s (mean)"]["ratio"] > 0  # printed, not checked


@pytest.mark.slow
def test_run_split_over_tcp_against_dse_serve(
    real_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import os
    import signal
    import socket
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dse.cli", "serve", str(real_bundle), "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"serving {real_bundle} on 127.0.0.1:"), line
        address = line.split()[-1]
        host, port = sv.parse_address(address)
        with socket.create_connection((host, port), timeout=30) as sock:  # garbage first
            sock.sendall(sv.request_frame(b"DSEC" + bytes(60), None, 1))
            head = sv.recv_exact(sock, sv.REPLY.size)
            assert head is not None and sv.REPLY.unpack(head)[2] == sv.BAD_PAYLOAD
        rc, out, err = run_cli(
            [
                "run-split",
                str(real_bundle),
                "--server",
                address,
                "--limit",
                "60",
                "--json",
                str(tmp_path / "tcp.json"),
            ],
            capsys,
        )
        assert rc == 0, out + err
        assert f"server tcp {address}" in out and "5 of 5 checks passed" in out
        got = json.loads((tmp_path / "tcp.json").read_text())
        assert got["n"] == 60 and got["mode"] == f"tcp {address}"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    served = int(np.count_nonzero(np.array(got["samples"]["payload_bytes"])))
    assert f"stopped: {served} requests answered, 1 refused" in stdout


@pytest.mark.slow
@pytest.mark.parametrize("change", ["decision", "class", "bytes", "logits"])
def test_a_tampered_reference_makes_run_split_exit_1(
    real_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str
) -> None:
    def edit(ref: dict) -> None:
        final = int(np.flatnonzero(ref["answered"][0] == 2)[0])
        if change == "decision":
            ref["answered"][0, final] = 1
        elif change == "class":
            ref["predicted"][0, final] = (ref["predicted"][0, final] + 1) % 10
        elif change == "bytes":
            ref["payload_bytes"][final] -= 1
        else:
            ref["whole_logits_digit"][final] += 1e-3

    bundle = tampered(real_bundle, tmp_path / "b", edit)
    rc, out, _ = run_cli(["run-split", str(bundle), "--limit", "40"], capsys)
    assert rc == 1
    failed = [line for line in out.splitlines() if line.strip().startswith("FAIL")]
    words = {
        "decision": "exit decisions",
        "class": "predicted classes",
        "bytes": "payload bytes",
        "logits": "final logits digit",
    }[change]
    assert len(failed) == 1 and words in failed[0], out
    assert "1 FAILED" in out


@pytest.mark.slow
def test_link_pacing_on_the_real_bundle(
    real_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from dse.costmodel import load_link

    rc, out, err = run_cli(
        [
            "run-split",
            str(real_bundle),
            "--link",
            "3g",
            "--limit",
            "8",
            "--json",
            str(tmp_path / "l.json"),
        ],
        capsys,
    )
    assert rc == 0, out + err
    assert "paced to emulate link 3g" in out and "not a real radio" in out
    link = load_link("3g")
    got = json.loads((tmp_path / "l.json").read_text())
    nbytes = np.array(got["samples"]["payload_bytes"])
    transfer = np.array(got["samples"]["transfer_s"])
    assert (nbytes > 0).any()
    floor = 8 * nbytes / link.uplink_bps + link.rtt_s
    assert (transfer[nbytes > 0] >= floor[nbytes > 0]).all()
    assert (transfer[nbytes == 0] == 0).all()


@pytest.mark.slow
def test_bad_inputs_exit_2_with_one_line(
    real_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:  # bound, never listening: nobody answers there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        cases = [
            (["run-split", str(tmp_path / "nowhere")], "nowhere"),
            (["serve", str(tmp_path / "nowhere")], "nowhere"),
            (
                ["run-split", str(real_bundle), "--server", f"127.0.0.1:{port}"],
                f"127.0.0.1:{port}: --server: server not reachable",
            ),
            (["run-split", str(real_bundle), "--data", str(tmp_path / "none.toml")], "none.toml"),
        ]
        (tmp_path / "empty").mkdir()
        cases.append((["run-split", str(tmp_path / "empty")], "manifest.json"))
        cases.append((["serve", str(real_bundle.parent / "edge-only")], "edge-only"))
        for argv, words in cases:
            assert_cli_refused(argv, capsys, words=[words])
    assert "dse serve DIR" in run_cli(cases[2][0], capsys)[2]


PER_TASK = spec("runsplit-tasks", n_trials=1, data=only(HUE), space={"policies": ["per_task"]})


@pytest.fixture(scope="module")
def per_task_bundle(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Path:
    """Two tasks (the tiny hues) answered per task: exit 0 on the edge, exit 1 on the
    server; a sample whose first task left at the edge is sent for the other alone."""
    from dse.deploy import export_bundle
    from dse.search.spec import parse_spec
    from dse.search.study import Explorer, create_study, run_study

    root = tmp_path_factory.mktemp("run-split-tasks")
    with study_folder_at(root, shared_cache):
        spec = parse_spec(PER_TASK, where="runsplit-tasks.toml")
        explorer = Explorer(spec, progress=False)
        study, _ = create_study(spec, explorer=explorer)
        study.enqueue_trial(
            {"density": 1.0, "split": 4, "exit_0": True, "exit_1": True, "threshold": 0.5}
        )
        run_study(spec, n_trials=1, progress=False, explorer=explorer)
        done = export_bundle("runsplit-tasks", root / "bundle", trial=0)
    assert done.manifest["policy"] == "per_task" and len(done.manifest["tasks"]) == 2
    return done.folder


@pytest.mark.slow
def test_per_task_answers_over_tcp_send_only_the_open_tasks(
    per_task_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = np.load(per_task_bundle / "reference.npz")
    answered = ref["answered"]
    # some sample has one task answered on the edge and the other still open
    assert ((answered == 0).any(axis=0) & (answered > 0).any(axis=0)).any()
    from dse.deploy.bundle import load_bundle

    with serving(sv.make_server(load_bundle(per_task_bundle), "127.0.0.1", 0)) as srv:
        host, port = srv.address
        rc, out, err = run_cli(
            ["run-split", str(per_task_bundle), "--server", f"{host}:{port}"], capsys
        )
    assert rc == 0, out + err
    assert "7 of 7 checks passed" in out
    assert srv.served == int(np.count_nonzero(ref["payload_bytes"])) and srv.refused == 0


def test_a_limited_run_predicts_rates_and_bytes_from_its_own_samples(fake: tuple) -> None:
    bundle, x, ref, labels = fake
    bundle.manifest["predicted"].update(exit_rates=[0.5, 0.5], bytes=1e6)  # whole split
    m = rs.measure(bundle, x[:9], rs.in_process(bundle))
    figures, _ = rs.evaluate(bundle.manifest, m, ref, labels, full=False)
    path = ref["answered"][:, :9].max(axis=0)
    assert figures["exit rate exit0"] == (np.mean(path == 0), np.mean(path == 0))
    assert figures["payload bytes/input (mean)"][1] == ref["payload_bytes"][:9].mean()
    full, _ = rs.evaluate(
        bundle.manifest, rs.measure(bundle, x, rs.in_process(bundle)), ref, labels, full=True
    )
    assert full["exit rate exit0"][1] == 0.5 and full["payload bytes/input (mean)"][1] == 1e6


@pytest.mark.slow
def test_a_lossy_codec_bundle_passes_with_its_logits_check_skipped(
    tmp_path_factory: pytest.TempPathFactory, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from export_fixtures import make_study

    from dse.deploy import export_bundle

    root = tmp_path_factory.mktemp("run-split-codec")
    with study_folder_at(root, shared_cache):
        make_study(
            "runsplit-codec",
            [
                {
                    "density": 1.0,
                    "split": 3,
                    "exit_0": True,
                    "exit_1": True,
                    "threshold": 0.5,
                    "codec": "int8+zstd",
                }
            ],
            codecs=True,
        )
        done = export_bundle("runsplit-codec", root / "bundle", trial=0)
    assert done.manifest["codec"] == "int8+zstd"
    rc, out, err = run_cli(["run-split", str(done.folder), "--limit", "60"], capsys)
    assert rc == 0, out + err
    assert "SKIP  final logits" in out and "4 of 4 checks passed (1 skipped)" in out


@pytest.mark.slow
def test_data_from_another_file(
    real_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = tmp_path / "same.toml"  # only a [data] table, equal to the study's
    same.write_text(toml_text({"data": {"name": "digits", "seed": 0}}))
    rc, out, err = run_cli(
        ["run-split", str(real_bundle), "--data", str(same), "--limit", "30"], capsys
    )
    assert rc == 0 and "4 of 4" not in out and "5 of 5 checks passed" in out, out + err
    shuffled = tmp_path / "shuffled.toml"  # the same set split with another seed
    shuffled.write_text(toml_text({"name": "x", "data": {"name": "digits", "seed": 1}}))
    rc, out, err = run_cli(
        ["run-split", str(real_bundle), "--data", str(shuffled), "--limit", "30"], capsys
    )
    assert rc == 1 and "FAIL  exit decisions" in out  # other samples: the checks see it
    for doc, words in (
        (
            {"data": {"name": "digits", "val_fraction": 0.3, "test_fraction": 0.3}},
            "samples, the bundle's reference",
        ),
        ({"data": {"name": "digits", "bogus": 1}}, "data.bogus: unknown key"),
        ({"model": {"name": "mlp"}}, "no [data] table"),
    ):
        other = tmp_path / "other.toml"
        other.write_text(toml_text(doc))
        assert_cli_refused(
            ["run-split", str(real_bundle), "--data", str(other)], capsys, words=[words]
        )


@pytest.mark.slow
def test_an_edge_only_bundle_runs_alone(
    real_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    rc, out, err = run_cli(
        [
            "run-split",
            str(real_bundle.parent / "edge-only"),
            "--limit",
            "40",
            "--json",
            str(tmp_path / "e.json"),
        ],
        capsys,
    )
    assert rc == 0 and "5 of 5 checks passed" in out, out + err
    samples = json.loads((tmp_path / "e.json").read_text())["samples"]
    assert set(samples["payload_bytes"]) == set(samples["wire_up"]) == {0}
    assert set(samples["server_s"]) == set(samples["transfer_s"]) == {0.0}
    assert set(samples["answered"][0]) == {0, 1}  # exit 0, and the final head on the edge


@pytest.mark.slow
def test_a_server_going_away_mid_run_is_one_line(
    real_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dse.deploy.bundle import load_bundle

    class Dying(sv.SplitServer):
        def answer_one(self, sock: object) -> bool:
            if self.served >= 3:
                return False  # closes the connection without a reply
            return super().answer_one(sock)  # type: ignore[arg-type]

    with serving(Dying(load_bundle(real_bundle), "127.0.0.1", 0)) as srv:
        host, port = srv.address
        rc, out, err = run_cli(
            ["run-split", str(real_bundle), "--server", f"{host}:{port}"], capsys
        )
    assert rc == 2 and err.count("\n") == 1, err
    assert f"{host}:{port}: --server: connection lost" in err and "dse serve DIR" in err

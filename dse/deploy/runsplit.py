"""Run an exported split for real (``dse run-split DIR``) and hold it to the study's
prediction.

Every test sample of the bundle's data set, read as [0, 1] pixels and normalised as the
manifest's ``normalisation`` says (as a device normalises its own images), goes through
at batch 1: the edge program; if
it sends, the payload goes to the server program, in this process or over TCP to a
``dse serve`` (:mod:`dse.deploy.serve`). With a link profile, the transfer is *paced*:
after the exchange the client sleeps until ``8 * payload / uplink + rtt + 8 * result /
downlink`` seconds have passed (the cost model's transfer time) - an emulation of the link's
rate and delay on this machine, not a real radio.

Measured per sample: edge seconds (wall time of the edge program and encoding), server
seconds (the server's own measure of decoding and its program), transfer seconds (the rest
of the exchange: the wire, framing, pacing; 0 when nothing is sent) and end to end.

Checks (each with its tolerance; one failing makes the CLI exit 1): the exit decisions
equal the reference's ``answered`` on every sample; the predicted classes equal
``predicted``; each sample's payload length equals ``payload_bytes`` exactly; the accuracy
per task equals the study's predicted test accuracy (the same samples and decisions, so
equal up to float rounding); with no codec or a lossless one, the final head's logits
equal the whole network's (``whole_logits_*``) within 1e-4. Latencies are printed beside
the prediction with their ratio, never checked: the prediction is for the study's edge
device, link and server, not this machine.
"""

from __future__ import annotations

import math
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dse.costmodel import LinkProfile, transfer_time
from dse.deploy.serve import REPLY, REQUEST, Client, ServerError, ok_body
from dse.errors import InputError
from dse.nets import normalise

ACCURACY_TOL = 1e-9  # |measured - predicted|: float rounding only
LOGITS_TOL = 1e-4  # max |final logits - whole_logits|, absolute


@dataclass(frozen=True)
class Check:
    """One pass/fail check of the run against the reference or the prediction."""

    name: str
    passed: bool
    tolerance: str
    detail: str
    skipped: bool = False  # not applicable to this bundle (passed, shown as SKIP)


@dataclass(frozen=True)
class Measured:
    """Per sample (arrays of length N) what the run did and how long it took."""

    answered: np.ndarray  # int [T, N]: per task the path index (len(exits) = final head)
    predicted: np.ndarray  # int [T, N]: argmax of each task's answer
    payload_bytes: np.ndarray  # int [N]: 0 when nothing was sent
    wire_up: np.ndarray  # int [N]: request frame bytes (header + payload), 0 when not sent
    wire_down: np.ndarray  # int [N]: reply frame bytes
    edge_s: np.ndarray  # float [N]
    transfer_s: np.ndarray
    server_s: np.ndarray
    total_s: np.ndarray
    final_logits: tuple[dict[int, np.ndarray], ...]  # per task: sample -> final-head logits


@dataclass(frozen=True)
class SplitRun:
    """A run's measured and predicted figures and its checks."""

    n: int
    mode: str  # "in-process" or "tcp HOST:PORT"
    link: str | None  # the paced link profile's name
    figures: dict[str, tuple[float, float]]  # name -> (measured, predicted; nan: unknown)
    checks: tuple[Check, ...]
    measured: Measured
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def table(self) -> Any:
        """The figures as a pandas DataFrame: measured, predicted, ratio."""
        import pandas as pd

        rows = {
            name: {"measured": m, "predicted": p, "ratio": _ratio(m, p)}
            for name, (m, p) in self.figures.items()
        }
        return pd.DataFrame.from_dict(rows, orient="index")

    def text(self, *, title: str = "") -> str:
        """The run as text: a header, the figures table and the checks."""
        import pandas as pd

        lines = [title] if title else []
        lines.append(f"{self.n} test samples at batch 1, server {self.mode}")
        lines += [f"note: {n}" for n in self.notes]
        table = self.table()
        with pd.option_context("display.float_format", lambda v: f"{v:.6g}", "display.width", 160):
            lines.append(table.to_string(na_rep="-"))
        lines.append("checks:")
        for c in self.checks:
            word = "SKIP" if c.skipped else "PASS" if c.passed else "FAIL"
            lines.append(f"  {word}  {c.name}  [{c.tolerance}]  {c.detail}")
        done = [c for c in self.checks if not c.skipped]
        failed = sum(not c.passed for c in done)
        skipped = len(self.checks) - len(done)
        lines.append(
            f"{len(done) - failed} of {len(done)} checks passed"
            + (f", {failed} FAILED" if failed else "")
            + (f" ({skipped} skipped)" if skipped else "")
        )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        m = self.measured
        return {
            "n": self.n,
            "mode": self.mode,
            "link": self.link,
            "passed": self.passed,
            "notes": list(self.notes),
            "figures": {
                k: {"measured": _num(a), "predicted": _num(b), "ratio": _num(_ratio(a, b))}
                for k, (a, b) in self.figures.items()
            },
            "checks": [
                {
                    "name": c.name,
                    "passed": c.passed,
                    "tolerance": c.tolerance,
                    "detail": c.detail,
                    "skipped": c.skipped,
                }
                for c in self.checks
            ],
            "samples": {
                "answered": m.answered.tolist(),
                "predicted": m.predicted.tolist(),
                "payload_bytes": m.payload_bytes.tolist(),
                "wire_up": m.wire_up.tolist(),
                "wire_down": m.wire_down.tolist(),
                "edge_s": m.edge_s.tolist(),
                "transfer_s": m.transfer_s.tolist(),
                "server_s": m.server_s.tolist(),
                "total_s": m.total_s.tolist(),
            },
        }


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _ratio(measured: float, predicted: float) -> float:
    if not (math.isfinite(measured) and math.isfinite(predicted)) or predicted == 0:
        return math.nan
    return measured / predicted


# ----------------------------------------------------------------------------- transport

#: ask(payload, open_tasks) -> (answered, logits, server seconds, wire up, wire down)
Ask = Callable[
    [bytes, tuple[bool, ...]], tuple[tuple[int, ...], tuple[torch.Tensor, ...], float, int, int]
]


def in_process(bundle: Any) -> Ask:
    """The bundle's server program called directly; the wire figures are the frames the
    TCP protocol would carry."""

    def ask(payload: bytes, open_tasks: tuple[bool, ...]) -> tuple:
        r = bundle.server(payload, open_tasks)
        body = ok_body(tuple(r.answered), tuple(r.logits), r.seconds)
        return (
            tuple(r.answered),
            tuple(r.logits),
            float(r.seconds),
            REQUEST.size + len(payload),
            REPLY.size + len(body),
        )

    return ask


def over_tcp(client: Client) -> Ask:
    def ask(payload: bytes, open_tasks: tuple[bool, ...]) -> tuple:
        try:
            r = client.ask(payload, open_tasks)
        except ServerError as exc:
            raise InputError(
                client.address, "reply", exc.reason, "serve this bundle: dse serve DIR"
            ) from None
        except OSError as exc:  # the server went away (ConnectionError, a timeout)
            raise InputError(
                client.address,
                "--server",
                f"connection lost: {exc}",
                "check that `dse serve DIR` still runs there",
            ) from None
        return r.answered, r.logits, r.seconds, r.wire_up, r.wire_down

    return ask


# ----------------------------------------------------------------------------- running


def measure(
    bundle: Any,
    x: torch.Tensor,
    ask: Ask,
    *,
    link: LinkProfile | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
) -> Measured:
    """Run every sample of ``x`` [N, ...] at batch 1 through the edge program and, where it
    sends, ``ask``; pace each exchange to ``link``'s transfer time when given. ``clock``
    (seconds) and ``sleep`` are the machine's; a test passes its own to check the pacing
    without depending on how fast the machine runs."""
    man = bundle.manifest
    n_tasks = len(man["tasks"])
    final = len(man["exits"])
    result_bytes = 4 * sum(int(c) for c in man["classes"])  # the float32 logits returned
    n = int(x.shape[0])
    answered = np.zeros((n_tasks, n), dtype=np.int64)
    predicted = np.zeros((n_tasks, n), dtype=np.int64)
    ints = {k: np.zeros(n, dtype=np.int64) for k in ("payload", "up", "down")}
    secs = {k: np.zeros(n) for k in ("edge", "transfer", "server", "total")}
    finals: tuple[dict[int, np.ndarray], ...] = tuple({} for _ in range(n_tasks))
    for i in range(n):
        sample = x[i : i + 1]
        t0 = clock()
        e = bundle.edge(sample)
        t1 = clock()
        secs["edge"][i] = t1 - t0
        answers = list(e.logits)
        paths: list[int | None] = list(e.answered)
        if e.payload is not None:
            open_tasks = tuple(a is None for a in e.answered)
            got, logits, server_s, up, down = ask(e.payload, open_tasks)
            if link is not None:
                target = transfer_time(len(e.payload), link, result_bytes=result_bytes)
                spent = clock() - t1 - server_s
                if spent < target:
                    sleep(target - spent)
            t3 = clock()
            secs["server"][i] = server_s
            secs["transfer"][i] = t3 - t1 - server_s
            ints["payload"][i], ints["up"][i], ints["down"][i] = len(e.payload), up, down
            for t in range(n_tasks):
                if paths[t] is None and got[t] >= 0:  # -1: the server left it unanswered
                    paths[t], answers[t] = got[t], logits[t]
        secs["total"][i] = clock() - t0
        for t in range(n_tasks):
            if paths[t] is None or answers[t] is None:
                raise RuntimeError(
                    f"sample {i}: task {man['tasks'][t]} answered by neither "
                    "the edge nor the server"
                )
            answered[t, i] = paths[t]
            if paths[t] == final:  # the final head answered (on the server, or an edge-only cut)
                finals[t][i] = answers[t].detach().reshape(-1).float().numpy()
            predicted[t, i] = int(answers[t].reshape(-1).argmax())
    return Measured(
        answered,
        predicted,
        ints["payload"],
        ints["up"],
        ints["down"],
        secs["edge"],
        secs["transfer"],
        secs["server"],
        secs["total"],
        finals,
    )


def _predicted(man: dict, name: str, default: Any = math.nan) -> Any:
    """A predicted figure of the test split, as ``dse export`` writes it in the manifest
    (``default`` where absent)."""
    return (man.get("predicted") or {}).get(name, default)


def _predicted_part(man: dict, name: str) -> float:
    """A latency part (``edge_s``, ``transfer_s``, ``server_s``): the study scores the
    parts on the validation split only."""
    return float(((man.get("predicted") or {}).get("validation") or {}).get(name, math.nan))


def _task_accuracy(man: dict, task: str) -> float:
    return float(_predicted(man, "task_accuracy", {}).get(task, math.nan))


def lossless(man: dict) -> bool:
    """Whether the server reads exactly the edge's tensors (no codec, or a lossless one)."""
    if man.get("codec") is None:
        return True
    from dse.nets import Codec

    return not Codec.parse(man["codec"]).lossy


def evaluate(
    man: dict,
    m: Measured,
    reference: dict[str, np.ndarray],
    labels: Sequence[np.ndarray],
    *,
    full: bool,
) -> tuple[dict, tuple[Check, ...]]:
    """Figures (measured, predicted) and checks of a measured run against the reference
    arrays (their first N samples) and the manifest's prediction; ``full``: the run covers
    the whole test split (else the predicted accuracy is the reference's on these samples).
    """
    tasks = list(man["tasks"])
    exits = [e.get("name", f"exit{j}") for j, e in enumerate(man["exits"])]
    n = m.answered.shape[1]
    ref_answered = np.asarray(reference["answered"])[:, :n]
    ref_predicted = np.asarray(reference["predicted"])[:, :n]
    ref_bytes = np.asarray(reference["payload_bytes"])[:n]
    figures: dict[str, tuple[float, float]] = {}
    checks: list[Check] = []

    def first_diff(a: np.ndarray, b: np.ndarray) -> str:
        bad = np.argwhere(a != b)
        if not len(bad):
            return "all equal"
        where = tuple(int(v) for v in bad[0])
        return f"{len(bad)} differ, first at {where}: measured {a[where]}, reference {b[where]}"

    for what, got, ref, every in (
        ("exit decisions = reference answered", m.answered, ref_answered, "sample and task"),
        ("predicted classes = reference predicted", m.predicted, ref_predicted, "sample and task"),
        ("payload bytes = reference payload_bytes", m.payload_bytes, ref_bytes, "sample"),
    ):
        checks.append(
            Check(
                what, bool(np.array_equal(got, ref)), f"exact, every {every}", first_diff(got, ref)
            )
        )
    for t, task in enumerate(tasks):
        y = np.asarray(labels[t])[:n]
        acc = float(np.count_nonzero(m.predicted[t] == y) / n)
        if full:
            want, source = _task_accuracy(man, task), "the study's test accuracy"
        else:
            want = float(np.count_nonzero(ref_predicted[t] == y) / n)
            source = f"the reference's on these {n} samples"
        figures[f"accuracy {task}"] = (acc, want)
        ok = math.isfinite(want) and abs(acc - want) <= ACCURACY_TOL
        checks.append(
            Check(
                f"accuracy {task} = {source}",
                ok,
                f"abs <= {ACCURACY_TOL:g}",
                f"measured {acc:.6f}, predicted {want:.6f}",
            )
        )
    checks += _final_logits_checks(man, m, reference, tasks)
    rates = np.bincount(m.answered.max(axis=0), minlength=len(exits) + 1) / n
    if full:
        want_rates = _predicted(man, "exit_rates", None)
        want_bytes = float(_predicted(man, "bytes"))
    else:  # the study's figures are over the whole split: the reference's on these samples
        want_rates = np.bincount(ref_answered.max(axis=0), minlength=len(exits) + 1) / n
        want_bytes = float(ref_bytes.mean())
    for j, name in enumerate([*exits, "final"]):
        want = float(want_rates[j]) if want_rates is not None and j < len(want_rates) else math.nan
        figures[f"exit rate {name}"] = (float(rates[j]), want)
    figures["payload bytes/input (mean)"] = (float(m.payload_bytes.mean()), want_bytes)
    figures["wire bytes up/input (frames, mean)"] = (float(m.wire_up.mean()), math.nan)
    figures["wire bytes down/input (frames, mean)"] = (float(m.wire_down.mean()), math.nan)
    for name, arr in (("edge_s", m.edge_s), ("transfer_s", m.transfer_s), ("server_s", m.server_s)):
        figures[f"{name[:-2]} time s (mean; predicted: validation)"] = (
            float(arr.mean()),
            _predicted_part(man, name),
        )
    figures["end-to-end s (mean)"] = (
        float(m.total_s.mean()),
        float(_predicted(man, "latency_mean")),
    )
    figures["end-to-end s (p95)"] = (
        float(np.percentile(m.total_s, 95)),
        float(_predicted(man, "latency_p95")),
    )
    return figures, tuple(checks)


def _final_logits_checks(
    man: dict, m: Measured, reference: dict[str, np.ndarray], tasks: Sequence[str]
) -> list[Check]:
    """Per task, the final head's logits of every sample that reached it against the whole
    network's (skipped for a lossy codec, whose server reads decoded tensors, or when no
    sample reached the final head)."""
    out: list[Check] = []
    if not lossless(man):
        out.append(
            Check(
                "final logits = whole network's",
                True,
                "not checked",
                f"codec {man['codec']} is lossy (the server reads decoded "
                "tensors; their classes are checked above)",
                skipped=True,
            )
        )
    else:
        for t, task in enumerate(tasks):
            key = f"whole_logits_{task}"
            reached = sorted(m.final_logits[t])
            if key not in reference:
                out.append(
                    Check(
                        f"final logits {task} = whole network's",
                        False,
                        f"abs <= {LOGITS_TOL:g}",
                        f"reference.npz has no {key}",
                    )
                )
                continue
            whole = np.asarray(reference[key])
            worst = max(
                (float(np.abs(m.final_logits[t][i] - whole[i]).max()) for i in reached), default=0.0
            )
            if not reached:  # nothing to compare: not a pass
                out.append(
                    Check(
                        f"final logits {task} = whole network's",
                        True,
                        f"abs <= {LOGITS_TOL:g}",
                        "no sample reached the final head",
                        skipped=True,
                    )
                )
                continue
            out.append(
                Check(
                    f"final logits {task} = whole network's",
                    worst <= LOGITS_TOL,
                    f"abs <= {LOGITS_TOL:g}",
                    f"{len(reached)} samples reached the final head, max |diff| {worst:.3g}",
                )
            )
    return out


# ----------------------------------------------------------------------------- inputs


def data_table(man: dict, data: str | Path | None, *, where: str) -> tuple[dict, str]:
    """The [data] table to load, checked as a spec's is: the manifest's spec's, or that of
    the TOML file ``data`` (a study spec or a file holding only a [data] table); with where
    it came from."""
    from dse.search import check_data_table

    if data is None:
        text, source = man.get("spec"), f"{where}: spec"
        if not isinstance(text, str):
            raise InputError(where, "spec", "missing", "export the bundle again with dse export")
    else:
        path = Path(data)
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise InputError(
                path,
                "<file>",
                f"cannot read: {reason}",
                "give a study spec .toml (its [data] table is used)",
            ) from None
    try:
        table = tomllib.loads(text).get("data")
    except tomllib.TOMLDecodeError as exc:
        raise InputError(source, "<toml>", f"not valid TOML: {exc}") from None
    if not isinstance(table, dict) or "name" not in table:
        raise InputError(
            source, "data", "no [data] table with a name", "give a study spec with a [data] table"
        )
    return check_data_table(table, where=source)[0], source


def load_test_split(
    man: dict, data: str | Path | None, *, where: str
) -> tuple[torch.Tensor, list[np.ndarray]]:
    """The test split's inputs and, per task of the bundle, its labels: read as [0, 1]
    pixels and normalised as the bundle's manifest says (what a device does with its own
    images), or, for a bundle whose manifest does not say, as the data set normalises."""
    from dse.search import load_data_table

    table, source = data_table(man, data, where=where)
    norm = man.get("normalisation")
    ds = load_data_table(table, normalise=norm is None)
    labels = []
    for task in man["tasks"]:
        if task not in ds.test.y:
            raise InputError(
                source,
                "data",
                f"data set {ds.name} has no task {task!r}",
                "give the data the bundle was trained on",
            )
        labels.append(ds.test.y[task].numpy())
    want = tuple(int(d) for d in man.get("input_shape", ()))[1:]
    if want and tuple(ds.input_shape) != want:
        raise InputError(
            source,
            "data",
            f"inputs of shape {ds.input_shape}, the bundle takes {want}",
            "give the data the bundle was trained on",
        )
    if norm is None:
        return ds.test.x, labels
    return normalise(ds.test.x, norm["mean"], norm["std"]), labels


def run_split(
    folder: str | Path,
    *,
    data: str | Path | None = None,
    server: str | None = None,
    link: str | Path | None = None,
    limit: int | None = None,
) -> SplitRun:
    """Run the bundle in ``folder`` on its test split (or ``data``'s) and check it.

    ``server``: ``HOST:PORT`` of a ``dse serve`` (None: the server program in this
    process); ``link``: a link profile (name or .toml) to pace the transfers with;
    ``limit``: only the first samples.
    """
    from dse.costmodel import load_link
    from dse.deploy.serve import parse_address

    address = parse_address(server) if server is not None else None
    link_profile = load_link(link) if link is not None else None
    if limit is not None and limit < 1:
        raise InputError("command line", "--limit", f"{limit} samples", "give at least 1")
    from dse.deploy.bundle import load_bundle

    bundle = load_bundle(folder)
    man = bundle.manifest
    where = str(Path(folder) / "manifest.json")
    reference = bundle.reference()
    x, labels = load_test_split(man, data, where=where)
    n_ref = reference["answered"].shape[1]
    if x.shape[0] != n_ref:
        raise InputError(
            data or where,
            "data",
            f"the test split has {x.shape[0]} samples, the bundle's reference {n_ref}",
            "give the data the bundle was exported with (drop --data)",
        )
    n = min(int(x.shape[0]), limit or n_ref)
    if address is not None:
        with Client(*address, len(man["tasks"])) as client:
            m = measure(bundle, x[:n], over_tcp(client), link=link_profile)
        mode = f"tcp {address[0]}:{address[1]}"
    else:
        m = measure(bundle, x[:n], in_process(bundle), link=link_profile)
        mode = "in-process"
    figures, checks = evaluate(man, m, reference, labels, full=n == n_ref)
    notes = []
    if link_profile is not None:
        notes.append(
            f"transfer time paced to emulate link {link_profile.name} "
            f"(payload / uplink + rtt + result / downlink): emulated, not a real "
            "radio"
        )
    elif address is None:
        notes.append("no link: the server program ran in this process (transfer = call overhead)")
    else:
        notes.append("no link emulation: transfer is this TCP connection's real time")
    notes.append(
        "predicted latency is the study's, for its edge, link and server profiles "
        "(not this machine): ratios are shown, not checked"
    )
    if n < n_ref:
        notes.append(
            f"first {n} of {n_ref} test samples: predicted accuracy, exit rates and "
            "bytes are the reference's on these samples; predicted latencies are "
            "the study's over the whole split"
        )
    return SplitRun(
        n, mode, link_profile.name if link_profile else None, figures, checks, m, tuple(notes)
    )

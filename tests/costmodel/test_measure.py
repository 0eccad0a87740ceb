"""Timing programs: two passes of interleaved rounds, and the edge part of a cut as one
program."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn as nn

from dse.costmodel import measure
from dse.costmodel.graph import build_graph
from dse.costmodel.measure import edge_programs, time_passes


class SteppedClock:
    """A clock that moves only when a program runs: each run takes what it is told."""

    def __init__(self) -> None:
        self.now = 0.0
        self.runs = 0

    def __call__(self) -> float:
        return self.now

    def program(self, seconds: list[float]):  # type: ignore[no-untyped-def]
        """A program whose n-th run takes ``seconds[n]`` (the last one from then on)."""
        count = [0]

        def run() -> None:
            self.now += seconds[min(count[0], len(seconds) - 1)]
            count[0] += 1
            self.runs += 1

        return run


def test_two_passes_time_the_same_programs_and_say_how_far_the_second_moved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SteppedClock()
    monkeypatch.setattr(time, "perf_counter", clock)
    rounds, warmup = 10, 3
    # each timed run follows an untimed run of the same program: a pass runs every
    # program warmup + 2 * rounds times (the second pass after one warm-up run).
    # "steady" takes 1 ms every time; "slower" takes 2 ms through the first pass (its
    # warm-up included) and 2.2 ms through the second (after its one warm-up run)
    first = warmup + 2 * rounds
    calls = {
        "steady": clock.program([1e-3]),
        "slower": clock.program([2e-3] * (first + 1) + [2.2e-3]),
    }
    p = time_passes(calls, rounds=rounds, warmup=warmup, seed=0)
    assert clock.runs == 2 * (first + 1 + 2 * rounds)
    assert p.first["steady"].p10_s == pytest.approx(1e-3)
    assert p.first["steady"].runs == rounds and p.pooled["steady"].runs == 2 * rounds
    assert p.repeat_error("steady") == pytest.approx(0.0)
    assert p.first["slower"].p10_s == pytest.approx(2e-3)
    assert p.second["slower"].p10_s == pytest.approx(2.2e-3)
    assert p.repeat_error("slower") == pytest.approx(0.10)
    # the truth is the p10 of both passes' runs together
    assert p.pooled["slower"].p10_s == pytest.approx(2e-3)
    assert p.pooled["slower"].min_s == pytest.approx(2e-3)


def test_a_timed_run_follows_a_run_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # what a deployed program pays is a run after its own: a program that runs after
    # another one pays 3 ms (its primitives and data evicted), after itself 1 ms
    clock = SteppedClock()
    monkeypatch.setattr(time, "perf_counter", clock)
    last: list[str] = [""]

    def program(name: str):  # type: ignore[no-untyped-def]
        def run() -> None:
            clock.now += 1e-3 if last[0] == name else 3e-3
            last[0] = name

        return run

    calls = {n: program(n) for n in "abcd"}
    p = time_passes(calls, rounds=8, warmup=2, seed=0)
    for n in calls:
        assert p.pooled[n].runs == 16
        assert p.pooled[n].median_s == pytest.approx(1e-3)
        assert p.pooled[n].p90_s == pytest.approx(1e-3)


def test_time_passes_refuses_no_rounds() -> None:
    from dse.errors import InputError

    with pytest.raises(InputError, match="rounds >= 1"):
        time_passes({"a": lambda: None}, rounds=0)


class _Skip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.ReLU()
        self.c = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(self.a(x))
        return self.c(y) + y


@pytest.mark.parametrize("runtime", ["eager", "torch-export"])
def test_the_edge_part_of_a_cut_returns_what_crosses_it(runtime: str) -> None:
    torch.manual_seed(0)
    model = _Skip().eval()
    x = torch.randn(1, 3, 6, 6)
    graph = build_graph(model, x, name="skip")
    assert graph.backbone == ("a", "b", "c", "add")
    programs = edge_programs(model, x, graph, [1, 3, 4], runtime=runtime)

    def run(k: int) -> list[torch.Tensor]:  # an exported graph returns a tuple, always
        out = programs[k]()
        return list(out) if isinstance(out, tuple | list) else [out]

    with torch.inference_mode():
        y = model.b(model.a(x))
        (first,) = run(1)
        assert torch.allclose(first, model.a(x), atol=1e-6)
        # after c, the skip and c's output cross the cut (in graph order)
        skip, c_out = run(3)
        assert torch.allclose(c_out, model.c(y), atol=1e-6) and torch.allclose(skip, y)
        (last,) = run(4)
        assert torch.allclose(last, model(x), atol=1e-6)  # edge-only: the output
    with pytest.raises(ValueError, match="cut 0"):
        edge_programs(model, x, graph, [0], runtime=runtime)


def test_kernel_sample_macs_bound_the_draws() -> None:
    specs = measure.sample_kernels(300, seed=3)
    assert all(s.macs <= measure.MAX_SAMPLE_MACS for s in specs)
    assert all(s.c_in * s.size**2 <= measure.MAX_SAMPLE_ELEMENTS for s in specs)

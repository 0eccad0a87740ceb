"""What a front spans (dse.report.front_summary), and the demo study's front spanning the
design space: several cuts, one inside the network, early exits, two bandwidth regimes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse.report import FrontSummary, front_summary
from dse.search import load_spec, run_study
from dse.search.explorer import Explorer

DEMO = Path(__file__).resolve().parents[2] / "studies" / "tiny-esp32.toml"


def summary(
    cuts: tuple[int, ...],
    exit_points: int = 1,
    regimes: tuple[str, ...] = ("edge-only", "split", "server-only"),
) -> FrontSummary:
    spans = tuple((r, 1e5 * 10**i, 1e5 * 10 ** (i + 1)) for i, r in enumerate(regimes))
    return FrontSummary("s", len(cuts) + 1, cuts, 24, exit_points, 7, spans, len(cuts))


def test_a_front_spans_the_space_only_with_every_property() -> None:
    full = summary((0, 7, 24))
    assert full.mid_cuts == (7,) and full.spans_the_space
    assert not summary((0, 24, 24)).spans_the_space  # no cut inside the network
    assert not summary((0, 7)).spans_the_space  # two cuts
    assert summary((0, 7, 14)).spans_the_space  # three cuts inside or at one end
    assert not summary((0, 7, 24), exit_points=0).spans_the_space  # no exit used
    assert not summary((0, 7, 24), regimes=("edge-only",)).spans_the_space  # one regime
    lines = full.lines()
    assert lines[0] == (
        "front of s: 4 trial(s), 3 distinct point(s); cuts 0 (server-only), "
        "7 (inside the network), 24 (edge-only)"
    )
    assert "edge-only 0.1-1 Mbit/s; split 1-10 Mbit/s; server-only 10-100 Mbit/s" in lines[2]
    assert lines[-1].endswith(": yes")
    assert summary((0, 24)).lines()[-1].endswith(": NO")


@pytest.mark.slow
@pytest.mark.heavy
def test_the_demo_studys_front_spans_the_design_space(isolated: Path) -> None:
    """The shipped demo spec, run whole (3 networks trained, 300 trials scored)."""
    spec = load_spec(DEMO)
    explorer = Explorer(spec, progress=False)
    run_study(spec, progress=False, explorer=explorer)
    s = front_summary(spec.name, explorer=explorer)
    assert len(s.cuts) >= 3 and s.mid_cuts, s.lines()
    assert s.exit_points > 0, s.lines()
    assert len({r for r, _, _ in s.regimes}) >= 2, s.lines()
    assert s.spans_the_space

"""What a front spans (dse.report.front_summary), and the demo study's front spanning the
design space: several cuts, one inside the network, early exits, two bandwidth regimes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse.report import FrontSummary, front_summary
from dse.search import load_spec, recommend, run_study
from dse.search.explorer import Explorer

DEMO = Path(__file__).resolve().parents[2] / "studies" / "tiny-esp32.toml"


def summary(
    cuts: tuple[int, ...],
    exit_points: int = 1,
    regimes: tuple[str, ...] = ("edge-only", "split", "server-only"),
) -> FrontSummary:
    spans = tuple((r, 1e5 * 10**i, 1e5 * 10 ** (i + 1)) for i, r in enumerate(regimes))
    return FrontSummary(
        "s", len(cuts), cuts, 24, exit_points, 7, spans, len(cuts) + 1, "dense, cut 7", 2
    )


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
        "front of s: 3 distinct point(s) (4 configuration(s)); 2 more below the learned "
        "floor; cuts 0 (server-only), 7 (inside the network), 24 (edge-only)"
    )
    assert lines[2] == "recommended: dense, cut 7"
    assert "edge-only 0.1-1 Mbit/s; split 1-10 Mbit/s; server-only 10-100 Mbit/s" in lines[3]
    assert lines[-1].endswith(": yes")
    assert summary((0, 24)).lines()[-1].endswith(": NO")


@pytest.mark.slow
@pytest.mark.heavy
def test_the_demo_studys_front_holds_the_cut_exits_and_no_guess(study_folder: Path) -> None:
    """The shipped demo spec, run whole (3 networks trained, 300 trials scored): its front
    holds server-only and a cut inside the network, exits on the edge and two bandwidth
    regimes, and nothing under the learned floor: every exit of its three networks learns
    (with linear exit heads and constant exit weights its stage-0 exit sat at 22.8%, below
    chance, and was named apart from the front)."""
    spec = load_spec(DEMO)
    explorer = Explorer(spec, progress=False)
    study = run_study(spec, progress=False, explorer=explorer)
    decision = recommend(study, spec, explorer)
    s = front_summary(spec.name, explorer=explorer, decision=decision)
    assert 0 in s.cuts and s.mid_cuts, s.lines()
    assert s.exit_points > 0, s.lines()
    assert len({r for r, _, _ in s.regimes}) >= 2, s.lines()
    assert s.points == len(decision.front) and s.below_floor == len(decision.below_floor)
    floor = decision.floors[0].floor
    assert all(p.metrics["accuracy"] >= floor for p in decision.front)
    assert not decision.not_learned, decision.not_learned

"""Units and ratios, written in one place."""

from __future__ import annotations

from dse.report import fmt


def test_a_ratio_with_a_zero_denominator_is_infinity_not_infx():
    assert fmt.ratio(float("inf")) == "∞"
    assert fmt.ratio(float("nan")) == "-"
    assert fmt.ratio(None) == "-"
    assert fmt.ratio(2.5) == "2.5x"


def test_human_takes_each_metrics_quantity_from_the_vocabulary():
    assert fmt.human("latency_mean", 0.0123) == "12.3 ms"
    assert fmt.human("test_latency_p95", 2.0) == "2 s"
    assert fmt.human("accuracy.shape", 0.875) == "87.5%"
    assert fmt.human("bandwidth", 0.0) == "0 B"
    assert fmt.human("edge_energy", 2e-3) == "2 mJ"
    assert fmt.human("accuracy", None) == "-"
    assert fmt.human("realised_density", 0.25) == "0.25"


def test_mbps():
    assert fmt.mbps(2.5e6) == "2.5 Mbit/s"
    assert fmt.mbps(2e9) == "2 Gbit/s"

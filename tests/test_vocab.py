"""The one vocabulary: every metric a spec may name has a label, a quantity and a direction,
and derived names (a task's accuracy, the test split) are labelled from it."""

from __future__ import annotations

import pytest

from dse import vocab
from dse.search.spec import METRICS as SPEC_METRICS


def test_the_spec_accepts_exactly_the_vocabularys_metrics():
    assert list(SPEC_METRICS) == list(vocab.METRICS)
    assert all(SPEC_METRICS[n] == m.description for n, m in vocab.METRICS.items())


@pytest.mark.parametrize("name", list(vocab.METRICS))
def test_every_metric_has_a_quantity_and_a_direction(name):
    m = vocab.metric(name)
    assert m.quantity in {"%", "s", "B", "J"}
    assert m.better in {"max", "min"}
    assert m.direction == ("maximize" if m.better == "max" else "minimize")
    assert vocab.metric(f"test_{name}").quantity == m.quantity


def test_accuracy_is_better_higher_and_costs_lower():
    assert vocab.metric("accuracy").better == "max"
    assert vocab.metric("accuracy.object_hue").better == "max"
    for name in ("latency_mean", "bandwidth", "edge_energy", "edge_memory", "train_time"):
        assert vocab.metric(name).better == "min"


def test_axis_labels_name_the_split_for_accuracies():
    assert vocab.axis_label("accuracy") == "validation accuracy"
    assert vocab.axis_label("test_accuracy") == "test accuracy"
    assert vocab.axis_label("accuracy.shape") == "validation accuracy, shape"
    assert vocab.axis_label("test_accuracy.shape") == "test accuracy, shape"
    assert vocab.axis_label("accuracy_min") == "lowest task's validation accuracy"
    assert vocab.axis_label("test_accuracy_min") == "lowest task's test accuracy"
    assert vocab.axis_label("latency_mean") == "mean latency"
    assert vocab.axis_label("test_latency_mean") == "mean latency (test)"


def test_an_unknown_column_is_a_plain_number_labelled_by_its_name():
    m = vocab.metric("realised_density")
    assert (m.label, m.quantity) == ("realised_density", "")


@pytest.mark.parametrize(
    "method,density,label,name",
    [
        ("dense", 1.0, "dense", "dense"),
        ("predefined", 1.0, "dense", "dense"),
        ("predefined", 0.25, "predefined@0.25", "predefined sparsity, density 0.25"),
        ("channels", 0.5, "channels@0.5", "channels sparsity, density 0.5"),
    ],
)
def test_network_label_and_name(method, density, label, name):
    assert vocab.network_label(method, density) == label
    assert vocab.network_name(method, density) == name


@pytest.mark.parametrize(
    "name,quantity",
    [
        ("edge_s", "s"),
        ("transfer_s", "s"),
        ("latency_s", "s"),
        ("edge_energy_j", "J"),
        ("radio_energy", "J"),
        ("idle_energy", "J"),
        ("exit_rate", "%"),
        ("bytes", "B"),
        ("test_server_s", "s"),
    ],
)
def test_columns_derived_from_the_metrics_have_the_quantity_their_name_says(name, quantity):
    m = vocab.metric(name)
    assert m.quantity == quantity
    assert m.label == (f"{name[5:]} (test)" if name.startswith("test_") else name)


def test_a_task_named_like_a_derived_column_is_still_an_accuracy():
    assert vocab.metric("accuracy.hue_s").quantity == "%"
    assert vocab.metric("accuracy.hue_s").label == "accuracy, hue_s"


def test_words_for_running_text():
    assert vocab.metric("bandwidth").words == "bytes sent"
    assert vocab.metric("edge_energy").words == "edge energy"
    assert vocab.metric("latency_mean").words == "mean latency"  # its label
    assert vocab.metric("accuracy_min").words == "lowest task accuracy"
    assert vocab.metric("accuracy.shape").words == "accuracy of shape"
    assert vocab.metric("accuracy").words == "accuracy"
    assert vocab.metric("test_bandwidth").words == "bytes sent (test)"

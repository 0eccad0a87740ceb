"""The project's one vocabulary: what each metric is called, in which quantity it is shown,
which way is better and what it measures; and how a network is named.

Plots, the report, the commands and their JSON all take labels and units from here, so a
metric is called the same everywhere. Quantities: ``"%"`` (a fraction shown as a percent),
``"s"`` (seconds), ``"B"`` (bytes), ``"J"`` (joules), ``""`` (a plain number).
"""

from __future__ import annotations

from dataclasses import dataclass

TASK_PREFIX = "accuracy."  # accuracy.TASK: one task's accuracy
TEST_PREFIX = "test_"  # test_METRIC: the same metric on the test split


@dataclass(frozen=True)
class Metric:
    """One metric: its name in specs and tables, its short label, its quantity, the
    direction that is better and what it measures (with its unit)."""

    name: str
    label: str
    quantity: str
    better: str  # "max" or "min"
    description: str
    #: the metric in a few words, for running text ("bytes sent"); its label where empty
    short: str = ""

    @property
    def words(self) -> str:
        """The metric in a few words for running text: :attr:`short`, else its label."""
        return self.short or self.label

    @property
    def direction(self) -> str:
        """Optuna's word for :attr:`better`: ``maximize`` or ``minimize``."""
        return "maximize" if self.better == "max" else "minimize"


def _m(
    name: str, label: str, quantity: str, better: str, description: str, short: str = ""
) -> Metric:
    return Metric(name, label, quantity, better, description, short)


#: Columns derived from the metrics (a cost's parts, a share of samples): the quantity a
#: name's ending gives, and what it is. Longest ending first.
DERIVED: tuple[tuple[str, str, str], ...] = (
    ("_energy", "J", "a part of an energy, J"),
    ("_rate", "%", "a share of the samples"),
    ("_s", "s", "a time, s"),
    ("_j", "J", "an energy, J"),
)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        _m(
            "accuracy",
            "accuracy",
            "%",
            "max",
            "fraction of validation samples classified right (exit policy applied); "
            "with several tasks, the mean over the tasks",
        ),
        _m(
            "accuracy_min",
            "lowest task's accuracy",
            "%",
            "max",
            "the lowest task's accuracy (with one task, the accuracy)",
            "lowest task accuracy",
        ),
        _m(
            "latency_mean",
            "mean latency",
            "s",
            "min",
            "expected end-to-end latency per inference, s",
        ),
        _m(
            "latency_p95",
            "p95 latency",
            "s",
            "min",
            "95th percentile latency per inference, s",
        ),
        _m(
            "bandwidth",
            "data sent per inference",
            "B",
            "min",
            "expected bytes sent edge -> server per inference",
            "bytes sent",
        ),
        _m(
            "edge_energy",
            "edge energy per inference",
            "J",
            "min",
            "expected edge energy per inference: compute + radio + idle while waiting "
            "for the link and the server, J",
            "edge energy",
        ),
        _m(
            "edge_memory",
            "edge memory",
            "B",
            "min",
            "edge weights as stored + the largest layer expanded from compressed "
            "weights + peak live activations, bytes",
        ),
        _m(
            "storage",
            "stored network size",
            "B",
            "min",
            "bytes to store the deployed network (edge and server parts)",
            "storage",
        ),
        _m(
            "train_time",
            "training time",
            "s",
            "min",
            "seconds to train the network in the spec's [training] mode over its "
            "epochs (central: the training set's upload and the server's time)",
        ),
        _m(
            "train_edge_energy",
            "edge energy to train",
            "J",
            "min",
            "edge energy to train the network in that mode: compute, idle, radio, J",
        ),
        _m(
            "train_bytes",
            "bytes sent to train",
            "B",
            "min",
            "bytes over the link (both ways) to train the network in that mode",
        ),
        _m(
            "train_edge_memory",
            "edge memory to train",
            "B",
            "min",
            "edge memory while training: weights, gradients, AdamW moments "
            "and the activations kept for the backward, bytes",
        ),
    )
}
"""The metrics a spec may name as objectives or constraints (besides ``accuracy.TASK``)."""


def metric(name: str) -> Metric:
    """The :class:`Metric` for any metric name dse writes: one of :data:`METRICS`, a
    task's accuracy (``accuracy.TASK``), or either on the test split (``test_...``).

    Columns derived from them are known by their name: ``bytes`` (bytes), a name ending
    in ``_s`` (seconds), ``_j`` or ``_energy`` (joules) or ``_rate`` (a share, shown as a
    percent); each is labelled by its name. A name it does not know is a plain number
    labelled by its name, never an error: the columns of a user's table may hold anything.
    """
    test = name.startswith(TEST_PREFIX)
    base = name[len(TEST_PREFIX) :] if test else name
    if base in METRICS:
        m = METRICS[base]
    elif base.startswith(TASK_PREFIX):
        task = base[len(TASK_PREFIX) :]
        m = _m(
            base,
            f"accuracy, {task}",
            "%",
            "max",
            f"fraction of validation samples classified right for task {task} "
            "(exit policy applied)",
            f"accuracy of {task}",
        )
    elif base == "bytes":
        m = _m(base, base, "B", "min", "bytes")
    elif any(base.endswith(end) for end, _, _ in DERIVED):
        quantity, what = next((q, w) for end, q, w in DERIVED if base.endswith(end))
        m = _m(base, base, quantity, "min", f"{base}: {what}")
    else:
        return _m(name, name, "", "min", name)
    if not test:
        return m
    label = m.label
    if m.quantity == "%":
        label = f"test {label}" if label.startswith("accuracy") else f"{label} (test)"
    else:
        label = f"{label} (test)"
    description = m.description.replace("validation samples", "test samples")
    return _m(name, label, m.quantity, m.better, description, m.short and f"{m.short} (test)")


def axis_label(name: str) -> str:
    """A metric's label on a figure's axis, where the split is named: accuracies read
    'validation accuracy' / 'test accuracy'."""
    m = metric(name)
    if m.quantity == "%" and not name.startswith(TEST_PREFIX):
        if m.label.startswith("accuracy"):
            return f"validation {m.label}"
        if m.label == "lowest task's accuracy":
            return "lowest task's validation accuracy"
    if name == "test_accuracy_min":
        return "lowest task's test accuracy"
    return m.label


def network_label(method: str, density: float) -> str:
    """A network in short: ``dense``, or ``method@density`` (``predefined@0.25``)."""
    return "dense" if method == "dense" or density >= 1 else f"{method}@{density:g}"


def network_name(method: str, density: float) -> str:
    """A network in words: ``dense``, or ``predefined sparsity, density 0.25``."""
    if method == "dense" or density >= 1:
        return "dense"
    return f"{method} sparsity, density {density:g}"

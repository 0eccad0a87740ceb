"""Tests for dse.nets.loop: keeping the best epoch and stopping, divergence, evaluation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dse.nets import loop


def test_the_best_epoch_is_kept_and_patience_stops() -> None:
    net = nn.Linear(2, 2)
    best = loop.Best(patience=2)
    val = (torch.zeros(1),)
    stops = []
    for index, acc in enumerate([0.5, 0.7, 0.6, 0.7, 0.9]):
        with torch.no_grad():
            net.weight.fill_(float(index))
        stops.append(best.stop(acc, index, net, val))
    # epoch 2 (0.7) is best; 3 is worse, 4 only equal: two epochs without a better one
    assert stops == [False, False, False, True, False]
    assert (best.accuracy, best.epoch) == (0.9, 5)
    assert torch.equal(best.state["weight"], torch.full((2, 2), 4.0))


def test_a_tie_of_the_final_accuracy_goes_to_the_better_exits() -> None:
    net = nn.Linear(2, 2)
    best = loop.Best(patience=2)
    val = (torch.zeros(1),)
    scores = [(0.9, 0.5), (0.95, 0.4), (0.95, 0.6), (0.95, 0.6), (0.95, 0.55)]
    stops = [best.stop(s, i, net, val) for i, s in enumerate(scores)]
    # epoch 3 ties the final accuracy of epoch 2 with better exits: it is kept and patience
    # starts again from it; epochs 4 (equal) and 5 (worse exits) run it out
    assert stops == [False, False, False, False, True]
    assert best.epoch == 3 and best.accuracy == (0.95, 0.6)


def test_the_exits_mean_accuracy_over_exits_and_tasks() -> None:
    y = torch.tensor([0, 1])
    right, wrong = torch.tensor([[5.0, 0.0], [0.0, 5.0]]), torch.tensor([[0.0, 5.0], [5.0, 0.0]])
    one_task = (torch.stack([right, wrong, right]),)  # 2 exits (1.0, 0.0), final
    assert loop.exits_accuracy(one_task, (y,)) == 0.5
    two_tasks = (torch.stack([right, right]), torch.stack([wrong, right]))
    assert loop.exits_accuracy(two_tasks, (y, y)) == 0.5
    assert loop.exits_accuracy((torch.stack([right]),), (y,)) == 0.0  # no exit


def test_divergence_says_where() -> None:
    net = nn.Linear(2, 2)
    loop.check_diverged(net, 0, 5.0, 1.0)  # under 10 x max(first, 1): no error
    with pytest.raises(loop.Diverged, match="mean loss of epoch 3 is 20.5, over 10 x"):
        loop.check_diverged(net, 2, 20.5, 2.0)
    with torch.no_grad():
        net.bias[0] = math.nan
    with pytest.raises(loop.Diverged, match=r"non-finite weights in bias after epoch 1$"):
        loop.check_diverged(net, 0, 1.0, 1.0)


def test_logits_per_task_and_final_accuracy() -> None:
    class TwoTasks(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            # an exit per task, then the finals: task 0 answers x, task 1 answers -x
            return x, -x, x, -x

    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    val = loop.logits(TwoTasks(), x, tasks=2, batch=2)
    assert [v.shape for v in val] == [(2, 3, 2), (2, 3, 2)]  # [outputs, N, classes]
    labels = (torch.tensor([0, 1, 1]), torch.tensor([1, 0, 1]))
    assert loop.final_accuracy(val, labels) == pytest.approx([2 / 3, 1.0])

"""Tests for dse.costmodel.ops: the op table's rules, closed form."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from dse.costmodel import ops
from dse.costmodel.kinds import OP_KINDS


class Meta(NamedTuple):
    """What a rule reads of a tensor: its shape (as fx's TensorMetadata has it)."""

    shape: tuple[int, ...]


OUT = [Meta((2, 3, 4))]  # 24 elements produced
IN = [Meta((2, 3, 8))]  # 48 elements read, a contracted dimension of 8


def test_every_rule_names_a_known_kind() -> None:
    assert {rule.kind for rule in ops.FUNCTION_RULES.values()} <= set(OP_KINDS)
    assert ops.UNKNOWN.kind == "other"


def test_each_family_counts_as_fvcore_does() -> None:
    assert ops.elementwise("add").count(IN, OUT) == (24, 0)
    assert ops.reads_input("pool").count(IN, OUT) == (48, 0)
    assert ops.reads_input("pool").count([], OUT) == (24, 0)  # input unknown: the output
    assert ops.free("reshape").count(IN, OUT) == (0, 0)
    assert ops.contraction("matmul").count(IN, OUT) == (2 * 24 * 8, 24 * 8)  # 1 MAC = 2 FLOP
    assert ops.contraction("linear").count([], OUT) == (0, 0)


@pytest.mark.parametrize("name", sorted(ops.FUNCTION_RULES))
def test_no_rule_counts_a_node_without_a_known_output(name: str) -> None:
    assert ops.function_rule(name).count(IN, []) == (0, 0)


def test_table_entries_by_family() -> None:
    assert ops.function_rule("iadd").kind == "add" and ops.function_rule("truediv").kind == "mul"
    assert ops.function_rule("mean").count(IN, OUT) == (48, 0)
    assert ops.function_rule("bmm").count(IN, OUT) == (384, 192)
    assert ops.function_rule("getitem").count(IN, OUT) == (0, 0)
    assert ops.function_rule("erf") is ops.UNKNOWN  # unknown: 'other', 0 FLOPs, no error
    assert ops.UNKNOWN.count(IN, OUT) == (0, 0)

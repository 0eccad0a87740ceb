"""A study read back: plain, the one JSON normaliser."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dse.search.frames import plain


def test_plain_makes_numpy_tuples_sets_and_keys_storable_as_json_at_any_depth() -> None:
    value = {
        1: (np.float32(0.5), np.int64(3), np.bool_(True)),
        "rates": np.array([[0.25, 0.75]]),
        "cuts": {np.int64(7)},
        "nested": [{"x": frozenset({"a"})}],
    }
    out = plain(value)
    assert out == {
        "1": [0.5, 3, True],
        "rates": [[0.25, 0.75]],
        "cuts": [7],
        "nested": [{"x": ["a"]}],
    }
    assert type(out["1"][1]) is int and type(out["rates"][0][0]) is float
    assert json.loads(json.dumps(out)) == out


def test_plain_leaves_what_json_cannot_store_for_json_to_refuse() -> None:
    assert plain({"path": Path("x")}) == {"path": Path("x")}
    with pytest.raises(TypeError):
        json.dumps(plain({"path": Path("x")}))
    assert plain(None) is None and plain("text") == "text"

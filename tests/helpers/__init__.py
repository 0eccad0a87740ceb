"""What the tests share, written once: the spec builder, the study folder, the toy cost
model, the profile texts and the refusal checks. Tests import it as ``from helpers
import ...`` (pytest puts tests/ on the path, see pyproject.toml); the hypothesis
strategies of the hostile-input tests are in :mod:`helpers.fuzz`, the tiny networks in
:mod:`helpers.nets`.
"""

from __future__ import annotations

from helpers.costs import toy_device, toy_link, toy_scorer, toy_table
from helpers.folders import study_folder_at
from helpers.profiles import DEVICE, LINK, edited
from helpers.refusals import assert_cli_refused, assert_refused
from helpers.specs import (
    DROP,
    HUE,
    HUE_TASKS,
    OBJECTIVES,
    TINY,
    merged,
    only,
    spec,
    spec_dict,
    write_spec,
)
from helpers.toml import inline_text, toml_text

__all__ = [
    "DEVICE",
    "DROP",
    "HUE",
    "HUE_TASKS",
    "LINK",
    "OBJECTIVES",
    "TINY",
    "assert_cli_refused",
    "assert_refused",
    "edited",
    "inline_text",
    "merged",
    "only",
    "spec",
    "spec_dict",
    "study_folder_at",
    "toml_text",
    "toy_device",
    "toy_link",
    "toy_scorer",
    "toy_table",
    "write_spec",
]

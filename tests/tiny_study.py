"""The old names of the tiny study, for the test folders that still import them: new
tests use the spec builder of :mod:`helpers.specs` (``from helpers import spec, HUE``)."""

from __future__ import annotations

import tomllib

from helpers.specs import HUE, HUE_TASKS, only, spec
from helpers.toml import toml_text

__all__ = ["HUE_DATA", "HUE_TASKS", "OBJECTIVES", "spec_text"]

OBJECTIVES = 'accuracy = "maximize"\nlatency_mean = "minimize"\nedge_energy = "minimize"\n'

#: The tiny multi-task data (see helpers.specs.HUE) as a [data] table of TOML text.
HUE_DATA = toml_text({"data": HUE})


def spec_text(
    name: str,
    *,
    n_trials: int = 20,
    sampler: str = "nsga2",
    seed: int = 0,
    methods: str = '["predefined"]',
    constraints: str = "",
    epochs: int = 1,
    objectives: str = OBJECTIVES,
) -> str:
    """The tiny study of helpers.specs; ``methods``, ``constraints`` and ``objectives``
    given as TOML text, as before."""
    return spec(
        name,
        n_trials=n_trials,
        sampler=sampler,
        seed=seed,
        training={"epochs": epochs},
        space={"methods": tomllib.loads(f"methods = {methods}")["methods"]},
        objectives=only(tomllib.loads(objectives)),
        constraints=only(tomllib.loads(constraints)),
    )

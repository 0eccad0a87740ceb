"""The tiny study the study-level tests share: the MLP on 8x8 digits, one epoch,
densities 1 and 0.5. Keep its network settings fixed: every test module trains these
networks once, into the session's shared cache (see conftest)."""

from __future__ import annotations

OBJECTIVES = 'accuracy = "maximize"\nlatency_mean = "minimize"\nedge_energy = "minimize"\n'


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
    """A tiny study: the MLP on 8x8 digits, one epoch, densities 1 and 0.5."""
    return f"""\
name = "{name}"
n_trials = {n_trials}
sampler = "{sampler}"
seed = {seed}
[model]
name = "mlp"
[data]
name = "digits"
seed = 0
[training]
epochs = {epochs}
seed = 0
[space]
densities = [1.0, 0.5]
methods = {methods}
thresholds = {{ low = 0.5, high = 1.0, step = 0.25 }}
[objectives]
{objectives}
[constraints]
{constraints}
"""


#: The tiny multi-task data the multi-task tests share (two hues of shapes3d, 300 images
#: at 16x16): a [data] table to put in a spec's text.
HUE_TASKS = ("wall_hue", "floor_hue")
HUE_DATA = """\
[data]
name = "shapes3d"
n = 300
size = 16
seed = 0
tasks = ["wall_hue", "floor_hue"]
"""

"""Study specs: one TOML file says everything a study needs, checked before anything runs.

See ``studies/quickstart.toml`` for a commented example. Unknown keys, impossible values,
unknown models, data sets, profiles, metrics and samplers are rejected with
``FILE: FIELD: reason (fix)``.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dse import vocab
from dse.errors import InputError, echo
from dse.search import spec_network
from dse.search.grid_limit import check_grid_size

if TYPE_CHECKING:
    from dse.costmodel import DeviceProfile

METRICS: dict[str, str] = {name: m.description for name, m in vocab.METRICS.items()}
"""Metric name -> what it measures: the names a spec may use (:mod:`dse.vocab`)."""
TRAINING_MODES = ("central", "split", "hierarchical")
DIRECTIONS = ("minimize", "maximize")
SAMPLERS = ("nsga2", "nsga3", "tpe", "gp", "random", "grid")
POLICIES = ("all", "per_task")
TASK_METRIC = vocab.TASK_PREFIX  # accuracy.TASK: one task's accuracy
METHODS = ("predefined", "channels", "nm")
CRITERIA = ("max_prob", "entropy")

_TOP = {
    "name",
    "description",
    "n_trials",
    "sampler",
    "seed",
    "storage",
    "model",
    "data",
    "training",
    "deployment",
    "space",
    "objectives",
    "constraints",
}
_MODEL = {"name", "options", "head", "weights"}
_DATA = {
    "name",
    "root",
    "seed",
    "size",
    "n",
    "noise",
    "channels",
    "val_fraction",
    "test_fraction",
    "task",
    "tasks",
    "mean",
    "std",
}
_TRAINING = {
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "exit_weight",
    "head",
    "seed",
    "patience",
    "max_epochs",
    "task_weights",
    "task_weighting",
    "mode",
    "exit",
    "backbone",
    "device",
    "lr_schedule",
    "augment",
    "exit_schedule",
    "distill",
    "edge_lr",
    "select",
}
_DEPLOYMENT = {"edge", "server", "link", "tail_energy", "stl"}
_SPACE = {
    "densities",
    "methods",
    "exits",
    "thresholds",
    "criterion",
    "splits",
    "policies",
    "task_thresholds",
    "codecs",
}
_THRESH = {"low", "high", "step"}


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str  # "<=" or ">="
    bound: float
    #: Where a constraint the spec did not write comes from (e.g. "memory capacity of
    #: esp32-s3"); empty for the spec's own ``[constraints]``.
    origin: str = ""

    def violation(self, value: float) -> float:
        """Optuna's convention: <= 0 when satisfied."""
        return value - self.bound if self.op == "<=" else self.bound - value

    def __str__(self) -> str:
        text = f"{self.metric} {self.op} {self.bound:g}"
        return f"{text} ({self.origin})" if self.origin else text


def capacity_constraint(edge: DeviceProfile) -> Constraint:
    """``edge_memory <= the edge device's memory capacity`` (``[memory].capacity``, bytes):
    a configuration whose edge part does not fit the device is infeasible, whatever the
    spec's own constraints say."""
    return Constraint(
        "edge_memory",
        "<=",
        float(edge.mem_capacity_bytes),
        origin=f"memory capacity of {edge.name}",
    )


def with_capacity(
    constraints: tuple[Constraint, ...], edge: DeviceProfile
) -> tuple[Constraint, ...]:
    """``constraints`` and, after them, the edge's :func:`capacity_constraint`, unless one of
    them already bounds ``edge_memory`` at or below the capacity."""
    cap = capacity_constraint(edge)
    if any(
        c.metric == "edge_memory" and c.op == "<=" and c.bound <= cap.bound for c in constraints
    ):
        return constraints
    return (*constraints, cap)


@dataclass(frozen=True)
class StudySpec:
    """A parsed, checked study spec."""

    name: str
    path: Path | None
    text: str  # the TOML as written (stored with the study so it can be rebuilt)
    description: str
    model: str
    model_options: Mapping[str, Any]
    data: Mapping[str, Any]
    training: Mapping[str, Any]
    edge: str
    server: str
    link: str
    tail_energy: bool
    densities: tuple[float, ...]
    methods: tuple[str, ...]
    exits: tuple[str, ...] | str | None  # None: every site the model marks; or "auto"
    thresholds: tuple[float, ...]
    criterion: str
    splits: str  # "all" | "clean"
    objectives: Mapping[str, str]  # metric -> direction, in order
    constraints: tuple[Constraint, ...]
    sampler: str
    seed: int
    n_trials: int
    storage: str
    tasks: tuple[str, ...] = ()  # [data] tasks: several tasks on one backbone (empty: one)
    head: Mapping[str, Any] | str | None = None  # [model] head (see dse.nets.HeadConfig)
    policies: tuple[str, ...] = ("all",)  # exit policies searched (several tasks)
    task_thresholds: bool = False  # one threshold per task, each a knob
    stl: str = "sequential"  # single-task networks side by side: their edge parts' schedule
    codecs: tuple[str, ...] = ()  # codecs at the cut (canonical names; empty: float32 only)
    #: [model] weights: the user's trained state_dict (a path, beside the spec when it is
    #: there; None: the model trains from random weights)
    weights: str | None = None

    @property
    def directions(self) -> list[str]:
        return list(self.objectives.values())


class _Check:
    def __init__(self, where: str):
        self.where = where

    def fail(self, fld: str, reason: str, fix: str | None = None) -> InputError:
        return InputError(self.where, fld, reason, fix)

    def table(self, data: Any, fld: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(fld, f"must be a table, got {type(data).__name__}")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise self.fail(
                f"{fld}.{unknown[0]}" if fld else unknown[0],
                "unknown key",
                f"allowed: {', '.join(sorted(allowed))}",
            )
        return data

    def number(
        self,
        value: Any,
        fld: str,
        *,
        lo: float | None = None,
        hi: float | None = None,
        integer: bool = False,
    ) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or (integer and not isinstance(value, int)) or not math.isfinite(value):
            raise self.fail(
                fld, f"must be {'an integer' if integer else 'a number'}, got {value!r}"
            )
        if lo is not None and value < lo or hi is not None and value > hi:
            if hi is None:
                raise self.fail(fld, f"{value} is outside [{lo:g}, inf)", f"use a value >= {lo:g}")
            if lo is None:
                raise self.fail(fld, f"{value} is outside (-inf, {hi:g}]", f"use a value <= {hi:g}")
            raise self.fail(fld, f"{value} is outside [{lo}, {hi}]")
        return value

    def string(self, value: Any, fld: str, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(value, str):
            raise self.fail(fld, f"must be a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(fld, f"unknown value {value!r}", f"use one of {', '.join(choices)}")
        return value


#: A study name: it names files under studies/ and reports/ and a folder of workers, so it
#: is a plain file name: 1 to 64 letters, digits, '.', '_' or '-', first a letter or a
#: digit, never '..' (no path separator, no escape from those folders).
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_study_name(name: Any, *, where: str, field: str = "name") -> str:
    """``name`` if it is a safe study name (:data:`NAME_RE`), else the one-line error."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise InputError(
            where,
            field,
            f"{shown} is not a plain name",
            "a study's name is 1 to 64 letters, digits, '.', '_' or '-', starting "
            "with a letter or a digit, without '..'",
        )
    return name


def load_spec(path: str | Path) -> StudySpec:
    """Read and check a study spec file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            p,
            "<file>",
            f"cannot read: {exc.strerror}",
            "give the path of a study .toml (see studies/)",
        ) from None
    except UnicodeDecodeError as exc:
        raise InputError(
            p,
            "<file>",
            f"not a text file (byte {exc.start} is not UTF-8)",
            "give the path of a study .toml (see studies/)",
        ) from None
    return parse_spec(text, where=str(p), path=p)


def check_data_table(table: Any, *, where: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A ``[data]`` table checked (known keys, a known data set, the task list): the
    table without its ``tasks`` list, and that list (empty: one task). Read by
    :func:`parse_spec` and by whatever else takes a ``[data]`` table (dse run-split)."""
    c = _Check(where)
    data = dict(c.table(table, "data", _DATA))
    from dse.nets import list_data

    c.string(data.get("name"), "data.name", tuple(list_data()))
    tasks: tuple[str, ...] = ()
    if "tasks" in data:
        raw_tasks = data.pop("tasks")
        if (
            not isinstance(raw_tasks, list)
            or not raw_tasks
            or not all(isinstance(t, str) for t in raw_tasks)
        ):
            raise c.fail(
                "data.tasks",
                f"must be a non-empty list of task names, got {raw_tasks!r}",
                'e.g. tasks = ["object_shape", "object_scale"]',
            )
        if "task" in data:
            raise c.fail("data.tasks", "give task (one) or tasks (several), not both")
        if len(set(raw_tasks)) != len(raw_tasks):
            raise c.fail("data.tasks", "names a task twice", "name each task once")
        tasks = tuple(raw_tasks)
    spec_network.normalisation(c, data)
    return data, tasks


def parse_spec(text: str, *, where: str = "<spec>", path: Path | None = None) -> StudySpec:
    """Check a spec's text; every problem is an InputError naming the field.

    The tables are checked in the order they are read here (the first problem found is
    the one reported): the name, [model], [data], [training], [deployment], [space],
    [objectives], [constraints], then the sampler and the run's settings.
    """
    c = _Check(where)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise c.fail("<toml>", f"not valid TOML: {exc}") from None
    top = c.table(raw, "", _TOP)
    for req in ("name", "model", "data", "objectives"):
        if req not in top:
            raise c.fail(req, "missing", "see studies/quickstart.toml")
    name = check_study_name(top["name"], where=where)
    model, head, options, weights = _model(c, top["model"], path)
    data, tasks = check_data_table(top["data"], where=where)
    if head is not None:
        from dse.nets import HeadConfig

        try:
            HeadConfig.parse(head).resolved(len(tasks) or 1)
        except InputError as exc:
            raise c.fail("model.head.kind", exc.reason, exc.fix) from None
    training = _training(c, top.get("training", {}), tasks)
    spec_network.backbone(c, training, weights)
    _check_recipe(c, training)  # last: the whole table as a training configuration
    edge, server, link, edge_profile, tail, stl = _deployment(c, top.get("deployment", {}), path)

    space = c.table(top.get("space", {}), "space", _SPACE)
    dens, meths = _densities_and_methods(c, space)
    spec_network.sparsity_of_trained(c, weights, dens, meths)
    exits = _exits(c, space, training)
    thresholds = _thresholds(c, space)
    criterion = c.string(space.get("criterion", "max_prob"), "space.criterion", CRITERIA)
    splits = c.string(space.get("splits", "all"), "space.splits", ("all", "clean"))
    policies = _policies(c, space)
    task_thresholds = space.get("task_thresholds", False)
    if not isinstance(task_thresholds, bool):
        raise c.fail("space.task_thresholds", "must be true or false")
    codecs = _codecs(c, space, where)

    metrics = set(METRICS) | {f"{TASK_METRIC}{t}" for t in tasks}
    objectives_t = c.table(_flat(c, top["objectives"], "objectives", tasks), "objectives", metrics)
    if not objectives_t:
        raise c.fail("objectives", "no objective", f"name some of {', '.join(METRICS)}")
    objectives = {m: c.string(d, f"objectives.{m}", DIRECTIONS) for m, d in objectives_t.items()}

    constraints = []
    for metric, rule in c.table(
        _flat(c, top.get("constraints", {}), "constraints", tasks), "constraints", metrics
    ).items():
        constraints.append(_constraint(c, metric, rule))
    # The edge device's memory is a hard limit: a part that does not fit is infeasible.
    constraints_t = with_capacity(tuple(constraints), edge_profile)

    sampler = c.string(top.get("sampler", "nsga2"), "sampler", SAMPLERS)
    if sampler == "grid":  # the knobs known before the model is built: a lower bound
        per_task = len(thresholds) ** (len(tasks) if task_thresholds and len(tasks) > 1 else 1)
        grid = len(dens) * len(meths) * len(policies) * per_task * max(1, len(codecs))
        check_grid_size(grid, where=where, field="sampler", at_least=True)
    seed = int(c.number(top.get("seed", 0), "seed", lo=0, integer=True))
    n_trials = int(c.number(top.get("n_trials", 200), "n_trials", lo=1, integer=True))
    storage = c.string(top.get("storage", "journal"), "storage")
    return StudySpec(
        name=name,
        path=path,
        text=text,
        description=str(top.get("description", "")),
        model=model,
        model_options=options,
        data=data,
        training=training,
        edge=_relative(edge, path),
        server=_relative(server, path),
        link=_relative(link, path),
        tail_energy=tail,
        densities=dens,
        methods=meths,
        exits=exits,
        thresholds=thresholds,
        criterion=criterion,
        splits=splits,
        objectives=objectives,
        constraints=constraints_t,
        sampler=sampler,
        seed=seed,
        n_trials=n_trials,
        storage=storage,
        tasks=tasks,
        head=head,
        policies=policies,
        task_thresholds=task_thresholds,
        stl=stl,
        codecs=codecs,
        weights=weights,
    )


def _model(
    c: _Check, model_t: Any, path: Path | None
) -> tuple[str, Any, dict[str, Any], str | None]:
    """The ``[model]`` table (or a bare model name): the model's name, its head (None:
    the model's own), its options and its trained weights' file (None: none)."""
    if isinstance(model_t, str):
        model_t = {"name": model_t}
    model_t = c.table(model_t, "model", _MODEL)
    model = c.string(model_t.get("name"), "model.name")
    head = model_t.get("head")
    if head is not None:
        from dse.nets import HeadConfig

        try:
            HeadConfig.parse(head)
        except (InputError, TypeError) as exc:
            reason = exc.reason if isinstance(exc, InputError) else str(exc)
            raise c.fail(
                "model.head",
                reason,
                'e.g. head = { kind = "mlp", hidden = 128, layers = 2, dropout = 0.2 }',
            ) from None
    options = c.table(model_t.get("options", {}), "model.options", set(model_t.get("options", {})))
    _check_model(c, model, options)
    return model, head, options, spec_network.weights_file(c, model_t, path)


def _training(c: _Check, table: Any, tasks: tuple[str, ...]) -> dict[str, Any]:
    """The ``[training]`` table checked, its task weights as a list in task order."""
    training = dict(c.table(table, "training", _TRAINING))
    if training.get("epochs") == "auto":
        pass  # until the validation accuracy stops improving (see TrainConfig)
    elif isinstance(training.get("epochs"), str):
        raise c.fail(
            "training.epochs",
            f"unknown value {training['epochs']!r}",
            'use an integer >= 1 or "auto"',
        )
    else:
        for k in ("patience", "max_epochs"):
            if k in training:
                raise c.fail(
                    f"training.{k}",
                    'only used with epochs = "auto"',
                    'set epochs = "auto", or remove it',
                )
    for k in ("epochs", "batch_size", "seed", "patience", "max_epochs"):
        if k in training and training[k] != "auto":
            c.number(training[k], f"training.{k}", lo=0 if k == "seed" else 1, integer=True)
    for k in ("lr", "weight_decay", "exit_weight"):
        if k in training:
            c.number(training[k], f"training.{k}", lo=0)
    if "task_weighting" in training:
        c.string(training["task_weighting"], "training.task_weighting", ("fixed", "uncertainty"))
    mode = c.string(training.get("mode", "central"), "training.mode", TRAINING_MODES)
    if "exit" in training:
        c.string(training["exit"], "training.exit")
        if mode != "hierarchical":
            raise c.fail(
                "training.exit",
                "only hierarchical training has an exit that trains the edge part",
                'set mode = "hierarchical", or remove exit',
            )
    if mode != "central" and training.get("task_weighting") == "uncertainty":
        raise c.fail(
            "training.task_weighting",
            f"learned task weights are shared by edge "
            f"and server, which {mode} training keeps apart",
            'use fixed task_weights, or mode = "central"',
        )
    if "task_weights" in training:
        training["task_weights"] = _task_weights(c, training, tasks)
    return training


def _task_weights(c: _Check, training: Mapping[str, Any], tasks: tuple[str, ...]) -> list[float]:
    """``[training] task_weights`` (a list in task order, or a table by task name) as a
    list of one weight per task."""
    w = training["task_weights"]
    if isinstance(w, dict):  # by task name
        unknown = sorted(set(w) - set(tasks))
        if unknown or set(w) != set(tasks):
            named = ", ".join(unknown) or "not every task"
            raise c.fail(
                "training.task_weights",
                f"names {named}; the tasks are {', '.join(tasks) or 'one'}",
                "give a weight for each task of [data] tasks",
            )
        w = [w[t] for t in tasks]
    if not isinstance(w, list) or len(w) != max(1, len(tasks)):
        raise c.fail(
            "training.task_weights",
            f"needs one weight per task ({len(tasks) or 1}), got {w!r}",
            "a list in the order of [data] tasks, or a table task = weight",
        )
    weights = [c.number(x, "training.task_weights", lo=0) for x in w]
    if training.get("task_weighting") == "uncertainty":
        raise c.fail(
            "training.task_weights",
            'fixed weights and task_weighting = "uncertainty" exclude each other',
            "remove one of them",
        )
    return weights


def _deployment(
    c: _Check, table: Any, path: Path | None
) -> tuple[str, str, str, DeviceProfile, bool, str]:
    """The ``[deployment]`` table: edge, server and link as written, the edge's profile
    (read and checked with the others), the tail energy switch and the single-task
    networks' schedule."""
    dep = c.table(table, "deployment", _DEPLOYMENT)
    from dse.costmodel import check_runs_float, load_device, load_link

    edge = c.string(dep.get("edge", "raspberry-pi-4"), "deployment.edge")
    server = c.string(dep.get("server", "a100"), "deployment.server")
    link = c.string(dep.get("link", "lte"), "deployment.link")
    loaded: dict[str, Any] = {}  # the profiles, by deployment field
    for fld, name_, loader in (
        ("edge", edge, load_device),
        ("server", server, load_device),
        ("link", link, load_link),
    ):
        try:
            loaded[fld] = loader(_relative(name_, path))
            if fld != "link":
                check_runs_float(loaded[fld], fld)
        except InputError as exc:
            raise c.fail(f"deployment.{fld}", str(exc)) from None
    tail = dep.get("tail_energy", True)
    if not isinstance(tail, bool):
        raise c.fail("deployment.tail_energy", "must be true or false")
    stl = c.string(dep.get("stl", "sequential"), "deployment.stl", ("sequential", "parallel"))
    return edge, server, link, loaded["edge"], tail, stl


def _densities_and_methods(
    c: _Check, space: Mapping[str, Any]
) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """``[space] densities`` (distinct, densest first) and ``methods``."""
    densities = space.get("densities", [1.0])
    if not isinstance(densities, list) or not densities:
        raise c.fail("space.densities", "must be a non-empty list of numbers in (0, 1]")
    dens = tuple(
        sorted({float(c.number(d, "space.densities", lo=0, hi=1)) for d in densities}, reverse=True)
    )
    if 0.0 in dens:
        raise c.fail("space.densities", "a density of 0 keeps no weight", "use values in (0, 1]")
    methods = space.get("methods", ["predefined"])
    if not isinstance(methods, list) or not methods:
        raise c.fail("space.methods", "must be a non-empty list", f"use {METHODS}")
    meths = tuple(c.string(m, "space.methods", METHODS) for m in methods)
    if "nm" in meths:
        from dse.nets import sparsity

        bad = [d for d in dens if d < 1 and sparsity.nm_of(d) is None]
        if bad:
            raise c.fail(
                "space.densities",
                f"{bad[0]:g} is no N:M density (method nm)",
                "use N/M with M = 4, 8 or 16: 0.75, 0.5 (2:4), 0.25, 0.125, 0.0625",
            )
    return dens, meths


def _exits(
    c: _Check, space: Mapping[str, Any], training: Mapping[str, Any]
) -> tuple[str, ...] | None:
    """``[space] exits``: None for every site the model marks, else the sites named."""
    exits_v = space.get("exits", "all")
    exits: tuple[str, ...] | str | None
    if exits_v == "all":
        exits = None
    elif exits_v == "none":
        exits = ()
    elif exits_v == "auto":
        exits = "auto"
    elif isinstance(exits_v, list) and all(isinstance(e, str) for e in exits_v):
        exits = tuple(exits_v)
    else:
        raise c.fail(
            "space.exits",
            f"bad value {exits_v!r}",
            'use "all", "none", "auto" (one after each drop of the spatial size) or a list '
            "of module paths",
        )
    if (
        isinstance(exits, tuple)
        and training.get("exit") is not None
        and training["exit"] not in exits
    ):
        raise c.fail(
            "training.exit",
            f"{training['exit']!r} is not one of the exits the "
            f"networks carry ({', '.join(exits) or 'none'})",
            "name one of [space] exits, or add it there",
        )
    return exits


def _thresholds(c: _Check, space: Mapping[str, Any]) -> tuple[float, ...]:
    """``[space.thresholds]``: every threshold from low to high in steps."""
    thr = c.table(space.get("thresholds", {}), "space.thresholds", _THRESH)
    lo = c.number(thr.get("low", 0.5), "space.thresholds.low", lo=0, hi=1)
    hi = c.number(thr.get("high", 1.0), "space.thresholds.high", lo=0, hi=1)
    step = c.number(thr.get("step", 0.05), "space.thresholds.step", lo=1e-6, hi=1)
    if hi < lo:
        raise c.fail("space.thresholds", f"high {hi} < low {lo}")
    count = int(round((hi - lo) / step))
    if abs(lo + count * step - hi) > 1e-9:
        raise c.fail("space.thresholds.step", f"({hi} - {lo}) is not a multiple of {step}")
    return tuple(round(lo + i * step, 10) for i in range(count + 1))


def _policies(c: _Check, space: Mapping[str, Any]) -> tuple[str, ...]:
    """``[space] policies`` (one name or a list), each once, in the order written."""
    raw_policies = space.get("policies", ["all"])
    if isinstance(raw_policies, str):
        raw_policies = [raw_policies]
    if not isinstance(raw_policies, list) or not raw_policies:
        raise c.fail(
            "space.policies", f"bad value {raw_policies!r}", f"a list of {', '.join(POLICIES)}"
        )
    return tuple(dict.fromkeys(c.string(p_, "space.policies", POLICIES) for p_ in raw_policies))


def _codecs(c: _Check, space: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """``[space] codecs`` by their canonical names, each once (empty: float32 only)."""
    codecs: tuple[str, ...] = ()
    if "codecs" in space:
        from dse.nets import Codec

        raw_codecs = space["codecs"]
        if (
            not isinstance(raw_codecs, list)
            or not raw_codecs
            or not all(isinstance(x, str) for x in raw_codecs)
        ):
            raise c.fail(
                "space.codecs",
                f"must be a non-empty list of codec names, got {raw_codecs!r}",
                'e.g. codecs = ["fp32", "fp16", "int8+zstd"]',
            )
        codecs = tuple(
            dict.fromkeys(
                Codec.parse(x, where=where, field="space.codecs").name for x in raw_codecs
            )
        )
        if "fp32" not in codecs:
            raise c.fail(
                "space.codecs",
                "must include fp32: what the baselines (and a split "
                "without a codec) send, the reference every codec is held against",
                'add "fp32" to the list',
            )
    return codecs


def _check_recipe(c: _Check, training: dict[str, Any]) -> None:
    """The exit head and the recipe fields of ``[training]`` (schedules, augmentation,
    distillation, the edge's learning rate), and the whole table as a training
    configuration: each problem one line naming its ``training.`` field."""
    from dse.nets import TrainConfig

    for k in ("head", "lr_schedule", "exit_schedule", "select"):
        if k in training:
            c.string(training[k], f"training.{k}")
    if "augment" in training:
        a = training["augment"]
        if isinstance(a, str):
            a = [a]
        if not isinstance(a, list) or not all(isinstance(x, str) for x in a):
            raise c.fail(
                "training.augment",
                f"must be a list of augmentations, got {training['augment']!r}",
                'e.g. augment = ["flip", "crop"]',
            )
        training["augment"] = a
    if "distill" in training:
        c.number(training["distill"], "training.distill", lo=0)
    if "edge_lr" in training:
        c.number(training["edge_lr"], "training.edge_lr", lo=0)
    known = {f.name for f in fields(TrainConfig)}
    try:
        TrainConfig(**{k: v for k, v in training.items() if k in known})
    except InputError as exc:
        raise c.fail(f"training.{exc.field}", exc.reason, exc.fix) from None


def _flat(c: _Check, table: Any, fld: str, tasks: tuple[str, ...]) -> Any:
    """``accuracy.TASK = ...`` (a dotted key: a table in TOML) as the key "accuracy.TASK";
    an unknown task is named with the spec's tasks."""
    if not isinstance(table, dict):
        return table
    out = {}
    for key, value in table.items():
        if key == "accuracy" and isinstance(value, dict):
            for task, v in value.items():
                if task not in tasks:
                    raise c.fail(
                        f"{fld}.accuracy.{task}",
                        f"unknown task {task!r}",
                        f"the spec's [data] tasks are {', '.join(tasks)}"
                        if tasks
                        else "per-task accuracy needs [data] tasks = [...]",
                    )
                out[f"{TASK_METRIC}{task}"] = v
        else:
            out[key] = value
    return out


def _relative(name: str, spec_path: Path | None) -> str:
    """A profile given as a relative .toml path is read beside the spec."""
    if spec_path is not None and name.endswith(".toml") and not Path(name).is_absolute():
        candidate = spec_path.parent / name
        if candidate.exists():
            return str(candidate)
    return name


def _check_model(c: _Check, model: str, options: Mapping[str, Any]) -> None:
    from dse.nets import list_models

    if model in list_models() or ":" in model:
        return
    try:
        from dse.nets import load_model

        load_model(model, **options)
    except InputError as exc:
        raise c.fail("model.name", f"{echo(model)}: {exc.reason}", exc.fix) from None


def _constraint(c: _Check, metric: str, rule: Any) -> Constraint:
    fld = f"constraints.{metric}"
    if not isinstance(rule, str):
        raise c.fail(fld, f'must be a string like "<= 4e6", got {rule!r}')
    m = re.fullmatch(r"\s*(<=|>=)\s*([-+0-9.eE]+)\s*", rule)
    if not m:
        raise c.fail(fld, f"cannot read {rule!r}", 'write "<= NUMBER" or ">= NUMBER"')
    try:
        bound = float(m.group(2))
    except ValueError:
        raise c.fail(
            fld, f"cannot read the number in {rule!r}", 'write "<= NUMBER" or ">= NUMBER"'
        ) from None
    if m.group(1) == "<=" and bound < 0:  # every metric, accuracy too, is >= 0
        raise c.fail(
            fld, f"{metric} is never negative, so {rule!r} cannot hold", "use a bound >= 0"
        )
    if metric.startswith("accuracy") and m.group(1) == ">=" and bound > 1:
        raise c.fail(
            fld,
            f"accuracy is at most 1, so {rule!r} cannot hold",
            "give accuracy as a fraction, e.g. >= 0.9",
        )
    return Constraint(metric, m.group(1), bound)

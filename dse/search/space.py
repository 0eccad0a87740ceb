"""Candidates: one point of the joint space, drawn from an Optuna trial or enumerated.

The four knobs: sparsity (method, density) changes the weights; split point, exit
subset and threshold only change how the cached logits and the cost table are read.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from dse.search.spec import StudySpec
from dse.vocab import network_label

#: The codec of a candidate whose cut sends nothing (a spec with codecs lists it).
SILENT_CODEC = "fp32"


def exit_label(exit_names: Sequence[str], j: int) -> str:
    """Exit ``j`` by its site name, or its index where the names do not reach it."""
    return exit_names[j] if 0 <= j < len(exit_names) else str(j)


@dataclass(frozen=True)
class Candidate:
    """One configuration of the four knobs."""

    method: str  # "predefined" | "channels" | "nm" ("dense" when density == 1)
    density: float
    split: int  # cut index: backbone [:split] runs on the edge
    exits: tuple[int, ...]  # indices of the exit heads in use, ascending
    threshold: float  # a sample leaves at the first used exit with confidence >= threshold
    criterion: str = "max_prob"
    #: several tasks: "all" (a sample leaves where every task is confident) or "per_task"
    #: (each task answered at its first confident exit; see dse.search.evaluate)
    policy: str = "all"
    #: several tasks: one threshold per task, in task order (empty: ``threshold`` for all)
    task_thresholds: tuple[float, ...] = ()
    #: the codec of the tensors at the cut (dse.nets.Codec name); None: float32 as the
    #: layer graph counts it, what a spec without ``codecs`` sends
    codec: str | None = None

    def thresholds(self, tasks: int) -> tuple[float, ...]:
        """The threshold of each of ``tasks`` tasks."""
        if self.task_thresholds:
            if len(self.task_thresholds) != tasks:
                raise ValueError(f"{len(self.task_thresholds)} thresholds for {tasks} tasks")
            return self.task_thresholds
        return (self.threshold,) * tasks

    @property
    def network(self) -> tuple[str, float]:
        """What training depends on: (method, density); every density-1 net is one."""
        return ("dense", 1.0) if self.density >= 1.0 else (self.method, self.density)

    @classmethod
    def from_row(cls, row: Any) -> Candidate:
        """The candidate of a trials or grid frame row (``knob_*`` columns; lists may be
        tuples or JSON text, and the several-task knobs may be missing)."""

        def seq(v: Any) -> tuple[Any, ...]:
            if isinstance(v, str):
                v = json.loads(v)
            return tuple(v) if isinstance(v, list | tuple) else ()

        policy = row.get("knob_policy")
        codec = row.get("knob_codec")
        return cls(
            str(row["knob_method"]),
            float(row["knob_density"]),
            int(row["knob_split"]),
            tuple(int(i) for i in seq(row["knob_exits"])),
            float(row["knob_threshold"]),
            str(row["knob_criterion"]),
            policy if isinstance(policy, str) else "all",
            tuple(float(x) for x in seq(row.get("knob_task_thresholds"))),
            codec if isinstance(codec, str) else None,
        )

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "method": self.network[0],
            "density": self.density,
            "split": self.split,
            "exits": list(self.exits),
            "threshold": self.threshold,
            "criterion": self.criterion,
        }
        if self.policy != "all" or self.task_thresholds:  # several tasks only
            d.update(policy=self.policy, task_thresholds=list(self.task_thresholds))
        if self.codec is not None:  # a spec with codecs only
            d["codec"] = self.codec
        return d

    def exits_text(self, exit_names: Sequence[str], tasks: Sequence[str] = ()) -> str:
        """The exits in use and their threshold (``stages.0+stages.1 @ 0.8``), each task's
        with several tasks and the policy; ``no exit`` (and no threshold) without one."""
        if not self.exits:
            return "no exit"
        used = "+".join(exit_label(exit_names, j) for j in self.exits)
        if len(tasks) > 1:
            per = ", ".join(
                f"{t} {x:g}" for t, x in zip(tasks, self.thresholds(len(tasks)), strict=True)
            )
            return f"{used} @ {per}; policy {self.policy}"
        return f"{used} @ {self.threshold:g}"

    def label(
        self, exit_names: Sequence[str], tasks: Sequence[str] = (), *, sends: bool = True
    ) -> str:
        """The configuration in one line, the same in every view:
        ``predefined@0.25, cut 7, exits stages.0 @ 0.8, codec int8``. Knobs that change
        nothing are left out: no threshold without an exit, no codec when the cut sends
        nothing (``sends`` False) or the spec has no codec knob."""
        parts = [network_label(*self.network), f"cut {self.split}"]
        exits = self.exits_text(exit_names, tasks)
        parts.append(exits if not self.exits else f"exits {exits}")
        if self.codec is not None and sends:
            parts.append(f"codec {self.codec}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Space:
    """The discretised space of one study for one model (its cuts and exits known)."""

    densities: tuple[float, ...]
    methods: tuple[str, ...]
    cuts: tuple[int, ...]  # allowed cut indices
    n_exits: int  # exit heads the trained networks carry
    allowed_exits: tuple[int, ...]  # which of them the search may use
    thresholds: tuple[float, ...]
    criterion: str
    policies: tuple[str, ...] = ("all",)  # exit policies (several tasks)
    #: several tasks with a threshold each: their names (empty: one threshold for all)
    threshold_tasks: tuple[str, ...] = ()
    codecs: tuple[str, ...] = ()  # codecs at the cut (empty: float32, no codec knob)
    silent_cuts: tuple[int, ...] = ()  # cuts that send nothing (the codec decides nothing)

    @classmethod
    def from_spec(
        cls,
        spec: StudySpec,
        *,
        cuts: Sequence[int],
        n_exits: int,
        allowed_exits: Sequence[int] | None = None,
        silent_cuts: Sequence[int] = (),
    ) -> Space:
        tasks = spec.tasks
        return cls(
            densities=spec.densities,
            methods=spec.methods,
            cuts=tuple(cuts),
            n_exits=n_exits,
            allowed_exits=tuple(range(n_exits) if allowed_exits is None else allowed_exits),
            thresholds=spec.thresholds,
            criterion=spec.criterion,
            policies=spec.policies if len(tasks) > 1 else ("all",),
            threshold_tasks=tasks if spec.task_thresholds and len(tasks) > 1 else (),
            codecs=spec.codecs,
            silent_cuts=tuple(silent_cuts),
        )

    def networks(self) -> list[tuple[str, float]]:
        """Distinct (method, density) pairs: one training each."""
        seen: dict[tuple[str, float], None] = {}
        for d in self.densities:
            for m in self.methods:
                seen.setdefault(("dense", 1.0) if d >= 1.0 else (m, d), None)
        return list(seen)

    def suggest(self, trial: optuna.Trial) -> Candidate:
        """Draw a candidate. Knobs that would change nothing are not drawn: a threshold (and
        an exit policy) only when an exit is used, a codec only at a cut that sends; the
        candidate then holds their canonical values, as :meth:`enumerate` does, so one
        configuration is one point of the front."""
        density = trial.suggest_categorical("density", list(self.densities))
        method = (
            trial.suggest_categorical("method", list(self.methods))
            if len(self.methods) > 1
            else self.methods[0]
        )
        pos = trial.suggest_int("split", 0, len(self.cuts) - 1)
        used = tuple(
            i for i in self.allowed_exits if trial.suggest_categorical(f"exit_{i}", [False, True])
        )
        policy = self.policies[0]
        names = [f"threshold.{t}" for t in self.threshold_tasks] or ["threshold"]
        drawn = [self.thresholds[0]] * len(names)
        if used:
            if len(self.policies) > 1:
                policy = trial.suggest_categorical("policy", list(self.policies))
            drawn = [self._threshold(trial, name) for name in names]
        per_task = tuple(drawn) if self.threshold_tasks else ()
        codec = None
        if self.codecs:
            if self.cuts[pos] in self.silent_cuts:  # nothing is sent: the codec decides nothing
                codec = SILENT_CODEC
            elif len(self.codecs) > 1:
                codec = trial.suggest_categorical("codec", list(self.codecs))
            else:
                codec = self.codecs[0]
        return Candidate(
            method,
            float(density),
            self.cuts[pos],
            used,
            per_task[0] if per_task else drawn[0],
            self.criterion,
            policy,
            per_task,
            codec,
        )

    def _threshold(self, trial: optuna.Trial, name: str) -> float:
        lo, hi = self.thresholds[0], self.thresholds[-1]
        if len(self.thresholds) == 1:
            return lo
        step = round(self.thresholds[1] - self.thresholds[0], 10)
        return round(trial.suggest_float(name, lo, hi, step=step), 10)

    def grid_params(self) -> dict[str, list[Any]]:
        """The parameter grid for Optuna's GridSampler (same names as ``suggest``)."""
        grid: dict[str, list[Any]] = {"density": list(self.densities)}
        if len(self.methods) > 1:
            grid["method"] = list(self.methods)
        grid["split"] = list(range(len(self.cuts)))
        for i in self.allowed_exits:
            grid[f"exit_{i}"] = [False, True]
        if len(self.policies) > 1:
            grid["policy"] = list(self.policies)
        for name in [f"threshold.{t}" for t in self.threshold_tasks] or ["threshold"]:
            grid[name] = list(self.thresholds)
        if len(self.codecs) > 1:
            grid["codec"] = list(self.codecs)
        return grid

    def exit_subsets(self) -> list[tuple[int, ...]]:
        ids = self.allowed_exits
        return [s for r in range(len(ids) + 1) for s in itertools.combinations(ids, r)]

    def enumerate(self) -> Iterator[Candidate]:
        """Every distinct candidate (no duplicates from irrelevant knobs)."""
        for method, density in self.networks():
            for cut in self.cuts:
                for codec in self._codecs_at(cut):
                    for subset in self.exit_subsets():
                        if not subset:
                            yield Candidate(
                                method,
                                density,
                                cut,
                                subset,
                                self.thresholds[0],
                                self.criterion,
                                self.policies[0],
                                (self.thresholds[0],) * len(self.threshold_tasks),
                                codec,
                            )
                            continue
                        for policy in self.policies:
                            for ts in self._threshold_sets():
                                yield Candidate(
                                    method,
                                    density,
                                    cut,
                                    subset,
                                    ts[0],
                                    self.criterion,
                                    policy,
                                    ts if self.threshold_tasks else (),
                                    codec,
                                )

    def _codecs_at(self, cut: int) -> list[str | None]:
        if not self.codecs:
            return [None]
        return [SILENT_CODEC] if cut in self.silent_cuts else list(self.codecs)

    def _threshold_sets(self) -> Iterator[tuple[float, ...]]:
        return itertools.product(self.thresholds, repeat=max(1, len(self.threshold_tasks)))

    def size(self) -> int:
        n_sub = len(self.exit_subsets())
        per_exit = len(self.policies) * len(self.thresholds) ** max(1, len(self.threshold_tasks))
        per_cut = (n_sub - 1) * per_exit + 1
        coded = sum(len(self._codecs_at(c)) for c in self.cuts)
        return len(self.networks()) * coded * per_cut

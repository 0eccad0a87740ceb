"""The joint search: one multi-objective Optuna study over the four knobs.

A trial draws a :class:`~dse.search.space.Candidate`; its network comes from the training cache
(trained at most once per key, with every allowed exit attached) and everything else is
scored post hoc by :mod:`dse.search.evaluate`. Metrics go into the trial's user attributes in
one write (``trial.user_attrs["dse"]``, one JSON string: :func:`record_of`); constraint
violations reach the sampler through Optuna's ``constraints_func``. The spec's text is
stored with the study, so a study can be resumed, listed and reported by name alone.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from dse.costmodel import build_graph, load_device, load_link
from dse.errors import InputError
from dse.nets import (
    Cache,
    Codec,
    CodecView,
    CodecWork,
    DataSet,
    HeadConfig,
    NetworkSpec,
    TrainConfig,
    TrainedNetwork,
    TrainingDiverged,
    build_network,
    codec_outputs,
    example_input,
    key_of,
    load_data,
    train_network,
)
from dse.search.claims import StorageClaims
from dse.search.evaluate import Metrics, Scorer, make_scorer
from dse.search.pareto import Ruler, hypervolume, pareto_mask
from dse.search.space import Candidate, Space
from dse.search.spec import StudySpec, parse_spec
from dse.search.storage import (
    STUDIES_DIR,
    WAIT_S,
    WORKER_ATTR,
    beating,
    counted,
    fail_reason,
    fail_stale,
    find_storage,
    liveness,
    lose,
    remote,
    storage_for,
    study_lock,
    take,
    trial_beat,
)
from dse.search.workers import Worker, alive, registry_dir
from dse.vocab import network_label

log = logging.getLogger(__name__)
TRAINED_PREFIX = "trained:"  # study attribute per training the study ran: trained:<key>
CODED_PREFIX = "coded:"  # study attribute per codec output cache the study built
CODEC_OUTPUTS_VERSION = 2  # bump when dse.nets.split or the payload format changes what it computes


def _network_label(method: str, density: float) -> str:
    return network_label(method, density)


def _views_payload(views: list[dict[tuple[int, str], CodecView]], codec: Codec) -> dict[str, Any]:
    """Codec outputs (validation, test) as a cache payload of tensors."""
    import torch

    cuts = sorted(k for k, _ in views[0])
    out: dict[str, Any] = {"cuts": cuts, "codec": codec.name}
    for split, v in zip(("val", "test"), views, strict=True):
        out[split] = [
            {
                "correct": torch.from_numpy(v[(k, codec.name)].correct),
                "sizes": torch.from_numpy(v[(k, codec.name)].sizes),
                **{
                    f"conf_{c}": torch.from_numpy(np.ascontiguousarray(x))
                    for c, x in v[(k, codec.name)].confidence.items()
                },
            }
            for k in cuts
        ]
    return out


def _views_from(payload: dict[str, Any]) -> dict[int, tuple[CodecView, CodecView]]:
    def view(d: dict[str, Any]) -> CodecView:
        conf = {k[5:]: v.numpy() for k, v in d.items() if k.startswith("conf_")}
        return CodecView(d["correct"].numpy(), conf, d["sizes"].numpy())

    return {
        int(k): (view(a), view(b))
        for k, a, b in zip(payload["cuts"], payload["val"], payload["test"], strict=True)
    }


class CandidateFailed(Exception):
    """A candidate that could not be scored: its trial fails, the study goes on."""


def data_of(data: Mapping[str, Any]) -> DataSet:
    """The data set a checked ``[data]`` table (:func:`~dse.search.spec.check_data`) names;
    its task choice is the caller's."""
    opts = {k: v for k, v in data.items() if k not in ("name", "root", "task")}
    return load_data(data["name"], root=data.get("root"), **opts)


@dataclass
class Explorer:
    """Trained networks and scorers for one spec, created lazily and kept for the process."""

    spec: StudySpec
    cache: Cache = field(default_factory=Cache)
    progress: bool = True

    def __post_init__(self) -> None:
        s = self.spec
        self.data: DataSet = data_of(s.data)
        self.task: str | None = s.data.get("task")
        if self.task is not None:
            self.data.check_tasks(self.task, where=s.path or s.name, field="data.task")
        #: several tasks on one backbone ([data] tasks), else None
        self.tasks: tuple[str, ...] | None = (
            self.data.check_tasks(s.tasks, where=s.path or s.name, field="data.tasks")
            if s.tasks
            else None
        )
        self.head = HeadConfig.parse(s.head)
        self.edge = load_device(s.edge)
        self.server = load_device(s.server)
        self.link = load_link(s.link)
        training = dict(s.training)
        if "task_weights" in training:
            training["task_weights"] = tuple(training["task_weights"])
        self.train_config = TrainConfig(**training)
        self._scorers: dict[tuple[str, float, int | None], Scorer] = {}
        self.trained_now: dict[str, float] = {}  # key -> training seconds, this process
        self.loaded: set[str] = set()  # keys served from the cache
        #: networks whose training diverged in this process: their trials fail at once with
        #: the same reason instead of training again (the failure is not cached on disk,
        #: so another process, or a later run, tries once more)
        self.diverged: dict[tuple[str, float, int | None], TrainingDiverged] = {}
        #: the study this explorer trains for (set by create_study): each training it runs
        #: is written to the study, so ``status`` can count trainings, not networks used
        self.study: optuna.Study | None = None
        #: split or hierarchical training: each cut trains a network of its own
        self.split_training = self.train_config.mode != "central"
        self.default_cut: int | None = None
        try:
            dense = build_network(self.network_spec("dense", 1.0, cut=0))
        except InputError as exc:
            if exc.field != "sites":
                raise
            raise InputError(s.path or s.name, "space.exits", exc.reason, exc.fix) from None
        self.reference_graph = build_graph(dense, example_input(self.data), name=s.model)
        g = self.reference_graph
        cuts = g.clean_cuts() if s.splits == "clean" else list(range(len(g.cuts)))
        self.exit_names: tuple[str, ...] = tuple(getattr(dense, "exit_sites", ()))
        named = self.train_config.exit
        if named is not None and named not in self.exit_names:
            raise InputError(
                s.path or s.name,
                "training.exit",
                f"{named!r} is not an exit of the network",
                f"its exits: {', '.join(self.exit_names) or 'none'}",
            )
        silent = [c.index for c in g.cuts if c.bytes == 0]
        self.space = Space.from_spec(s, cuts=cuts, n_exits=len(g.exits), silent_cuts=silent)
        self.codecs = tuple(Codec.parse(c) for c in s.codecs)
        if self.split_training:  # for callers that name no cut: after the deepest exit
            sends = [k for k in self.space.cuts if g.cuts[k].bytes > 0] or list(self.space.cuts)
            deepest = max((e.position for e in g.exits), default=sends[len(sends) // 2])
            self.default_cut = min(sends, key=lambda k: (abs(k - deepest), k))

    def train_cut(self, split: int | None = None) -> int | None:
        """The cut a network is trained at for a candidate cut ``split``: None in central
        training (one network serves every cut), else ``split`` (or, given none, the
        space's cut nearest after the deepest exit)."""
        if not self.split_training:
            return None
        return split if split is not None else self.default_cut

    def network_cuts(self) -> list[int | None]:
        """The cuts that train networks of their own ([None] in central training)."""
        return list(self.space.cuts) if self.split_training else [None]

    def network_spec(
        self,
        method: str,
        density: float,
        *,
        exits: tuple[str, ...] | None = None,
        cut: int | None = None,
    ) -> NetworkSpec:
        """The training key of a network; exits None (or all of them): the study's own;
        ``cut``: split or hierarchical training's cut (None: :meth:`train_cut`'s)."""
        if exits is not None and tuple(exits) == getattr(self, "exit_names", None):
            exits = None  # the same network the study trained: one cache entry
        return NetworkSpec(
            model=self.spec.model,
            data=self.data,
            task=self.task,
            model_options=dict(self.spec.model_options),
            method="predefined" if method == "dense" else method,
            density=density,
            exits=self.spec.exits if exits is None else exits,
            train=self.train_config,
            tasks=self.tasks,
            head=self.head,
            cut=self.train_cut(cut),
        )

    def scorer(self, method: str, density: float, cut: int | None = None) -> Scorer:
        """The scorer of a network (split or hierarchical training: the one trained at
        ``cut``, see :meth:`train_cut`)."""
        key = ("dense", 1.0) if density >= 1.0 else (method, density)
        cut = self.train_cut(cut)
        if (*key, cut) in self.diverged:
            raise self.diverged[(*key, cut)].with_traceback(None)
        if (*key, cut) not in self._scorers:
            nspec = self.network_spec(*key, cut=cut)
            try:
                trained = train_network(nspec, cache=self.cache, progress=self.progress)
            except TrainingDiverged as exc:
                self.diverged[(*key, cut)] = exc
                raise
            if trained.cached:
                self.loaded.add(trained.key)
            else:
                self.trained_now[trained.key] = trained.train_seconds
                self._record(trained.key, _network_label(*key), trained.train_seconds)
            # the dense network's graph is the reference graph: weights change no count
            scorer = make_scorer(
                trained,
                self.edge,
                self.server,
                self.link,
                tail=self.spec.tail_energy,
                graph=self.reference_graph if key == ("dense", 1.0) else None,
            )
            if len(scorer.graph.cuts) != len(self.reference_graph.cuts):
                raise CandidateFailed(
                    f"{key}: the network has {len(scorer.graph.cuts)} cuts, "
                    f"the reference {len(self.reference_graph.cuts)}"
                )
            if self.codecs:
                scorer.codec_views.update(self._codec_views(trained, scorer))
            self._scorers[(*key, cut)] = scorer
        return self._scorers[(*key, cut)]

    def evaluate(self, cand: Candidate) -> Metrics:
        return self.scorer(cand.method, cand.density, cand.split).score(cand)

    def evaluate_alone(self, cand: Candidate, *, cache: Cache | None) -> tuple[Metrics, bool]:
        """Train ``cand``'s network with only its exits attached (as deployed), then score.

        What the shared training stands in for: ``dse verify`` compares the two. Returns
        the metrics and whether the network came from ``cache``.
        """
        names = tuple(self.exit_names[i] for i in cand.exits)
        nspec = self.network_spec(cand.method, cand.density, exits=names, cut=cand.split)
        trained = train_network(nspec, cache=cache, progress=self.progress)
        if not trained.cached:
            self._record(
                trained.key,
                f"{_network_label(cand.method, cand.density)} with "
                f"exits {', '.join(names) or 'none'} (alone)",
                trained.train_seconds,
            )
        scorer = make_scorer(trained, self.edge, self.server, self.link, tail=self.spec.tail_energy)
        alone = replace(cand, exits=tuple(range(len(names))))
        return scorer.score(alone), trained.cached

    def codec_key(self, trained: TrainedNetwork, codec: Codec) -> str:
        """The cache key of one network's outputs with ``codec`` at the space's cuts."""
        return key_of(
            {
                "codec_outputs": CODEC_OUTPUTS_VERSION,
                "network": trained.key,
                "codec": codec.name,
                "cuts": list(self.space.cuts),
            }
        )

    def _codec_views(
        self, trained: TrainedNetwork, scorer: Scorer
    ) -> dict[str, dict[int, tuple[CodecView, CodecView]]]:
        """Per codec and cut, the (validation, test) outputs of ``trained`` with that codec
        at the cut: from the cache, or computed (every missing codec in one pass over the
        splits) and recorded in the study with what it cost."""
        out = {}
        missing = []
        for codec in self.codecs:
            hit = self.cache.get(self.codec_key(trained, codec))
            if hit is None:
                missing.append(codec)
            else:
                out[codec.name] = _views_from(hit)
        if missing:
            work = CodecWork()
            net = trained.network()
            data, tasks = self.data, len(trained.tasks)
            views = [
                codec_outputs(
                    net, scorer.graph, x, labels, self.space.cuts, missing, tasks=tasks, work=work
                )
                for x, labels in (
                    (data.val.x, trained.val_labels),
                    (data.test.x, trained.test_labels),
                )
            ]
            for codec in missing:
                key = self.codec_key(trained, codec)
                payload = {"key": key, **_views_payload(views, codec)}
                self.cache.put(key, payload)
                out[codec.name] = _views_from(payload)
            if self.study is not None:
                label = _network_label(
                    trained.spec.method if trained.spec.density < 1 else "dense",
                    trained.spec.density,
                )
                self.study.set_user_attr(
                    f"{CODED_PREFIX}{trained.key}:{','.join(c.name for c in missing)}",
                    {
                        "network": label,
                        "codecs": [c.name for c in missing],
                        "seconds": work.seconds,
                        "batches": work.full_passes,
                        "server_batches": work.server_passes,
                        # over validation and test: one evaluation pass is 1 per split
                        "evaluation_passes": work.equivalent_passes / 2,
                        "payloads": work.encoded,
                        "cuts": len(self.space.cuts),
                    },
                )
        return out

    def _record(self, key: str, network: str, seconds: float) -> None:
        """Write a training this process ran to the study (one attribute per key, so
        parallel workers never overwrite each other's)."""
        if self.study is not None:
            self.study.set_user_attr(
                f"{TRAINED_PREFIX}{key}", {"network": network, "seconds": float(seconds)}
            )

    def train_free(self) -> int:
        """Train the space's networks that are neither cached nor in training elsewhere.

        What parallel workers do before their first trial: each takes the next network no
        one has claimed, so the trainings spread over the workers instead of one worker
        waiting for the network another is training. Returns how many it trained.
        """
        done = 0
        for (method, density), cut in itertools.product(self.space.networks(), self.network_cuts()):
            key = self.network_spec(method, density, cut=cut).key
            if self.cache.path(key).exists() or self.cache.busy(key):
                continue
            before = len(self.trained_now)
            try:
                self.scorer(method, density, cut)  # trains it (or waits, if claimed meanwhile)
            except Exception as exc:  # noqa: BLE001 - its trials will fail with the reason
                log.warning("%s@%g: %s: %s", method, density, type(exc).__name__, exc)
            done += len(self.trained_now) - before
        return done

    def learning_warnings(self) -> list[str]:
        """One line per reason to distrust the reference (dense) network: a final
        classifier near chance, or more than 5 points below one of its exits or one of the
        study's sparse networks (on validation; see ``dse.nets.learning_problem``).

        Looks only at networks already cached (it never trains one); empty if the dense
        network is not trained yet.
        """
        if not self.cache.path(self.network_spec("dense", 1.0).key).exists():
            return []
        dense = self.scorer("dense", 1.0).trained
        others: dict[str, Any] = {}  # name -> accuracy (several tasks: one per task)
        for method, density in self.space.networks():
            if density >= 1 or not self.cache.path(self.network_spec(method, density).key).exists():
                continue
            try:
                t = self.scorer(method, density).trained
            except Exception:  # noqa: BLE001 - a network that fails is reported by its trials
                continue
            accs = t.task_accuracy("val")  # one per task
            others[f"the {_network_label(method, density)} network"] = (
                accs[0] if len(accs) == 1 else accs
            )
        problem = dense.learning_problem(others)
        if problem is None:
            return []
        fix = dense.learning_fix().replace("(dse train --epochs auto)", "in the spec's [training]")
        return [
            f"the reference network ({self.spec.model}, dense, {dense.epochs_text()}): "
            f"{problem}; every accuracy figure of this study is measured against it; "
            f"{fix}"
        ]

    def training_keys(self) -> set[str]:
        return {
            self.network_spec(m, d, cut=c).key
            for m, d in self.space.networks()
            for c in self.network_cuts()
        }


# --------------------------------------------------------------------------------------
# storage and samplers
# --------------------------------------------------------------------------------------


def record_of(trial: FrozenTrial) -> dict[str, Any] | None:
    """The trial's ``dse`` record (knobs, metrics, constraint violations), or None.

    It is stored as one JSON string: Optuna deep-copies every trial's attributes whenever
    a sampler reads the history, and a string copies for free where a nested dict of some
    thirty metrics does not. A record stored as a dict (older studies) is read as it is.
    """
    d = trial.user_attrs.get("dse")
    return json.loads(d) if isinstance(d, str) else d


def _constraints_func(trial: FrozenTrial) -> list[float]:
    """Constraint values from the trial's one ``dse`` record (infeasible if missing)."""
    d = record_of(trial)
    return list(d["constraints"]) if d is not None else [1.0]


#: Samplers that take ``constraints_func`` (and store each trial's constraint values).
SAMPLERS_WITH_CONSTRAINTS = ("nsga2", "nsga3", "tpe", "gp")


def make_sampler(spec: StudySpec, space: Space, *, worker: int = 0) -> optuna.samplers.BaseSampler:
    """The spec's sampler, seeded with the spec's seed plus ``worker`` (0 for the first
    worker of a study; parallel workers with one seed would all draw the same points).

    Constraints reach the samplers that use them through ``constraints_func``, which reads
    the values already stored with the trial's metrics: ``trial.set_constraint`` would cost
    one more storage write per constraint and trial, about 10% of a trial's time with the
    journal storage. (Optuna 5 marks ``constraints_func`` deprecated, for removal in 7.)
    """
    s = spec.sampler
    seed = spec.seed + worker
    kw: dict[str, Any] = {"seed": seed}
    if spec.constraints and s in SAMPLERS_WITH_CONSTRAINTS:
        kw["constraints_func"] = _constraints_func
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*constraints_func.*", category=FutureWarning)
        if s == "nsga2":
            return optuna.samplers.NSGAIISampler(**kw)
        if s == "nsga3":
            return optuna.samplers.NSGAIIISampler(**kw)
        if s == "tpe":
            return optuna.samplers.TPESampler(multivariate=True, **kw)
        if s == "gp":
            return optuna.samplers.GPSampler(**kw)
    if s == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.GridSampler(space.grid_params(), seed=seed)


# --------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------


def objective_for(
    explorer: Explorer, evaluate: Callable[[Candidate], Metrics] | None = None
) -> Callable[[optuna.Trial], list[float]]:
    """The study's objective; ``evaluate`` defaults to post-hoc scoring (the explorer's)."""
    spec = explorer.spec
    names = list(spec.objectives)
    score = evaluate or explorer.evaluate

    def objective(trial: optuna.Trial) -> list[float]:
        cand = explorer.space.suggest(trial)
        try:
            m = score(cand)
        except Exception as exc:  # a failing candidate is a failed trial
            reason = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("fail_reason", reason)
            raise CandidateFailed(reason) from exc
        metrics = m.as_dict()
        violations = [c.violation(metrics[c.metric]) for c in spec.constraints]
        bad = _non_finite(metrics) + [
            f"constraint {c.metric}"
            for c, v in zip(spec.constraints, violations, strict=True)
            if not math.isfinite(v)
        ]
        if bad:  # Optuna would store inf and a front, a ruler, a hypervolume break on it
            reason = (
                f"non-finite metrics: {', '.join(bad)} (a cost overflowed: check the "
                "profiles' figures and units)"
            )
            trial.set_user_attr("fail_reason", reason)
            raise CandidateFailed(reason)
        trial.set_user_attr(
            "dse",
            json.dumps({"knobs": cand.as_dict(), "metrics": metrics, "constraints": violations}),
        )
        if violations and spec.sampler not in SAMPLERS_WITH_CONSTRAINTS:
            # where no sampler stores them, stored as Optuna's samplers do, so that tools
            # reading the storage (optuna-dashboard) show feasibility
            trial.storage.set_trial_system_attr(trial._trial_id, "constraints", violations)
        return [metrics[k] for k in names]

    return objective


def _non_finite(metrics: Mapping[str, Any]) -> list[str]:
    """``name = value`` of every metric (or list element) that is not a finite number."""
    bad = []
    for name, value in metrics.items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, int | float) and not math.isfinite(v):
                bad.append(f"{name} = {v}")
    return bad


def _check_same_spec(study: optuna.Study, spec: StudySpec) -> None:
    """Refuse a stored study of the same name that was run with another spec text."""
    old = study.user_attrs.get("spec")
    if old is not None and old != spec.text:
        raise InputError(
            spec.path or spec.name,
            "name",
            f"a different study named {spec.name!r} exists in its storage",
            f"rename the study in the spec, or delete studies/{spec.name}.journal",
        )


def stored_study(spec: StudySpec, *, storage: str | None = None) -> optuna.Study | None:
    """The spec's study if it has been run, else None (nothing is created); a study of the
    same name run with another spec is refused."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=spec.name, storage=find_storage(spec.name, storage))
    except (InputError, KeyError):  # no storage file, or no such study in it
        return None
    _check_same_spec(study, spec)
    return study


def create_study(
    spec: StudySpec,
    *,
    storage: str | None = None,
    explorer: Explorer | None = None,
    progress: bool = True,
    worker: int = 0,
) -> tuple[optuna.Study, Explorer]:
    """Create (or load, if it exists) the study of ``spec`` in its storage.

    ``worker`` counts the other processes already running the study (it offsets the seed).
    """
    explorer = explorer or Explorer(spec, progress=progress)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st = storage_for(spec.name, storage or spec.storage)
    study = optuna.create_study(
        study_name=spec.name,
        storage=st,
        directions=spec.directions,
        sampler=make_sampler(spec, explorer.space, worker=worker),
        load_if_exists=True,
    )
    _check_same_spec(study, spec)
    if study.metric_names is None:  # named axes in Optuna's own tools (optuna-dashboard)
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(spec.objectives))
    if study.user_attrs.get("spec") is None:
        study.set_user_attr("spec", spec.text)
        study.set_user_attr("spec_path", str(spec.path.resolve()) if spec.path else "")
    explorer.study = study
    return study, explorer


FINISHED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)


def finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def run_study(
    spec: StudySpec,
    *,
    n_trials: int | None = None,
    storage: str | None = None,
    progress: bool = True,
    explorer: Explorer | None = None,
    worker: int | None = None,
    on_start: Callable[[], None] | None = None,
) -> optuna.Study:
    """Run the study until it has ``n_trials`` trials that count (resuming where it
    stopped; see :func:`_trials`).

    Any number of processes, on any number of machines sharing the storage, may run one
    study at once; together they stop at ``n_trials``. ``worker`` is this process's index
    among them (default: how many are alive already on this host; it offsets the
    sampler's seed); ``on_start`` runs once this process is registered and the study is
    ready (it starts the other workers of ``dse study run --workers``). In a storage
    shared across machines, the seed is offset by a hash of this worker's host and
    process as well: two hosts' first workers must not draw the same points.
    """
    kind = storage or spec.storage
    folder = registry_dir(STUDIES_DIR, spec.name, kind)
    shared = kind != "memory"
    with Worker(folder) as me:
        others = me.others() if shared else []
        index = len(others) if worker is None else worker
        if worker is None and remote(kind):  # workers of other hosts are not seen here
            index += zlib.crc32(me.path.stem.encode()) % 100_000
        study, explorer = create_study(
            spec, storage=storage, explorer=explorer, progress=progress, worker=index
        )
        if shared:  # trainings are claimed in the study's storage, which every host sees
            explorer.cache.claims = StorageClaims(study)
        if on_start is not None:
            on_start()
        target = n_trials if n_trials is not None else spec.n_trials
        several = others or on_start is not None or index > 0
        # share the trainings out first
        if several and counted(study.get_trials(deepcopy=False)) < target:
            explorer.train_free()
        _trials(
            study,
            objective_for(explorer),
            target,
            folder if shared else None,
            progress=progress,
            local=not remote(kind),
        )
    return study


def _trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], list[float]],
    target: int,
    folder: Path | None,
    *,
    progress: bool,
    local: bool = True,
) -> None:
    """Ask, score and tell trials until ``target`` trials count (:func:`counted`: running
    or finished, a lost trial's retry in its place), all workers' together, and none is
    running any more.

    Counting, judging stale trials and creating the next happen one worker at a time
    (:func:`study_lock`), so workers started together never overshoot; enqueued trials
    (retries first) run first. While the budget is spent but other workers still run
    trials, this one waits: if one of them dies, its trial is retried here. Every trial
    created ends: a candidate that fails is a FAIL trial with its reason; an interruption
    fails the trial, enqueues its retry and stops. ``local``: the storage is a file of
    this host (see :func:`~dse.search.storage.fail_stale`).
    """
    every, _ = liveness()
    bar = tqdm(
        total=max(0, target - counted(study.get_trials(deepcopy=False))),
        disable=not progress,
        desc=study.study_name,
        leave=False,
    )
    private = folder is None and isinstance(study._storage, optuna.storages.InMemoryStorage)
    judged = -float("inf")  # when stale trials were last looked for
    try:
        while True:
            with study_lock(study, folder):
                # a trial cannot go stale faster than a heartbeat: look once per interval
                if not private and time.monotonic() - judged >= every:
                    fail_stale(study, folder, local=local)
                    judged = time.monotonic()
                trials = study.get_trials(deepcopy=False)
                trial_id = None
                if counted(trials) < target:
                    trial_id = _new_trial(study)
                    if not private:
                        take(study, trial_id)
                elif not any(t.state == TrialState.RUNNING for t in trials):
                    return
            if trial_id is None:  # the others' last trials: wait, in case one is lost
                time.sleep(WAIT_S)
                continue
            trial = optuna.Trial(study, trial_id)  # the sampler's work, outside the lock
            with (
                beating(every, trial_beat(study, trial._trial_id)) if not private else nullcontext()
            ):
                try:
                    values = objective(trial)
                except CandidateFailed as exc:
                    log.warning("trial %d failed: %s", trial.number, exc)
                    _tell(study, trial, state=TrialState.FAIL)
                except BaseException:
                    lose(study, study._storage.get_trial(trial._trial_id), "interrupted")
                    raise
                else:
                    _tell(study, trial, values)
            bar.update()
    finally:
        bar.close()


def _new_trial(study: optuna.Study) -> int:
    """Start the next trial (an enqueued one first) and return its id: what
    :meth:`optuna.Study.ask` does before it builds the :class:`optuna.Trial`, whose sampler
    (NSGA-II's selection, say) need not hold the study's lock."""
    study._thread_local.cached_all_trials = None  # read the storage afresh, as ask does
    trial_id = study._pop_waiting_trial_id()
    if trial_id is None:
        trial_id = study._storage.create_new_trial(study._study_id)
    return trial_id


def _tell(
    study: optuna.Study,
    trial: optuna.Trial,
    values: list[float] | None = None,
    *,
    state: TrialState | None = None,
) -> None:
    """Tell ``trial``'s result, unless another worker judged it lost meanwhile (this
    worker stalled past the grace period): then its retry stands for it."""
    try:
        study.tell(trial, values, state=state)
    except UpdateFinishedTrialError:
        log.warning("trial %d was judged lost while it ran; its retry replaces it", trial.number)
    except ValueError as exc:
        if "Cannot tell" not in str(exc):
            raise
        log.warning("trial %d was judged lost while it ran; its retry replaces it", trial.number)


def load_study(name: str, *, storage: str | None = None) -> tuple[optuna.Study, StudySpec]:
    """A stored study and the spec it was run with."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st = find_storage(name, storage)
    try:
        study = optuna.load_study(study_name=name, storage=st)
    except KeyError:
        raise InputError(
            name, "study", "not found in its storage", "run `dse study run SPEC` first"
        ) from None
    text = study.user_attrs.get("spec")
    if text is None:
        raise InputError(name, "spec", "the study has no stored spec", "it was not made by dse")
    path = study.user_attrs.get("spec_path") or None
    spec = parse_spec(text, where=f"{name} (stored spec)", path=Path(path) if path else None)
    return study, spec


def resume_study(
    name: str, *, n_trials: int | None = None, storage: str | None = None, progress: bool = True
) -> optuna.Study:
    """Continue a stored study by name (see :func:`run_study`)."""
    _, spec = load_study(name, storage=storage)
    return run_study(spec, n_trials=n_trials, storage=storage, progress=progress)


# --------------------------------------------------------------------------------------
# reading a study back
# --------------------------------------------------------------------------------------


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per complete trial: number, knobs, metrics, feasibility.

    A trial whose stored values are not all finite numbers (one stored by an older dse, or
    written into the storage by hand) is left out, as a failed one is: see
    :func:`unreadable_trials`.
    """
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        d, why = _read(t)
        if d is None or why:
            continue
        row = {"trial": t.number, **flat_row(d["knobs"], d["metrics"])}
        row["feasible"] = all(c <= 0 for c in d["constraints"])
        rows.append(row)
    return pd.DataFrame(rows)


def _read(t: FrozenTrial) -> tuple[dict[str, Any] | None, str | None]:
    """A complete trial's record (None without one) and why its values or record cannot
    be read as finite numbers (None if they can)."""
    try:
        d = record_of(t)
    except (ValueError, TypeError):
        return None, "a malformed record"
    values = t.values or []
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        return d, f"objective values {values}"
    if d is None:
        return None, None
    try:
        bad = _non_finite(d["metrics"]) + [
            f"constraint {c}" for c in d["constraints"] if not math.isfinite(c)
        ]
        d["knobs"].items()
    except (TypeError, KeyError, AttributeError):
        return d, "a malformed record"
    return d, (f"non-finite {', '.join(bad)}" if bad else None)


def unreadable_trials(study: optuna.Study) -> dict[int, str]:
    """Complete trials left out of every table, front and hypervolume: number -> why."""
    out = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        why = _read(t)[1]
        if why:
            out[t.number] = why
    return out


def flat_row(knobs: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """One table row: ``knob_*`` columns, then metrics; lists become (hashable) tuples."""
    row = {f"knob_{k}": v for k, v in knobs.items()}
    row.update(metrics)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}


def csv_text(df: pd.DataFrame) -> str:
    """``df`` as CSV, its tuple cells (exits, exit rates) as JSON lists (see load_grid)."""
    out = df.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, tuple)).any():
            out[col] = out[col].map(lambda v: json.dumps(list(v)) if isinstance(v, tuple) else v)
    return out.to_csv(index=False)


def front_frame(study: optuna.Study, spec: StudySpec) -> pd.DataFrame:
    """The Pareto trials (feasible, complete), best accuracy first where it is an objective.

    Computed from the stored metrics and constraint values, so it holds for every sampler
    whether or not the sampler itself knows the constraints.
    """
    df = trials_frame(study)
    if df.empty:
        return df
    feasible = df[df.feasible]
    losses = Ruler.fit(spec.objectives, feasible[list(spec.objectives)].to_numpy()).loss(
        feasible[list(spec.objectives)].to_numpy()
    )
    return tidy_front(feasible[pareto_mask(losses)], spec).reset_index(drop=True)


def tidy_front(front: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    """Front rows once per configuration (a point sampled twice), best accuracy first
    (or the first objective's best, without accuracy), then by trial."""
    knobs = [c for c in front.columns if c.startswith("knob_")]
    front = front.drop_duplicates(subset=knobs, keep="first")
    first = "accuracy" if "accuracy" in spec.objectives else next(iter(spec.objectives))
    return front.sort_values(
        [first, "trial"], ascending=[spec.objectives[first] == "minimize", True]
    )


def importances(
    study: optuna.Study, names: Sequence[str], *, seed: int = 0
) -> dict[str, dict[str, float] | str]:
    """fANOVA importance of each knob per objective, or why it could not be computed."""
    out: dict[str, dict[str, float] | str] = {}
    for i, name in enumerate(names):
        try:
            ev = optuna.importance.FanovaImportanceEvaluator(seed=seed)
            res = optuna.importance.get_param_importances(
                study, evaluator=ev, target=lambda t, i=i: t.values[i]
            )
            out[name] = {k: float(v) for k, v in res.items()}
            if not out[name]:
                out[name] = "no parameter varied across the complete trials"
        except Exception as exc:  # e.g. too few trials, a single distinct value
            out[name] = f"{type(exc).__name__}: {exc}".strip()
    return out


def study_ruler(study: optuna.Study, spec: StudySpec) -> tuple[Ruler, str]:
    """The study's written-down hypervolume ruler, or one fitted to its own trials."""
    stored = study.user_attrs.get("ruler")
    if stored is not None:
        try:
            ruler = Ruler.from_dict(stored)
            ruler.loss(np.zeros((1, len(spec.objectives))))  # numbers, one per objective
            if ruler.names == tuple(spec.objectives):
                return ruler, "grid"
        except (KeyError, TypeError, ValueError):
            pass  # a ruler no dse wrote: fitted to the trials instead
    df = trials_frame(study)
    values = df[list(spec.objectives)].to_numpy() if not df.empty else np.zeros((0, 0))
    return Ruler.fit(spec.objectives, values), "trials"


def study_hypervolume(study: optuna.Study, spec: StudySpec, ruler: Ruler) -> float:
    df = trials_frame(study)
    if df.empty:
        return 0.0
    df = df[df.feasible]
    return hypervolume(ruler.loss(df[list(spec.objectives)].to_numpy()))


def status(study: optuna.Study, spec: StudySpec, storage: str | None = None) -> dict[str, Any]:
    """Trials per state, networks used and trainings run, hypervolume, and the workers
    running it now.

    ``networks_used`` counts the distinct networks (method, density) the complete trials
    were scored on; ``trainings_run`` counts the trainings this study's own processes ran
    (``dse study run``/``resume``/``grid``, ``dse compare``, ``dse verify``), as each wrote
    them to the study. A network used but not trained by the study came from the cache,
    trained earlier by another study, ``dse train``, or a dse version that kept no record.
    """
    counts = {s.name: 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] += 1
    df = trials_frame(study)
    networks = set()
    if not df.empty:
        networks = set(zip(df.knob_method, df.knob_density, strict=True))
    trained = sorted(
        (v for k, v in study.user_attrs.items() if k.startswith(TRAINED_PREFIX)),
        key=lambda v: v["network"],
    )
    ruler, source = study_ruler(study, spec)
    hv = study_hypervolume(study, spec, ruler)
    coded = [v for k, v in study.user_attrs.items() if k.startswith(CODED_PREFIX)]
    failed = [fail_reason(t) for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))]
    out: dict[str, Any] = {
        "feasible": int(df.feasible.sum()) if not df.empty else 0,
        "first_failure": failed[0] if failed else None,
        "coded": coded,
        "name": spec.name,
        "trials": {k: v for k, v in counts.items() if v},
        "networks_used": len(networks),
        "networks": sorted(networks),
        "trainings_run": len(trained),
        "trained": trained,
        "training_seconds": float(sum(v["seconds"] for v in trained)),
        "hypervolume": hv,
        "ruler": source,
        # this host's registered workers, and any host's workers with a trial running
        "workers": len(
            set(alive(registry_dir(STUDIES_DIR, spec.name, storage or spec.storage)))
            | {
                t.system_attrs[WORKER_ATTR]
                for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if WORKER_ATTR in t.system_attrs
            }
        ),
    }
    unreadable = unreadable_trials(study)
    if unreadable:
        number, why = next(iter(unreadable.items()))
        out["unreadable"] = len(unreadable)
        out["first_unreadable"] = f"trial {number}: {why}"
    grid_hv = study.user_attrs.get("grid_hypervolume")
    if isinstance(grid_hv, int | float) and math.isfinite(grid_hv) and grid_hv > 0:
        out["hv_fraction_of_grid"] = hv / grid_hv
    return out


# --------------------------------------------------------------------------------------
# verify: retrain the chosen configurations alone
# --------------------------------------------------------------------------------------


def verify(
    study: optuna.Study,
    spec: StudySpec,
    *,
    top: int = 3,
    progress: bool = True,
    explorer: Explorer | None = None,
) -> list[dict[str, Any]]:
    """Retrain the top front configurations with only their exits; compare test accuracy.

    ``top`` distinct networks are retrained: the best front rows, one per (sparsity,
    exits used), since rows differing only in cut or threshold share one retraining.

    The study scored every exit subset from one network trained with all exits attached;
    here each chosen configuration is trained as it would be deployed, and its test
    accuracy under the same exit policy is measured again.
    """
    explorer = explorer or Explorer(spec, progress=progress)
    explorer.study = study  # its retrainings are the study's
    results = []
    seen: set[tuple[Any, ...]] = set()
    for _, row in front_frame(study, spec).iterrows():
        cand = Candidate.from_row(row)
        # one retraining per deployed network: front rows that differ only in the cut or
        # the threshold would retrain the same network with the same exits
        if (cand.network, cand.exits) in seen:
            continue
        if len(seen) == top:
            break
        seen.add((cand.network, cand.exits))
        start = time.perf_counter()
        m, cached = explorer.evaluate_alone(cand, cache=explorer.cache)
        results.append(
            {
                "trial": int(row.trial),
                "knobs": {k[5:]: row[k] for k in row.index if k.startswith("knob_")},
                "old_test_accuracy": float(row.test_accuracy),
                "new_test_accuracy": m.test_accuracy,
                "delta": m.test_accuracy - float(row.test_accuracy),
                "old_latency_mean": float(row.latency_mean),
                "new_latency_mean": m.latency_mean,
                "seconds": time.perf_counter() - start,
                "cached": cached,
                # several tasks: each one's test accuracy before and after
                **(
                    {
                        "tasks": {
                            t: [float(row[f"test_accuracy.{t}"]), b]
                            for t, b in zip(m.tasks, m.test_task_accuracy, strict=True)
                        }
                    }
                    if len(m.tasks) > 1
                    else {}
                ),
            }
        )
    study.set_user_attr("verify", plain(results))
    return results


def plain(x: Any) -> Any:
    """``x`` with numpy scalars as Python numbers, tuples as lists and keys as strings:
    what JSON (and Optuna's user attributes) can store."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x

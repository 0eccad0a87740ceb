"""The explorer of one study spec: its data, devices and space, the networks it trains
(each once, cached, with every allowed exit attached) and their scorers; scoring a
:class:`~dse.search.space.Candidate` needs no training (see :mod:`dse.search.evaluate`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import optuna

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
from dse.search.evaluate import Metrics, Scorer, make_scorer
from dse.search.space import Candidate, Space
from dse.search.spec import StudySpec
from dse.vocab import network_label

log = logging.getLogger(__name__)
#: study attribute per training the study's workers ran: trained:<key>:<worker> (two
#: workers that train one key, each for a cache of its own, are two trainings)
TRAINED_PREFIX = "trained:"
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


def load_data_table(data: Mapping[str, Any], *, normalise: bool = True) -> DataSet:
    """The data set a checked ``[data]`` table (:func:`~dse.search.spec.check_data_table`)
    names; its task choice is the caller's. ``normalise=False``: its [0, 1] pixels, the
    normalisation recorded (what a deployed device reads)."""
    opts = {k: v for k, v in data.items() if k not in ("name", "root", "task")}
    return load_data(data["name"], root=data.get("root"), normalise=normalise, **opts)


@dataclass
class Explorer:
    """Trained networks and scorers for one spec, created lazily and kept for the process."""

    spec: StudySpec
    cache: Cache = field(default_factory=Cache)
    progress: bool = True

    def __post_init__(self) -> None:
        s = self.spec
        self.data: DataSet = load_data_table(s.data)
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
        self._sharing = False  # training the free keys while another worker has one
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
            weights=self.spec.weights,
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
            self._train_others_while_busy(nspec.key)
            try:
                trained = train_network(nspec, cache=self.cache, progress=self.progress)
            except TrainingDiverged as exc:
                self.diverged[(*key, cut)] = exc
                raise
            if trained.cached:
                self.loaded.add(trained.key)
            else:
                self.trained_now[trained.key] = trained.train_seconds
                self._record_training(trained.key, _network_label(*key), trained.train_seconds)
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
            self._record_training(
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

    def _record_training(self, key: str, network: str, seconds: float) -> None:
        """Write a training this process ran to the study (one attribute per key and
        worker, so parallel workers never overwrite each other's and a key trained twice
        counts twice)."""
        if self.study is not None:
            from dse.search.workers import this_worker

            worker = this_worker()
            self.study.set_user_attr(
                f"{TRAINED_PREFIX}{key}:{worker}",
                {"network": network, "seconds": float(seconds), "worker": worker},
            )

    def check_cache(self) -> None:
        """Refuse, in one line, a training cache this study cannot write to (a folder under
        a file, a read-only disk) while the study still has networks to train or codec
        outputs to store: every trial would fail on it. A cache that already holds every
        network of a study without codecs is only read, and may be read-only."""
        keys = self.training_keys()
        if self.codecs or not all(self.cache.path(k).exists() for k in keys):
            self.cache.check_writable()

    def _train_others_while_busy(self, key: str) -> None:
        """If another worker is training ``key`` now, train the study's networks no one
        has taken meanwhile (:meth:`train_free`) before waiting for it: a worker that would
        wait idle on another's claim trains another key instead."""
        if self._sharing or self.cache.path(key).exists() or not self.cache.busy(key):
            return
        self._sharing = True
        try:
            self.train_free()
        finally:
            self._sharing = False

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

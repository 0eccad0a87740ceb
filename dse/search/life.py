"""A worker's life on a study, in one place: it registers, beats, judges the others'
trials, takes over those whose workers are gone, and retries them; the run loop
(:func:`dse.search.study.run_study`) only asks it for the next trial and runs it.

The interface is :class:`WorkerLife`::

    with WorkerLife(study, local=True) as life:      # registered, beating
        for trial_id in life.trials(target):          # judged, counted, created in turn
            with life.running(trial_id):              # beaten; a trial taken over is dropped
                life.tell(trial, objective(trial))

A RUNNING trial is lost, and is failed and retried (Optuna's retry callback: the same
parameters as a WAITING trial), when its worker is known dead: a worker of this host
whose process is gone (by process id and start time, :mod:`dse.search.workers`, known at
once), or any worker whose trial has not beaten for the grace period (Optuna's heartbeat
where the storage keeps one, else the trial's ``dse:beat`` attribute). A lost trial does
not count against the study's budget: its retry does. A worker whose trial was taken over
meanwhile (it was paused past the grace period: SIGSTOP, a laptop asleep, a storage
outage) finds out at its next write, drops the trial without a traceback and goes on.
A trial that fails for a reason of the machine (a full or read-only disk) is failed,
retried and left out of the budget, and the worker stops with that one line.
"""

from __future__ import annotations

import itertools
import logging
import time
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import TracebackType
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from dse.errors import environment_error
from dse.search.optuna_compat import (
    UpdateFinishedTrialError,
    get_trial,
    heartbeat_enabled,
    in_memory,
    next_trial_id,
    retry_callback,
    set_trial_failed,
    set_trial_system_attr,
    stale_trial_ids,
    storage_of,
    study_id_of,
    tell_unless_finished,
    trial_id_of,
)
from dse.search.storage import (
    BEAT_ATTR,
    ENVIRONMENT_ATTR,
    LOST_ATTR,
    MAX_RETRY,
    WAIT_S,
    WORKER_ATTR,
    budget_used,
    study_lock,
)
from dse.search.storage_retry import RetryingStorage, StorageUnreachable
from dse.search.workers import (
    RECORD_PREFIX,
    beating,
    heartbeat_settings,
    live_workers,
    this_worker,
    worker_alive,
    write_record,
)

log = logging.getLogger(__name__)


class WorkerLife:
    """This process as one worker of ``study`` while the ``with`` block runs.

    ``local``: the storage is a file of this host (a trial with no worker recorded, from an
    older dse, is then lost as soon as no other worker is registered); ``index``: this
    worker's index among the study's workers (it offsets the sampler's seed; None: the
    smallest index no live worker holds, chosen under the study's lock).
    """

    def __init__(self, study: optuna.Study, *, local: bool = True, index: int | None = None):
        self.study = study
        self.local = local
        self.private = in_memory(study)  # nobody else can see it: nothing to register
        self.worker = this_worker()
        self.index = index
        #: the other live workers when this one registered
        self.others: list[str] = []
        self._since = time.time()
        self._trial_id: int | None = None  # the trial running now (beaten)
        self._judged = -float("inf")
        self._stack = ExitStack()

    # ----------------------------------------------------------------------------------
    # joining and leaving

    def __enter__(self) -> WorkerLife:
        if self.private:
            self.index = self.index or 0
            return self
        with study_lock(self.study):
            live = live_workers(self.study, besides=self.worker)
            self.others = sorted(live)
            if self.index is None:
                used = {r.get("index") for r in live.values()}
                self.index = next(i for i in itertools.count() if i not in used)
            self._record(beat=time.time())
        every, _ = heartbeat_settings()
        self._stack.enter_context(beating(every, self._beat))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()
        if self.private or isinstance(exc, StorageUnreachable):
            return  # nothing to write, or no way to write it
        try:  # not through an outage: a worker on its way out waits for nothing
            self._record(once=True, beat=time.time(), ended=True)
        except Exception as err:  # noqa: BLE001 - its beats stop; it will be seen as gone
            log.debug("could not record the end of worker %s: %s", self.worker, err)

    def seed_offset(self, *, unlocked: bool) -> int:
        """This worker's offset of the sampler's seed: its index, and where workers may
        register at one instant with no lock between them (``unlocked``: through a gRPC
        proxy), so that two may take one index, a hash of its name too (two hosts' first
        workers must not draw the same points)."""
        index = self.index or 0
        return index + zlib.crc32(self.worker.encode()) % 100_000 if unlocked else index

    def _record(self, *, once: bool = False, **fields: Any) -> None:
        """Write this worker's record in the study (``once``: not retried through an
        outage)."""
        value = {"index": self.index, "since": self._since, **fields}
        if once:
            name = f"{RECORD_PREFIX}{self.worker}"
            self._raw().set_study_system_attr(study_id_of(self.study), name, value)
        else:
            write_record(self.study, self.worker, value)

    def _raw(self) -> Any:
        """The study's storage without the retries through an outage."""
        storage = storage_of(self.study)
        return storage._backend if isinstance(storage, RetryingStorage) else storage

    def _beat(self) -> None:
        """One heartbeat: the worker's record, and the trial it runs. Not retried through
        an outage (the next beat replaces a lost one)."""
        storage, raw, now = storage_of(self.study), self._raw(), time.time()
        self._record(once=True, beat=now)
        trial_id = self._trial_id
        if trial_id is None:
            return
        try:
            if heartbeat_enabled(storage):
                raw.record_heartbeat(trial_id)  # type: ignore[attr-defined]
            else:
                raw.set_trial_system_attr(trial_id, BEAT_ATTR, now)
        except UpdateFinishedTrialError:
            pass  # taken over: the trial's own next write says so

    def _beat_trial(self, trial_id: int) -> None:
        storage = storage_of(self.study)
        if heartbeat_enabled(storage):
            storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
        else:
            set_trial_system_attr(self.study, trial_id, BEAT_ATTR, time.time())

    # ----------------------------------------------------------------------------------
    # the next trial

    def trials(self, target: int) -> Iterator[int]:
        """The ids of the trials this worker is to run, one at a time, until ``target``
        trials count (:func:`~dse.search.storage.budget_used`), all workers' together,
        and none is running any more.

        Judging the others' trials, counting the trials and creating the next happen one
        worker at a time (:func:`~dse.search.storage.study_lock`), so workers started
        together never overshoot; enqueued trials (retries first) run first. While the
        budget is spent but other workers still run trials, this one waits: if one of
        them is lost, its retry runs here.
        """
        every, _ = heartbeat_settings()
        while True:
            with study_lock(self.study):
                # a trial cannot go stale faster than a heartbeat: look once per interval
                if not self.private and time.monotonic() - self._judged >= every:
                    self.judge()
                    self._judged = time.monotonic()
                trials = self.study.get_trials(deepcopy=False)
                trial_id = None
                if budget_used(trials) < target:
                    trial_id = next_trial_id(self.study)
                    if not self.private:  # this worker's, before any other can judge it
                        set_trial_system_attr(self.study, trial_id, WORKER_ATTR, self.worker)
                        self._beat_trial(trial_id)
                elif not any(t.state == TrialState.RUNNING for t in trials):
                    return
            if trial_id is None:  # the others' last trials: wait, in case one is lost
                time.sleep(WAIT_S)
                continue
            yield trial_id

    def judge(self) -> int:
        """Fail and retry the RUNNING trials of workers that are gone; how many.

        Right after an outage of the storage (within the grace period of its end) no
        trial is judged by its beats: no worker could beat while the storage was out of
        reach. Call it under :func:`~dse.search.storage.study_lock`, so that two workers
        never judge one trial together.
        """
        _, grace = heartbeat_settings()
        storage = storage_of(self.study)
        back_at = getattr(storage, "back_at", None)
        by_beats = back_at is None or time.monotonic() - back_at >= grace
        optuna_beats = heartbeat_enabled(storage)
        stale = set(stale_trial_ids(self.study)) if optuna_beats and by_beats else set()
        nobody_else: bool | None = None  # looked up once, if needed
        lost = 0
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker = t.system_attrs.get(WORKER_ATTR)
            if worker == self.worker:
                continue
            reason = None
            if isinstance(worker, str) and worker_alive(worker) is False:
                reason = f"its worker {worker} ended without finishing it"
            elif worker is None and self.local:
                if nobody_else is None:
                    nobody_else = not live_workers(self.study, besides=self.worker)
                if nobody_else:
                    reason = "its worker ended without finishing it"
            if reason is None and by_beats:
                reason = _silent(t, worker, stale=stale, optuna_beats=optuna_beats, grace=grace)
            if reason is not None and fail_and_retry(self.study, t, reason):
                log.warning("trial %d lost: %s; retried", t.number, reason)
                lost += 1
        return lost

    # ----------------------------------------------------------------------------------
    # running one

    @contextmanager
    def running(self, trial_id: int) -> Iterator[None]:
        """Beat the trial while the block runs it, and settle how it ends.

        A trial another worker took over meanwhile is dropped, whatever the block raised
        at the write that found out (Optuna's UpdateFinishedTrialError in ``suggest``,
        ``set_user_attr`` or ``tell``): its retry stands for it, and the worker goes on.
        A failure of the machine (a full or read-only disk) fails and retries the trial
        without spending the budget, and stops the worker with the one-line error. Any
        other interruption fails and retries the trial, and is raised.
        """
        self._trial_id = trial_id
        try:
            yield
        except StorageUnreachable:
            raise  # nothing can be written; the trial is judged once the storage is back
        except BaseException as exc:
            if self._taken_over(trial_id):
                log.warning(
                    "trial %d was taken over by another worker while this one was paused; "
                    "dropped (its retry replaces it)",
                    get_trial(self.study, trial_id).number,
                )
                return
            problem = environment_error(exc)
            if problem is not None:
                self._set_aside(trial_id, str(problem))
                raise problem from None
            fail_and_retry(self.study, get_trial(self.study, trial_id), "interrupted")
            raise
        finally:
            self._trial_id = None

    def _taken_over(self, trial_id: int) -> bool:
        """Whether the trial has finished without this worker telling it (failed as
        lost by another worker)."""
        if self.private:
            return False
        try:
            return get_trial(self.study, trial_id).state.is_finished()
        except StorageUnreachable:
            return False

    def _set_aside(self, trial_id: int, reason: str) -> None:
        """Fail a trial for a reason of the machine: not the candidate's fault, so it
        counts against no budget, and is retried once the machine is fixed."""
        try:
            set_trial_system_attr(self.study, trial_id, ENVIRONMENT_ATTR, reason)
            if set_trial_failed(self.study, trial_id):
                retry_callback(MAX_RETRY)(self.study, get_trial(self.study, trial_id))
        except UpdateFinishedTrialError:
            pass

    def tell(
        self,
        trial: optuna.Trial,
        values: list[float] | None = None,
        *,
        state: TrialState | None = None,
    ) -> None:
        """Tell ``trial``'s result, unless another worker judged it lost meanwhile (this
        worker stalled past the grace period): then its retry stands for it."""
        if not tell_unless_finished(self.study, trial, values, state=state):
            log.warning(
                "trial %d was judged lost while it ran; its retry replaces it", trial.number
            )


def _silent(
    t: FrozenTrial, worker: Any, *, stale: set[int], optuna_beats: bool, grace: int
) -> str | None:
    """Why ``t`` is lost by its beats (None: it is not): Optuna's heartbeat older than the
    grace period (``stale``), else its ``dse:beat``. A trial no worker took (its creation
    retried through an outage) has no heartbeat of Optuna's: its start stands for one."""
    who = worker or "(unknown)"
    if trial_id_of(t) in stale:
        return f"no heartbeat from its worker {who} for {grace} s"
    if optuna_beats and worker is not None:
        return None
    silent = time.time() - _last_beat(t)
    return f"no heartbeat from its worker {who} for {silent:.0f} s" if silent > grace else None


def _last_beat(t: FrozenTrial) -> float:
    beat = t.system_attrs.get(BEAT_ATTR)
    if isinstance(beat, int | float):
        return float(beat)
    start = t.datetime_start
    return start.timestamp() if start is not None else time.time()


def fail_and_retry(study: optuna.Study, t: FrozenTrial, reason: str) -> bool:
    """Fail ``t`` as lost (``reason``) and enqueue its retry; False if it had finished
    meanwhile (another worker judged it first, or its own worker reported)."""
    trial_id = trial_id_of(t)
    try:
        set_trial_system_attr(study, trial_id, LOST_ATTR, reason)
        if not set_trial_failed(study, trial_id):
            return False
    except UpdateFinishedTrialError:
        return False
    retry_callback(MAX_RETRY)(study, get_trial(study, trial_id))
    return True

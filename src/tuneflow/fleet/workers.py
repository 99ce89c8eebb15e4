"""Worker processes: run trials of a shared study until its budget is reached, survive stops and deaths.

``tuneflow run`` and ``tuneflow worker`` both run a :class:`TrialLoop`; the only difference is that
``run --n-trials N`` adds N to what the study already counts. Each turn of the loop:

1. fails trials whose worker stopped sending heartbeats (``optuna.storages.fail_stale_trials``,
   which re-queues them through the storage's retry callback);
2. under the study's admission lock, counts the trials and reserves one if the budget allows
   (see :mod:`tuneflow.fleet.budget`) — so N workers finish exactly ``budget.n_trials`` trials;
3. outside the lock, builds the trial on the reserved id with a sampler seeded for that trial number
   (``sampler_for``, see :func:`tuneflow.study.samplers.trial_samplers`), so workers never repeat
   each other's draws and a slow sampler holds nobody up;
4. runs it with a heartbeat thread and tells Optuna the outcome.

When the budget is reached but other workers still have running trials, the worker waits (with
heartbeats on): should one of them die, its trial comes back as a waiting copy and is run here.

Stopping. The first Ctrl-C (SIGINT) lets the running trial finish, then stops the worker (no new trial
starts); SIGTERM does the same only with ``graceful_sigterm`` (``--graceful-sigterm``), because schedulers
(Slurm's ``scancel`` and time limits, Kubernetes) send SIGTERM and kill soon after. A second signal, or
a SIGTERM without that option, aborts: :class:`StopRequested` is raised inside the trial, which is
recorded as FAIL with ``fail_reason: worker stopped (SIGTERM)`` and re-queued with the same parameters
(its copy has ``retry_of``). Either way :meth:`TrialLoop.run` ends with :class:`StopRequested` and the
worker exits with 128 + the signal number (the study's budget was not reached: a script must not take
it for done). The exception is never raised inside Optuna or a database driver (the signal is re-sent
50 ms later instead), so no connection is left half-way through a query. A worker killed with SIGKILL
cannot do any of this; its trial is failed and re-queued by the heartbeat after the grace period.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
import warnings
from typing import Any, Callable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuneflow.fleet.budget import TrialCount, gate_for
from tuneflow.fleet.storage import heartbeat_settings, retry_callback
from tuneflow.training.faults import release_memory

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def worker_id() -> str:
    """``hostname:pid``, stored as the ``worker`` user attribute of every trial this process runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


class SpaceExhausted(RuntimeError):
    """Every configuration of a finite space is measured or running: nothing new to try.

    Raised by the study's sampler (:mod:`tuneflow.study.distinct`) while a trial is created; the
    worker then fails that empty trial and stops before the budget is spent."""


class StopRequested(KeyboardInterrupt):
    """Raised inside a running trial when the worker is told to abort it (not an ``Exception``, so no
    objective code swallows it), and by :meth:`TrialLoop.run` once a stopped worker has left its loop.

    ``graceful``: the worker stopped between trials and nothing was failed; ``last_trial`` is the
    trial it let finish (None when none was running).
    """

    def __init__(self, signum: int, *, graceful: bool = False, last_trial: int | None = None):
        self.signum = signum
        self.graceful = graceful
        self.last_trial = last_trial
        name = signal.Signals(signum).name
        if not graceful:
            text = f"worker stopped ({name})"
        elif last_trial is None:
            text = f"stopped by {name} (no trial was running)"
        else:
            text = f"stopped by {name} after trial {last_trial} finished"
        super().__init__(text)


_STORAGE_MODULES = ("optuna", "sqlalchemy", "psycopg", "pymysql", "redis")


def _in_storage_call(frame) -> bool:
    """Is the interrupted code inside Optuna or a database driver (where an exception could leave a
    connection half-way through a query)?"""
    while frame is not None:
        if frame.f_globals.get("__name__", "").partition(".")[0] in _STORAGE_MODULES:
            return True
        frame = frame.f_back
    return False


def budget_target(study: optuna.Study, *, add: int | None, total: int | None) -> tuple[int | None, int | None]:
    """(total budget, trials still to start): ``add`` trials on top of those used so far, else ``total``."""
    used = TrialCount.of(study.get_trials(deepcopy=False)).used
    target = used + add if add is not None else total
    return target, (None if target is None else max(target - used, 0))


class TrialLoop:
    """Runs trials of ``study`` in this process until the study's shared budget is reached."""

    def __init__(
        self,
        study: optuna.Study,
        *,
        storage,
        url: str,
        options,
        objective: Callable[[optuna.Trial], Any],
        n_trials: int | None,
        timeout: float | None = None,
        callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
        sampler_for: Callable[[int], optuna.samplers.BaseSampler] | None = None,
        graceful_sigterm: bool = False,
        nothing_new: Callable[[], str | None] | None = None,
    ):
        self.study = study
        self.storage = storage  # the storage open_storage returned (heartbeats are recorded through it)
        self.objective = objective
        self.n_trials = n_trials
        self.timeout = timeout
        self.callbacks = list(callbacks)
        self.gate = gate_for(url, storage, study.study_name)  # count + reservation under the study's lock
        self.sampler_for = sampler_for  # None: the study's own sampler for every trial
        # Why no new trial could differ from those in the study (a finite space all tried), or None.
        self.nothing_new = nothing_new
        self.stopped_because: str | None = None
        self.heartbeat = heartbeat_settings(storage)
        self.requeue = retry_callback(options)
        # Signals whose first arrival lets the running trial finish (SIGTERM only when asked: see above).
        self.graceful_signals = {signal.SIGINT, signal.SIGTERM} if graceful_sigterm else {signal.SIGINT}
        self.stop_signal: int | None = None  # the first stop signal: the loop starts no new trial
        self._abort_signal: int | None = None  # set once the running trial is to be aborted
        self._current: int | None = None  # number of the trial being run
        self._last_finished: int | None = None
        self._in_trial = False
        self._wake = threading.Event()
        self._resend: threading.Timer | None = None
        self._silent_since: dict[int, float] = {}  # running trials seen without a heartbeat, and since when
        self._stale_checked_at: float | None = None
        self.trials_run = 0

    # -- stopping ---------------------------------------------------------------------------------

    def request_stop(self, signum: int, frame=None) -> None:
        """Signal handler: the first graceful signal lets the running trial finish; any other aborts it."""
        self._wake.set()
        if self._abort_signal is None:
            if self.stop_signal is None:
                self.stop_signal = signum
                if signum in self.graceful_signals:
                    if self._in_trial:
                        self._announce_finishing()
                    return
            self._abort_signal = signum
        if not self._in_trial:
            return
        if _in_storage_call(frame):
            # Never break off a database call half-way: ask again in a moment.
            self._resend = threading.Timer(0.05, self._resend_signal, args=(signum,))
            self._resend.start()
            return
        self._in_trial = False
        raise StopRequested(self._abort_signal)

    def _announce_finishing(self) -> None:
        announce_from_handler(f"tuneflow: {signal.Signals(self.stop_signal).name}: finishing trial {self._current}, "
                              "then stopping (press Ctrl-C again to abort it: it is failed and re-queued)")

    def _resend_signal(self, signum: int) -> None:
        if self._in_trial:
            os.kill(os.getpid(), signum)

    @contextlib.contextmanager
    def signals_handled(self):
        """SIGTERM / SIGINT go to :meth:`request_stop` (only the main thread can install handlers)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, self.request_stop) for s in STOP_SIGNALS}
        try:
            yield
        finally:
            if self._resend is not None:
                self._resend.join()  # no signal of ours may arrive once the old handlers are back
            for s, handler in previous.items():
                signal.signal(s, handler)

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> int:
        """Run trials; returns how many this process ran. Re-raises :class:`StopRequested` when stopped."""
        started = time.monotonic()
        with self.signals_handled(), _optimize_contract(self.study):
            while self.stop_signal is None and not self.study._stop_flag:
                if self.timeout is not None and time.monotonic() - started >= self.timeout:
                    break
                self._fail_stale_trials()
                if self._nothing_new_to_try():
                    break
                trial = self._admit()
                if trial is not None:
                    self._run_one(trial)
                elif self._others_running():
                    self._wake.wait(min(self.heartbeat[0], 5.0))  # one of them may die and come back
                else:
                    break
        if self._abort_signal is not None:
            raise StopRequested(self._abort_signal)
        if self.stop_signal is not None:
            raise StopRequested(self.stop_signal, graceful=True, last_trial=self._last_finished)
        return self.trials_run

    def _fail_stale_trials(self) -> None:
        # A trial only turns stale after a whole grace period, so looking more than once per heartbeat
        # interval finds nothing new; with short trials and many workers the query is not free.
        now = time.monotonic()
        if self.heartbeat and (self._stale_checked_at is None or now - self._stale_checked_at >= self.heartbeat[0]):
            self._stale_checked_at = now
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)

    def _nothing_new_to_try(self) -> bool:
        """A finite space with every configuration tried, budget left and no waiting trial: stop rather than repeat one."""
        if self.nothing_new is None:
            return False
        count = TrialCount.of(self.study.get_trials(deepcopy=False))
        if count.waiting or (self.n_trials is not None and count.used >= self.n_trials):
            return False  # a queued trial still runs; a spent budget ends the loop as it always did
        self.stopped_because = self.nothing_new()
        if self.stopped_because is not None:
            print(f"tuneflow: {self.stopped_because}; stopping before the budget is spent", file=sys.stderr)
        return self.stopped_because is not None

    def _admit(self) -> optuna.Trial | None:
        trial_id = self.gate.reserve(self.study, self.n_trials)
        if trial_id is None:
            return None
        if self.heartbeat:
            self.storage.record_heartbeat(trial_id)  # Optuna's own loop beats at once, too
        if self.sampler_for is not None:
            self.study.sampler = self.sampler_for(self.storage.get_trial_number_from_id(trial_id))
        # What study.ask() does after creating the trial: samplers then read a fresh trial list.
        self.study._thread_local.cached_all_trials = None
        try:
            trial = optuna.Trial(self.study, trial_id)
        except SpaceExhausted as err:  # another worker took the last untried configuration meanwhile
            self.storage.set_trial_user_attr(trial_id, "fail_reason", f"{err}: nothing new to try")
            self.storage.set_trial_user_attr(trial_id, "training_samples", 0)
            self.storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
            self.stopped_because = str(err)
            print(f"tuneflow: {err}; stopping before the budget is spent", file=sys.stderr)
            self.study.stop()
            return None
        trial.set_user_attr("worker", worker_id())
        return trial

    def _others_running(self) -> bool:
        """Are trials still running elsewhere that may die and come back for a retry?

        Those with a heartbeat, and those without one for less than a grace period (just started,
        first beat on its way); a trial silent for longer never had heartbeats (an old crash, or
        heartbeats off there) and waiting for it would never end — `tuneflow cleanup` handles it.
        """
        if not self.heartbeat:
            return False
        from tuneflow.fleet.monitor import heartbeat_ages

        running = {t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        beating = heartbeat_ages(self.storage, self.study)
        now = time.monotonic()
        for number in running - beating.keys():
            self._silent_since.setdefault(number, now)
        return any(n in beating or now - self._silent_since[n] < self.heartbeat[1] for n in running)

    def _run_one(self, trial: optuna.Trial) -> None:
        value, state = None, TrialState.FAIL
        try:
            with self._beating(trial):
                try:
                    self._current, self._in_trial = trial.number, True
                    # A signal that arrived while the trial was being created: it exists now, so a graceful
                    # stop runs it (nothing is failed); an abort fails and re-queues it.
                    if self._abort_signal is not None:
                        raise StopRequested(self._abort_signal)
                    if self.stop_signal is not None:
                        self._announce_finishing()
                    value = self.objective(trial)
                    state = TrialState.COMPLETE
                finally:
                    self._in_trial = False
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except StopRequested as stop:
            self._stopped(trial, stop)
            return
        except Exception as err:  # recorded as FAIL (the objective stored fail_reason); the worker goes on
            logging.getLogger("tuneflow").debug("trial %d failed: %r", trial.number, err)
        self.trials_run += 1
        self._last_finished = trial.number
        frozen = self._tell(trial, value if state == TrialState.COMPLETE else None, state)
        # An exception kept the trial's frames (model, optimizer, batches) alive until now: collect them.
        release_memory(collect=state != TrialState.COMPLETE)
        if frozen is not None:
            for callback in self.callbacks:
                callback(self.study, frozen)

    def _tell(self, trial: optuna.Trial, value, state: TrialState) -> FrozenTrial | None:
        try:
            return self.study.tell(trial, value, state=state)
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            # Another worker (or `tuneflow cleanup`) took it for dead, failed and re-queued it.
            print(f"tuneflow: trial {trial.number} was failed elsewhere (its heartbeat looked stale); carrying on", file=sys.stderr)
            return None

    def _stopped(self, trial: optuna.Trial, stop: StopRequested) -> None:
        """Record the interrupted trial as FAIL and re-queue it, so it is neither lost nor left RUNNING."""
        try:
            trial.set_user_attr("fail_reason", str(stop))
        except Exception as err:  # e.g. failed meanwhile as stale; telling below sorts that out
            print(f"tuneflow: could not record why trial {trial.number} stopped: {type(err).__name__}", file=sys.stderr)
        frozen = self._tell(trial, None, TrialState.FAIL)
        if frozen is not None and frozen.state == TrialState.FAIL:
            self.requeue(self.study, frozen)
        release_memory(collect=True)

    @contextlib.contextmanager
    def _beating(self, trial: optuna.Trial):
        """Record the trial's heartbeat every interval while it runs (Optuna's optimize does the same)."""
        if not self.heartbeat:
            yield
            return
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat[0]):
                with contextlib.suppress(Exception):  # a missed beat is covered by the grace period
                    self.storage.record_heartbeat(trial._trial_id)

        thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def announce_from_handler(line: str, *, to_stdout: bool = False) -> None:
    """Print one line (stderr by default) from a short-lived thread: a signal handler that wrote it itself could
    interrupt the main thread's own write to the stream (``RuntimeError: reentrant call``); a thread waits instead."""
    threading.Thread(target=lambda: print(line, file=sys.stdout if to_stdout else sys.stderr, flush=True), daemon=True).start()


@contextlib.contextmanager
def _optimize_contract(study: optuna.Study):
    """Set up what ``study.optimize`` would, so a sampler or callback may call ``study.stop()``
    (the grid sampler does when its grid is done); the loop honours the flag. Optuna keeps both
    in private attributes: our loop stands in for ``optimize``, which cannot count under a lock."""
    study._stop_flag = False
    study._thread_local.in_optimize_loop = True
    try:
        yield
    finally:
        study._thread_local.in_optimize_loop = False
        study._storage.remove_session()

"""A plain progress line per finished trial: counts by state and the best value so far."""

from __future__ import annotations

import sys
import time
from collections import Counter

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuneflow.observe.tables import format_values
from tuneflow.study.results import is_pareto


class ProgressPrinter:
    """Optuna callback; prints to stderr so stdout stays clean for tables and JSON."""

    def __init__(self, study: optuna.Study, *, total: int | None, quiet: bool = False, stream=None, live: bool | None = None, console=None):
        """``console``: a ``rich.console.Console`` to draw on (tests pass one writing to a StringIO); it
        then decides live or plain by whether it is a terminal, and ``stream`` is its file."""
        self.study = study
        self.total = total
        self.quiet = quiet
        self.stream = console.file if console is not None else (stream or sys.stderr)
        self.started = time.monotonic()
        self.counts: Counter[str] = Counter()
        # On a terminal a live status block (live_display.py) sits under these lines; elsewhere plain lines only.
        from tuneflow.observe.live_display import LiveDisplay, is_live_terminal

        if live is None:
            live = (console.is_terminal and not console.is_dumb_terminal) if console is not None else is_live_terminal(self.stream)
        self.live = LiveDisplay(study, total=total, stream=self.stream, console=console) if live and not quiet else None

    def _print(self, line: str) -> None:
        if self.live is not None:
            self.live.log(line)
        elif not self.quiet:
            print(line, file=self.stream, flush=True)

    def start(self) -> None:
        # Trials queued for this run (coverage of the arms, the prior's pick) are not earlier work: only
        # finished ones make this a resumed study.
        finished = len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)))
        queued = len(self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        target = "until the timeout" if self.total is None else f"{self.total} trial(s)"
        resumed = f", resuming after {finished} finished trial(s)" if finished else ""
        waiting = f", {queued} of them queued (coverage of the arms, the prior or a warm start)" if queued else ""
        self._print(f"study {self.study.study_name!r}: running {target}{resumed}{waiting}")
        if self.live is not None:
            self.live.start()

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.counts[trial.state.name] += 1
        if self.live is not None:
            self.live.trial_finished()
        done = sum(self.counts.values())
        of = f"/{self.total}" if self.total else ""
        if trial.state == TrialState.COMPLETE:
            outcome = f"value {format_values(trial.values)} (acc {trial.user_attrs.get('accuracy', float('nan')):.3f}, f1 {trial.user_attrs.get('f1', float('nan')):.3f})"
        elif trial.state == TrialState.PRUNED:
            outcome = f"pruned: {trial.user_attrs.get('prune_reason', '')}"
        else:
            outcome = f"failed: {trial.user_attrs.get('fail_reason', 'see log')}"
        params = trial.user_attrs.get("params", {})
        what = f"{params.get('mapping', '?')}/{params.get('method', '?')}"
        if trial.user_attrs.get("source"):  # several sources: which one this trial transferred from
            what += f" from {trial.user_attrs['source']}"
        self._print(
            f"[{done}{of}] trial {trial.number} {what} {outcome} | "
            f"complete {self.counts['COMPLETE']}, pruned {self.counts['PRUNED']}, failed {self.counts['FAIL']} | "
            f"best {self._best(study)} | {time.monotonic() - self.started:.0f}s"
        )

    @staticmethod
    def _best(study: optuna.Study) -> str:
        if is_pareto(study):
            return f"Pareto front of {len(study.best_trials)}"  # several trials can be best at once
        try:
            best = study.best_trial
        except ValueError:
            return "-"
        return f"{best.value:.4f} (trial {best.number})"

    def finish(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None  # the closing line is a plain one
        self._print(
            f"done: complete {self.counts['COMPLETE']}, pruned {self.counts['PRUNED']}, failed {self.counts['FAIL']}"
            f" in {time.monotonic() - self.started:.0f}s; best {self._best(self.study)}"
        )

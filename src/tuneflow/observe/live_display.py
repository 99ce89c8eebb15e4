"""A live status block on a terminal: trial counts, best so far, the running trial, elapsed / left.

The objective publishes each evaluation with :func:`publish_evaluation` (a reference swap: no lock, no
I/O). :class:`LiveDisplay` is a ``rich.live.Live`` that rebuilds a small ``rich.table.Table`` from it
once a second (the study's counts are re-read from storage only when a trial ends), while per-trial
log lines are printed above it with ``Live.console.print``. Off a terminal ``progress.py`` prints its
plain per-trial lines and nothing else.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import optuna
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class TrialStatus:
    """The latest evaluation of the trial running in this process."""

    trial: int
    evaluation: int
    value: float
    metrics: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None  # set when evaluations happen once per epoch
    at: float = 0.0


_current: TrialStatus | None = None


def publish_evaluation(trial: int, evaluation: int, *, value: float, metrics: dict[str, Any], epochs: int | None) -> None:
    """Called by the objective after each evaluation; the display reads it on its next redraw."""
    global _current
    headline = {k: metrics[k] for k in ("accuracy", "f1") if k in metrics}
    _current = TrialStatus(trial, evaluation, float(value), headline, epochs, time.monotonic())


def current_status() -> TrialStatus | None:
    return _current


def is_live_terminal(stream: TextIO) -> bool:
    """A terminal that understands cursor movement (not a pipe, file, CI log or TERM=dumb).

    Decided here rather than by rich, which also treats ``FORCE_COLOR`` (set in many CI setups) as a
    terminal: a CI log must get the plain lines.
    """
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM", "") != "dumb"


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


class LiveDisplay:
    """The status block under the log lines; ``log`` prints a line above it (rich serialises writes)."""

    def __init__(
        self,
        study: optuna.Study,
        *,
        total: int | None,
        stream: TextIO | None = None,
        console: Console | None = None,
        refresh_seconds: float = 1.0,
        width: int | None = None,
    ):
        self.study = study
        self.total = total
        stream = stream if stream is not None else sys.stderr
        # The caller already decided this is a terminal (is_live_terminal), so rich is told, not asked.
        self.console = console or Console(file=stream, force_terminal=True, width=width, highlight=False)
        self.refresh_seconds = refresh_seconds
        self.started = time.monotonic()
        self.finished_here = 0  # trials this process finished (for the time estimate)
        self.counts: dict[str, int] = {}
        self.best: str = "—"
        self._active_since: float | None = None
        self._live: Live | None = None

    # --- state ---

    def refresh(self) -> None:
        """Counts and best trial of the whole study (all workers), read from storage."""
        trials = self.study.get_trials(deepcopy=False)
        counts: dict[str, int] = {}
        for t in trials:
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        self.counts = counts
        self.best = self._best()

    def _best(self) -> str:
        if len(self.study.directions) > 1:
            front = self.study.best_trials if self.counts.get("COMPLETE") else []
            return f"Pareto front of {len(front)} trial(s)" if front else "—"
        try:
            best = self.study.best_trial
        except ValueError:
            return "—"
        params = " ".join(f"{k}={_short(v)}" for k, v in best.params.items())
        return f"{best.value:.4f} (trial {best.number}) {params}".rstrip()

    def rows(self) -> list[tuple[str, str]]:
        """The block's content as (label, text) rows: what the table shows, without its styling."""
        c = self.counts
        done = c.get("COMPLETE", 0) + c.get("PRUNED", 0) + c.get("FAIL", 0)
        running = c.get("RUNNING", 0) + (1 if self._active_since is not None else 0)
        of = f" (this run: {self.finished_here}/{self.total})" if self.total else ""
        status = current_status()
        if self._active_since is None:
            now = "waiting for the next trial"
        elif status is None or status.at < self._active_since:
            now = "a new trial is training (no evaluation yet)"
        else:
            step = (
                f"epoch {status.evaluation + 1}/{status.epochs}"
                if status.epochs and status.evaluation < status.epochs
                else f"evaluation {status.evaluation + 1}"
            )
            metrics = " · ".join(f"{k} {v:.4f}" for k, v in status.metrics.items())
            now = f"trial {status.trial}: {step} · objective {status.value:.4f}" + (f" · {metrics}" if metrics else "")
        elapsed = time.monotonic() - self.started
        left = "—"
        if self.total and self.finished_here:
            left = "~" + _clock(elapsed / self.finished_here * max(self.total - self.finished_here, 0))
        return [
            ("trials", (f"done {done}{of} · complete {c.get('COMPLETE', 0)} · pruned {c.get('PRUNED', 0)}"
                        f" · failed {c.get('FAIL', 0)} · running {running}")),
            ("best", self.best),
            ("now", now),
            ("time", f"{_clock(elapsed)} elapsed · {left} left"),
        ]

    def renderable(self) -> RenderableType:
        """The block: the study's name, a two-column table (one line a row, cut with … rather than
        wrapped, so the block keeps its height) and, when the run has a trial count, a bar of this
        run's finished trials."""
        table = Table(show_header=False, box=None, padding=(0, 1), expand=False)
        table.add_column(style="bold cyan", no_wrap=True, min_width=6)
        # The cells (not the column) say no_wrap: a no_wrap column is never narrowed, only cropped
        # without the "…", while a narrowed column hands its cells a width they can cut to.
        table.add_column()
        for label, text in self.rows():
            table.add_row(label, Text(text, no_wrap=True, overflow="ellipsis"))
        parts: list[RenderableType] = [
            Text(f"study {self.study.study_name!r}", style="bold", no_wrap=True, overflow="ellipsis"),
            table,
        ]
        if self.total:
            parts.append(ProgressBar(total=self.total, completed=min(self.finished_here, self.total), width=30))
        return Group(*parts)

    def __rich__(self) -> RenderableType:
        return self.renderable()

    # --- drawing ---

    def redraw(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def log(self, line: str) -> None:
        """A line that stays: printed above the block (rich redraws the block under it)."""
        # markup/highlight off: a log line is plain text ("[1/3] trial ...") and keeps its look.
        self.console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)

    # --- lifecycle ---

    def start(self) -> None:
        self.refresh()
        self._active_since = time.monotonic()
        self._live = Live(
            self,  # rendered through __rich__ at every draw, so the block under a new log line is fresh too
            console=self.console,
            refresh_per_second=1.0 / self.refresh_seconds,
            transient=True,  # erased on stop: the closing plain line is the last thing on screen
            # Stray writes to stderr (warnings, the prior's progress lines) go above the block instead
            # of through it; stdout is left alone (it may be piped while stderr is a terminal).
            redirect_stderr=self.console.file is sys.stderr,
            redirect_stdout=False,
        )
        self._live.start(refresh=True)
        # rich hides the cursor while the block is up: a run cut short (Ctrl-C) must still give it back.
        atexit.register(self.stop)

    def trial_finished(self) -> None:
        """From the Optuna callback (main thread): re-read the study; the next trial starts now."""
        self.finished_here += 1
        self.refresh()
        more = self.total is None or self.finished_here < self.total
        self._active_since = time.monotonic() if more else None

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self._live is not None:
            self._live.stop()
            self._live = None

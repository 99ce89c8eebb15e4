"""A live status block on a terminal: trial counts, best so far, the running trial, elapsed / left.

The objective publishes each evaluation with :func:`publish_evaluation` (a reference swap, no lock,
no I/O); :class:`LiveDisplay` redraws a few lines at the bottom of the terminal with plain ANSI
escapes (no extra dependency) once a second and whenever a trial ends, while per-trial log lines
scroll above it. Off a terminal the plain per-trial lines of ``progress.py`` are all there is.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import optuna


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
    """A terminal that understands cursor movement (not a pipe, file, CI log or TERM=dumb)."""
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
    """Redraws a status block; ``log`` prints a line above it. Thread-safe (one lock around writes)."""

    def __init__(self, study: optuna.Study, *, total: int | None, stream: TextIO, refresh_seconds: float = 1.0, width: int | None = None):
        self.study = study
        self.total = total
        self.stream = stream
        self.refresh_seconds = refresh_seconds
        self.width = width
        self.started = time.monotonic()
        self.finished_here = 0  # trials this process finished (for the time estimate)
        self.counts: dict[str, int] = {}
        self.best: str = "—"
        self._drawn = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._showing = False
        self._active_since: float | None = None

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

    def lines(self) -> list[str]:
        """The status block, one string per line (no escapes)."""
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
            f"study {self.study.study_name!r}: done {done}{of} · complete {c.get('COMPLETE', 0)} · pruned {c.get('PRUNED', 0)}"
            f" · failed {c.get('FAIL', 0)} · running {running}",
            f"best {self.best}",
            f"now  {now}",
            f"time {_clock(elapsed)} elapsed · {left} left",
        ]

    # --- drawing ---

    def _columns(self) -> int:
        return self.width or shutil.get_terminal_size((100, 24)).columns

    def _erase(self) -> None:
        if self._drawn:
            # Up to the first line of the block, column 1, then clear to the end of the screen.
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        if not self._showing:
            return  # before start / after stop: log lines only
        width = max(self._columns() - 1, 20)  # never wrap: wrapping would break the cursor arithmetic
        block = [line if len(line) <= width else line[: width - 1] + "…" for line in self.lines()]
        self.stream.write("".join(line + "\n" for line in block))
        self._drawn = len(block)

    def redraw(self) -> None:
        with self._lock:
            self._erase()
            self._draw()
            self.stream.flush()

    def log(self, line: str) -> None:
        """A line that stays (scrolls above the block)."""
        with self._lock:
            self._erase()
            self.stream.write(line + "\n")
            self._draw()
            self.stream.flush()

    # --- lifecycle ---

    def start(self) -> None:
        self.refresh()
        self._active_since = time.monotonic()
        self._showing = True
        self.redraw()
        self._ticker = threading.Thread(target=self._tick, name="tuneflow-live-display", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.redraw()

    def trial_finished(self) -> None:
        """From the Optuna callback (main thread): re-read the study; the next trial starts now."""
        self.finished_here += 1
        self.refresh()
        more = self.total is None or self.finished_here < self.total
        self._active_since = time.monotonic() if more else None

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._erase()
            self._showing = False
            self.stream.flush()

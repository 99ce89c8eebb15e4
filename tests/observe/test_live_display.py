"""Progress output: plain lines off a terminal, a live status block on one, nothing with --quiet."""

from __future__ import annotations

import io
import re

import optuna
from rich.console import Console

from tuneflow.observe.live_display import LiveDisplay, publish_evaluation
from tuneflow.observe.progress import ProgressPrinter

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal(io.StringIO):
    """A text stream that says it is a terminal (what stderr is in an interactive shell)."""

    def isatty(self) -> bool:
        return True


# Set by a test to redraw the live block right after each evaluation (what the once-a-second tick
# does in a real run), so the test sees the running trial without waiting on a clock.
AFTER_EVALUATION: list = []


def _objective(trial: optuna.Trial) -> float:
    """Reports like tuneflow's objective: two evaluations, published to the live display, pruning on."""
    lr = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    trial.set_user_attr("params", {"mapping": "direct", "method": "full"})
    for step in range(2):
        value = 0.5 + step * 0.1 + lr
        publish_evaluation(trial.number, step, value=value, metrics={"accuracy": value, "f1": value - 0.1}, epochs=2)
        for hook in AFTER_EVALUATION:
            hook()
        trial.report(value, step)
        if trial.number == 2:
            trial.set_user_attr("prune_reason", "pruned after evaluation 0")
            raise optuna.TrialPruned()
    trial.set_user_attr("accuracy", value)
    trial.set_user_attr("f1", value - 0.1)
    return value


def _run(stream=None, *, quiet: bool = False, n_trials: int = 3, console: Console | None = None, redraw: bool = False) -> ProgressPrinter:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0), study_name="live")
    progress = ProgressPrinter(study, total=n_trials, quiet=quiet, stream=stream, console=console)
    progress.start()
    if redraw:
        AFTER_EVALUATION.append(progress.live.redraw)
    try:
        study.optimize(_objective, n_trials=n_trials, callbacks=[progress])
    finally:
        AFTER_EVALUATION.clear()
    progress.finish()
    return progress


def terminal_console(width: int = 120) -> Console:
    """A real rich console that believes it is a terminal and writes into a string."""
    return Console(file=io.StringIO(), force_terminal=True, width=width)


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    _run(stream)
    lines = stream.getvalue().splitlines()
    assert not ANSI.search(stream.getvalue())
    assert lines[0] == "study 'live': running 3 trial(s)"
    assert lines[1].startswith("[1/3] trial 0 direct/full value ") and "complete 1, pruned 0, failed 0" in lines[1]
    assert lines[3].startswith("[3/3] trial 2 direct/full pruned: pruned after evaluation 0")
    assert lines[4].startswith("done: complete 2, pruned 1, failed 0")
    assert len(lines) == 5


def test_live_block_on_a_terminal():
    console = terminal_console()
    _run(console=console, redraw=True)
    out = console.file.getvalue()
    assert "\x1b[" in out  # the block is redrawn in place
    text = ANSI.sub("", out)
    # The log lines survive, exactly as they read off a terminal.
    assert "[1/3] trial 0 direct/full value " in text and "done: complete 2, pruned 1, failed 0" in text
    assert "[3/3] trial 2 direct/full pruned: pruned after evaluation 0" in text
    # Every state of the run was drawn: counts before any trial and after the last, the best so far
    # with its parameters, the running trial's latest evaluation, the clock.
    for field in ("study 'live'", "done 0 (this run: 0/3) · complete 0 · pruned 0 · failed 0 · running 1",
                  "done 1 (this run: 1/3) · complete 1 · pruned 0 · failed 0 · running 1",
                  "done 3 (this run: 3/3) · complete 2 · pruned 1 · failed 0 · running 0",
                  "best    0.6", "learning_rate=", "now     trial 1: epoch 2/2 · objective 0.6",
                  "now     trial 2: epoch 1/2 · objective 0.5", "waiting for the next trial", "elapsed · ~0:00:0"):
        assert field in text, field
    # The block is erased before the closing line, which is the last thing left on the screen.
    after_erase = out.rsplit("\x1b[2K", 1)[1]
    assert ANSI.sub("", after_erase).strip() == text.rstrip("\n").splitlines()[-1]
    assert text.rstrip("\n").splitlines()[-1].startswith("done: complete 2, pruned 1, failed 0")


def test_a_terminal_stream_gets_the_live_block_and_dumb_terminals_plain_lines(monkeypatch):
    monkeypatch.delenv("TERM", raising=False)
    stream = Terminal()
    progress = _run(stream)
    assert "\x1b[" in stream.getvalue() and "done 3 (this run: 3/3)" in ANSI.sub("", stream.getvalue())
    assert progress.live is None  # stopped by finish()
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich alone would take this for a terminal
    dumb = Terminal()
    _run(dumb)
    assert not ANSI.search(dumb.getvalue()) and len(dumb.getvalue().splitlines()) == 5


def _shown(display: LiveDisplay, width: int) -> list[str]:
    console = terminal_console(width)
    console.print(display.renderable())
    return ANSI.sub("", console.file.getvalue()).splitlines()


def test_block_fields_for_a_running_trial():
    study = optuna.create_study(direction="maximize", study_name="fields")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    display = LiveDisplay(study, total=4, console=terminal_console())
    display.refresh()
    display.finished_here = 1
    display._active_since = 0.0  # a trial is running in this process (since the clock's start)
    publish_evaluation(7, 1, value=0.8123, metrics={"accuracy": 0.85, "f1": 0.8, "per_class_f1": {}}, epochs=3)
    (_, header), (_, best), (_, now), (_, time_line) = display.rows()
    assert header == "done 1 (this run: 1/4) · complete 1 · pruned 0 · failed 0 · running 1"
    assert best.startswith(f"{study.best_value:.4f} (trial 0) x=")
    assert now == "trial 7: epoch 2/3 · objective 0.8123 · accuracy 0.8500 · f1 0.8000"
    assert re.fullmatch(r"\d+:\d\d:\d\d elapsed · ~\d+:\d\d:\d\d left", time_line)
    shown = [line.rstrip() for line in _shown(display, 200)]
    assert shown[0] == "study 'fields'"
    assert shown[1:5] == [f" trials  {header}", f" best    {best}", f" now     {now}", f" time    {time_line}"]
    assert len(shown) == 6 and set(shown[5].strip()) <= set("━╸╺")  # the bar of this run's trials
    assert display.renderable().renderables[-1].completed == 1
    publish_evaluation(7, 5, value=0.9, metrics={}, epochs=None)  # evaluations every N steps: no epoch count
    assert display.rows()[2] == ("now", "trial 7: evaluation 6 · objective 0.9000")
    assert " now     trial 7: evaluation 6 · objective 0.9000" in _shown(display, 200)[3]


def test_lines_never_wrap():
    study = optuna.create_study(study_name="a-study-with-a-rather-long-name-indeed-and-then-some")
    study.optimize(lambda t: t.suggest_float("a_long_parameter_name", 0, 1), n_trials=1)
    display = LiveDisplay(study, total=None, console=terminal_console(40), refresh_seconds=60)
    display.start()
    display.stop()
    drawn = [line for line in ANSI.sub("", display.console.file.getvalue()).splitlines() if line.strip()]
    # Drawn on start and once more on stop (then erased): each time the name + 4 rows, no bar without
    # a trial count; long lines are cut with "…", never wrapped, and the labels keep their width.
    assert len(drawn) == 10 and drawn[:5] == drawn[5:] and all(len(line) <= 40 for line in drawn), drawn
    assert drawn[0].endswith("…") and [line.split()[0] for line in drawn[1:5]] == ["trials", "best", "now", "time"]
    assert drawn[2].rstrip().endswith("…")  # the best trial's parameters did not fit


def test_quiet_prints_nothing_even_on_a_terminal():
    stream = Terminal()
    progress = _run(stream, quiet=True)
    assert stream.getvalue() == "" and progress.live is None


def test_queued_trials_are_not_called_earlier_work():
    # A fresh study whose coverage trials were queued before the run is not "resuming".
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"x": 0.5})
    study.enqueue_trial({"x": 0.1})
    stream = io.StringIO()
    ProgressPrinter(study, total=4, stream=stream, live=False).start()
    assert "resuming" not in stream.getvalue() and "2 of them queued" in stream.getvalue()
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    stream = io.StringIO()
    ProgressPrinter(study, total=4, stream=stream, live=False).start()
    assert "resuming after 1 finished trial(s), 1 of them queued" in stream.getvalue()

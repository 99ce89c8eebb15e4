"""Progress output: plain lines off a terminal, a live status block on one, nothing with --quiet."""

from __future__ import annotations

import io
import re

import optuna

from tuneflow.observe.live_display import LiveDisplay, publish_evaluation
from tuneflow.observe.progress import ProgressPrinter

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Terminal(io.StringIO):
    """A text stream that says it is a terminal (what stderr is in an interactive shell)."""

    def isatty(self) -> bool:
        return True


def _objective(trial: optuna.Trial) -> float:
    """Reports like tuneflow's objective: two evaluations, published to the live display, pruning on."""
    lr = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    trial.set_user_attr("params", {"mapping": "direct", "method": "full"})
    for step in range(2):
        value = 0.5 + step * 0.1 + lr
        publish_evaluation(trial.number, step, value=value, metrics={"accuracy": value, "f1": value - 0.1}, epochs=2)
        trial.report(value, step)
        if trial.number == 2:
            trial.set_user_attr("prune_reason", "pruned after evaluation 0")
            raise optuna.TrialPruned()
    trial.set_user_attr("accuracy", value)
    trial.set_user_attr("f1", value - 0.1)
    return value


def _run(stream, *, quiet: bool = False, n_trials: int = 3) -> ProgressPrinter:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0), study_name="live")
    progress = ProgressPrinter(study, total=n_trials, quiet=quiet, stream=stream)
    progress.start()
    study.optimize(_objective, n_trials=n_trials, callbacks=[progress])
    progress.finish()
    return progress


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
    stream = Terminal()
    _run(stream)
    out = stream.getvalue()
    assert "\x1b[" in out  # the block is redrawn in place
    text = ANSI.sub("", out)
    # The log lines survive, and the block showed every field at least once.
    assert "[1/3] trial 0 direct/full value " in text and "done: complete 2, pruned 1, failed 0" in text
    for field in ("study 'live': done 0 (this run: 0/3) · complete 0 · pruned 0 · failed 0 · running 1",
                  "done 3 (this run: 3/3) · complete 2 · pruned 1 · failed 0", "best 0.6", "learning_rate=",
                  "elapsed", "left"):
        assert field in text, field
    # The last thing written leaves the terminal clean: the block was erased before the final line.
    assert out.rstrip("\n").endswith(text.rstrip("\n").splitlines()[-1])


def test_block_fields_for_a_running_trial():
    study = optuna.create_study(direction="maximize", study_name="fields")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    display = LiveDisplay(study, total=4, stream=Terminal(), width=200)
    display.refresh()
    display.finished_here = 1
    display._active_since = 0.0  # a trial is running in this process (since the clock's start)
    publish_evaluation(7, 1, value=0.8123, metrics={"accuracy": 0.85, "f1": 0.8, "per_class_f1": {}}, epochs=3)
    header, best, now, time_line = display.lines()
    assert header == "study 'fields': done 1 (this run: 1/4) · complete 1 · pruned 0 · failed 0 · running 1"
    assert best.startswith(f"best {study.best_value:.4f} (trial 0) x=")
    assert now == "now  trial 7: epoch 2/3 · objective 0.8123 · accuracy 0.8500 · f1 0.8000"
    assert re.fullmatch(r"time \d+:\d\d:\d\d elapsed · ~\d+:\d\d:\d\d left", time_line)
    publish_evaluation(7, 5, value=0.9, metrics={}, epochs=None)  # evaluations every N steps: no epoch count
    assert display.lines()[2] == "now  trial 7: evaluation 6 · objective 0.9000"


def test_lines_never_wrap():
    study = optuna.create_study(study_name="a-study-with-a-rather-long-name-indeed")
    display = LiveDisplay(study, total=None, stream=Terminal(), width=40, refresh_seconds=60)
    display.start()
    display.stop()
    drawn = ANSI.sub("", display.stream.getvalue()).splitlines()
    assert len(drawn) == 4 and all(len(line) <= 39 for line in drawn)


def test_quiet_prints_nothing_even_on_a_terminal():
    stream = Terminal()
    progress = _run(stream, quiet=True)
    assert stream.getvalue() == "" and progress.live is None

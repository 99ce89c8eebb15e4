"""`tuneflow report`: one offline HTML file with every section and Optuna's plots embedded."""

from __future__ import annotations

import html
import re

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

import tuneflow
from tuneflow.observe.report import SECTIONS, build_report

PLOT_DIV = 'class="plotly-graph-div"'


def _sections(text: str) -> dict[str, str]:
    """Section id -> its HTML."""
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', text, flags=re.S))


def test_report_of_a_finished_study(finished_study, run_cli, tmp_path):
    out = tmp_path / "report.html"
    code, stdout, err = run_cli("report", finished_study, "-o", out)
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    sections = _sections(text)
    assert [key for key, _ in SECTIONS] == list(sections)
    for key, title in SECTIONS:
        assert f"<h2>{title}</h2>" in sections[key]
    # Offline: plotly's JavaScript is inlined exactly once, nothing is fetched from the network.
    assert "<script src=" not in text and 'src="http' not in text
    assert len(re.findall(r"\* plotly\.js v\d", text)) == 1  # the library's header comment
    assert text.count("Plotly.newPlot") == text.count(PLOT_DIV) == 4
    # history, importances, parallel coordinates, intermediate values (no Pareto front: one objective)
    for key in ("history", "importances", "parallel", "intermediate"):
        assert sections[key].count(PLOT_DIV) == 1, key
    assert "1 trial(s) were pruned" in sections["intermediate"]
    assert "single-objective study" in sections["pareto"]
    assert f"({text.count(PLOT_DIV)} plots" in stdout
    # Summary, best trials, exported config and transfer table carry the study's facts.
    assert "complete 3, pruned 1" in sections["summary"] and "sqlite:///" in sections["summary"]
    assert "Study note" in sections["summary"] and "Search space" in sections["summary"]
    best = optuna.load_study(study_name="tiny", storage=f"sqlite:///{finished_study.parent / 'tiny.db'}").best_trial
    assert f"{best.user_attrs['f1']:.4f}" in sections["best-trials"]
    assert "tuneflow_export: 1" in sections["best-config"] and f"trial: {best.number}" in sections["best-config"]
    assert "by mapping strategy" in sections["transfer"] and "by fine-tuning method" in sections["transfer"]
    assert "—" in sections["transfer"]  # this study measured no transfer gain
    assert sections["images"].count('src="data:image/png;base64,') == 2  # the best trial's images, inlined
    # The verdict comes first and says what `tuneflow.verdict` says; one seed each: no seed noise, no finding.
    verdict = tuneflow.verdict(finished_study)
    assert list(sections)[0] == "verdict" and html.escape(verdict.summary) in sections["verdict"]
    assert verdict.outcome == "unresolved" and "seed noise unmeasured" in verdict.summary
    # Pruned and failed trials: where the pruned one stopped, the threshold it fell below, the compute saved.
    (row,) = re.findall(r"<tr><td[^>]*>3</td>(.*?)</tr>", sections["pruned"])
    assert "pruned" in row and "1.1000" in row and "threshold" in sections["pruned"]
    assert "pruning saved" in sections["pruned"]


def _trial(values, *, mapping, method, f1, gain=None, state=TrialState.COMPLETE, lr=1e-3, intermediate=None):
    attrs = {"params": {"mapping": mapping, "method": method}, "f1": f1, "accuracy": f1 + 0.05}
    if gain is not None:
        attrs.update({"transfer_gain_f1": gain, "transfer_gain_score": gain / 2, "negative_transfer": gain < 0})
    return create_trial(
        state=state,
        values=values if state == TrialState.COMPLETE else None,
        params={"mapping": mapping, "method": method, "learning_rate": lr},
        distributions={
            "mapping": CategoricalDistribution(["direct", "sequential"]),
            "method": CategoricalDistribution(["full", "lora"]),
            "learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
        },
        user_attrs=attrs,
        intermediate_values=intermediate or {},
    )


def test_pareto_study_gets_a_pareto_front_and_transfer_gains():
    # A hand-made 2-objective study (as the Pareto objective mode writes them): F1 up, training time down.
    study = optuna.create_study(directions=["maximize", "minimize"], study_name="pareto")
    study.set_metric_names(["f1", "training_seconds"])
    for values, mapping, method, gain, lr in [
        ((0.80, 30.0), "sequential", "full", 0.04, 1e-3),
        ((0.70, 10.0), "direct", "lora", None, 3e-3),
        ((0.60, 20.0), "sequential", "lora", -0.02, 5e-4),
        ((0.75, 12.0), "direct", "full", None, 2e-3),
    ]:
        study.add_trial(_trial(list(values), mapping=mapping, method=method, f1=values[0], gain=gain, lr=lr))
    sections = _sections(build_report(study))
    assert sections["pareto"].count(PLOT_DIV) == 1
    assert sections["history"].count(PLOT_DIV) == 1 and sections["parallel"].count(PLOT_DIV) == 1
    assert "Pareto front of" in sections["summary"] and "maximize f1, minimize training_seconds" in sections["summary"]
    assert "no trial reported intermediate values" in sections["intermediate"]
    assert "not available" in sections["best-config"]  # not a tuneflow study: nothing to export
    # transfer table: sequential has gains (mean +0.01, best +0.04 in F1), direct shows —.
    rows = dict(re.findall(r'<tr><td class="l">(\w+)</td>(.*?)</tr>', sections["transfer"]))
    assert "+0.0100" in rows["sequential"] and "+0.0400" in rows["sequential"]
    assert "—" in rows["direct"] and "+" not in rows["direct"]


def test_few_trials_are_explained_not_plotted():
    study = optuna.create_study(direction="maximize", study_name="young")
    study.add_trial(_trial([0.5], mapping="direct", method="full", f1=0.5, intermediate={0: 0.4, 1: 0.5}))
    study.add_trial(_trial(None, mapping="direct", method="lora", f1=0.1, state=TrialState.PRUNED, intermediate={0: 0.1}))
    sections = _sections(build_report(study))
    assert "need at least 2 complete trials; this study has 1" in sections["importances"]
    assert sections["intermediate"].count(PLOT_DIV) == 1
    text = build_report(optuna.create_study(study_name="empty"))
    assert "no complete trial yet" in text and text.count(PLOT_DIV) <= 2  # empty plots at most, never an error


@pytest.mark.parametrize("argv", [["report", "-o", "x.html"], ["report", "--storage", "sqlite:///{tmp}/none.db", "-o", "x.html"]])
def test_report_needs_an_existing_study(run_cli, tmp_path, argv):
    code, _, err = run_cli(*[a.format(tmp=tmp_path) for a in argv])
    assert code == 2 and "error" in err and "Traceback" not in err

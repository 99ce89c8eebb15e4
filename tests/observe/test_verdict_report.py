"""Where the verdict is read: the report's first section, pruned and failed trials, the source table, `best`'s columns."""

from __future__ import annotations

import re

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from tuneflow.observe.report import build_report
from tuneflow.observe.tables import format_table
from tuneflow.observe.verdict_report import verdict_lines
from tuneflow.study.results import ranked_trials
from tuneflow.study.verdict import configuration_gains, study_verdict


def _sections(text: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', text, flags=re.S))


def _study() -> optuna.Study:
    """A direct and a sequential trial from tweets, a pruned and a failed one; `news` listed but never tried."""
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("tuneflow_config", {
        "objective": {"weights": {"accuracy": 1.0}}, "budget": {"n_trials": 4}, "target": {"name": "topics"},
        "search_space": {"mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
                         "source": {"type": "categorical", "choices": ["tweets", "news"]}},
        "sources": [{"name": "tweets"}, {"name": "news"}], "source": {"name": "tweets"},
        "model": {"name": "tiny"}, "seed": 0, "evaluation": {}, "device": "cpu", "storage": None})

    def add(state, mapping, scores=None, **attrs):
        params = {"mapping": mapping, "method": "full", "learning_rate": 1e-4, "epochs": 2}
        user = {"params": params, "source": "tweets" if mapping != "direct" else None, **attrs}
        if scores:
            user.update(seed_values=scores, seeds=[len(study.trials) * 10 + i for i in range(len(scores))],
                        accuracy=float(np.mean(scores)), transfer_gain_score=0.0 if mapping == "direct" else 0.1,
                        transfer_gain_ci=[0.0, 0.0] if mapping == "direct" else [0.05, 0.15])
        study.add_trial(create_trial(state=state, value=float(np.mean(scores)) if scores else None,
                                     params={"mapping": mapping}, user_attrs=user, intermediate_values={50: 0.2},
                                     distributions={"mapping": CategoricalDistribution(["direct", "sequential"])}))

    add(TrialState.COMPLETE, "direct", [0.70, 0.72, 0.71])
    add(TrialState.COMPLETE, "sequential", [0.80, 0.82, 0.14], collapsed_seeds=[12], chance_score=0.34,
        seed_scores_baseline=[0.70, 0.71, 0.72])
    add(TrialState.PRUNED, "sequential", prune_reason="pruned at 50% of its schedule", training_samples=64,
        training_samples_saved=64, pruned_at={"step": 50, "progress": 0.5, "value": 0.2, "threshold": 0.61, "pruner": "MedianPruner"})
    add(TrialState.FAIL, "direct", fail_reason="CUDA out of memory (batch_size 64)", training_samples=0)
    return study


def test_report_opens_with_the_verdict_and_lists_pruned_and_failed_trials():
    study = _study()
    verdict = study_verdict(study)
    sections = _sections(build_report(study))
    assert list(sections)[0] == "verdict"
    assert verdict.summary.split(":")[0] in sections["verdict"] and "collapsed" in sections["verdict"]
    rows = dict(re.findall(r"<tr><td[^>]*>(\d+)</td>(.*?)</tr>", sections["pruned"]))
    assert "50% (step 50)" in rows["2"] and "0.2000" in rows["2"] and "0.6100 (MedianPruner)" in rows["2"]
    assert "pruned at 50% of its schedule" in rows["2"] and "sequential from tweets" in rows["2"]
    assert "failed" in rows["3"] and "CUDA out of memory" in rows["3"]
    assert "pruning saved 64" in sections["pruned"]


def test_source_table_shows_the_reference_and_untried_sources_instead_of_zero_width_intervals():
    sources = _sections(build_report(_study()))["sources"]
    assert "+0.0000, +0.0000" not in sources and "reference (target only)" in sources
    assert "not tried: prior_keep" not in sources and "news" in sources and "not tried: " in sources
    assert "Verdict by source" in sources


def test_best_columns_show_collapsed_seeds_the_study_interval_and_no_interval_for_the_baseline():
    study = _study()
    trials = ranked_trials(study)
    table = format_table(trials, gains=configuration_gains(study, trials))
    header, dashes, *rows = table.splitlines()
    spans = [m.span() for m in re.finditer(r"-+", dashes)]  # each column's place, from the rule under the header
    cut = lambda line: [line[a:b].strip() for a, b in spans]
    cells = {row[0]: dict(zip(cut(header), row)) for row in map(cut, rows)}
    assert list(cut(header))[-1] == "gain"
    assert cells["1"]["collapsed"] == "1/3" and cells["0"]["collapsed"] == "0/3"
    assert cells["0"]["gain"] == "base" and cells["0"]["gain 95% CI"] == "-"  # the baseline itself: no interval
    assert cells["1"]["gain 95% CI"] != "[+0.050,+0.150]"  # the study's interval, not the trial's own
    verdict = study_verdict(study)
    assert verdict_lines(verdict)[0] == f"verdict: {verdict.summary}"

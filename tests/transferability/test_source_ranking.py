"""Ranking several sources: `tuneflow rank` lists each, the prior enqueues the best (source, mapping), prior_keep drops."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from conftest import TARGET_WORDS, _rows, write_csv
from tuneflow.config.errors import ConfigError


@pytest.fixture
def two_sources(make_study, task_files, tmp_path):
    """``two_sources(**overrides) -> path``: the tiny study with sources [sentiment, topics2] (a topic task near the target)."""
    near = write_csv(tmp_path / "data" / "topics2_train.csv", _rows(TARGET_WORDS, 90, 7))
    sources = [
        {"name": "sentiment", "files": {"train": str(task_files["source_train"])}},
        {"name": "topics2", "files": {"train": str(near)}},
    ]

    def make(**overrides):
        overrides.setdefault("source", None)
        return make_study(sources=sources, **overrides)

    return make


def _rank(*argv) -> int:
    import argparse

    from tuneflow.cli.rank import add_rank_parser, cmd_rank

    parser = argparse.ArgumentParser()
    add_rank_parser(parser.add_subparsers())
    return cmd_rank(parser.parse_args(["rank", *map(str, argv)]))


SPACE = {"parameters": {
    "epochs": {"type": "fixed", "value": 1},
    "batch_size": {"type": "fixed", "value": 32},
    "learning_rate": {"type": "fixed", "value": 0.003},
    "mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
}}


def test_rank_lists_both_sources_of_a_two_source_study(two_sources, capsys):
    study_file = two_sources(search_space=SPACE)
    assert _rank(study_file, "--json", "--rows", 60, "--quiet") == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["candidate"] for r in rows}
    assert names == {"pretrained/cls", "pretrained/mean", "sentiment-tuned/cls", "sentiment-tuned/mean",
                     "topics2-tuned/cls", "topics2-tuned/mean"}
    for r in rows:
        assert r["source"] == (r["candidate"].split("-tuned")[0] if "-tuned" in r["candidate"] else None)
        if r["source"] is not None:  # each source's own head gives LEEP; the two fine-tunes are distinct models
            assert -np.log(3) - 1e-9 <= r["leep"] <= 0.0
    leeps = {r["source"]: r["leep"] for r in rows if r["source"]}
    assert leeps["sentiment"] != leeps["topics2"]

    assert _rank(study_file, "--rows", 60, "--quiet") == 0
    out = capsys.readouterr().out
    best = {s: max(r["logme"] for r in rows if r["source"] == s) for s in ("sentiment", "topics2")}
    order = sorted(best, key=best.get, reverse=True)
    assert f"sources by best LogME: {order[0]} " in out and f", {order[1]} " in out


def test_candidate_source_names_one_source_and_rejects_unknown_ones(two_sources, tmp_path):
    from tuneflow.study.runner import plan_study
    from tuneflow.transferability.candidates import load_candidates, resolve_candidates

    plan = plan_study(str(two_sources(search_space=SPACE)))
    file = tmp_path / "candidates.yaml"
    file.write_text("candidates:\n  - {pooling: cls, source: topics2}\n  - {pooling: mean, source: true, name: each}\n")
    names = [c.name for c in resolve_candidates(plan, load_candidates(file), file=str(file))]
    assert names == ["topics2-tuned/cls", "each/sentiment", "each/topics2"]
    file.write_text("candidates:\n  - {source: topic2}\n")
    with pytest.raises(ConfigError, match=r"candidates\.yaml: candidates\[0\]\.source: unknown source 'topic2'.*topics2"):
        resolve_candidates(plan, load_candidates(file), file=str(file))


def test_prior_trials_carry_the_source_and_model_of_the_best_candidate():
    from tuneflow.config.search_space import ParamSpec, SearchSpace
    from tuneflow.transferability.candidates import Candidate, CandidateScore
    from tuneflow.transferability.prior import prior_trials

    def score(source, label, value, model="m"):
        return CandidateScore(Candidate(f"{source}/{label}", model, "/m", None, "cls", source, label), value, None, 0.0, 10, 4)

    ranking = [score("b", "small", 3.0), score("a", "big", 2.0), score(None, "small", 1.0), score("a", None, 4.0)]
    ranking.sort(key=lambda s: -s.logme)  # the outside encoder (label None) ranks first and is skipped
    params = {
        "mapping": ParamSpec(type="categorical", choices=("direct", "sequential")),
        "source": ParamSpec(type="categorical", choices=("a", "b"), when={"mapping": ["sequential"]}),
        "model": ParamSpec(type="categorical", choices=("small", "big")),
    }
    space = SearchSpace(parameters=params, source="s")
    assert prior_trials(ranking, space, top_k=3) == [
        {"mapping": "sequential", "source": "b", "model": "small"},
        {"mapping": "sequential", "source": "a", "model": "big"},
        {"mapping": "direct", "model": "small"},
    ]
    # A dropped source is never enqueued; a space that fixes the source only takes candidates tuned on it.
    assert prior_trials(ranking, space, kept=["a"]) == [{"mapping": "sequential", "source": "a", "model": "big"}]
    fixed = SearchSpace(parameters={**params, "source": ParamSpec(type="fixed", value="a")}, source="s")
    assert prior_trials(ranking, fixed) == [{"mapping": "sequential", "model": "big"}]
    # mapping fixed to sequential, sources searched: the ranking still says which source goes first.
    sequential_only = SearchSpace(parameters={"mapping": ParamSpec(type="fixed", value="sequential"), "source": params["source"]},
                                  source="s")
    assert prior_trials(ranking, sequential_only) == [{"source": "b"}]


def test_choose_sources_keeps_the_best_and_says_why_the_rest_went():
    from tuneflow.transferability.candidates import Candidate, CandidateScore
    from tuneflow.transferability.source_choice import choose_sources, format_source_choice

    def score(source, value, pooling="cls"):
        return CandidateScore(Candidate("x", "m", "/m", None, pooling, source, "m"), value, None, 0.0, 10, 4)

    ranking = [score("c", -0.1), score("a", -0.2, "mean"), score("a", -0.5), score(None, -0.3), score("b", -0.9)]
    choice = choose_sources(ranking, ["a", "b", "c"], keep=2)
    assert choice.scores == {"c": -0.1, "a": -0.2, "b": -0.9}  # each source's best candidate
    assert choice.kept == ["a", "c"]  # file order: the order of the trial parameter's choices
    assert [d["source"] for d in choice.dropped] == ["b"]
    assert choice.dropped[0]["rank"] == 3 and choice.dropped[0]["below_best"] == pytest.approx(0.8)
    lines = format_source_choice(choice.as_attr())
    assert lines[0] == "prior_keep: 2 keeps a, c"
    assert "dropped b: LogME -0.9000 ranks 3 of 3 sources, 0.8000 below the best (c, -0.1000)" in lines[1]
    assert choose_sources(ranking, ["a", "b", "c"], keep=3).dropped == []


def test_prior_keep_needs_the_logme_prior_and_sources(make_study, two_sources):
    from tuneflow.study.runner import load_config

    with pytest.raises(ConfigError, match=r"study\.yaml: prior_keep: needs prior: logme"):
        load_config(two_sources(search_space=SPACE, prior_keep=1))
    with pytest.raises(ConfigError, match=r"prior_keep: must be at least 1"):
        load_config(two_sources(search_space=SPACE, prior="logme", prior_keep=0))
    with pytest.raises(ConfigError, match=r"prior_keep: needs sources"):
        load_config(make_study(source=None, search_space={"parameters": {"epochs": {"type": "fixed", "value": 1}}},
                               prior="logme", prior_keep=1))


def test_prior_keep_drops_the_other_source_enqueues_the_top_pair_and_trials_never_sample_it(two_sources, run_cli):
    import optuna

    # Three learning rates: with one source kept, three distinct configurations (a study never repeats one).
    space = {"parameters": {**SPACE["parameters"], "mapping": {"type": "fixed", "value": "sequential"},
                            "learning_rate": {"type": "categorical", "choices": [0.002, 0.003, 0.004]}}}
    study_file = two_sources(search_space=space, budget={"n_trials": 3}, prior="logme", prior_keep=1)
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_file.parent / 'tiny.db'}")
    attrs = study.user_attrs
    scores = attrs["tuneflow_transferability"]["scores"]
    best = {s: max(r["logme"] for r in scores if r["source"] == s) for s in ("sentiment", "topics2")}
    winner, loser = sorted(best, key=best.get, reverse=True)
    assert attrs["tuneflow_kept_sources"] == [winner]
    dropped = attrs["tuneflow_dropped_sources"]
    assert dropped["kept"] == [winner] and [d["source"] for d in dropped["dropped"]] == [loser]
    assert dropped["dropped"][0]["below_best"] == pytest.approx(best[winner] - best[loser])
    assert "prior_keep: 1 keeps the top 1" in dropped["dropped"][0]["reason"]
    # The top (source, mapping) pair goes first: the best source-tuned candidate's source.
    first = study.trials[0]
    assert first.user_attrs.get("enqueued_by") == "prior: logme"
    assert first.params["source"] == winner and first.user_attrs["source"] == winner
    # Every trial sampled its source from the kept one only (the choices themselves shrank).
    assert len(study.trials) == 3
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE, t.user_attrs.get("fail_reason")
        assert t.params["source"] == winner and t.distributions["source"].choices == (winner,)
    # The report's ranking part says the same: the kept source, the dropped one and why.
    from tuneflow.observe.ranking_report import ranking_section
    from tuneflow.observe.report import SECTIONS, _sentence, _table

    assert ("ranking", "Transferability ranking") in SECTIONS
    section = ranking_section(study, table=_table, sentence=_sentence)
    assert f"prior_keep: 1: trials sample only {winner}." in section
    assert f"<td class=\"l\">{loser}</td>" in section and ">dropped<" in section and "below the best" in section


def test_rank_shows_what_prior_keep_would_drop_and_records_it_before_any_trial(two_sources, capsys):
    import optuna

    study_file = two_sources(search_space=SPACE, prior="logme", prior_keep=1)
    assert _rank(study_file, "--rows", 60, "--quiet") == 0
    out = capsys.readouterr().out
    assert "prior_keep: 1 keeps " in out and "(with --record, or prior: logme in `run`)" in out and "  dropped " in out
    assert not (study_file.parent / "tiny.db").exists()  # nothing written without --record
    assert _rank(study_file, "--rows", 60, "--quiet", "--record") == 0
    out = capsys.readouterr().out
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_file.parent / 'tiny.db'}")
    kept = study.user_attrs["tuneflow_kept_sources"]
    assert len(kept) == 1 and f"prior_keep: 1 keeps {kept[0]}\n" in out
    assert [t.system_attrs["fixed_params"].get("source") for t in study.trials if "source" in t.system_attrs["fixed_params"]] \
        in ([kept[0]], [])


def test_workers_wait_for_the_ranking_when_prior_keep_decides_the_sources(two_sources):
    import optuna

    from tuneflow.study.runner import plan_study
    from tuneflow.transferability.prior import RANKING_ATTR, PriorWaitTimeout, apply_prior

    plan = plan_study(str(two_sources(search_space=SPACE, prior="logme", prior_keep=1)))
    study = optuna.create_study()
    lost = lambda: False  # another worker holds the claim  # noqa: E731
    # It never appears: a one-line error, after the timeout, and no trial was started meanwhile.
    started = time.monotonic()
    with pytest.raises(PriorWaitTimeout, match="waited 0 s for another worker's LogME ranking"):
        apply_prior(plan, study, claim=lost, timeout=0.3, poll=0.05)
    assert time.monotonic() - started >= 0.3 and study.trials == []
    # It appears while waiting: the worker returns then (and ranks nothing itself).
    threading.Timer(0.3, lambda: study.set_user_attr(RANKING_ATTR, {"scores": []})).start()
    started = time.monotonic()
    assert apply_prior(plan, study, claim=lost, timeout=30, poll=0.05) == []
    assert 0.25 <= time.monotonic() - started < 10
    # Without prior_keep it waits all the same while coverage orders its arms by the ranking (the default) ...
    plan_covered = plan_study(str(two_sources(search_space=SPACE, prior="logme")))
    with pytest.raises(PriorWaitTimeout):
        apply_prior(plan_covered, optuna.create_study(), claim=lost, timeout=0.3, poll=0.05)
    # ... and with coverage off a worker that lost the claim goes straight to its trials.
    plan_free = plan_study(str(two_sources(search_space=SPACE, prior="logme", coverage={"enabled": False})))
    started = time.monotonic()
    assert apply_prior(plan_free, optuna.create_study(), claim=lost, timeout=30) == []
    assert time.monotonic() - started < 1


def test_default_candidates_cover_every_model_candidate_and_the_prior_names_the_model(make_study, tiny_model_dir, run_cli):
    import optuna

    model = {"candidates": [{"name": str(tiny_model_dir), "label": "one"}, {"name": str(tiny_model_dir), "label": "two"}],
             "max_length": 16}
    study_file = make_study(model=model, search_space=SPACE, budget={"n_trials": 1}, prior="logme")
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_file.parent / 'tiny.db'}")
    scores = study.user_attrs["tuneflow_transferability"]["scores"]
    assert {s["candidate"] for s in scores} == {f"{kind}/{pooling}@{label}" for kind in ("pretrained", "sentiment-tuned")
                                                for pooling in ("cls", "mean") for label in ("one", "two")}
    top = scores[0]
    first = study.trials[0]
    assert first.user_attrs["enqueued_by"] == "prior: logme"
    assert first.params["model"] == top["model_label"]
    assert first.params["mapping"] == ("sequential" if top["source"] else "direct")

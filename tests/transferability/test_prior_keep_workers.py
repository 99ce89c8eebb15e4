"""prior_keep across worker processes: the workers that did not rank wait for the ranking, so no trial samples a dropped source."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from conftest import TARGET_WORDS, _rows, write_csv
from worker_processes import (
    PG_URL,
    assert_exactly,
    finish,
    spawn,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_workers_wait_for_the_ranking_and_sample_only_the_kept_source(worker_study, pg_study_names, task_files, tmp_path):
    near = write_csv(tmp_path / "data" / "topics2_train.csv", _rows(TARGET_WORDS, 90, 7))
    sources = [{"name": "sentiment", "files": {"train": str(task_files["source_train"])}},
               {"name": "topics2", "files": {"train": str(near)}}]
    space = {"mapping": {"type": "fixed", "value": "sequential"}, "source_epochs": {"type": "fixed", "value": 1}}
    study_file = worker_study(n_trials=4, space=space, prior="logme", prior_keep=1, source=None, sources=sources)
    name = study_file.stem
    pg_study_names.append(name)
    workers = [spawn(tmp_path, "worker", study_file, "--storage", PG_URL, "--study-name", name) for _ in range(3)]
    results = [finish(w) for w in workers]
    assert all(code == 0 for code, _ in results), [log[-2000:] for _, log in results]
    rankers = [log for _, log in results if "scoring" in log and "candidate(s)" in log]
    assert len(rankers) == 1, [log[-2000:] for _, log in results]
    study = optuna.load_study(study_name=name, storage=PG_URL)
    assert_exactly(study, 4)
    kept = study.user_attrs["tuneflow_kept_sources"]
    assert len(kept) == 1 and [d["source"] for d in study.user_attrs["tuneflow_dropped_sources"]["dropped"]] != kept
    # Had a worker started sampling before the ranking, it would have sampled from both sources
    # (and Optuna would refuse the later, narrower choices): every trial saw the kept one only.
    for t in study.trials:
        assert t.state == TrialState.COMPLETE, t.user_attrs.get("fail_reason")
        assert t.distributions["source"].choices == tuple(kept) and t.user_attrs["source"] == kept[0]

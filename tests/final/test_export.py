"""``tuneflow.final.export``: the top trials of a finished study round-trip through an export file, each with its own choices."""

from __future__ import annotations

import pytest

from tuneflow.config.errors import ConfigError
from tuneflow.final.export import export_trials, load_export, write_export
from tuneflow.study.study_record import load_existing


def test_top_trials_round_trip_through_an_export_file(finished_study, tmp_path):
    study = load_existing(f"sqlite:///{finished_study.parent / 'tiny.db'}", "tiny")
    complete = {t.number: t for t in study.trials if t.state.name == "COMPLETE"}
    data = export_trials(study, top_k=10)
    assert [c["rank"] for c in data["configs"]] == list(range(1, len(complete) + 1))  # pruned trials are not exported
    path = tmp_path / "top.yaml"
    write_export(data, path)
    for rank, exported in enumerate(data["configs"], start=1):
        final = load_export(path, rank=rank)
        trial = complete[final.trial]
        measured = {k: v for k, v in trial.user_attrs["params"].items() if v is not None}  # the file leaves nulls out
        assert final.params == measured  # every sampled value fixed, as measured
        assert final.seed == trial.user_attrs["seed"] and final.study == "tiny"
        # A source task only where the trial's mapping trains on one.
        assert (final.source is not None) == (trial.user_attrs["params"]["mapping"] == "sequential")
    with pytest.raises(ConfigError, match="rank 9 asked"):
        load_export(path, rank=9)

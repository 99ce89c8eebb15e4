"""The README documents every study-file key and every trial parameter (kept in sync by this test)."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import REPO
from tuneflow.config import study_config as config
from tuneflow.config.trial_params import CORE_PARAMETERS
from tuneflow.transfer.base import get_strategy, strategy_names

README = (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "cls",
    [config.StudyConfig, config.ModelConfig, config.TaskConfig, config.HubData, config.FileData,
     config.OfflineData, config.ObjectiveConfig, config.SamplerConfig, config.PrunerConfig,
     config.BudgetConfig, config.EvaluationConfig, config.ParetoTarget, config.StorageOptionsConfig,
     config.CoverageConfig, config.ConfirmConfig],
)
def test_every_config_key_is_documented(cls):
    missing = [f.name for f in dataclasses.fields(cls) if f.init and f"`{f.name}" not in README and f".{f.name}`" not in README]
    assert not missing, f"{cls.__name__} keys missing from README: {missing}"


def test_every_parameter_and_strategy_is_documented():
    missing = [p for p in CORE_PARAMETERS if f"`{p}`" not in README and f"`{p}," not in README]
    for name in strategy_names():
        if f"`{name}`" not in README:
            missing.append(name)
        missing += [p for p in get_strategy(name).parameters if f"`{p}`" not in README]
    assert not missing, f"missing from README: {missing}"


def test_readme_commands_exist():
    from tuneflow.cli.main import COMMANDS

    for command in COMMANDS:
        assert f"tuneflow {command}" in README
    assert "python -m pytest" in (REPO / ".ci" / "run").read_text()

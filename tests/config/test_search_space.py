"""Search spaces sample what they declare, conditionals only when their condition holds."""

from __future__ import annotations

import optuna
import pytest

from tuneflow.config.errors import ConfigError
from tuneflow.transfer.base import resolve_params
from tuneflow.config.search_space import SearchSpace

SPACE = {
    "parameters": {
        "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
        "batch_size": {"type": "categorical", "choices": [16, 32]},
        "epochs": {"type": "int", "low": 1, "high": 5, "step": 2},
        "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2, "step": 0.05},
        "method": {"type": "categorical", "choices": ["full", "lora", "head_only"]},
        "lora_r": {"type": "categorical", "choices": [4, 8], "when": {"method": "lora"}},
        "lora_alpha": {"type": "int", "low": 8, "high": 32, "step": 8, "when": {"method": ["lora"]}},
        "mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
        "head": {"type": "fixed", "value": "new", "when": {"mapping": "sequential"}},
        "source_epochs": {"type": "int", "low": 1, "high": 2, "when": {"mapping": "sequential"}},
    }
}


def test_sampling_respects_types_ranges_and_conditions():
    space = SearchSpace.from_mapping(SPACE, "space.yaml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_methods, seen_mappings = set(), set()
    for _ in range(60):
        trial = study.ask()
        values = space.suggest(trial)
        study.tell(trial, 0.0)
        assert 1e-5 <= values["learning_rate"] <= 1e-3
        assert values["batch_size"] in (16, 32)
        assert values["epochs"] in (1, 3, 5)
        assert round(values["warmup_ratio"] / 0.05, 6).is_integer()
        assert ("lora_r" in values) == ("lora_alpha" in values) == (values["method"] == "lora")
        assert ("source_epochs" in values) == (values["mapping"] == "sequential")
        if values["mapping"] == "sequential":
            assert values["head"] == "new"
            assert "head" not in trial.params  # fixed values are not sampled, so Optuna never sees them
        seen_methods.add(values["method"])
        seen_mappings.add(values["mapping"])
        params = resolve_params(values)
        assert params.mapping == values["mapping"]
        if params.mapping == "sequential":
            assert params.mapping_params["source_epochs"] == values["source_epochs"]
    assert seen_methods == {"full", "lora", "head_only"} and seen_mappings == {"direct", "sequential"}


def test_defaults_fill_what_the_space_does_not_sample():
    params = resolve_params({"mapping": "sequential"})
    assert params.learning_rate == 5e-5 and params.method == "full"
    assert params.mapping_params == {"source_epochs": 1, "source_learning_rate": None, "head": "new"}


def test_grid_values_cover_categorical_and_int():
    space = SearchSpace.from_mapping(
        {"parameters": {"epochs": {"type": "int", "low": 1, "high": 3}, "method": {"type": "categorical", "choices": ["full", "lora"]}}},
        "s",
    )
    assert space.grid() == {"epochs": [1, 2, 3], "method": ["full", "lora"]}


@pytest.mark.parametrize(
    "spec,key",
    [
        ({"type": "float", "low": 1}, "parameters.p.high"),
        ({"type": "int", "low": 1.5, "high": 3}, "parameters.p.low"),
        ({"type": "categorical", "choices": []}, "parameters.p.choices"),
        ({"type": "categorical", "choices": [1, 1]}, "parameters.p.choices"),
        ({"type": "fixed"}, "parameters.p.value"),
        ({"type": "float", "low": 1, "high": 2, "log": True, "step": 0.1}, "parameters.p.step"),
        ({"type": "categorical", "choices": [1], "low": 0}, "parameters.p.low"),
        ({"type": "bool"}, "parameters.p.type"),
    ],
)
def test_bad_parameter_specs_name_their_key(spec, key):
    with pytest.raises(ConfigError) as info:
        SearchSpace.from_mapping({"parameters": {"p": spec}}, "space.yaml")
    assert str(info.value).startswith(f"space.yaml: {key}: ")


def test_condition_on_impossible_value_is_rejected():
    with pytest.raises(ConfigError, match="never takes 'lorra'"):
        SearchSpace.from_mapping(
            {"parameters": {"method": {"type": "categorical", "choices": ["full", "lora"]},
                            "lora_r": {"type": "fixed", "value": 4, "when": {"method": "lorra"}}}},
            "s",
        )


def test_a_study_file_anywhere_can_name_a_shipped_space(tmp_path, tiny_model_dir, task_files):
    """The shipped spaces travel with the package: no search_spaces/ folder beside this study file."""
    import tuneflow
    from conftest import study_dict, write_study

    study = study_dict(tiny_model_dir, task_files)
    study["search_space"] = "cpu_small.yaml"
    folder = tmp_path / "elsewhere" / "deep"
    folder.mkdir(parents=True)
    config = tuneflow.load_config(write_study(folder / "s.yaml", study))
    assert config.space.source.endswith("cpu_small.yaml") and "learning_rate" in config.space.parameters


def test_an_unknown_space_name_lists_the_shipped_ones(tmp_path, tiny_model_dir, task_files):
    import tuneflow
    from conftest import study_dict, write_study

    study = study_dict(tiny_model_dir, task_files)
    study["search_space"] = "cpu_smal.yaml"
    with pytest.raises(tuneflow.ConfigError, match="cpu_small.yaml"):
        tuneflow.load_config(write_study(tmp_path / "s.yaml", study))

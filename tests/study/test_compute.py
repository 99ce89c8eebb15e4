"""Compute in training samples: a trial counts the baselines it trained, never one trained before it ran."""

from __future__ import annotations

from tuneflow.study.compute import baseline_samples


def test_a_trial_counts_only_the_baselines_it_trained_itself():
    records = {
        "transfer_baseline:a": {"trained_by": "baseline run", "trial": 1_000_000, "training_samples": 64},
        "transfer_baseline:b": {"trained_by": "baseline run", "trial": 1_000_000, "training_samples": 64},
        "transfer_baseline:c": {"trained_by": "baseline run", "trial": 7},  # an older record: no count, rows x epochs
        "transfer_baseline:d": {"trained_by": "direct trial", "trial": 1_000_000, "training_samples": 64},
    }
    attrs = {"transfer_baselines": ["transfer_baseline:a", "transfer_baseline:b", "transfer_baseline:a"]}
    assert baseline_samples(records, attrs, trial_number=1_000_000, target_rows=30, epochs=2) == 128
    # Confirmation runs every configuration as trial 1_000_000: records that existed before this one ran are not its work.
    assert baseline_samples(records, attrs, trial_number=1_000_000, target_rows=30, epochs=2,
                            existed={"transfer_baseline:a"}) == 64
    assert baseline_samples(records, {"transfer_baseline": "transfer_baseline:c"}, trial_number=7, target_rows=30, epochs=2) == 60
    assert baseline_samples(records, {"transfer_baseline": "transfer_baseline:d"}, trial_number=1_000_000, target_rows=30,
                            epochs=2) == 0  # a direct trial is its own baseline

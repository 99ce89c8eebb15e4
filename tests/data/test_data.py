"""Task loading: packaged corpora offline, string labels, splits that never overlap, the reference CSVs."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED_DATA
from tuneflow.config.study_config import FileData, HubData, OfflineData, TaskConfig
from tuneflow.data.tasks import load_task, resolve_task


def _keys(split):
    return {(t, int(l)) for t, l in zip(split.texts, split.labels)}


@pytest.mark.parametrize("package,labels,rows", [("bbcnews", 5, 2125), ("tweets", 3, 37243)])
def test_packaged_corpora_load_offline(package, labels, rows):
    data = load_task(TaskConfig(name=package, package=package), key="target")
    assert data.num_labels == labels
    assert len(data.train) + len(data.validation) + len(data.test) == rows
    assert set(np.unique(data.train.labels)) == set(range(labels))


def test_carved_splits_are_disjoint_deterministic_and_capped():
    task = TaskConfig(name="bbc", package="bbcnews", max_train_rows=200, max_validation_rows=50)
    a = load_task(task, key="target", seed=0)
    b = load_task(task, key="target", seed=0)
    assert (len(a.train), len(a.validation)) == (200, 50)
    assert a.train.texts == b.train.texts and a.validation.texts == b.validation.texts
    train, val, test = (set(s.texts) for s in (a.train, a.validation, a.test))
    assert not (train & val) and not (train & test) and not (val & test)
    # Stratified: every class is present in the capped training rows.
    assert len(np.unique(a.train.labels)) == 5


def test_string_labels_map_to_label_names(tmp_path):
    path = tmp_path / "t.csv"
    rows = [f"pos{i},pos" for i in range(10)] + [f"neg{i},neg" for i in range(10)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    task = TaskConfig(name="t", files=FileData(train=str(path)), label_names=("neg", "pos"))
    data = load_task(task, key="target")
    labels = dict(zip(data.train.texts + data.validation.texts + data.test.texts,
                      np.concatenate([data.train.labels, data.validation.labels, data.test.labels])))
    assert all(labels[f"pos{i}"] == 1 and labels[f"neg{i}"] == 0 for i in range(10))


def test_data_root_switches_hub_tasks_to_offline_files():
    task = TaskConfig(
        name="ag_news",
        hub=HubData(path="fancyzhx/ag_news"),
        offline=OfflineData(files=FileData(train="ag_news/train.csv", test="ag_news/test.csv")),
        max_train_rows=300,
    )
    resolved = resolve_task(task, data_root=str(SHARED_DATA), base_dir=SHARED_DATA)
    assert resolved.hub is None and resolved.files.train == str((SHARED_DATA / "ag_news" / "train.csv").resolve())
    data = load_task(resolved, key="target")
    assert data.num_labels == 4 and len(data.train) == 300 and len(data.test) == 7600
    assert not set(data.train.texts) & set(data.test.texts)
    # Without a data root the hub stays in place (and is only read when a study runs).
    assert resolve_task(task, data_root=None, base_dir=SHARED_DATA).hub is not None


def test_hub_class_label_names_are_kept(tmp_path, monkeypatch):
    """A dataset whose label column is a ClassLabel: the task's classes are its names, not "0" … "k-1"."""
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # Ids in the order of the names, which is not their alphabetical order (so a sorted guess would fail).
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["sport", "money", "art"])})
    rows = {"text": [f"{w} text {i}" for i in range(20) for w in ("goal", "bank", "paint")], "label": [0, 1, 2] * 20}
    folder = tmp_path / "local_hub"
    for split in ("train", "test"):
        # A hub repository layout: parquet files whose schema carries the ClassLabel feature.
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(folder / "data" / f"{split}-00000.parquet"))
    task = TaskConfig(name="topics", hub=HubData(path=str(folder)))
    data = load_task(task, key="target", seed=0)
    assert data.label_names == ("sport", "money", "art")
    texts = dict(zip(data.train.texts, data.train.labels))
    assert all(data.label_names[label].startswith({"goal": "s", "bank": "m", "paint": "a"}[t.split()[0]]) for t, label in texts.items())

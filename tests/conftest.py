"""Shared fixtures: a tiny real BERT (2 layers) with its tokenizer, small CSV tasks, study files."""

from __future__ import annotations

import csv
import importlib.util
import os
import random
import socket
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

# The many-worker fixtures (worker_study, pg_study_names) live beside the helpers that spawn workers;
# the throwaway Slurm cluster of the `slurm` tests (slurm_cluster) in its own module.
pytest_plugins = ["worker_processes", "slurm_cluster"]

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    """The project's shared CSVs: ``$TUNEFLOW_SHARED_DATA``, else ``../shared/data`` beside this checkout,
    else beside the repository it was cloned from (a fresh clone in a temporary folder, as CI makes)."""
    if os.environ.get("TUNEFLOW_SHARED_DATA"):
        return Path(os.environ["TUNEFLOW_SHARED_DATA"])
    candidates = [REPO.parent / "shared" / "data"]
    origin = subprocess.run(["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
                            capture_output=True, text=True).stdout.strip()
    if origin.startswith("/"):  # a local clone; network remotes have no folder beside them
        candidates.append(Path(origin).resolve().parent / "shared" / "data")
    return next((c for c in candidates if c.is_dir()), candidates[0])


SHARED_DATA = _shared_data()

# Markers of tests that need an optional extra (its driver) and a local server. Where either is missing
# they skip, saying what to install: `pip install -e ".[offline,test]"` (the README's command) gives a
# green suite. `.ci/run` installs every extra, starts the servers and sets TUNEFLOW_REQUIRE_SERVICES=1,
# so there nothing skips: a missing driver or a server that is down fails the run.
SERVICES = {  # marker: (module, its package, the extra that brings it, port of the local server or None)
    "postgres": ("psycopg", "psycopg", "postgres", 5432),
    "redis": ("redis", "redis", "redis", 6379),
    "grpc": ("grpc", "grpcio", "grpc", None),
}


@cache
def _missing(marker: str) -> str | None:
    """Why tests with ``marker`` cannot run here, or None."""
    module, package, extra, port = SERVICES[marker]
    if importlib.util.find_spec(module) is None:
        return f"needs {package}: pip install -e '.[{extra}]' (.ci/run installs every extra)"
    if port is not None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            return f"needs the {marker} server at 127.0.0.1:{port} (.ci/run starts it)"
    return None


def pytest_collection_modifyitems(config, items):
    if os.environ.get("TUNEFLOW_REQUIRE_SERVICES") == "1":
        return
    for item in items:
        for marker in SERVICES:
            if item.get_closest_marker(marker) is not None and _missing(marker):
                item.add_marker(pytest.mark.skip(reason=_missing(marker)))
                break


TARGET_WORDS = {
    "sport": ["goal", "match", "team", "coach", "league", "score"],
    "money": ["bank", "market", "stock", "profit", "trade", "price"],
    "science": ["atom", "cell", "planet", "energy", "theory", "lab"],
}
SOURCE_WORDS = {
    "negative": ["bad", "awful", "boring", "sad", "poor"],
    "positive": ["good", "great", "fun", "happy", "superb"],
}
FILLER = ["the", "a", "of", "and", "today", "news", "this", "was", "very", "it"]


def _rows(words: dict[str, list[str]], n: int, seed: int, string_labels: bool = False) -> list[dict]:
    rng = random.Random(seed)
    names = list(words)
    rows = []
    for i in range(n):
        label = i % len(names)
        tokens = rng.sample(words[names[label]], 2) + rng.sample(FILLER, rng.randint(2, 6))
        rng.shuffle(tokens)
        rows.append({"text": " ".join(tokens), "label": names[label] if string_labels else label})
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(autouse=True, scope="session")
def _token_cache_in_tmp(tmp_path_factory):
    """Keep the tests' token cache out of the user's ~/.cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("TUNEFLOW_CACHE_DIR", str(tmp_path_factory.mktemp("tuneflow-cache")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) and a WordPiece tokenizer over the test words."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    words = sorted({w for group in (TARGET_WORDS, SOURCE_WORDS) for ws in group.values() for w in ws} | set(FILLER))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    # transformers 5 takes the vocabulary itself (`vocab=`), no longer a `vocab_file`.
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
        # No dropout and a wider init so a few CPU steps visibly learn the synthetic tasks.
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.1,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture
def task_files(tmp_path) -> dict[str, Path]:
    """Target (3 topics, string labels) and source (2 sentiments) CSVs with a learnable signal."""
    return {
        "target_train": write_csv(tmp_path / "data" / "target_train.csv", _rows(TARGET_WORDS, 120, 1, string_labels=True)),
        "target_test": write_csv(tmp_path / "data" / "target_test.csv", _rows(TARGET_WORDS, 60, 2, string_labels=True)),
        "source_train": write_csv(tmp_path / "data" / "source_train.csv", _rows(SOURCE_WORDS, 80, 3)),
    }


def study_dict(tiny_model_dir: Path, task_files: dict[str, Path], **overrides) -> dict:
    study = {
        "name": "tiny",
        "model": {"name": str(tiny_model_dir), "max_length": 16},
        "source": {"name": "sentiment", "files": {"train": str(task_files["source_train"])}},
        "target": {
            "name": "topics",
            "files": {"train": str(task_files["target_train"]), "test": str(task_files["target_test"])},
            "label_names": list(TARGET_WORDS),
        },
        "search_space": {
            "parameters": {
                "learning_rate": {"type": "float", "low": 1e-3, "high": 5e-3, "log": True},
                "batch_size": {"type": "categorical", "choices": [16, 32]},
                "epochs": {"type": "int", "low": 1, "high": 2},
                "method": {"type": "categorical", "choices": ["full", "lora", "head_only"]},
                "lora_r": {"type": "categorical", "choices": [4], "when": {"method": "lora"}},
                "mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
                "source_epochs": {"type": "fixed", "value": 1, "when": {"mapping": "sequential"}},
            }
        },
        "objective": {"weights": {"f1": 1.0, "accuracy": 1.0}},
        "sampler": {"name": "random"},
        "pruner": {"name": "none"},
        "budget": {"n_trials": 3},
        "evaluation": {"batch_size": 64},
    }
    for key, value in overrides.items():
        study[key] = value
    return study


def write_study(path: Path, study: dict) -> Path:
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def make_study(tmp_path, tiny_model_dir, task_files):
    """``make_study(**overrides) -> path`` of a study file over the tiny model and CSV tasks."""

    def make(filename: str = "study.yaml", **overrides) -> Path:
        return write_study(tmp_path / filename, study_dict(tiny_model_dir, task_files, **overrides))

    return make


@pytest.fixture(scope="session")
def finished_study(tmp_path_factory, tiny_model_dir) -> Path:
    """A small finished SQLite study (3 complete trials, 1 pruned); read-only for the tests sharing it."""
    from finished_study import run_small_study

    return run_small_study(tmp_path_factory.mktemp("finished-study"), tiny_model_dir)


@pytest.fixture
def run_cli(capsys):
    """Run the tuneflow CLI in-process; returns (exit code, stdout, stderr)."""
    from tuneflow.cli.main import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


sys.path.insert(0, str(REPO / "src"))

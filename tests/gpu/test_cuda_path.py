"""The CUDA path, run for real: a bf16 trial and its peak memory, a real out-of-memory and the memory it
leaves, allocated memory over 20 trials in one worker, four packed workers on one GPU, compile vs eager.

Marker ``gpu``, skipped without CUDA: ``python -m pytest -m gpu tests/gpu`` (``benchmarks/gpu_suite.sh``
runs them on the device machine). Trials run through tuneflow's own worker loop (``TrialLoop``) in this
process, so the test reads ``torch.cuda.memory_allocated()`` between trials, or through ``tuneflow
launch`` in worker processes.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from conftest import FILLER, REPO, TARGET_WORDS, study_dict, write_csv, write_study

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

MB = 2**20
WIDE = 2**18  # intermediate size of the model whose big batch cannot fit (see wide_model_dir)


def fixed(**values) -> dict:
    return {name: {"type": "fixed", "value": value} for name, value in values.items()}


ONE_FULL_TRIAL = fixed(method="full", mapping="direct", epochs=1, batch_size=16, learning_rate=3e-3)


def cuda_study(tmp_path: Path, tiny_model_dir: Path, task_files: dict, name: str, *, parameters: dict, n_trials: int,
               model_dir: Path | None = None, max_length: int = 16, target: dict | None = None, **overrides) -> Path:
    """A study file on CUDA over the conftest tasks (or ``target``), without a transfer baseline."""
    study = study_dict(model_dir or tiny_model_dir, task_files, name=name, device="cuda",
                       search_space={"parameters": parameters}, budget={"n_trials": n_trials}, **overrides)
    study["model"]["max_length"] = max_length
    study["objective"]["transfer_baseline"] = False  # direct mapping: no extra target-only training
    if target is not None:
        study["target"] = target
    return write_study(tmp_path / f"{name}.yaml", study)


def run_in_process(study_file: Path, *, n_trials: int, callbacks=()) -> optuna.Study:
    """``tuneflow run``'s worker loop in this process; ``callbacks`` run after each trial is told."""
    from tuneflow.study.objective import TransferObjective
    from tuneflow.study.runner import plan_study
    from tuneflow.fleet.storage import open_storage
    from tuneflow.study.study_record import create_or_load
    from tuneflow.fleet.workers import TrialLoop

    plan = plan_study(study_file)
    config = plan.config
    storage = open_storage(config.storage_url(), options=config.storage_options)
    study = create_or_load(config, storage=storage, sampler=plan.sampler, pruner=plan.pruner, record=plan.record)
    objective = TransferObjective(config, target=plan.target, source=plan.source, model_path=plan.model_path)
    TrialLoop(study, storage=storage, url=config.storage_url(), options=config.storage_options,
              objective=objective, n_trials=n_trials, callbacks=list(callbacks)).run()
    return study


def save_bert(folder: Path, tokenizer_dir: Path, **config) -> Path:
    """A randomly initialised BERT encoder of the given shape, with the conftest tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer), **config)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def wide_model_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """One layer with a 262,144-wide feed-forward block (17M parameters, 67 MB): a batch of 16 rows fits
    easily, while a batch of ~7,000 rows of 62 tokens needs a ~226 GB bf16 activation in its first layer,
    more than any GPU holds. So the out-of-memory below is a real one, raised by the CUDA allocator."""
    return save_bert(tmp_path_factory.mktemp("wide-bert"), tiny_model_dir, hidden_size=32, num_hidden_layers=1,
                     num_attention_heads=1, intermediate_size=WIDE, max_position_embeddings=128)


@pytest.fixture(scope="module")
def medium_model_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """3.6M parameters (14 MB of fp32 weights): a trial that left its model behind would show."""
    return save_bert(tmp_path_factory.mktemp("medium-bert"), tiny_model_dir, hidden_size=384, num_hidden_layers=2,
                     num_attention_heads=6, intermediate_size=1536, max_position_embeddings=64)


def long_rows_task(tmp_path: Path, rows: int = 8192, words: int = 60) -> dict:
    """A target task of ``rows`` rows of ``words`` words (62 tokens with [CLS] and [SEP])."""
    rng = random.Random(0)
    names = list(TARGET_WORDS)
    data = []
    for i in range(rows):
        label = names[i % len(names)]
        tokens = [rng.choice(TARGET_WORDS[label]) if rng.random() < 0.3 else rng.choice(FILLER) for _ in range(words)]
        data.append({"text": " ".join(tokens), "label": label})
    path = write_csv(tmp_path / "data" / "long_train.csv", data)
    return {"name": "long", "files": {"train": str(path)}, "label_names": names}


def test_bf16_trial_records_peak_gpu_memory(tmp_path, tiny_model_dir, task_files):
    from tuneflow.training.runtime import Runtime

    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    assert Runtime.pick("cuda").amp_dtype == torch.bfloat16  # what every CUDA trial trains under
    study = run_in_process(cuda_study(tmp_path, tiny_model_dir, task_files, "bf16", parameters=ONE_FULL_TRIAL, n_trials=1),
                           n_trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("fail_reason")
    assert trial.user_attrs["device"] == "cuda"
    total_mb = torch.cuda.get_device_properties(0).total_memory / MB
    weights_mb = trial.user_attrs["total_parameters"] * 4 / MB
    # The peak holds at least the fp32 weights (plus gradients, AdamW state and activations).
    assert weights_mb < trial.user_attrs["peak_gpu_memory_mb"] < total_mb, (weights_mb, trial.user_attrs["peak_gpu_memory_mb"])


def test_a_real_out_of_memory_fails_the_trial_and_gives_the_memory_back(tmp_path, tiny_model_dir, task_files, wide_model_dir):
    target = long_rows_task(tmp_path)
    wide = dict(model_dir=wide_model_dir, max_length=64)  # 62-token rows, none truncated
    small = cuda_study(tmp_path, tiny_model_dir, task_files, "wide_small", **wide, target={**target, "max_train_rows": 512},
                       parameters=ONE_FULL_TRIAL, n_trials=2)
    # A first trial sets up what a CUDA process keeps for good (context, cuBLAS workspace): the baseline.
    run_in_process(small, n_trials=1)
    before = torch.cuda.memory_allocated()
    after: list[tuple[int, int]] = []
    # All ~7,000 training rows in one batch (15% of the 8,192 are carved off for validation).
    huge = cuda_study(tmp_path, tiny_model_dir, task_files, "wide_huge", **wide, target=target,
                      parameters={**ONE_FULL_TRIAL, **fixed(batch_size=8192)}, n_trials=1)
    study = run_in_process(huge, n_trials=1, callbacks=[lambda _s, t: after.append((t.number, torch.cuda.memory_allocated()))])
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"].startswith("CUDA out of memory (batch_size 8192): Tried to allocate"), trial.user_attrs
    assert len(after) == 1 and after[0][1] - before <= 50 * MB, (before / MB, after[0][1] / MB)
    # The worker goes on: the next trial in this process trains.
    again = run_in_process(small, n_trials=2)
    assert [t.state for t in again.trials] == [TrialState.COMPLETE, TrialState.COMPLETE]


def test_twenty_trials_in_one_worker_leave_allocated_memory_flat(tmp_path, tiny_model_dir, task_files, medium_model_dir):
    parameters = {
        **fixed(mapping="direct", epochs=1),
        "method": {"type": "categorical", "choices": ["full", "lora", "head_only"]},
        "batch_size": {"type": "categorical", "choices": [16, 32]},
        "learning_rate": {"type": "float", "low": 1e-4, "high": 3e-3, "log": True},
    }
    allocated: list[int] = []
    study = run_in_process(
        cuda_study(tmp_path, tiny_model_dir, task_files, "flat", model_dir=medium_model_dir, parameters=parameters, n_trials=20),
        n_trials=20, callbacks=[lambda _s, _t: allocated.append(torch.cuda.memory_allocated())],
    )
    assert len(allocated) == 20 and all(t.state == TrialState.COMPLETE for t in study.trials)
    assert {t.params["method"] for t in study.trials} == {"full", "lora", "head_only"}
    # One model left behind would add its fp32 weights (> 8 MB) to every later reading.
    assert study.trials[0].user_attrs["total_parameters"] * 4 / MB > 8
    spread = (max(allocated[1:]) - min(allocated[1:])) / MB
    assert spread <= 8, [round(a / MB, 1) for a in allocated]


def test_launch_packs_four_workers_on_one_gpu_to_an_exact_budget(tmp_path, tiny_model_dir, task_files):
    from tuneflow.fleet.budget import TrialCount

    n_trials = 48
    parameters = {**fixed(method="full", mapping="direct", epochs=1, batch_size=16),
                  "learning_rate": {"type": "float", "low": 1e-3, "high": 5e-3, "log": True}}
    study_file = cuda_study(tmp_path, tiny_model_dir, task_files, "packed", parameters=parameters, n_trials=n_trials,
                            storage_options={"heartbeat_interval": 1, "grace_period": 30})
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, "-m", "tuneflow", "launch", str(study_file), "--gpus", "0", "--per-gpu", "4"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "4 worker(s): gpu0.0, gpu0.1, gpu0.2, gpu0.3" in output and "exit codes [0, 0, 0, 0]" in output, output[-4000:]
    study = optuna.load_study(study_name="packed", storage=f"sqlite:///{tmp_path / 'packed.db'}")
    count = TrialCount.of(study.get_trials(deepcopy=False))
    assert count.finished == n_trials and count.running == 0 and count.waiting == 0, count
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert len(trials) == n_trials
    assert {t.user_attrs["device"] for t in trials} == {"cuda"}
    assert len({t.user_attrs["worker"] for t in trials}) == 4  # every packed worker ran trials on the one GPU
    assert all(t.user_attrs["peak_gpu_memory_mb"] > 0 for t in trials)


def test_compile_matches_eager(tmp_path, tiny_model_dir, task_files):
    import pandas as pd
    from torch._dynamo.utils import counters
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tuneflow.data.batching import encode
    from tuneflow.data.tasks import TextSplit
    from tuneflow.training.loop import fit
    from tuneflow.training.predict import predict
    from tuneflow.training.runtime import Runtime

    frame = pd.read_csv(task_files["target_train"])
    names = sorted(set(frame["label"]))
    split = TextSplit(texts=frame["text"].tolist(), pairs=None, labels=np.array([names.index(n) for n in frame["label"]]))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    data = encode(tokenizer, split, 16)
    runs = {}
    for compiled in (False, True):
        torch._dynamo.reset()
        counters.clear()
        torch.manual_seed(0)  # the same head initialisation for both
        model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=len(names)).cuda()
        runtime = Runtime.pick("cuda", compile=compiled)
        stats = fit(model, data, runtime=runtime, pad_id=tokenizer.pad_token_id, epochs=2, lr=3e-3, batch_size=16, seed=0)
        logits = predict(model, data, runtime=runtime, pad_id=tokenizer.pad_token_id, batch_size=64)
        runs[compiled] = (np.array(stats.epoch_losses), logits, counters["stats"]["unique_graphs"])
    (eager_loss, eager_logits, eager_graphs), (compiled_loss, compiled_logits, compiled_graphs) = runs[False], runs[True]
    assert eager_graphs == 0 and compiled_graphs >= 1  # the compiled run really went through torch.compile
    np.testing.assert_allclose(compiled_loss, eager_loss, rtol=0.05)
    assert np.abs(compiled_logits - eager_logits).max() <= 0.1 * max(1.0, float(np.abs(eager_logits).max()))
    assert np.mean(compiled_logits.argmax(1) == eager_logits.argmax(1)) >= 0.95
    # The study-file key reaches the loop: a `compile: true` trial compiles and completes. (Reset first:
    # a model of the same class would otherwise reuse the graph compiled above and add no new one.)
    torch._dynamo.reset()
    counters.clear()
    study = run_in_process(cuda_study(tmp_path, tiny_model_dir, task_files, "compiled", parameters=ONE_FULL_TRIAL, n_trials=1,
                                      compile=True), n_trials=1)
    assert study.trials[0].state == TrialState.COMPLETE, study.trials[0].user_attrs.get("fail_reason")
    assert counters["stats"]["unique_graphs"] >= 1

"""One contract over eight model families (tiny random models built from configs, saved as folders).

Every family: trials complete, the loss falls on a learnable toy task, ``export`` -> ``train`` saves
a model or adapter that plain transformers / PEFT reload to the same predictions, and the 2-label
checkpoints serve a 3-label target. Every (method, mapping) pair runs on a decoder (gpt2) by default, and
on an encoder in tests/transfer/test_mapping_strategies.py (the tiny BERT, with more checks per trial);
the other families, BERT's twin here included, run it under ``-m slow``.
"""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
import torch
import yaml
from conftest import (
    SOURCE_WORDS,
    TARGET_WORDS,
    _rows,
    study_dict,
    write_csv,
    write_study,
)
from tiny_families import ARCHITECTURES, DECODERS

import tuneflow
from tuneflow.config.trial_params import TrialParams
from tuneflow.models.loading import load_tokenizer, new_classifier

MAPPINGS = ["direct", "sequential", "joint", "adversarial", "align"]
DEFAULT_GRID = ("gpt2",)  # every (method, mapping) pair in the default run (an encoder's: test_mapping_strategies)


pytest_plugins = ["tiny_families"]  # the tiny_models fixture (a second conftest.py would shadow the root one)


def _study(tmp_path, model_dir, task_files, parameters: dict, **overrides):
    study = study_dict(model_dir, task_files, **overrides)
    study["search_space"] = {"parameters": parameters}
    study["storage"] = f"sqlite:///{tmp_path / 'study.db'}"
    return write_study(tmp_path / "study.yaml", study)


FIXED = {
    "learning_rate": {"type": "fixed", "value": 3e-3},
    "head_learning_rate": {"type": "fixed", "value": 1e-2},
    "batch_size": {"type": "fixed", "value": 16},
    "epochs": {"type": "fixed", "value": 1},
}


@pytest.mark.parametrize("model_type", [pytest.param(a, marks=() if a in DEFAULT_GRID else pytest.mark.slow) for a in ARCHITECTURES])
def test_every_method_and_mapping_completes(model_type, tiny_models, task_files, tmp_path):
    parameters = {
        **FIXED,
        "method": {"type": "categorical", "choices": ["full", "lora", "head_only"]},
        "mapping": {"type": "categorical", "choices": MAPPINGS},
        "source_epochs": {"type": "fixed", "value": 1, "when": {"mapping": "sequential"}},
    }
    # Small tasks and no transfer baselines: this is about every pair running, not about what it learns.
    small = {"target_train": write_csv(tmp_path / "t.csv", _rows(TARGET_WORDS, 36, 1, string_labels=True)),
             "target_test": task_files["target_test"],
             "source_train": write_csv(tmp_path / "s.csv", _rows(SOURCE_WORDS, 24, 3))}
    study_file = _study(tmp_path, tiny_models[model_type], small, parameters, sampler={"name": "grid"},
                        budget={"n_trials": 15}, objective={"weights": {"f1": 1.0}, "transfer_baseline": False})
    study = tuneflow.run(study_file, quiet=True)
    states = {(t.params["method"], t.params["mapping"]): t.state for t in study.trials}
    failed = {k: t.user_attrs.get("fail_reason") for k, t in zip(states, study.trials) if t.state != optuna.trial.TrialState.COMPLETE}
    assert len(states) == 15 and not failed


def _context(model_dir, task_files, params: TrialParams, reports: list):
    from tuneflow.config.study_config import FileData, TaskConfig
    from tuneflow.data.prepared_task import PreparedTask
    from tuneflow.data.tasks import load_task
    from tuneflow.training.runtime import Runtime
    from tuneflow.transfer.context import TransferContext

    task = TaskConfig(name="topics", files=FileData(train=str(task_files["target_train"])), label_names=tuple(TARGET_WORDS))
    tokenizer = load_tokenizer(str(model_dir))
    target = PreparedTask.build(load_task(task, key="target"), tokenizer, 16)
    return TransferContext(params=params, model_path=str(model_dir), target=target, source=None, runtime=Runtime.pick("cpu"),
                           pad_id=tokenizer.pad_token_id, seed=0, report=lambda metrics, i: reports.append(metrics))


def _default_or_slow(model_type: str, method: str):
    return pytest.param(model_type, method, marks=() if method == "full" or model_type in DEFAULT_GRID else pytest.mark.slow)


@pytest.mark.parametrize(("model_type", "method"), [_default_or_slow(a, m) for a in ARCHITECTURES for m in ("full", "lora")])
def test_loss_falls_on_a_learnable_task(model_type, method, tiny_models, tmp_path):
    from tuneflow.training.predict import predict
    from tuneflow.transfer.base import get_strategy

    # Every word names its class: a task a tiny random model learns in a few epochs.
    rng = np.random.default_rng(0)
    rows = [{"text": " ".join(rng.choice(words, 3)), "label": name} for _ in range(30) for name, words in TARGET_WORDS.items()]
    task_files = {"target_train": write_csv(tmp_path / "toy.csv", rows)}

    params = TrialParams(method=method, learning_rate=1e-2, head_learning_rate=1e-2, lora_learning_rate=3e-2, batch_size=16, epochs=3)
    ctx = _context(tiny_models[model_type], task_files, params, reports := [])
    train = ctx.target.train

    def loss(model) -> float:  # cross-entropy on the training rows
        logits = torch.from_numpy(predict(model, train, runtime=ctx.runtime, pad_id=ctx.pad_id, batch_size=64))
        return float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(train.labels)))

    before = loss(ctx.new_model(ctx.target))  # the same fresh model the trial starts from (seeded head)
    after = loss(get_strategy("direct")().run(ctx))
    assert len(reports) == 3 and after < 0.9 * before, (before, after, ctx.fit_stats[0].epoch_losses)


EXPORT_CASES = [pytest.param(a, "lora", marks=() if a in DEFAULT_GRID else pytest.mark.slow) for a in ARCHITECTURES]
EXPORT_CASES += [pytest.param("gpt2", "full"), pytest.param("bert", "full", marks=pytest.mark.slow)]


@pytest.mark.parametrize(("model_type", "method"), EXPORT_CASES)
def test_export_then_train_reloads_with_plain_libraries(model_type, method, tiny_models, task_files, tmp_path):
    parameters = {**FIXED, "method": {"type": "fixed", "value": method}, "epochs": {"type": "fixed", "value": 2}}
    study = tuneflow.run(_study(tmp_path, tiny_models[model_type], task_files, parameters, budget={"n_trials": 1}), quiet=True)
    tuneflow.export(study, tmp_path / "best.yaml")
    out = tmp_path / "final"
    metrics = tuneflow.train(tmp_path / "best.yaml", out)
    assert metrics["saved_as"] == ("lora_adapter" if method == "lora" else "full_model")

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if method == "lora":
        from peft import PeftModel

        config = json.loads((out / "adapter_config.json").read_text())
        assert config["modules_to_save"]  # the head travels with the adapter
        # The base is a 2-label classifier: plain transformers swaps its head, PEFT restores the trained one.
        base = AutoModelForSequenceClassification.from_pretrained(
            config["base_model_name_or_path"], num_labels=3, ignore_mismatched_sizes=True)
        base.config.pad_token_id = AutoTokenizer.from_pretrained(out).pad_token_id  # decoders: the saved tokenizer pads with EOS
        model = PeftModel.from_pretrained(base, out)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(out)
        assert model.config.id2label == dict(enumerate(TARGET_WORDS))  # the target's label names, not LABEL_0..
    tokenizer = AutoTokenizer.from_pretrained(out)
    rows = [r for r in yaml.safe_load((tmp_path / "best.yaml").read_text())["configs"][:1]]
    import csv

    with open(task_files["target_test"], encoding="utf-8") as f:
        test = list(csv.DictReader(f))
    labels = np.array([list(TARGET_WORDS).index(r["label"]) for r in test])
    model.eval()
    with torch.no_grad():
        batch = tokenizer([r["text"] for r in test], padding=True, truncation=True, max_length=16, return_tensors="pt")
        predicted = model(**batch).logits.argmax(-1).numpy()
    assert rows and float(np.mean(predicted == labels)) == pytest.approx(metrics["accuracy"])


def test_a_classifier_for_another_label_count_keeps_every_pretrained_tensor_but_the_label_rows(tiny_models):
    from transformers import AutoModelForSequenceClassification

    path = str(tiny_models["roberta"])
    checkpoint = AutoModelForSequenceClassification.from_pretrained(path).state_dict()  # 2 labels
    model = new_classifier(path, 3, label_names=["a", "b", "c"])
    state = model.state_dict()
    assert state["classifier.out_proj.weight"].shape[0] == 3
    assert torch.equal(state["classifier.dense.weight"], checkpoint["classifier.dense.weight"])  # not per label: kept
    assert torch.equal(state["roberta.encoder.layer.1.output.dense.weight"], checkpoint["roberta.encoder.layer.1.output.dense.weight"])
    assert model.config.label2id == {"a": 0, "b": 1, "c": 2}


@pytest.mark.parametrize("model_type", DECODERS)
def test_decoders_pad_with_eos_and_pool_the_last_real_token(model_type, tiny_models):
    from tuneflow.data.batching import collate, encode
    from tuneflow.data.tasks import TextSplit
    from tuneflow.training.loop import pooled_features

    path = str(tiny_models[model_type])
    tokenizer = load_tokenizer(path)
    assert tokenizer.pad_token == tokenizer.eos_token
    model = new_classifier(path, 3).eval()
    assert model.config.pad_token_id == tokenizer.pad_token_id
    texts = ["good", "the bank market was very good today"]
    data = encode(tokenizer, TextSplit(texts=texts, pairs=None, labels=np.zeros(2, dtype=np.int64)), 16)
    batch = collate(data, np.arange(2), pad_id=tokenizer.pad_token_id, device=torch.device("cpu"))
    batch.pop("labels")
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
        pooled = pooled_features(model, out, batch)
        # What the family's own head reads: score(pooled) is its logits.
        assert torch.allclose(model.score(pooled), out.logits, atol=1e-5)
        alone = model(**collate(data, np.arange(1), pad_id=tokenizer.pad_token_id, device=torch.device("cpu")),
                      output_hidden_states=True)
        assert torch.allclose(pooled[0], alone.hidden_states[-1][0, -1], atol=1e-5)  # padding changes nothing

"""LoRA targets and freeze_layers checked against the model before a study starts; LoRA variants; the head under LoRA."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import study_dict, write_study

from tuneflow.config.trial_params import TrialParams
from tuneflow.models.loading import new_classifier
from tuneflow.models.methods import apply_method

pytest_plugins = ["tiny_families"]  # the tiny_models fixture (a second conftest.py would shadow the root one)


def _study_file(tmp_path, model_dir, task_files, parameters: dict, **model_keys):
    study = study_dict(model_dir, task_files)
    study["search_space"]["parameters"].update(parameters)
    study["model"].update(model_keys)
    study["storage"] = f"sqlite:///{tmp_path / 'study.db'}"
    return write_study(tmp_path / "study.yaml", study)


@pytest.mark.parametrize(
    ("parameters", "model_keys", "key", "words"),
    [
        ({"lora_target_modules": {"type": "categorical", "choices": ["auto", "query,value"], "when": {"method": "lora"}}}, {},
         "parameters.lora_target_modules", "c_attn"),
        ({"freeze_layers": {"type": "int", "low": 0, "high": 3}}, {}, "parameters.freeze_layers", "2 layers"),
        ({}, {"quantization": "4bit"}, "model.quantization", "CUDA"),
    ],
)
def test_validate_and_run_reject_choices_the_model_cannot_take(parameters, model_keys, key, words, tiny_models, task_files, tmp_path, run_cli):
    study_file = _study_file(tmp_path, tiny_models["gpt2"], task_files, parameters, **model_keys)
    for command in ("validate", "run"):
        code, _, err = run_cli(command, study_file)
        last = err.strip().splitlines()[-1]  # (earlier lines: the fixture saving its model)
        assert code == 2 and key in last and words in last and last.startswith("tuneflow: error:") and "Traceback" not in err, err
    assert not (tmp_path / "study.db").exists()  # nothing written


def test_an_architecture_without_a_classifier_class_is_one_line(tiny_models, task_files, tmp_path, run_cli):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_models["bert"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "whisper"  # an encoder-decoder for speech: no *ForSequenceClassification
    (folder / "config.json").write_text(json.dumps(config))
    code, _, err = run_cli("validate", _study_file(tmp_path, folder, task_files, {}))
    assert code == 2 and "'whisper' has no sequence-classification class" in err.strip().splitlines()[-1] and "Traceback" not in err


@pytest.mark.parametrize(("model_type", "expected"), [("gpt2", ["c_attn"]), ("distilbert", ["q_lin", "v_lin"]),
                                                      ("llama", ["q_proj", "v_proj"])])
def test_auto_targets_are_the_architectures_defaults(model_type, expected, tiny_models):
    model = apply_method(new_classifier(str(tiny_models[model_type]), 3), TrialParams(method="lora"))
    assert sorted(model.peft_config["default"].target_modules) == expected


def test_all_linear_adapts_every_linear_layer_but_the_head(tiny_models):
    model = apply_method(new_classifier(str(tiny_models["distilbert"]), 3), TrialParams(method="lora", lora_target_modules="all-linear"))
    adapted = {n.split(".lora_A")[0] for n, _ in model.named_parameters() if ".lora_A." in n}
    assert any(n.endswith("ffn.lin1") for n in adapted) and not any("classifier" in n for n in adapted)


@pytest.mark.parametrize(("model_type", "head"), [("deberta-v2", "pooler"), ("distilbert", "pre_classifier")])
def test_the_whole_head_trains_and_is_saved_with_the_adapter(model_type, head, tiny_models, tmp_path):
    model = apply_method(new_classifier(str(tiny_models[model_type]), 3), TrialParams(method="lora"))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad and f".{head}." in n]
    assert trainable
    model.save_pretrained(tmp_path)
    assert head in json.loads((tmp_path / "adapter_config.json").read_text())["modules_to_save"]


@pytest.mark.parametrize(("model_type", "embeddings"), [("gpt2", ("wte", "wpe")), ("llama", ("embed_tokens",))])
def test_freeze_layers_freezes_a_decoders_embeddings_and_bottom_blocks(model_type, embeddings, tiny_models):
    model = apply_method(new_classifier(str(tiny_models[model_type]), 3), TrialParams(method="full", freeze_layers=1))
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert all(any(f".{e}." in n for n in frozen) for e in embeddings)
    assert any(".0." in n for n in frozen) and not any(".1." in n for n in frozen)


def test_lora_variants_reach_peft(tiny_models):
    path = str(tiny_models["bert"])
    plain = apply_method(new_classifier(path, 3), TrialParams(method="lora", lora_r=4, lora_alpha=16))
    rs = apply_method(new_classifier(path, 3), TrialParams(method="lora", lora_r=4, lora_alpha=16, use_rslora=True))
    layer = lambda m: next(mod for n, mod in m.named_modules() if n.endswith("attention.self.query"))
    assert layer(plain).scaling["default"] == pytest.approx(16 / 4) and layer(rs).scaling["default"] == pytest.approx(16 / 2)
    dora = apply_method(new_classifier(path, 3), TrialParams(method="lora", use_dora=True))
    assert any("lora_magnitude_vector" in n for n, _ in dora.named_parameters())
    fresh = new_classifier(path, 3)
    before = fresh.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    pissa = apply_method(fresh, TrialParams(method="lora", init_lora_weights="pissa"))
    # PiSSA moves the principal part of each adapted weight into A and B: the residual base differs.
    assert not torch.allclose(layer(pissa).base_layer.weight, before)


def test_lora_plus_trains_b_at_ratio_times_the_lora_rate(tiny_models):
    from tuneflow.training.optimizer import make_optimizer
    from tuneflow.training.runtime import Runtime

    model = apply_method(new_classifier(str(tiny_models["bert"]), 3), TrialParams(method="lora"))
    optimizer = make_optimizer(model, 1e-4, 0.0, Runtime.pick("cpu"), 1e-3, 2e-4, lora_plus_ratio=16)
    rates = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    by_name = {n: rates[id(p)] for n, p in model.named_parameters() if p.requires_grad}
    assert {round(r, 9) for n, r in by_name.items() if ".lora_B." in n} == {round(2e-4 * 16, 9)}
    assert {round(r, 9) for n, r in by_name.items() if ".lora_A." in n} == {round(2e-4, 9)}


def test_bad_lora_variant_values_are_config_errors():
    from tuneflow.config.errors import ConfigError

    with pytest.raises(ConfigError, match="init_lora_weights.*did you mean 'pissa'"):
        TrialParams(init_lora_weights="pisa")
    with pytest.raises(ConfigError, match="lora_plus_ratio"):
        TrialParams(lora_plus_ratio=0)
    assert TrialParams(init_lora_weights="pissa_niter_4").init_lora_weights == "pissa_niter_4"

"""Before a study starts: every model candidate resolves, its tokenizer loads, and the space fits it.

One model or several (``model: {candidates: [...]}``), the same checks run for each, and an error
names the candidate's key (``model.candidates[1].name``) so the user knows which one is wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneflow.config.errors import ConfigError, first_line
from tuneflow.config.study_config import StudyConfig

if TYPE_CHECKING:
    from tuneflow.models.model_source import ModelSource


def check_models(config: StudyConfig, *, file: str) -> dict[str, str]:
    """Label -> resolved model path of each candidate (file order), after its tokenizer and model checks."""
    from tuneflow.models.model_check import check_model
    from tuneflow.models.model_source import check_model_source

    paths: dict[str, str] = {}
    for prefix, label, model, own in _candidates(config):
        # A local folder holds config.json and a tokenizer (one clear line); a hub id is tried by loading.
        path = check_model_source(model, config.directory, file=file, key=f"{prefix}.name", hub=False).path
        check_tokenizer(path, model.revision, file=file, key=f"{prefix}.name")
        try:
            # Built on the meta device: LoRA targets, freeze_layers, quantization, against this candidate.
            check_model(own, path, file=file)
        except ConfigError as err:
            raise candidate_error(err, prefix, label) from None
        paths[label] = path
    return paths


def check_checkpoints(config: StudyConfig, *, file: str) -> dict[str, "ModelSource"]:
    """The torch-free check of each candidate (``tuneflow validate``): label -> where it comes from and what was checked.

    A local folder must hold config.json and a tokenizer, a hub id must exist on the hub (offline:
    marked not checked), and the search space must fit the checkpoint (LoRA targets, freeze_layers).
    """
    from tuneflow.models.model_check import check_checkpoint
    from tuneflow.models.model_source import check_model_source

    sources = {}
    for prefix, label, model, own in _candidates(config):
        source = check_model_source(model, config.directory, file=file, key=f"{prefix}.name")
        try:
            check_checkpoint(own, source.path, file=file)
        except ConfigError as err:
            raise candidate_error(err, prefix, label) from None
        sources[label] = source
    return sources


def _candidates(config: StudyConfig):
    """(key prefix, label, model config, the study as that candidate sees it) for each candidate, file order."""
    for i, (label, model) in enumerate(config.model.choices.items()):
        if config.model.candidates:
            yield f"model.candidates[{i}]", label, model, config.for_model(model)
        else:
            yield "model", label, model, config


def check_tokenizer(path: str, revision: str | None, *, file: str, key: str) -> None:
    from tuneflow.models.loading import load_tokenizer

    try:
        load_tokenizer(path, revision)
    except ConfigError as err:
        raise err.at(file=file, key_prefix=key) from None
    except Exception as err:  # not a model folder, not on the hub, no network: say so in one line
        message = first_line(err)
        raise ConfigError(f"cannot load the model's tokenizer from {path!r}: {message}", file=file, key=key) from None


def candidate_error(err: ConfigError, prefix: str, label: str) -> ConfigError:
    """A model check's error for one candidate: ``model.X`` keys move under the candidate's key, and a
    search-space error (the same key for every candidate) says which candidate it is about."""
    if prefix == "model":
        return err
    key, message = err.key, err.message
    if key and key.startswith("model."):
        key = f"{prefix}.{key[len('model.'):]}"
    else:
        message = f"model candidate {label!r}: {message}"
    return ConfigError(message, file=err.file, key=key)

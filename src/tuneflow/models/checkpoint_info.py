"""What a local checkpoint holds, read without torch or its weights: for ``tuneflow validate``.

``config.json`` gives the family and the layer count; the safetensors headers (a JSON block at the
start of each file) give the module names; transformers' own table of sequence-classification
classes is read from its source, since importing transformers' auto classes imports torch. The run
path checks the same against a model built on the meta device (:mod:`tuneflow.models.model_check`).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tuneflow.config.study_config import ModelConfig
from tuneflow.models.packaged import packaged_model_dir

LAYER_COUNT_KEYS = ("num_hidden_layers", "n_layer", "n_layers", "num_layers")
PACKAGE_PREFIX = "package:"


def resolve_model_path(model: ModelConfig, base_dir: Path | None = None) -> str:
    """``package:NAME`` -> its folder; an existing local directory -> absolute path; else a hub id."""
    model = model.first  # several candidates: the first (the study plan resolves each, see StudyPlan.models)
    if model.name.startswith(PACKAGE_PREFIX):
        return str(packaged_model_dir(model.name[len(PACKAGE_PREFIX):]))
    for candidate in (Path(model.name), (base_dir or Path.cwd()) / model.name):
        if candidate.is_dir():
            return str(candidate.resolve())
    return model.name


@dataclass(frozen=True)
class CheckpointInfo:
    model_type: str
    num_layers: int | None
    module_names: tuple[str, ...] | None  # None: no safetensors file to read them from


def checkpoint_info(path: str) -> CheckpointInfo | None:
    """What ``path`` holds, if it is a local model folder with a ``config.json`` (else None: a hub id)."""
    folder = Path(path)
    config_file = folder / "config.json"
    if not config_file.is_file():
        return None
    config = json.loads(config_file.read_text(encoding="utf-8"))
    layers = next((config[k] for k in LAYER_COUNT_KEYS if isinstance(config.get(k), int)), None)
    files = sorted(folder.glob("*.safetensors"))
    names = None
    if files:
        keys = [k for f in files for k in _safetensors_keys(f)]
        names = tuple(sorted({k.rsplit(".", 1)[0] for k in keys}))
    return CheckpointInfo(model_type=str(config.get("model_type", "")), num_layers=layers, module_names=names)


def _safetensors_keys(file: Path) -> list[str]:
    with file.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    return [k for k in header if k != "__metadata__"]


@lru_cache(maxsize=1)
def sequence_classification_types() -> frozenset[str] | None:
    """Model types transformers has a ``*ForSequenceClassification`` for (None if its table cannot be read)."""
    spec = importlib.util.find_spec("transformers.models.auto.modeling_auto")
    if spec is None or spec.origin is None:
        return None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES":
            try:
                return frozenset(name for name, _ in ast.literal_eval(node.value.args[0]))
            except (ValueError, AttributeError, IndexError):
                return None
    return None

"""Where a study's model comes from, checked without torch before anything trains.

``model.name`` is a local folder (it must hold a ``config.json`` and a tokenizer), ``package:NAME``
(a folder inside a pip package) or a hub id. A hub id is looked up with ``huggingface_hub`` when the
hub can be reached; offline (``HF_HUB_OFFLINE=1``, or no answer within a few seconds) it is reported
as *not checked*, never as fine, so a made-up id does not pass unnoticed. A name shaped like a path
(``./models/x``, ``/abs/x``) that is no folder is refused at once, with the nearest folder name.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from tuneflow.config.errors import ConfigError, first_line
from tuneflow.config.file_hints import missing_file_hint
from tuneflow.config.study_config import ModelConfig
from tuneflow.models.checkpoint_info import PACKAGE_PREFIX, checkpoint_info, resolve_model_path

HUB_TIMEOUT_S = 5.0  # one metadata request: enough on a working network, short when there is none
# Files that hold a tokenizer's vocabulary or its settings (fast and slow tokenizers of the common families).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model",
                   "tokenizer.model", "sentencepiece.bpe.model")


@dataclass(frozen=True)
class ModelSource:
    """A model name resolved: the path (or hub id) trials load, and what was checked about it."""

    path: str
    description: str  # validate's model line, e.g. "local folder /abs/tiny (bert, 2 layers)"
    checked: bool = True  # False: a hub id that could not be looked up (offline)


def check_model_source(model: ModelConfig, base_dir: Path, *, file: str, key: str, hub: bool = True) -> ModelSource:
    """Resolve ``model.name`` and check it; a :class:`ConfigError` at ``key`` (e.g. ``model.name``) when it cannot work.

    ``hub=False`` (the run path, which loads the tokenizer next anyway) skips the hub lookup.
    """
    try:
        path = resolve_model_path(model, base_dir)
    except ConfigError as err:  # an unknown package:NAME
        raise err.at(file=file, key_prefix=key) from None
    if Path(path).is_dir():
        kind = "package folder" if model.name.startswith(PACKAGE_PREFIX) else "local folder"
        return ModelSource(path, f"{kind} {path} ({_check_folder(Path(path), file=file, key=key)})")
    if _looks_like_path(model.name, base_dir):
        intended = Path(model.name).expanduser()
        intended = intended if intended.is_absolute() or not (base_dir / intended).parent.is_dir() else base_dir / intended
        raise ConfigError(f"model folder {model.name!r} not found (looked in the working directory and beside the study file)"
                          f"{missing_file_hint(intended, folders=True)}", file=file, key=key)
    if not hub:
        return ModelSource(path, f"hub id {path}")
    return _hub_source(path, model.revision, file=file, key=key)


def _check_folder(folder: Path, *, file: str, key: str) -> str:
    """A model folder holds a readable ``config.json`` with a model type and a tokenizer; its family and depth."""
    files = sorted(p.name for p in folder.iterdir())
    shown = ", ".join(files[:12]) + (", ..." if len(files) > 12 else "") or "nothing"
    if "config.json" not in files:
        raise ConfigError(f"model folder {str(folder)!r} has no config.json (it holds: {shown})", file=file, key=key)
    try:
        info = checkpoint_info(str(folder))
    except (OSError, ValueError, struct.error) as err:  # unreadable, not JSON, a cut safetensors header
        raise ConfigError(f"cannot read {folder / 'config.json'}: {first_line(err)}", file=file, key=key) from None
    if info is None or not info.model_type:
        raise ConfigError(f"{folder / 'config.json'} names no model_type", file=file, key=key)
    if not any(name in files for name in TOKENIZER_FILES):
        raise ConfigError(f"model folder {str(folder)!r} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}; "
                          f"it holds: {shown})", file=file, key=key)
    return info.model_type + (f", {info.num_layers} layers" if info.num_layers else "")


def _looks_like_path(name: str, base_dir: Path) -> bool:
    """A name meant as a folder: absolute, ``./`` ``../`` ``~``, not of the hub's ``[namespace/]name`` form,
    or ``folder/name`` where that folder exists (beside the study file or here)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if name.startswith((".", "~", "/", "\\")):
        return True
    if "/" in name and any((root / name).parent.is_dir() for root in (base_dir, Path.cwd())):
        return True
    try:
        validate_repo_id(name)
    except HFValidationError:
        return True
    return False


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) set, now or when huggingface_hub was imported."""
    from huggingface_hub import constants

    return constants.is_offline_mode() or any(
        os.environ.get(name, "").upper() in ("1", "ON", "YES", "TRUE") for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _hub_source(repo_id: str, revision: str | None, *, file: str, key: str) -> ModelSource:
    """Look the id up on the hub: it must exist (at that revision) and hold a config.json."""
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    cached = isinstance(try_to_load_from_cache(repo_id, "config.json", revision=revision), str)
    unchecked = f"hub id {repo_id}, not checked offline{' (a copy is in the local hub cache)' if cached else ''}"
    if hub_offline():
        return ModelSource(repo_id, unchecked, checked=False)
    try:
        info = HfApi().model_info(repo_id, revision=revision, timeout=HUB_TIMEOUT_S)
    except GatedRepoError:  # it exists; downloading needs the user's accepted terms and token
        return ModelSource(repo_id, f"hub model {repo_id} (gated: accept its terms on the hub and log in to download it)")
    except RevisionNotFoundError:
        raise ConfigError(f"hub model {repo_id!r} has no revision {revision!r}", file=file,
                          key=key.rsplit(".", 1)[0] + ".revision") from None
    except RepositoryNotFoundError:
        raise ConfigError(f"no local folder and no hub model named {repo_id!r} (or it is private: log in with `hf auth login`)",
                          file=file, key=key) from None
    except Exception as err:  # noqa: BLE001 - no network, proxy, server error: the id stays unchecked
        return ModelSource(repo_id, f"{unchecked} ({first_line(err)})", checked=False)
    names = {s.rfilename for s in info.siblings or ()}
    if names and "config.json" not in names:
        raise ConfigError(f"hub model {repo_id!r} has no config.json (not a transformers model?)", file=file, key=key)
    return ModelSource(repo_id, f"hub model {repo_id} (found on the hub)")

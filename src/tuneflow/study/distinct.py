"""No wasted trials: a sampled trial never repeats a configuration the study has measured or is measuring.

On a discrete (or partly discrete) space TPE keeps proposing its favourite: the issue behind this
module saw one configuration sampled three times in a five-trial study. More seeds of a
configuration must be a deliberate act (``objective.seeds``, confirmation), not an accident.

:class:`DistinctSampler` wraps the study's sampler. Before a sampled trial starts
(``before_trial``, outside the admission lock) it drafts the trial's whole configuration with the
wrapped sampler — the same calls, in the same order, that the trial's own ``suggest_*`` calls would
make — and compares it with every configuration in the study (complete, pruned, failed, running,
and waiting ones that are whole). A repeat is drafted again (a fresh draw of the same sampler, up to
``attempts`` times); should the sampler insist (TPE on a categorical choice is deterministic), the
untried configuration nearest to its draft is taken instead (fewest parameters changed; ties broken
by the trial's own random stream), in an endless space a random one. The configuration is then fixed
on the trial (Optuna's ``fixed_params``, the mechanism ``enqueue_trial`` uses), so the trial suggests
exactly it, and claimed in storage for the trial, so two workers drafting at the same moment never both
run it. Enqueued trials (coverage, prior, warm starts, retries) are left as they are.

When a finite space has nothing left, :func:`untried_count` is 0 and the trial loop stops with a
message instead of starting a trial (:class:`SpaceExhausted` covers the race where two workers
start the last one together).
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

from tuneflow.config.choice_params import restrict_choices
from tuneflow.fleet.workers import SpaceExhausted  # the worker stops on it (raised here, caught there)
from tuneflow.transferability.source_choice import KEPT_SOURCES_ATTR

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from tuneflow.config.search_space import ParamSpec, SearchSpace

DRAFT_ATTR = "tuneflow:draft"  # trial system attr: how the sampled configuration was made distinct
ENUMERATION_LIMIT = 20_000  # a space with more configurations than this is treated as endless


def sampled_space(space: "SearchSpace", study_attrs: dict[str, Any]) -> "SearchSpace":
    """The space trials sample: cut to ``prior_keep``'s sources once the prior has written them."""
    return restrict_choices(space, "source", study_attrs.get(KEPT_SOURCES_ATTR))


def config_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


def _whole(space: "SearchSpace", params: dict[str, Any]) -> bool:
    """Does ``params`` give every parameter the space samples for it (a whole configuration)?"""
    missing = []

    def pick(name: str, spec: "ParamSpec", _values: dict[str, Any]) -> Any:
        if spec.type == "fixed":
            return spec.value
        if name not in params:
            missing.append(name)
        return params.get(name)

    space.walk(pick)
    return not missing


def trial_config(trial: "FrozenTrial", space: "SearchSpace") -> dict[str, Any] | None:
    """A trial's configuration (its params, or the values fixed on it before it suggests); None while partial."""
    params = {**(trial.system_attrs.get("fixed_params") or {}), **trial.params}
    return params if params and _whole(space, params) else None


def taken_configs(trials: Iterable["FrozenTrial"], space: "SearchSpace", *, besides: int | None = None) -> set[tuple]:
    """Keys of the configurations measured, being measured, or waiting to be (``besides``: a trial number to skip)."""
    taken = set()
    for trial in trials:
        if trial.number == besides:
            continue
        params = trial_config(trial, space)
        if params is not None:
            taken.add(config_key(params))
    return taken


def _discrete_values(spec: "ParamSpec") -> tuple[Any, ...] | None:
    values = spec.possible_values()
    if values is None and spec.type == "float" and spec.step:
        count = int(math.floor((spec.high - spec.low) / spec.step + 1e-9)) + 1
        values = tuple(float(spec.low + i * spec.step) for i in range(count))
    return values


_ENUMERATED: dict[str, list[dict[str, Any]] | None] = {}  # repr of a space's parameters -> its configurations


def all_configs(space: "SearchSpace", limit: int = ENUMERATION_LIMIT) -> list[dict[str, Any]] | None:
    """Every configuration of a finite space (conditions applied), or None when it is endless or huge.
    Remembered per space: the trial loop asks before every trial."""
    key = f"{limit}:{space.parameters!r}"
    if key not in _ENUMERATED:
        if len(_ENUMERATED) > 16:
            _ENUMERATED.clear()
        _ENUMERATED[key] = _enumerate(space, limit)
    return _ENUMERATED[key]


def _enumerate(space: "SearchSpace", limit: int) -> list[dict[str, Any]] | None:
    names = list(space.parameters)
    found: dict[tuple, dict[str, Any]] = {}

    class _Endless(Exception):
        pass

    def visit(i: int, values: dict[str, Any]) -> None:
        if len(found) > limit:
            raise _Endless
        if i == len(names):
            params = space.searched(values)
            found.setdefault(config_key(params), params)
            return
        name = names[i]
        if not space.active(name, values):
            visit(i + 1, values)
            return
        options = _discrete_values(space.parameters[name])
        if options is None:
            raise _Endless
        for value in options:
            visit(i + 1, {**values, name: value})

    try:
        visit(0, {})
    except _Endless:
        return None
    return list(found.values())


def untried_count(study: optuna.Study, space: "SearchSpace") -> int | None:
    """Configurations of a finite space that no trial holds; None for an endless (or huge) space."""
    space = sampled_space(space, study.user_attrs)
    configs = all_configs(space)
    if configs is None:
        return None
    taken = taken_configs(study.get_trials(deepcopy=False), space)
    return sum(config_key(c) not in taken for c in configs)


def exhausted(study: optuna.Study, space: "SearchSpace") -> str | None:
    """Why no new trial could differ from the study's (every configuration of a finite space tried, or about
    to be: running trials still drafting theirs take one each), or None."""
    untried = untried_count(study, space)
    if untried is None:
        return None
    restricted = sampled_space(space, study.user_attrs)
    drafting = sum(trial_config(t, restricted) is None for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    if untried > drafting:
        return None
    tried = "have been tried" if untried == 0 else "have been tried or are being drafted by running trials"
    return f"all {len(all_configs(restricted) or [])} configurations of the search space {tried}"


class _DraftTrial:
    """Stands in for ``optuna.Trial`` while a configuration is drafted: the sampler is asked exactly as the
    trial would ask it (relative parameters first, then independent ones), but nothing is stored."""

    def __init__(self, sampler: BaseSampler, study: optuna.Study, trial: "FrozenTrial"):
        import copy

        self.sampler, self.study = sampler, study
        self.trial = copy.copy(trial)
        self.trial.params, self.trial.distributions = {}, {}
        self._relative: dict[str, Any] | None = None
        self._relative_space: dict[str, Any] = {}

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False) -> float:
        return self._suggest(name, FloatDistribution(low, high, log=log, step=step))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return self._suggest(name, IntDistribution(low, high, log=log, step=step))

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self._suggest(name, CategoricalDistribution(choices))

    def _suggest(self, name: str, distribution) -> Any:
        from optuna import distributions

        if distribution.single():
            value = distributions._get_single_value(distribution)
        else:
            if self._relative is None:
                self._relative_space = self.sampler.infer_relative_search_space(self.study, self.trial)
                self._relative = self.sampler.sample_relative(self.study, self.trial, self._relative_space)
            if name in self._relative and name in self._relative_space and distribution._contains(
                    distribution.to_internal_repr(self._relative[name])):
                value = self._relative[name]
            else:
                value = self.sampler.sample_independent(self.study, self.trial, name, distribution)
        self.trial.params[name] = value
        self.trial.distributions[name] = distribution
        return value


def _nearest(draft: dict[str, Any], candidates: list[dict[str, Any]], rng: np.random.Generator) -> dict[str, Any]:
    """The candidate that changes the fewest of ``draft``'s values (ties: a random one of them)."""
    def distance(c: dict[str, Any]) -> int:
        return sum(draft.get(k) != c.get(k) for k in set(draft) | set(c))

    best = min(map(distance, candidates))
    closest = [c for c in candidates if distance(c) == best]
    return closest[int(rng.integers(len(closest)))]


class DistinctSampler(BaseSampler):
    """Wraps a sampler so that no sampled trial repeats a configuration of the study (see the module docstring)."""

    def __init__(self, base: BaseSampler, *, space: "SearchSpace", seed: int | None = None, attempts: int = 4,
                 claim: Callable[[str, int], bool] | None = None):
        self.base = base
        self.space = space
        self.attempts = attempts
        self.claim = claim  # (configuration hash, trial number) -> may this trial run it (see before_trial)
        self._rng = np.random.default_rng(seed)

    def __str__(self) -> str:
        return f"{self.base} (distinct configurations)"

    # Everything a trial asks after before_trial goes to the wrapped sampler unchanged.
    def infer_relative_search_space(self, study, trial):
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()
        self._rng = np.random.default_rng()

    def _take(self, params: dict[str, Any], taken: set[tuple], study, number: int) -> bool:
        """May this trial run ``params``? Not if the study holds it; else claim it in storage (another worker
        may be drafting the same configuration this very moment) and look again (a holder that finished
        meanwhile has left its claim, but not its params). A refused configuration joins ``taken``."""
        key = config_key(params)
        if key in taken:
            return False
        if self.claim is not None:
            digest = hashlib.sha1(repr(key).encode()).hexdigest()[:16]
            if not self.claim(f"config:{digest}", number) or key in taken_configs(study.get_trials(deepcopy=False), sampled_space(
                    self.space, study.user_attrs), besides=number):
                taken.add(key)
                return False
        return True

    def before_trial(self, study, trial: "FrozenTrial") -> None:
        self.base.before_trial(study, trial)
        if trial.system_attrs.get("fixed_params") or trial.params:
            return  # enqueued (coverage, prior, warm start) or re-queued: its configuration is chosen already
        space = sampled_space(self.space, study.user_attrs)
        taken = taken_configs(study.get_trials(deepcopy=False), space, besides=trial.number)
        draft, how = None, {"attempts": 0}
        for attempt in range(1, self.attempts + 1):
            draft = space.searched(space.suggest(_DraftTrial(self.base, study, trial)))
            how["attempts"] = attempt
            if self._take(draft, taken, study, trial.number):
                break
        else:
            configs = all_configs(space)
            if configs is not None:
                untried = [c for c in configs if config_key(c) not in taken]
                while untried and not self._take(choice := _nearest(draft, untried, self._rng), taken, study, trial.number):
                    untried = [c for c in untried if config_key(c) not in taken]
                if not untried:
                    raise SpaceExhausted(f"all {len(configs)} configurations of the search space are measured or running")
                draft = choice
                how["nearest_untried"] = True
            else:  # an endless space where the sampler insists (GP proposes one point to workers sampling together)
                fallback = optuna.samplers.RandomSampler(seed=int(self._rng.integers(2**31)))
                for _ in range(self.attempts):
                    draft = space.searched(space.suggest(_DraftTrial(fallback, study, trial)))
                    if self._take(draft, taken, study, trial.number):
                        how["random"] = True
                        break
                else:
                    how["repeat"] = True  # nothing distinct found: let it run, but say so
        study._storage.set_trial_system_attr(trial._trial_id, "fixed_params", draft)
        study._storage.set_trial_system_attr(trial._trial_id, DRAFT_ATTR, how)
        trial.system_attrs["fixed_params"] = draft  # optuna.Trial reads them from this very object next
        trial.system_attrs[DRAFT_ATTR] = how


def distinct(sampler: BaseSampler, *, space: "SearchSpace | None", seed: int | None = None,
             claim: Callable[[str, int], bool] | None = None) -> BaseSampler:
    """``sampler`` wrapped in :class:`DistinctSampler`; the grid sampler (one grid point per trial) and a
    sampler with no tuneflow space to walk are returned as they are."""
    if space is None or isinstance(sampler, optuna.samplers.GridSampler):
        return sampler
    return DistinctSampler(sampler, space=space, seed=seed, claim=claim)

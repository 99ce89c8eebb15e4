"""Coverage before exploitation: every arm is measured before the sampler is left to choose.

A sampler exploits what it has seen: if its first random draws all miss an arm (the issue behind
this module saw ten trials of one mapping, and three of four sources never tried), the study never
answers "does transfer help?" or "which source?". So before the sampler chooses, each arm the space
allows (:func:`tuneflow.study.arms.space_arms`: target only, every mapping x source, per model) gets an
enqueued trial at the space's centre (:mod:`tuneflow.config.space_points`), ordered by LogME when
``prior: logme`` has ranked the candidates (else the space's order, target only first).

The learning rate decides whether an arm works at all (a sequential run can collapse at one learning
rate and win at another), so a verdict drawn from one learning rate per arm can be wrong. Coverage
therefore tries each arm at ``coverage.learning_rates`` rungs of the learning-rate ladder (the
centre, then the lower quartile, then the upper), one round per rung, as long as the rounds take at
most half of ``budget.n_trials`` (the first round always runs); the sampler, which never repeats a
configuration (:mod:`tuneflow.study.distinct`), spends the rest.

The grid sampler needs none (its grid holds every arm; an enqueued trial would repeat a grid point).
Coverage trials count against the budget like any trial. They are enqueued once per budget: a claim
in storage makes one of several workers starting together do it, and the study user attr
``tuneflow_coverage:<budget>`` records what was enqueued and what the budget left untried (a warning
names those arms). An arm already holding trials (a prior, a warm start, an earlier run) needs that
many fewer; resuming with a larger budget enqueues what the new budget makes room for.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from tuneflow.config.space_points import centre_params, ladder_length
from tuneflow.study.arms import Arm, space_arms, trial_arm
from tuneflow.fleet.budget import TrialCount
from tuneflow.study.distinct import config_key, sampled_space, taken_configs
from tuneflow.transfer.base import get_strategy
from tuneflow.transferability.prior import RANKING_ATTR
from tuneflow.transferability.source_choice import KEPT_SOURCES_ATTR

if TYPE_CHECKING:
    import optuna

    from tuneflow.config.study_config import StudyConfig
    from tuneflow.fleet.claims import OncePerStudy

ATTR_PREFIX = "tuneflow_coverage:"  # study user attr per budget: what coverage enqueued and left untried
CLAIM_TTL = 120.0  # seconds: enqueuing takes milliseconds; a dead claimer's claim lapses after this


@dataclass(frozen=True)
class Planned:
    arm: Arm
    rung: int
    params: dict[str, Any]


def arm_logme(study_attrs: dict[str, Any]) -> Callable[[Arm], float | None]:
    """Arm -> the best LogME of a candidate of the study's model(s) that stands for it (None: not scored)."""
    scores = [s for s in (study_attrs.get(RANKING_ATTR) or {}).get("scores", []) if s.get("model_label") is not None]

    def score(arm: Arm) -> float | None:
        fitting = [s["logme"] for s in scores if (arm.model is None or s["model_label"] == arm.model)
                   and (s.get("source") is None if arm.target_only else s.get("source") == arm.source)]
        return max(fitting, default=None)

    return score


def plan_coverage(config: "StudyConfig", study: "optuna.Study", *, total: int | None) -> tuple[list[Planned], list[Planned], list[Arm]]:
    """(trials to enqueue now, trials the budget has no room for, arms in coverage order)."""
    attrs = study.user_attrs
    space = sampled_space(config.space, attrs)
    arms = space_arms(config, kept_sources=attrs.get(KEPT_SOURCES_ATTR), space=space)
    score = arm_logme(attrs)
    ranked = sorted(range(len(arms)), key=lambda i: (score(arms[i]) is None, -(score(arms[i]) or 0.0), i))
    arms = [arms[i] for i in ranked]  # LogME order when scored (a stable sort keeps the space's order otherwise)
    rounds = min(config.coverage.learning_rates, ladder_length(space))
    if total is not None:
        rounds = max(1, min(rounds, (total // 2) // max(len(arms), 1)))
    trials = study.get_trials(deepcopy=False)
    count = TrialCount.of(trials)
    held: dict[Arm, int] = {}
    for trial in trials:
        held[trial_arm(trial)] = held.get(trial_arm(trial), 0) + 1
    taken = taken_configs(trials, space)
    planned: list[Planned] = []
    for rung in range(rounds):
        for arm in arms:
            if held.get(arm, 0) > rung:
                continue  # this arm holds enough trials already (a prior, a warm start, an earlier run)
            params = centre_params(space, chosen=arm.params(), rung=rung, strategies=get_strategy)
            if config_key(params) in taken:
                continue
            taken.add(config_key(params))
            planned.append(Planned(arm, rung, params))
    room = None if total is None else max(total - count.used - count.waiting, 0)
    return (planned, [], arms) if room is None else (planned[:room], planned[room:], arms)


def apply_coverage(config: "StudyConfig", study: "optuna.Study", *, once: "OncePerStudy", total: int | None,
                   message: Callable[[str], None] | None = None, poll: float = 0.5) -> dict[str, Any] | None:
    """Enqueue the coverage trials once per budget (see the module docstring); the record written, or None.

    Workers starting together: one claims and enqueues (milliseconds); the others wait for its record,
    so none of them samples a trial before the arms are queued.
    """
    if not config.coverage.enabled or config.sampler.name == "grid":
        return None  # the grid measures every arm by construction; an enqueued trial would repeat a grid point
    done_attr = f"{ATTR_PREFIX}{'timeout' if total is None else total}"
    deadline = time.monotonic() + CLAIM_TTL + 5
    while not once.claim(f"coverage:{total}", done_attr=done_attr, ttl=CLAIM_TTL):
        if done_attr in study.user_attrs or time.monotonic() > deadline:
            return None
        time.sleep(poll)
    enqueue, untried, arms = plan_coverage(config, study, total=total)
    for item in enqueue:
        study.enqueue_trial(item.params, user_attrs={"enqueued_by": "coverage", "enqueued_as": "coverage",
                                                     "arm": item.arm.label, "coverage_rung": item.rung})
    record = {
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "budget": total,
        "arms": [a.label for a in arms],
        "enqueued": [{"arm": p.arm.label, "rung": p.rung, "params": p.params} for p in enqueue],
        "untried": [{"arm": p.arm.label, "rung": p.rung} for p in untried],
    }
    study.set_user_attr(done_attr, record)
    say = message or (lambda line: None)
    if enqueue:
        rungs = 1 + max(p.rung for p in enqueue)
        say(f"coverage: {len(enqueue)} trial(s) enqueued for {len(arms)} arm(s)"
            + (f" at {rungs} learning rates each" if rungs > 1 else "") + ": " + ", ".join(a.label for a in arms))
    missing = list(dict.fromkeys(p.arm.label for p in untried if p.rung == 0))
    if missing:
        say(f"warning: a budget of {total} trials leaves {len(missing)} of {len(arms)} arms untried: {', '.join(missing)}")
    return record

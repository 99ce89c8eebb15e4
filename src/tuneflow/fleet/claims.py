"""Work meant to happen once per study happens once, however many workers start together.

The LogME prior and each transfer baseline are *claimed* in storage before anyone does them: under
the study's lock (:class:`tuneflow.fleet.budget.LocalGate`, or the proxy's for ``grpc://``), a worker
writes a claim (study system attr ``tuneflow:claim:<key>``) unless the work is done already (its
result attr exists) or someone else's claim is still live. A claim dies with its owner:

* tied to a trial (a transfer baseline): once that trial is no longer RUNNING (it failed, or its
  dead worker's heartbeat ran out) while the result is still missing;
* with a ``ttl`` (the prior, which no trial runs): that many seconds after it was written.

Whoever loses the claim waits for the result (:meth:`OncePerStudy.wait_or_claim`) or skips the work
(:meth:`OncePerStudy.claim`). The lower layers get these as plain callables: they never import this one.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from typing import Any

from optuna.trial import TrialState

CLAIM_PREFIX = "tuneflow:claim:"


def owner_id() -> str:
    """``hostname:pid:nonce``: one per :class:`OncePerStudy`, so threads of one process compete too."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def try_claim(study, key: str, *, owner: str, done_attr: str, trial: int | None = None, ttl: float | None = None) -> bool:
    """Write this caller's claim on ``key`` unless the work is done or claimed by someone alive. Under the lock."""
    storage, study_id = study._storage, study._study_id
    if done_attr in storage.get_study_user_attrs(study_id):
        return False
    held = storage.get_study_system_attrs(study_id).get(CLAIM_PREFIX + key)
    if held is not None and held.get("owner") != owner and _alive(study, held):
        return False
    storage.set_study_system_attr(study_id, CLAIM_PREFIX + key, {"owner": owner, "trial": trial, "at": time.time(), "ttl": ttl})
    return True


def _alive(study, claim: dict[str, Any]) -> bool:
    if claim.get("ttl") is not None and time.time() - claim["at"] > claim["ttl"]:
        return False
    if claim.get("trial") is not None:
        running = study._storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.RUNNING,))
        return any(t.number == claim["trial"] for t in running)
    return True


def claim_of(study, key: str) -> dict[str, Any] | None:
    """The claim on ``key`` as stored (owner, trial, time), if any."""
    return study._storage.get_study_system_attrs(study._study_id).get(CLAIM_PREFIX + key)


class OncePerStudy:
    """Claims and exact counters for one study, through its gate (local lock or proxy)."""

    def __init__(self, gate, study, *, poll: float = 1.0):
        self.gate = gate
        self.study = study
        self.poll = poll  # seconds between looks while another worker does the work
        self.owner = owner_id()

    def claim(self, key: str, *, done_attr: str, ttl: float | None = None) -> bool:
        """True: do the work now (claimed). False: it is done, or being done by a live worker."""
        return self.gate.claim(self.study, key, owner=self.owner, done_attr=done_attr, ttl=ttl)

    def wait_or_claim(self, key: str, *, done_attr: str, trial: int) -> bool:
        """True: this trial must do the work. False: it is done (read ``done_attr``). Waits while another trial does it."""
        owner = f"{self.owner}#{trial}"  # threads of one process run different trials
        while True:
            if self.gate.claim(self.study, key, owner=owner, done_attr=done_attr, trial=trial):
                return True
            if done_attr in self.study._storage.get_study_user_attrs(self.study._study_id):
                return False
            time.sleep(self.poll)

    def hold(self, key: str, *, trial: int) -> bool:
        """Claim ``key`` for a running trial (no result to wait for): False while another live trial holds it.
        Sampled trials claim their configuration this way, so two workers drafting at once never both run it."""
        return self.gate.claim(self.study, key, owner=f"{self.owner}#{trial}", done_attr=CLAIM_PREFIX + "never-done", trial=trial)

    def increment(self, attr: str, by: int = 1) -> int:
        return self.gate.increment(self.study, attr, by)

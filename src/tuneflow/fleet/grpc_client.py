"""``grpc://host:port``: a worker's storage through a ``tuneflow proxy`` (Optuna's gRPC storage proxy).

Optuna's ``GrpcStorageProxy`` carries every storage call; a worker holds no database connection, only
one gRPC channel. What that proxy cannot do from a client, tuneflow's small service beside it in the
same proxy process does (:mod:`tuneflow.fleet.proxy`), all as JSON over one unary method:

* the study's locked operations (:class:`tuneflow.fleet.budget.LocalGate`): ``reserve`` (count and
  reserve a trial under the database's lock), ``claim`` and ``increment`` (once-per-study work);
* heartbeats: ``record_heartbeat`` and the ages of running trials' heartbeats (by the database's clock),
  so stale trials are failed and re-queued exactly as on a direct SQL storage.

The proxy's own storage is wrapped in Optuna's cache, as Optuna advises for its proxy.
"""

from __future__ import annotations

import json
import warnings
from typing import Any, Callable

from optuna.exceptions import ExperimentalWarning
from optuna.storages import GrpcStorageProxy
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import TrialState

SERVICE = "tuneflow.Fleet"  # beside Optuna's optuna.StorageService in the proxy process
METHOD = "Call"
PROTOCOL = 1


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


def decode(data: bytes) -> Any:
    return json.loads(data.decode())


class FleetStorage(GrpcStorageProxy, BaseHeartbeat):
    """Optuna's gRPC client storage, plus the admission gate, claims and heartbeats tuneflow's proxy serves."""

    def __init__(self, *, host: str, port: int, heartbeat_interval: int | None = None, grace_period: int | None = None,
                 on_stale: Callable | None = None):
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self._on_stale = on_stale  # re-queues a dead worker's trial (tuneflow.fleet.storage.Requeue)
        with warnings.catch_warnings():  # experimental in Optuna since 4.2
            warnings.simplefilter("ignore", ExperimentalWarning)
            super().__init__(host=host, port=port)

    def _setup(self) -> None:
        super()._setup()
        self._fleet = self._channel.unary_unary(f"/{SERVICE}/{METHOD}", request_serializer=encode, response_deserializer=decode)

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        return self._fleet({"op": op, **args})

    # -- the study's locked operations (the gate TrialLoop and OncePerStudy use) ----------------------

    def reserve(self, study, n_trials: int | None) -> int | None:
        return self.call("reserve", study=study.study_name, n_trials=n_trials)["trial_id"]

    def claim(self, study, key: str, **claim: Any) -> bool:
        return self.call("claim", study=study.study_name, key=key, **claim)["won"]

    def increment(self, study, attr: str, by: int = 1) -> int:
        return self.call("increment", study=study.study_name, attr=attr, by=by)["value"]

    # -- heartbeats (Optuna's BaseHeartbeat: fail_stale_trials works through the proxy) ---------------

    def record_heartbeat(self, trial_id: int) -> None:
        self.call("heartbeat", trial_id=trial_id)

    def heartbeat_ages(self, study) -> dict[int, float]:
        """Seconds since each running trial's last heartbeat, by the database's clock."""
        return self._ages(study.study_name)

    def _ages(self, study_name: str) -> dict[int, float]:
        return {int(number): age for number, age in self.call("beats", study=study_name)["ages"].items()}

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        grace = self.grace_period or 2 * (self.heartbeat_interval or 0)
        ages = self._ages(self.get_study_name_from_id(study_id))
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        return [t._trial_id for t in running if ages.get(t.number, 0.0) > grace]

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self):
        return self._on_stale if self.heartbeat_interval else None

"""``tuneflow proxy``: Optuna's gRPC storage proxy in front of PostgreSQL / MySQL, for large fleets.

Each worker that talks to the database directly keeps its own connection pool, so a thousand workers
need thousands of server connections (and re-open them after every network blip). Workers given
``grpc://host:port`` instead talk to a proxy; only proxies hold database connections.

One process serves two gRPC services on one port:

* Optuna's ``StorageService`` (``optuna.storages`` proxy servicer) over the database storage wrapped in
  Optuna's cache — every ordinary storage call;
* tuneflow's ``tuneflow.Fleet`` (:mod:`tuneflow.fleet.grpc_client`): the study's locked operations
  (count-and-reserve, claims, counters) run here under the database's own lock
  (:class:`tuneflow.fleet.budget.LocalGate`), and heartbeats. Several proxies in front of one
  database share that lock, so the budget stays exact across all of them.

Connections: a proxy opens at most ``2 x threads`` to the database (a pool of ``threads`` plus as
many on overflow; a locked operation holds two at once).
"""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tuneflow.config.errors import ConfigError
from tuneflow.config.storage_url import redact_text, redact_url, storage_kind
from tuneflow.fleet.budget import LocalGate
from tuneflow.fleet.grpc_client import METHOD, PROTOCOL, SERVICE, decode, encode
from tuneflow.fleet.monitor import heartbeat_ages
from tuneflow.fleet.storage import open_storage


class FleetService:
    """tuneflow's operations, on the proxy's own (cached) storage; one JSON request, one JSON answer."""

    def __init__(self, url: str, storage):
        self.url = url
        self.storage = storage
        self._studies: dict[str, tuple[Any, LocalGate]] = {}
        self._lock = threading.Lock()

    def _study(self, name: str):
        with self._lock:
            if name not in self._studies:
                import optuna

                study = optuna.load_study(study_name=name, storage=self.storage)
                self._studies[name] = (study, LocalGate(self.url, self.storage, name))
            return self._studies[name]

    def call(self, request: dict[str, Any], context) -> dict[str, Any]:
        import grpc

        op = request.pop("op", None)
        try:
            if op == "hello":
                return {"protocol": PROTOCOL}
            if op == "heartbeat":
                self.storage.record_heartbeat(request["trial_id"])
                return {}
            study, gate = self._study(request.pop("study"))
            if op == "reserve":
                return {"trial_id": gate.reserve(study, request["n_trials"])}
            if op == "claim":
                return {"won": gate.claim(study, request.pop("key"), **request)}
            if op == "increment":
                return {"value": gate.increment(study, request["attr"], request.get("by", 1))}
            if op == "beats":
                return {"ages": {str(n): age for n, age in heartbeat_ages(self.storage, study).items()}}
        except KeyError as err:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no such study or trial: {err}")
        except Exception as err:  # the client sees one line, never a password
            context.abort(grpc.StatusCode.INTERNAL, redact_text(f"{type(err).__name__}: {err}"))
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown operation {op!r}")


def build_server(url: str, *, host: str, port: int, threads: int, options=None, file: str | None = None):
    """The gRPC server (not started) and the port it bound (``port`` 0: any free port)."""
    if storage_kind(url) != "rdb":  # a grpc:// proxy, a journal file or redis
        raise ConfigError("the proxy serves an SQL database (postgresql+psycopg://..., mysql+pymysql://...); "
                          f"got {redact_url(url)!r}", file=file, key="storage")
    import dataclasses

    import grpc
    import optuna
    from optuna.storages._grpc.auto_generated import api_pb2_grpc
    from optuna.storages._grpc.servicer import OptunaStorageProxyService

    from tuneflow.config.study_config import StorageOptionsConfig

    # One pooled connection per server thread (as many more on overflow); heartbeats are the clients' business.
    options = dataclasses.replace(options or StorageOptionsConfig(), pool_size=threads, heartbeat_interval=None)
    storage = optuna.storages.get_storage(open_storage(url, options=options, file=file))  # Optuna's cache, as it advises
    server = grpc.server(ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tuneflow-proxy"))
    api_pb2_grpc.add_StorageServiceServicer_to_server(OptunaStorageProxyService(storage), server)
    fleet = FleetService(url, storage)
    handler = grpc.unary_unary_rpc_method_handler(fleet.call, request_deserializer=decode, response_serializer=encode)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler}),))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpcio raises or returns 0 when the address is taken or not local
        bound = 0
    if not bound:
        raise ConfigError(f"cannot listen on {host}:{port} (in use, or not an address of this machine)", key="port")
    return server, bound


def serve(url: str, *, host: str, port: int, threads: int, options=None, file: str | None = None) -> int:
    """Run the proxy until SIGTERM / Ctrl-C; prints the address workers use first."""
    server, bound = build_server(url, host=host, port=port, threads=threads, options=options, file=file)
    server.start()
    print(f"tuneflow proxy: {redact_url(url)} at grpc://{host}:{bound} ({threads} threads, at most "
          f"{2 * threads} database connections); workers: --storage grpc://{host}:{bound}", flush=True)
    stopped = threading.Event()

    def stop(signum, _frame) -> None:
        stopped.set()
        server.stop(grace=5)  # finish the calls in flight

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.wait_for_termination()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 128 + signal.SIGTERM if stopped.is_set() else 0

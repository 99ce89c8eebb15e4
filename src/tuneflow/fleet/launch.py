"""``tuneflow launch``: one ``tuneflow worker`` process per GPU slot (or N CPU workers), stopped together.

Each GPU slot gets its own ``CUDA_VISIBLE_DEVICES``; ``--per-gpu K`` packs K small-model workers on a
GPU. Threads are shared out (``OMP_NUM_THREADS`` = CPUs / workers, unless already set) so workers do
not fight over cores. Worker output is prefixed with its slot. Stop signals are forwarded to every
worker, which reacts as :mod:`tuneflow.fleet.workers` says: the first Ctrl-C (or SIGTERM with
``--graceful-sigterm``) lets each running trial finish, the next signal aborts them (failed and
re-queued), and one more kills the workers (their trials then come back through the heartbeat). A
plain SIGTERM aborts at once, and a second one kills. A launcher killed outright (``kill -9``,
``scancel --batch --signal=KILL``) takes its workers with it (:func:`die_with_launcher`). A storage
URL given with ``--storage`` reaches the workers through ``TUNEFLOW_STORAGE``, never their command
line (``ps`` shows that).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass

from tuneflow.config.errors import ConfigError
from tuneflow.fleet.workers import announce_from_handler


@dataclass(frozen=True)
class Slot:
    label: str
    env: dict[str, str]


def plan_slots(*, gpus: str | None, per_gpu: int, workers: int | None) -> list[Slot]:
    if per_gpu < 1:
        raise ConfigError("must be at least 1", key="per-gpu")
    if gpus:
        ids = [g.strip() for g in gpus.split(",") if g.strip()]
        if not ids or not all(g.isdigit() for g in ids) or len(set(ids)) != len(ids):
            raise ConfigError(f"expected distinct GPU indices like 0,1,2; got {gpus!r}", key="gpus")
        slots = [Slot(f"gpu{g}.{k}", {"CUDA_VISIBLE_DEVICES": g}) for g in ids for k in range(per_gpu)]
    else:
        if workers is None or workers < 1:
            raise ConfigError("give --gpus 0,1,... or --workers N (at least 1)", key="workers")
        slots = [Slot(f"cpu{k}", {"CUDA_VISIBLE_DEVICES": ""}) for k in range(workers)]
    threads = str(max(1, (os.cpu_count() or 1) // len(slots)))
    for slot in slots:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            slot.env[name] = os.environ.get(name, threads)
        slot.env["TUNEFLOW_WORKER_SLOT"] = slot.label
        slot.env["TUNEFLOW_LAUNCHER_PID"] = str(os.getpid())
    return slots


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_launcher() -> None:
    """In a worker that ``launch`` started: be killed when the launcher dies.

    Workers run in their own session (so a terminal's Ctrl-C reaches the launcher only), so nothing
    else stops them when the launcher is killed outright: they would go on outside the scheduler's job,
    holding its GPU. With this they die as it did, and their trials come back through the heartbeat.
    Linux only (``prctl(PR_SET_PDEATHSIG)``); elsewhere nothing happens.
    """
    launcher = os.environ.get("TUNEFLOW_LAUNCHER_PID")
    if not launcher or not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != int(launcher):  # it died before the line above took effect
        os.kill(os.getpid(), signal.SIGKILL)


def launch(study_file: str, slots: list[Slot], *, worker_args: list[str], storage: str | None,
           graceful_sigterm: bool = False) -> int:
    """Start the workers, relay their output, forward stop signals; the exit code says how it ended.

    ``graceful_sigterm``: the workers were started with ``--graceful-sigterm`` (so SIGTERM, too, first
    lets their trials finish)."""
    procs: list[subprocess.Popen] = []
    stop = {"signal": None, "count": 0, "forwarded": 1}
    graceful = {signal.SIGINT, signal.SIGTERM} if graceful_sigterm else {signal.SIGINT}

    def forward(signum, _frame) -> None:
        if stop["signal"] is None:
            stop["signal"] = signum
            if signum in graceful:  # the workers finish their trials; the next signal still reaches them
                stop["forwarded"] = 2
                announce_from_handler(f"tuneflow launch: {signal.Signals(signum).name}: each worker finishes its running "
                                      "trial, then stops (press Ctrl-C again to abort the trials: they are failed and "
                                      "re-queued)", to_stdout=True)
        stop["count"] += 1
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum if stop["count"] <= stop["forwarded"] else signal.SIGKILL)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    relays = []
    try:
        for slot in slots:
            env = {**os.environ, **slot.env, "TOKENIZERS_PARALLELISM": "false"}
            if storage:
                env["TUNEFLOW_STORAGE"] = storage
            proc = subprocess.Popen(
                [sys.executable, "-m", "tuneflow", "worker", study_file, *worker_args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                start_new_session=True,  # a terminal's Ctrl-C reaches the launcher only; it forwards once
            )
            procs.append(proc)
            relay = threading.Thread(target=_relay, args=(proc, slot.label), daemon=True)
            relay.start()
            relays.append(relay)
            if stop["signal"]:
                break
        print(f"tuneflow launch: {len(procs)} worker(s): {', '.join(s.label for s in slots[:len(procs)])}", flush=True)
        codes = [proc.wait() for proc in procs]
        codes = [128 - c if c < 0 else c for c in codes]  # killed by signal N: as a shell reports it
        for relay in relays:
            relay.join(timeout=5)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if stop["signal"]:
        print(f"tuneflow launch: stopped by {signal.Signals(stop['signal']).name}; exit codes {codes}", flush=True)
        return 128 + stop["signal"]
    failed = [c for c in codes if c != 0]
    print(f"tuneflow launch: all workers finished; exit codes {codes}", flush=True)
    return failed[0] if failed else 0


def _relay(proc: subprocess.Popen, label: str) -> None:
    for line in proc.stdout:
        sys.stdout.write(f"[{label}] {line}")
        sys.stdout.flush()

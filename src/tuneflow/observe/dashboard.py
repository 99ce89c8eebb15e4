"""optuna-dashboard for a study's storage (with its artifact store), and the study note it shows.

``tuneflow dashboard`` is optuna-dashboard's own WSGI app (``optuna_dashboard.wsgi``) behind the
same threaded wsgiref server its CLI uses; building the server here (instead of ``run_server``)
lets it pick a free port (``--port 0``) and be shut down cleanly, which the tests rely on.
"""

from __future__ import annotations

import sys
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from tuneflow.config.errors import ConfigError
from tuneflow.config.storage_url import redact_text, redact_url

if TYPE_CHECKING:
    import optuna

    from tuneflow.config.study_config import StudyConfig


# The last line of every note tuneflow writes. While it is there tuneflow keeps the note in step
# with the study file; delete it in the dashboard and tuneflow leaves your edited note alone.
NOTE_FOOTER = "_Written by tuneflow from the study file and rewritten when that changes; delete this line to keep your own edits._"


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _task_line(task) -> str:
    if task.hub is not None:
        where = f"hub `{task.hub.path}`" + (f" (`{task.hub.name}`)" if task.hub.name else "")
    elif task.package is not None:
        where = f"package `{task.package}`"
    else:
        splits = (("train", task.files.train), ("validation", task.files.validation), ("test", task.files.test))
        where = "files " + ", ".join(f"{split} `{Path(path).name}`" for split, path in splits if path)
    caps = [f"{k} {getattr(task, k)}" for k in ("max_train_rows", "max_validation_rows", "max_test_rows") if getattr(task, k)]
    return f"`{task.name}`: {where}" + (f"; {', '.join(caps)}" if caps else "")


def _kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())


def _space_row(name: str, spec) -> str:
    if spec.type == "categorical":
        values = ", ".join(str(c) for c in spec.choices)
    elif spec.type == "fixed":
        values = str(spec.value)
    else:
        values = f"[{spec.low:g}, {spec.high:g}]" + (" log" if spec.log else "") + (f" step {spec.step:g}" if spec.step else "")
    when = ", ".join(f"{k} = {v}" for k, v in (spec.when or {}).items())
    return f"| `{name}` | {spec.type} | {values} | {when} |"


def _objective_line(objective) -> str:
    targets = getattr(objective, "targets", ())
    if getattr(objective, "mode", "single") == "pareto" and targets:
        return "Pareto front of " + ", ".join(f"{t.direction} `{t.metric}`" for t in targets)
    weights = " + ".join(f"{w:g}·`{name}`" for name, w in objective.weights.items())
    return f"{objective.direction} {weights} (weights divided by their sum)"


def study_note(config: "StudyConfig") -> str:
    """The Markdown note the dashboard shows for a study: what it transfers and how it searches."""
    budget = config.budget
    limits = [f"{budget.n_trials} trials" if budget.n_trials else None, f"timeout {budget.timeout:g} s" if budget.timeout else None]
    every = config.evaluation.every_n_steps
    rows = [
        ("model", ", ".join(f"`{m.name}` (max length {m.max_length})" for m in config.model.choices.values())),
        ("source", "; ".join(_task_line(t) for t in config.source_tasks) or "—"),
        ("target", _task_line(config.target)),
        ("objective", _objective_line(config.objective)),
        ("sampler", f"`{config.sampler.name}` " + _kwargs(config.sampler.kwargs)),
        ("pruner", f"`{config.pruner.name}` " + _kwargs(config.pruner.kwargs)),
        ("budget", ", ".join(x for x in limits if x) or "none"),
        ("evaluation", f"batch {config.evaluation.batch_size}, " + (f"every {every} steps and each epoch" if every else "each epoch")),
        ("seed", f"{config.seed} (trial k trains with seed + k)"),
        ("storage", f"`{redact_url(config.storage_url())}`"),
    ]
    lines = [f"## {config.name}", ""]
    if config.description:
        lines += [config.description.strip(), ""]
    lines += ["| | |", "|---|---|", *(f"| {key} | {value.strip()} |" for key, value in rows), ""]
    lines += [f"### Search space ({Path(config.space.source).name})", "", "| parameter | type | values | when |", "|---|---|---|---|"]
    lines += [_space_row(name, spec) for name, spec in config.space.parameters.items()]
    lines += ["", "Each complete trial uploads a confusion-matrix and a learning-curve image (Artifacts tab); "
              "its user attributes hold every metric.", "", NOTE_FOOTER]
    # Belt and braces: no URL-shaped credential (storage, hub mirrors, file URLs) reaches the note.
    return redact_text("\n".join(lines), [_password(config.storage_url())])


def _password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).password or ""
    except Exception:  # noqa: BLE001 - an unparsable URL has no password to hide
        return ""


def sync_study_note(study: "optuna.Study", config: "StudyConfig") -> None:
    """Write the note when the study has none, or tuneflow's own (footer intact) is out of date."""
    from optuna_dashboard import get_note, save_note

    current = get_note(study)
    note = study_note(config)
    if current != note and (not current.strip() or current.rstrip().endswith(NOTE_FOOTER)):
        save_note(study, note)


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser's open connections never keep the process alive


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - wsgiref's signature
        """No line per request: the dashboard polls every few seconds."""


def resolve_target(study_file: str | None, *, storage: str | None, artifacts: str | None) -> tuple[str, Path | None]:
    """The storage URL and artifact folder to serve: flags first, then the study file's values."""
    from tuneflow.observe.artifacts import artifacts_dir, sqlite_artifacts_dir

    folder = Path(artifacts).resolve() if artifacts else None
    if study_file and (storage is None or folder is None):
        from tuneflow.study.runner import load_config

        config = load_config(study_file, storage=storage)
        storage = storage or config.storage_url()
        folder = folder or artifacts_dir(config)
    if storage is None:
        raise ConfigError("give --storage URL (or a study file)", key="storage")
    if folder is None:
        folder = sqlite_artifacts_dir(storage)
    return storage, folder


def make_dashboard_server(storage_url: str, *, host: str = "127.0.0.1", port: int = 8080, artifacts: Path | None = None) -> WSGIServer:
    """A ready (not yet serving) optuna-dashboard server; ``port=0`` picks a free port."""
    import optuna_dashboard
    from optuna.artifacts import FileSystemArtifactStore

    from tuneflow.fleet.storage import check_storage_url, missing_storage, open_storage
    from tuneflow.study.study_record import no_study_message

    check_storage_url(storage_url)
    missing = missing_storage(storage_url)
    if missing:  # opening would create an empty database (and a lock file): a typo deserves an error instead
        raise ConfigError(no_study_message(None, storage_url, None, why=missing))
    # The dashboard only reads: the folder is not created here (the study's first trial images do that).
    store = FileSystemArtifactStore(artifacts) if artifacts is not None else None
    app = optuna_dashboard.wsgi(open_storage(storage_url, read_only=True), artifact_store=store)
    try:
        from wsgiref.simple_server import make_server

        return make_server(host, port, app, server_class=_ThreadedServer, handler_class=_QuietHandler)
    except OSError as err:
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err}", key="port") from None


def serve(storage_url: str, *, host: str, port: int, artifacts: Path | None, stream=None) -> None:
    """Serve until Ctrl-C. Prints the address (with the real port) first, so scripts can read it."""
    stream = stream or sys.stdout
    server = make_dashboard_server(storage_url, host=host, port=port, artifacts=artifacts)
    shown_host = f"[{host}]" if ":" in host else host
    print(f"optuna-dashboard: http://{shown_host}:{server.server_port}/", file=stream, flush=True)
    print(f"  storage {redact_url(storage_url)}; artifacts {artifacts or 'none (trial images not shown)'}", file=stream, flush=True)
    if host not in LOOPBACK:
        print("  warning: listening beyond this machine; optuna-dashboard has no login", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

"""``examples/slurm_array.sh``, as shipped, run by a real Slurm against a PostgreSQL study.

A one-node cluster (``slurm_cluster``, tests/slurm_cluster.py) runs the script with ``sbatch``; only
the sbatch line and the environment differ between tests, as a user's would. Each fault Slurm deals
out — scancel, scontrol requeue, the time-limit warning, a SIGKILL — must end with exactly
``budget.n_trials`` finished trials and nothing RUNNING. Jobs run as root with this test run's
virtual environment (``TUNEFLOW_VENV``) and read the storage URL from a file (``TUNEFLOW_STORAGE_FILE``).

The fault tests need trials that stay RUNNING for seconds: their jobs put a ``sitecustomize.py`` on
``PYTHONPATH`` that imports tests/fault_strategies.py (``slow_direct``) into every worker, as the
other worker tests' ``BOOT`` does. Not in the default run: ``python -m pytest -m slurm``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import REPO
from slurm_cluster import FINAL_STATES
from worker_processes import PG_URL, WAIT, assert_exactly, wait_for_running

pytestmark = [pytest.mark.slurm, pytest.mark.postgres]

SCRIPT = REPO / "examples" / "slurm_array.sh"
CPU_TASKS = ("--gres=none", "--cpus-per-task=1")  # a CPU node: the user's override of the script's --gres
SIGTERM_REASON = "worker stopped (SIGTERM)"


def slow(seconds: float) -> dict:
    """Search-space entries for trials that pause ``seconds`` before training (test strategy)."""
    return {"mapping": {"type": "fixed", "value": "slow_direct"},
            "sleep_seconds": {"type": "fixed", "value": seconds}}


@pytest.fixture(scope="session")
def fault_boot(tmp_path_factory) -> str:
    """``PYTHONPATH`` for jobs whose workers need the test-only mapping strategies."""
    folder = tmp_path_factory.mktemp("slurm-boot")
    (folder / "sitecustomize.py").write_text("import fault_strategies  # test-only mapping strategies\n")
    return f"{folder}:{REPO / 'tests'}"


@pytest.fixture
def submit(slurm_cluster, tmp_path):
    """``submit(study_file, *sbatch_options, env={...}) -> job id``: sbatch of the shipped script."""
    (tmp_path / "logs").mkdir()  # the script's --output=logs/...; Slurm makes no folders
    url_file = tmp_path / "storage-url"
    url_file.write_text(PG_URL)
    url_file.chmod(0o600)

    def run(study_file: Path, *options: str, env: dict[str, str] | None = None) -> str:
        job_env = {"TUNEFLOW_VENV": sys.prefix, "TUNEFLOW_STORAGE_FILE": str(url_file), **(env or {})}
        return slurm_cluster.sbatch(*options, str(SCRIPT), str(study_file), env=job_env, cwd=tmp_path)

    return run


def job_log(tmp_path: Path, job_id: str, task: str) -> str:
    return (tmp_path / "logs" / f"tuneflow-{job_id}_{task}.out").read_text(errors="replace")


def slurm_env_of(pid: int) -> dict[str, str]:
    """The Slurm variables of a running process (which job and array task a worker belongs to)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode(errors="replace").partition("=") for item in raw if item.startswith(b"SLURM_"))
    return {k: v for k, _, v in pairs}


def running_trial_of(cluster, name: str, job_id: str) -> tuple[int, str, str]:
    """(trial number, array task id, worker) of a trial a worker of array job ``job_id`` is running."""

    def of_this_job(trial):
        worker = str(trial.user_attrs.get("worker", ""))
        try:
            env = slurm_env_of(int(worker.rpartition(":")[2]))
        except (OSError, ValueError):  # no worker yet, or it just ended
            return None
        return (trial.number, env["SLURM_ARRAY_TASK_ID"], worker) if env.get("SLURM_ARRAY_JOB_ID") == job_id else None

    def job_running() -> bool:
        return not all(t["JobState"] in FINAL_STATES for t in cluster.tasks(job_id).values())

    return wait_for_running(PG_URL, name, of_this_job, what=f"job {job_id}", still_hoping=job_running)


def outcome(study: optuna.Study) -> str:
    """One line per trial (shown with ``-rP`` or when a test fails): state, worker, reason, retry."""
    return "\n".join(
        f"trial {t.number} {t.state.name} by {t.user_attrs.get('worker')}"
        + "".join(f" {k}={t.user_attrs[k]!r}" for k in ("fail_reason", "retry_of") if k in t.user_attrs)
        for t in study.trials
    )


def assert_only_failure_was_retried(study: optuna.Study, worker: str, reason: str | None) -> optuna.trial.FrozenTrial:
    """One trial failed, the one ``worker`` was running; its retry (same parameters) completed."""
    print(outcome(study))
    failures = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    assert len(failures) == 1, outcome(study)
    (failed,) = failures
    assert failed.user_attrs["worker"] == worker
    assert failed.user_attrs.get("fail_reason") == reason
    (retry,) = [t for t in study.trials if t.user_attrs.get("retry_of") == failed.number]
    assert retry.state == TrialState.COMPLETE and retry.params == failed.params
    return retry


def _study(name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=PG_URL)


def _seconds(run_time: str) -> int:
    """Slurm's ``[D-]HH:MM:SS`` in seconds."""
    days, _, clock = run_time.rpartition("-")
    hours, minutes, seconds = map(int, clock.split(":"))
    return int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds


def test_cpu_array_finishes_exactly_the_budget(slurm_cluster, submit, worker_study, pg_study_names, tmp_path):
    """sbatch --array=0-2 on CPU-only nodes: one CPU worker per task, labelled cpu0, exact budget."""
    study_file = worker_study(n_trials=6)
    pg_study_names.append(study_file.stem)
    job = submit(study_file, "--array=0-2", *CPU_TASKS)
    tasks = slurm_cluster.wait(job, timeout=WAIT)
    assert {k: (t["JobState"], t["ExitCode"]) for k, t in tasks.items()} == {k: ("COMPLETED", "0:0") for k in "012"}
    for k in "012":
        log = job_log(tmp_path, job, k)
        assert "tuneflow launch: 1 worker(s): cpu0" in log and "all workers finished; exit codes [0]" in log, log
    study = _study(study_file.stem)
    assert assert_exactly(study, 6).complete == 6
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 6  # distinct configurations


def test_gpu_task_runs_one_worker_per_gpu_slurm_gave(slurm_cluster, submit, worker_study, pg_study_names, tmp_path):
    """The script's GPU path: --gres=gpu:2 on the sbatch line gives the task 2 of the node's (fake)
    GPUs; launch starts gpu0.0 and gpu1.0 with the task's CPUs shared out between them."""
    if slurm_cluster.gpus < 2:
        pytest.skip("the test cluster has no stand-in GPU devices here (mknod was refused)")
    study_file = worker_study(n_trials=2)
    pg_study_names.append(study_file.stem)
    job = submit(study_file, "--array=0", "--gres=gpu:2", "--cpus-per-task=2")
    tasks = slurm_cluster.wait(job, timeout=WAIT)
    log = job_log(tmp_path, job, "0")
    assert (tasks["0"]["JobState"], tasks["0"]["ExitCode"]) == ("COMPLETED", "0:0"), log
    assert "tuneflow launch: 2 worker(s): gpu0.0, gpu1.0" in log and "exit codes [0, 0]" in log, log
    assert_exactly(_study(study_file.stem), 2)


def test_scancel_mid_trial_requeues_the_trial(slurm_cluster, submit, worker_study, pg_study_names, fault_boot):
    """scancel of one array task: SIGTERM fails its running trial and re-queues it; the other task
    runs the copy and the rest of the budget, and exits 0."""
    study_file = worker_study(n_trials=2, space=slow(3))
    name = study_file.stem
    pg_study_names.append(name)
    job = submit(study_file, "--array=0-1", *CPU_TASKS, env={"PYTHONPATH": fault_boot})
    _, task, worker = running_trial_of(slurm_cluster, name, job)
    slurm_cluster.run("scancel", f"{job}_{task}")
    tasks = slurm_cluster.wait(job, timeout=WAIT)
    other = "1" if task == "0" else "0"
    assert tasks[task]["JobState"] == "CANCELLED"
    assert (tasks[other]["JobState"], tasks[other]["ExitCode"]) == ("COMPLETED", "0:0")
    study = _study(name)
    assert_exactly(study, 2)
    assert_only_failure_was_retried(study, worker, SIGTERM_REASON)


def test_scontrol_requeue_mid_trial_rejoins(slurm_cluster, submit, worker_study, pg_study_names, fault_boot, tmp_path):
    """scontrol requeue of a task mid-trial: its trial is failed and re-queued, the task starts again
    (after the cluster's cred_expire), rejoins the study and exits 0; the budget stays exact."""
    study_file = worker_study(n_trials=2, space=slow(3))
    name = study_file.stem
    pg_study_names.append(name)
    job = submit(study_file, "--array=0-1", *CPU_TASKS, env={"PYTHONPATH": fault_boot})
    _, task, worker = running_trial_of(slurm_cluster, name, job)
    slurm_cluster.run("scontrol", "requeue", f"{job}_{task}")
    tasks = slurm_cluster.wait(job, timeout=WAIT)
    log = job_log(tmp_path, job, task)  # the second run's (Slurm truncates the output on a restart)
    assert tasks[task]["Restarts"] == "1"
    assert all((t["JobState"], t["ExitCode"]) == ("COMPLETED", "0:0") for t in tasks.values()), tasks
    assert "all workers finished; exit codes [0]" in log, log
    study = _study(name)
    assert_exactly(study, 2)
    assert_only_failure_was_retried(study, worker, SIGTERM_REASON)


def test_time_limit_warning_requeues_the_trial_before_the_kill(slurm_cluster, submit, worker_study, pg_study_names,
                                                                fault_boot):
    """--time=1 with --signal=B:TERM@10: Slurm sends SIGTERM to the batch shell (`launch`, which the
    script exec'd) before the limit; the trial is failed and re-queued, the job ends by itself
    (exit 143, not TIMEOUT), and a second job runs the copy."""
    study_file = worker_study(n_trials=2, space=slow(1))
    name = study_file.stem
    pg_study_names.append(name)
    # This job's trials outlast its time limit (Slurm sends the warning 20-50 s in: it looks twice a minute).
    limited = submit(study_file, "--array=0", *CPU_TASKS, "--time=1", "--signal=B:TERM@10",
                     env={"PYTHONPATH": fault_boot, "TUNEFLOW_TEST_SLEEP_SECONDS": "120"})
    _, _, worker = running_trial_of(slurm_cluster, name, limited)
    finisher = submit(study_file, "--array=0", *CPU_TASKS, env={"PYTHONPATH": fault_boot})
    ended = slurm_cluster.wait(limited, timeout=WAIT)["0"]
    assert (ended["JobState"], ended["ExitCode"]) == ("FAILED", "143:0"), ended
    assert _seconds(ended["RunTime"]) < 60  # it ended on the warning, before the limit
    done = slurm_cluster.wait(finisher, timeout=WAIT)["0"]
    assert (done["JobState"], done["ExitCode"]) == ("COMPLETED", "0:0")
    study = _study(name)
    assert_exactly(study, 2)
    assert_only_failure_was_retried(study, worker, SIGTERM_REASON)


def test_batch_sigkill_mid_trial_comes_back_through_the_heartbeat(slurm_cluster, submit, worker_study, pg_study_names,
                                                                   fault_boot):
    """scancel --batch --signal=KILL: SIGKILL straight to the batch shell, `launch` (a plain
    `scancel --signal=KILL` cancels the job: SIGTERM first, SIGKILL after KillWait). Its workers die
    with it and record nothing; the trial stops beating, and after the study's grace period (3 s here)
    the other task's worker fails it, re-queues it and runs it."""
    study_file = worker_study(n_trials=2, space=slow(3), grace_period=3)
    name = study_file.stem
    pg_study_names.append(name)
    job = submit(study_file, "--array=0-1", *CPU_TASKS, env={"PYTHONPATH": fault_boot})
    _, task, worker = running_trial_of(slurm_cluster, name, job)
    slurm_cluster.run("scancel", "--batch", "--signal=KILL", f"{job}_{task}")
    tasks = slurm_cluster.wait(job, timeout=WAIT)
    other = "1" if task == "0" else "0"
    assert (tasks[task]["JobState"], tasks[task]["ExitCode"]) == ("FAILED", "0:9")  # killed by signal 9
    assert (tasks[other]["JobState"], tasks[other]["ExitCode"]) == ("COMPLETED", "0:0")
    study = _study(name)
    assert_exactly(study, 2)
    retry = assert_only_failure_was_retried(study, worker, None)  # no reason: nobody was left to write one
    assert retry.system_attrs["retry_history"] == [retry.user_attrs["retry_of"]]

"""A throwaway one-node Slurm cluster for the ``slurm`` tests: munged, slurmctld and slurmd on this machine.

The session fixture ``slurm_cluster`` writes a ``slurm.conf`` under a fresh temporary folder (its own
munge key and socket, state, spool, logs and free ports), starts ``munged``, ``slurmctld`` and
``slurmd`` in the foreground as child processes, waits for ``sinfo`` to show the node idle, and at the
end cancels what is left and stops the three daemons by the PIDs it started. Client commands find the
cluster through ``SLURM_CONF`` in :attr:`SlurmCluster.env`; nothing outside the folder is touched.

The node has four GPUs in Slurm's eyes: character devices made like ``/dev/null``, so Slurm's gres
accounting sets ``CUDA_VISIBLE_DEVICES`` and ``SLURM_GPUS_ON_NODE`` exactly as on a GPU node, while
the workers, finding no CUDA, train on the CPU (no GPUs where mknod is refused: ``gpus`` is then 0).
Tests skip with the reason when Slurm or munge is not installed (``apt-get install slurm-wlm munge``)
or when not root (slurmd starts every job as its submitter, which only root may do).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "scancel", "scontrol", "sinfo", "squeue")
FAKE_GPUS = 4
# States a job (array task) does not leave by itself; REQUEUED and PENDING are on their way back.
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
_FIELD = re.compile(r"(?:^|\s)([A-Za-z][\w:/]*)=(\S*)")


@dataclass
class SlurmCluster:
    folder: Path
    node: str
    cpus: int
    gpus: int  # stand-in GPU devices Slurm may hand out (0 where mknod is not allowed)
    env: dict[str, str]  # SLURM_CONF for the client commands; no SLURM_* of an enclosing job
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def run(self, *argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
        """A Slurm client command; its stdout (a failure raises with stderr)."""
        done = subprocess.run([*map(str, argv)], env={**self.env, **(env or {})}, cwd=cwd,
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, argv))} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def sbatch(self, *argv: str, env: dict[str, str] | None = None, cwd: Path) -> str:
        """Submit; returns the job id (for an array, the array's id)."""
        return self.run("sbatch", "--parsable", *argv, env=env, cwd=cwd).strip().split(";")[0]

    def tasks(self, job_id: str) -> dict[str, dict[str, str]]:
        """The job's records by array task id (``"0"``, ``"1"``, or ``"1-2"`` for tasks not yet split off;
        ``""`` for a plain job): ``JobState``, ``ExitCode``, ``Restarts``, ``JobId`` and the rest."""
        records = {}
        for line in self.run("scontrol", "-o", "show", "job", job_id).splitlines():
            fields = dict(_FIELD.findall(line))
            records[fields.get("ArrayTaskId", "")] = fields
        return records

    def wait(self, job_id: str, *, timeout: float) -> dict[str, dict[str, str]]:
        """The job's records once every task has ended (requeued tasks must have run again)."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.tasks(job_id)
            if all(r["JobState"] in FINAL_STATES for r in records.values()):
                return records
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still not done after {timeout:.0f} s: "
                                     f"{ {k: r['JobState'] for k, r in records.items()} }")
            time.sleep(0.5)

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.folder / name
            if path.exists():
                parts.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fake_gpus(folder: Path) -> int:
    """FAKE_GPUS character devices made like /dev/null (major 1, minor 3); 0 where mknod is refused."""
    folder.mkdir()
    try:
        for k in range(FAKE_GPUS):
            os.mknod(folder / f"nvidia{k}", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError:  # e.g. a container without CAP_MKNOD
        return 0
    return FAKE_GPUS


def write_config(folder: Path, node: str, cpus: int, gpus: int) -> Path:
    socket_path = folder / "munge.socket"
    (folder / "state").mkdir()
    (folder / "spool").mkdir()
    if gpus:
        (folder / "gres.conf").write_text(f"AutoDetect=off\nNodeName={node} Name=gpu File={folder}/dev/nvidia[0-{gpus - 1}]\n")
    conf = folder / "slurm.conf"
    conf.write_text(f"""\
ClusterName=tuneflowtest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
# cred_expire also delays a requeued job's restart (default 120 s)
AuthInfo=socket={socket_path},cred_expire=10
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
# The node may claim more CPUs than the machine has, so a few 1-CPU tasks run side by side on 2 cores.
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus}{f" Gres=gpu:{gpus}" if gpus else ""} State=UNKNOWN
PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP
""")
    return conf


def _skip_reason() -> str | None:
    missing = [c for c in (*DAEMONS, *CLIENTS) if shutil.which(c) is None]
    if missing:
        return f"Slurm is not installed here (missing {', '.join(missing)}; apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "the test Slurm cluster needs root (slurmd starts each job as its submitter)"
    return None


def _start(cluster: SlurmCluster, name: str, argv: list[str]) -> None:
    out = open(cluster.folder / f"{name}.out", "w")
    cluster.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=cluster.env)


def _wait_until(check, *, timeout: float, what: str, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in cluster.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited {proc.returncode} while waiting for {what}:\n"
                                     f"{(cluster.folder / f'{name}.out').read_text()}\n{cluster.log_tail()}")
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"no {what} after {timeout:.0f} s\n{cluster.log_tail()}")


def _node_idle(cluster: SlurmCluster) -> bool:
    done = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=cluster.env, capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip() == "idle"


def _stop(cluster: SlurmCluster) -> None:
    if "slurmctld" in cluster.procs and cluster.procs["slurmctld"].poll() is None:
        # Jobs run under slurmstepd, which outlives slurmd: cancel them and let them end first.
        subprocess.run(["scancel", "--quiet", "--full", "--user", "root"], env=cluster.env, capture_output=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            queue = subprocess.run(["squeue", "-h", "-o", "%i"], env=cluster.env, capture_output=True, text=True)
            if queue.returncode != 0 or not queue.stdout.strip():
                break
            time.sleep(0.5)
    for name in reversed(list(cluster.procs)):
        proc = cluster.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running one-node Slurm cluster (see the module docstring); skips when Slurm cannot run here."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    # munged wants every folder on its socket's path searchable by all: not pytest's 0700 tmp folders.
    folder = Path(tempfile.mkdtemp(prefix="tuneflow-slurm-"))
    folder.chmod(0o755)
    node = socket.gethostname().split(".")[0]
    cpus = max(os.cpu_count() or 1, 4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    gpus = _fake_gpus(folder / "dev")
    env["SLURM_CONF"] = str(write_config(folder, node, cpus, gpus))
    cluster = SlurmCluster(folder=folder, node=node, cpus=cpus, gpus=gpus, env=env)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(128))
    key.chmod(0o400)
    try:
        _start(cluster, "munged", ["munged", "--foreground", f"--key-file={key}", f"--socket={folder / 'munge.socket'}",
                                   f"--pid-file={folder / 'munged.pid'}", f"--seed-file={folder / 'munged.seed'}",
                                   f"--log-file={folder / 'munged.log'}"])
        _wait_until(lambda: (folder / "munge.socket").exists(), timeout=30, what="munge socket", cluster=cluster)
        _start(cluster, "slurmctld", ["slurmctld", "-D", "-f", env["SLURM_CONF"]])
        _start(cluster, "slurmd", ["slurmd", "-D", "-f", env["SLURM_CONF"], "-N", node])
        _wait_until(lambda: _node_idle(cluster), timeout=60, what="idle Slurm node", cluster=cluster)
        yield cluster
    finally:
        _stop(cluster)
        shutil.rmtree(folder, ignore_errors=True)

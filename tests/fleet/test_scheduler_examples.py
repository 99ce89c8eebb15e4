"""The scheduler examples checked without a scheduler: ``examples/k8s_job.yaml`` (no Kubernetes here)
and the tuneflow commands of ``examples/slurm_array.sh`` (which tests/fleet/test_slurm.py also runs
under a real Slurm, ``-m slurm``)."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import REPO
from tuneflow.cli.main import build_parser

K8S_JOB = REPO / "examples" / "k8s_job.yaml"
SLURM_SCRIPT = REPO / "examples" / "slurm_array.sh"


def parse_cli(argv: list[str], where: str):
    try:
        return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: tuneflow's CLI rejects {argv}")


def test_k8s_job_loads_into_the_clients_v1job_with_no_field_lost():
    client = pytest.importorskip("kubernetes.client")
    manifest = yaml.safe_load(K8S_JOB.read_text())
    api = client.ApiClient()
    # The client's own JSON-to-model path (what it does with an API server's answer). It drops keys
    # its models do not know, so the round trip equals the file only if every key is a real field in
    # its place, with a value of the field's type.
    job = api._ApiClient__deserialize(manifest, "V1Job")
    assert isinstance(job, client.V1Job)
    assert api.sanitize_for_serialization(job) == manifest
    assert job.spec.template.spec.restart_policy in ("OnFailure", "Never")  # a Job's pods may not be "Always"


def test_k8s_job_command_is_tuneflow_on_a_shipped_study(run_cli):
    (container,) = yaml.safe_load(K8S_JOB.read_text())["spec"]["template"]["spec"]["containers"]
    program, *argv = container["command"]
    assert program == "tuneflow"
    args = parse_cli(argv, str(K8S_JOB))
    assert args.command == "worker" and args.storage is None  # the URL comes from the Secret, not argv
    assert [e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})] == ["TUNEFLOW_STORAGE"]
    study = REPO / args.study_file  # the image's working folder is a copy of this repository
    assert study.is_file() and study.parent == REPO / "studies"
    code, out, err = run_cli("validate", study)
    assert code == 0, err


def test_slurm_script_commands_parse():
    """Every `tuneflow ...` line of the script parses, with the values Slurm would put in its variables."""
    values = {"STUDY_FILE": "studies/sst2_to_agnews.yaml", "GPUS": "0,1,2,3", "PER_GPU": "1", "CPUS": "16"}
    commands = re.findall(r"^\s*exec tuneflow (.+)$", SLURM_SCRIPT.read_text(), flags=re.M)
    assert len(commands) == 2  # the GPU path and the CPU path
    for command in commands:
        argv = [re.sub(r'^"\$(\w+)"$', lambda m: values[m.group(1)], word) for word in command.split()]
        args = parse_cli(argv, str(SLURM_SCRIPT))
        assert args.command == "launch" and (REPO / args.study_file).is_file()
        assert (args.gpus, args.workers) in (("0,1,2,3", None), (None, 16))

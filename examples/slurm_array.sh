#!/usr/bin/env bash
# One tuneflow study across a Slurm job array: every array task is one node running `tuneflow launch`
# against the same PostgreSQL: one worker per GPU Slurm gave the task, or, when it gave none, one
# single-threaded CPU worker per CPU of the task. The study's budget.n_trials is shared: the array
# finishes exactly that many trials, however many tasks start, stop or fail.
#
#   mkdir -p logs
#   sbatch --array=0-7 examples/slurm_array.sh studies/sst2_to_agnews.yaml
#   sbatch --array=0-7 --gres=none --cpus-per-task=8 examples/slurm_array.sh studies/x.yaml   # CPU nodes
#
# Options on the sbatch line override the #SBATCH lines below (--gres, --cpus-per-task, --time ...).
# scancel, a requeue (scontrol requeue, preemption) and the time-limit warning (--signal) send SIGTERM:
# the running trials are recorded as failed and re-queued, and a requeued task rejoins the study.
# A task killed outright (SIGKILL, a lost node) loses only its running trials, which the other
# workers fail after the heartbeat grace period (storage_options.grace_period) and run again.
#SBATCH --job-name=tuneflow
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --gres=gpu:4
#SBATCH --cpus-per-task=16
#SBATCH --time=24:00:00
#SBATCH --signal=B:TERM@120          # SIGTERM two minutes before the time limit: trials are re-queued
#SBATCH --requeue
#SBATCH --output=logs/tuneflow-%A_%a.out
set -euo pipefail

STUDY_FILE="${1:?usage: sbatch --array=0-N examples/slurm_array.sh STUDY.yaml}"

# The URL (with its password) comes from a file only you can read, not from the command line.
# e.g. ~/.tuneflow-storage holding: postgresql+psycopg://tuneflow:SECRET@db.internal:5432/tuneflow
export TUNEFLOW_STORAGE="$(cat "${TUNEFLOW_STORAGE_FILE:-$HOME/.tuneflow-storage}")"
export TOKENIZERS_PARALLELISM=false

. "${TUNEFLOW_VENV:-$HOME/tuneflow/.venv}/bin/activate"

# `exec` so that Slurm's SIGTERM reaches `launch`, which forwards it to every worker. The workers read
# $TUNEFLOW_STORAGE from the environment, so the password never shows in `ps`.
CPUS="${SLURM_CPUS_PER_TASK:-1}"
# Slurm sets CUDA_VISIBLE_DEVICES to the GPUs it gave this task, e.g. "0,1,2,3"; a value inherited
# from the submitting shell does not count.
GPUS=""
if [ "${SLURM_GPUS_ON_NODE:-0}" -gt 0 ] || [ -n "${SLURM_JOB_GPUS:-}" ]; then GPUS="${CUDA_VISIBLE_DEVICES:-}"; fi
if [ -n "$GPUS" ]; then
  # Workers gpu0.0, gpu1.0, ...; the task's CPUs are shared out between them.
  PER_GPU="${TUNEFLOW_PER_GPU:-1}"
  WORKERS=$(( $(tr ',' '\n' <<< "$GPUS" | wc -l) * PER_GPU ))
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( CPUS > WORKERS ? CPUS / WORKERS : 1 ))}"
  exec tuneflow launch "$STUDY_FILE" --gpus "$GPUS" --per-gpu "$PER_GPU"
fi
# No GPUs (e.g. sbatch --gres=none): CPU workers cpu0, cpu1, ..., one single-threaded worker per CPU.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec tuneflow launch "$STUDY_FILE" --workers "$CPUS"

#!/usr/bin/env bash
# One tuneflow study across a SLURM job array: every array task is one GPU node running
# `tuneflow launch` (one worker per GPU) against the same PostgreSQL. The study's budget.n_trials
# is shared: the array finishes exactly that many trials, however many tasks start, stop or fail.
#
#   sbatch --array=0-7 examples/slurm_array.sh studies/sst2_to_agnews.yaml
#
# A preempted or failed task loses only its running trials, which the other workers fail after the
# heartbeat grace period (storage_options.grace_period) and run again. Requeued tasks just rejoin.
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

# SLURM sets CUDA_VISIBLE_DEVICES to the GPUs it gave this task, e.g. "0,1,2,3".
GPUS="${CUDA_VISIBLE_DEVICES:-0}"

# `exec` so SLURM's SIGTERM reaches `launch`, which forwards it to every worker. The workers read
# $TUNEFLOW_STORAGE from the environment, so the password never shows in `ps`.
exec tuneflow launch "$STUDY_FILE" --gpus "$GPUS" --per-gpu "${TUNEFLOW_PER_GPU:-1}"

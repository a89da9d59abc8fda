#!/usr/bin/env bash
# Evaluate a stage-3 checkpoint (ours or official) on dev and test: writes <split>_pres.txt, <split>_refs.txt,
# <split>_metrics.json and results.json into OUTPUT_DIR. Batch size and frames per task from config/recipes.json.
# Environment overrides: DATASET (CSL_Daily) TASK (SLT) FINETUNE OUTPUT_DIR LM_PATH BATCH_SIZE MAX_LENGTH EXTRA_ARGS
#   DRY_RUN (print the command)
set -euo pipefail
cd "$(dirname "$0")/.."
task=${TASK:-SLT}
dataset=${DATASET:-CSL_Daily}
recipe=$(python script/recipe.py --stage 3 --task "$task" --eval)
${DRY_RUN:+echo} python eval.py \
  --dataset "$dataset" --task "$task" \
  --finetune "${FINETUNE:-out/stage3_${dataset}_${task}/best_checkpoint.pth}" \
  --lm-path "${LM_PATH:-pretrained_weight/mt5-base}" \
  $recipe \
  --output_dir "${OUTPUT_DIR:-out/eval_${dataset}_${task}}" \
  ${EXTRA_ARGS:-}

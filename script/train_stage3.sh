#!/usr/bin/env bash
# Stage 3: downstream fine-tuning (paper Table 2: 20 epochs, global batch 32 = 8 x 4 GPUs, AdamW 3e-4, cosine;
# ISLR: 64 frames, as the official ISLR script). Per-task settings come from config/recipes.json.
# Pose-only results fine-tune from stage 1; RGB-pose results add --rgb_support and start from stage 2.
# Environment overrides: DATASET (CSL_Daily) TASK (SLT|CSLR|ISLR) FINETUNE OUTPUT_DIR LM_PATH EPOCHS BATCH_SIZE
#   GLOBAL_BATCH ACCUM LR MAX_LENGTH EXTRA_ARGS DRY_RUN, and the launcher settings of script/launcher.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source script/launcher.sh
task=${TASK:-SLT}
dataset=${DATASET:-CSL_Daily}
recipe=$(python script/recipe.py --stage 3 --task "$task")
${DRY_RUN:+echo} $LAUNCHER train.py $ENGINE_ARGS \
  --dataset "$dataset" --task "$task" \
  --finetune "${FINETUNE:-out/stage1_pretraining/best_checkpoint.pth}" \
  --lm-path "${LM_PATH:-pretrained_weight/mt5-base}" \
  $recipe --opt AdamW \
  --output_dir "${OUTPUT_DIR:-out/stage3_${dataset}_${task}}" \
  ${EXTRA_ARGS:-}

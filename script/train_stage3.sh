#!/usr/bin/env bash
# Stage 3: downstream fine-tuning (paper Table 2: 20 epochs, batch 8, no accumulation, AdamW 3e-4, cosine).
# Pose-only results fine-tune from stage 1; RGB-pose results add --rgb_support and start from stage 2.
# Environment overrides: DATASET (CSL_Daily) TASK (SLT|CSLR|ISLR) FINETUNE OUTPUT_DIR LM_PATH EPOCHS BATCH_SIZE
#   ACCUM LR MAX_LENGTH (ISLR: 64 as the official ISLR script) EXTRA_ARGS, and script/launcher.sh settings
#   (LAUNCHER GPUS HOSTFILE DTYPE ZERO_STAGE)
set -euo pipefail
cd "$(dirname "$0")/.."
source script/launcher.sh
task=${TASK:-SLT}
dataset=${DATASET:-CSL_Daily}
$LAUNCHER train.py $ENGINE_ARGS \
  --dataset "$dataset" --task "$task" \
  --finetune "${FINETUNE:-out/stage1_pretraining/best_checkpoint.pth}" \
  --lm-path "${LM_PATH:-pretrained_weight/mt5-base}" \
  --batch-size "${BATCH_SIZE:-8}" --gradient-accumulation-steps "${ACCUM:-1}" \
  --epochs "${EPOCHS:-20}" --opt AdamW --lr "${LR:-3e-4}" --max_length "${MAX_LENGTH:-256}" \
  --output_dir "${OUTPUT_DIR:-out/stage3_${dataset}_${task}}" \
  ${EXTRA_ARGS:-}

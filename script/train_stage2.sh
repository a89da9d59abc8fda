#!/usr/bin/env bash
# Stage 2: RGB-pose pre-training from the stage-1 checkpoint (paper Table 2: 5 epochs, batch 4 x accumulation 8).
# Environment overrides: DATASET (CSL_News) TASK (SLT) FINETUNE OUTPUT_DIR LM_PATH EPOCHS BATCH_SIZE ACCUM LR
#   MAX_LENGTH EXTRA_ARGS, and the launcher settings of script/launcher.sh (LAUNCHER GPUS HOSTFILE DTYPE ZERO_STAGE)
set -euo pipefail
cd "$(dirname "$0")/.."
source script/launcher.sh
$LAUNCHER train.py $ENGINE_ARGS \
  --dataset "${DATASET:-CSL_News}" --task "${TASK:-SLT}" --rgb_support \
  --finetune "${FINETUNE:-out/stage1_pretraining/best_checkpoint.pth}" \
  --lm-path "${LM_PATH:-pretrained_weight/mt5-base}" \
  --batch-size "${BATCH_SIZE:-4}" --gradient-accumulation-steps "${ACCUM:-8}" \
  --epochs "${EPOCHS:-5}" --opt AdamW --lr "${LR:-3e-4}" --max_length "${MAX_LENGTH:-256}" \
  --output_dir "${OUTPUT_DIR:-out/stage2_pretraining}" \
  ${EXTRA_ARGS:-}

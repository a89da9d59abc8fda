#!/usr/bin/env bash
# Stage 1: pose-only pre-training (paper Table 2: 20 epochs, batch 16 x accumulation 8, AdamW 3e-4, cosine).
# Paths come from config/datasets.json; every setting can be overridden by an environment variable:
#   DATASET (CSL_News) TASK (SLT) OUTPUT_DIR LM_PATH EPOCHS BATCH_SIZE ACCUM LR MAX_LENGTH EXTRA_ARGS, and the launcher settings of script/launcher.sh (LAUNCHER GPUS HOSTFILE DTYPE ZERO_STAGE)
# e.g. on the synthetic corpus:
#   DATASET=Synthetic_News LM_PATH=out/quickstart/embedded_lm EXTRA_ARGS="--pose-preset tiny" bash script/train_stage1.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source script/launcher.sh
$LAUNCHER train.py $ENGINE_ARGS \
  --dataset "${DATASET:-CSL_News}" --task "${TASK:-SLT}" \
  --lm-path "${LM_PATH:-pretrained_weight/mt5-base}" \
  --batch-size "${BATCH_SIZE:-16}" --gradient-accumulation-steps "${ACCUM:-8}" \
  --epochs "${EPOCHS:-20}" --opt AdamW --lr "${LR:-3e-4}" --max_length "${MAX_LENGTH:-256}" \
  --output_dir "${OUTPUT_DIR:-out/stage1_pretraining}" \
  ${EXTRA_ARGS:-}

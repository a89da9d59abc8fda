#!/usr/bin/env bash
# ISLR fine-tuning of CCL-SLR encoders with a classifier (train_ccl.py --ccl-stage finetune): per-instance and
# per-class top-1 / top-5 on dev and test. FINETUNE: a CCL-SLR pre-training checkpoint (both branches), a Uni-Sign
# checkpoint (the pose branch), or empty (from scratch). For Uni-Sign's generative ISLR fine-tuning from a CCL-SLR
# pose encoder instead: EXTRA_ARGS="--init-pose-encoder CKPT" bash script/train_stage3.sh with TASK=ISLR.
# Environment overrides: DATASET (WLASL) FINETUNE MODALITIES OUTPUT_DIR EPOCHS BATCH_SIZE LR EXTRA_ARGS DRY_RUN
set -euo pipefail
cd "$(dirname "$0")/.."
source script/launcher.sh
dataset=${DATASET:-WLASL}
init=${FINETUNE-out/ccl_pretrain_${dataset}/best_checkpoint.pth}
init_args=()
if [ -n "$init" ]; then init_args=(--finetune "$init"); fi
${DRY_RUN:+echo} $LAUNCHER train_ccl.py $ENGINE_ARGS --ccl-stage finetune \
  --dataset "$dataset" --modalities "${MODALITIES:-pose,rgb}" \
  ${init_args[@]+"${init_args[@]}"} \
  --epochs "${EPOCHS:-60}" --batch-size "${BATCH_SIZE:-32}" --lr "${LR:-1e-3}" --warmup-epochs 2 \
  --num_workers "${NUM_WORKERS:-4}" \
  --output_dir "${OUTPUT_DIR:-out/ccl_finetune_${dataset}}" \
  ${EXTRA_ARGS:-}

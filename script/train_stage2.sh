#!/usr/bin/env bash
# Stage 2: RGB-pose pre-training from the stage-1 checkpoint (paper Table 2: 5 epochs, global batch 128 =
# 4 x accumulation 8 x 4 GPUs). The new RGB branch starts from ImageNet EfficientNet-B0 weights (paper 4.1):
# torchvision's file in its cache (~/.cache/torch/hub/checkpoints/efficientnet_b0_rwightman-7f5810bc.pth) or
# EXTRA_ARGS="--efficientnet-weights FILE"; "--efficientnet-init random" starts from a random CNN on purpose.
# Environment overrides: DATASET (CSL_News) TASK (SLT) FINETUNE OUTPUT_DIR LM_PATH EPOCHS BATCH_SIZE GLOBAL_BATCH
#   ACCUM LR MAX_LENGTH EXTRA_ARGS DRY_RUN, and the launcher settings of script/launcher.sh (see train_stage1.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source script/launcher.sh
recipe=$(python script/recipe.py --stage 2 --task "${TASK:-SLT}")
${DRY_RUN:+echo} $LAUNCHER train.py $ENGINE_ARGS \
  --dataset "${DATASET:-CSL_News}" --task "${TASK:-SLT}" --rgb_support \
  --finetune "${FINETUNE:-out/stage1_pretraining/best_checkpoint.pth}" \
  --lm-path "${LM_PATH:-pretrained_weight/mt5-base}" \
  $recipe --opt AdamW \
  --output_dir "${OUTPUT_DIR:-out/stage2_pretraining}" \
  ${EXTRA_ARGS:-}

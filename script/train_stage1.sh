#!/usr/bin/env bash
# Stage 1: pose-only pre-training (paper Table 2: 20 epochs, global batch 512 = 16 x accumulation 8 x 4 GPUs,
# AdamW 3e-4, cosine). The recipe is config/recipes.json (script/recipe.py): on N processes the accumulation is
# derived so that the global batch stays 512. Paths come from config/datasets.json; environment overrides:
#   DATASET (CSL_News) TASK (SLT) OUTPUT_DIR LM_PATH EPOCHS BATCH_SIZE GLOBAL_BATCH (0: off) ACCUM (fixed
#   accumulation instead of the global batch) LR MAX_LENGTH EXTRA_ARGS, the launcher settings of script/launcher.sh
#   (LAUNCHER GPUS HOSTFILE DTYPE ZERO_STAGE), and DRY_RUN=1 to print the command instead of running it.
# e.g. on the synthetic corpus:
#   DATASET=Synthetic_News LM_PATH=out/quickstart/embedded_lm ACCUM=1 EXTRA_ARGS="--pose-preset tiny" bash script/train_stage1.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source script/launcher.sh
recipe=$(python script/recipe.py --stage 1 --task "${TASK:-SLT}")
${DRY_RUN:+echo} $LAUNCHER train.py $ENGINE_ARGS \
  --dataset "${DATASET:-CSL_News}" --task "${TASK:-SLT}" \
  --lm-path "${LM_PATH:-pretrained_weight/mt5-base}" \
  $recipe --opt AdamW \
  --output_dir "${OUTPUT_DIR:-out/stage1_pretraining}" \
  ${EXTRA_ARGS:-}

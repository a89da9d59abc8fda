#!/usr/bin/env bash
# CCL-SLR pre-training (train_ccl.py --ccl-stage pretrain): contrastive pose + RGB learning on the training clips of
# one or several ISLR datasets; their labels are not read. Defaults are ours (the paper's method section is not
# public; docs/ccl_slr.md): MoCo v2 keys and queues, 128-d embeddings, temperature 0.07, SPM after 10% of the epochs.
# Environment overrides: DATASET (WLASL; comma-separated for several) MODALITIES (pose,rgb | pose) OUTPUT_DIR EPOCHS
#   BATCH_SIZE LR QUEUE_SIZE EXTRA_ARGS DRY_RUN, and the launcher settings of script/launcher.sh (DeepSpeed on GPUs)
set -euo pipefail
cd "$(dirname "$0")/.."
source script/launcher.sh
dataset=${DATASET:-WLASL}
epochs=${EPOCHS:-100}
${DRY_RUN:+echo} $LAUNCHER train_ccl.py $ENGINE_ARGS --ccl-stage pretrain \
  --dataset "$dataset" --modalities "${MODALITIES:-pose,rgb}" \
  --epochs "$epochs" --batch-size "${BATCH_SIZE:-64}" --lr "${LR:-1e-3}" --warmup-epochs 5 \
  --queue-size "${QUEUE_SIZE:-4096}" --spm-warmup-epochs "$(python -c "print($epochs / 10)")" \
  --num_workers "${NUM_WORKERS:-4}" \
  --output_dir "${OUTPUT_DIR:-out/ccl_pretrain_${dataset//,/_}}" \
  ${EXTRA_ARGS:-}

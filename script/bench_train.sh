#!/usr/bin/env bash
# Training throughput (samples/s, target tokens/s, frames/s, peak memory, FLOPs / MFU); docs/training_at_scale.md.
# CPU, embedded default LM, both pose presets (the corpus and the LM are built in a temporary folder):
#   THREADS=1 bash script/bench_train.sh
# CUDA GPU, mT5-Base in bf16 (reports model FLOPs utilisation):
#   LM_PATH=pretrained_weight/mt5-base DTYPE=bf16 PRESETS=official STEPS=50 bash script/bench_train.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python -m bench.train_throughput \
  --pose-preset "${PRESETS:-tiny,official}" --batch-size "${BATCH_SIZE:-8}" \
  --warmup "${WARMUP:-3}" --steps "${STEPS:-10}" --dtype "${DTYPE:-fp32}" \
  ${LM_PATH:+--lm-path "$LM_PATH"} ${DATA:+--data "$DATA"} ${THREADS:+--threads "$THREADS"} \
  --json "${OUT:-out/bench/train_throughput.json}" ${EXTRA_ARGS:-}

#!/usr/bin/env bash
# Padding of random vs length-grouped batches (docs/training_at_scale.md, "Length-grouped batching").
# Without DATA the default synthetic corpus is generated in a temporary folder (about 40 s).
#   bash script/bench_padding.sh
#   DATA=data/synthetic OUT=out/bench/padding.json bash script/bench_padding.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python -m bench.padding ${DATA:+--data "$DATA"} --batch-sizes ${BATCH_SIZES:-8 16} \
  --max-length "${MAX_LENGTH:-256}" --json "${OUT:-out/bench/padding.json}" ${EXTRA_ARGS:-}

#!/usr/bin/env bash
# Hand BatchNorm probe: separate hands (official) vs --batch-hands, train-mode vs eval-mode accuracy
# (docs/official_differences.md 3a). Without DATA the default synthetic corpus is generated in a temporary folder.
#   bash script/bench_hand_batchnorm.sh
#   DATA=out/quickstart/data EPOCHS=3 bash script/bench_hand_batchnorm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python -m bench.hand_batchnorm ${DATA:+--data "$DATA"} --epochs "${EPOCHS:-3}" ${EXTRA_ARGS:-}

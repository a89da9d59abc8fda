#!/usr/bin/env bash
# Step time of pose-only vs RGB-pose training at P_samp 0/10/25/50% (paper Table 9). Arguments go to the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m bench.rgb_step_time "$@"

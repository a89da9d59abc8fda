# Sourced by the stage scripts: how to start train.py.
# On a GPU machine: DeepSpeed over the visible GPUs as the official scripts do (GPUS=0,1,... or HOSTFILE=FILE for
# several nodes), with DTYPE (bf16) and ZERO_STAGE (2). Without GPUs: one plain process. LAUNCHER overrides both,
# e.g. LAUNCHER="deepspeed --num_gpus 2" runs two CPU processes.
if [ -z "${LAUNCHER:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    if [ -n "${HOSTFILE:-}" ]; then
      LAUNCHER="deepspeed --hostfile ${HOSTFILE} --master_port ${MASTER_PORT:-29511}"
    else
      gpus=${GPUS:-$(nvidia-smi --query-gpu=index --format=csv,noheader | paste -sd, -)}
      LAUNCHER="deepspeed --include localhost:${gpus} --master_port ${MASTER_PORT:-29511}"
    fi
  else
    LAUNCHER=python
  fi
fi
if [ "${LAUNCHER%% *}" = "deepspeed" ]; then
  ENGINE_ARGS="--deepspeed --dtype ${DTYPE:-bf16} --zero_stage ${ZERO_STAGE:-2}"
else
  ENGINE_ARGS=""
fi

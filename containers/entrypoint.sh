#!/bin/sh
# Container entrypoint: serve one model on this container's GPU (the Compose service reserves one).
# Arguments go to `vsrflow serve` (e.g. --model ID --port 8081). Inside the container the reserved
# GPU is index 0; without a GPU (no nvidia-smi or none listed) the endpoint runs on the CPU.
set -eu

gpu_args=""
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    gpu_args="--gpu 0"
fi

# Bind all interfaces inside the container; Compose publishes the port on the host's 127.0.0.1.
# shellcheck disable=SC2086  # gpu_args is empty or two words on purpose
exec vsrflow serve --host 0.0.0.0 --state-dir /opt/vsrflow/state/endpoint \
    --ready-file /opt/vsrflow/state/ready $gpu_args "$@"

#!/usr/bin/env bash
# Device benchmark on a GPU node: bash bench/gpu.sh [BUDGET_SECONDS [gpu.py options...]]
# (budget default 450 s = 7.5 min; e.g. `bash bench/gpu.sh 60 --smoke` checks it on a CPU)
#
# Runs bench/gpu.py from this checkout (no install) with the node's python3 (the one with a CUDA
# torch). What the node lacks travels in .gpu-carry/ (made by bench/gpu_carry.sh on a machine with
# the package registry): wheels/ (PyAV), bin/ffmpeg.xz (a static ffmpeg CLI) and cache/weights/.
# The result goes to $OUT when set (a device run's return folder), else bench/results/.
# A hard wall of budget + 60 s stops a stuck run; the result file is rewritten after every
# measurement, so whatever was measured is kept.
set -euo pipefail
budget="${1:-450}"
shift || true
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
carry="$repo/.gpu-carry"
py="${PYTHON:-python3}"
if ! "$py" -c 'import av' 2>/dev/null && compgen -G "$carry/wheels/*.whl" >/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/vsrflow-site "$carry"/wheels/*.whl
  export PYTHONPATH="/tmp/vsrflow-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
if [ -z "${VSRFLOW_FFMPEG:-}" ] && ! command -v ffmpeg >/dev/null 2>&1 && [ -f "$carry/bin/ffmpeg.xz" ]; then
  mkdir -p /tmp/vsrflow-bin
  "$py" -c 'import lzma, sys; open(sys.argv[2], "wb").write(lzma.decompress(open(sys.argv[1], "rb").read()))' \
    "$carry/bin/ffmpeg.xz" /tmp/vsrflow-bin/ffmpeg
  chmod +x /tmp/vsrflow-bin/ffmpeg
  export VSRFLOW_FFMPEG=/tmp/vsrflow-bin/ffmpeg
fi
if [ -d "$carry/cache" ] && [ -z "${VSRFLOW_CACHE_DIR:-}" ]; then export VSRFLOW_CACHE_DIR="$carry/cache"; fi
out_dir="${OUT:-$repo/bench/results}"
nvidia-smi || true
cd "$repo"
mkdir -p "$out_dir"
timeout --kill-after=10 "$((budget + 60))" "$py" -u bench/gpu.py --budget "$budget" --out-dir "$out_dir" "$@" \
  2>&1 | tee "$out_dir/gpu-bench.log"

#!/usr/bin/env bash
# Prepare .gpu-carry/ for bench/gpu.sh on a GPU node that has python3 + CUDA torch but no registry:
#   bash bench/gpu_carry.sh [PYTHON_VERSION]   (default 3.12, the node's python)
# wheels/: PyAV (decode/encode) and imageio-ffmpeg (a static ffmpeg CLI for clips and the mux),
# for manylinux x86-64; cache/weights/: the store's weight files up to 20 MB (RealESRGAN_x4plus,
# 64 MB, stays behind: the benchmark then uses a random init of the same network, speed only,
# and says so in the result). .gpu-carry/ is git-ignored.
set -euo pipefail
pyver="${1:-3.12}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
carry="$repo/.gpu-carry"
py="${PYTHON:-python3}"
mkdir -p "$carry/wheels" "$carry/cache/weights"
for req in "av>=12" "imageio-ffmpeg>=0.5"; do
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d "$carry/wheels" "$req"
done
store="${VSRFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vsrflow}/weights"
if [ -d "$store" ]; then
  find "$store" -maxdepth 1 -type f \( -name '*.pth' -o -name '*.json' \) -size -20M \
    -exec cp {} "$carry/cache/weights/" \;
fi
du -sh "$carry"

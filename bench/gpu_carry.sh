#!/usr/bin/env bash
# Prepare .gpu-carry/ for bench/gpu.sh on a GPU node that has python3 + CUDA torch but no registry
# (and a 64 MiB limit on what travels):   bash bench/gpu_carry.sh [PYTHON_VERSION]  (default 3.12)
#   wheels/        PyAV (decode/encode), manylinux x86-64 for that python (~35 MB)
#   bin/ffmpeg.xz  a static ffmpeg CLI (from the imageio-ffmpeg 0.4.9 wheel), xz-compressed, for the
#                  test clips and the final mux; gpu.sh unpacks it with python's lzma
#   cache/weights/ the store's weights of the benchmark's models, where under 20 MB: realesr-animevideov3.
#                  RealESRGAN_x4plus (64 MB) stays behind: the benchmark then runs a random init of
#                  the same network (speed only) and says so in the result.
# .gpu-carry/ is git-ignored.
set -euo pipefail
pyver="${1:-3.12}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
carry="$repo/.gpu-carry"
py="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$carry"
mkdir -p "$carry/wheels" "$carry/bin" "$carry/cache/weights"
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
      --platform manylinux2010_x86_64)
# the PyAV version the tests ran here (the same API on the node), else any recent one
av_req="$("$py" -c 'import av; print("av==" + av.__version__)' 2>/dev/null || echo "av>=12")"
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
  "${plat[@]}" -d "$carry/wheels" "$av_req"
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
  "${plat[@]}" -d "$tmp" "imageio-ffmpeg==0.4.9"
"$py" - "$tmp" "$carry/bin/ffmpeg.xz" <<'PY'
import lzma, pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("imageio_ffmpeg-*.whl"))
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if "/binaries/ffmpeg-linux" in n)
    data = z.read(name)
pathlib.Path(sys.argv[2]).write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
PY
store="${VSRFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vsrflow}/weights"
for model in realesr-animevideov3 RealESRGAN_x4plus; do
  pth="$store/$model.pth"
  if [ -f "$pth" ] && [ "$(stat -c %s "$pth")" -lt 20000000 ]; then
    cp "$pth" "$store/$model.json" "$carry/cache/weights/" 2>/dev/null || cp "$pth" "$carry/cache/weights/"
  fi
done
du -sh "$carry"/*

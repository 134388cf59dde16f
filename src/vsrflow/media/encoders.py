"""Which video encoders this machine can really use: NVENC detection and ``--codec auto``.

A GPU encoder must pass two checks before it is used:

* it is **listed** by ``ffmpeg -hide_banner -encoders`` (the CLI's build has it), and
* a **one-frame test encode** through PyAV succeeds: the frames are encoded in-process by PyAV's
  own FFmpeg (:mod:`vsrflow.media.writer`), and an NVENC encoder that is compiled in still fails
  at open time without an NVIDIA driver, a GPU with an NVENC unit (H100/A100 have none; L4, A10G
  and T4 do) or a free session.

Policy (documented decision): ``--codec auto`` is ``h264_nvenc`` when both checks pass, else
``libx264``. An explicit ``h264_nvenc``/``hevc_nvenc`` that fails a check falls back to
``libx264``/``libx265`` with a warning naming the reason, so one job spec runs on every node type.
Results are cached per process (the checks spawn ffmpeg and open an encoder).
"""

from __future__ import annotations

import functools
import io
import logging
import subprocess
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: GPU encoder -> the CPU encoder of the same format it falls back to.
NVENC_FALLBACK = {"h264_nvenc": "libx264", "hevc_nvenc": "libx265"}
AUTO = "auto"


@dataclass(frozen=True)
class EncoderCheck:
    """Outcome of checking one encoder.

    Attributes:
        codec: encoder name.
        listed: ``ffmpeg -encoders`` lists it (None: the CLI could not be run).
        test_encode: a one-frame PyAV encode succeeded.
        reason: why it is unusable ("" when usable).
    """

    codec: str
    listed: bool | None
    test_encode: bool
    reason: str

    @property
    def usable(self) -> bool:
        return bool(self.listed) and self.test_encode


def parse_encoders(text: str) -> set[str]:
    """Encoder names from ``ffmpeg -hide_banner -encoders`` output (video, audio and subtitle).

    Lines look like `` V....D libx264              libx264 H.264 ...``: six flag characters, the
    name, a description. The legend above the ``------`` line is skipped.
    """
    names: set[str] = set()
    started = False
    for line in text.splitlines():
        if line.strip().startswith("------"):
            started = True
            continue
        parts = line.split()
        if started and len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return names


@functools.lru_cache(maxsize=8)
def listed_encoders(ffmpeg: str = "ffmpeg") -> frozenset[str] | None:
    """The encoders ``ffmpeg`` lists, or None when it cannot be run."""
    try:
        proc = subprocess.run(
            [ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("could not run %s -encoders: %s", ffmpeg, exc)
        return None
    return frozenset(parse_encoders(proc.stdout)) if proc.returncode == 0 else None


def encode_one_frame(codec: str, width: int = 256, height: int = 256) -> str:
    """Encode one black yuv420p frame with PyAV's ``codec`` into memory; "" on success, else the error."""
    import av
    import numpy as np
    from av.video.stream import VideoStream

    try:
        with av.open(io.BytesIO(), mode="w", format="matroska") as container:
            stream = container.add_stream(codec, rate=24)
            if not isinstance(stream, VideoStream):
                return f"{codec} is not a video encoder"
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    except Exception as exc:  # any failure to open or run the encoder means: not usable here
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
    return ""


@functools.lru_cache(maxsize=8)
def check(codec: str, ffmpeg: str = "ffmpeg") -> EncoderCheck:
    """List and test-encode ``codec`` (cached per process)."""
    listed = listed_encoders(ffmpeg)
    is_listed = None if listed is None else codec in listed
    error = encode_one_frame(codec)
    if is_listed is False:
        reason = f"{ffmpeg} -encoders does not list {codec}"
    elif is_listed is None:
        reason = f"could not run {ffmpeg} -encoders"
    elif error:
        reason = f"a one-frame {codec} test encode failed ({error})"
    else:
        reason = ""
    return EncoderCheck(codec=codec, listed=is_listed, test_encode=not error, reason=reason)


def resolve_codec(requested: str, ffmpeg: str = "ffmpeg") -> str:
    """The encoder to use for ``--codec requested``: see the module policy.

    ``auto`` -> ``h264_nvenc`` if usable, else ``libx264``; an unusable NVENC name -> its CPU
    counterpart with a warning; any other name is returned unchanged (validated by the writer).
    """
    if requested == AUTO:
        nv = check("h264_nvenc", ffmpeg)
        if nv.usable:
            return "h264_nvenc"
        log.info("--codec auto: libx264 (%s)", nv.reason)
        return "libx264"
    if requested in NVENC_FALLBACK:
        nv = check(requested, ffmpeg)
        if not nv.usable:
            fallback = NVENC_FALLBACK[requested]
            log.warning("%s is not usable here: %s; encoding with %s instead", requested, nv.reason, fallback)
            return fallback
    return requested

"""Uploads from the browser: names as data, size and type limits, the probe and a time estimate.

A browser's file name is never a path: :func:`safe_name` keeps its last component, replaces
anything but letters, digits, ``.``, ``_``, ``-`` and spaces, and refuses names without an
accepted video suffix. Local uploads are stored as ``<uploads root>/<upload id>/<safe name>``
where the upload id is random (16 hex digits), so two uploads never meet and nothing the
browser sends picks a directory. :func:`describe` probes the stored file (the same probe every
job runs first) and answers what the page shows: duration, size, frame rate, scan type, streams.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsrflow.errors import InputError
from vsrflow.formats import INPUT_SUFFIXES, suffix_of

#: Longest stored name (characters), well inside every filesystem's and S3's limits.
MAX_NAME_CHARS = 120
#: Default largest local upload (bytes): 20 GiB.
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024**3
_UPLOAD_ID = re.compile(r"^[0-9a-f]{16}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_name(raw: str, suffixes: tuple[str, ...] = INPUT_SUFFIXES) -> str:
    """The name to store a browser's file ``raw`` under (see the module docstring).

    Raises:
        InputError: no usable name left, or a suffix not in ``suffixes``.
    """
    base = unicodedata.normalize("NFKC", str(raw)).replace("\\", "/").rpartition("/")[2]
    base = _UNSAFE.sub("_", base).strip(" .")
    suffix = suffix_of(base)
    if suffix not in suffixes:
        shown = suffix or "(no suffix)"
        raise InputError(
            f"{raw!r}: unsupported file type {shown}", hint=f"upload a video ending in {', '.join(suffixes)}"
        )
    typed = base[len(base) - len(suffix) :]  # as the user spelled it (x.MOV stays x.MOV)
    stem = base[: len(base) - len(suffix)].strip(" .") or "video"
    stem = stem[: MAX_NAME_CHARS - len(suffix)]
    return stem + typed


def safe_tag(text: str) -> str:
    """``text`` as a file-name fragment (letters, digits, ``.``, ``_``, ``-``; at most 64 characters)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:64] or "x"


def new_upload_id() -> str:
    return secrets.token_hex(8)


def check_upload_id(value: str) -> str:
    if not isinstance(value, str) or not _UPLOAD_ID.match(value):
        raise InputError(f"upload id {value!r} is not 16 hex digits", hint="upload the file again")
    return value


def size_text(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


class TooLarge(InputError):
    """An upload over the size limit (HTTP 413)."""


def too_large(size: int, limit: int) -> TooLarge:
    return TooLarge(
        f"the file is {size_text(size)}; this page accepts at most {size_text(limit)}",
        hint="split the video, or start the server with a larger --max-upload",
    )


async def store(chunks: AsyncIterator[bytes], path: Path, limit: int, declared: int | None) -> int:
    """Write the request body ``chunks`` to ``path`` (a new file); returns its size in bytes.

    Refused before anything is written when ``declared`` (Content-Length) exceeds ``limit``, and
    stopped (the partial file removed) as soon as the bytes do.
    """
    if declared is not None and declared > limit:
        raise too_large(declared, limit)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    written = 0
    try:
        with partial.open("xb") as out:
            async for chunk in chunks:
                written += len(chunk)
                if written > limit:
                    raise too_large(written, limit)
                out.write(chunk)
        if written == 0:
            raise InputError(f"{path.name}: the file is empty (0 bytes)", hint="choose the video file itself")
        partial.rename(path)
    finally:
        partial.unlink(missing_ok=True)
    return written


@dataclass(frozen=True)
class Description:
    """What the page shows about a stored upload (JSON via :meth:`to_json`)."""

    name: str
    size: int
    duration: float
    width: int
    height: int
    fps: str
    frames: int
    scan: str
    codec: str
    container: str
    streams: tuple[str, ...]
    #: indexes of the real video streams (not cover art): more than one needs a choice at start
    video_streams: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "size_text": size_text(self.size),
            "duration": round(self.duration, 3),
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "frames": self.frames,
            "scan": self.scan,
            "codec": self.codec,
            "container": self.container,
            "streams": list(self.streams),
            "video_streams": list(self.video_streams),
        }


def describe(path: Path) -> Description:
    """Probe ``path`` (:func:`vsrflow.media.probe.probe`); InputError saying what is wrong with it."""
    from vsrflow.media.probe import probe, scan_type

    try:
        info = probe(path)
    except InputError as err:
        # The stored path is ours, not the user's: name the file as they called it.
        message = err.message.replace(str(path), path.name)
        raise InputError(message, hint=err.hint) from err
    streams = []
    for stream in info.streams:
        text = f"#{stream.index} {stream.kind} {stream.codec}"
        if stream.language:
            text += f" ({stream.language})"
        if stream.index == info.video_stream_index:
            text += f" {info.width}x{info.height}"
        streams.append(text)
    rate = info.frame_rate
    fps = str(rate.numerator) if rate.denominator == 1 else f"{float(rate):.3f}"
    return Description(
        name=path.name,
        size=path.stat().st_size,
        duration=float(info.duration),
        width=info.width,
        height=info.height,
        fps=fps,
        frames=info.frame_count,
        scan=scan_type(path),
        codec=info.codec,
        container=info.container,
        streams=tuple(streams),
        video_streams=tuple(s.index for s in info.streams if s.kind == "video" and not s.attached_pic),
    )


#: Effective throughput assumed before this machine has finished a chunk with the model
#: (MFLOP/s): an order of magnitude for 2-4 CPU cores; a GPU is 100-1000x faster.
ASSUMED_MFLOPS = 20_000.0


def estimate_seconds(
    model: str, width: int, height: int, frames: int, measured_mflops: float | None
) -> tuple[float | None, str]:
    """Seconds the upscale of ``frames`` frames of ``width`` x ``height`` should take, and the basis.

    Cost = MFLOP per input pixel of ``model`` (:data:`vsrflow.bench.flops.MFLOP_PER_PX`) x pixels
    x frames, divided by ``measured_mflops`` (what finished chunks on this machine achieved) or
    :data:`ASSUMED_MFLOPS`. None when the model's cost is unknown.
    """
    from vsrflow.bench.flops import MFLOP_PER_PX

    cost = MFLOP_PER_PX.get(model)
    if cost is None:
        return None, f"no cost figure for {model}"
    rate = measured_mflops or ASSUMED_MFLOPS
    basis = "measured on this machine" if measured_mflops else "a rough CPU figure (no job ran here yet)"
    return cost * width * height * frames / rate, basis


def ceiling_seconds(model: str, width: int, height: int, frames: int) -> float | None:
    """Seconds one H100/H200 would need for the upscale at its compute ceiling (a lower bound;
    :func:`vsrflow.bench.flops.ceiling_fps`); None when the model's cost is unknown."""
    from vsrflow.bench.flops import MFLOP_PER_PX, ceiling_fps

    cost = MFLOP_PER_PX.get(model)
    if cost is None or width * height <= 0:
        return None
    return frames / ceiling_fps(cost, width * height)


def describe_remote(location: str, name: str, size: int) -> dict[str, Any]:
    """The page's probe summary of an object read through ``location`` (a presigned GET):
    headers and the first frames only, so a large upload costs a few range requests."""
    from vsrflow.media.probe import header_facts, scan_type

    facts = header_facts(location)
    rate = facts.frame_rate
    frames = facts.frames or round(facts.duration * float(rate))
    fps = str(rate.numerator) if rate.denominator == 1 else f"{float(rate):.3f}"
    return Description(
        name=name,
        size=size,
        duration=facts.duration,
        width=facts.width,
        height=facts.height,
        fps=fps,
        frames=frames,
        scan=scan_type(location),
        codec=facts.codec,
        container=facts.container,
        streams=facts.streams,
    ).to_json()

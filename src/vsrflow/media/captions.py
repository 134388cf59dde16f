"""Closed captions (CEA-608/708 in the video's A/53 side data) carried as a text subtitle stream.

The model's frames are new pictures, so the encoder gets no A/53 side data and the captions would
be lost with the source frames. Before the final mux, ffmpeg's own caption decoder
(``movie=...[out0+subcc]``, the lavfi device's caption output) turns them into SubRip cues; the
mux adds them as a subtitle stream the output container holds (:func:`caption_codec`): mov_text in
MP4/MOV, SubRip in Matroska. What a text stream cannot hold is simplified by ffmpeg's decoder
(roll-up/paint-on become whole cues, colours and exact positions are dropped).

Timing: the cues are written relative to the video's first frame (ffmpeg shifts the lavfi input to
start at 0), so the mux places them at the video's start, :func:`caption_offset`.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

from vsrflow.errors import ExternalToolError
from vsrflow.media.ffmpeg import run_ffmpeg
from vsrflow.media.info import VideoInfo

log = logging.getLogger(__name__)

#: The caption stream's title in the output.
CAPTION_TITLE = "Closed captions (CEA-608/708)"


def caption_codec(mp4_family: bool) -> str:
    """The text subtitle codec the output container holds: mov_text (MP4/MOV) or srt (Matroska)."""
    return "mov_text" if mp4_family else "srt"


def caption_offset(source: VideoInfo, lead: Fraction) -> Fraction:
    """Seconds to move the extracted cues by in the final mux: to the source video's first frame,
    less the lead the mux removes from every input (:func:`~vsrflow.media.assemble.leading_time`)."""
    return source.start_pts * source.time_base - lead


def extract_captions(source: VideoInfo, work: Path, ffmpeg: str = "ffmpeg") -> Path | None:
    """Decode ``source``'s closed captions into ``work/captions.srt``; None when it has none.

    The source is linked into ``work`` under a fixed name, so no file name ever enters the filter
    graph (whose syntax gives meaning to ``:``, ``,``, ``'``, ``[``). A decode failure is logged as
    a warning and returns None: captions were never carried before, and the upscale is done.
    """
    if not source.closed_captions:
        return None
    linked = work / f"captioned-source{source.path.suffix.lower()}"
    try:
        os.symlink(Path(source.path).resolve(), linked)
    except OSError as err:  # a file system without links: the captions are what is lost, said so
        log.warning("%s: the closed captions are not carried (cannot link the source: %s)", source.path, err)
        return None
    out = work / "captions.srt"
    graph = f"movie={linked.name}:si={source.video_stream_index}[out0+subcc]"
    argv = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", graph,
            "-map", "0:1", "-c:s", "srt", "-f", "srt", out.name]  # fmt: skip
    try:  # in work: the graph names the link relative to it
        run_ffmpeg(argv, what=f"reading the closed captions of {source.path}", cwd=work)
    except ExternalToolError as err:
        log.warning("%s: the closed captions could not be read and are not carried: %s", source.path, err)
        return None
    if not out.is_file() or "-->" not in out.read_text(errors="replace"):
        log.info("%s: the caption channel holds no text; no caption stream is written", source.path)
        return None
    return out

"""What the media layer knows about an input: plain frozen dataclasses, no I/O.

Units: timestamps (``start_pts``, ``last_frame_duration``) are integers in ``time_base``;
``duration`` is seconds (float); rates and aspect ratios are exact :class:`~fractions.Fraction`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

STREAM_KINDS = ("video", "audio", "subtitle", "attachment", "data")
#: Demuxers whose timestamps are a transport clock (MPEG-PS/TS): its start and wraps mean nothing to
#: a viewer, and a jump in it is a discontinuity (joined captures), not a pause.
CLOCK_CONTAINERS = frozenset({"mpegts", "mpeg", "mpegvideo"})
#: A clock jump larger than this (seconds, forward; backward: any beyond frame reordering) is a
#: discontinuity.
CLOCK_JUMP_S = 10.0


@dataclass(frozen=True)
class ClockJump:
    """A discontinuity of an MPEG-PS/TS video clock (joined captures, a recorder glitch).

    Attributes:
        packet: index (decode order, counting video packets from 0) of the first packet after it.
        at: seconds of video before the jump (the previous packet's time minus the stream start).
        jump: seconds the clock jumps by (the dts step; positive forward, negative backward).
    """

    packet: int
    at: float
    jump: float


#: FFmpeg's AVFieldOrder values, by the names ffprobe prints.
FIELD_ORDERS = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}


def field_order_name(value: int | None) -> str:
    """ffprobe's name for an AVFieldOrder value ('unknown' for None or an unknown value)."""
    return FIELD_ORDERS.get(int(value or 0), "unknown")


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a container.

    Attributes:
        index: stream index in the container (what ``-map 0:<index>`` selects).
        kind: 'video', 'audio', 'subtitle', 'attachment' or 'data'.
        codec: FFmpeg codec name ('h264', 'aac', 'subrip', 'ass', 'mov_text', ...; 'unknown' if none).
        language: ISO 639-2 code, or None when absent or 'und'.
        title: the stream's title tag, or None.
        default: the 'default' disposition flag.
        forced: the 'forced' disposition flag.
        dispositions: every disposition flag set, by FFmpeg name ('default', 'forced', 'comment'...).
        attached_pic: a cover-art "video" stream (not the video to upscale).
        start_time: the stream's first timestamp in seconds (exact), or None when unknown.
    """

    index: int
    kind: str
    codec: str
    language: str | None = None
    title: str | None = None
    default: bool = False
    forced: bool = False
    dispositions: tuple[str, ...] = ()
    attached_pic: bool = False
    start_time: Fraction | None = None


#: Transfer functions of HDR signals (PQ, HLG), by ffmpeg name.
HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})


@dataclass(frozen=True)
class HdrMetadata:
    """HDR10 static metadata of a video, in the syntax libx265's ``-x265-params`` takes.

    Attributes:
        master_display: the mastering display colour volume (SMPTE ST 2086) as
            ``G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)``: chromaticities in 0.00002 units, luminance
            in 0.0001 cd/m2 units; None when the source has none.
        max_cll: the content light level as ``MaxCLL,MaxFALL`` (cd/m2); None when absent.
    """

    master_display: str | None = None
    max_cll: str | None = None


@dataclass(frozen=True)
class Damage:
    """How much video a cut-short source lacks against what its container declares.

    Attributes:
        declared_seconds: the video length the container's header or index declares.
        readable_seconds: the video length the file really holds (demuxed packets).
        lost_frames: frames missing: exact from an MP4/MOV sample table, else estimated from the
            nominal frame rate (``estimated``).
        basis: what declared the length (``"index"``: an MP4/MOV sample table, ``"DURATION tag"``:
            Matroska's per-track statistics tag).
        declared_frames: the frame count the index lists (None when the container lists none).
    """

    declared_seconds: float
    readable_seconds: float
    lost_frames: int
    basis: str
    declared_frames: int | None = None

    @property
    def estimated(self) -> bool:
        """``lost_frames`` is estimated from the frame rate (no declared frame count)."""
        return self.declared_frames is None

    @property
    def lost_seconds(self) -> float:
        return max(0.0, self.declared_seconds - self.readable_seconds)

    def describe(self) -> str:
        """One line: ``its DURATION tag declares 3.023 s of video, the file holds 0.360 s (...)``."""
        if self.declared_frames is not None:
            return (
                f"its {self.basis} lists {self.declared_frames} video frames, the file holds only "
                f"{self.declared_frames - self.lost_frames} ({self.lost_seconds:.3f} s missing)"
            )
        about = "about " if self.estimated else ""
        return (
            f"its {self.basis} declares {self.declared_seconds:.3f} s of video, the file holds "
            f"{self.readable_seconds:.3f} s ({self.lost_seconds:.3f} s, {about}{self.lost_frames} "
            "frames, missing)"
        )

    def to_json(self) -> dict[str, object]:
        """What the provenance sidecar records (seconds rounded to the millisecond)."""
        return {
            "declared_seconds": round(self.declared_seconds, 3),
            "readable_seconds": round(self.readable_seconds, 3),
            "lost_seconds": round(self.lost_seconds, 3),
            "lost_frames": self.lost_frames,
            "lost_frames_estimated": self.estimated,
            "basis": self.basis,
            "declared_frames": self.declared_frames,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Damage:
        """The :class:`Damage` a sidecar's ``damage`` object records (:meth:`to_json`)."""
        declared = data.get("declared_frames")
        return cls(
            declared_seconds=float(str(data["declared_seconds"])),
            readable_seconds=float(str(data["readable_seconds"])),
            lost_frames=int(str(data["lost_frames"])),
            basis=str(data["basis"]),
            declared_frames=None if declared is None else int(str(declared)),
        )


@dataclass(frozen=True)
class VideoInfo:
    """Probe result for a file with one video stream to process (see :func:`vsrflow.media.probe.probe`).

    Attributes:
        path: the probed file.
        container: short demuxer name ('mov' for mp4/mov, 'matroska' for mkv/webm, ...).
        width, height: coded picture size in pixels (rotation NOT applied).
        frame_rate: nominal rate (r_frame_rate), e.g. Fraction(30000, 1001).
        avg_frame_rate: average rate (frames / duration as the demuxer reports it).
        time_base: the video stream's time base; every pts of this stream is in these units.
        frame_count: video packets counted by demuxing (never the header's nb_frames).
        duration: seconds, last pts + last frame duration - first pts of the video stream.
        start_pts: smallest video pts (time_base units).
        last_frame_duration: duration of the last presented frame (time_base units).
        sar: sample (pixel) aspect ratio; Fraction(1) when square or unknown.
        rotation: display rotation in degrees, one of 0/90/180/270; the value ffmpeg's legacy
            ``rotate`` stream tag takes (and what ``-metadata:s:v:0 rotate=N`` writes back).
        pix_fmt: decoder pixel format ('yuv420p', 'yuv420p10le', ...).
        bit_depth: bits per component of the first (luma) component.
        color_primaries, color_transfer, color_matrix: ffmpeg names ('bt709', 'smpte170m'...) or None.
        color_range: 'tv' (limited) or 'pc' (full), or None when untagged.
        is_vfr: packet pts deltas vary by more than one tick and 1 % (see probe).
        video_stream_index: container index of the video stream.
        streams: every stream of the container, in index order.
        chapters: number of chapters.
        codec: the video codec name.
        field_order: the stream's field-order flag as ffprobe names it ('progressive', 'tt',
            'bb', 'tb', 'bt' or 'unknown'); the content check is :mod:`vsrflow.media.scan`.
        damage: what a cut-short source lacks (:class:`Damage`); only ever set when the probe
            was told to accept damaged input (else it refuses the file).
        hdr: the HDR10 static metadata (mastering display, content light level) the first frame
            carries (:class:`HdrMetadata`), or None.
        closed_captions: the video carries CEA-608/708 captions in its frames' A/53 side data.
        skipped_packets: leading video packets presented before the first frame that decodes (a
            capture cut mid-GOP: they reference pictures the file does not hold); not counted in
            ``frame_count``, and ``start_pts`` is that first decodable frame's pts.
        clock_jumps: discontinuities of an MPEG-PS/TS clock; such a source is re-timed before any
            work (:mod:`vsrflow.media.retime`), its frames cannot be read as they are.
    """

    path: Path
    container: str
    width: int
    height: int
    frame_rate: Fraction
    avg_frame_rate: Fraction
    time_base: Fraction
    frame_count: int
    duration: float
    start_pts: int
    sar: Fraction
    rotation: int
    pix_fmt: str
    bit_depth: int
    color_primaries: str | None
    color_transfer: str | None
    color_matrix: str | None
    color_range: str | None
    is_vfr: bool
    video_stream_index: int
    streams: tuple[StreamInfo, ...]
    chapters: int
    codec: str = "unknown"
    last_frame_duration: int = 0
    format_tags: tuple[tuple[str, str], ...] = field(default=())
    field_order: str = "unknown"
    damage: Damage | None = None
    hdr: HdrMetadata | None = None
    closed_captions: bool = False
    skipped_packets: int = 0
    clock_jumps: tuple[ClockJump, ...] = ()

    @property
    def frame_duration(self) -> Fraction:
        """Nominal seconds per frame (1 / frame_rate)."""
        return 1 / self.frame_rate

    @property
    def frame_duration_ticks(self) -> int:
        """Nominal frame duration in time_base units (rounded, at least 1)."""
        return max(1, round(self.frame_duration / self.time_base))

    @property
    def non_video_streams(self) -> tuple[StreamInfo, ...]:
        """Audio, subtitle, attachment and data streams plus any extra video (cover art) streams."""
        return tuple(s for s in self.streams if s.index != self.video_stream_index)

    @property
    def audio_streams(self) -> tuple[StreamInfo, ...]:
        return tuple(s for s in self.streams if s.kind == "audio")

    @property
    def subtitle_streams(self) -> tuple[StreamInfo, ...]:
        return tuple(s for s in self.streams if s.kind == "subtitle")

    @property
    def attachment_streams(self) -> tuple[StreamInfo, ...]:
        return tuple(s for s in self.streams if s.kind == "attachment")

    @property
    def is_high_bit_depth(self) -> bool:
        """True for > 8 bits per component (frames are then uint16 RGB)."""
        return self.bit_depth > 8

    @property
    def display_aspect_ratio(self) -> Fraction:
        """width * sar / height (rotation not applied)."""
        return Fraction(self.width) * self.sar / self.height

    def seconds(self, pts: int) -> Fraction:
        """Exact seconds of a pts of the video stream, relative to ``start_pts``."""
        return (pts - self.start_pts) * self.time_base

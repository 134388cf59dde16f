"""Scan type of a video stream: progressive, interlaced (TFF/BFF) or telecined film.

Two witnesses, because either alone lies on real catalogues:

* the stream flag (``field_order`` of the codec parameters, what ffprobe prints): 'progressive',
  'tt'/'tb' (top field first), 'bb'/'bt' (bottom field first) or 'unknown';
* the content: ffmpeg's ``idet`` filter (run in-process through PyAV's filter graph) over a
  sample of consecutive frames, giving its multi-frame TFF/BFF/progressive/undetermined counts
  and its repeated-field counts (a 3:2 pulldown repeats a field in 2 of every 5 frames).

:func:`classify` combines them (pure; unit-tested on counts) and :func:`detect_scan` samples a file.
The rules, in order (``override`` replaces detection when the user knows better):

1. a 29.97/30 fps stream whose sample repeats a field in 25..55 % of its frames, both parities
   present, is telecined film (3:2 pulldown). Never at other rates: PAL (25 fps) and
   camera-native 29.97i video repeat no fields and are never inverse-telecined;
2. an interlaced flag means interlaced; the parity is the content's when it is clear (>= 80 % of
   the determined frames), else the flag's. A disagreement (flag vs content) is noted;
3. a 'progressive' flag is trusted; content that looks interlaced is only noted (``--scan`` forces);
4. no flag: the content decides (>= 60 % of a sample with at least 10 determined frames);
   otherwise progressive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.error
import av.filter
from av.video.stream import VideoStream

from vsrflow.errors import InputError
from vsrflow.media.info import VideoInfo
from vsrflow.media.probe import open_input

log = logging.getLogger(__name__)

#: User overrides for the scan type (``--scan``).
SCAN_OVERRIDES = ("auto", "progressive", "tff", "bff", "telecine")

#: Sample: windows of consecutive frames at evenly spread positions of the video.
SAMPLE_WINDOWS = 3
SAMPLE_FRAMES = 40
#: Share of frames with a repeated field that marks 3:2 pulldown (2 of 5 = 40 %).
TELECINE_REPEATED = (0.25, 0.55)
#: Minimum determined frames before the content may decide anything.
MIN_DETERMINED = 10


@dataclass(frozen=True)
class IdetCounts:
    """Totals of ffmpeg's ``idet`` over the sampled frames (its multi-frame detection)."""

    tff: int = 0
    bff: int = 0
    progressive: int = 0
    undetermined: int = 0
    repeated_top: int = 0
    repeated_bottom: int = 0
    repeated_neither: int = 0

    @property
    def frames(self) -> int:
        return self.tff + self.bff + self.progressive + self.undetermined

    @property
    def determined(self) -> int:
        return self.tff + self.bff + self.progressive

    @property
    def repeated_share(self) -> float:
        total = self.repeated_top + self.repeated_bottom + self.repeated_neither
        return (self.repeated_top + self.repeated_bottom) / total if total else 0.0

    def __add__(self, other: IdetCounts) -> IdetCounts:
        return IdetCounts(*(a + b for a, b in zip(_values(self), _values(other), strict=True)))


def _values(c: IdetCounts) -> tuple[int, ...]:
    return (
        c.tff,
        c.bff,
        c.progressive,
        c.undetermined,
        c.repeated_top,
        c.repeated_bottom,
        c.repeated_neither,
    )


@dataclass(frozen=True)
class ScanType:
    """What the video is, and why.

    Attributes:
        kind: 'progressive', 'interlaced' or 'telecine' (3:2 pulldown of 24000/1001 film).
        parity: 'tff' or 'bff' for interlaced/telecine, None for progressive.
        field_order: the stream flag ('progressive', 'tt', 'bb', 'tb', 'bt', 'unknown').
        basis: what decided: 'flag', 'content', 'flag+content' or 'override'.
        idet: the content sample's counts (None when not sampled).
        notes: disagreements worth a warning (each names the option that changes the outcome).
    """

    kind: str
    parity: str | None
    field_order: str
    basis: str
    idet: IdetCounts | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def interlaced(self) -> bool:
        return self.kind != "progressive"

    def to_json(self) -> dict[str, object]:
        counts = None
        if self.idet is not None:
            c = self.idet
            counts = {
                "tff": c.tff,
                "bff": c.bff,
                "progressive": c.progressive,
                "undetermined": c.undetermined,
                "repeated_top": c.repeated_top,
                "repeated_bottom": c.repeated_bottom,
                "repeated_neither": c.repeated_neither,
            }
        return {
            "kind": self.kind,
            "parity": self.parity,
            "field_order": self.field_order,
            "basis": self.basis,
            "idet": counts,
            "notes": list(self.notes),
        }


def _flag_parity(field_order: str) -> str | None:
    if field_order in ("tt", "tb"):
        return "tff"
    if field_order in ("bb", "bt"):
        return "bff"
    return None


def _is_ntsc_rate(rate: Fraction) -> bool:
    return rate in (Fraction(30000, 1001), Fraction(30))


def classify(field_order: str, rate: Fraction, idet: IdetCounts | None, override: str = "auto") -> ScanType:
    """The scan type from the stream flag, the nominal rate and an idet sample (module rules)."""
    if override not in SCAN_OVERRIDES:
        raise InputError(f"--scan {override!r} is not one of {', '.join(SCAN_OVERRIDES)}")
    if override == "progressive":
        return ScanType("progressive", None, field_order, "override", idet)
    flag_parity = _flag_parity(field_order)
    content_parity: str | None = None
    content_interlaced = False
    content_progressive = False
    if idet is not None and idet.determined >= MIN_DETERMINED:
        inter = idet.tff + idet.bff
        if inter >= 0.8 * idet.determined:
            content_parity = "tff" if idet.tff >= idet.bff else "bff"
        content_interlaced = inter >= 0.6 * idet.determined and idet.determined >= idet.frames / 3
        content_progressive = idet.progressive >= 0.8 * idet.determined
    if override in ("tff", "bff"):
        return ScanType("interlaced", override, field_order, "override", idet)
    if override == "telecine":
        return ScanType("telecine", content_parity or flag_parity or "tff", field_order, "override", idet)

    repeated = idet.repeated_share if idet is not None else 0.0
    lo, hi = TELECINE_REPEATED
    if (
        idet is not None
        and field_order != "progressive"
        and _is_ntsc_rate(rate)
        and lo <= repeated <= hi
        and idet.repeated_top > 0
        and idet.repeated_bottom > 0
    ):
        parity = content_parity or flag_parity or "tff"
        return ScanType("telecine", parity, field_order, "flag+content" if flag_parity else "content", idet)

    notes: list[str] = []
    if flag_parity is not None:
        parity = flag_parity
        basis = "flag"
        if content_parity is not None:
            basis = "flag+content"
            if content_parity != flag_parity:
                notes.append(
                    f"the stream is flagged {field_order} ({flag_parity}) but its fields are "
                    f"{content_parity} by content (idet); deinterlacing as {content_parity} "
                    f"(pass --scan {flag_parity} to follow the flag)"
                )
                parity = content_parity
        elif content_progressive:
            notes.append(
                f"the stream is flagged interlaced ({field_order}) but its content looks progressive "
                "(idet); deinterlacing anyway, the safe choice (pass --scan progressive or "
                "--deinterlace off to keep the frames as they are)"
            )
        elif idet is None or idet.determined < MIN_DETERMINED:
            notes.append(
                f"the stream is flagged interlaced ({field_order}); the content sample could not "
                "confirm it (too little motion); deinterlacing, the safe choice (pass --scan "
                "progressive or --deinterlace off if the frames are progressive)"
            )
        return ScanType("interlaced", parity, field_order, basis, idet, tuple(notes))
    if field_order == "progressive":
        if content_interlaced:
            parity = content_parity or "tff"
            notes.append(
                "the stream is flagged progressive but its content looks interlaced (idet); "
                f"kept progressive as flagged (pass --scan {parity} to deinterlace)"
            )
        return ScanType("progressive", None, field_order, "flag", idet, tuple(notes))
    if content_interlaced:
        return ScanType("interlaced", content_parity or "tff", field_order, "content", idet)
    return ScanType("progressive", None, field_order, "content" if idet is not None else "flag", idet)


def _window_starts(info: VideoInfo) -> list[int]:
    """Source frame indices where sample windows begin (evenly spread, first at frame 0)."""
    n = info.frame_count
    if n <= SAMPLE_WINDOWS * SAMPLE_FRAMES:
        return [0]
    return [round(i * (n - SAMPLE_FRAMES) / (SAMPLE_WINDOWS - 1)) for i in range(SAMPLE_WINDOWS)]


def _idet_window(container: av.container.InputContainer, stream: VideoStream, frames: int) -> IdetCounts:
    graph = av.filter.Graph()
    src = graph.add_buffer(template=stream)
    idet = graph.add("idet")
    sink = graph.add("buffersink")
    src.link_to(idet)
    idet.link_to(sink)
    graph.configure()
    meta: dict[str, str] = {}

    def drain() -> None:
        nonlocal meta
        while True:
            try:
                out = graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            meta = dict(out.metadata)

    for pushed, frame in enumerate(container.decode(stream), start=1):
        graph.push(frame)
        drain()
        if pushed >= frames:
            break
    graph.push(None)
    drain()

    def count(key: str) -> int:
        return round(float(meta.get(f"lavfi.idet.{key}", "0")))

    return IdetCounts(
        tff=count("multiple.tff"),
        bff=count("multiple.bff"),
        progressive=count("multiple.progressive"),
        undetermined=count("multiple.undetermined"),
        repeated_top=count("repeated.top"),
        repeated_bottom=count("repeated.bottom"),
        repeated_neither=count("repeated.neither"),
    )


def sample_idet(path: Path | str, info: VideoInfo) -> IdetCounts:
    """Run ``idet`` over up to :data:`SAMPLE_WINDOWS` windows of :data:`SAMPLE_FRAMES` frames
    (the whole video when it is at most that long).

    Raises:
        InputError: the file cannot be opened or decoded (names the file).
    """
    total = IdetCounts()
    with open_input(Path(path)) as container:
        stream = container.streams[info.video_stream_index]
        assert isinstance(stream, VideoStream)
        stream.thread_type = "AUTO"
        tb = info.time_base
        starts = _window_starts(info)
        # A short video is sampled whole (one window), a long one in evenly spread windows.
        length = info.frame_count if len(starts) == 1 else SAMPLE_FRAMES
        for start in starts:
            try:
                if start > 0:
                    target = info.start_pts + round(start / info.frame_rate / tb)
                    container.seek(target, stream=stream, backward=True, any_frame=False)
                total = total + _idet_window(container, stream, length)
            except av.error.FFmpegError as err:
                raise InputError(
                    f"{path}: decoding failed while sampling the scan type: {err}",
                    hint="the video stream is damaged; re-export the source",
                ) from err
    return total


def detect_scan(path: Path | str, info: VideoInfo, override: str = "auto") -> ScanType:
    """The :class:`ScanType` of ``path``'s video stream (flag + idet sample; see :func:`classify`)."""
    if override not in SCAN_OVERRIDES:
        raise InputError(f"--scan {override!r} is not one of {', '.join(SCAN_OVERRIDES)}")
    counts = sample_idet(path, info)
    scan = classify(info.field_order, info.frame_rate, counts, override)
    log.debug("%s: scan type %s", path, scan)
    return scan

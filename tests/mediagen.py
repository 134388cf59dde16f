"""Generate small test media with the ffmpeg CLI (shared by every layer's tests).

Every function writes the file it is asked for, returns its path and raises
``RuntimeError`` with ffmpeg's stderr if the CLI fails. Inputs are tiny (64x48 .. 320x240,
a few dozen frames) so a whole test module can build its media in a second or two.

Typical use::

    from tests.mediagen import make_video
    src = make_video(tmp_path / "in.mkv", frames=12, audio_tracks=2, subtitles=("srt", "ass"))

The container follows the suffix of ``path`` (``.mp4``, ``.mkv``, ``.mov``...).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"

#: ffmpeg names for the colour tags of the two matrices tests use.
COLOUR_TAGS: dict[str, dict[str, str]] = {
    "bt709": {"color_primaries": "bt709", "color_trc": "bt709", "colorspace": "bt709"},
    "bt601": {"color_primaries": "smpte170m", "color_trc": "smpte170m", "colorspace": "smpte170m"},
}

_LANGUAGES = ("eng", "fra", "deu", "spa", "ita", "jpn")


def run(argv: Sequence[str]) -> None:
    """Run ffmpeg (an argument list, never a shell); raise RuntimeError with stderr on failure."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}\n{proc.stderr[-3000:]}")


def _srt_text(seconds: float) -> str:
    end = max(0.2, min(seconds, 0.9))
    return f"1\n00:00:00,000 --> 00:00:00,{int(end * 1000) % 1000:03d}\nHello from vsrflow\n\n"


def _ass_text(seconds: float) -> str:
    end = max(0.2, min(seconds, 0.9))
    return (
        "[Script Info]\nScriptType: v4.00+\nPlayResX: 320\nPlayResY: 240\n\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
        "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, "
        "Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        "Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,"
        "1,1,0,2,10,10,10,1\n\n"
        "[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        f"Dialogue: 0,0:00:00.00,0:00:00.{int(end * 100) % 100:02d},Default,,0,0,0,,ASS line\n"
    )


def make_video(
    path: Path,
    *,
    size: tuple[int, int] = (64, 48),
    frames: int = 10,
    fps: str | Fraction = "25",
    pix_fmt: str = "yuv420p",
    codec: str | None = None,
    pattern: str = "testsrc2",
    flat_rgb: tuple[int, int, int] | None = None,
    vfr: bool = False,
    audio_tracks: int = 0,
    subtitles: Sequence[str] = (),
    chapters: int = 0,
    attachment: bool = False,
    rotation: int = 0,
    sar: str | None = None,
    colour: str | None = None,
    color_range: str = "tv",
    moov_at_end: bool = True,
) -> Path:
    """Write a short synthetic video (plus optional audio/subtitles/chapters) to ``path``.

    Args:
        path: output file; the suffix picks the container.
        size: (width, height). Odd sizes use the ``testsrc`` pattern (testsrc2 forces even sizes)
            and, unless ``codec`` is given, ffv1 (libx264 cannot encode odd 4:2:0).
        frames: number of video frames (>= 1).
        fps: nominal frame rate as a rational string ("25", "30000/1001") or Fraction.
        pix_fmt: encoder pixel format (yuv420p, yuv420p10le, yuv444p, ...).
        codec: video encoder; default libx264 (ffv1 for odd sizes).
        pattern: lavfi source: "testsrc2", "testsrc" or "smptebars".
        flat_rgb: when given, every frame is this single RGB colour (for colour-shift tests); the
            RGB->YUV conversion uses the matrix named by ``colour`` (bt601 if None) and ``color_range``.
        vfr: variable frame rate: frame n is shown at (n + n//2) / fps, so consecutive deltas
            alternate 1 and 2 nominal frame durations.
        audio_tracks: number of sine audio tracks (AAC, 48 kHz, 440 Hz * (i+1)), languages eng, fra...
            with titles "Audio i". They last as long as the video.
        subtitles: any of "srt", "ass" (MKV only: stored as subrip / ass) and "mov_text" (MP4/MOV),
            each one a subtitle stream with a language and title.
        chapters: number of chapters, evenly spread over the duration.
        attachment: MKV only: attach a small text file (mimetype text/plain).
        rotation: display rotation in degrees (0/90/180/270) written with the legacy ``rotate``
            tag through a stream-copy pass (MP4/MOV carry it as a display matrix).
        sar: sample aspect ratio such as "4/3" (non-square pixels).
        colour: "bt709" or "bt601": converts RGB with that matrix and tags primaries/transfer/matrix
            and ``color_range``; None leaves the stream untagged.
        color_range: "tv" (limited) or "pc" (full), used with ``colour``/``flat_rgb``.
        moov_at_end: MP4 only; False writes ``+faststart`` (moov first).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    rate = Fraction(fps)
    rate_s = f"{rate.numerator}/{rate.denominator}"
    odd = width % 2 == 1 or height % 2 == 1
    # Exact video duration (last frame's time + one frame); audio is made exactly as long.
    last_slot = (frames - 1) + ((frames - 1) // 2 if vfr else 0)
    duration = float((last_slot + 1) / rate)
    if codec is None:
        codec = "ffv1" if odd else "libx264"
    work = path.parent / f".gen-{path.stem}"
    work.mkdir(exist_ok=True)

    argv: list[str] = [FFMPEG, "-nostdin", "-v", "error", "-y"]
    if flat_rgb is not None:
        # Raw YUV computed here with the exact matrix formulas: ffmpeg 5.1's swscale RGB->YUV is
        # about one level off, which would blur a 1-level colour test.
        raw = work / "flat.yuv"
        raw.write_bytes(flat_yuv_frame(flat_rgb, size, colour or "bt601", color_range, pix_fmt) * frames)
        argv += ["-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{width}x{height}", "-r", rate_s]
        argv += ["-i", str(raw)]
    else:
        name = "testsrc" if odd and pattern == "testsrc2" else pattern
        argv += ["-f", "lavfi", "-i", f"{name}=size={width}x{height}:rate={rate_s}"]
    inputs = 1
    for i in range(audio_tracks):
        argv += ["-f", "lavfi", "-i", f"sine=frequency={440 * (i + 1)}:sample_rate=48000:duration={duration}"]
        inputs += 1
    sub_inputs: list[int] = []
    for kind in subtitles:
        if kind in ("srt", "mov_text"):
            sub_file = work / f"sub{len(sub_inputs)}.srt"
            sub_file.write_text(_srt_text(frames / float(rate)))
        elif kind == "ass":
            sub_file = work / f"sub{len(sub_inputs)}.ass"
            sub_file.write_text(_ass_text(frames / float(rate)))
        else:
            raise ValueError(f"unknown subtitle kind {kind!r}")
        argv += ["-i", str(sub_file)]
        sub_inputs.append(inputs)
        inputs += 1
    meta_input = None
    if chapters:
        total_ms = int(frames / rate * 1000)
        lines = [";FFMETADATA1", "title=vsrflow test"]
        for c in range(chapters):
            lines += [
                "[CHAPTER]",
                "TIMEBASE=1/1000",
                f"START={c * total_ms // chapters}",
                f"END={(c + 1) * total_ms // chapters}",
                f"title=Chapter {c + 1}",
            ]
        meta = work / "chapters.txt"
        meta.write_text("\n".join(lines) + "\n")
        argv += ["-f", "ffmetadata", "-i", str(meta)]
        meta_input = inputs
        inputs += 1

    filters: list[str] = []
    matrix = colour or "bt601"
    if flat_rgb is None and colour is not None:
        # Convert from RGB explicitly so the stored YUV really uses the tagged matrix and range.
        filters += [
            "format=rgb24",
            f"scale=out_color_matrix={matrix}:out_range={color_range}:flags=accurate_rnd+bitexact",
        ]
    if vfr:
        filters.append("setpts=(N+floor(N/2))/(FRAME_RATE*TB)")
    if sar:
        filters.append(f"setsar={sar}")
    filters.append(f"format={pix_fmt}")
    argv += ["-map", "0:v"]
    argv += ["-vf", ",".join(filters), "-frames:v", str(frames), "-c:v", codec]
    if vfr:
        argv += ["-fps_mode", "passthrough"]
    if codec == "libx264":
        # Flat patches are stored losslessly so the colour tests see exactly the computed YUV.
        argv += ["-preset", "ultrafast", "-crf", "0" if flat_rgb is not None else "18"]
    if colour is not None:
        for opt, value in COLOUR_TAGS[colour].items():
            argv += [f"-{opt}", value]
        argv += ["-color_range", color_range]
    for i in range(audio_tracks):
        argv += ["-map", f"{i + 1}:a", f"-c:a:{i}", "aac", f"-b:a:{i}", "64k"]
        argv += [f"-metadata:s:a:{i}", f"language={_LANGUAGES[i % len(_LANGUAGES)]}"]
        argv += [f"-metadata:s:a:{i}", f"title=Audio {i}"]
    for j, (kind, idx) in enumerate(zip(subtitles, sub_inputs, strict=True)):
        argv += ["-map", f"{idx}:s"]
        codec_s = {"srt": "srt", "ass": "ass", "mov_text": "mov_text"}[kind]
        argv += [f"-c:s:{j}", codec_s]
        argv += [f"-metadata:s:s:{j}", f"language={_LANGUAGES[(j + 1) % len(_LANGUAGES)]}"]
        argv += [f"-metadata:s:s:{j}", f"title=Subtitle {kind}"]
    if meta_input is not None:
        argv += ["-map_metadata", str(meta_input), "-map_chapters", str(meta_input)]
    if attachment:
        att = work / "notes.txt"
        att.write_text("vsrflow attachment\n")
        argv += ["-attach", str(att), "-metadata:s:t", "mimetype=text/plain"]
    if path.suffix.lower() in (".mp4", ".mov", ".m4v") and not moov_at_end:
        argv += ["-movflags", "+faststart"]

    target = work / f"stage1{path.suffix}" if rotation else path
    argv.append(str(target))
    run(argv)
    if rotation:
        # ffmpeg 5.1 turns the legacy rotate tag into a display matrix only when stream copying.
        run(
            [
                *(FFMPEG, "-nostdin", "-v", "error", "-y", "-i", str(target), "-map", "0", "-c", "copy"),
                *("-metadata:s:v:0", f"rotate={rotation}", str(path)),
            ]
        )
    shutil.rmtree(work, ignore_errors=True)
    return path


_KR_KB = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}


def flat_yuv(rgb: tuple[int, int, int], matrix: str = "bt601", color_range: str = "tv") -> tuple[float, ...]:
    """Exact (unrounded) 8-bit-scale Y, Cb, Cr of an 8-bit RGB colour for ``matrix`` and range."""
    kr, kb = _KR_KB[matrix]
    r, g, b = (c / 255.0 for c in rgb)
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb = (b - y) / (2 * (1 - kb))
    cr = (r - y) / (2 * (1 - kr))
    if color_range == "tv":
        return 16 + 219 * y, 128 + 224 * cb, 128 + 224 * cr
    return 255 * y, 128 + 255 * cb, 128 + 255 * cr


def flat_yuv_frame(
    rgb: tuple[int, int, int], size: tuple[int, int], matrix: str, color_range: str, pix_fmt: str
) -> bytes:
    """One raw planar 4:2:0 frame (yuv420p or yuv420p10le) of a flat colour."""
    width, height = size
    cw, ch = (width + 1) // 2, (height + 1) // 2
    values = flat_yuv(rgb, matrix, color_range)
    if pix_fmt == "yuv420p":
        y, u, v = (bytes([round(c)]) for c in values)
    elif pix_fmt == "yuv420p10le":
        y, u, v = (round(c * 4).to_bytes(2, "little") for c in values)
    else:
        raise ValueError(f"flat_rgb supports yuv420p and yuv420p10le, not {pix_fmt}")
    return y * (width * height) + u * (cw * ch) + v * (cw * ch)


def make_audio_only(path: Path, *, seconds: float = 0.5) -> Path:
    """An AAC-only file (no video stream), e.g. ``audio.mp4``."""
    path = Path(path)
    run(
        [
            *(FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=duration={seconds}"),
            *("-c:a", "aac", str(path)),
        ]
    )
    return path


def make_truncated_mp4(path: Path, *, frames: int = 20) -> Path:
    """An MP4 written with its moov atom at the end, then cut in half so the moov is missing."""
    path = Path(path)
    full = path.with_name(f".full-{path.name}")
    make_video(full, frames=frames, size=(160, 120), moov_at_end=True)
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def make_zero_byte(path: Path) -> Path:
    """An empty file."""
    path = Path(path)
    path.write_bytes(b"")
    return path


def make_text_file(path: Path) -> Path:
    """A plain text file (name it ``.mp4`` to fake a video)."""
    path = Path(path)
    path.write_text("this is not a video, just text\n" * 20)
    return path


def make_undecodable(path: Path) -> Path:
    """An MKV whose video packets are garbage: demuxes fine, fails to decode."""
    path = Path(path)
    good = path.with_name(f".good-{path.name}")
    make_video(good, frames=5, size=(64, 48), codec="libx264")
    data = bytearray(good.read_bytes())
    good.unlink()
    # Keep the first 1 KiB (EBML header, tracks incl. codec private) and scramble the rest.
    for i in range(1024, len(data)):
        data[i] = (data[i] * 31 + 7) & 0xFF
    path.write_bytes(bytes(data))
    return path


def decode_rgb(path: Path) -> tuple[list[int], list[np.ndarray], list[str]]:
    """Decode every video frame of ``path``: (pts list, RGB24 frames, stream kinds) for comparisons."""
    with av.open(str(path)) as container:
        kinds = [str(s.type) for s in container.streams]
        stream = container.streams.video[0]
        decoded = [(int(f.pts), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    return [p for p, _ in decoded], [img for _, img in decoded], kinds


def make_legacy(
    path: Path,
    kind: str,
    *,
    size: tuple[int, int] = (160, 120),
    frames: int = 25,
    audio: bool = False,
    start_seconds: float | None = None,
) -> Path:
    """A small legacy-source clip; the container follows ``path``'s suffix (.mpg, .ts, .avi, .mkv).

    ``kind``:
        "interlaced-tff" / "interlaced-bff": 25i MPEG-2 (interlaced coding, field order flagged),
            made by weaving 50p fields (``tinterlace``), so every frame combs where there is motion;
        "telecine": 23.976p film pulled down 3:2 (``telecine``) to 29.97i MPEG-2, TFF;
        "camera-2997i": 29.97i MPEG-2 woven from 59.94p (no repeated fields: camera-native);
        "progressive": 25p MPEG-2 flagged progressive (a moving pattern);
        "dv-bff": DV in AVI, 720x576 PAL, bottom field first (``size`` is ignored: DV is fixed size).
    ``frames`` counts frames of the result (telecine: of the 29.97 result). ``audio`` adds an MP2
    (AC-3 for .ts is not needed) sine track as long as the video. ``start_seconds`` sets the
    MPEG-PS/TS start clock (``-output_ts_offset``), e.g. 1.4 or 36000 (10 h).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    argv: list[str] = [FFMPEG, "-nostdin", "-v", "error", "-y"]
    codec = ["-c:v", "mpeg2video", "-b:v", "3M", "-g", "12"]
    interlaced = ["-flags", "+ilme+ildct"]
    if kind in ("interlaced-tff", "interlaced-bff"):
        tff = kind.endswith("tff")
        weave = "interleave_top" if tff else "interleave_bottom"
        graph = f"testsrc2=size={w}x{h}:rate=50,tinterlace={weave},setfield={'tff' if tff else 'bff'}"
        vf: list[str] = []
        codec += [*interlaced, "-top", "1" if tff else "0"]
        rate = "25"
    elif kind == "telecine":
        graph = f"testsrc2=size={w}x{h}:rate=24000/1001,telecine=first_field=top:pattern=23,setfield=tff"
        vf = []
        codec += [*interlaced, "-top", "1"]
        rate = "30000/1001"
    elif kind == "camera-2997i":
        graph = f"testsrc2=size={w}x{h}:rate=60000/1001,tinterlace=interleave_top,setfield=tff"
        vf = []
        codec += [*interlaced, "-top", "1"]
        rate = "30000/1001"
    elif kind == "progressive":
        graph = f"testsrc=size={w}x{h}:rate=25"
        vf = []
        rate = "25"
    elif kind == "dv-bff":
        graph = "testsrc2=size=720x576:rate=50,tinterlace=interleave_bottom,setfield=bff"
        vf = []
        codec = ["-c:v", "dvvideo", "-pix_fmt", "yuv420p", "-top", "0"]
        rate = "25"
    else:
        raise ValueError(f"unknown legacy kind {kind!r}")
    argv += ["-f", "lavfi", "-i", graph]
    if audio:
        seconds = float(frames / Fraction(rate))
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    argv += ["-map", "0:v", "-frames:v", str(frames), *codec]
    if vf:
        argv += ["-vf", ",".join(vf)]
    if audio:
        argv += ["-map", "1:a", "-c:a", "pcm_s16le" if path.suffix == ".avi" else "mp2", "-b:a", "128k"]
    if start_seconds is not None:
        argv += ["-output_ts_offset", str(start_seconds)]
    argv.append(str(path))
    run(argv)
    return path


def make_truncated_mkv(path: Path, *, seconds: float = 3.0, keep: float = 0.25) -> Path:
    """A finalised 64x48 25 fps MKV with AAC audio (its tracks carry ffmpeg's DURATION tags), cut
    to its first ``keep`` share of bytes: the header still declares ``seconds``, the data holds
    much less (an interrupted copy or upload)."""
    path = Path(path)
    full = path.with_name(f".full-{path.name}")
    run(
        [
            *(FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25"),
            *("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"),
            *("-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(full)),
        ]
    )
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


#: The HDR10 static metadata :func:`make_hdr10` writes, in x265's syntax (BT.2020 primaries, D65,
#: a 1000 cd/m2 mastering display; MaxCLL 1000, MaxFALL 400).
HDR10_MASTER_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
HDR10_MAX_CLL = "1000,400"


def make_hdr10(path: Path, *, size: tuple[int, int] = (64, 48), frames: int = 6) -> Path:
    """10-bit HEVC tagged BT.2020/PQ with mastering-display and content-light-level SEI (HDR10)."""
    path = Path(path)
    params = f"log-level=error:master-display={HDR10_MASTER_DISPLAY}:max-cll={HDR10_MAX_CLL}"
    run(
        [
            *(FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi"),
            *("-i", f"testsrc2=size={size[0]}x{size[1]}:rate=25", "-frames:v", str(frames)),
            *("-pix_fmt", "yuv420p10le", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", params),
            *("-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc", str(path)),
        ]
    )
    return path


def make_h263_3gp(path: Path, *, frames: int = 4) -> Path:
    """128x96 (sub-QCIF) H.263 in 3GP: square pixels in the track (SAR 1), while FFmpeg's H.263
    decoder reports 12:11 for every picture of the CIF family."""
    path = Path(path)
    run(
        [
            *(FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=128x96:rate=15"),
            *("-frames:v", str(frames), "-c:v", "h263", str(path)),
        ]
    )
    return path


def _pgs_display_set(pts: int, size: tuple[int, int], show: bool, number: int) -> bytes:
    """One PGS display set (.sup segments): a 16x8 white box at (4, 4), or an empty one that clears."""

    def segment(kind: int, data: bytes) -> bytes:
        return b"PG" + struct.pack(">IIBH", pts, 0, kind, len(data)) + data

    width, height = size
    composition = struct.pack(">HHBHBBBB", width, height, 0x10, number, 0x80 if show else 0, 0, 0, int(show))
    if show:
        composition += struct.pack(">HBBHH", 0, 0, 0, 4, 4)
    out = segment(0x16, composition) + segment(0x17, struct.pack(">BBHHHH", 1, 0, 4, 4, 16, 8))
    if show:
        out += segment(0x14, bytes([0, 0, 1, 235, 128, 128, 255]))  # palette: entry 1 = opaque white
        rle = (b"\x01" * 16 + b"\x00\x00") * 8  # 8 lines of 16 pixels of colour 1, each line ended
        body = struct.pack(">HH", 16, 8) + rle
        out += segment(0x15, struct.pack(">HBB", 0, 0, 0xC0) + len(body).to_bytes(3, "big") + body)
    return out + segment(0x80, b"")


def _with_a53_captions(raw: bytes) -> bytes:
    """An H.264 Annex B stream (with access unit delimiters) with an A/53 caption SEI in every access
    unit: CEA-608 field 1 says "HI" (resume caption loading, H I, end of caption), then padding."""

    def parity(byte: int) -> int:
        return byte | 0x80 if bin(byte).count("1") % 2 == 0 else byte

    def sei(pair: tuple[int, int]) -> bytes:
        cc = bytes([0xFC, parity(pair[0]), parity(pair[1]), 0xFD, 0x80, 0x80])  # field 1, field 2
        payload = b"\xb5\x00\x31GA94\x03" + bytes([0x40 | 2, 0xFF]) + cc + b"\xff"
        body = bytes([0x04, len(payload)]) + payload + b"\x80"  # user_data_registered_itu_t_t35
        escaped, zeros = bytearray(), 0
        for byte in body:  # emulation prevention
            if zeros >= 2 and byte <= 3:
                escaped.append(3)
                zeros = 0
            escaped.append(byte)
            zeros = zeros + 1 if byte == 0 else 0
        return b"\x00\x00\x00\x01\x06" + bytes(escaped)

    words = [(0x14, 0x20), (ord("H"), ord("I")), (0x14, 0x2F)]
    starts = [i for i in range(len(raw) - 3) if raw[i : i + 3] == b"\x00\x00\x01"]
    out, unit = bytearray(), 0
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(raw)
        out += raw[start:end]
        if raw[start + 3] & 0x1F == 9:  # access unit delimiter: the SEI follows it
            out += sei(words[unit] if unit < len(words) else (0, 0))
            unit += 1
    return bytes(out)


def make_streams(
    path: Path,
    *,
    frames: int = 12,
    size: tuple[int, int] = (64, 48),
    audio: str | None = None,
    subtitle: str | None = None,
    cover: str | None = None,
    second_video: bool = False,
    captions: bool = False,
) -> Path:
    """A 25 fps H.264 clip with the extra streams legacy catalogues hold; the suffix picks the container.

    Args:
        audio: an audio encoder (``pcm_s24le``, ``pcm_f32le``, ``flac``, ``aac``...): a 48 kHz
            stereo sine track exactly as long as the video.
        subtitle: a bitmap subtitle codec, ``hdmv_pgs_subtitle`` (from a generated PGS .sup),
            ``dvd_subtitle`` or ``dvb_subtitle`` (converted from it): a box shown from 0 to 0.3 s.
        cover: ``png`` or ``mjpeg`` cover art: an ``attached_pic`` stream in MP4/MOV, an image
            attachment (``cover.png``/``cover.jpg``, with its mimetype) in Matroska.
        second_video: a second real video stream (32x24 testsrc, as long as the first).
        captions: the video carries CEA-608 captions in A/53 side data (SEI injected into the
            H.264 stream; ffmpeg's decoder exports them, and ``movie=...[out0+subcc]`` reads "HI").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = path.parent / f".gen-{path.stem}"
    work.mkdir(exist_ok=True)
    seconds = frames / 25
    base = [FFMPEG, "-nostdin", "-v", "error", "-y"]
    argv = list(base)
    if captions:
        raw = work / "video.h264"
        run([*base, "-f", "lavfi", "-i", f"testsrc2=size={size[0]}x{size[1]}:rate=25", "-frames:v",
             str(frames), "-c:v", "libx264", "-preset", "ultrafast", "-bsf:v", "h264_metadata=aud=insert",
             "-f", "h264", str(raw)])  # fmt: skip
        raw.write_bytes(_with_a53_captions(raw.read_bytes()))
        argv += ["-framerate", "25", "-f", "h264", "-i", str(raw)]
        codecs = ["-c:v:0", "copy"]
    else:
        argv += ["-f", "lavfi", "-i", f"testsrc2=size={size[0]}x{size[1]}:rate=25:duration={seconds}"]
        codecs = ["-c:v:0", "libx264", "-preset", "ultrafast"]
    maps = ["-map", "0:v"]
    inputs = 1
    if second_video:
        argv += ["-f", "lavfi", "-i", f"testsrc=size=32x24:rate=25:duration={seconds}"]
        maps += ["-map", f"{inputs}:v"]
        codecs += ["-c:v:1", "libx264", "-preset", "ultrafast"]
        inputs += 1
    if audio is not None:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
        maps += ["-map", f"{inputs}:a"]
        codecs += ["-ac", "2", "-c:a", audio]
        inputs += 1
    if subtitle is not None:
        sup = work / "subs.sup"
        sup.write_bytes(_pgs_display_set(0, size, True, 0) + _pgs_display_set(27000, size, False, 1))
        argv += ["-i", str(sup)]
        maps += ["-map", f"{inputs}:s"]
        encoder = {"hdmv_pgs_subtitle": "copy", "dvd_subtitle": "dvdsub", "dvb_subtitle": "dvbsub"}[subtitle]
        codecs += ["-c:s", encoder]
        inputs += 1
    matroska = path.suffix.lower() in (".mkv", ".mka", ".webm")
    tail: list[str] = []
    if cover is not None:
        ext = "jpg" if cover == "mjpeg" else cover
        image = work / f"cover.{ext}"
        run([*base, "-f", "lavfi", "-i", "color=red:size=32x32", "-frames:v", "1", str(image)])
        if matroska:
            mimetype = "image/jpeg" if cover == "mjpeg" else "image/png"
            tail += ["-attach", str(image), "-metadata:s:t", f"mimetype={mimetype}"]
            tail += ["-metadata:s:t", f"filename=cover.{ext}"]
        else:
            argv += ["-i", str(image)]
            maps += ["-map", f"{inputs}:v"]
            videos = 2 if second_video else 1
            codecs += [f"-c:v:{videos}", "copy", f"-disposition:v:{videos}", "attached_pic"]
            inputs += 1
    run([*argv, *maps, *codecs, *tail, str(path)])
    shutil.rmtree(work, ignore_errors=True)
    return path


def make_bordered(
    path: Path,
    *,
    picture: tuple[int, int] = (96, 64),
    pad: tuple[int, int, int, int] = (96, 80, 0, 8),
    frames: int = 12,
    sar: str = "1",
    noise: int = 0,
    rate: str = "25",
) -> Path:
    """A clip whose ``picture`` (a moving testsrc2 pattern) sits on black borders.

    ``pad`` is ffmpeg's ``pad=W:H:X:Y``: the frame size and where the picture goes (letterbox:
    bars top and bottom; pillarbox: left and right). ``sar`` tags the sample aspect ratio
    (``setsar``, e.g. '16/15' or '64/45'), ``noise`` adds temporal noise of that strength to the
    picture (``noise=alls=N:allf=t``); FFV1 in MKV, yuv420p, so the pixels are exact.
    """
    w, h = picture
    pw, ph, x, y = pad
    graph = f"testsrc2=size={w}x{h}:rate={rate}"
    if noise:
        graph += f",noise=alls={noise}:allf=t"
    graph += f",pad={pw}:{ph}:{x}:{y}:black,setsar={sar},format=yuv420p"
    run([FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", graph, "-frames:v", str(frames),
         "-c:v", "ffv1", str(path)])  # fmt: skip
    return Path(path)

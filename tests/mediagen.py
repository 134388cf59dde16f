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

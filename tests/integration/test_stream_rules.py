"""Every stream in a container that can hold it, decided before any work, in both paths.

Sources come from tests/mediagen.make_streams (PCM audio in MOV, PGS/DVD bitmap subtitles, cover
art, a second video stream, A/53 closed captions); outputs are checked with ffprobe/ffmpeg.
Refusals are shown to come before any upscale work: exit 2, the input and the fix named, no
output, no job directory, no model loaded.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import av
import pytest

from tests.conftest import run_cli
from tests.mediagen import FFMPEG, make_streams, run
from vsrflow.errors import InputError
from vsrflow.media.assemble import check_streams, container_holds, plan_streams
from vsrflow.media.captions import extract_captions
from vsrflow.media.probe import probe
from vsrflow.workflow.job.spec import JobSpec

MODEL = "realesr-animevideov3"
COMMON = ["--model", MODEL, "--scale", "2", "--encoder-preset", "ultrafast"]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("streams")


def streams(path: Path) -> list[dict[str, object]]:
    """ffprobe's streams of ``path``: index, codec name and type, attached_pic flag, tags."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "stream=index,codec_name,codec_type,width,height,start_time,duration:stream_disposition=attached_pic"
         ":stream_tags=filename,mimetype", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return list(json.loads(out)["streams"])


def audio_md5(path: Path) -> str:
    """MD5 of the first audio stream's decoded samples (as 32-bit PCM: 16/24-bit both fit exactly)."""
    out = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:a:0", "-c:a", "pcm_s32le", "-f", "md5", "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return out.strip()


def packets(path: Path, index: int) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams[index]) if p.size]


def upscale_or_submit(
    path_kind: str, src: Path, out: Path, env: dict[str, str], *extra: str
) -> subprocess.CompletedProcess[str]:
    """Run ``vsrflow upscale`` or the chunked job (``submit --executor local``, 6-frame chunks)."""
    if path_kind == "upscale":
        args = ["upscale", str(src), "-o", str(out), "--no-progress", *COMMON, *extra]
    else:
        jobs = out.parent / f"jobs-{out.stem}"
        jobs.mkdir(exist_ok=True)
        args = ["submit", str(src), "-o", str(out), "--jobs-root", str(jobs), "--chunk-frames", "6", *COMMON]
        args += list(extra)
    return run_cli(args, env)


# ---- the table against the real ffmpeg -----------------------------------------------------------

_AUDIO = {  # codec -> (encoder, extra options)
    "aac": ("aac", []), "mp3": ("libmp3lame", []), "ac3": ("ac3", []), "eac3": ("eac3", []),
    "mp2": ("mp2", []), "alac": ("alac", []), "opus": ("libopus", []), "vorbis": ("libvorbis", []),
    "dts": ("dca", ["-strict", "-2"]), "flac": ("flac", []), "pcm_s16le": ("pcm_s16le", []),
    "pcm_s24le": ("pcm_s24le", []), "pcm_s16be": ("pcm_s16be", []), "pcm_f32le": ("pcm_f32le", []),
    "pcm_mulaw": ("pcm_mulaw", []), "pcm_alaw": ("pcm_alaw", []), "pcm_u8": ("pcm_u8", []),
    "wmav2": ("wmav2", []),
}  # fmt: skip


def _header_mux(src: Path, index: int, muxer: str, work: Path) -> bool:
    """Whether the real ffmpeg writes a ``muxer`` file holding stream ``index`` of ``src`` copied."""
    proc = subprocess.run(
        [FFMPEG, "-nostdin", "-v", "error", "-y", "-i", str(src), "-map", f"0:{index}", "-c", "copy",
         "-f", muxer, str(work / f"probe.{muxer}")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return proc.returncode == 0


@pytest.mark.slow  # about 70 ffmpeg runs
def test_container_table_agrees_with_real_ffmpeg(tmp_path: Path) -> None:
    """container_holds says yes exactly where ffmpeg's muxer copies the stream (audio, subtitles,
    cover art), muxing every pair for real; one deliberate exception is named."""
    disagreements = []
    for codec, (encoder, extra) in _AUDIO.items():
        src = tmp_path / f"{codec}.mkv"
        sine = "sine=sample_rate=48000:duration=0.2"
        run([FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", sine,
             "-ac", "2" if codec != "wmav2" else "1", "-c:a", encoder, *extra, str(src)])  # fmt: skip
        for muxer in ("mp4", "mov", "matroska"):
            if _header_mux(src, 0, muxer, tmp_path) != container_holds(muxer, "audio", codec):
                disagreements.append((codec, muxer))
    subs = {"hdmv_pgs_subtitle": "pgs.mkv", "dvb_subtitle": "dvb.mkv", "dvd_subtitle": "dvd.mkv"}
    for codec, name in subs.items():
        src = make_streams(tmp_path / name, subtitle=codec)
        for muxer in ("mp4", "mov", "matroska"):
            # dvd_subtitle into MP4: ffmpeg 5.1 has a tag for it ('mp4s') but fails on its
            # end-of-display packets (they carry no duration), and almost no player shows it.
            if _header_mux(src, 1, muxer, tmp_path) != container_holds(muxer, "subtitle", codec):
                disagreements.append((codec, muxer))
    make_streams(tmp_path / "cover.mp4", cover="png")
    for muxer in ("mp4", "mov"):
        out = tmp_path / f"cover-out.{muxer}"
        run([FFMPEG, "-nostdin", "-v", "error", "-y", "-i", str(tmp_path / "cover.mp4"),
             "-map", "0", "-c", "copy", "-f", muxer, str(out)])  # fmt: skip
        kept = any(s.get("disposition", {}).get("attached_pic") for s in streams(out))  # type: ignore[union-attr]
        if kept != container_holds(muxer, "cover", "png"):
            disagreements.append(("cover png", muxer))
    assert disagreements == []


# ---- refused before any work -----------------------------------------------------------------------


@pytest.mark.parametrize("path_kind", ["upscale", "submit"])
@pytest.mark.parametrize(
    ("name", "kwargs", "out_suffix", "says"),
    [
        ("pgs.mkv", {"subtitle": "hdmv_pgs_subtitle", "audio": "aac"}, ".mp4", "hdmv_pgs_subtitle"),
        ("float.mov", {"audio": "pcm_f32le"}, ".mp4", "pcm_f32le"),
        ("two.mkv", {"second_video": True}, ".mkv", "--video-stream"),
    ],
    ids=["pgs-into-mp4", "float-pcm-into-mp4", "two-videos"],
)
def test_refused_up_front_with_the_fix(
    media: Path, tmp_path: Path, cli_env: dict[str, str], path_kind: str, name: str, kwargs: dict,
    out_suffix: str, says: str,
) -> None:  # fmt: skip
    src = media / name
    if not src.exists():
        make_streams(src, **kwargs)
    out = tmp_path / f"out{out_suffix}"
    proc = upscale_or_submit(path_kind, src, out, cli_env)
    assert proc.returncode == 2, proc.stderr
    assert name in proc.stderr and says in proc.stderr
    assert ".mkv" in proc.stderr or "--video-stream N" in proc.stderr  # the fix
    # Before any work: no model loaded, no frame upscaled, nothing written, no job created.
    assert "upscaling" not in proc.stderr and "loaded" not in proc.stderr
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "jobs-out"])
    assert not any((tmp_path / "jobs-out").glob("*")) if path_kind == "submit" else True


# ---- content: both paths -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("path_kind", ["upscale", "submit"])
def test_pcm_from_mov_into_mp4_becomes_bit_exact_alac(
    media: Path, tmp_path: Path, model_env: dict[str, str], path_kind: str
) -> None:
    """24-bit PCM cannot go into MP4: it becomes ALAC (warned), the same samples, same timing."""
    src = media / "pcm.mov"
    if not src.exists():
        make_streams(src, audio="pcm_s24le")
    out = tmp_path / "out.mp4"
    proc = upscale_or_submit(path_kind, src, out, model_env)
    assert proc.returncode == 0, proc.stderr
    assert "converted to ALAC" in proc.stderr and ".mov" in proc.stderr
    got, want = streams(out), streams(src)
    assert [(s["codec_type"], s["codec_name"]) for s in got] == [("video", "h264"), ("audio", "alac")]
    assert (got[0]["width"], got[0]["height"]) == (128, 96)
    assert audio_md5(out) == audio_md5(src)
    for key in ("start_time", "duration"):
        assert float(got[1][key]) == pytest.approx(float(want[1][key]), abs=1e-3)  # type: ignore[arg-type]
        assert float(got[0][key]) == pytest.approx(float(want[0][key]), abs=1e-3)  # type: ignore[arg-type]


def _cover(entries: list[dict[str, object]]) -> list[dict[str, object]]:
    return [s for s in entries if s.get("disposition", {}).get("attached_pic")]  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path_kind", "src_name", "cover", "out_suffix"),
    [("upscale", "cov.mkv", "png", ".mp4"), ("upscale", "cov.mp4", "mjpeg", ".mkv"),
     ("submit", "cov-pgs.mkv", "png", ".mkv")],
    ids=["upscale-mkv-to-mp4", "upscale-mp4-to-mkv", "chunked-mkv-to-mkv"],
)  # fmt: skip
def test_cover_art_kept_as_cover_art(
    media: Path, tmp_path: Path, model_env: dict[str, str], path_kind: str, src_name: str, cover: str,
    out_suffix: str,
) -> None:  # fmt: skip
    """Cover art (MP4 attached_pic, Matroska image attachment) comes out as cover art, the same
    image bytes; MKV to MKV also keeps PGS subtitles packet for packet. The closed captions of the
    source come along as one more, text, subtitle stream (they cannot ride on the re-encoded frames)."""
    src = media / src_name
    if not src.exists():
        pgs = "hdmv_pgs_subtitle" if "pgs" in src_name else None
        make_streams(src, cover=cover, audio="aac", subtitle=pgs, captions=True)
    out = tmp_path / f"out{out_suffix}"
    proc = upscale_or_submit(path_kind, src, out, model_env)
    assert proc.returncode == 0, proc.stderr
    assert "closed captions" in proc.stderr and "carried as a" in proc.stderr
    got, want = streams(out), streams(src)
    [src_cover], [out_cover] = _cover(want), _cover(got)
    assert out_cover["codec_name"] == src_cover["codec_name"] == {"png": "png", "mjpeg": "mjpeg"}[cover]
    assert packets(out, int(out_cover["index"])) == packets(src, int(src_cover["index"]))  # type: ignore[call-overload]
    if out_suffix == ".mkv":
        assert out_cover.get("tags", {}).get("mimetype") in ("image/png", "image/jpeg")  # type: ignore[union-attr]
    kinds = sorted(str(s["codec_type"]) for s in got)
    assert kinds == sorted([*(str(s["codec_type"]) for s in want), "subtitle"])  # + the captions
    [caption] = [s for s in got if s["codec_name"] in ("mov_text", "subrip")]
    assert caption["codec_name"] == ("subrip" if out_suffix == ".mkv" else "mov_text")
    if "pgs" in src_name:
        [sub] = [s for s in got if s["codec_type"] == "subtitle" and s is not caption]
        assert sub["codec_name"] == "hdmv_pgs_subtitle"
        [src_sub] = [s for s in want if s["codec_type"] == "subtitle"]
        assert packets(out, int(sub["index"])) == packets(src, int(src_sub["index"]))  # type: ignore[call-overload]


@pytest.mark.slow
@pytest.mark.parametrize("path_kind", ["upscale", "submit"])
def test_video_stream_picks_the_stream_to_upscale(
    media: Path, tmp_path: Path, model_env: dict[str, str], path_kind: str
) -> None:
    """--video-stream 1 upscales the second (32x24) video; the first is not carried, cover art is."""
    src = media / "two-cover.mp4"
    if not src.exists():
        make_streams(src, second_video=True, cover="png", audio="aac")
    out = tmp_path / "out.mp4"
    proc = upscale_or_submit(path_kind, src, out, model_env, "--video-stream", "1")
    assert proc.returncode == 0, proc.stderr
    assert "video stream 0 (h264)" in proc.stderr and "not carried" in proc.stderr
    got = streams(out)
    real = [s for s in got if s["codec_type"] == "video" and s not in _cover(got)]
    assert [(s["width"], s["height"]) for s in real] == [(64, 48)]
    assert len(_cover(got)) == 1 and [s["codec_type"] for s in got].count("audio") == 1
    assert probe(out).frame_count == 12


def test_video_stream_must_name_a_real_video_stream(
    media: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    src = media / "two-cover.mp4"
    if not src.exists():
        make_streams(src, second_video=True, cover="png", audio="aac")
    for bad in ("2", "3"):  # the audio stream, the cover art
        proc = run_cli(
            ["upscale", str(src), "-o", str(tmp_path / "o.mp4"), *COMMON, "--video-stream", bad], cli_env
        )
        assert proc.returncode == 2 and f"stream {bad} is not a video stream" in proc.stderr, proc.stderr
        assert "0, 1" in proc.stderr
    assert not (tmp_path / "o.mp4").exists()


# ---- plan level (no model) -----------------------------------------------------------------------


def test_closed_captions_detected_and_announced(
    media: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with_cc = make_streams(media / "cc.mkv", captions=True)
    plain = make_streams(media / "plain.mkv")
    assert probe(with_cc).closed_captions and not probe(plain).closed_captions
    for suffix, codec in ((".mkv", "srt"), (".mp4", "mov_text")):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="vsrflow.media"):
            check_streams(probe(with_cc), tmp_path / f"o{suffix}")
        assert any(f"carried as a {codec} subtitle" in r.getMessage() for r in caplog.records), suffix


def test_caption_file_names_never_reach_the_filter_graph(media: Path, tmp_path: Path) -> None:
    """A source whose name means something to a filter graph (: , ' [ ]) is read through a link
    with a fixed name; the captions come out all the same."""
    src = make_streams(media / "cc.mkv", captions=True)
    odd = tmp_path / "it's [a]:b,c;d.mkv"
    shutil.copy(src, odd)
    work = tmp_path / "work"
    work.mkdir()
    srt = extract_captions(probe(odd), work)
    assert srt is not None and "HI" in srt.read_text()
    assert extract_captions(probe(make_streams(media / "plain.mkv")), work) is None


def _cues(path: Path) -> list[tuple[float, str]]:
    """(start seconds, text) of each cue of ``path``'s first subtitle stream, as ffmpeg reads it."""
    text = subprocess.run(
        [FFMPEG, "-v", "error", "-copyts", "-i", str(path), "-map", "0:s:0", "-f", "srt", "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        h, m, rest = lines[1].split(" --> ")[0].split(":")
        sec, ms = rest.split(",")
        cues.append((int(h) * 3600 + int(m) * 60 + int(sec) + int(ms) / 1000, " ".join(lines[2:])))
    return cues


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path_kind", "src_name", "out_suffix"),
    [("upscale", "cc-a.mkv", ".mp4"), ("upscale", "cc-a.ts", ".mkv"), ("submit", "cc-a.ts", ".mp4"),
     ("submit", "cc-a.mkv", ".mkv")],
)  # fmt: skip
def test_closed_captions_carried_in_both_paths(
    media: Path, tmp_path: Path, model_env: dict[str, str], path_kind: str, src_name: str, out_suffix: str
) -> None:
    """CEA-608 "HI" (shown from the source's third frame) comes out as a text subtitle cue at that
    frame's time in the output, in both paths; a broadcast clock (TS from 1.4 s) is removed alike."""
    mkv = media / "cc-a.mkv"
    if not mkv.exists():
        make_streams(mkv, captions=True, audio="aac", frames=25)
    src = media / src_name
    if not src.exists():
        subprocess.run(
            [FFMPEG, "-v", "error", "-y", "-i", str(mkv), "-map", "0", "-c", "copy",
             "-output_ts_offset", "1.4", str(src)],
            check=True,
        )  # fmt: skip
    out = tmp_path / f"out{out_suffix}"
    proc = upscale_or_submit(path_kind, src, out, model_env)
    assert proc.returncode == 0, proc.stderr
    frames = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
         "-of", "csv=p=0", str(out)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    third = float(frames[2].strip(","))
    [(start, text)] = _cues(out)
    assert "HI" in text
    assert start == pytest.approx(third, abs=2e-3), (start, frames[:3])


def test_plan_per_container(media: Path) -> None:
    """Bitmap subtitles: kept in Matroska, refused in MP4/MOV; FLAC into MOV becomes ALAC."""
    src = make_streams(media / "plan-dvd.mkv", subtitle="dvd_subtitle", audio="flac")
    info = probe(src)
    assert [(p.source.codec, p.convert_to) for p in plan_streams(info, "matroska")] == [
        ("flac", None),
        ("dvd_subtitle", None),
    ]
    for muxer in ("mp4", "mov"):
        with pytest.raises(InputError, match="dvd_subtitle") as err:
            plan_streams(info, muxer)
        assert err.value.hint is not None and ".mkv" in err.value.hint
    no_subs = make_streams(media / "plan-flac.mkv", audio="flac")
    assert [p.convert_to for p in plan_streams(probe(no_subs), "mov")] == ["alac"]


def test_job_spec_records_the_video_stream() -> None:
    base = JobSpec(source="/data/in.mkv", destination="/data/out.mkv", model=MODEL)
    chosen = JobSpec(source="/data/in.mkv", destination="/data/out.mkv", model=MODEL, video_stream=1)
    assert JobSpec.loads(chosen.dumps()) == chosen and "video_stream" not in base.to_json()
    assert chosen.job_id() != base.job_id()
    with pytest.raises(InputError, match="video_stream"):
        JobSpec(source="/data/in.mkv", destination="/data/out.mkv", model=MODEL, video_stream=-1)


def test_two_image_attachments_come_back_as_attachments(media: Path, tmp_path: Path) -> None:
    """Matroska with two image attachments (cover png + a jpg), no model: both are re-attached with
    their names, types and bytes, and read back as attached_pic streams; into MP4 both are covr."""
    from tests.integration.test_media_assemble import _identity
    from vsrflow.media.assemble import assemble_output

    src = make_streams(media / "no-images.mkv", audio="aac")
    attach = []
    for n, (name, mimetype) in enumerate((("cover.png", "image/png"), ("still.jpg", "image/jpeg")), start=2):
        image = tmp_path / name
        run([FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "color=blue:size=16x16",
             "-frames:v", "1", str(image)])  # fmt: skip
        attach += ["-attach", str(image), f"-metadata:s:{n}", f"mimetype={mimetype}"]
        attach += [f"-metadata:s:{n}", f"filename={name}"]
    both = tmp_path / "both.mkv"
    run(
        [
            FFMPEG,
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-i",
            str(src),
            "-map",
            "0",
            "-c",
            "copy",
            *attach,
            str(both),
        ]
    )
    info, mid = _identity(both, tmp_path)
    for suffix in (".mkv", ".mp4"):
        out = assemble_output(mid, info, tmp_path / f"out{suffix}").path
        want, got = _cover(streams(both)), _cover(streams(out))
        assert [s["codec_name"] for s in got] == [s["codec_name"] for s in want] == ["png", "mjpeg"]
        for a, b in zip(want, got, strict=True):
            assert packets(out, int(b["index"])) == packets(both, int(a["index"]))  # type: ignore[call-overload]
            if suffix == ".mkv":
                assert b.get("tags") == a.get("tags")

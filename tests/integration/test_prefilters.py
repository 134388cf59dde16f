"""Pre-filters with real ffmpeg: deblock, denoise, crop of black borders, square pixels.

Clips come from tests/mediagen (a moving pattern on black borders, anamorphic SAR tags, added
noise; FFV1 so the source pixels are exact). Outputs are checked with ffprobe (size, SAR, frame
count, pts) and framemd5 (the chunked job equals ``vsrflow upscale`` pixel for pixel).
"""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.mediagen import make_bordered, make_legacy
from vsrflow.engine.pipeline import resolve_prefilters
from vsrflow.media.condition import Conditioning
from vsrflow.media.keyframes import scan_frames
from vsrflow.media.prefilter import PrefilterRequest, Prefilters, detect_crop
from vsrflow.media.probe import probe
from vsrflow.media.reader import FrameReader
from vsrflow.workflow.job.chunk_io import decode_conditioned_chunk
from vsrflow.workflow.job.plan import plan_chunks

MODEL = "realesr-animevideov3"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prefilter")


def _frames(src: Path, cond: Conditioning) -> tuple[list[np.ndarray], list[int]]:
    with FrameReader(src, probe(src), cond) as reader:
        frames = list(reader)
    return [f.image for f in frames], [f.pts for f in frames]


def _roughness(images: list[np.ndarray]) -> float:
    """Mean absolute difference between horizontal neighbours (noise raises it)."""
    return float(np.mean([np.abs(np.diff(i.astype(np.int32), axis=1)).mean() for i in images]))


def _ffprobe(path: Path) -> dict[str, object]:
    data = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
             "stream=width,height,sample_aspect_ratio,nb_read_frames", "-of", "json", str(path)],
            capture_output=True, text=True, check=True,
        ).stdout
    )["streams"][0]  # fmt: skip
    return data


def _framemd5(path: Path) -> list[str]:
    lines = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    return [line.split(",")[-1].strip() for line in lines if not line.startswith("#")]


@pytest.mark.parametrize(
    "prefilters",
    [
        Prefilters(deblock="weak"),
        Prefilters(deblock="strong"),
        Prefilters(denoise="nlmeans", strength="light"),
        Prefilters(denoise="nlmeans", strength="strong"),
        Prefilters(denoise="atadenoise", strength="light"),
        Prefilters(denoise="atadenoise", strength="strong"),
    ],
    ids=lambda p: p.to_text(),
)
def test_each_filter_changes_pixels_not_size_or_timing(media: Path, prefilters: Prefilters) -> None:
    src = media / "noisy.mkv"
    if not src.exists():
        make_bordered(src, picture=(96, 64), pad=(96, 64, 0, 0), frames=12, noise=6)
    plain, plain_pts = _frames(src, Conditioning())
    images, pts = _frames(src, Conditioning(prefilters=prefilters))
    assert pts == plain_pts and len(images) == 12
    assert images[0].shape == plain[0].shape
    assert any(not np.array_equal(a, b) for a, b in zip(images, plain, strict=True))
    if prefilters.denoise != "off":
        assert _roughness(images) < _roughness(plain), "the denoiser left the noise in"


@pytest.mark.parametrize(
    ("pad", "picture", "expected"),
    [
        ((96, 80, 0, 8), (96, 64), (96, 64, 0, 8)),  # letterbox: bars top and bottom
        ((112, 64, 8, 0), (96, 64), (96, 64, 8, 0)),  # pillarbox
        ((104, 72, 3, 5), (96, 64), (96, 64, 2, 4)),  # odd offsets: pad puts 4:2:0 on even ones
        ((96, 64, 0, 0), (96, 64), None),  # no borders
    ],
)
def test_crop_auto_finds_black_borders(
    media: Path, pad: tuple[int, int, int, int], picture: tuple[int, int], expected: tuple | None
) -> None:
    src = make_bordered(media / f"pad-{'-'.join(map(str, pad))}.mkv", picture=picture, pad=pad, frames=8)
    assert detect_crop(src, probe(src)) == expected


def test_crop_is_decided_over_samples_of_a_long_source(media: Path) -> None:
    """Three windows spread over the video; the union of their picture areas is the crop."""
    src = make_bordered(media / "long.mkv", picture=(64, 48), pad=(64, 64, 0, 8), frames=200)
    pf = resolve_prefilters(src, probe(src), PrefilterRequest(crop="auto"))
    assert (pf.crop, pf.crop_basis) == ((64, 48, 0, 8), "auto")
    images, _ = _frames(src, Conditioning(prefilters=pf))
    assert images[0].shape == (48, 64, 3) and len(images) == 200


@pytest.mark.parametrize(
    ("width", "sar", "expected"),
    [(96, "16/15", 102), (90, "64/45", 128), (88, "10/11", 80), (96, "1", 96)],
)
def test_square_pixels_resamples_the_width(media: Path, width: int, sar: str, expected: int) -> None:
    src = make_bordered(
        media / f"sar-{width}-{sar.replace('/', '_')}.mkv",
        picture=(width, 48),
        pad=(width, 48, 0, 0),
        sar=sar,
    )
    info = probe(src)
    cond = Conditioning(prefilters=resolve_prefilters(src, info, PrefilterRequest(square_pixels="on")))
    out = cond.output_info(info)
    assert (out.width, out.height, out.sar) == (expected, 48, Fraction(1))
    assert cond.prefilters.active == (sar != "1")
    images, _ = _frames(src, cond)
    assert images[0].shape == (48, expected, 3)


@pytest.mark.parametrize(
    ("kind", "frames", "mode", "prefilters", "chunk_frames"),
    [
        ("interlaced-tff", 50, "bwdif:tff", "denoise=atadenoise:strong;crop=60:44:2:2:manual", 25),
        ("interlaced-bff", 50, "bwdif-field:bff", "deblock=strong;denoise=atadenoise:medium", 50),
        ("telecine", 60, "ivtc:tff", "deblock=weak;denoise=atadenoise:strong;square=68:16/15", 24),
        ("progressive", 50, "none", "denoise=nlmeans:light;crop=60:44:2:2:manual;square=64:16/15", 25),
    ],
)
def test_chunks_with_prefilters_equal_the_single_pass(
    media: Path, kind: str, frames: int, mode: str, prefilters: str, chunk_frames: int
) -> None:
    """Temporal denoisers widen the chunk context; every chunk joins into the single pass's pixels."""
    src = make_legacy(media / f"chunk-{kind}.mkv", kind, size=(64, 48), frames=frames)
    info = probe(src)
    cond = Conditioning.from_text(f"{mode};{prefilters}")
    table = scan_frames(src)
    with FrameReader(src, info, cond) as reader:
        single = list(reader)
    out = cond.output_info(info)
    assert single[0].image.shape == (out.height, out.width, 3)
    chunks = plan_chunks(
        out,
        cond.output_keyframes(range(info.frame_count)),
        target_frames=chunk_frames,
        frame_pts=cond.output_pts(info, table.pts),
        multiple=cond.cut_multiple,
    )
    assert len(chunks) >= 2
    chunked = [f for c in chunks for f in decode_conditioned_chunk(src, info, cond, c, table.pts)]
    assert [(f.index, f.pts) for f in chunked] == [(f.index, f.pts) for f in single]
    for a, b in zip(chunked, single, strict=True):
        assert np.array_equal(a.image, b.image), f"frame {a.index} differs at a chunk boundary"


@pytest.mark.slow
def test_sd_preset_upscale_and_chunked_job_agree(model_env: dict[str, str], tmp_path: Path) -> None:
    """``--prefilter sd`` on a letterboxed, anamorphic (64:45), noisy clip: both paths crop the bars,
    make the pixels square (54 -> 76 wide), denoise and deblock, and give the same frames."""
    src = make_bordered(
        tmp_path / "sd.mkv", picture=(54, 32), pad=(54, 48, 0, 8), sar="64/45", noise=6, frames=50
    )
    common = ["--model", MODEL, "--scale", "2", "--codec", "ffv1", "--prefilter", "sd"]
    single, chunked = tmp_path / "single.mkv", tmp_path / "chunked.mkv"
    proc = run_cli(["upscale", str(src), "-o", str(single), "--no-progress", *common], model_env)
    assert proc.returncode == 0, proc.stderr
    assert "crop 54x32 at 0,8 (auto)" in proc.stdout and "SAR 64:45 -> 1:1, width 76" in proc.stdout
    (tmp_path / "jobs").mkdir()
    proc = run_cli(
        ["submit", str(src), "-o", str(chunked), "--jobs-root", str(tmp_path / "jobs"),
         "--chunk-frames", "25", *common],
        model_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for path in (single, chunked):
        st = _ffprobe(path)
        # Square pixels: MKV then stores no display size, so ffprobe prints no SAR (or 1:1).
        assert (st["width"], st["height"], st.get("sample_aspect_ratio", "1:1")) == (152, 64, "1:1"), st
        assert int(st["nb_read_frames"]) == 50
        side = json.loads(path.with_name(path.name + ".vsrflow.json").read_text())
        names = [f["filter"] for f in side["conditioning"]["prefilters"]]
        assert names == ["deblock", "nlmeans", "crop", "scale", "setsar"], side["conditioning"]
    # Both record the same conditioning: the crop decided once (at extract for the job).
    texts = [
        json.loads(p.with_name(p.name + ".vsrflow.json").read_text())["conditioning"]["text"]
        for p in (single, chunked)
    ]
    assert (
        texts[0] == texts[1] == "none;deblock=weak;denoise=nlmeans:light;crop=54:32:0:8:auto;square=76:64/45"
    )
    assert _framemd5(single) == _framemd5(chunked)


def test_probe_shows_the_detected_crop(media: Path, cli_env: dict[str, str]) -> None:
    src = make_bordered(media / "probe.mkv", picture=(96, 64), pad=(96, 80, 0, 8), sar="16/15", frames=8)
    proc = run_cli(["probe", str(src)], cli_env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["prefilter"] == {"crop_detected": "96:64:0:8", "square_pixels_width": 102}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--denoise", "hqdn3d"], ["--denoise", "nlmeans", "atadenoise"]),
        (["--denoise-strength", "max"], ["--denoise-strength", "light", "strong"]),
        (["--deblock", "on"], ["--deblock", "weak", "strong"]),
        (["--prefilter", "vhs"], ["--prefilter", "sd"]),
        (["--crop", "704x480"], ["--crop", "auto", "W:H:X:Y"]),
        (["--crop", "95:64:0:8"], ["--crop", "even"]),
    ],
)
def test_bad_prefilter_values_are_refused(
    media: Path, cli_env: dict[str, str], tmp_path: Path, args: list[str], named: list[str]
) -> None:
    src = make_bordered(media / "bad.mkv", frames=4)
    for command in (
        ["upscale", str(src), "-o", str(tmp_path / "o.mkv")],
        ["submit", str(src), "-o", str(tmp_path / "o.mkv")],
    ):
        proc = run_cli([*command, *args], cli_env)
        assert proc.returncode == 2, proc.stderr
        for word in named:
            assert word in proc.stderr, proc.stderr
        assert not (tmp_path / "o.mkv").exists()


def test_crop_outside_the_picture_is_refused_before_any_work(
    media: Path, model_env: dict[str, str], tmp_path: Path
) -> None:
    src = make_bordered(media / "small.mkv", picture=(96, 64), pad=(96, 64, 0, 0), frames=4)
    out = tmp_path / "o.mkv"
    proc = run_cli(["upscale", str(src), "-o", str(out), "--model", MODEL, "--crop", "96:64:2:0"], model_env)
    assert proc.returncode == 2, proc.stderr
    assert "--crop 96:64:2:0" in proc.stderr and "96x64" in proc.stderr
    assert not out.exists()

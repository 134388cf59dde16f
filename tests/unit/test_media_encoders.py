"""NVENC detection and ``--codec auto`` against the real ffmpeg CLI and PyAV of this machine."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from vsrflow.media import encoders
from vsrflow.media.encoders import check, encode_one_frame, listed_encoders, parse_encoders, resolve_codec

NO_NVIDIA = not Path("/dev/nvidia0").exists() and not os.environ.get("NVIDIA_VISIBLE_DEVICES")

SAMPLE = """Encoders:
 V..... = Video
 A..... = Audio
 ------
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)
 A....D aac                  AAC (Advanced Audio Coding)
 S..... ass                  ASS (Advanced SubStation Alpha) subtitle
"""


def test_parse_encoders_skips_the_legend() -> None:
    assert parse_encoders(SAMPLE) == {"libx264", "h264_nvenc", "aac", "ass"}
    assert parse_encoders("") == set()


def test_the_real_cli_lists_libx264_and_it_encodes() -> None:
    listed = listed_encoders("ffmpeg")
    assert listed is not None and "libx264" in listed
    assert check("libx264").usable and check("libx264").reason == ""


def test_a_missing_cli_or_encoder_is_not_usable() -> None:
    assert listed_encoders("/nonexistent/ffmpeg") is None
    c = check("h264_nvenc", "/nonexistent/ffmpeg")
    assert not c.usable and "could not run" in c.reason
    assert "no-such-encoder" not in (listed_encoders("ffmpeg") or set())
    assert encode_one_frame("no-such-encoder") != ""


@pytest.mark.skipif(not NO_NVIDIA, reason="this machine has an NVIDIA device")
def test_without_a_gpu_nvenc_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    nv = check("h264_nvenc")
    assert not nv.usable and nv.reason
    assert resolve_codec("auto") == "libx264"
    with caplog.at_level(logging.WARNING, logger=encoders.__name__):
        assert resolve_codec("hevc_nvenc") == "libx265"
    assert any("hevc_nvenc is not usable here" in r.getMessage() for r in caplog.records)


def test_other_codecs_pass_through() -> None:
    assert resolve_codec("libx265") == "libx265"
    assert resolve_codec("ffv1") == "ffv1"

"""segment_is_cut: a finalised Matroska file states its Segment's size; a copy that ends early is cut."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vsrflow.media.ebml import _vint, segment_is_cut


def _mkv(path: Path, *extra: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=32x32:rate=10", "-t", "1",
         "-c:v", "ffv1", *extra, str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_whole_file_holds_its_segment(tmp_path: Path) -> None:
    assert segment_is_cut(_mkv(tmp_path / "a.mkv")) is False


def test_a_cut_copy_ends_before_its_segment(tmp_path: Path) -> None:
    whole = _mkv(tmp_path / "a.mkv").read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole[: len(whole) // 2])
    assert segment_is_cut(cut) is True


def test_unknown_size_and_other_files_give_no_witness(tmp_path: Path) -> None:
    live = tmp_path / "live.mkv"
    with live.open("wb") as out:  # written to a pipe: the muxer cannot go back to state the size
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=32x32:rate=10", "-t", "1",
             "-c:v", "ffv1", "-f", "matroska", "pipe:1"],
            stdout=out, check=True,
        )  # fmt: skip
    assert segment_is_cut(live) is None
    text = tmp_path / "notes.mkv"
    text.write_text("not a video")
    assert segment_is_cut(text) is None


@pytest.mark.parametrize(
    ("data", "value", "length"),
    [(b"\x81", 1, 1), (b"\x40\x02", 2, 2), (b"\xff", None, 1), (b"\x01" + b"\xff" * 7, None, 8)],
)
def test_vint(data: bytes, value: int | None, length: int) -> None:
    assert _vint(data, 0) == (value, length)

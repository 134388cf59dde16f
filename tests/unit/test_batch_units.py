"""Pieces of the `vsrflow run` workflow that need no model: discovery, naming, resume, summary."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.mediagen import make_video
from vsrflow.batch import markers
from vsrflow.batch.runner import discover_inputs, find_reference, output_for
from vsrflow.batch.steps import error_line
from vsrflow.batch.summary import (
    VideoResult,
    best_and_worst,
    evaluation_metrics,
    format_table,
    summary_json,
)
from vsrflow.errors import InputError


def test_discover_sorted_filtered_and_refuses_empty(tmp_path: Path) -> None:
    for name in ("b.MP4", "a.mkv", "notes.txt", ".hidden.mp4", "c.webm"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in discover_inputs(tmp_path)] == ["a.mkv", "b.MP4", "c.webm"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=re.escape(str(empty))):
        discover_inputs(empty)
    with pytest.raises(InputError, match="does not exist"):
        discover_inputs(tmp_path / "missing")


def test_duplicate_stems_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "a.mkv").write_bytes(b"x")
    with pytest.raises(InputError, match="rename one"):
        discover_inputs(tmp_path)


def test_output_names(tmp_path: Path) -> None:
    assert output_for(Path("in/clip.MP4"), tmp_path, 4.0) == tmp_path / "clip_x4.mp4"
    assert output_for(Path("in/clip.avi"), tmp_path, 2.0) == tmp_path / "clip_x2.mkv"
    assert output_for(Path("in/clip.webm"), tmp_path, 1.5) == tmp_path / "clip_x1.5.mkv"


def test_find_reference(tmp_path: Path) -> None:
    (tmp_path / "a.mkv").write_bytes(b"x")
    (tmp_path / "a.txt").write_bytes(b"x")
    assert find_reference(tmp_path, Path("a.mp4")) == tmp_path / "a.mkv"
    with pytest.raises(InputError, match="no reference b"):
        find_reference(tmp_path, Path("b.mp4"))
    (tmp_path / "a.mov").write_bytes(b"x")
    with pytest.raises(InputError, match="several references"):
        find_reference(tmp_path, Path("a.mp4"))


def test_error_line_prefers_the_vsrflow_error() -> None:
    text = "INFO something\nvsrflow: error: muxing x failed; last output:\n[mp4] bad thing\n"
    assert error_line(text) == "muxing x failed; last output:"
    assert error_line("Traceback\nKeyError: 'x'\n") == "KeyError: 'x'"
    assert error_line("") == "no output"


def _result(name: str, psnr: float | None, error: str | None = None) -> VideoResult:
    return VideoResult(
        Path(name), Path(f"{name}_x4.mkv"), upscale="upscaled", error=error, metrics={"psnr_y": psnr}
    )


def test_best_worst_summary_and_table() -> None:
    results = [_result("a.mp4", 30.0), _result("b.mp4", None, "upscale: broken"), _result("c.mp4", 25.5)]
    best, worst = best_and_worst(results)
    assert (best and best.input.name, worst and worst.input.name) == ("a.mp4", "c.mp4")
    data = summary_json(results, model="m", scale=4.0)
    json.dumps(data, allow_nan=False)
    assert data["counts"]["failed"] == 1 and data["best"]["input"] == "a.mp4"
    table = format_table(results)
    assert "best: a.mp4" in table and "worst: c.mp4" in table and "upscale: broken" in table
    assert best_and_worst([_result("x", None)]) == (None, None)


def test_evaluation_metrics_reads_the_summary_shape() -> None:
    summary = {"metrics": {"psnr_y": {"mean": 31.5}, "ssim_y": {"mean": 0.9}, "tof": None}}
    got = evaluation_metrics(summary)
    assert got["psnr_y"] == 31.5 and got["ssim_y"] == 0.9 and got["tof"] is None
    assert evaluation_metrics({"psnr_y": {"mean": None}})["psnr_y"] is None
    assert evaluation_metrics("junk") == {}


def test_marker_proves_done_only_for_the_same_input_model_scale_and_output(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mkv", size=(32, 24), frames=3)
    out = make_video(tmp_path / "out.mkv", size=(128, 96), frames=3)
    marker_file = markers.marker_path(tmp_path, src)
    markers.write_marker(marker_file, markers.upscale_record(src, out, "m", 4.0, 1.0))
    marker = markers.read_marker(marker_file)
    assert markers.upscale_is_done(marker, src, out, "m", 4.0)
    assert not markers.upscale_is_done(marker, src, out, "other", 4.0)
    assert not markers.upscale_is_done(marker, src, out, "m", 2.0)
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a replaced input
    assert not markers.upscale_is_done(marker, src, out, "m", 4.0)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    out.write_bytes(out.read_bytes()[:100])  # a damaged output
    assert not markers.upscale_is_done(marker, src, out, "m", 4.0)
    marker_file.write_text("{not json")
    assert markers.read_marker(marker_file) is None


def test_recorded_evaluation_reused_only_for_the_same_reference(tmp_path: Path) -> None:
    ref = tmp_path / "ref.mkv"
    ref.write_bytes(b"reference")
    marker = {"evaluation": {"reference": markers.FileStamp.of(ref).to_json(), "metrics": {"psnr_y": {}}}}
    assert markers.reusable_evaluation(marker, ref) == {"psnr_y": {}}
    ref.write_bytes(b"another reference")
    assert markers.reusable_evaluation(marker, ref) is None

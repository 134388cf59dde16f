"""Units behind ``vsrflow evaluate``: crop rule, frame picking, region choice, SVG charts, pictures, table."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from vsrflow.cli.evaluate_cmd import summary_table
from vsrflow.errors import InputError
from vsrflow.metrics.closeups import closeup_strip
from vsrflow.metrics.contact import COLUMNS, contact_sheet, thumb_size
from vsrflow.metrics.evaluate import evaluate_pair
from vsrflow.metrics.htmlreport import ReportInputs, write_report
from vsrflow.metrics.pairing import decide_crop, frame_count, frame_size, infer_scale
from vsrflow.metrics.panels import CAPTION_BAR, caption, detail_box, worst_error_box
from vsrflow.metrics.picks import pick_frames, spread_indices
from vsrflow.metrics.svgplot import FONT_SIZE, TOP, Marker, Series, line_chart, nice_ticks

RNG = np.random.default_rng(7)


def _frames(n: int, w: int = 96, h: int = 64) -> list[np.ndarray]:
    base = cv2.resize(RNG.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8), (w, h))
    return [np.roll(base, 2 * i, axis=1) for i in range(n)]


def _folder(path: Path, frames: list[np.ndarray]) -> Path:
    path.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(path / f"{i:03d}.png"), frame[..., ::-1])
    return path


# --- crop rule -------------------------------------------------------------------------------


def test_infer_scale_accepts_exact_and_padded_sizes() -> None:
    assert infer_scale((160, 68), (640, 272)) == 4
    assert infer_scale((480, 270), (1920, 1088)) == 4  # codec padding of the reference
    assert infer_scale((100, 100), (100, 100)) == 1


@pytest.mark.parametrize("low", [(200, 68), (160, 136), (1000, 500)])
def test_infer_scale_refuses_non_integer_or_wrong_aspect(low: tuple[int, int]) -> None:
    with pytest.raises(InputError, match=r"not an integer downscale of the reference 640x272") as err:
        infer_scale(low, (640, 272), input_name="--input lr.mkv")
    assert "lr.mkv" in str(err.value) and "--scale" in str(err.value)


def test_decide_crop_rule_order() -> None:
    assert decide_crop(2, (160, 68), (640, 272)).crop == 2  # explicit wins, no note
    assert decide_crop(2, None, (640, 272)).note is None
    inferred = decide_crop(None, (160, 68), (640, 272))
    assert inferred.crop == 4 and inferred.note and "inferred" in inferred.note
    default = decide_crop(None, None, (640, 272))
    assert default.crop == 0 and default.note and "--scale" in default.note
    with pytest.raises(InputError, match="--scale -1"):
        decide_crop(-1, None, (640, 272))


def test_frame_size_and_count_of_folders(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "f", _frames(3))
    assert frame_size(folder) == (96, 64)
    assert frame_count(folder) == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no PNG/JPG images"):
        frame_size(empty)


# --- second pass -----------------------------------------------------------------------------


def test_spread_indices() -> None:
    assert spread_indices(5, 12) == [0, 1, 2, 3, 4]
    picks = spread_indices(1000, 12)
    assert len(picks) == 12 and picks[0] == 0 and picks[-1] == 999
    assert spread_indices(0, 12) == []


def test_pick_frames_keeps_only_wanted_indices_and_resizes(tmp_path: Path) -> None:
    frames = _frames(6)
    folder = _folder(tmp_path / "f", frames)
    picked = pick_frames(folder, full=[1, 4, 99], thumbs=[0, 5], size=(98, 66), thumb_size=(48, 32))
    assert sorted(picked.full) == [1, 4]  # 99 is past the end: absent, no error
    assert picked.full[1].shape == (66, 98, 3)
    assert sorted(picked.thumbs) == [0, 5] and picked.thumbs[0].shape == (32, 48, 3)
    same = pick_frames(folder, full=[2], thumbs=[], size=(96, 64), thumb_size=(48, 32))
    np.testing.assert_array_equal(same.full[2], frames[2])  # no resize at the same size


# --- regions ---------------------------------------------------------------------------------


def test_worst_error_box_covers_a_planted_error() -> None:
    ref = np.full((120, 200, 3), 128, np.uint8)
    out = ref.copy()
    out[80:90, 150:160] = 255  # the only error
    x, y, w, h = worst_error_box(out, ref, crop=4)
    assert w == h == 40
    assert x <= 150 and x + w >= 160 and y <= 80 and y + h >= 90
    assert x >= 0 and x + w <= 200 and y >= 0 and y + h <= 120


def test_detail_box_prefers_texture_to_one_edge() -> None:
    ref = np.full((120, 240, 3), 60, np.uint8)
    ref[:, :40] = 250  # one strong edge at x=40
    ref[40:80, 170:210] = RNG.integers(0, 256, (40, 40, 1), dtype=np.uint8)  # texture
    x, _, w, _ = detail_box(ref, crop=0)
    assert x > 120 and x < 210 < x + w + 10


# --- charts ----------------------------------------------------------------------------------


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    ticks = nice_ticks(31.3, 38.9)
    assert ticks[0] <= 31.3 and ticks[-1] >= 38.9
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1 and steps.pop() in (1.0, 2.0, 5.0)


def test_line_chart_breaks_at_missing_values_and_stays_small_for_long_videos() -> None:
    svg = line_chart(
        "t", [Series("a", [None, 1.0, 2.0, math.inf, 3.0, 4.0], "#000")], [Marker(2, "m", "red")], 6
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<polyline") == 2 and "inf" not in svg.lower().replace("infin", "")
    long = line_chart("t", [Series("a", list(np.sin(np.arange(100_000) / 50.0)), "#000")], [], 100_000)
    points = re.findall(r"points='([^']*)'", long)[0].split()
    assert len(points) < 2000
    empty = line_chart("tOF", [Series("tOF", [None], "#000")], [], 1)
    assert "no values" in empty


# --- pictures and page -----------------------------------------------------------------------


def test_closeup_strip_and_contact_sheet_are_labelled_pictures() -> None:
    ref = _frames(1, 160, 120)[0]
    out = cv2.GaussianBlur(ref, (5, 5), 1.5)
    strip, box = closeup_strip(
        index=3, output=out, reference=ref, upscaled_input=out, scale_label="x4", crop=4, region="error"
    )
    assert strip.dtype == np.uint8 and strip.shape[1] > 4 * 250 and box[2] == 40
    size = thumb_size(160, 120)
    thumbs = {i: cv2.resize(ref, size) for i in range(4)}
    sheet = contact_sheet(
        [0, 1, 2, 3], thumbs, thumbs, {0: 30.0, 1: math.inf, 2: 31.0, 3: 29.0}, worst=3, best=1
    )
    rows = math.ceil(4 / COLUMNS)
    assert sheet.shape[0] > rows * size[1] and sheet.shape[1] > COLUMNS * 2 * size[0]
    with pytest.raises(ValueError, match="no frame"):
        contact_sheet([7], thumbs, thumbs, {}, worst=0, best=0)


def test_labels_are_readable_and_thumbnails_big_enough() -> None:
    # Capitals (no descenders) are at least 14 px tall in the bar; 11 px was too small to read.
    bar = caption(np.zeros((10, 400, 3), np.uint8), "OUTPUT 31.25 DB")[:CAPTION_BAR]
    ink = np.flatnonzero(bar.max(axis=(1, 2)) > 120)
    assert ink.size and ink[-1] - ink[0] + 1 >= 14
    assert thumb_size(1920, 1080)[0] >= 320 and FONT_SIZE >= 14


def test_marker_labels_sit_above_the_plot_and_apart() -> None:
    # Worst and best on neighbouring frames: the labels must neither overlap each other nor the plot.
    chart = line_chart(
        "PSNR", [Series("Y", [30.0, 31.0, 29.0, 30.0], "#000")],
        [Marker(1, "worst 1", "#f00"), Marker(2, "best 2", "#0f0")], 4,
    )  # fmt: skip
    labels = re.findall(r"<text x='([\d.]+)' y='([\d.]+)'[^>]*>(worst 1|best 2)</text>", chart)
    assert len(labels) == 2
    (x1, y1, _), (x2, y2, _) = sorted(labels, key=lambda t: float(t[0]))
    assert float(y1) < TOP and float(y2) < TOP
    assert float(x2) - float(x1) >= 7 * len("worst 1")


def test_write_report_without_input_and_single_frame(tmp_path: Path) -> None:
    frames = _frames(1)
    out_dir = _folder(tmp_path / "out", [cv2.GaussianBlur(f, (3, 3), 1.0) for f in frames])
    ref_dir = _folder(tmp_path / "ref", frames)
    result = evaluate_pair([cv2.GaussianBlur(frames[0], (3, 3), 1.0)], frames, scale_crop=2)
    page = write_report(result, tmp_path / "rep", ReportInputs(out_dir, ref_dir, None, (96, 64)))
    html = page.read_text()
    assert (tmp_path / "rep" / "worst_frame.png").is_file()
    assert not (tmp_path / "rep" / "best_frame.png").exists()  # worst == best: one close-up
    assert "n/a (needs 2 frames)" in html and "no values to plot" in html


def test_summary_table_shows_inf_and_notes() -> None:
    frames = _frames(3)
    result = evaluate_pair(frames, frames, scale_crop=0)
    table = summary_table(result)
    assert "inf" in table.splitlines()[1]
    assert table.splitlines()[0].split() == ["metric", "mean", "min", "max"]
    assert "worst frame 0" in table

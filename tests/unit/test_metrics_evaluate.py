"""evaluate_pair on synthetic sequences: records, summary, size and frame-count rules, writers."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from vsrflow.errors import InputError
from vsrflow.metrics.evaluate import evaluate_pair, slight_tolerance
from vsrflow.metrics.image import image_scores
from vsrflow.metrics.report import CSV_COLUMNS, summary_dict, write_csv

H, W = 60, 80


def _reference(n: int) -> list[np.ndarray]:
    photo = data.coffee()
    return [np.ascontiguousarray(photo[50:110, 100 + 3 * t : 180 + 3 * t]) for t in range(n)]


def _noisy(frames: list[np.ndarray], sigmas: list[float]) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    out = []
    for frame, sigma in zip(frames, sigmas, strict=True):
        noisy = frame.astype(np.float64) + rng.normal(0.0, sigma, frame.shape)
        out.append(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
    return out


def test_every_frame_is_measured() -> None:
    ref = _reference(5)
    out = _noisy(ref, [2.0, 8.0, 1.0, 4.0, 3.0])
    result = evaluate_pair(iter(out), iter(ref), scale_crop=2)
    assert [f.index for f in result.frames] == [0, 1, 2, 3, 4]
    assert result.output_frames == result.reference_frames == 5
    assert result.notes == []
    for rec, o, r in zip(result.frames, out, ref, strict=True):
        scores = image_scores(o, r, crop=2)
        assert (rec.psnr_rgb, rec.psnr_y, rec.ssim_rgb, rec.ssim_y) == (
            scores.psnr_rgb,
            scores.psnr_y,
            scores.ssim_rgb,
            scores.ssim_y,
        )
    assert result.frames[0].tof is None
    assert all(f.tof is not None and f.tof > 0 for f in result.frames[1:])
    s = result.summary
    assert s.worst_frame == 1 and s.best_frame == 2  # most and least noise
    psnr_y = s.stats["psnr_y"]
    assert psnr_y is not None
    assert psnr_y.mean == pytest.approx(np.mean([f.psnr_y for f in result.frames]))
    assert psnr_y.min == result.frames[1].psnr_y and psnr_y.max == result.frames[2].psnr_y
    tof = s.stats["tof"]
    assert tof is not None and tof.count == 4


def test_identical_frames_give_inf_excluded_from_the_mean() -> None:
    ref = _reference(3)
    out = [ref[0].copy(), *_noisy(ref[1:], [4.0, 6.0])]
    result = evaluate_pair(out, ref, scale_crop=0)
    stats = result.summary.stats["psnr_rgb"]
    assert stats is not None
    assert result.frames[0].psnr_rgb == math.inf
    assert stats.infinite == 1 and stats.max == math.inf
    assert stats.mean == pytest.approx((result.frames[1].psnr_rgb + result.frames[2].psnr_rgb) / 2)
    summary = summary_dict(result)
    text = json.dumps(summary, allow_nan=False)  # strict JSON: inf is written as null
    assert json.loads(text)["metrics"]["psnr_rgb"]["max"] is None
    assert summary["best_frame"] == {"index": 0, "psnr_y": None}
    assert summary["metrics"]["psnr_rgb"]["infinite"] == 1


def test_all_identical_mean_is_inf() -> None:
    ref = _reference(2)
    result = evaluate_pair(ref, [f.copy() for f in ref], scale_crop=4)
    stats = result.summary.stats["psnr_y"]
    assert stats is not None and stats.mean == math.inf
    assert result.frames[1].tof == 0.0


@pytest.mark.parametrize(("n_out", "n_ref"), [(4, 6), (7, 5)])
def test_frame_count_mismatch_names_both_counts(n_out: int, n_ref: int) -> None:
    with pytest.raises(InputError, match=f"output has {n_out} frames, reference has {n_ref}"):
        evaluate_pair(iter(_reference(n_out)), iter(_reference(n_ref)), scale_crop=2)


def test_truncate_compares_the_common_prefix() -> None:
    result = evaluate_pair(_reference(5), _reference(3), scale_crop=2, align="truncate")
    assert len(result.frames) == 3
    assert (result.output_frames, result.reference_frames) == (5, 3)
    assert result.notes == ["frame counts differ (output 5, reference 3): compared the first 3"]


def test_slight_size_difference_is_resized_with_one_note() -> None:
    ref = _reference(3)
    out = [cv2.resize(f, (W + 3, H - 2), interpolation=cv2.INTER_CUBIC) for f in ref]
    result = evaluate_pair(out, ref, scale_crop=2)
    assert result.notes == [f"output frames {W + 3}x{H - 2} resized to the reference size {W}x{H} (bicubic)"]
    assert len(result.frames) == 3
    stats = result.summary.stats["psnr_y"]
    assert stats is not None and 25 < stats.min < math.inf
    with pytest.raises(InputError, match="resize_policy='never'"):
        evaluate_pair(out, ref, scale_crop=2, resize_policy="never")


@pytest.mark.parametrize(
    ("size", "reason"),
    [
        ((2 * W, 2 * H), "2x the reference size"),
        ((W, H + 12), "aspect ratios differ"),
        ((W + 6, H), "aspect"),
    ],
)
def test_large_size_difference_is_refused_naming_both_sizes(size: tuple[int, int], reason: str) -> None:
    ref = _reference(2)
    out = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in ref]
    with pytest.raises(InputError) as err:
        evaluate_pair(out, ref, scale_crop=2)
    message = str(err.value)
    assert f"output {size[0]}x{size[1]}, reference {W}x{H}" in message
    assert reason in message


def test_slight_tolerance_rule() -> None:
    assert slight_tolerance(48) == 4  # few pixels on small frames
    assert slight_tolerance(1080) == 21  # 2 % on large ones: covers 1088-line codec padding
    assert slight_tolerance(3840) == 76


def test_streams_lazily_and_closes_inputs_on_error() -> None:
    pulled: list[int] = []
    closed: list[str] = []

    def gen(name: str, frames: list[np.ndarray]) -> Iterator[np.ndarray]:
        try:
            for i, f in enumerate(frames):
                pulled.append(i)
                yield f
        finally:
            closed.append(name)

    ref = _reference(4)
    bad = [ref[0], np.zeros((H * 2, W * 2, 3), np.uint8), ref[2], ref[3]]
    with pytest.raises(InputError, match="differ too much"):
        evaluate_pair(gen("out", bad), gen("ref", ref), scale_crop=2)
    assert sorted(closed) == ["out", "ref"]
    assert max(pulled) == 1  # frames after the failing one were never pulled


def test_empty_and_non_rgb_inputs() -> None:
    with pytest.raises(InputError, match="nothing to compare"):
        evaluate_pair([], [], scale_crop=2)
    grey = [np.zeros((H, W), np.uint8)]
    with pytest.raises(InputError, match="output frame 0"):
        evaluate_pair(grey, _reference(1), scale_crop=2)


def test_csv_has_one_row_per_frame(tmp_path: Path) -> None:
    ref = _reference(4)
    out = [ref[0].copy(), *_noisy(ref[1:], [3.0, 3.0, 3.0])]
    result = evaluate_pair(out, ref, scale_crop=2)
    path = write_csv(result, tmp_path / "frames.csv")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert (
        tuple(rows[0].keys()) == CSV_COLUMNS == ("index", "psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y", "tof")
    )
    assert len(rows) == 4 == len(result.frames)
    assert [int(r["index"]) for r in rows] == [0, 1, 2, 3]
    assert rows[0]["tof"] == "" and float(rows[0]["psnr_y"]) == math.inf
    assert float(rows[2]["ssim_y"]) == result.frames[2].ssim_y  # full precision round-trip


def test_summary_dict_is_json_and_self_describing() -> None:
    result = evaluate_pair(_noisy(_reference(3), [2.0, 5.0, 3.0]), _reference(3), scale_crop=2)
    summary = json.loads(json.dumps(summary_dict(result), allow_nan=False))
    assert summary["frames"] == 3 and summary["scale_crop"] == 2
    assert set(summary["metrics"]) == {"psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y", "tof"}
    assert summary["metrics"]["tof"]["count"] == 2
    assert summary["worst_frame"]["index"] == 1
    assert summary["conventions"]["ssim"]["window"] == 11
    single = summary_dict(evaluate_pair(_reference(1), _reference(1), scale_crop=2))
    assert single["metrics"]["tof"] is None

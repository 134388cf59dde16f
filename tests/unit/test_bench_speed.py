"""Unit tests of the benchmark's arithmetic and result schema (no processes, no weights)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from vsrflow.bench.clips import parse_size
from vsrflow.bench.flops import (
    MFLOP_PER_PX,
    PEAK_TFLOPS_FP16,
    achieved_tflops,
    ceiling_fps,
    count_mflop_per_px,
    fraction_of_ceiling,
    mflop_per_px,
)
from vsrflow.bench.speed import (
    CPU_DEFAULTS,
    GPU_DEFAULT,
    RESULT_KEYS,
    RUN_KEYS,
    ceiling_block,
    check_result,
    default_case,
)
from vsrflow.errors import InputError
from vsrflow.models.arch.srvgg import SRVGGNetCompact


def test_achieved_tflops_is_flop_per_px_times_pixels_per_second() -> None:
    # 35.9 MFLOP/px x 640x360 px x 120 frames in 1 s = 992.6 TFLOP/s
    assert achieved_tflops(35.9, 640 * 360, 120, 1.0) == pytest.approx(992.6, rel=1e-4)
    assert achieved_tflops(1.24, 100, 10, 2.0) == pytest.approx(1.24e6 * 100 * 10 / 2 / 1e12)


@pytest.mark.parametrize("bad", [(1.0, 10, 1, 0.0), (1.0, -1, 1, 1.0), (-1.0, 10, 1, 1.0)])
def test_achieved_tflops_rejects_nonsense(bad: tuple[float, int, int, float]) -> None:
    with pytest.raises(ValueError):
        achieved_tflops(*bad)


def test_ceiling_matches_field_notes() -> None:
    # The FLOP ceiling: x4plus at 640x360 cannot exceed ~120 fps, animevideov3 at 1080p ~386 fps.
    assert ceiling_fps(MFLOP_PER_PX["RealESRGAN_x4plus"], 640 * 360) == pytest.approx(119.7, abs=0.2)
    assert ceiling_fps(MFLOP_PER_PX["realesr-animevideov3"], 1920 * 1080) == pytest.approx(385.5, abs=1)
    assert PEAK_TFLOPS_FP16 == 990.0
    assert fraction_of_ceiling(99.0) == pytest.approx(0.1)


def test_ceiling_block_only_on_cuda_with_a_known_cost() -> None:
    assert ceiling_block("cpu", 35.9, 1000, 0.4) is None
    assert ceiling_block("cuda", None, 1000, None) is None
    block = ceiling_block("cuda", 35.9, 640 * 360, 99.0)
    assert block is not None
    assert block["fraction_of_ceiling"] == pytest.approx(0.1)
    assert block["ceiling_fps"] == pytest.approx(119.7, abs=0.2)
    assert block["peak_tflops"] == PEAK_TFLOPS_FP16


def test_conv_counter_on_one_conv() -> None:
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    # 2 x (8 outputs x 3 inputs x 3 x 3) FLOP per pixel
    assert count_mflop_per_px(conv, 16, 16) == pytest.approx(2 * 8 * 3 * 9 / 1e6)


def test_conv_counter_reproduces_the_table_for_srvgg() -> None:
    net = SRVGGNetCompact(num_feat=64, num_conv=16, upscale=4, act_type="prelu")
    assert count_mflop_per_px(net, 16, 16) == pytest.approx(MFLOP_PER_PX["realesr-animevideov3"], rel=0.01)
    assert mflop_per_px("realesr-animevideov3") == MFLOP_PER_PX["realesr-animevideov3"]
    assert mflop_per_px("not-in-table") is None
    assert mflop_per_px("not-in-table", torch.nn.Conv2d(3, 3, 1)) == pytest.approx(2 * 3 * 3 / 1e6)


def test_parse_size() -> None:
    assert parse_size("640x272") == (640, 272)
    assert parse_size("32X24") == (32, 24)
    for bad in ("640", "axb", "31x24", "0x0", "640x272x3"):
        with pytest.raises(InputError):
            parse_size(bad)


def test_default_cases() -> None:
    assert default_case("RealESRGAN_x4plus", "cpu") == CPU_DEFAULTS["RealESRGAN_x4plus"]
    assert default_case("RealESRGAN_x4plus", "cuda:0") == GPU_DEFAULT
    size, frames = default_case("SPAN_x2_ch48", "cpu")
    assert size[0] % 2 == 0 and size[1] % 2 == 0 and frames > 0


def _doc() -> dict[str, Any]:
    run = {key: None for key in RUN_KEYS}
    doc: dict[str, Any] = {key: None for key in RESULT_KEYS}
    doc["runs"] = [run]
    return doc


def test_check_result_names_the_missing_keys() -> None:
    check_result(_doc())
    doc = _doc()
    del doc["git_commit"]
    with pytest.raises(ValueError, match="git_commit"):
        check_result(doc)
    doc = copy.deepcopy(_doc())
    del doc["runs"][0]["peak_memory"]
    with pytest.raises(ValueError, match=r"run 0 lacks.*peak_memory"):
        check_result(doc)

"""The per-frame sanity guard and the colour fix on plain tensors (no weights): measurements,
thresholds, policies, reports, and the flat-patch property of the colour fix."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vsrflow.engine.colourfix import apply_colour_fix
from vsrflow.engine.guard import Guard, bicubic, check_frames
from vsrflow.engine.quality import FrameCheck, GuardReport, GuardThresholds, QualityOptions
from vsrflow.engine.upscaler import Upscaler
from vsrflow.errors import InputError, ModelError
from vsrflow.models.descriptor import ModelDescriptor

LIMITS = GuardThresholds()


class Nearest(nn.Module):
    """x2 nearest upscale plus a settable per-frame disturbance (a stand-in network)."""

    def __init__(self, bad_frames: tuple[int, ...] = (), mode: str = "range") -> None:
        super().__init__()
        self.bad, self.mode, self.calls = set(bad_frames), mode, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(x, scale_factor=2, mode="nearest")
        out = []
        for frame in y:
            if self.calls in self.bad:
                if self.mode == "range":  # SPAN-like: huge over/undershoot on edges
                    frame = frame * 0 + torch.linspace(-50, 50, frame.numel()).reshape(frame.shape)
                elif self.mode == "nan":
                    frame = frame.clone()
                    frame[0, 0, 0] = float("nan")
                else:  # in range, but unrelated to the input (garbage)
                    frame = 1.0 - frame
            out.append(frame)
            self.calls += 1
        return torch.stack(out)


def _descriptor() -> ModelDescriptor:
    return ModelDescriptor(arch="nearest", scale=2)


def _frames(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, 12, 16, 3)).astype(np.uint8)
    return np.repeat(np.repeat(base, 2, axis=1), 2, axis=2)  # smooth-ish 24x32 frames


def test_check_frames_passes_a_faithful_upscale() -> None:
    x = F.interpolate(torch.rand(2, 3, 6, 8), size=(24, 32), mode="bilinear")  # picture-like, not noise
    y = bicubic(x, (48, 64))
    checks = check_frames(x, y, LIMITS)
    assert len(checks) == 2
    for c in checks:
        assert 0.0 <= c.lo <= c.hi <= 1.0
        assert c.psnr_db > 30 and c.block_psnr_db > 20
        assert c.problems(LIMITS) == []


@pytest.mark.parametrize("mode", ["range", "nan", "garbage"])
def test_check_frames_flags_blow_ups(mode: str) -> None:
    x = torch.rand(1, 3, 24, 32) * 0.5 + 0.25
    y = Nearest((0,), mode)(x)
    (check,) = check_frames(x, y, LIMITS)
    problems = check.problems(LIMITS)
    assert problems, check
    if mode == "nan":
        assert "non-finite output" in problems
    if mode == "range":
        assert check.lo < LIMITS.min_value and check.hi > LIMITS.max_value


def test_frame_check_thresholds_are_inclusive_limits() -> None:
    ok = FrameCheck(LIMITS.min_value, LIMITS.max_value, LIMITS.min_psnr_db, LIMITS.min_block_psnr_db)
    assert ok.problems(LIMITS) == []
    assert FrameCheck(-3.01, 1.0, 40, 40).problems(LIMITS) == ["output range -3.01..1"]
    assert FrameCheck(0, 1, math.nan, 40).problems(LIMITS)


def _upscaler(policy: str, bad: tuple[int, ...], fallback: Upscaler | None = None) -> Upscaler:
    guard = Guard(policy=policy, fallback=(lambda: fallback) if fallback else None,
                  fallback_name="nearest-fallback" if fallback else "bicubic")  # fmt: skip
    return Upscaler(Nearest(bad), _descriptor(), device="cpu", guard=guard)


def test_fallback_policy_redoes_only_the_tripped_frames_with_the_fallback_model() -> None:
    frames = _frames(4)
    clean = Upscaler(Nearest(), _descriptor(), device="cpu").upscale_frames(frames)
    up = _upscaler("fallback", (1, 2), fallback=Upscaler(Nearest(), _descriptor(), device="cpu"))
    up.reset(first_frame=100)
    out = up.upscale_frames(frames)
    np.testing.assert_array_equal(out, clean)  # the fallback (a clean copy) replaced frames 1, 2
    report = up.check_artifacts()
    assert (report.checked, report.tripped, report.redone, report.bicubic) == (4, 2, 2, 0)
    assert report.frames == [101, 102] and report.fallback == "nearest-fallback"


def test_fallback_without_a_model_is_bicubic() -> None:
    frames = _frames(2)
    up = _upscaler("fallback", (0,))
    out = up.upscale_frames(frames)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    expect = (bicubic(x[:1], (48, 64)) * 255).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)
    np.testing.assert_array_equal(out[0], expect[0])
    assert up.report.bicubic == 1 and up.report.redone == 0


def test_fallback_model_that_trips_too_gives_bicubic() -> None:
    up = _upscaler("fallback", (0,), fallback=Upscaler(Nearest((0,)), _descriptor(), device="cpu"))
    up.upscale_frames(_frames(1))
    assert up.report.tripped == 1 and up.report.redone == 0 and up.report.bicubic == 1


def test_keep_and_fail_policies() -> None:
    keep = _upscaler("keep", (0,))
    out = keep.upscale_frames(_frames(2))
    assert out[0].max() == 255 and out[0].min() == 0  # the blown-up frame, clamped, is kept
    assert keep.check_artifacts().kept == 1

    fail = _upscaler("fail", (1, 3))
    fail.reset(first_frame=10)
    fail.upscale_frames(_frames(4))
    with pytest.raises(ModelError, match=r"2 of 4 frames \(frames 11, 13; output range"):
        fail.check_artifacts()
    fail.reset()
    assert fail.check_artifacts().tripped == 0  # a new clip starts a new report


def test_report_json_round_trip_and_merge() -> None:
    a = GuardReport(
        policy="fallback", checked=10, tripped=2, redone=2, frames=[3, 4], fallback="m", worst="x"
    )
    b = GuardReport(policy="fallback", checked=5, tripped=1, bicubic=1, frames=[1], fallback="m")
    assert GuardReport.from_json(a.to_json()) == a
    merged = a.merge(b)
    assert (merged.checked, merged.tripped, merged.redone, merged.bicubic) == (15, 3, 2, 1)
    assert merged.frames == [1, 3, 4]
    assert "3 tripped (frames 1, 3, 4; x): 2 redone with m, 1 redone with bicubic" in merged.summary()
    with pytest.raises(InputError):
        GuardReport.from_json({**a.to_json(), "checked": -1})


def test_quality_options_refuse_unknown_choices() -> None:
    with pytest.raises(InputError, match="--on-artifact 'skip'"):
        QualityOptions(on_artifact="skip")
    with pytest.raises(InputError, match="--colour-fix 'on'"):
        QualityOptions(colour_fix="on")


@pytest.mark.parametrize("mode", ["wavelet", "gaussian"])
def test_colour_fix_puts_a_shifted_flat_patch_back_on_the_source_colour(mode: str) -> None:
    x = torch.empty(1, 3, 32, 32)
    x[:, 0], x[:, 1], x[:, 2] = 48 / 255, 112 / 255, 176 / 255
    x[..., :8] = 0.9  # an edge, so the patch is not the whole frame
    y = bicubic(x, (128, 128)) + 3 / 255  # a GAN-like brightening of 3 levels
    y[..., 16:24, 60:68] += 0.2  # model detail (kept), more than the low-pass support from the patch
    fixed = apply_colour_fix(y, x, mode)
    patch = fixed[..., 80:120, 80:120]  # flat area, away from the edge and the detail
    levels = (patch * 255 - torch.tensor([48, 112, 176]).view(1, 3, 1, 1)).abs()
    assert float(levels.max()) < 0.5, mode
    detail = fixed[..., 16:24, 60:68].mean() - fixed[..., 16:24, 100:108].mean()
    assert float(detail) > 0.1  # high frequencies come from the model

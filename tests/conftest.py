"""Shared fixtures: a persistent test cache (weights, wheels) and the CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def test_cache() -> Path:
    """Cache dir kept across runs (``VSRFLOW_TEST_CACHE``, default ``.cache/test``): wheels, weights."""
    path = Path(os.environ.get("VSRFLOW_TEST_CACHE") or REPO / ".cache" / "test")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def cli_env(test_cache: Path) -> Iterator[dict[str, str]]:
    """Environment for running ``python -m vsrflow`` with the test cache as its weight store."""
    env = dict(os.environ)
    env["VSRFLOW_CACHE_DIR"] = str(test_cache / "vsrflow")
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("VSRFLOW_DEVICE", None)
    yield env


#: Models whose weights every CLI test session imports once (ncnn exports; fast on CPU).
TEST_MODELS = ("realesr-animevideov3", "SPAN_x2_ch48")


@pytest.fixture(scope="session")
def model_env(cli_env: dict[str, str]) -> dict[str, str]:
    """``cli_env`` with :data:`TEST_MODELS` imported into its weight store (once per session)."""
    proc = run_cli(["models", "import-ncnn", *TEST_MODELS], cli_env)
    assert proc.returncode == 0, proc.stderr
    return cli_env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process (exit code, stdout and stderr as a user sees them)."""
    return subprocess.run(
        [sys.executable, "-m", "vsrflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )

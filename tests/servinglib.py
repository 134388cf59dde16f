"""Helpers for the model endpoint tests: start real endpoints (Multi Model Server) and prepare jobs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil

from vsrflow.localstack.slurm import free_port_block
from vsrflow.serving.server import Endpoint
from vsrflow.serving.spec import EndpointSpec
from vsrflow.workflow.job import stages
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.spec import EncoderSpec, JobSpec, file_identity

MODEL = "realesr-animevideov3"
SCALE = 2.0
READY_TIMEOUT = 120.0


def free_ports(count: int) -> int:
    """First of ``count`` consecutive free ports."""
    return free_port_block(count)


def endpoint(
    cache_dir: Path,
    port: int,
    state_dir: Path,
    *,
    roots: Sequence[Path] = (),
    read_timeout: float = 600.0,
) -> Endpoint:
    """A CPU endpoint serving :data:`MODEL` at :data:`SCALE` from the test weight cache.

    ``roots``: the directories requests may name (``VSRFLOW_ENDPOINT_ALLOWED_ROOTS``; tests pass
    pytest's base temp dir); empty: the endpoint's default (``<cache_dir>/jobs``).
    """
    spec = EndpointSpec(model=MODEL, scale=SCALE, device="cpu", cache_dir=cache_dir, port=port)
    env = {"VSRFLOW_ENDPOINT_ALLOWED_ROOTS": os.pathsep.join(map(str, roots))} if roots else {}
    return Endpoint(spec, state_dir=state_dir, response_timeout=read_timeout, extra_env=env)


@contextlib.contextmanager
def running(endpoints: Sequence[Endpoint]) -> Iterator[Sequence[Endpoint]]:
    """Start every endpoint at once, wait until each is warm, stop them all on exit."""
    try:
        for ep in endpoints:
            ep.start()
        for ep in endpoints:
            ep.wait_ready(READY_TIMEOUT)
        yield endpoints
    finally:
        for ep in endpoints:
            ep.terminate()
        for ep in endpoints:
            ep.stop()


def server_processes(state_dir: Path) -> list[psutil.Process]:
    """Live processes whose command line names ``state_dir`` (Java server, launcher, worker)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and any(str(state_dir) in a for a in proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def prepare_job(root: Path, clip: Path, *, chunk_frames: int = 25, codec: str = "ffv1") -> JobDir:
    """A job for ``clip`` at :data:`MODEL` x :data:`SCALE`, extracted (planned) and ready for chunks."""
    root.mkdir(parents=True, exist_ok=True)
    spec = JobSpec(
        source=str(clip.resolve()),
        destination=str((root / "out.mkv").resolve()),
        model=MODEL,
        scale=SCALE,
        encoder=EncoderSpec(codec=codec, crf=18, preset="medium", pix_fmt=None),
        chunk_frames=chunk_frames,
        chunk_seconds=None,
    )
    job = JobDir.create(root, spec, spec.job_id(file_identity(clip.resolve())))
    stages.extract(job)
    return job

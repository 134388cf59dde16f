"""The endpoint's handler functions in-process (no model server): which models one endpoint serves,
the frames it reports, fresh temporal state per frame request, and the paths it may touch.

(The same functions behind the real Multi Model Server: tests/integration/test_serving_endpoints.py.)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.mediagen import decode_rgb, make_video
from tests.servinglib import MODEL, SCALE
from tests.unit.test_egvsr import _engine, _shifting_clip, _tiny
from vsrflow.config import AwsSettings, EndpointSettings, Settings
from vsrflow.engine.quality import GuardReport
from vsrflow.errors import VsrError
from vsrflow.serving import inference
from vsrflow.serving.client import EndpointClient, endpoint_runner
from vsrflow.serving.inference import EndpointCache, EndpointModel
from vsrflow.serving.protocol import ChunkRequest, FileRequest, FramesRequest, RequestError
from vsrflow.serving.spec import EndpointSpec
from vsrflow.workflow.job import stages
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.manifest import ChunkState, ManifestStore
from vsrflow.workflow.job.spec import EncoderSpec, JobSpec, file_identity


@pytest.fixture(scope="module")
def cache_dir(model_env: dict[str, str]) -> Path:
    return Path(model_env["VSRFLOW_CACHE_DIR"]).resolve()


def _endpoint(
    cache_dir: Path, tmp: Path, roots: Sequence[Path], monkeypatch: pytest.MonkeyPatch
) -> EndpointModel:
    """``model_fn`` as the worker runs it: the endpoint of MODEL x SCALE on CPU, warmed."""
    spec = EndpointSpec(model=MODEL, scale=SCALE, device="cpu", cache_dir=cache_dir, port=8080)
    spec.write(tmp / "ml" / "model")
    monkeypatch.setenv("VSRFLOW_ENDPOINT_ALLOWED_ROOTS", os.pathsep.join(map(str, roots)))
    monkeypatch.delenv("VSRFLOW_ENDPOINT_MAX_MODELS", raising=False)
    return inference.model_fn(str(tmp / "ml" / "model"))


def _job(root: Path, clip: Path, *, model: str = MODEL) -> JobDir:
    root.mkdir(parents=True, exist_ok=True)
    spec = JobSpec(
        source=str(clip),
        destination=str(root / "out.mkv"),
        model=model,
        scale=SCALE,
        encoder=EncoderSpec(codec="ffv1", crf=18, preset="medium", pix_fmt=None),
        chunk_frames=25,
        chunk_seconds=None,
    )
    job = JobDir.create(root, spec, spec.job_id(file_identity(clip)))
    stages.extract(job)
    return job


def _refused(call: Any, *needles: str) -> None:
    with pytest.raises(RequestError) as info:
        call()
    assert info.value.status == 400
    for needle in needles:
        assert needle in str(info.value), str(info.value)


def test_serves_every_model_it_has_weights_for_loading_each_once(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = _endpoint(cache_dir, tmp_path, [tmp_path], monkeypatch)
    assert ep.cache.loads == 1 and ep.cache.max_models == 3
    clip = make_video(tmp_path / "clip.mp4", frames=50)
    # A job for another model than the one this endpoint warmed (its weights are in the store).
    job = _job(tmp_path / "jobs", clip, model="SPAN_x2_ch48")
    answers = [inference.predict_fn(ChunkRequest(job_dir=job.path, index=i), ep) for i in (0, 1)]
    for index, stats in enumerate(answers):
        assert isinstance(stats, dict) and stats["model"] == "SPAN_x2_ch48" and stats["frames"] == 25, stats
        pts, images, _ = decode_rgb(job.chunk_output_path(index))
        assert len(pts) == 25 and images[0].shape == (96, 128, 3)
    assert [a["model_loads"] for a in answers] == [2, 2], "one load per model, not per request"
    # The endpoint's own model still runs from its first load.
    inference.predict_fn(FramesRequest(np.zeros((1, 8, 8, 3), np.uint8)), ep)
    assert ep.cache.loads == 2
    # A registry model without weights here, which the node may not obtain (VSRFLOW_NO_DOWNLOAD):
    # 400 naming it and the command that fetches it.
    monkeypatch.setenv("VSRFLOW_NO_DOWNLOAD", "1")
    ep = _endpoint(cache_dir, tmp_path, [tmp_path], monkeypatch)
    absent = FileRequest(input=clip, output=tmp_path / "o.mkv", model="RealESRGAN_x2plus")
    _refused(lambda: inference.predict_fn(absent, ep), "RealESRGAN_x2plus", "no weights", "vsrflow models")
    assert ep.cache.loads == 1  # the new endpoint's own model only


def test_endpoint_reports_the_frames_written(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = _endpoint(cache_dir, tmp_path, [tmp_path], monkeypatch)
    clip = make_video(tmp_path / "clip.mp4", frames=10)
    job = _job(tmp_path / "jobs", clip, model=MODEL)

    def short(job_: Any, chunk: Any, output: Path, settings: Any, cache: Any) -> stages.ChunkResult:
        output.write_bytes(b"short")  # a runner that lost a frame on the way
        return stages.ChunkResult(
            frames=int(chunk.frames) - 1, guard=GuardReport(checked=int(chunk.frames) - 1)
        )

    monkeypatch.setattr(stages, "run_chunk", short)
    stats = inference.predict_fn(ChunkRequest(job_dir=job.path, index=0), ep)
    assert isinstance(stats, dict) and stats["frames"] == 9, stats

    class InProcess(EndpointClient):  # the client's check, fed by this endpoint's answer
        def upscale_chunk(self, request: ChunkRequest) -> dict[str, Any]:
            answer = inference.predict_fn(request, ep)
            assert isinstance(answer, dict)
            return answer

    settings = Settings(cache_dir=tmp_path / "no-weights", endpoint=EndpointSettings(base_port=1))
    run = endpoint_runner(settings, {}, client=InProcess("127.0.0.1", 1))
    with pytest.raises(VsrError, match="endpoint wrote 9 frames, planned 10"):
        stages.upscale_chunk(job, 0, settings, runner=run)
    assert ManifestStore(job).record(0).state is ChunkState.FAILED


def test_frame_requests_on_a_temporal_model_start_fresh(tmp_path: Path) -> None:
    up = _engine(_tiny())

    class Fixed(EndpointCache):
        def upscaler(self, model: Any, scale: float) -> Any:
            return up

    settings = Settings(cache_dir=tmp_path, device="cpu")
    spec = EndpointSpec(model="egvsr", scale=4, device="cpu", cache_dir=tmp_path, port=8080)
    ep = EndpointModel(spec=spec, settings=settings, cache=Fixed(settings))
    clip = _shifting_clip(6)
    first = inference.predict_fn(FramesRequest(clip[:3]), ep)
    second = inference.predict_fn(FramesRequest(clip[3:]), ep)
    assert isinstance(first, np.ndarray) and isinstance(second, np.ndarray)
    # Each request is its own clip: exactly what a fresh model gives for those frames alone.
    assert np.array_equal(first, _engine(_tiny()).upscale_frames(clip[:3]))
    assert np.array_equal(second, _engine(_tiny()).upscale_frames(clip[3:]))
    assert not np.array_equal(second, _engine(_tiny()).upscale_frames(clip)[3:]), "the state matters"


def test_paths_outside_the_allowed_roots_are_refused(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    ep = _endpoint(cache_dir, tmp_path, [allowed], monkeypatch)
    setting = "VSRFLOW_ENDPOINT_ALLOWED_ROOTS"
    clip_out = make_video(outside / "clip.mp4", frames=10)
    clip_in = make_video(allowed / "clip.mp4", frames=10)
    job_out = _job(outside / "jobs", clip_out, model=MODEL)
    job_src_out = _job(allowed / "jobs", clip_out, model=MODEL)  # allowed job, source outside
    (allowed / "link").symlink_to(job_out.path)

    def call(request: Any) -> Any:
        return lambda: inference.predict_fn(request, ep)

    _refused(call(ChunkRequest(job_dir=job_out.path, index=0)), f"job_dir {job_out.path}", setting)
    _refused(call(ChunkRequest(job_dir=allowed / "link", index=0)), f"-> {job_out.path}", setting)
    _refused(call(ChunkRequest(job_dir=job_src_out.path, index=0)), f"source of job {job_src_out.job_id}")
    _refused(call(FileRequest(input=clip_out, output=allowed / "o.mkv")), f"input {clip_out}", setting)
    _refused(call(FileRequest(input=clip_in, output=outside / "o.mkv")), f"output {outside / 'o.mkv'}")
    _refused(
        call(FileRequest(input=clip_in, output=allowed / "o.mkv", model=str(outside / "w.pth"))), "model file"
    )
    assert not (allowed / "o.mkv").exists() and not (outside / "o.mkv").exists()
    assert not job_out.chunk_output_path(0).exists() and not job_src_out.chunk_output_path(0).exists()


def test_default_roots_are_the_jobs_root(tmp_path: Path) -> None:
    assert Settings(cache_dir=tmp_path).endpoint_roots() == (tmp_path / "jobs",)
    aws = AwsSettings(jobs_root=tmp_path / "fsx" / "jobs")
    assert Settings(cache_dir=tmp_path, aws=aws).endpoint_roots() == (tmp_path / "fsx" / "jobs",)
    env = {"VSRFLOW_ENDPOINT_ALLOWED_ROOTS": f"/a{os.pathsep}/b", "VSRFLOW_ENDPOINT_MAX_MODELS": "2"}
    settings = Settings(cache_dir=tmp_path, endpoint=EndpointSettings.from_env(env))
    assert settings.endpoint_roots() == (Path("/a"), Path("/b")) and settings.endpoint.max_models == 2

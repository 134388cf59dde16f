"""Chunked job stages end to end with the local executor: real model, real ffmpeg, tiny clips.

The chunked result must equal the single-pass ``vsrflow upscale`` of the same source: frame count
and pts always, decoded pixels too with a lossless codec (ffv1). Resume, failure recording and
bad-input exit codes are checked through the manifest and ``vsrflow status``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.mediagen import decode_rgb, make_audio_only, make_text_file, make_video
from vsrflow.config import Settings
from vsrflow.engine.cache import UpscalerCache
from vsrflow.media.sidecar import read_sidecar
from vsrflow.workflow.job import local, stages
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.manifest import ChunkState, JobState, ManifestStore
from vsrflow.workflow.job.spec import EncoderSpec, JobSpec

MODEL = "realesr-animevideov3"
#: 80 frames at 25 fps with a 25-frame target: 3 chunks (25, 25, 30); the source's only keyframe is
#: frame 0 (x264 GOP 250), so chunks 1 and 2 decode from frame 0 and drop frames before their start.
FRAMES = 80
CHUNK = 25


@pytest.fixture(scope="module")
def env(model_env: dict[str, str]) -> dict[str, str]:
    return model_env


@pytest.fixture(scope="module")
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("src") / "clip.mp4", frames=FRAMES, audio_tracks=1)


def _submit(
    env: dict[str, str], src: Path, out: Path, root: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    root.mkdir(exist_ok=True)
    args = ["submit", str(src), "-o", str(out), "--model", MODEL, "--jobs-root", str(root), *extra]
    return run_cli(args, env)


def _only_job(root: Path) -> Path:
    (job,) = [p for p in root.iterdir() if p.is_dir()]
    return job


def _spec(src: Path, out: Path, codec: str = "ffv1") -> JobSpec:
    return JobSpec(
        source=str(src),
        destination=str(out),
        model=MODEL,
        scale=4,
        encoder=EncoderSpec(codec=codec, crf=None, preset=None),
        chunk_frames=CHUNK,
        chunk_seconds=None,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("codec", "suffix", "lossless", "workers"),
    [("ffv1", ".mkv", True, 1), ("libx264", ".mp4", False, 2)],
    ids=["ffv1-in-process", "x264-2-workers"],
)
def test_local_chain_equals_single_pass(
    env: dict[str, str], clip: Path, tmp_path: Path, codec: str, suffix: str, lossless: bool, workers: int
) -> None:
    single = tmp_path / f"single{suffix}"
    proc = run_cli(
        ["upscale", str(clip), "-o", str(single), "--model", MODEL, "--codec", codec, "--no-progress"], env
    )
    assert proc.returncode == 0, proc.stderr
    chunked = tmp_path / f"chunked{suffix}"
    root = tmp_path / "jobs"
    proc = _submit(
        env, clip, chunked, root, "--chunk-frames", str(CHUNK), "--codec", codec, "--workers", str(workers)
    )
    assert proc.returncode == 0, proc.stderr
    job = _only_job(root)
    manifest = ManifestStore(JobDir.open(root, job.name)).load()
    assert manifest.state is JobState.DONE and manifest.chunk_count == 3
    assert [c.frames for c in manifest.plan.chunks] == [25, 25, 30]  # type: ignore[union-attr]
    assert not list((job / "chunks").glob("*.nut")), "scratch is cleaned on success"

    pts_a, img_a, kinds_a = decode_rgb(single)
    pts_b, img_b, kinds_b = decode_rgb(chunked)
    assert len(pts_b) == FRAMES and pts_b == pts_a
    assert kinds_b == kinds_a == ["video", "audio"]
    if lossless:
        assert all(np.array_equal(a, b) for a, b in zip(img_a, img_b, strict=True))

    # Both paths leave the same provenance sidecar: model, scale and the guard's counts over all frames.
    made = [read_sidecar(single), read_sidecar(chunked)]
    assert made[0] is not None and made[1] is not None
    for p in made:
        assert (p.model_id, p.scale, p.guard["checked"]) == (MODEL, 4.0, FRAMES)
    assert made[0].guard["tripped"] == made[1].guard["tripped"] and made[0].colour_fix == made[1].colour_fix
    assert made[0].conditioning == made[1].conditioning and made[0].conditioning["text"] == "none"

    status = run_cli(["status", str(job)], env)
    assert status.returncode == 0 and "done" in status.stdout and "3/3" in status.stdout

    # Rerunning finished stages is a no-op (the output is not touched).
    mtime = chunked.stat().st_mtime_ns
    for stage in ("extract", "encode", "finalize"):
        proc = run_cli(["job", stage, str(job)], env)
        assert proc.returncode == 0, proc.stderr
    proc = run_cli(["job", "upscale-chunk", str(job), "--index", "1"], env)
    assert proc.returncode == 0 and "already done" in proc.stdout
    assert chunked.stat().st_mtime_ns == mtime


def test_resume_redoes_only_the_missing_chunk(settings: Settings, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    job = JobDir.create(tmp_path, _spec(clip, out))
    cache = UpscalerCache(settings)
    assert stages.extract(job) is True
    assert stages.extract(job) is False  # already planned
    assert [stages.upscale_chunk(job, i, settings, cache) for i in range(3)] == [True, True, True]
    outputs = [job.chunk_output_path(i) for i in range(3)]
    mtimes = [p.stat().st_mtime_ns for p in outputs]
    assert [stages.upscale_chunk(job, i, settings, cache) for i in range(3)] == [False, False, False]

    outputs[1].unlink()
    assert [stages.upscale_chunk(job, i, settings, cache) for i in range(3)] == [False, True, False]
    assert outputs[0].stat().st_mtime_ns == mtimes[0] and outputs[2].stat().st_mtime_ns == mtimes[2]
    store = ManifestStore(job)
    assert [r.attempts for r in store.load().records] == [1, 2, 1]

    # A changed chunk output fails its checksum and is redone, too.
    outputs[2].write_bytes(b"corrupt")
    with pytest.raises(Exception, match="not done"):
        stages.encode(job, settings)
    assert stages.upscale_chunk(job, 2, settings, cache) is True
    assert stages.encode(job, settings) is True
    assert stages.finalize(job) == "done"
    assert len(decode_rgb(out)[0]) == FRAMES


def test_encode_streams_chunks_without_a_scratch_copy(
    settings: Settings, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Encode pipes the chunks into the final mux: while it runs, scratch holds the chunks only."""
    from vsrflow.workflow.job import chunk_io

    out = tmp_path / "out.mkv"
    job = JobDir.create(tmp_path, _spec(clip, out))
    stages.extract(job)
    cache = UpscalerCache(settings)
    for i in range(3):
        stages.upscale_chunk(job, i, settings, cache)
    chunk_bytes = sum(job.chunk_output_path(i).stat().st_size for i in range(3))
    seen: list[int] = []
    real = chunk_io.stream_chunks

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        written = real(*args, **kwargs)
        # Every chunk has been streamed; ffmpeg is still muxing. Nothing but chunks is stored.
        seen.append(sum(p.stat().st_size for p in job.path.rglob("*") if p.is_file()))
        return written

    monkeypatch.setattr(chunk_io, "stream_chunks", spy)
    assert stages.encode(job, settings) is True
    # One streaming per mux: a second one when the first mux moved the video against the AAC
    # audio (ffmpeg 5.1's Matroska muxer and the priming; media.assemble compensates).
    assert len(seen) in (1, 2) and max(seen) < chunk_bytes + 64 * 1024, (seen, chunk_bytes)
    assert len(decode_rgb(out)[0]) == FRAMES


def test_encode_failure_keeps_the_chunks_for_resume(settings: Settings, clip: Path, tmp_path: Path) -> None:
    """ffmpeg dying under the chunk stream: the job fails with ffmpeg's reason, chunks stay, resume works."""
    from dataclasses import replace

    out = tmp_path / "out.mkv"
    job = JobDir.create(tmp_path, _spec(clip, out))
    broken = replace(settings, ffmpeg="false")  # exits 1 at once: the feed hits a closed pipe
    with pytest.raises(Exception, match="exited with code 1"):
        local.run_local(job, broken)
    manifest = ManifestStore(job).load()
    assert manifest.state is JobState.FAILED and manifest.reason is not None
    assert manifest.reason.startswith("encode: ExternalToolError")
    assert all(job.chunk_output_path(i).is_file() for i in range(3))
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    assert local.run_local(job, settings) == "done"
    assert [r.attempts for r in ManifestStore(job).load().records] == [1, 1, 1]  # no chunk redone
    assert len(decode_rgb(out)[0]) == FRAMES


def test_short_clip_to_mp4_keeps_every_frame(settings: Settings, tmp_path: Path) -> None:
    """A 10-frame clip (audio shorter than video) into MP4: the joined stream must carry frame
    durations, or the MP4 mux leaves the last frame without one and it is lost (regression)."""
    src = make_video(tmp_path / "short.mp4", frames=10, audio_tracks=1)
    out = tmp_path / "short_x4.mp4"
    job = JobDir.create(tmp_path, _spec(src, out, codec="libx264"))
    assert local.run_local(job, settings) == "done"
    pts_src = decode_rgb(src)[0]
    pts_out, _, kinds = decode_rgb(out)
    assert len(pts_out) == 10 and kinds == ["video", "audio"]
    assert pts_out == pts_src  # the MP4 keeps the source time base (video_track_timescale)


def test_failed_chunk_is_recorded_and_resumed(
    env: dict[str, str], settings: Settings, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.mkv"
    job = JobDir.create(tmp_path, _spec(clip, out))
    real = stages._run_chunk

    def flaky(job_: JobDir, chunk, *args, **kwargs):  # type: ignore[no-untyped-def]
        if chunk.index == 1:
            raise RuntimeError("injected GPU fault")
        return real(job_, chunk, *args, **kwargs)

    monkeypatch.setattr(stages, "_run_chunk", flaky)
    with pytest.raises(RuntimeError, match="injected"):
        local.run_local(job, settings)
    manifest = ManifestStore(job).load()
    assert manifest.state is JobState.FAILED
    assert (
        manifest.reason is not None
        and "chunk 1" in manifest.reason
        and "injected GPU fault" in manifest.reason
    )
    assert manifest.records[1].state is ChunkState.FAILED
    assert job.chunk_output_path(0).is_file(), "done chunks are kept for resume"
    assert not out.exists()

    status = run_cli(["status", str(job.path)], env)
    assert status.returncode == 0
    assert "failed: chunk 1" in status.stdout and "chunk 1 failed" in status.stdout
    assert "injected GPU fault" in status.stdout

    monkeypatch.setattr(stages, "_run_chunk", real)
    assert local.run_local(job, settings) == "done"
    assert [r.attempts for r in ManifestStore(job).load().records] == [1, 2, 1]  # only chunk 1 redone
    assert len(decode_rgb(out)[0]) == FRAMES


def test_bad_inputs_exit_2(env: dict[str, str], clip: Path, tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    proc = _submit(env, clip, tmp_path / "a.mkv", root, "--chunk-frames", "0")
    assert proc.returncode == 2 and "chunk_frames" in proc.stderr

    for bad in (make_text_file(tmp_path / "text.mp4"), make_audio_only(tmp_path / "audio.mp4")):
        proc = _submit(env, bad, tmp_path / f"{bad.stem}.mkv", root / bad.stem, "--chunk-frames", "25")
        assert proc.returncode == 2, proc.stderr
        assert str(bad) in proc.stderr
        # Refused at submission (the source is probed there, as `upscale` does): no job is created.
        assert not any(p.is_dir() for p in (root / bad.stem).iterdir())

    proc = run_cli(["status", str(tmp_path / "no-such-job")], env)
    assert proc.returncode == 2


def test_the_same_source_to_a_second_destination_is_its_own_job(env: dict[str, str], tmp_path: Path) -> None:
    """`submit in -o a.mkv` then `submit in -o b.mkv`: two jobs, two outputs, never refused."""
    src = make_video(tmp_path / "in.mp4", size=(32, 24), frames=CHUNK)
    root = tmp_path / "jobs"
    outputs = [tmp_path / "a.mkv", tmp_path / "b.mkv"]
    for out in outputs:
        proc = _submit(env, src, out, root, "--chunk-frames", str(CHUNK), "--codec", "ffv1")
        assert proc.returncode == 0, proc.stderr
        assert f"wrote {out}" in proc.stdout
    assert all(len(decode_rgb(out)[0]) == CHUNK for out in outputs)
    assert len([p for p in root.iterdir() if p.is_dir()]) == 2

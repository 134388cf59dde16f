"""The SageMaker inference contract: ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``.

These run inside the Multi Model Server's Python worker (one worker per endpoint, so one loaded
model per GPU). ``model_fn`` loads the model named by the endpoint spec (:mod:`vsrflow.serving.spec`)
onto the endpoint's device and warms it with one forward pass. ``predict_fn`` reuses the
workflow's own chunk code (:func:`vsrflow.workflow.stages.run_chunk`) and the engine of
``vsrflow upscale``, so endpoint output is byte-for-byte the in-process output.

Errors: :class:`~vsrflow.serving.protocol.RequestError` carries its 4xx status; an
:class:`~vsrflow.errors.InputError` from the stages (missing job dir, bad source) is a 400, a
:class:`~vsrflow.errors.TransientError` a 503 and anything else a 500 (see :mod:`vsrflow.serving.toolkit`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vsrflow.config import Settings
from vsrflow.errors import InputError
from vsrflow.serving import protocol
from vsrflow.serving.protocol import ChunkRequest, FileRequest, FramesRequest, Request, bad_request
from vsrflow.serving.spec import EndpointSpec
from vsrflow.workflow import stages
from vsrflow.workflow.jobspec import EncoderSpec, JobSpec

log = logging.getLogger("vsrflow.serving")

#: Side of the square frame ``model_fn`` pushes through the model once (kernels, allocator).
WARM_SIDE = 64


class EndpointCache(stages.UpscalerCache):
    """An :class:`~vsrflow.workflow.stages.UpscalerCache` pinned to the endpoint's model.

    Jobs naming the model by preset or by id share one loaded copy per scale.
    """

    def __init__(self, settings: Settings, model_id: str) -> None:
        super().__init__(settings)
        self.model_id = model_id
        self.loads = 0

    def get(self, spec: JobSpec) -> Any:
        pinned = dataclasses.replace(spec, model=self.model_id, preset=None)
        key = (pinned.model, pinned.preset, pinned.scale, self.settings.device)
        if key not in self._cache:
            self.loads += 1
        return super().get(pinned)


@dataclass
class EndpointModel:
    """What ``model_fn`` returns: the spec, settings and the loaded model cache."""

    spec: EndpointSpec
    settings: Settings
    cache: EndpointCache
    requests: int = 0
    warm_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def upscaler(self, scale: float) -> Any:
        return self.cache.get(_dummy_spec(self.spec.model, scale))


def _dummy_spec(model: str, scale: float, encoder: EncoderSpec | None = None) -> JobSpec:
    # A spec only to key the cache and carry model/scale; the paths are never opened.
    return JobSpec(
        source="/dev/null/in",
        destination="/dev/null/out",
        model=model,
        scale=scale,
        encoder=encoder or EncoderSpec(),
    )


# ---- the four handler functions ---------------------------------------------------------------


def model_fn(model_dir: str, context: Any = None) -> EndpointModel:
    """Load the endpoint's model on its device and run one warm-up forward pass."""
    spec = EndpointSpec.read(model_dir)
    settings = dataclasses.replace(Settings.from_env(), cache_dir=spec.cache_dir, device=spec.device)
    gpu_id = None if context is None else getattr(context, "system_properties", {}).get("gpu_id")
    t0 = time.monotonic()
    model = EndpointModel(spec=spec, settings=settings, cache=EndpointCache(settings, spec.model))
    upscaler = model.upscaler(spec.scale)
    upscaler.upscale_frames(np.zeros((1, WARM_SIDE, WARM_SIDE, 3), np.uint8))
    model.warm_seconds = time.monotonic() - t0
    model.info = {"model": spec.model, "device": str(upscaler.device), "dtype": str(upscaler.dtype)}
    log.info(
        "endpoint :%d loaded %s on %s (%s; server gpu_id %s) in %.2f s",
        spec.port, spec.model, upscaler.device, upscaler.dtype, gpu_id, model.warm_seconds,
    )  # fmt: skip
    return model


def input_fn(input_data: bytes | str, content_type: str, context: Any = None) -> Request:
    """Parse the request body (415 for an unsupported content type, 400 for a malformed body)."""
    return protocol.parse_request(input_data, content_type)


def predict_fn(data: Request, model: EndpointModel, context: Any = None) -> dict[str, Any] | np.ndarray:
    """Run one request; returns JSON stats (chunk/file) or the upscaled frames (npy)."""
    model.requests += 1
    if isinstance(data, ChunkRequest):
        return _predict_chunk(data, model)
    if isinstance(data, FileRequest):
        return _predict_file(data, model)
    if isinstance(data, FramesRequest):
        result: np.ndarray = model.upscaler(model.spec.scale).upscale_frames(data.frames)
        return result
    raise bad_request(f"unsupported request {type(data).__name__}")


def output_fn(prediction: dict[str, Any] | np.ndarray, accept: str, context: Any = None) -> tuple[bytes, str]:
    """Serialize: stats as JSON, frames as ``application/x-npy``."""
    if isinstance(prediction, np.ndarray):
        return protocol.encode_npy(prediction), protocol.NPY
    return json.dumps(prediction, sort_keys=True).encode("utf-8"), protocol.JSON


# ---- requests ---------------------------------------------------------------------------------


def _check_model(model: EndpointModel, requested: str | None, precision: str | None) -> None:
    if requested is not None and requested != model.spec.model:
        raise bad_request(
            f"unknown model {requested!r}: this endpoint serves {model.spec.model}",
            hint="call the endpoint started for that model, or start one with `vsrflow serve --model`",
        )
    if precision is not None and precision != model.spec.precision:
        raise bad_request(
            f"precision {precision!r} is not served: this endpoint runs {model.spec.precision}",
            hint="omit precision, or start an endpoint with that precision",
        )


def _job_model(spec: JobSpec, model: EndpointModel) -> str:
    from vsrflow.models.registry import resolve
    from vsrflow.models.store import WeightStore

    native = int(spec.scale) if float(spec.scale).is_integer() else None
    store = WeightStore(model.settings.weights_dir)
    return resolve(spec.model, spec.preset, scale=native, available=store.has).id


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _predict_chunk(req: ChunkRequest, model: EndpointModel) -> dict[str, Any]:
    from vsrflow.workflow.jobmanifest import ManifestStore

    _check_model(model, req.model, req.precision)
    if not req.job_dir.is_dir():
        raise bad_request(f"job_dir {req.job_dir} does not exist on this node", "check the shared mount")
    job = stages.job_from_path(req.job_dir)
    spec = job.read_spec()
    wanted = _job_model(spec, model)
    if wanted != model.spec.model:
        raise bad_request(
            f"unknown model {wanted!r} (job {job.job_id}): this endpoint serves {model.spec.model}",
            hint="route the job to an endpoint serving its model",
        )
    if req.scale is not None and req.scale != spec.scale:
        raise bad_request(f"scale {req.scale} differs from the job's scale {spec.scale}")
    manifest = ManifestStore(job).load()
    if manifest.plan is None or not req.index < manifest.chunk_count:
        raise bad_request(f"job {job.job_id}: no chunk {req.index} (the plan has {manifest.chunk_count})")
    chunk = manifest.plan.chunks[req.index]
    output = req.output or stages.chunk_output(job, req.index)
    if not _inside(output, job.path):
        raise bad_request(f"output {output} is outside the job directory {job.path}")
    source = stages.local_path(spec.source, "source")
    if not source.is_file():
        raise bad_request(f"input {source} (job {job.job_id} source) does not exist on this node")
    t0 = time.monotonic()
    stages.run_chunk(job, chunk, output, model.settings, model.cache)
    seconds = time.monotonic() - t0
    return {
        "kind": "chunk",
        "job_id": job.job_id,
        "index": req.index,
        "output": str(output),
        "bytes": output.stat().st_size,
        **_stats(model, chunk.frames, seconds, spec.scale),
    }


def _predict_file(req: FileRequest, model: EndpointModel) -> dict[str, Any]:
    from vsrflow.engine.pipeline import upscale_video
    from vsrflow.media.writer import EncoderOptions

    _check_model(model, req.model, req.precision)
    if not req.input.is_file():
        raise bad_request(f"input {req.input} does not exist on this node", "check the shared mount")
    if not req.output.parent.is_dir():
        raise bad_request(f"output directory {req.output.parent} does not exist")
    try:
        enc = EncoderSpec(**req.encoder) if req.encoder else EncoderSpec()
    except (InputError, TypeError) as err:
        raise bad_request(f"encoder: {err}") from err
    scale = model.spec.scale if req.scale is None else req.scale
    upscaler = model.upscaler(scale)
    options = EncoderOptions(codec=enc.codec, crf=enc.crf, preset=enc.preset, pix_fmt=enc.pix_fmt)
    t0 = time.monotonic()
    ffmpeg = model.settings.ffmpeg
    result = upscale_video(
        req.input, req.output, upscaler=upscaler, encoder=options, progress=False, ffmpeg=ffmpeg
    )
    seconds = time.monotonic() - t0
    return {"kind": "file", "output": str(req.output), **_stats(model, result.frames, seconds, scale)}


def _stats(model: EndpointModel, frames: int, seconds: float, scale: float) -> dict[str, Any]:
    return {
        "frames": frames,
        "seconds": round(seconds, 6),
        "fps": round(frames / max(seconds, 1e-9), 3),
        "device": model.info.get("device", model.spec.device),
        "model": model.spec.model,
        "scale": scale,
        "model_loads": model.cache.loads,
        "requests": model.requests,
    }

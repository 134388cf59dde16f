"""The SageMaker inference contract: ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``.

These run inside the Multi Model Server's Python worker (one worker per endpoint, one endpoint per
GPU). ``model_fn`` loads the model named by the endpoint spec (:mod:`vsrflow.serving.spec`) onto
the endpoint's device and warms it with one forward pass. The endpoint also serves every other
registry model (or weight file) whose weights it has: a request naming one (or a job whose preset
resolves to one) loads it on first use and keeps it (one load per model, at most
``VSRFLOW_ENDPOINT_MAX_MODELS`` networks, least recently used dropped first; other scales are cheap
views of the loaded network). A model without weights here is a 400 naming the command that
fetches them. ``predict_fn`` reuses the workflow's own chunk code
(:func:`vsrflow.workflow.job.stages.run_chunk`) and the engine of ``vsrflow upscale``, so endpoint
output is byte-for-byte the in-process output.

Paths: job dirs, job sources, input/output files and weight files given as a model must lie (after
resolving symlinks) inside the endpoint's allowed roots (:meth:`vsrflow.config.Settings.endpoint_roots`,
``VSRFLOW_ENDPOINT_ALLOWED_ROOTS``): endpoints run on shared nodes, so a request may not make
them read or write anything else (400 naming the path and the setting).

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
from vsrflow.engine.cache import UpscalerCache
from vsrflow.errors import InputError
from vsrflow.serving import protocol
from vsrflow.serving.protocol import ChunkRequest, FileRequest, FramesRequest, Request, bad_request
from vsrflow.serving.spec import EndpointSpec
from vsrflow.workflow.job import stages
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.spec import EncoderSpec, JobSpec

log = logging.getLogger("vsrflow.serving")

#: Side of the square frame ``model_fn`` pushes through the model once (kernels, allocator).
WARM_SIDE = 64

#: The setting that widens what an endpoint may touch (named in refusals).
ROOTS_SETTING = "VSRFLOW_ENDPOINT_ALLOWED_ROOTS"


class EndpointCache(UpscalerCache):
    """The endpoint's loaded models: an :class:`~vsrflow.engine.cache.UpscalerCache` bounded to
    ``settings.endpoint.max_models`` networks (``loads`` counts model loads over the endpoint's life)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, max_models=settings.endpoint.max_models)


@dataclass
class EndpointModel:
    """What ``model_fn`` returns: the spec, settings, the model cache and the allowed roots.

    ``configured`` is the registry entry of ``spec.model`` (served when a request names none);
    ``roots`` are the resolved directories requests may read and write.
    """

    spec: EndpointSpec
    settings: Settings
    cache: EndpointCache
    configured: Any = None
    roots: tuple[Path, ...] = ()
    requests: int = 0
    warm_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def upscaler(self, scale: float, model: Any = None) -> Any:
        """An Upscaler of ``model`` (a ModelSpec; default the configured one) at ``scale``."""
        return self.cache.upscaler(self.configured if model is None else model, scale)


# ---- the four handler functions ---------------------------------------------------------------


def model_fn(model_dir: str, context: Any = None) -> EndpointModel:
    """Load the endpoint's model on its device and run one warm-up forward pass."""
    from vsrflow.models.registry import get_spec

    spec = EndpointSpec.read(model_dir)
    settings = dataclasses.replace(Settings.from_env(), cache_dir=spec.cache_dir, device=spec.device)
    gpu_id = None if context is None else getattr(context, "system_properties", {}).get("gpu_id")
    t0 = time.monotonic()
    roots = tuple(root.expanduser().resolve() for root in settings.endpoint_roots())
    model = EndpointModel(
        spec=spec,
        settings=settings,
        cache=EndpointCache(settings),
        configured=get_spec(spec.model),
        roots=roots,
    )
    upscaler = model.upscaler(spec.scale)
    upscaler.upscale_frames(np.zeros((1, WARM_SIDE, WARM_SIDE, 3), np.uint8))
    upscaler.reset()  # the warm-up frame is no clip's history
    model.warm_seconds = time.monotonic() - t0
    model.info = {"model": spec.model, "device": str(upscaler.device), "dtype": str(upscaler.dtype)}
    log.info(
        "endpoint :%d loaded %s on %s (%s; server gpu_id %s) in %.2f s; serves paths under %s",
        spec.port, spec.model, upscaler.device, upscaler.dtype, gpu_id, model.warm_seconds,
        ", ".join(map(str, roots)),
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
        upscaler = model.upscaler(model.spec.scale)
        # Unrelated requests: a temporal model must not carry one request's state into the next.
        upscaler.reset()
        result: np.ndarray = upscaler.upscale_frames(data.frames)
        return result
    raise bad_request(f"unsupported request {type(data).__name__}")


def output_fn(prediction: dict[str, Any] | np.ndarray, accept: str, context: Any = None) -> tuple[bytes, str]:
    """Serialize: stats as JSON, frames as ``application/x-npy``."""
    if isinstance(prediction, np.ndarray):
        return protocol.encode_npy(prediction), protocol.NPY
    return json.dumps(prediction, sort_keys=True).encode("utf-8"), protocol.JSON


# ---- requests ---------------------------------------------------------------------------------


def _check_precision(model: EndpointModel, precision: str | None) -> None:
    if precision is not None and precision != model.spec.precision:
        raise bad_request(
            f"precision {precision!r} is not served: this endpoint runs {model.spec.precision}",
            hint="omit precision, or start an endpoint with that precision",
        )


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _allowed(model: EndpointModel, path: Path, what: str, extra: tuple[Path, ...] = ()) -> Path:
    """``path`` with symlinks resolved; 400 unless it lies inside the endpoint's allowed roots."""
    resolved = path.resolve()
    roots = model.roots + extra
    if not any(_inside(resolved, root) for root in roots):
        shown = f" (-> {resolved})" if resolved != path else ""
        raise bad_request(
            f"{what} {path}{shown} is outside this endpoint's allowed roots {', '.join(map(str, roots))}",
            hint=f"put it under one of them, or add its directory to {ROOTS_SETTING} where the endpoint runs",
        )
    return resolved


def _require_weights(model: EndpointModel, entry: Any) -> Any:
    """``entry`` (a ModelSpec) when this endpoint can load it; 400 naming how to get its weights."""
    from vsrflow.models.store import WeightStore, how_to_get

    store = WeightStore(model.settings.weights_dir)
    if entry.path is None and not store.has(entry):
        raise bad_request(
            f"model {entry.id!r}: no weights in this endpoint's weight store {store.root}",
            hint=f"{how_to_get(entry)} with VSRFLOW_CACHE_DIR={model.settings.cache_dir} where it runs",
        )
    return entry


def _model_entry(model: EndpointModel, name: str) -> Any:
    """The registry entry (or weight file) ``name`` a request asks for, if this endpoint has it."""
    from vsrflow.models.registry import get_spec, looks_like_path

    if looks_like_path(name):  # a weight file: checked before anything reads it
        weights = (model.settings.weights_dir.resolve(),)
        name = str(_allowed(model, Path(name), "model file", extra=weights))
    return _require_weights(model, get_spec(name))


def _same(a: Any, b: Any) -> bool:
    return bool(a.id == b.id and a.path == b.path)


def _job_model(spec: JobSpec, model: EndpointModel) -> Any:
    """The model a job runs: the one its spec names (resolved when the job was created)."""
    return _model_entry(model, spec.model)


def _predict_chunk(req: ChunkRequest, model: EndpointModel) -> dict[str, Any]:
    from vsrflow.workflow.job.manifest import ManifestStore

    _check_precision(model, req.precision)
    job_dir = _allowed(model, req.job_dir, "job_dir")
    if not job_dir.is_dir():
        raise bad_request(f"job_dir {req.job_dir} does not exist on this node", "check the shared mount")
    job = JobDir.at(job_dir)
    spec = job.spec
    wanted = _job_model(spec, model)
    if req.model is not None and not _same(_model_entry(model, req.model), wanted):
        raise bad_request(f"model {req.model!r} differs from job {job.job_id}'s model {wanted.id}")
    if req.scale is not None and req.scale != spec.scale:
        raise bad_request(f"scale {req.scale} differs from the job's scale {spec.scale}")
    manifest = ManifestStore(job).load()
    if manifest.plan is None or not req.index < manifest.chunk_count:
        raise bad_request(f"job {job.job_id}: no chunk {req.index} (the plan has {manifest.chunk_count})")
    chunk = manifest.plan.chunks[req.index]
    output = req.output or job.chunk_output_path(req.index)
    if not _inside(output, job.path):
        raise bad_request(f"output {output} is outside the job directory {job.path}")
    source = _allowed(model, stages.local_path(spec.source, "source"), f"source of job {job.job_id}")
    if not source.is_file():
        raise bad_request(f"input {source} (job {job.job_id} source) does not exist on this node")
    t0 = time.monotonic()
    result = stages.run_chunk(job, chunk, output, model.settings, model.cache)
    seconds = time.monotonic() - t0
    return {
        "kind": "chunk",
        "job_id": job.job_id,
        "index": req.index,
        "output": str(output),
        "bytes": output.stat().st_size,
        "guard": result.guard.to_json(),
        **_stats(model, result.frames, seconds, spec.scale, wanted.id),
    }


def _predict_file(req: FileRequest, model: EndpointModel) -> dict[str, Any]:
    from vsrflow.engine.pipeline import upscale_video
    from vsrflow.media.writer import EncoderOptions

    _check_precision(model, req.precision)
    source = _allowed(model, req.input, "input")
    target = _allowed(model, req.output, "output")
    if not source.is_file():
        raise bad_request(f"input {req.input} does not exist on this node", "check the shared mount")
    if not target.parent.is_dir():
        raise bad_request(f"output directory {req.output.parent} does not exist")
    entry = model.configured if req.model is None else _model_entry(model, req.model)
    try:
        enc = EncoderSpec(**req.encoder) if req.encoder else EncoderSpec()
    except (InputError, TypeError) as err:
        raise bad_request(f"encoder: {err}") from err
    default = model.spec.scale if _same(entry, model.configured) else float(entry.scale)
    scale = default if req.scale is None else req.scale
    upscaler = model.upscaler(scale, entry)
    options = EncoderOptions(codec=enc.codec, crf=enc.crf, preset=enc.preset, pix_fmt=enc.pix_fmt)
    t0 = time.monotonic()
    ffmpeg = model.settings.ffmpeg
    result = upscale_video(source, target, upscaler=upscaler, encoder=options, progress=False, ffmpeg=ffmpeg)
    seconds = time.monotonic() - t0
    return {
        "kind": "file",
        "output": str(req.output),
        "guard": result.guard.to_json(),
        **_stats(model, result.frames, seconds, scale, entry.id),
    }


def _stats(model: EndpointModel, frames: int, seconds: float, scale: float, model_id: str) -> dict[str, Any]:
    return {
        "frames": frames,
        "seconds": round(seconds, 6),
        "fps": round(frames / max(seconds, 1e-9), 3),
        "device": model.info.get("device", model.spec.device),
        "model": model_id,
        "scale": scale,
        "model_loads": model.cache.loads,
        "requests": model.requests,
    }

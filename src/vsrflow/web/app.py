"""The application factory of ``vsrflow ui``: pages, the JSON API and the live job events.

Pages (jinja2, one template each): ``/`` upload, ``/jobs`` the job list, ``/jobs/<id>`` compare.
API (JSON; every write needs the CSRF header, see :mod:`vsrflow.web.security`):

* local mode: ``PUT /api/uploads?name=N`` (raw body: the file) -> the probe and estimates;
  ``POST /api/jobs`` ``{upload_id, model, scale, container}`` -> the job id, run here.
* AWS modes: ``POST /api/s3/uploads`` ``{name, folder, size}`` -> presigned part URLs for
  ``uploads/<folder>/<name>``; ``POST /api/s3/uploads/complete`` ``{key, upload_id, parts}``;
  ``GET /api/s3/uploads/facts?key=K`` -> the probe of the stored object (headers and first
  frames, through a presigned GET) and the time at one GPU's compute ceiling.
  The bucket's upload event starts the job.
* every mode: ``GET /api/jobs``, ``GET /api/jobs/<id>``, ``GET /api/events`` (server-sent events:
  the job list whenever it changes), ``GET /api/jobs/<id>/media/{source,result}``,
  ``GET /api/jobs/<id>/frame?which=source|result&t=SECONDS`` (PNG), ``GET /api/jobs/<id>/download``;
  ``POST /api/previews`` / ``GET /api/previews/<id>`` (local mode).

Failures reach the page as ``{"error": message, "hint": hint}`` with 400 (bad input), 404, 413
(too large) or 500, never as a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from vsrflow.config import Settings
from vsrflow.errors import InputError, VsrError
from vsrflow.formats import OUTPUT_SUFFIXES
from vsrflow.web import uploads
from vsrflow.web.jobs import PROBE_FILE, LocalJobs, LocalRunner, S3Jobs
from vsrflow.web.security import Access, Guard

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
#: Seconds between two looks at the job records for the event streams (shared by every open page):
#: local job directories, and the bucket's status objects (one LIST, a GET per changed job).
EVENT_PERIOD_S = 1.0
S3_EVENT_PERIOD_S = 3.0
#: Scales offered on the page.
SCALES = (2.0, 4.0)
#: The preset of a job started without a model (the CLI's default too).
DEFAULT_PRESET = "fidelity"


@dataclass
class UiConfig:
    """What the server serves.

    Attributes:
        mode: ``local``, ``local-stack`` or ``aws``.
        settings: the process settings (weights, ffmpeg; ``aws`` for the S3 modes).
        state_dir: the page's own files: ``uploads/``, ``outputs/``, ``frames/``, ``previews/``.
        jobs_root: local job directories (default ``<cache dir>/jobs``, as ``vsrflow submit``).
        max_upload: largest upload in bytes (local mode; the AWS modes use
            ``settings.aws.max_object_bytes``, the trigger's own limit).
        access: the security rules. chunk_seconds: chunk length of local jobs.
    """

    mode: str
    settings: Settings
    state_dir: Path
    jobs_root: Path
    max_upload: int = uploads.DEFAULT_MAX_UPLOAD_BYTES
    access: Access = field(default_factory=Access)
    chunk_seconds: float | None = None
    s3: Any = None


def _error(err: Exception, status: int = 400) -> JSONResponse:
    if isinstance(err, InputError):
        code = 413 if isinstance(err, uploads.TooLarge) else status
        return JSONResponse({"error": err.message, "hint": err.hint}, status_code=code)
    if isinstance(err, VsrError):
        return JSONResponse({"error": err.message, "hint": err.hint}, status_code=500)
    log.exception("internal error")
    return JSONResponse({"error": f"internal error: {type(err).__name__}: {err}", "hint": None}, 500)


Handler = Callable[[Request], Awaitable[Response]]


def _api(fn: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except Exception as err:
            return _error(err)

    return wrapped


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError as err:
        raise InputError("the request body is not JSON", hint="send a JSON object") from err
    if not isinstance(data, dict):
        raise InputError("the request body is not a JSON object", hint="send a JSON object")
    return data


def create_app(config: UiConfig) -> Any:
    """The ASGI application (Starlette inside the :class:`~vsrflow.web.security.Guard`)."""
    settings = config.settings
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
    )
    runner = LocalRunner(settings) if config.mode == "local" else None
    jobs: LocalJobs | S3Jobs
    if config.mode == "local":
        jobs = LocalJobs(config.jobs_root, runner)
        if runner is not None:
            for job in jobs.interrupted(config.state_dir / "uploads"):
                log.info("job %s: interrupted by a restart; resuming", job.job_id)
                runner.submit(job)
    else:
        jobs = S3Jobs(config.s3, _bucket(settings))
    uploads_dir = config.state_dir / "uploads"
    outputs_dir = config.state_dir / "outputs"
    frames_dir = config.state_dir / "frames"

    def models() -> list[dict[str, Any]]:
        from vsrflow.bench.flops import MFLOP_PER_PX
        from vsrflow.models.registry import all_specs
        from vsrflow.models.store import WeightStore

        store = WeightStore(settings.weights_dir)
        return [
            {
                "id": s.id,
                "scale": s.scale,
                "mflop_per_px": MFLOP_PER_PX.get(s.id),
                "description": s.description,
            }
            for s in all_specs()
            if store.has(s)
        ]

    def page(name: str, request: Request, **extra: Any) -> HTMLResponse:
        presets = [{"folder": f, "preset": p, "scale": s} for f, p, s in settings.aws.presets]
        context = {
            "mode": config.mode,
            "csrf": request.scope["state"]["csrf"],
            "presets": presets,
            "scales": SCALES,
            "containers": OUTPUT_SUFFIXES,
            "max_upload": config.max_upload if config.mode == "local" else settings.aws.max_object_bytes,
            **extra,
        }
        return HTMLResponse(templates.get_template(name).render(**context))

    async def index(request: Request) -> Response:
        listed = await run_in_threadpool(models)
        # The preview offers the cheapest models first (its default picks are the first two).
        cheap = sorted(listed, key=lambda m: (m["mflop_per_px"] is None, m["mflop_per_px"] or 0.0))
        return page("upload.html", request, models=listed, preview_models=cheap)

    async def jobs_page(request: Request) -> Response:
        return page("jobs.html", request)

    async def compare_page(request: Request) -> Response:
        try:
            view = await run_in_threadpool(jobs.view, request.path_params["job_id"])
        except InputError as err:
            return HTMLResponse(f"<p>{_html(err.message)}</p>", status_code=404)
        return page("compare.html", request, job=view, models=await run_in_threadpool(models))

    # ---- local uploads and jobs -------------------------------------------------------------

    @_api
    async def put_upload(request: Request) -> Response:
        if config.mode != "local":
            raise InputError("this server uploads straight to S3", hint="use the page's upload button")
        name = uploads.safe_name(request.query_params.get("name", ""))
        declared = request.headers.get("content-length", "")
        upload_id = uploads.new_upload_id()
        path = uploads_dir / upload_id / name
        size = int(declared) if declared.isdigit() else None  # absent with chunked bodies: counted instead
        await uploads.store(request.stream(), path, config.max_upload, size)
        try:
            described = await run_in_threadpool(uploads.describe, path)
        except InputError:
            await run_in_threadpool(_remove_upload, path.parent)
            raise
        summary = described.to_json()
        (path.parent / PROBE_FILE).write_text(json.dumps(summary), encoding="utf-8")
        estimates = await run_in_threadpool(_estimates, summary)
        defaults = await run_in_threadpool(_default_models)
        return JSONResponse(
            {"upload_id": upload_id, "probe": summary, "estimates": estimates, "default_models": defaults}
        )

    def _default_models() -> dict[str, str | None]:
        """The model the default preset picks at each offered scale (what the job will record)."""
        from vsrflow.workflow.job.submit import choose_model

        out: dict[str, str | None] = {}
        for scale in SCALES:
            try:
                out[str(scale)] = choose_model(None, DEFAULT_PRESET, scale, settings)
            except InputError:
                out[str(scale)] = None
        return out

    def _estimates(summary: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for model in models():
            measured = jobs.measured_mflops(model["id"]) if isinstance(jobs, LocalJobs) else None
            seconds, basis = uploads.estimate_seconds(
                model["id"], summary["width"], summary["height"], summary["frames"], measured
            )
            out[model["id"]] = {"seconds": None if seconds is None else round(seconds, 1), "basis": basis}
        return out

    @_api
    async def post_job(request: Request) -> Response:
        if config.mode != "local" or runner is None or not isinstance(jobs, LocalJobs):
            raise InputError("jobs start from the upload itself in this mode", hint="upload the file")
        body = await _json_body(request)
        job_id = await run_in_threadpool(_start_local, body, runner, jobs)
        return JSONResponse({"job_id": job_id})

    def _start_local(body: dict[str, Any], runner: LocalRunner, jobs: LocalJobs) -> str:
        from vsrflow.media.condition import DEINTERLACE_MODES
        from vsrflow.media.prefilter import PRESETS as PREFILTER_PRESETS
        from vsrflow.media.prefilter import PrefilterRequest
        from vsrflow.workflow.job.manifest import ManifestStore
        from vsrflow.workflow.job.spec import EncoderSpec
        from vsrflow.workflow.job.state import JobState
        from vsrflow.workflow.job.submit import PathJobRequest, create_path_job

        upload_id = uploads.check_upload_id(str(body.get("upload_id", "")))
        folder = uploads_dir / upload_id
        names = [p for p in folder.iterdir() if p.name != PROBE_FILE] if folder.is_dir() else []
        if len(names) != 1:
            raise InputError(f"upload {upload_id} not found", hint="upload the file again")
        source = names[0]
        from vsrflow.models.registry import PRESETS, REGISTRY

        model = body.get("model") or None
        preset = body.get("preset") or None
        if model is not None and model not in REGISTRY:  # never a path: the browser names no files
            raise InputError(f"model {model!r} is not a known model id", hint="pick one from the list")
        if preset is not None and preset not in PRESETS:
            raise InputError(f"preset {preset!r} is not a known preset", hint=f"one of {', '.join(PRESETS)}")
        scale = _scale(body.get("scale", 2))
        container = str(body.get("container") or "")
        if container not in OUTPUT_SUFFIXES:
            raise InputError(
                f"container {container!r} is not offered", hint=f"one of {', '.join(OUTPUT_SUFFIXES)}"
            )
        deinterlace = str(body.get("deinterlace") or "frame")
        if deinterlace not in DEINTERLACE_MODES:
            raise InputError(
                f"deinterlace {deinterlace!r} is not offered", hint=f"one of {', '.join(DEINTERLACE_MODES)}"
            )
        prefilter = str(body.get("prefilter") or "off")
        if prefilter not in PREFILTER_PRESETS:
            raise InputError(
                f"pre-filter {prefilter!r} is not offered", hint=f"one of {', '.join(PREFILTER_PRESETS)}"
            )
        video_stream = _stream_index(body.get("video_stream"))
        tag = model or preset or "default"
        stem = source.name[: len(source.name) - len(uploads.suffix_of(source.name))]
        output = outputs_dir / upload_id / f"{stem}_x{scale:g}_{uploads.safe_tag(str(tag))}{container}"
        output.parent.mkdir(parents=True, exist_ok=True)
        request = PathJobRequest(
            source=source,
            output=output,
            model=str(model) if model else None,
            preset=str(preset) if preset and not model else DEFAULT_PRESET if not model else None,
            scale=scale,
            encoder=EncoderSpec(),
            chunk_seconds=config.chunk_seconds,
            overwrite=True,  # the output path is the page's own: a repeat re-opens the same job
            deinterlace=deinterlace,
            video_stream=video_stream,
            prefilter=PrefilterRequest(preset=prefilter),
        )
        job = create_path_job(request, config.jobs_root, settings)
        store = ManifestStore(job)
        state = store.load().state if store.exists() else None
        # Anything but done runs (again): a failed or interrupted job resumes from its done chunks.
        if state is not JobState.DONE and job.job_id not in runner.active:
            runner.submit(job)
        return job.job_id

    # ---- AWS uploads ------------------------------------------------------------------------

    @_api
    async def s3_create(request: Request) -> Response:
        from vsrflow.aws.presign import start_multipart

        if config.mode == "local":
            raise InputError("this server stores uploads itself", hint="use the page's upload button")
        body = await _json_body(request)
        aws = settings.aws
        folder = str(body.get("folder", ""))
        if aws.preset_for(folder) is None:
            known = ", ".join(f for f, _, _ in aws.presets)
            raise InputError(f"preset folder {folder!r} is not configured", hint=f"one of {known}")
        name = uploads.safe_name(str(body.get("name", "")), aws.suffixes)
        size = body.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InputError(f"size {size!r} is not a byte count", hint="send the file's size")
        if size > aws.max_object_bytes:
            raise uploads.too_large(size, aws.max_object_bytes)
        key = f"{aws.upload_prefixes[0]}{folder}/{name}"
        plan = await run_in_threadpool(start_multipart, config.s3, _bucket(settings), key, size)
        return JSONResponse(
            {
                "key": plan.key,
                "upload_id": plan.upload_id,
                "part_bytes": plan.part_bytes,
                "urls": list(plan.urls),
            }
        )

    def _upload_key(key: str) -> tuple[str, float]:
        """The (preset, scale) of ``key`` when it is a key this page uploads to; InputError otherwise."""
        prefix = settings.aws.upload_prefixes[0]
        folder, _, name = key[len(prefix) :].partition("/")
        mapping = settings.aws.preset_for(folder) if key.startswith(prefix) else None
        if (
            mapping is None
            or not name
            or "/" in name
            or uploads.safe_name(name, settings.aws.suffixes) != name
        ):
            raise InputError(f"key {key!r} is not an upload key of this page", hint="upload the file again")
        return mapping

    @_api
    async def s3_facts(request: Request) -> Response:
        from vsrflow.aws.presign import presigned_get

        if config.mode == "local":
            raise InputError("local uploads are probed when stored", hint="use the page's upload button")
        key = request.query_params.get("key", "")
        preset, scale = _upload_key(key)
        head = await run_in_threadpool(lambda: config.s3.head_object(Bucket=_bucket(settings), Key=key))
        url = await run_in_threadpool(presigned_get, config.s3, _bucket(settings), key)
        summary = await run_in_threadpool(
            uploads.describe_remote, url, key.rpartition("/")[2], int(head["ContentLength"])
        )
        from vsrflow.workflow.job.submit import choose_model

        try:
            model: str | None = await run_in_threadpool(choose_model, None, preset, scale, settings)
        except InputError:
            model = None
        seconds = (
            uploads.ceiling_seconds(model, summary["width"], summary["height"], summary["frames"])
            if model
            else None
        )
        return JSONResponse(
            {
                "probe": summary,
                "estimate": {"model": model, "preset": preset, "scale": scale, "seconds": seconds},
            }
        )

    @_api
    async def s3_complete(request: Request) -> Response:
        from vsrflow.aws.presign import complete_multipart

        if config.mode == "local":
            raise InputError("this server stores uploads itself", hint="use the page's upload button")
        body = await _json_body(request)
        key = str(body.get("key", ""))
        _upload_key(key)
        parts = body.get("parts")
        if not isinstance(parts, int) or isinstance(parts, bool) or parts < 1:
            raise InputError(f"parts {parts!r} is not a part count", hint="upload the file again")
        etag = await run_in_threadpool(
            complete_multipart, config.s3, _bucket(settings), key, str(body.get("upload_id", "")), parts
        )
        return JSONResponse({"key": key, "etag": etag})

    # ---- every mode -------------------------------------------------------------------------

    @_api
    async def api_config(request: Request) -> Response:
        return JSONResponse({"mode": config.mode, "models": await run_in_threadpool(models)})

    @_api
    async def list_jobs(request: Request) -> Response:
        return JSONResponse({"jobs": await run_in_threadpool(jobs.views)})

    @_api
    async def get_job(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(jobs.view, request.path_params["job_id"]))

    snapshot = _Snapshot(jobs.views, EVENT_PERIOD_S if config.mode == "local" else S3_EVENT_PERIOD_S)

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            last = None
            idle = 0
            while not await request.is_disconnected():
                data = await snapshot.get()
                if data != last:
                    last, idle = data, 0
                    yield f"event: jobs\ndata: {data}\n\n".encode()
                else:
                    idle += 1
                    if idle % 15 == 0:
                        yield b": keep-alive\n\n"
                await asyncio.sleep(snapshot.period)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"cache-control": "no-store"}
        )

    @_api
    async def media(request: Request) -> Response:
        job_id, which = request.path_params["job_id"], request.path_params["which"]
        location = await run_in_threadpool(_location, job_id, which)
        if location.startswith(("http://", "https://")):
            return RedirectResponse(location, status_code=307)
        return FileResponse(location)

    def _location(job_id: str, which: str) -> str:
        if which == "source":
            return jobs.source_location(job_id)
        if which == "result":
            location = jobs.result_location(job_id)
            if location is None:
                raise InputError(f"job {job_id} has no result yet", hint="wait until it is done")
            return location
        raise InputError(f"{which!r} is neither source nor result", hint="use source or result")

    @_api
    async def frame(request: Request) -> Response:
        from vsrflow.web.frames import frame_png

        job_id = request.path_params["job_id"]
        which = request.query_params.get("which", "result")
        try:
            seconds = float(request.query_params.get("t", "0"))
        except ValueError as err:
            raise InputError("t is not a number of seconds", hint="e.g. t=1.5") from err
        view = await run_in_threadpool(jobs.view, job_id)
        location = await run_in_threadpool(_location, job_id, which)
        size = None
        if which == "source":
            result = await run_in_threadpool(_location, job_id, "result")
            size = await run_in_threadpool(_video_size, result)
        path = await run_in_threadpool(
            frame_png,
            settings.ffmpeg,
            location,
            seconds,
            frames_dir / view["id"],
            size=size,
            cache_key=f"{view['id']}/{which}",
        )
        return FileResponse(path, media_type="image/png")

    def _video_size(location: str) -> tuple[int, int]:
        from vsrflow.media.probe import coded_size

        return coded_size(location)

    @_api
    async def download(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if isinstance(jobs, S3Jobs):
            url = await run_in_threadpool(lambda: jobs.result_location(job_id, download=True))
            if url is None:
                raise InputError(f"job {job_id} has no result yet", hint="wait until it is done")
            return RedirectResponse(url, status_code=307)
        location = await run_in_threadpool(_location, job_id, "result")
        return FileResponse(location, filename=Path(location).name)

    # ---- previews ---------------------------------------------------------------------------
    from vsrflow.web.previews import Previews

    previews = Previews(settings, config.state_dir / "previews", uploads_dir)

    @_api
    async def post_preview(request: Request) -> Response:
        if config.mode != "local":
            raise InputError("previews run on this machine in local mode only", hint="start with --local")
        body = await _json_body(request)
        preview_id = await run_in_threadpool(previews.start, body)
        return JSONResponse({"preview_id": preview_id})

    @_api
    async def get_preview(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(previews.view, request.path_params["preview_id"]))

    @_api
    async def preview_media(request: Request) -> Response:
        path = await run_in_threadpool(
            previews.file, request.path_params["preview_id"], request.path_params["name"]
        )
        return FileResponse(path)

    routes = [
        Route("/", index),
        Route("/jobs", jobs_page),
        Route("/jobs/{job_id:str}", compare_page),
        Route("/api/config", api_config),
        Route("/api/uploads", put_upload, methods=["PUT"]),
        Route("/api/jobs", list_jobs, methods=["GET"]),
        Route("/api/jobs", post_job, methods=["POST"]),
        Route("/api/jobs/{job_id:str}", get_job),
        Route("/api/jobs/{job_id:str}/media/{which:str}", media),
        Route("/api/jobs/{job_id:str}/frame", frame),
        Route("/api/jobs/{job_id:str}/download", download),
        Route("/api/events", events),
        Route("/api/s3/uploads", s3_create, methods=["POST"]),
        Route("/api/s3/uploads/complete", s3_complete, methods=["POST"]),
        Route("/api/s3/uploads/facts", s3_facts),
        Route("/api/previews", post_preview, methods=["POST"]),
        Route("/api/previews/{preview_id:str}", get_preview),
        Route("/api/previews/{preview_id:str}/{name:str}", preview_media),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if runner is not None:
            runner.stop()
        previews.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    return Guard(app, config.access)


class _Snapshot:
    """The job list as JSON, refreshed at most once per ``period`` seconds whatever the readers."""

    def __init__(self, read: Callable[[], list[dict[str, Any]]], period: float) -> None:
        self.read = read
        self.period = period
        self._data = ""
        self._taken = -math.inf
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        async with self._lock:
            now = time.monotonic()
            if now - self._taken >= self.period:
                try:
                    self._data = json.dumps({"jobs": await run_in_threadpool(self.read)})
                except Exception as err:  # shown in the page, the streams go on
                    self._data = json.dumps({"error": str(err)})
                self._taken = time.monotonic()
            return self._data


def _bucket(settings: Settings) -> str:
    if not settings.aws.bucket:
        raise InputError("no bucket configured", hint="set VSRFLOW_AWS_BUCKET (or use --local)")
    return settings.aws.bucket


def _stream_index(value: object) -> int | None:
    """The page's video stream choice: None (the only one) or a stream index (an int >= 0)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise InputError(f"video stream {value!r} is not a stream index", hint="pick one from the list")
    return int(value)


def _scale(value: object) -> float:
    try:
        scale = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise InputError(f"scale {value!r} is not a number", hint="choose 2 or 4") from err
    if scale not in SCALES:
        raise InputError(f"scale {scale:g} is not offered", hint="choose 2 or 4")
    return scale


def _remove_upload(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink(missing_ok=True)
    folder.rmdir()


def _html(text: str) -> str:
    from html import escape

    return escape(text)

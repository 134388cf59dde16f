"""Creating a path job: the model choice and the job directory of ``vsrflow submit INPUT -o OUT``.

One owner for what the CLI (``vsrflow submit``) and the web page (``vsrflow ui``) both do before
the executor runs: resolve the model once against this machine's weight store, check the output,
build the :class:`~vsrflow.workflow.job.spec.JobSpec` and create (or re-open) its job directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.errors import InputError
from vsrflow.formats import check_output_suffix
from vsrflow.media.prefilter import PrefilterRequest
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.spec import EncoderSpec, JobSpec, file_identity

#: Chunk length when neither seconds nor frames are given (seconds of presentation time).
DEFAULT_CHUNK_SECONDS = 60.0


def choose_model(model: str | None, preset: str | None, scale: float | None, settings: Settings) -> str:
    """The model the job records: a registry id, or the absolute path of a user weight file.

    Resolved here, once, against this machine's weight store (``models.registry.resolve``): the
    spec stores the answer, so every chunk runs that model on every node whatever weights the
    node holds (a node without them fetches or fails loudly, it never picks another one).
    """
    from vsrflow.models.registry import REGISTRY, get_spec, looks_like_path, resolve
    from vsrflow.models.store import WeightStore

    if model is not None and model not in REGISTRY and looks_like_path(model):
        get_spec(model)  # a weight file: refuse a bad one now, not in every chunk
        return str(Path(model).expanduser().resolve())  # stages may run elsewhere
    return resolve(model, preset, scale=scale, available=WeightStore(settings.weights_dir).has).id


@dataclass(frozen=True)
class PathJobRequest:
    """What a path job does (the options of ``vsrflow submit INPUT -o OUTPUT``).

    ``model`` and ``preset`` are exclusive (neither: the default preset). ``scale`` is the output /
    input size ratio (None: the chosen model's native scale, as ``vsrflow upscale``);
    ``chunk_seconds`` / ``chunk_frames``: at most one (neither: 60 s).
    """

    source: Path
    output: Path
    model: str | None = None
    preset: str | None = None
    scale: float | None = None
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    chunk_seconds: float | None = None
    chunk_frames: int | None = None
    array_throttle: int | None = None
    overwrite: bool = False
    #: the sanity guard's choice, its fallback model and the colour fix (None: JobSpec's defaults)
    on_artifact: str | None = None
    fallback_model: str | None = None
    colour_fix: str | None = None
    #: source conditioning (``--deinterlace`` / ``--scan``; see :mod:`vsrflow.media.condition`)
    deinterlace: str = "frame"
    scan: str = "auto"
    #: upscale a cut-short source as far as it goes (``--accept-damaged``)
    accept_damaged: bool = False
    #: the video stream to upscale (``--video-stream``; None: the only one)
    video_stream: int | None = None
    #: pre-filters (``--prefilter``, ``--denoise``, ...; see :mod:`vsrflow.media.prefilter`)
    prefilter: PrefilterRequest = field(default_factory=PrefilterRequest)


def create_path_job(request: PathJobRequest, jobs_root: Path, settings: Settings) -> JobDir:
    """Check ``request`` and create (or re-open: same spec, same id) its job under ``jobs_root``.

    Raises:
        InputError: missing source, existing output without ``overwrite``, missing output
            directory, an output suffix or codec the mux cannot write, a source stream the output
            container cannot hold (or several video streams and no ``video_stream``), an
            unknown model: all before the job exists.
    """
    from vsrflow.media.assemble import check_streams, check_video_codec
    from vsrflow.media.probe import probe
    from vsrflow.media.writer import check_encoder

    source = request.source.expanduser().resolve()
    output = request.output.expanduser().resolve()
    if not source.is_file():
        raise InputError(f"{request.source}: file not found", hint="check the path")
    if output.exists() and not request.overwrite:
        raise InputError(
            f"output {request.output} already exists", hint="pass --overwrite or choose another -o"
        )
    if not output.parent.is_dir():
        raise InputError(f"output directory {output.parent} does not exist", hint="create it first")
    check_output_suffix(request.output)
    check_video_codec(output, check_encoder(request.encoder.codec))
    # What the final mux would fail on after every chunk is refused now (as `vsrflow upscale` does).
    info = probe(source, request.video_stream, accept_damaged=request.accept_damaged)
    check_streams(info, output, video_stream=request.video_stream, ffmpeg=settings.ffmpeg)
    chunk_seconds = request.chunk_seconds
    if request.chunk_frames is None and chunk_seconds is None:
        chunk_seconds = DEFAULT_CHUNK_SECONDS
    throttle: dict[str, Any] = (
        {} if request.array_throttle is None else {"array_throttle": request.array_throttle}
    )
    chosen = {"on_artifact": request.on_artifact, "colour_fix": request.colour_fix}
    quality: dict[str, Any] = {k: v for k, v in chosen.items() if v is not None}
    from vsrflow.models.registry import get_spec

    model = choose_model(request.model, request.preset, request.scale, settings)
    # No scale: the model's native scale, as `vsrflow upscale` does (recorded in the job spec).
    scale = request.scale if request.scale is not None else float(get_spec(model).scale)
    spec = JobSpec(
        source=str(source),
        destination=str(output),
        model=model,
        scale=scale,
        encoder=request.encoder,
        chunk_frames=request.chunk_frames,
        chunk_seconds=chunk_seconds,
        fallback_model=request.fallback_model,
        deinterlace=request.deinterlace,
        scan=request.scan,
        accept_damaged=request.accept_damaged,
        video_stream=request.video_stream,
        prefilter=request.prefilter,
        **quality,
        **throttle,
    )
    root = jobs_root.expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return JobDir.create(root, spec, spec.job_id(file_identity(source)))

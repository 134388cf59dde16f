"""The job spec: what one chunked upscale job does, as a frozen dataclass with a strict JSON form.

A spec is written once into ``<job dir>/spec.json`` (see :mod:`vsrflow.workflow.job.layout`) and read by
every stage. :meth:`JobSpec.from_json` is strict: unknown or missing keys, wrong types, values out
of range and another ``schema_version`` are refused with an :class:`~vsrflow.errors.InputError`
that names the field and says how to fix it.

Units: ``chunk_seconds`` is seconds of presentation time (pts), ``chunk_frames`` is frames; exactly
one of them is set. ``scale`` is the output/input size ratio.

This module imports only the standard library and :mod:`vsrflow.errors` (no torch, no PyAV), so the
Lambda package can build and hash specs. ``model`` is already resolved (a registry id or a weight
file, never a preset: :func:`vsrflow.models.registry.resolve` runs once, where the job is created),
so every chunk runs the same network on every node whatever weights that node holds; it is checked
for shape here and looked up by the stage that loads it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsrflow.engine.quality import (
    COLOUR_FIX,
    DEFAULT_COLOUR_FIX,
    DEFAULT_ON_ARTIFACT,
    ON_ARTIFACT,
    check_choice,
)
from vsrflow.errors import InputError
from vsrflow.media.prefilter import JSON_KEYS as PREFILTER_KEYS
from vsrflow.media.prefilter import PrefilterRequest
from vsrflow.workflow.job.identity import compute_job_id, file_identity

#: 2: ``model`` is always a resolved id or weight path (version 1 could name a preset instead).
SCHEMA_VERSION = 2

#: Slurm's default MaxArraySize is 1001 (task ids 0..1000); the hard limit is 4000001.
DEFAULT_MAX_ARRAY_SIZE = 1000
SLURM_MAX_ARRAY_SIZE_LIMIT = 4_000_001

#: As ``vsrflow.media.condition.DEINTERLACE_MODES`` / ``vsrflow.media.scan.SCAN_OVERRIDES`` (this
#: module must not import PyAV; tests check the lists agree).
DEINTERLACE_CHOICES = ("frame", "field", "off")
SCAN_CHOICES = ("auto", "progressive", "tff", "bff", "telecine")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
_URI = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<rest>.+)$")
_URI_SCHEMES = ("s3", "file")


def _fail(field_name: str, problem: str, fix: str) -> InputError:
    return InputError(f"job spec: {field_name}: {problem}", hint=fix)


def _check_location(name: str, value: object) -> str:
    """A local path or an ``s3://bucket/key`` / ``file:///path`` URI; returned unchanged."""
    if not isinstance(value, str) or not value.strip():
        raise _fail(
            name, f"expected a non-empty path or URI, got {value!r}", "give a path or s3://bucket/key"
        )
    if "\x00" in value or value != value.strip():
        raise _fail(name, f"{value!r} has NUL or surrounding whitespace", "pass the exact path or URI")
    match = _URI.match(value)
    if match:
        scheme = match["scheme"]
        if scheme not in _URI_SCHEMES:
            raise _fail(name, f"unsupported URI scheme {scheme!r}", f"use one of {', '.join(_URI_SCHEMES)}")
        if scheme == "s3" and "/" not in match["rest"].strip("/"):
            raise _fail(name, f"{value!r} has no object key", "use s3://bucket/key")
    return value


def _check_int(name: str, value: object, lo: int, hi: int, fix: str) -> int:
    # bool is an int subclass; a JSON `true` is never a valid count.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(name, f"expected an integer, got {value!r}", fix)
    if not lo <= value <= hi:
        raise _fail(name, f"{value} is outside {lo}..{hi}", fix)
    return value


def _check_name(name: str, value: object, fix: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise _fail(name, f"{value!r} is not a valid name (letters, digits, _ . + -)", fix)
    return value


@dataclass(frozen=True)
class EncoderSpec:
    """Encoder options of the final video (mirrors :class:`vsrflow.media.writer.EncoderOptions`).

    Attributes:
        codec: FFmpeg encoder name ('libx264', 'libx265', 'ffv1', ...).
        crf: constant rate factor 0..63, or None for the encoder's default / encoders without crf.
        preset: encoder speed preset ('medium', 'slow', ...), or None.
        pix_fmt: output pixel format, or None to derive it from the source's bit depth.
    """

    codec: str = "libx264"
    crf: int | None = 18
    preset: str | None = "medium"
    pix_fmt: str | None = None

    def __post_init__(self) -> None:
        _check_name("encoder.codec", self.codec, "use an FFmpeg encoder name such as libx264")
        if self.crf is not None:
            _check_int("encoder.crf", self.crf, 0, 63, "use 0 (lossless) .. 51 for x264, or null")
        if self.preset is not None:
            _check_name("encoder.preset", self.preset, "use an encoder preset such as medium, or null")
        if self.pix_fmt is not None:
            _check_name("encoder.pix_fmt", self.pix_fmt, "use a pixel format such as yuv420p, or null")

    def to_json(self) -> dict[str, Any]:
        return {"codec": self.codec, "crf": self.crf, "preset": self.preset, "pix_fmt": self.pix_fmt}

    @classmethod
    def from_json(cls, data: object) -> EncoderSpec:
        obj = _exact_keys("encoder", data, ("codec", "crf", "preset", "pix_fmt"))
        return cls(codec=obj["codec"], crf=obj["crf"], preset=obj["preset"], pix_fmt=obj["pix_fmt"])


@dataclass(frozen=True)
class DeliverySpec:
    """Where the AWS event path delivers a finished job (the CLI does the upload, not the stages).

    Attributes:
        bucket: bucket of the output object and of ``jobs/<job_id>/status.json``.
        key: output object key (``outputs/<preset>/<stem>_x<scale>.<ext>``).
        source_bucket, source_key, source_version: the upload the job came from (object metadata).
    """

    bucket: str
    key: str
    source_bucket: str
    source_key: str
    source_version: str | None = None

    def __post_init__(self) -> None:
        for name in ("bucket", "key", "source_bucket", "source_key"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or "\x00" in value:
                raise _fail(f"delivery.{name}", f"expected a non-empty string, got {value!r}", "fix the spec")
        if self.source_version is not None and not isinstance(self.source_version, str):
            raise _fail("delivery.source_version", f"{self.source_version!r} is not a string", "use a string")

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "source_bucket": self.source_bucket,
            "source_key": self.source_key,
            "source_version": self.source_version,
        }

    @classmethod
    def from_json(cls, data: object) -> DeliverySpec:
        keys = ("bucket", "key", "source_bucket", "source_key", "source_version")
        return cls(**_exact_keys("delivery", data, keys))


@dataclass(frozen=True)
class JobSpec:
    """One chunked upscale job (validated on construction; every error is an InputError).

    Attributes:
        source: input video, a local path (shared storage) or ``s3://bucket/key``.
        destination: output video, a local path or ``s3://bucket/key``.
        model: registry model id or an absolute path to a weight file, as resolved at creation.
        scale: output size / input size, 1 .. 8 (stored as float, so 2 and 2.0 are the same job).
        encoder: final encoder options.
        chunk_frames: target chunk length in frames (>= 1), or None.
        chunk_seconds: target chunk length in seconds of pts (> 0), or None. Exactly one is set;
            the planner still enforces its minimum chunk size (see :mod:`vsrflow.workflow.job.plan`).
        max_array_size: the cluster's Slurm MaxArraySize; the plan has at most this many chunks.
        array_throttle: K in ``--array=0-N%K``: chunks upscaled at once (1 .. max_array_size).
        delivery: S3 delivery target of event-path jobs, or None (absent from the JSON when None,
            and not part of the job id: existing specs and ids are unchanged).
        on_artifact: what the sanity guard does with a blown-up frame (``fallback``, ``fail``,
            ``keep``; see :mod:`vsrflow.engine.quality`).
        fallback_model: the model that redoes such frames, resolved at creation like ``model``
            (None: bicubic).
        colour_fix: ``off``, ``wavelet`` or ``gaussian``.
        The three quality fields are optional in the JSON (specs written before them read with
        the defaults) and enter the job id only when they differ from the defaults.
        deinterlace: 'frame' (default), 'field' or 'off': what to do with an interlaced source
            (as ``vsrflow upscale --deinterlace``).
        scan: 'auto' (default: detect) or the scan type to assume ('progressive', 'tff', 'bff',
            'telecine'). Both are absent from the JSON and the job id when default.
        accept_damaged: upscale a cut-short source as far as it goes (``--accept-damaged``)
            instead of refusing it; absent from the JSON and the job id when False.
        video_stream: the container index of the video stream to upscale (``--video-stream``), or
            None (the only one); absent from the JSON and the job id when None.
        prefilter: the pre-filters the user asked for (``--prefilter``, ``--denoise``,
            ``--denoise-strength``, ``--deblock``, ``--crop``, ``--square-pixels``; see
            :mod:`vsrflow.media.prefilter`), as given: ``--crop auto`` is resolved once, at
            extract, and the result stored in the manifest's plan with the rest of the
            conditioning. Keys absent from the JSON and the job id when not given.
    """

    source: str
    destination: str
    model: str
    scale: float = 4.0
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    chunk_frames: int | None = None
    chunk_seconds: float | None = 60.0
    max_array_size: int = DEFAULT_MAX_ARRAY_SIZE
    array_throttle: int = 8
    delivery: DeliverySpec | None = None
    on_artifact: str = DEFAULT_ON_ARTIFACT
    fallback_model: str | None = None
    colour_fix: str = DEFAULT_COLOUR_FIX
    deinterlace: str = "frame"
    scan: str = "auto"
    accept_damaged: bool = False
    video_stream: int | None = None
    prefilter: PrefilterRequest = field(default_factory=PrefilterRequest)

    def __post_init__(self) -> None:
        _check_location("source", self.source)
        _check_location("destination", self.destination)
        if self.source == self.destination:
            raise _fail("destination", "equals the source", "write the output to a different path or key")
        if not isinstance(self.model, str):
            raise _fail("model", f"expected a model id, got {self.model!r}", "resolve the model first")
        if self.model.startswith("/"):
            # A user weight file on storage every stage can read (architecture detected at load).
            _check_location("model", self.model)
        else:
            fix = "use a model id from `vsrflow models list` or an absolute .pth path"
            _check_name("model", self.model, fix)
        if isinstance(self.scale, bool) or not isinstance(self.scale, int | float):
            raise _fail("scale", f"expected a number, got {self.scale!r}", "use e.g. 2 or 4")
        if not math.isfinite(self.scale) or not 1 <= self.scale <= 8:
            raise _fail("scale", f"{self.scale} is outside 1..8", "use e.g. 2 or 4")
        object.__setattr__(self, "scale", float(self.scale))
        if not isinstance(self.encoder, EncoderSpec):
            raise _fail("encoder", f"expected EncoderSpec, got {type(self.encoder).__name__}", "build one")
        if (self.chunk_frames is None) == (self.chunk_seconds is None):
            raise _fail(
                "chunk_frames/chunk_seconds", "exactly one chunk size must be set", "set one, null the other"
            )
        if self.chunk_frames is not None:
            _check_int("chunk_frames", self.chunk_frames, 1, 2**31, "use a positive frame count, e.g. 1440")
        if self.chunk_seconds is not None:
            value = self.chunk_seconds
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise _fail("chunk_seconds", f"expected a number, got {value!r}", "use e.g. 60")
            if value <= 0:
                raise _fail("chunk_seconds", f"{value} is not positive", "use e.g. 60")
            object.__setattr__(self, "chunk_seconds", float(value))
        _check_int(
            "max_array_size",
            self.max_array_size,
            1,
            SLURM_MAX_ARRAY_SIZE_LIMIT,
            "use the cluster's MaxArraySize (`scontrol show config | grep MaxArraySize`)",
        )
        _check_int(
            "array_throttle",
            self.array_throttle,
            1,
            self.max_array_size,
            "use the number of chunks to upscale at once (e.g. the number of GPUs), <= max_array_size",
        )
        if self.deinterlace not in DEINTERLACE_CHOICES:
            raise _fail(
                "deinterlace", f"{self.deinterlace!r} is not one of {DEINTERLACE_CHOICES}", "use field"
            )
        if self.scan not in SCAN_CHOICES:
            raise _fail("scan", f"{self.scan!r} is not one of {SCAN_CHOICES}", "use auto")
        if not isinstance(self.accept_damaged, bool):
            raise _fail("accept_damaged", f"expected true or false, got {self.accept_damaged!r}", "use false")
        if self.video_stream is not None:
            _check_int(
                "video_stream", self.video_stream, 0, 2**31, "use a stream index `vsrflow probe` lists"
            )
        if not isinstance(self.prefilter, PrefilterRequest):
            raise _fail(
                "prefilter", f"expected PrefilterRequest, got {type(self.prefilter).__name__}", "build one"
            )
        if self.delivery is not None and not isinstance(self.delivery, DeliverySpec):
            raise _fail("delivery", f"expected DeliverySpec, got {type(self.delivery).__name__}", "build one")
        try:
            check_choice("on_artifact", self.on_artifact, ON_ARTIFACT)
            check_choice("colour_fix", self.colour_fix, COLOUR_FIX)
        except InputError as err:
            raise _fail("quality", err.message, err.hint or "fix the spec") from None
        fallback = self.fallback_model
        if fallback is not None:
            if not isinstance(fallback, str):
                raise _fail(
                    "fallback_model", f"expected a model id, got {fallback!r}", "use a model id or null"
                )
            if fallback.startswith("/"):
                _check_location("fallback_model", fallback)
            else:
                _check_name("fallback_model", fallback, "use a model id from `vsrflow models list` or null")

    def _quality(self) -> dict[str, Any]:
        return {
            "on_artifact": self.on_artifact,
            "fallback_model": self.fallback_model,
            "colour_fix": self.colour_fix,
        }

    def to_json(self) -> dict[str, Any]:
        """The JSON object (with ``schema_version``) that :meth:`from_json` reads back equal."""
        return (
            {
                "schema_version": SCHEMA_VERSION,
                "source": self.source,
                "destination": self.destination,
                "model": self.model,
                "scale": self.scale,
                "encoder": self.encoder.to_json(),
                "chunk_frames": self.chunk_frames,
                "chunk_seconds": self.chunk_seconds,
                "max_array_size": self.max_array_size,
                "array_throttle": self.array_throttle,
                **self._quality(),
            }
            | ({} if self.delivery is None else {"delivery": self.delivery.to_json()})
            | self._conditioning()
            | ({"accept_damaged": True} if self.accept_damaged else {})
            | ({} if self.video_stream is None else {"video_stream": self.video_stream})
        )

    def _conditioning(self) -> dict[str, str]:
        """The non-default conditioning options (absent keys = defaults)."""
        out: dict[str, str] = {}
        if self.deinterlace != "frame":
            out["deinterlace"] = self.deinterlace
        if self.scan != "auto":
            out["scan"] = self.scan
        return out | self.prefilter.to_json()

    @classmethod
    def from_json(cls, data: object) -> JobSpec:
        """Parse and validate; InputError naming the field for any problem."""
        # The version first: another version's fields differ, and "recreate" is the useful fix.
        if isinstance(data, dict) and data.get("schema_version") != SCHEMA_VERSION:
            raise _fail(
                "schema_version",
                f"{data.get('schema_version')!r} is not the supported version {SCHEMA_VERSION}",
                "recreate the job with this vsrflow version",
            )
        optional = (
            *("delivery", *_QUALITY_KEYS, "deinterlace", "scan"),
            *("accept_damaged", "video_stream", *PREFILTER_KEYS),
        )
        obj = _exact_keys("job spec", data, tuple(_SPEC_KEYS), optional=optional)
        try:
            prefilter = PrefilterRequest.from_json(obj)
        except InputError as err:
            raise _fail("prefilter", err.message, err.hint or "fix the spec") from None
        return cls(
            source=obj["source"],
            destination=obj["destination"],
            model=obj["model"],
            scale=obj["scale"],
            encoder=EncoderSpec.from_json(obj["encoder"]),
            chunk_frames=obj["chunk_frames"],
            chunk_seconds=obj["chunk_seconds"],
            max_array_size=obj["max_array_size"],
            array_throttle=obj["array_throttle"],
            delivery=None if obj.get("delivery") is None else DeliverySpec.from_json(obj["delivery"]),
            on_artifact=obj.get("on_artifact", DEFAULT_ON_ARTIFACT),
            fallback_model=obj.get("fallback_model"),
            colour_fix=obj.get("colour_fix", DEFAULT_COLOUR_FIX),
            deinterlace=obj.get("deinterlace", "frame"),
            scan=obj.get("scan", "auto"),
            accept_damaged=obj.get("accept_damaged", False),
            video_stream=obj.get("video_stream"),
            prefilter=prefilter,
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def loads(cls, text: str) -> JobSpec:
        try:
            data = json.loads(text)
        except ValueError as err:
            raise InputError(f"job spec: not valid JSON: {err}", hint="fix or recreate spec.json") from err
        return cls.from_json(data)

    def job_id(self, source_identity: str | None = None) -> str:
        """Deterministic id of this job: see :func:`compute_job_id`.

        ``source_identity`` defaults to ``source`` itself; pass a stronger identity where one
        exists (an S3 version id or ETag, or :func:`file_identity` of a local file), so a replaced
        input is a new job while a resubmitted identical one is the same job.
        """
        if self.model.startswith("/") and Path(self.model).is_file():
            model = file_identity(Path(self.model))  # a replaced weight file is a new job
        else:
            model = self.model
        return compute_job_id(
            self.source if source_identity is None else source_identity,
            model=model,
            scale=self.scale,
            encoder=self.encoder.to_json(),
            destination=self.destination,
            quality=None if self._quality() == _DEFAULT_QUALITY else self._quality(),
            # Accepting a damaged source makes another output than refusing it: another job.
            conditioning=self._conditioning()
            | ({"accept_damaged": "true"} if self.accept_damaged else {})
            | ({} if self.video_stream is None else {"video_stream": str(self.video_stream)}),
        )


_SPEC_KEYS = (
    "schema_version",
    "source",
    "destination",
    "model",
    "scale",
    "encoder",
    "chunk_frames",
    "chunk_seconds",
    "max_array_size",
    "array_throttle",
)


_QUALITY_KEYS = ("on_artifact", "fallback_model", "colour_fix")
_DEFAULT_QUALITY = {
    "on_artifact": DEFAULT_ON_ARTIFACT,
    "fallback_model": None,
    "colour_fix": DEFAULT_COLOUR_FIX,
}


def _exact_keys(
    what: str, data: object, keys: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError(f"{what}: expected a JSON object, got {type(data).__name__}", hint="fix the file")
    missing = [k for k in keys if k not in data]
    unknown = sorted(k for k in data if k not in keys and k not in optional)
    if missing:
        raise InputError(
            f"{what}: missing field(s) {', '.join(missing)}", hint="add them (null where optional)"
        )
    if unknown:
        raise InputError(f"{what}: unknown field(s) {', '.join(map(str, unknown))}", hint="remove them")
    return data

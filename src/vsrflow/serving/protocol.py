"""The endpoint's wire protocol: request kinds, their strict parsing, and HTTP status codes.

``POST /invocations`` takes one of three requests:

* ``application/json`` **chunk request** (what array tasks send)::

      {"job_dir": "/fsx/jobs/<id>", "index": 3,
       "output": "/fsx/jobs/<id>/chunks/00003.nut",      # optional, default: the chunk's output path
       "model": "realesr-animevideov3", "scale": 2.0,     # optional: must match the job's
       "precision": "auto"}                                # optional: must be the endpoint's

  The endpoint decodes exactly the chunk's frames from the job's source (shared storage), upscales
  them with the in-process chunk code (:func:`vsrflow.workflow.job.stages.run_chunk`) and writes the
  chunk output atomically. Response: JSON stats (``frames`` actually written, ``seconds``, ``fps``,
  ``device``, ...). Paths must lie under the endpoint's allowed roots (400 otherwise).
* ``application/json`` **file request**: ``{"input": path, "output": path, "model", "scale",
  "precision", "encoder": {"codec", "crf", "preset", "pix_fmt"}}`` (all but input/output optional):
  the same engine as ``vsrflow upscale`` on one file (e.g. a chunk file on shared storage).
* ``application/x-npy`` **frames request**: a uint8 array (N, H, W, 3) RGB (or one (H, W, 3)
  frame); response: the upscaled uint8 array (N, H*s, W*s, 3) as ``application/x-npy``.

Errors: 400 bad request (the reason names the field), 415 unsupported content type, 500 an internal
failure, 503 the endpoint is busy/restarting (retry). Error bodies are JSON ``{"error": reason,
"status": code}``; a failure is never a 200.

This module imports no torch (the client uses it too).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vsrflow.errors import VsrError

JSON = "application/json"
NPY = "application/x-npy"
CONTENT_TYPES = (JSON, NPY)

BAD_REQUEST = 400
UNSUPPORTED_MEDIA_TYPE = 415
INTERNAL_ERROR = 500
UNAVAILABLE = 503


class RequestError(VsrError):
    """A request the endpoint refuses, with the HTTP status to answer (4xx)."""

    def __init__(self, status: int, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def bad_request(message: str, hint: str | None = None) -> RequestError:
    return RequestError(BAD_REQUEST, message, hint=hint)


@dataclass(frozen=True)
class ChunkRequest:
    """Upscale chunk ``index`` of the job at ``job_dir`` into ``output`` (None: the chunk's path)."""

    job_dir: Path
    index: int
    output: Path | None = None
    model: str | None = None
    scale: float | None = None
    precision: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"job_dir": str(self.job_dir), "index": self.index}
        for key in ("output", "model", "scale", "precision"):
            value = getattr(self, key)
            if value is not None:
                data[key] = str(value) if isinstance(value, Path) else value
        return data


@dataclass(frozen=True)
class FileRequest:
    """Upscale the whole video ``input`` into ``output`` (as ``vsrflow upscale`` does)."""

    input: Path
    output: Path
    model: str | None = None
    scale: float | None = None
    precision: str | None = None
    encoder: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"input": str(self.input), "output": str(self.output)}
        for key in ("model", "scale", "precision", "encoder"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass(frozen=True)
class FramesRequest:
    """Upscale a batch of frames: uint8 (N, H, W, 3) RGB."""

    frames: np.ndarray


Request = ChunkRequest | FileRequest | FramesRequest

_CHUNK_KEYS = {"job_dir", "index", "output", "model", "scale", "precision"}
_FILE_KEYS = {"input", "output", "model", "scale", "precision", "encoder"}
_ENCODER_KEYS = {"codec", "crf", "preset", "pix_fmt"}


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json`` (lower case, no parameters)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_request(body: bytes | str | bytearray, content_type: str | None) -> Request:
    """Parse and validate one request body (shape only: paths are checked by the endpoint).

    Raises:
        RequestError: 415 for a content type other than JSON/npy, 400 for a malformed body.
    """
    kind = media_type(content_type)
    if kind == JSON:
        return _parse_json(body)
    if kind == NPY:
        return _parse_npy(body)
    shown = content_type or "(none)"
    raise RequestError(
        UNSUPPORTED_MEDIA_TYPE,
        f"content type {shown} is not supported",
        hint=f"send {JSON} (a chunk or file request) or {NPY} (a uint8 frame batch)",
    )


def _parse_json(body: bytes | str | bytearray) -> Request:
    try:
        text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as err:
        raise bad_request(f"request body is not valid JSON: {err}", "send a JSON object") from err
    if not isinstance(data, dict):
        raise bad_request(f"request body must be a JSON object, got {type(data).__name__}")
    if "job_dir" in data and "input" in data:
        raise bad_request("give either job_dir (chunk request) or input (file request), not both")
    if "job_dir" in data:
        _no_unknown(data, _CHUNK_KEYS)
        output = data.get("output")
        return ChunkRequest(
            job_dir=_path(data, "job_dir"),
            index=_index(data.get("index")),
            output=None if output is None else _path(data, "output"),
            model=_opt_str(data, "model"),
            scale=_opt_scale(data),
            precision=_opt_str(data, "precision"),
        )
    if "input" in data:
        _no_unknown(data, _FILE_KEYS)
        encoder = data.get("encoder")
        if encoder is not None:
            if not isinstance(encoder, dict):
                raise bad_request("encoder must be a JSON object with codec, crf, preset, pix_fmt")
            _no_unknown(encoder, _ENCODER_KEYS, what="encoder")
        return FileRequest(
            input=_path(data, "input"),
            output=_path(data, "output"),
            model=_opt_str(data, "model"),
            scale=_opt_scale(data),
            precision=_opt_str(data, "precision"),
            encoder=encoder,
        )
    raise bad_request(
        "request has neither job_dir nor input",
        "send {job_dir, index} for a chunk or {input, output} for a file",
    )


def _no_unknown(data: dict[str, Any], allowed: set[str], what: str = "request") -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise bad_request(
            f"{what}: unknown field(s) {', '.join(unknown)}", f"allowed: {', '.join(sorted(allowed))}"
        )


def _path(data: dict[str, Any], key: str) -> Path:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise bad_request(f"{key} must be a non-empty path string, got {value!r}")
    if "://" in value:
        raise bad_request(f"{key} {value}: only paths on shared storage are supported", "pass a local path")
    path = Path(value)
    if not path.is_absolute():
        raise bad_request(f"{key} {value} must be an absolute path (the endpoint has its own cwd)")
    return path


def _index(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise bad_request(f"index must be an integer >= 0, got {value!r}")
    return value


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise bad_request(f"{key} must be a non-empty string or absent, got {value!r}")
    return value


def _opt_scale(data: dict[str, Any]) -> float | None:
    value = data.get("scale")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad_request(f"scale must be a number, got {value!r}")
    if not 1 <= value <= 8:
        raise bad_request(f"scale {value} is outside 1..8")
    return float(value)


def _parse_npy(body: bytes | str | bytearray) -> FramesRequest:
    if isinstance(body, str):
        raise bad_request("an application/x-npy body must be binary")
    try:
        array = np.load(io.BytesIO(bytes(body)), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise bad_request(f"request body is not a .npy array: {err}", "send numpy.save output") from err
    if not isinstance(array, np.ndarray):
        raise bad_request("request body must hold one array, not an archive")
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8 or array.shape[0] < 1:
        raise bad_request(
            f"frames must be uint8 (N, H, W, 3) RGB, got {array.dtype} {array.shape}",
            "send RGB uint8 frames",
        )
    return FramesRequest(frames=array)


def encode_npy(array: np.ndarray) -> bytes:
    """``numpy.save`` bytes of ``array`` (no pickle)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def decode_npy(body: bytes) -> np.ndarray:
    """Inverse of :func:`encode_npy` (no pickle)."""
    array = np.load(io.BytesIO(body), allow_pickle=False)
    if not isinstance(array, np.ndarray):
        raise ValueError("not a single .npy array")
    return array


def error_body(status: int, message: str) -> bytes:
    """The JSON error body the endpoint answers with."""
    return json.dumps({"error": message, "status": status}).encode("utf-8")

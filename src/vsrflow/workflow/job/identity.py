"""The job id: the one rule that names a job, for the CLI, the stages and the S3 records.

A job id is 16 lowercase hex digits: the first 64 bits of a sha256 over the canonical JSON of what
determines the output. That makes it deterministic (a resubmission or a redelivered S3 event finds
the same job), safe as a directory name and in a shell command line, and short enough to type.

What goes in (:func:`compute_job_id`):

* ``source``: the identity of the input bytes, never just a path: :func:`file_identity` for a local
  file (resolved path, size, mtime), :func:`s3_identity` for an upload (bucket, key, and its version
  id or ETag), so a replaced input is a new job;
* ``model``: the model the user asked for, a registry id, ``file:<identity>`` of a weight file, or
  ``preset:<name>`` where the event path names a preset (the head node resolves it later);
* ``scale`` (float, so 2 and 2.0 are one job) and the encoder options;
* ``quality`` (the sanity guard's policy and fallback model, the colour fix) when it differs from
  the defaults, so ids of jobs without quality options are unchanged;
* ``destination`` for a job that writes a local file (``vsrflow submit -o``): the same source
  upscaled to a second file is a job of its own, never refused as "a different spec". Event-path
  jobs leave it out (their output key follows from the upload key, already in ``source``).

Chunk size and array settings are left out: they change how the work is split, not the result.

Standard library only (the Lambda package imports it).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vsrflow.errors import InputError

#: 16 lowercase hex digits.
JOB_ID_RE = re.compile(r"^[0-9a-f]{16}$")
_RULE_VERSION = 2


def check_job_id(job_id: object) -> str:
    """``job_id`` itself when it is a valid job id; InputError naming it otherwise."""
    if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id):
        raise InputError(
            f"invalid job id {job_id!r}",
            hint="a job id is 16 lowercase hex digits, as `vsrflow submit` prints it",
        )
    return job_id


def preset_choice(preset: str) -> str:
    """The ``model`` input of :func:`compute_job_id` for a job that names a preset, not a model."""
    return f"preset:{preset}"


def compute_job_id(
    source: str,
    *,
    model: str,
    scale: float | None,
    encoder: Mapping[str, Any] | None = None,
    destination: str | None = None,
    quality: Mapping[str, Any] | None = None,
    conditioning: Mapping[str, str] | None = None,
) -> str:
    """The job id of (source identity, model, scale, encoder options[, destination][, conditioning])."""
    payload: dict[str, Any] = {
        "v": _RULE_VERSION,
        "source": source,
        "model": model,
        "scale": None if scale is None else float(scale),
        "encoder": None if encoder is None else dict(encoder),
    }
    if destination is not None:  # absent, not null: ids without one are unchanged
        payload["destination"] = destination
    if quality is not None:  # absent, not null: ids of default-quality jobs are unchanged
        payload["quality"] = dict(quality)
    if conditioning:  # absent when default: ids of jobs without conditioning options are unchanged
        payload["conditioning"] = dict(conditioning)
    canonical = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def s3_identity(bucket: str, key: str, version: str) -> str:
    """Identity of an S3 upload: ``version`` is its version id, or ``etag:<ETag>`` when unversioned."""
    return json.dumps(["s3", bucket, key, version], ensure_ascii=False, separators=(",", ":"))


def file_identity(path: Path) -> str:
    """Identity of a local file: resolved path, byte size, mtime in ns (InputError if unreadable)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as err:
        raise InputError(f"{path}: cannot stat the file: {err.strerror}", hint="check the path") from err
    return f"file:{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"

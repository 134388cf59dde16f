"""The key rules of the upload path: which S3 objects start jobs, with what preset, and where to.

``uploads/<folder>/<relative>`` (under one of the configured upload prefixes) with a preset
folder and a video suffix becomes a job: :func:`classify` decides from the key alone (no AWS
call), :func:`output_key` names the result and :func:`upload_job_id` the job. What is not ours
raises :class:`Ignored`; bad input inside the upload prefixes raises :class:`Rejected`.

:func:`derive_request` is the one derivation of ``jobs/<id>/request.json`` from an upload (the
trigger writes what it returns); :func:`verify_request` runs the same derivation again on the head
node from what a request claims and refuses any difference, because every cluster node can reach
the ``jobs/`` records and none of them is trusted to name what is read, run or overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass

from vsrflow.aws.events import S3ObjectEvent
from vsrflow.aws.jobrecords import JobRequest, scale_text
from vsrflow.config import AwsSettings
from vsrflow.errors import InputError
from vsrflow.formats import output_suffix_for, suffix_of
from vsrflow.workflow.job.identity import compute_job_id, preset_choice, s3_identity


@dataclass(frozen=True)
class Accepted:
    """A record that passed the key checks: what the job will be."""

    event: S3ObjectEvent
    folder: str
    preset: str
    scale: float
    output_key: str


class Rejected(InputError):
    """Bad input in one record; ``job_id`` is set when a status can be written for it.

    ``folder`` is the preset folder :func:`classify` parsed (``uploads/<folder>/...``), None when
    the key has none.
    """

    def __init__(
        self, message: str, *, job_id: str | None = None, hint: str | None = None, folder: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.job_id = job_id
        self.folder = folder


class Ignored(Exception):
    """A record that is not ours; the message says why."""


#: S3's limit on an object key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024


def output_key(aws: AwsSettings, folder: str, relative: str, scale: float) -> str:
    """``outputs/<folder>/<dirs>/<stem>_x<scale><ext>`` for ``uploads/<folder>/<relative>``.

    The extension is the container the final mux can write. The mapping is injective, so two
    uploads never share an output: when the upload's own suffix, exactly as typed, is not that
    extension (``x.MP4``, or ``x.avi`` written as Matroska), it is kept before it
    (``x_x2.MP4.mp4``, ``x_x2.avi.mkv``); a plain name (``x.mp4`` -> ``x_x2.mp4``) always ends in
    ``_x<scale><ext>`` and such a name never does, as no accepted suffix ends in ``_x<scale>``.
    """
    dirs, _, name = relative.rpartition("/")
    ext = output_suffix_for(name)
    typed = name[len(name) - len(suffix_of(name)) :]
    stem = name[: len(name) - len(typed)]
    prefix = f"{aws.output_prefix}{folder}/" + (dirs + "/" if dirs else "")
    kept = "" if typed == ext else typed
    return f"{prefix}{stem}_x{scale_text(scale)}{kept}{ext}"


def classify(aws: AwsSettings, event: S3ObjectEvent) -> Accepted:
    """Key checks without any AWS call: Accepted, or raise Ignored / Rejected (job_id unset)."""
    if not event.created:
        raise Ignored(f"{event.event_name} event (only created objects start jobs)")
    if aws.bucket and event.bucket != aws.bucket:
        raise Ignored(f"bucket {event.bucket} is not the configured bucket {aws.bucket}")
    prefix = next((p for p in aws.upload_prefixes if event.key.startswith(p)), None)
    if prefix is None:
        raise Ignored(f"key is outside the upload prefixes ({', '.join(aws.upload_prefixes)})")
    rest = event.key[len(prefix) :]
    if rest.endswith("/"):
        raise Ignored("folder marker")
    folder, sep, relative = rest.partition("/")
    known = ", ".join(f"{prefix}{name}/" for name, _, _ in aws.presets)
    if not sep or not folder or not relative:
        raise Rejected(
            f"{event.key}: no preset folder (expected {prefix}<preset>/<name>)", hint=f"upload into {known}"
        )
    mapping = aws.preset_for(folder)
    if mapping is None:
        raise Rejected(
            f"{event.key}: unknown preset folder {folder!r}", hint=f"upload into {known}", folder=folder
        )
    name = relative.rpartition("/")[2]
    suffix = "." + name.rpartition(".")[2].lower() if "." in name else ""
    if suffix not in aws.suffixes:
        raise Rejected(
            f"{event.key}: unsupported file type {suffix or '(no suffix)'!r}",
            hint=f"upload a video ending in {', '.join(aws.suffixes)}",
            folder=folder,
        )
    segments = relative.split("/")
    if "" in segments:
        # S3 keeps empty segments, so uploads/a//x.mp4 and uploads/a/x.mp4 are two objects; the
        # output path must not merge them, and a name like that is almost always a client's slip.
        raise Rejected(
            f"{event.key}: the key has an empty path segment ('//')",
            hint="upload it again under a key without '//'",
            folder=folder,
        )
    if "." in segments or ".." in segments:
        # S3 stores 'a/../x' literally, but tools that normalise paths (sync clients, browsers,
        # proxies) would read or write the derived output somewhere else (outputs/../x).
        raise Rejected(
            f"{event.key}: the key has a '.' or '..' path segment",
            hint="upload it again under a key without '.' or '..' folders",
            folder=folder,
        )
    preset, scale = mapping
    out_key = output_key(aws, folder, relative, scale)
    size = len(out_key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        # Checked here, before any GPU work: the delivery's PutObject would refuse it at the end.
        raise Rejected(
            f"{event.key}: its output key would be {size} bytes; S3 allows {MAX_KEY_BYTES}",
            hint=f"shorten the upload's name or folders by {size - MAX_KEY_BYTES} bytes",
            folder=folder,
        )
    return Accepted(event, folder, preset, scale, out_key)


def upload_job_id(event: S3ObjectEvent, preset: str | None, scale: float | None) -> str:
    """The job id of an upload (:mod:`vsrflow.workflow.job.identity`): its object version, else ETag."""
    version = event.version_id if event.version_id else f"etag:{event.etag or ''}"
    return compute_job_id(
        s3_identity(event.bucket, event.key, version), model=preset_choice(preset or ""), scale=scale
    )


def check_size(aws: AwsSettings, event: S3ObjectEvent, job_id: str) -> None:
    """Rejected (with ``job_id``) when the upload of ``event`` is empty or over the size limit."""
    size = event.size or 0
    if size == 0:
        raise Rejected(f"{event.key}: the object is empty", job_id=job_id, hint="upload the whole video")
    if size > aws.max_object_bytes:
        raise Rejected(
            f"{event.key}: {size} bytes is larger than the limit of {aws.max_object_bytes} bytes",
            job_id=job_id,
            hint="split the video, or raise VSRFLOW_AWS_MAX_OBJECT_BYTES (MaxObjectBytes)",
        )


def derive_request(aws: AwsSettings, event: S3ObjectEvent) -> JobRequest:
    """The request of the upload ``event`` describes, or raise Ignored / Rejected.

    ``event`` carries the object as it was found (size, ETag and version from HeadObject): the job
    id is derived from them. Every field of the result follows from ``aws`` and ``event``; nothing
    else is consulted (no AWS call).
    """
    accepted = classify(aws, event)
    job_id = upload_job_id(event, accepted.preset, accepted.scale)
    check_size(aws, event, job_id)
    return JobRequest(
        job_id=job_id,
        bucket=event.bucket,
        key=event.key,
        version_id=event.version_id,
        etag=event.etag,
        size=event.size or 0,
        preset=accepted.preset,
        scale=accepted.scale,
        output_key=accepted.output_key,
        event_time=event.event_time,
    )


#: Fields of a request that :func:`verify_request` compares with the derivation (``created`` and
#: ``event_time`` are informational).
CHECKED_FIELDS = ("job_id", "bucket", "key", "version_id", "etag", "size", "preset", "scale", "output_key")


def verify_request(aws: AwsSettings, request: JobRequest, where: str) -> JobRequest:
    """``request`` when it is exactly what :func:`derive_request` makes of the upload it names.

    The upload identity (bucket, key, version, ETag, size) is taken from the request and derived
    again with ``aws`` (the head node's settings: the configured bucket, upload prefixes, presets,
    output prefix, size limit); the job id, preset, scale and output key must come out the same.
    So a request cannot name another bucket, a key outside the upload prefixes, a preset or scale
    its folder does not map to, or an output key other than the one its upload maps to (another
    user's output, ``outputs/../x``).

    Raises:
        InputError: naming ``where``, the first field that differs (or why the upload itself is
            refused), and that the trigger is the only writer of requests.
    """
    event = S3ObjectEvent(
        "ObjectCreated:Put",
        request.bucket,
        request.key,
        request.size,
        request.etag,
        request.version_id,
        None,
        request.event_time,
    )
    hint = "only the S3 trigger writes job requests: upload the video again (and check who can write jobs/)"
    try:
        expected = derive_request(aws, event)
    except (Ignored, InputError) as why:
        reason = why.message if isinstance(why, InputError) else str(why)
        raise InputError(
            f"{where}: refused, the upload it names would not start a job: {reason}", hint=hint
        ) from None
    for name in CHECKED_FIELDS:
        got, want = getattr(request, name), getattr(expected, name)
        if got != want:
            raise InputError(
                f"{where}: refused, {name} is {got!r} but {request.source_uri} derives {want!r}", hint=hint
            )
    return request

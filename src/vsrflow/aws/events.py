"""Typed S3 event notifications: every record, test events ignored, keys URL-decoded.

Shapes accepted by :func:`parse_event` (a dict, as Lambda hands it over):

* an S3 notification ``{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
  "s3": {"bucket": {"name": ...}, "object": {"key": ..., "size": ..., "eTag": ...,
  "versionId": ..., "sequencer": ...}}}, ...]}``;
* the ``s3:TestEvent`` S3 sends when a notification is configured (``{"Event": "s3:TestEvent",
  ...}``, no Records): zero records;
* an SQS batch whose message bodies are either of the above (S3 -> SQS -> consumer): the bodies'
  records, in order.

Keys arrive URL-encoded with ``+`` for a space; :func:`parse_record` decodes them with
``unquote_plus`` (a literal ``+`` arrives as ``%2B``). A record or envelope that does not have
this shape is an :class:`~vsrflow.errors.InputError` naming what is wrong: retrying it never helps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from vsrflow.errors import InputError

#: S3 keys are at most 1024 bytes of UTF-8.
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class S3ObjectEvent:
    """One S3 notification record.

    Attributes:
        event_name: e.g. ``ObjectCreated:Put``, ``ObjectCreated:CompleteMultipartUpload``,
            ``ObjectRemoved:Delete`` (the ``s3:`` prefix of some producers is stripped).
        bucket: bucket name.
        key: the decoded object key (exactly the key S3 stores).
        size: object size in bytes from the event (None for removals).
        etag: ETag from the event, without quotes (None when absent).
        version_id: version id (None for unversioned buckets or when absent).
        sequencer: S3's per-key ordering token (None when absent).
        event_time: ISO-8601 time of the event as given.
    """

    event_name: str
    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_time: str | None = None

    @property
    def created(self) -> bool:
        return self.event_name.startswith("ObjectCreated:")

    @property
    def removed(self) -> bool:
        return self.event_name.startswith("ObjectRemoved:")

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _is_test_event(obj: dict[str, Any]) -> bool:
    return obj.get("Event") == "s3:TestEvent" and "Records" not in obj


def parse_event(event: object) -> list[dict[str, Any]]:
    """The raw S3 records of ``event`` (see the module docstring); [] for a test event.

    Raises InputError when the envelope is not one of the accepted shapes.
    """
    if not isinstance(event, dict):
        raise InputError(f"S3 event: expected a JSON object, got {type(event).__name__}", hint=_HINT)
    if _is_test_event(event):
        return []
    records = event.get("Records")
    if not isinstance(records, list):
        raise InputError("S3 event: no Records list", hint=_HINT)
    out: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InputError(f"S3 event: record {i} is {type(record).__name__}, not an object", hint=_HINT)
        if record.get("eventSource") == "aws:sqs":
            body = record.get("body")
            try:
                inner = json.loads(body) if isinstance(body, str) else None
            except ValueError:
                inner = None
            if inner is None:
                raise InputError(f"S3 event: SQS record {i} has no JSON body", hint=_HINT)
            out.extend(parse_event(inner))
        else:
            out.append(record)
    return out


_HINT = "send an S3 event notification (Records[].s3.bucket.name / .object.key)"


def sqs_messages(event: object) -> list[tuple[str, object]] | None:
    """``[(messageId, body), ...]`` when ``event`` is an SQS batch, else None.

    A body is the parsed JSON of the message (the S3 notification it carries), or the raw body
    text when it is not JSON: each message is judged on its own (see :func:`parse_event` per
    body), so one bad message never decides for its siblings.
    """
    if not isinstance(event, dict):
        return None
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        return None
    if not all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records):
        return None
    out: list[tuple[str, object]] = []
    for i, record in enumerate(records):
        body = record.get("body")
        try:
            parsed: object = json.loads(body) if isinstance(body, str) else body
        except ValueError:
            parsed = body
        out.append((str(record.get("messageId") or f"record-{i}"), parsed))
    return out


def parse_record(record: object) -> S3ObjectEvent:
    """One S3 record as :class:`S3ObjectEvent`; InputError naming the missing/bad field."""
    if not isinstance(record, dict):
        raise InputError("S3 record: not an object", hint=_HINT)
    name = record.get("eventName")
    s3 = record.get("s3")
    if not isinstance(name, str) or not name:
        raise InputError("S3 record: no eventName", hint=_HINT)
    if (
        not isinstance(s3, dict)
        or not isinstance(s3.get("bucket"), dict)
        or not isinstance(s3.get("object"), dict)
    ):
        raise InputError(f"S3 record ({name}): no s3.bucket / s3.object", hint=_HINT)
    bucket = s3["bucket"].get("name")
    obj = s3["object"]
    raw_key = obj.get("key")
    if not isinstance(bucket, str) or not bucket:
        raise InputError(f"S3 record ({name}): no bucket name", hint=_HINT)
    if not isinstance(raw_key, str) or not raw_key:
        raise InputError(f"S3 record ({name}, bucket {bucket}): no object key", hint=_HINT)
    key = unquote_plus(raw_key)
    if "\x00" in key or len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InputError(f"S3 record: key {raw_key[:80]!r} is not a valid S3 key", hint=_HINT)
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"S3 record: key {raw_key[:80]!r} does not decode to UTF-8", hint=_HINT) from None
    size = obj.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise InputError(f"S3 record: object size {size!r} of {key!r} is not a byte count", hint=_HINT)
    etag = obj.get("eTag")
    version = obj.get("versionId")
    return S3ObjectEvent(
        event_name=name.removeprefix("s3:"),
        bucket=bucket,
        key=key,
        size=size,
        etag=etag.strip('"') if isinstance(etag, str) and etag else None,
        version_id=version if isinstance(version, str) and version and version != "null" else None,
        sequencer=obj.get("sequencer") if isinstance(obj.get("sequencer"), str) else None,
        event_time=record.get("eventTime") if isinstance(record.get("eventTime"), str) else None,
    )

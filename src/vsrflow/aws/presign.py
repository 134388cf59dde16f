"""Presigned S3 URLs for a browser: multipart uploads into ``uploads/<folder>/`` and result downloads.

The web page (``vsrflow ui --aws``) hands these to the browser, which talks to S3 itself: the
server never puts credentials in the page and never proxies the bytes. Each URL is signed for one
operation on one key (a part PUT of one upload id, or one GET) and expires after ``expires_s``.

Part sizes follow S3's rules: every part but the last is at least 5 MiB, at most 10,000 parts.
Completing the upload lists the parts S3 holds (so the browser need not read ETag headers, which
a CORS policy would have to expose) and checks that every planned part arrived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vsrflow.aws.errors import translate
from vsrflow.errors import InputError

#: S3's smallest part (all but the last) and largest part count.
MIN_PART_BYTES = 5 * 1024**2
MAX_PARTS = 10_000
#: Default part size: large enough for few requests, small enough to retry cheaply.
DEFAULT_PART_BYTES = 16 * 1024**2
#: Lifetime of a presigned URL (seconds).
DEFAULT_EXPIRES_S = 3600


@dataclass(frozen=True)
class MultipartPlan:
    """A started multipart upload: ``urls[i]`` is the presigned PUT of part ``i + 1``.

    Part ``i + 1`` holds bytes ``[i * part_bytes, min(size, (i + 1) * part_bytes))`` of the file.
    """

    bucket: str
    key: str
    upload_id: str
    size: int
    part_bytes: int
    urls: tuple[str, ...]


def part_size_for(size: int, part_bytes: int = DEFAULT_PART_BYTES) -> int:
    """The part size for a ``size``-byte file: ``part_bytes``, grown until it fits in MAX_PARTS."""
    if size < 0:
        raise InputError(f"file size {size} is negative", hint="send the file's size in bytes")
    part = max(MIN_PART_BYTES, part_bytes)
    return max(part, math.ceil(size / MAX_PARTS))


def start_multipart(
    s3: Any,
    bucket: str,
    key: str,
    size: int,
    *,
    content_type: str = "application/octet-stream",
    part_bytes: int = DEFAULT_PART_BYTES,
    expires_s: int = DEFAULT_EXPIRES_S,
) -> MultipartPlan:
    """CreateMultipartUpload on ``key`` and presign one UploadPart URL per part.

    Raises:
        InputError: an empty file. VsrError/TransientError: the S3 call failed (translated).
    """
    if size <= 0:
        raise InputError(f"{key}: the file is empty (0 bytes)", hint="choose the video file itself")
    part = part_size_for(size, part_bytes)
    count = max(1, math.ceil(size / part))
    try:
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)["UploadId"]
        urls = tuple(
            s3.generate_presigned_url(
                "upload_part",
                Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": n},
                ExpiresIn=expires_s,
            )
            for n in range(1, count + 1)
        )
    except Exception as exc:
        raise translate(exc, f"start the upload of s3://{bucket}/{key}") from exc
    return MultipartPlan(bucket, key, upload_id, size, part, urls)


def complete_multipart(s3: Any, bucket: str, key: str, upload_id: str, parts: int) -> str:
    """Complete the upload from the parts S3 holds; returns the object's ETag.

    Raises:
        InputError: parts 1..``parts`` are not all there (the browser's upload did not finish);
            the upload is left open so the browser can retry the missing parts.
    """
    try:
        listing = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=MAX_PARTS)
        held = {int(p["PartNumber"]): p["ETag"] for p in listing.get("Parts", [])}
    except Exception as exc:
        raise translate(exc, f"list the uploaded parts of s3://{bucket}/{key}") from exc
    missing = [n for n in range(1, parts + 1) if n not in held]
    if missing:
        raise InputError(
            f"{key}: parts {', '.join(map(str, missing[:10]))} of {parts} did not arrive",
            hint="upload the file again (check the network, and the bucket's CORS rules for this page)",
        )
    try:
        done = s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": held[n]} for n in range(1, parts + 1)]},
        )
    except Exception as exc:
        raise translate(exc, f"complete the upload of s3://{bucket}/{key}") from exc
    return str(done.get("ETag", "")).strip('"')


def abort_multipart(s3: Any, bucket: str, key: str, upload_id: str) -> None:
    """Abort an unfinished upload (its parts are deleted)."""
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as exc:
        raise translate(exc, f"abort the upload of s3://{bucket}/{key}") from exc


def presigned_get(
    s3: Any, bucket: str, key: str, *, filename: str | None = None, expires_s: int = DEFAULT_EXPIRES_S
) -> str:
    """A presigned GET of ``s3://bucket/key``; with ``filename`` the browser saves it under that name."""
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if filename:
        safe = filename.replace('"', "").replace("\\", "")
        params["ResponseContentDisposition"] = f'attachment; filename="{safe}"'
    try:
        return str(s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s))
    except Exception as exc:
        raise translate(exc, f"sign a download of s3://{bucket}/{key}") from exc

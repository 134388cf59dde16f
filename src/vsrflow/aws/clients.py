"""The one factory of boto3 clients: region and endpoint from :class:`~vsrflow.config.AwsSettings`.

Every client uses botocore's ``adaptive`` retry mode (client-side rate limiting plus exponential
backoff on throttling and 5xx), so callers see only errors that survived the retries. With an
``endpoint_url`` (a local moto server) S3 uses path-style addressing, which works with any host.
S3 clients sign presigned URLs with SigV4 (botocore's default for presigning is still SigV2,
which S3 refuses for buckets created since mid-2020 and which the browser's uploads go through).

:class:`AwsClients` caches one client per service; pass one around (or a test double with the
same methods) instead of calling boto3 directly anywhere else. Their errors are classified and
translated by :mod:`vsrflow.aws.errors`.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from vsrflow.config import AwsSettings

#: Attempts per call, the first included (botocore's adaptive mode retries throttling and 5xx).
MAX_ATTEMPTS = 5


_SESSION: boto3.session.Session | None = None
_SESSION_LOCK = threading.Lock()


def _session() -> boto3.session.Session:
    """One boto3 session per process: its loader parses each service model once (the EC2 model
    alone takes about a second), which keeps Lambda cold starts and short CLI runs fast. Sessions
    are not thread-safe, so client creation holds a lock; the clients themselves are."""
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION


def make_client(service: str, aws: AwsSettings) -> Any:
    """A boto3 client for ``service`` honouring ``aws.region`` and ``aws.endpoint_url``."""
    config = Config(
        retries={"mode": "adaptive", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=10,
        read_timeout=60,
        s3={"addressing_style": "path"} if aws.endpoint_url else None,
        signature_version="s3v4" if service == "s3" else None,
    )
    kwargs: dict[str, Any] = {"config": config}
    if aws.region:
        kwargs["region_name"] = aws.region
    if aws.endpoint_url:
        kwargs["endpoint_url"] = aws.endpoint_url
    with _SESSION_LOCK:
        return _session().client(service, **kwargs)


class AwsClients:
    """Lazily created, cached clients for the services vsrflow uses (s3, dynamodb, ec2, ssm, sns)."""

    def __init__(self, aws: AwsSettings) -> None:
        self.aws = aws
        self._cache: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._cache:
            self._cache[service] = make_client(service, self.aws)
        return self._cache[service]

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def ssm(self) -> Any:
        return self.client("ssm")

    @property
    def sns(self) -> Any:
        return self.client("sns")

"""vsrflow.aws.clients: the S3 client signs presigned URLs the way every bucket accepts (SigV4)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from vsrflow.aws.clients import make_client
from vsrflow.config import Settings


@pytest.mark.parametrize("endpoint", [None, "http://127.0.0.1:9"])
def test_presigned_urls_are_sigv4_in_the_configured_region(
    endpoint: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Signing is local: no request is sent, any key pair will do.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    env = {"VSRFLOW_AWS_BUCKET": "media-ops", "VSRFLOW_AWS_REGION": "eu-west-1"}
    if endpoint:
        env["VSRFLOW_AWS_ENDPOINT_URL"] = endpoint
    s3 = make_client("s3", Settings.from_env(env).aws)
    part = {"Bucket": "media-ops", "Key": "uploads/anime/a.mp4", "UploadId": "u", "PartNumber": 1}
    result = {"Bucket": "media-ops", "Key": "outputs/anime/a_x2.mp4"}
    for operation, params in (("upload_part", part), ("get_object", result)):
        query = parse_qs(urlparse(s3.generate_presigned_url(operation, Params=params)).query)
        # SigV2 (AWSAccessKeyId/Signature), botocore's presigning default, is refused by new buckets.
        assert "AWSAccessKeyId" not in query and "Signature" not in query
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Credential"][0].split("/")[2:4] == ["eu-west-1", "s3"]

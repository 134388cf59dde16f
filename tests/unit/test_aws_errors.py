"""vsrflow.aws.errors: AWS error codes classified and translated into vsrflow's error types."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from vsrflow.aws import errors
from vsrflow.errors import InputError, TransientError, VsrError


def client_error(code: str, status: int = 400, operation: str = "GetObject") -> ClientError:
    response = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


def test_error_code_and_status_of_client_errors_and_others() -> None:
    exc = client_error("NoSuchKey", 404)
    assert errors.error_code(exc) == "NoSuchKey"
    assert errors.http_status(exc) == 404
    assert errors.error_code(ValueError("x")) == ""
    assert errors.http_status(ValueError("x")) is None


@pytest.mark.parametrize("code", ["404", "NoSuchKey", "NoSuchVersion", "NotFound"])
def test_missing_objects_are_not_found(code: str) -> None:
    assert errors.is_not_found(client_error(code, 404))


@pytest.mark.parametrize("code", ["NoSuchBucket", "AccessDenied", "SlowDown"])
def test_a_missing_bucket_or_other_failures_are_not_object_not_found(code: str) -> None:
    assert not errors.is_not_found(client_error(code))


def test_condition_predicates_match_only_their_codes() -> None:
    assert errors.is_conditional_check_failed(client_error("ConditionalCheckFailedException"))
    assert not errors.is_conditional_check_failed(client_error("ValidationException"))
    for code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
        assert errors.is_precondition_failed(client_error(code, 412))
    assert not errors.is_precondition_failed(client_error("NoSuchKey", 404))
    assert errors.is_instance_not_registered(client_error("InvalidInstanceId", operation="SendCommand"))
    assert not errors.is_instance_not_registered(client_error("InvalidDocument", operation="SendCommand"))


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (client_error("ThrottlingException"), True),
        (client_error("SlowDown", 503), True),
        (client_error("SomethingNew", 502), True),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (client_error("AccessDenied", 403), False),
        (client_error("NoSuchKey", 404), False),
        (ValueError("not an AWS error"), False),
    ],
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert errors.is_transient(exc) is transient


def test_translate_transient_names_the_action_and_uses_the_transient_hint() -> None:
    out = errors.translate(
        client_error("ThrottlingException"), "claim job 0123 in t", transient_hint="retried"
    )
    assert type(out) is TransientError
    assert str(out) == "cannot claim job 0123 in t: ThrottlingException (retried)"


def test_translate_other_failures_keep_the_callers_hint() -> None:
    out = errors.translate(client_error("ValidationException"), "claim job 0123 in t", hint="fix the table")
    assert type(out) is VsrError
    assert out.message.startswith("cannot claim job 0123 in t: ValidationException: ")
    assert out.hint == "fix the table"
    plain = errors.translate(RuntimeError("boom"), "read s3://b/k")
    assert type(plain) is VsrError and plain.message == "cannot read s3://b/k: RuntimeError: boom"


@pytest.mark.parametrize(
    ("code", "status", "fix"),
    [
        ("NoSuchBucket", 404, "VSRFLOW_AWS_BUCKET"),
        ("ResourceNotFoundException", 400, "VSRFLOW_AWS_TABLE"),
        ("AccessDenied", 403, "IAM policy"),
        ("AccessDeniedException", 400, "IAM policy"),
    ],
)
def test_translate_names_the_fix_for_missing_resources_and_denied_access(
    code: str, status: int, fix: str
) -> None:
    out = errors.translate(client_error(code, status), "write s3://b/k", hint="generic")
    assert type(out) is VsrError
    assert fix in (out.hint or "")
    assert code in out.message


def test_translate_returns_vsrflow_errors_unchanged() -> None:
    mine = InputError("bad", hint="fix it")
    assert errors.translate(mine, "anything") is mine

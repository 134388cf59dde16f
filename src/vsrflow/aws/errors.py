"""AWS errors translated in one place: error codes, their meaning, and vsrflow's own error types.

Every caller of boto3 in :mod:`vsrflow.aws` classifies a failed call here instead of comparing
error codes itself:

* :func:`error_code` / :func:`http_status`: what botocore reported (``response["Error"]["Code"]``
  and ``ResponseMetadata.HTTPStatusCode``; empty / None for anything that is not a ClientError);
* predicates for the outcomes callers act on: :func:`is_transient` (retry later),
  :func:`is_not_found` (the object or version does not exist), :func:`is_precondition_failed`
  (an S3 conditional write lost), :func:`is_conditional_check_failed` (a DynamoDB condition did
  not hold), :func:`is_instance_not_registered` (SSM does not know the instance yet);
* :func:`translate`: any other failure as a :class:`~vsrflow.errors.TransientError` (retryable)
  or :class:`~vsrflow.errors.VsrError` whose message names the action and the AWS code, and whose
  hint says what to fix (a more precise one for a missing bucket or table and for denied access).

Standard library only at import time (botocore is imported when first needed), like the rest of
the Lambda package.
"""

from __future__ import annotations

from vsrflow.errors import TransientError, VsrError

#: The object, its version or the key does not exist (S3 GetObject/HeadObject, downloads).
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound"})
#: The bucket itself does not exist.
NO_SUCH_BUCKET = "NoSuchBucket"
#: A DynamoDB table (or another named resource) does not exist.
RESOURCE_NOT_FOUND = "ResourceNotFoundException"
#: An S3 conditional write (``If-Match`` / ``If-None-Match``) found another object.
PRECONDITION_FAILED_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
#: A DynamoDB ``ConditionExpression`` did not hold (nothing was written).
CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"
#: SSM SendCommand to an instance its agent has not registered (yet).
INSTANCE_NOT_REGISTERED_CODES = frozenset({"InvalidInstanceId", "InvalidInstanceInformationFilterValue"})
#: The caller's role may not do this.
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"})

#: Error codes that mean "try again later" (after botocore's own retries gave up).
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else ""
    return ""


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a botocore ClientError (None for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def is_transient(exc: BaseException) -> bool:
    """True for throttling/5xx ClientErrors and for connection problems (retry later)."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ReadTimeoutError

    if isinstance(exc, BotoConnectionError | ReadTimeoutError):
        return True
    if error_code(exc) in TRANSIENT_CODES:
        return True
    status = http_status(exc)
    return status is not None and status >= 500


def is_not_found(exc: BaseException) -> bool:
    """True when the S3 object (or the version asked for) does not exist; not for a missing bucket."""
    return error_code(exc) in NOT_FOUND_CODES


def is_precondition_failed(exc: BaseException) -> bool:
    """True when an S3 conditional write was refused because the object is not the expected one."""
    return error_code(exc) in PRECONDITION_FAILED_CODES


def is_conditional_check_failed(exc: BaseException) -> bool:
    """True when a DynamoDB write's ``ConditionExpression`` did not hold."""
    return error_code(exc) == CONDITIONAL_CHECK_FAILED


def is_instance_not_registered(exc: BaseException) -> bool:
    """True when SSM refused a command because the instance is not (yet) a managed instance."""
    return error_code(exc) in INSTANCE_NOT_REGISTERED_CODES


def translate(
    exc: BaseException,
    action: str,
    *,
    hint: str = "check the configuration and the IAM policy",
    transient_hint: str = "retry later",
) -> VsrError:
    """``exc`` (raised while trying to ``action``) as a vsrflow error, to raise ``from exc``.

    A :class:`~vsrflow.errors.VsrError` is returned unchanged. A transient failure becomes a
    TransientError ``cannot <action>: <code>`` with ``transient_hint``; anything else a VsrError
    ``cannot <action>: <code>: <exc>`` with ``hint``, except that a missing bucket, a missing
    table and denied access get a hint naming that fix. ``action`` names the resource (``read
    s3://bucket/key``, ``claim job <id> in <table>``).
    """
    if isinstance(exc, VsrError):
        return exc
    code = error_code(exc) or type(exc).__name__
    if is_transient(exc):
        return TransientError(f"cannot {action}: {code}", hint=transient_hint)
    if code == NO_SUCH_BUCKET:
        hint = "the bucket does not exist: check VSRFLOW_AWS_BUCKET (the stack's Bucket output)"
    elif code == RESOURCE_NOT_FOUND:
        hint = "the resource does not exist: check VSRFLOW_AWS_TABLE and that the stack is deployed"
    elif code in ACCESS_DENIED_CODES:
        hint = "access denied: add the missing permission to the role's IAM policy"
    return VsrError(f"cannot {action}: {code}: {exc}", hint=hint)

"""Unit rules of the web page: bind, Host names, auth headers, CSRF tokens, stored names, part sizes."""

from __future__ import annotations

import base64

import pytest

from vsrflow.aws.presign import MAX_PARTS, MIN_PART_BYTES, part_size_for
from vsrflow.errors import InputError
from vsrflow.web.security import Access, check_bind, is_loopback, parse_basic
from vsrflow.web.uploads import check_upload_id, estimate_seconds, safe_name


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_binds_need_no_login(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "media.example"])
def test_wide_binds_need_a_login(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(InputError, match="without a login"):
        check_bind(host, None, None)
    check_bind(host, "a" * 16, None)
    check_bind(host, None, ("ops", "password1"))


def test_basic_auth_value() -> None:
    assert parse_basic("ops:12345678") == ("ops", "12345678")
    for bad in ("ops", ":12345678", "ops:short"):
        with pytest.raises(InputError, match="USER:PASSWORD"):
            parse_basic(bad)


def test_host_names() -> None:
    access = Access(host="0.0.0.0", token="t" * 16, allowed_hosts=("media.example",))
    for ok in ("127.0.0.1:8765", "localhost:1", "[::1]:80", "media.example:8765", "MEDIA.example"):
        assert access.host_allowed(ok), ok
    for bad in ("evil.example:8765", "127.0.0.1.evil.example", "", "media.example.evil:1"):
        assert not access.host_allowed(bad), bad


def test_auth_headers_and_cookie() -> None:
    access = Access(token="t" * 16, basic=("ops", "password1"))
    assert not access.authorised({}, {})
    assert access.authorised({"authorization": "Bearer " + "t" * 16}, {})
    assert access.authorised({}, {"vsrflow_auth": "t" * 16})
    assert not access.authorised({"authorization": "Bearer " + "u" * 16}, {})
    basic = base64.b64encode(b"ops:password1").decode()
    assert access.authorised({"authorization": "Basic " + basic}, {})
    assert not access.authorised({"authorization": "Basic !!!"}, {})
    assert Access().authorised({}, {})  # no login configured: loopback only


def test_csrf_tokens_are_per_session_and_per_process() -> None:
    one, two = Access(), Access()
    assert one.csrf_token("a" * 32) != one.csrf_token("b" * 32)
    assert one.csrf_token("a" * 32) != two.csrf_token("a" * 32)
    assert one.csrf_token("a" * 32) == one.csrf_token("a" * 32)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("clip.mp4", "clip.mp4"),
        ("C:\\Users\\me\\Old Tape.MOV", "Old Tape.MOV"),
        ("../../etc/passwd.mkv", "passwd.mkv"),
        ("a/b/../.hidden.mp4", "hidden.mp4"),
        ("x" * 300 + ".mp4", "x" * 116 + ".mp4"),
        ("名前.mp4", "_.mp4"),
        ("  .mp4", None),
        ("notes.txt", None),
        ("", None),
        ("clip.mp4/", None),
    ],
)
def test_safe_name(raw: str, stored: str | None) -> None:
    if stored is None:
        with pytest.raises(InputError, match="unsupported file type"):
            safe_name(raw)
    else:
        assert safe_name(raw) == stored


def test_upload_ids() -> None:
    assert check_upload_id("0123456789abcdef") == "0123456789abcdef"
    for bad in ("../../etc", "0123456789ABCDEF", "0" * 15, "0" * 17):
        with pytest.raises(InputError):
            check_upload_id(bad)


def test_part_sizes_fit_s3_limits() -> None:
    assert part_size_for(1) == 16 * 1024**2
    assert part_size_for(10, part_bytes=1) == MIN_PART_BYTES
    huge = 5 * 1024**4  # 5 TiB, the S3 object limit
    part = part_size_for(huge)
    assert -(-huge // part) <= MAX_PARTS
    with pytest.raises(InputError):
        part_size_for(-1)


def test_estimate_scales_with_work() -> None:
    one, basis = estimate_seconds("realesr-animevideov3", 640, 360, 100, None)
    two, _ = estimate_seconds("realesr-animevideov3", 640, 360, 200, None)
    measured, said = estimate_seconds("realesr-animevideov3", 640, 360, 100, 1.24 * 640 * 360)
    assert one and two and two == pytest.approx(2 * one) and "rough" in basis
    assert measured == pytest.approx(100.0) and said == "measured on this machine"
    assert estimate_seconds("no-such-model", 1, 1, 1, None)[0] is None

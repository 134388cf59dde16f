"""Who may use the page: the bind rule, token / basic auth, the Host check and CSRF protection.

* Bind: loopback by default; a wider bind needs a token or basic auth (:func:`check_bind`).
* Auth (only when configured): ``Authorization: Bearer <token>``, or the ``vsrflow_auth`` cookie
  that visiting ``/?token=<token>`` sets (HttpOnly, SameSite=Strict), or ``Authorization: Basic``
  with the configured user and password. Compared in constant time.
* Host: the ``Host`` header must name this server (loopback names, the bound host, or one given
  with ``--allow-host``): a page on another site that resolves its own name to 127.0.0.1 (DNS
  rebinding) is refused.
* CSRF: every state-changing request (anything but GET/HEAD) must carry ``X-CSRF-Token`` equal to
  the HMAC of the browser's session cookie (the page embeds it), must not come from another site
  (``Origin`` equal to this host, ``Sec-Fetch-Site`` not ``cross-site``), and must not be a form
  post (JSON or raw bodies only: an HTML form on another site cannot send the header).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from vsrflow.errors import InputError

SESSION_COOKIE = "vsrflow_session"
AUTH_COOKIE = "vsrflow_auth"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` reaches this machine only (127.0.0.0/8, ::1, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Access:
    """The access rules of one server.

    Attributes:
        host: the bound address. token: a bearer token, or None. basic: ``(user, password)``, or None.
        allowed_hosts: extra names the ``Host`` header may carry (the bound host and loopback names
            are always allowed). secret: the key of the CSRF tokens (random per process).
    """

    host: str = "127.0.0.1"
    token: str | None = None
    basic: tuple[str, str] | None = None
    allowed_hosts: tuple[str, ...] = ()
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @property
    def needs_auth(self) -> bool:
        return self.token is not None or self.basic is not None

    def csrf_token(self, session: str) -> str:
        """The CSRF token of browser session ``session`` (HMAC-SHA256, hex)."""
        return hmac.new(self.secret, session.encode(), hashlib.sha256).hexdigest()

    def host_allowed(self, host_header: str) -> bool:
        name = host_header.strip().lower()
        if name.startswith("["):
            name = name.split("]")[0] + "]"
        else:
            name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
        names = {*_LOOPBACK_NAMES, self.host.lower(), *(h.lower() for h in self.allowed_hosts)}
        return name in names

    def authorised(self, headers: dict[str, str], cookies: dict[str, str]) -> bool:
        if not self.needs_auth:
            return True
        given = headers.get("authorization", "")
        if self.token is not None:
            offered = cookies.get(AUTH_COOKIE, "")
            if given.lower().startswith("bearer "):
                offered = given[7:].strip()
            if offered and hmac.compare_digest(offered.encode(), self.token.encode()):
                return True
        if self.basic is not None and given.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(given[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(user.encode(), self.basic[0].encode()) & hmac.compare_digest(
                password.encode(), self.basic[1].encode()
            )
        return False


def check_bind(host: str, token: str | None, basic: tuple[str, str] | None) -> None:
    """Refuse a bind beyond loopback without a token or basic auth (InputError saying how)."""
    if not is_loopback(host) and token is None and basic is None:
        raise InputError(
            f"--host {host} opens the page beyond this machine without a login",
            hint="pass --token (or --token-file / --basic-auth), or keep the default 127.0.0.1",
        )
    if token is not None and len(token) < 16:
        raise InputError("the token is shorter than 16 characters", hint="use e.g. `openssl rand -hex 16`")


def parse_basic(value: str | None) -> tuple[str, str] | None:
    """``USER:PASSWORD`` -> (user, password); InputError on a value without both."""
    if value is None:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or len(password) < 8:
        raise InputError(
            "--basic-auth needs USER:PASSWORD with a password of 8 or more characters",
            hint="e.g. --basic-auth ops:$(openssl rand -hex 8)",
        )
    return user, password


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in headers.get("cookie", "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out[name] = value
    return out


async def _reply(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware applying :class:`Access` to every HTTP request (see the module docstring).

    It also gives every browser a session cookie (the CSRF token's subject) and stores the
    session id in ``scope["state"]["session"]`` for the templates.
    """

    def __init__(self, app: Asgi, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if not self.access.host_allowed(host):
            await _reply(send, 421, f"unknown host {host!r}: open the page by its own address")
            return
        cookies = _cookies(headers)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        set_cookies: list[tuple[bytes, bytes]] = []
        authorised = self.access.authorised(headers, cookies)
        offered = (query.get("token") or [""])[0]
        token = self.access.token
        if (
            not authorised
            and token
            and offered
            and scope["method"] in _SAFE_METHODS
            and hmac.compare_digest(offered.encode(), token.encode())
        ):
            authorised = True
            set_cookies.append(
                (b"set-cookie", f"{AUTH_COOKIE}={offered}; HttpOnly; SameSite=Strict; Path=/".encode())
            )
        if not authorised:
            extra = [(b"www-authenticate", b'Basic realm="vsrflow"')] if self.access.basic else []
            await _reply(send, 401, "login needed: open /?token=<token> or use basic auth", extra)
            return
        session = cookies.get(SESSION_COOKIE, "")
        if len(session) != 32 or not all(c in "0123456789abcdef" for c in session):
            session = secrets.token_hex(16)
            set_cookies.append(
                (b"set-cookie", f"{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/".encode())
            )
        if scope["method"] not in _SAFE_METHODS:
            problem = self._csrf_problem(headers, session)
            if problem:
                await _reply(send, 403, f"refused: {problem}")
                return
        scope.setdefault("state", {})["session"] = session
        scope["state"]["csrf"] = self.access.csrf_token(session)

        async def send_with_cookies(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and set_cookies:
                message = {**message, "headers": [*message.get("headers", []), *set_cookies]}
            await send(message)

        await self.app(scope, receive, send_with_cookies)

    def _csrf_problem(self, headers: dict[str, str], session: str) -> str | None:
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return "a request from another site"
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
            return f"origin {origin} is not this page"
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain"):
            return "form posts are not accepted (the page sends JSON)"
        given = headers.get(CSRF_HEADER, "")
        if not given or not hmac.compare_digest(given.encode(), self.access.csrf_token(session).encode()):
            return "missing or wrong CSRF token (reload the page)"
        return None
